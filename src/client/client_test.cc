#include "client/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

namespace hoop::client {
namespace {

using nlohmann::json;

const std::string kToken = "hoop_0123456789abcdef_" + std::string(64, 'a');

struct Seen {
  std::string method, target, headers, body;
};

std::string http(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         extra + "\r\n" + body;
}

// A one-thread HTTP/1.1 responder on 127.0.0.1: enough to see what the
// client sends and to feed it canned answers, keep-alive included.
class FakeServer {
 public:
  using Handler = std::function<std::string(const Seen&)>;
  explicit FakeServer(Handler h) : handler_(std::move(h)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      std::abort();
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int accepts() const { return accepts_; }
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }

 private:
  bool wait_readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    while (!stop_) {
      if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }
  void loop() {
    while (wait_readable(fd_)) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++accepts_;
      serve(c);
      ::close(c);
    }
  }
  void serve(int c) {
    std::string buf;
    char tmp[4096];
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!wait_readable(c)) return;
        const ssize_t n = ::read(c, tmp, sizeof tmp);
        if (n <= 0) return;
        buf.append(tmp, static_cast<size_t>(n));
      }
      Seen s;
      const std::string head = buf.substr(0, end);
      const size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
      s.method = head.substr(0, sp1);
      s.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
      s.headers = head;
      size_t clen = 0;
      if (auto p = head.find("Content-Length: "); p != std::string::npos)
        clen = std::stoul(head.substr(p + 16));
      buf.erase(0, end + 4);
      while (buf.size() < clen) {
        if (!wait_readable(c)) return;
        const ssize_t n = ::read(c, tmp, sizeof tmp);
        if (n <= 0) return;
        buf.append(tmp, static_cast<size_t>(n));
      }
      s.body = buf.substr(0, clen);
      buf.erase(0, clen);
      {
        std::lock_guard<std::mutex> l(mu_);
        seen_.push_back(s);
      }
      const std::string resp = handler_(s);
      if (::write(c, resp.data(), resp.size()) != static_cast<ssize_t>(resp.size())) return;
    }
  }

  Handler handler_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepts_{0};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

json request_json(int64_t id, const std::string& state = "pending") {
  return {{"id", id},
          {"host", "web1"},
          {"user", "alice"},
          {"run_as", "root"},
          {"argv", {"systemctl", "restart", "nginx"}},
          {"state", state},
          {"reviewers", {"bob"}},
          {"approvals_required", 1},
          {"decisions", json::array()},
          {"created_at", 1700000000000}};
}

Client make(const std::string& url, const std::string& token = kToken) {
  ClientOptions o;
  o.server = url;
  o.token = token;
  o.request_timeout = std::chrono::milliseconds(3000);
  auto c = Client::create(o);
  if (!c) std::abort();
  return std::move(c).value();
}

TEST(ErrorMapping, ServerErrorObject) {
  auto e = error_from_response(
      403, R"({"error":{"code":"permission_denied","message":"you filed this request"}})");
  EXPECT_EQ(e.code, Errc::permission_denied);
  EXPECT_EQ(e.message, "you filed this request");
  EXPECT_EQ(error_from_response(409, R"({"error":{"code":"conflict","message":"m"}})").code, Errc::conflict);
  EXPECT_EQ(error_from_response(404, R"({"error":{"code":"not_found","message":"m"}})").code,
            Errc::not_found);
  EXPECT_EQ(error_from_response(401, R"({"error":{"code":"unauthenticated","message":"m"}})").code,
            Errc::unauthenticated);
}

TEST(ErrorMapping, UnknownCodeFallsBackToStatus) {
  EXPECT_EQ(error_from_response(404, R"({"error":{"code":"gone_fishing","message":"m"}})").code,
            Errc::not_found);
  EXPECT_EQ(error_from_response(503, "<html>bad gateway</html>").code, Errc::unavailable);
  EXPECT_EQ(error_from_response(400, "").code, Errc::invalid_argument);
  EXPECT_EQ(error_from_response(302, "").code, Errc::internal);
}

TEST(ErrorMapping, ServerMessageIsEscaped) {
  auto e =
      error_from_response(400, R"({"error":{"code":"invalid_argument","message":"bad \u001b[2J thing"}})");
  EXPECT_EQ(e.message.find('\x1b'), std::string::npos);
  EXPECT_NE(e.message.find("\\x1b[2J"), std::string::npos);
}

TEST(ErrorMapping, NamesRoundTrip) {
  for (Errc c : {Errc::invalid_argument, Errc::unauthenticated, Errc::permission_denied, Errc::not_found,
                 Errc::conflict, Errc::too_large, Errc::unavailable})
    EXPECT_EQ(errc_from_name(errc_name(c)), c);
  EXPECT_FALSE(errc_from_name("nope").has_value());
}

TEST(TokenLabel, ShowsOnlyThePublicPart) {
  EXPECT_EQ(token_label(kToken), "hoop_0123456789abcdef");
  EXPECT_EQ(token_label("x"), "(malformed token)");
}

TEST(ClientCreate, RefusesBadUrlsAndTokens) {
  for (const char* url :
       {"ftp://x", "file:///etc/passwd", "https://user@host", "https://h/?q", "", "https://h\n"}) {
    ClientOptions o;
    o.server = url;
    EXPECT_FALSE(Client::create(o).ok()) << url;
  }
  ClientOptions o;
  o.server = "https://h";
  o.token = "abc\r\nX-Evil: 1";
  EXPECT_FALSE(Client::create(o).ok());
}

TEST(ClientCreate, PlainHttpOnlyToLoopback) {
  for (const char* url :
       {"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:8443/", "http://127.1.2.3"}) {
    ClientOptions o;
    o.server = url;
    EXPECT_TRUE(Client::create(o).ok()) << url;
  }
  for (const char* url : {"http://hoop.example.org", "http://10.0.0.1:8443", "http://127.0.0.1.evil.org",
                          "http://localhost.evil.org", "http://[::2]:1"}) {
    ClientOptions o;
    o.server = url;
    auto c = Client::create(o);
    ASSERT_FALSE(c.ok()) << url;
    EXPECT_NE(c.error().message.find("unencrypted"), std::string::npos);
  }
}

TEST(ClientHttp, SendsBearerAndParsesWhoami) {
  FakeServer srv(
      [](const Seen&) { return http(200, R"({"kind":"user","name":"bob","token":"0123456789abcdef"})"); });
  auto c = make(srv.url() + "/");
  json raw;
  auto who = c.whoami(&raw);
  ASSERT_TRUE(who.ok()) << who.error().message;
  EXPECT_EQ(who->kind, "user");
  EXPECT_EQ(who->name, "bob");
  EXPECT_EQ(raw["name"], "bob");
  auto seen = srv.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target, "/v1/whoami");
  EXPECT_NE(seen[0].headers.find("Authorization: Bearer " + kToken), std::string::npos);
}

TEST(ClientHttp, KeepsTheConnectionAlive) {
  FakeServer srv([](const Seen& s) {
    if (s.target.starts_with("/v1/requests/7")) return http(200, request_json(7).dump());
    return http(200, R"({"requests":[)" + request_json(2).dump() + "," + request_json(1).dump() + "]}");
  });
  auto c = make(srv.url());
  ASSERT_TRUE(c.get_request(7).ok());
  auto l = c.list_requests({});
  ASSERT_TRUE(l.ok()) << l.error().message;
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].id, 2);
  ASSERT_TRUE(c.approve(7, "ok").ok());
  EXPECT_EQ(srv.accepts(), 1);
}

TEST(ClientHttp, PostsJsonBodies) {
  FakeServer srv([](const Seen&) { return http(200, request_json(5, "denied").dump()); });
  auto c = make(srv.url());
  auto r = c.deny(5, "not during the freeze");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->state, api::State::denied);
  ASSERT_TRUE(c.cancel(5).ok());
  ASSERT_TRUE(c.cancel(5, "alice").ok());
  auto seen = srv.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/v1/requests/5/deny");
  EXPECT_EQ(json::parse(seen[0].body), json({{"comment", "not during the freeze"}}));
  EXPECT_NE(seen[0].headers.find("Content-Type: application/json"), std::string::npos);
  EXPECT_EQ(json::parse(seen[1].body), json::object());
  EXPECT_EQ(json::parse(seen[2].body), json({{"user", "alice"}}));
}

TEST(ClientHttp, QueryStrings) {
  FakeServer srv([](const Seen& s) {
    if (s.target.starts_with("/v1/requests?")) return http(200, R"({"requests":[]})");
    return http(200, request_json(9).dump());
  });
  auto c = make(srv.url());
  ListFilter f;
  f.state = api::State::pending;
  f.user = "a b&c";
  f.limit = 50;
  ASSERT_TRUE(c.list_requests(f).ok());
  ASSERT_TRUE(c.get_request(9, std::chrono::milliseconds(1500)).ok());
  auto seen = srv.seen();
  EXPECT_EQ(seen[0].target, "/v1/requests?state=pending&user=a%20b%26c&limit=50");
  EXPECT_EQ(seen[1].target, "/v1/requests/9?wait=1500ms&state=pending");
}

TEST(ClientHttp, MapsServerErrors) {
  FakeServer srv([](const Seen&) {
    return http(403, R"({"error":{"code":"permission_denied","message":"the requester cannot approve"}})");
  });
  auto c = make(srv.url());
  auto r = c.approve(3, "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::permission_denied);
  EXPECT_EQ(r.error().message, "the requester cannot approve");
}

TEST(ClientHttp, DoesNotFollowRedirects) {
  FakeServer srv([](const Seen& s) {
    if (s.target == "/elsewhere") return http(200, R"({"kind":"user","name":"mallory"})");
    return http(302, "", "Location: /elsewhere\r\n");
  });
  auto c = make(srv.url());
  auto r = c.whoami();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(srv.seen().size(), 1u);
}

TEST(ClientHttp, CapsAnswerSize) {
  FakeServer srv([](const Seen&) { return http(200, "[" + std::string(100000, ' ') + "]"); });
  ClientOptions o;
  o.server = srv.url();
  o.max_response_bytes = 50000;
  auto c = Client::create(o);
  ASSERT_TRUE(c.ok());
  auto r = c->whoami();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::too_large);
}

TEST(ClientHttp, NonJsonAnswerIsAnError) {
  FakeServer srv([](const Seen&) { return http(200, "<html>hello</html>"); });
  auto c = make(srv.url());
  auto r = c.whoami();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not JSON"), std::string::npos);
}

TEST(ClientHttp, IgnoresProxyEnvironment) {
  FakeServer srv([](const Seen&) { return http(200, R"({"kind":"user","name":"bob"})"); });
  ::setenv("http_proxy", "http://127.0.0.1:9", 1);
  ::setenv("ALL_PROXY", "http://127.0.0.1:9", 1);
  auto c = make(srv.url());
  auto r = c.whoami();
  ::unsetenv("http_proxy");
  ::unsetenv("ALL_PROXY");
  ASSERT_TRUE(r.ok()) << r.error().message;
}

TEST(ClientHttp, UnreachableServerSaysWhere) {
  // Bind and close a socket to find a port nobody listens on.
  std::string url;
  {
    FakeServer tmp([](const Seen&) { return std::string(); });
    url = tmp.url();
  }
  auto c = make(url);
  auto r = c.whoami();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("cannot reach " + url), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find(kToken), std::string::npos);
}

}  // namespace
}  // namespace hoop::client
