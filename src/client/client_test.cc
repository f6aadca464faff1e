#include "client/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
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

// A one-thread HTTP/1.1 responder on 127.0.0.1, over TLS when given an
// SSL_CTX: enough to see what the client sends and to feed it canned
// answers, keep-alive included. A handler answering "" makes it hang up
// without answering; `close_after_answer` hangs up after each answer, as a
// server does with an idle keep-alive connection.
class FakeServer {
 public:
  using Handler = std::function<std::string(const Seen&)>;
  explicit FakeServer(Handler h, SSL_CTX* tls = nullptr, bool close_after_answer = false)
      : handler_(std::move(h)), tls_(tls), close_after_answer_(close_after_answer) {
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
  std::string url(const char* scheme = "http", const char* host = "127.0.0.1") const {
    return std::string(scheme) + "://" + host + ":" + std::to_string(port_);
  }
  int accepts() const { return accepts_; }
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }

 private:
  struct Conn {
    int fd;
    SSL* ssl;
  };
  bool wait_readable(const Conn& c) {
    if (c.ssl != nullptr && SSL_pending(c.ssl) > 0) return true;
    pollfd p{c.fd, POLLIN, 0};
    while (!stop_) {
      if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }
  static ssize_t read_some(const Conn& c, char* buf, size_t n) {
    if (c.ssl == nullptr) return ::read(c.fd, buf, n);
    return SSL_read(c.ssl, buf, static_cast<int>(n));
  }
  static bool write_all(const Conn& c, const std::string& s) {
    if (c.ssl == nullptr)
      return ::send(c.fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
    return SSL_write(c.ssl, s.data(), static_cast<int>(s.size())) == static_cast<int>(s.size());
  }
  void loop() {
    while (wait_readable(Conn{fd_, nullptr})) {
      const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepts_;
      Conn c{fd, nullptr};
      if (tls_ != nullptr) {
        c.ssl = SSL_new(tls_);
        SSL_set_fd(c.ssl, fd);
      }
      if (c.ssl == nullptr || SSL_accept(c.ssl) == 1) serve(c);
      if (c.ssl != nullptr) SSL_free(c.ssl);
      ::close(fd);
    }
  }
  void serve(const Conn& c) {
    std::string buf;
    char tmp[4096];
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!wait_readable(c)) return;
        const ssize_t n = read_some(c, tmp, sizeof tmp);
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
        const ssize_t n = read_some(c, tmp, sizeof tmp);
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
      if (resp.empty() || !write_all(c, resp) || close_after_answer_) return;
    }
  }

  Handler handler_;
  SSL_CTX* tls_;
  bool close_after_answer_;
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

json session_json(int64_t id, const std::string& state = "open") {
  return {{"id", id},       {"request_id", 3}, {"host", "web1"},   {"user", "alice"},   {"run_as", "root"},
          {"argv", {"ls"}}, {"rule", "r"},     {"record", "required"}, {"mask", {"k=\\S+"}}, {"state", state},
          {"length", 4},    {"sha256", ""},    {"exit_status", nullptr}, {"started_at", 1}, {"ended_at", 0}};
}

TEST(ClientSessions, CreateWithUseSendsItAndParsesTheSession) {
  FakeServer srv([](const Seen&) {
    json r = request_json(3, "approved");
    r["uses"] = 1;
    r["session"] = session_json(11);
    return http(201, r.dump());
  });
  auto c = make(srv.url());
  api::NewRequest nr;
  nr.user = "alice";
  nr.argv = {"ls"};
  nr.path = "/bin/ls";
  nr.digest = std::string(64, 'a');
  nr.use = true;
  auto r = c.create_request(nr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->session);
  EXPECT_EQ(r->session->id, 11);
  EXPECT_EQ(r->session->mask, (std::vector<std::string>{"k=\\S+"}));
  EXPECT_FALSE(r->session->exit_status);
  EXPECT_EQ(json::parse(srv.seen()[0].body)["use"], true);
  nr.use = false;
  ASSERT_TRUE(c.create_request(nr).ok());
  EXPECT_FALSE(json::parse(srv.seen()[1].body).contains("use"));  // old servers refuse unknown fields
}

TEST(ClientSessions, AppendSendsRawBytesAtTheOffset) {
  FakeServer srv([](const Seen& s) {
    if (s.target.find("offset=100") != std::string::npos)
      return http(409, R"({"error":{"code":"conflict","message":"gap","length":7}})");
    return http(200, R"({"length":)" + std::to_string(s.body.size() + 5) + "}");
  });
  auto c = make(srv.url());
  const std::string bytes("a\0\xff\r\nb", 6);
  auto len = c.append_transcript(11, 5, bytes);
  ASSERT_TRUE(len.ok()) << len.error().message;
  EXPECT_EQ(*len, 11u);
  auto seen = srv.seen();
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].target, "/v1/sessions/11/transcript?offset=5");
  EXPECT_EQ(seen[0].body, bytes);
  EXPECT_NE(seen[0].headers.find("Content-Type: application/octet-stream"), std::string::npos);
  auto gap = c.append_transcript(11, 100, "x");
  ASSERT_FALSE(gap.ok());
  EXPECT_EQ(gap.error().code, Errc::conflict);
}

TEST(ClientSessions, ReadTranscriptTakesTheHeadersAndChecksThem) {
  FakeServer srv([](const Seen& s) {
    const std::string body = "tail";
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\n";
    if (s.target.find("/12/") != std::string::npos) return head + "\r\n" + body;  // no session headers
    if (s.target.find("/13/") != std::string::npos)
      return head + "Hoop-Session-State: open\r\nHoop-Session-Length: 2\r\n\r\n" + body;  // more than it has
    return head + "Hoop-Session-State: complete\r\nHoop-Session-Length: 10\r\n\r\n" + body;
  });
  auto c = make(srv.url());
  auto r = c.read_transcript(11, 6, std::chrono::milliseconds(2000));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->bytes, "tail");
  EXPECT_EQ(r->length, 10u);
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(srv.seen()[0].target, "/v1/sessions/11/transcript?offset=6&wait=2000ms");
  EXPECT_FALSE(c.read_transcript(12, 0).ok());
  EXPECT_FALSE(c.read_transcript(13, 0).ok());
}

TEST(ClientSessions, CompleteGetAndList) {
  FakeServer srv([](const Seen& s) {
    if (s.target.starts_with("/v1/sessions?")) return http(200, json{{"sessions", {session_json(2)}}}.dump());
    return http(200, session_json(2, "complete").dump());
  });
  auto c = make(srv.url());
  auto done = c.complete_session(2, 4, std::string(64, 'c'), std::nullopt);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(done->state, api::SessionState::complete);
  auto one = c.get_session(2);
  ASSERT_TRUE(one.ok());
  SessionFilter f;
  f.state = api::SessionState::open;
  f.host = "web1";
  f.limit = 5;
  auto list = c.list_sessions(f);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->size(), 1u);
  auto seen = srv.seen();
  EXPECT_EQ(seen[0].target, "/v1/sessions/2/complete");
  EXPECT_EQ(json::parse(seen[0].body), json({{"length", 4}, {"sha256", std::string(64, 'c')}, {"exit_status", nullptr}}));
  EXPECT_EQ(seen[1].target, "/v1/sessions/2");
  EXPECT_EQ(seen[2].target, "/v1/sessions?state=open&host=web1&limit=5");
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
  EXPECT_EQ(r.error().code, Errc::too_large) << r.error().message;
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

TEST(ClientHttp, ReconnectsWhenTheServerClosedAnIdleConnection) {
  FakeServer srv([](const Seen&) { return http(200, request_json(4).dump()); }, nullptr,
                 /*close_after_answer=*/true);
  auto c = make(srv.url());
  ASSERT_TRUE(c.get_request(4).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the close reaches us
  auto r = c.record_use(4);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(c.get_request(4).ok());
  EXPECT_EQ(srv.accepts(), 3);
  EXPECT_EQ(srv.seen().size(), 3u);  // nothing sent twice
}

TEST(ClientHttp, ConnectionCloseIsHonoured) {
  FakeServer srv([](const Seen&) { return http(200, request_json(4).dump(), "Connection: close\r\n"); });
  auto c = make(srv.url());
  ASSERT_TRUE(c.get_request(4).ok());
  ASSERT_TRUE(c.get_request(4).ok());
  EXPECT_EQ(srv.accepts(), 2);
}

// The server hangs up on the second request of a kept-alive connection
// without answering: a GET is safe to resend, a POST is not (the server
// may have acted on it).
TEST(ClientHttp, ResendsAGetButNeverAPostAfterALostAnswer) {
  std::atomic<int> n{0};
  FakeServer srv([&n](const Seen&) { return ++n == 2 ? std::string() : http(200, request_json(6).dump()); });
  auto c = make(srv.url());
  ASSERT_TRUE(c.get_request(6).ok());
  auto r = c.get_request(6);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(srv.seen().size(), 3u);
  EXPECT_EQ(srv.accepts(), 2);

  n = 1;
  auto p = c.record_use(6);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::unavailable);
  EXPECT_NE(p.error().message.find("cannot reach " + srv.url()), std::string::npos) << p.error().message;
  auto seen = srv.seen();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[3].method, "POST");
  ASSERT_TRUE(c.get_request(6).ok());  // and the client recovers
}

// A listening socket nobody accepts from: connections complete in the
// kernel, requests go unanswered. With `fill`, the accept queue is full
// and new connections hang in the handshake.
class SilentServer {
 public:
  explicit SilentServer(bool fill) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd_, 0) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      std::abort();
    port_ = ntohs(a.sin_port);
    for (int i = 0; fill && i < 2; ++i) {
      const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      (void)::connect(c, reinterpret_cast<sockaddr*>(&a), len);
      fillers_.push_back(c);
    }
    if (fill) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~SilentServer() {
    for (int c : fillers_) ::close(c);
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> fillers_;
};

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

TEST(ClientTimeouts, UnansweredRequestTimesOut) {
  SilentServer srv(false);
  ClientOptions o;
  o.server = srv.url();
  o.request_timeout = milliseconds(300);
  auto c = Client::create(o);
  ASSERT_TRUE(c.ok());
  const auto t0 = Clock::now();
  auto r = c->whoami();
  const auto took = Clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("no answer from " + srv.url() + " in time"), std::string::npos)
      << r.error().message;
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, milliseconds(2000));
}

TEST(ClientTimeouts, LongPollGivesUpAfterWaitPlusSlack) {
  SilentServer srv(false);
  ClientOptions o;
  o.server = srv.url();
  o.request_timeout = milliseconds(100);  // not used by a long-poll
  o.wait_slack = milliseconds(300);
  auto c = Client::create(o);
  ASSERT_TRUE(c.ok());
  const auto t0 = Clock::now();
  auto r = c->get_request(1, milliseconds(200));
  const auto took = Clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_GE(took, milliseconds(450));
  EXPECT_LT(took, milliseconds(2500));
}

TEST(ClientTimeouts, ConnectTimesOut) {
  SilentServer srv(true);
  ClientOptions o;
  o.server = srv.url();
  o.connect_timeout = milliseconds(300);
  auto c = Client::create(o);
  ASSERT_TRUE(c.ok());
  const auto t0 = Clock::now();
  auto r = c->whoami();
  const auto took = Clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("could not connect within"), std::string::npos) << r.error().message;
  EXPECT_LT(took, milliseconds(2000));
}

TEST(ClientHttp, CapsChunkedAndUnsizedAnswers) {
  const std::string big(100000, ' ');
  for (const std::string& answer :
       {std::string("HTTP/1.1 200 X\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\n") + big + "\r\n0\r\n\r\n",
        std::string("HTTP/1.1 200 X\r\nConnection: close\r\n\r\n") + big}) {
    FakeServer srv([&](const Seen&) { return answer; }, nullptr, /*close_after_answer=*/true);
    ClientOptions o;
    o.server = srv.url();
    o.max_response_bytes = 50000;
    auto c = Client::create(o);
    ASSERT_TRUE(c.ok());
    auto r = c->whoami();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::too_large) << r.error().message;
  }
}

TEST(ClientHttp, ReadsLargeAnswersUnderTheCap) {
  json many = {{"requests", json::array()}};
  for (int i = 0; i < 2000; ++i) many["requests"].push_back(request_json(i + 1));
  const std::string text = many.dump();
  ASSERT_GT(text.size(), 300000u);
  FakeServer srv([&](const Seen&) { return http(200, text); });
  auto c = make(srv.url());
  auto l = c.list_requests({});
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->size(), 2000u);
}

TEST(ClientHttp, ReadsChunkedAnswers) {
  FakeServer srv([](const Seen&) {
    return std::string("HTTP/1.1 200 X\r\nTransfer-Encoding: chunked\r\n\r\n") +
           "10\r\n{\"kind\":\"user\",\"\r\n" + "c\r\nname\":\"bob\"}\r\n0\r\n\r\n";
  });
  auto c = make(srv.url());
  auto r = c.whoami();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "bob");
}

// ---- TLS -------------------------------------------------------------------------

// A throwaway CA and server certificates, made with OpenSSL in memory and
// written to a temporary directory for the client to load.
class Pki {
 public:
  Pki() {
    char tmpl[] = "/tmp/hoop-client-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    dir_ = tmpl;
    ca_key_ = EVP_EC_gen("P-256");
    ca_ = make_cert(ca_key_, "test CA", nullptr, nullptr, nullptr);
    ca_file = write_cert("ca.pem", ca_);
  }
  ~Pki() {
    for (X509* x : certs_) X509_free(x);
    for (EVP_PKEY* k : keys_) EVP_PKEY_free(k);
    for (SSL_CTX* c : ctxs_) SSL_CTX_free(c);
    EVP_PKEY_free(ca_key_);
    std::filesystem::remove_all(dir_);
  }

  /// A server context whose certificate has `san` ("IP:127.0.0.1"); signed
  /// by this CA, or by a stranger's when `trusted` is false. With
  /// `want_client_cert`, clients must show a certificate from this CA.
  SSL_CTX* server(const char* san, bool trusted = true, bool want_client_cert = false) {
    EVP_PKEY* issuer_key = ca_key_;
    X509* issuer = ca_;
    if (!trusted) {
      issuer_key = keep(EVP_EC_gen("P-256"));
      issuer = make_cert(issuer_key, "stranger CA", nullptr, nullptr, nullptr);
    }
    EVP_PKEY* key = keep(EVP_EC_gen("P-256"));
    X509* cert = make_cert(key, "hoopd", issuer, issuer_key, san);
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    ctxs_.push_back(ctx);
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) std::abort();
    if (want_client_cert) {
      X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca_);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    return ctx;
  }

  /// A client certificate and key from this CA, as PEM files.
  std::pair<std::string, std::string> client_files() {
    EVP_PKEY* key = keep(EVP_EC_gen("P-256"));
    X509* cert = make_cert(key, "web1", ca_, ca_key_, nullptr);
    const std::string key_file = dir_ + "/client.key";
    FILE* f = std::fopen(key_file.c_str(), "w");
    if (f == nullptr || PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
      std::abort();
    if (std::fclose(f) != 0) std::abort();
    return {write_cert("client.pem", cert), key_file};
  }

  std::string ca_file;

 private:
  EVP_PKEY* keep(EVP_PKEY* k) {
    keys_.push_back(k);
    return k;
  }
  X509* make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, const char* san) {
    X509* x = X509_new();
    certs_.push_back(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial_);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(issuer != nullptr ? issuer : x));
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer != nullptr ? issuer : x, x, nullptr, nullptr, 0);
    auto add = [&](int nid, const char* value) {
      X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
      if (e == nullptr) std::abort();
      X509_add_ext(x, e, -1);
      X509_EXTENSION_free(e);
    };
    add(NID_basic_constraints, issuer == nullptr ? "critical,CA:TRUE" : "critical,CA:FALSE");
    if (issuer == nullptr) add(NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san != nullptr) add(NID_subject_alt_name, san);
    if (X509_sign(x, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) std::abort();
    return x;
  }
  std::string write_cert(const char* name, X509* x) {
    std::string path = dir_ + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr || PEM_write_X509(f, x) != 1 || std::fclose(f) != 0) std::abort();
    return path;
  }

  std::string dir_;
  EVP_PKEY* ca_key_ = nullptr;
  X509* ca_ = nullptr;
  long serial_ = 0;
  std::vector<X509*> certs_;
  std::vector<EVP_PKEY*> keys_;
  std::vector<SSL_CTX*> ctxs_;
};

const FakeServer::Handler kWhoami = [](const Seen&) { return http(200, R"({"kind":"host","name":"web1"})"); };

Result<Identity> whoami_over_tls(const std::string& url, const std::string& ca_file,
                                 const std::string& cert = "", const std::string& key = "") {
  ClientOptions o;
  o.server = url;
  o.ca_file = ca_file;
  o.client_cert = cert;
  o.client_key = key;
  o.token = kToken;
  o.connect_timeout = milliseconds(2000);
  auto c = Client::create(o);
  if (!c) return c.error();
  auto r = c->whoami();
  if (r) r = c->whoami();  // the second call rides the same connection
  return r;
}

TEST(ClientTls, VerifiesAnIpAddressAgainstTheCertificatesIpSan) {
  Pki pki;
  FakeServer srv(kWhoami, pki.server("IP:127.0.0.1"));
  auto r = whoami_over_tls(srv.url("https"), pki.ca_file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "web1");
  EXPECT_EQ(srv.accepts(), 1);
  EXPECT_NE(srv.seen().at(0).headers.find("Authorization: Bearer " + kToken), std::string::npos);

  FakeServer other(kWhoami, pki.server("IP:127.0.0.2,DNS:127.0.0.1"));
  auto bad = whoami_over_tls(other.url("https"), pki.ca_file);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::unavailable);
  EXPECT_TRUE(bad.error().message.starts_with("TLS with " + other.url("https") + " failed"))
      << bad.error().message;
  EXPECT_NE(bad.error().message.find("IP address mismatch"), std::string::npos) << bad.error().message;
  EXPECT_TRUE(other.seen().empty());  // the token never left
}

TEST(ClientTls, VerifiesAHostName) {
  Pki pki;
  FakeServer srv(kWhoami, pki.server("DNS:localhost"));
  auto r = whoami_over_tls(srv.url("https", "localhost"), pki.ca_file);
  ASSERT_TRUE(r.ok()) << r.error().message;

  auto bad = whoami_over_tls(srv.url("https", "127.0.0.1"), pki.ca_file);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("mismatch"), std::string::npos) << bad.error().message;
}

TEST(ClientTls, RefusesAnUntrustedCertificate) {
  Pki pki;
  FakeServer srv(kWhoami, pki.server("IP:127.0.0.1", /*trusted=*/false));
  auto r = whoami_over_tls(srv.url("https"), pki.ca_file);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_TRUE(r.error().message.starts_with("TLS with")) << r.error().message;
  EXPECT_TRUE(srv.seen().empty());
}

TEST(ClientTls, PresentsAClientCertificate) {
  Pki pki;
  FakeServer srv(kWhoami, pki.server("IP:127.0.0.1", true, /*want_client_cert=*/true));
  const auto [cert, key] = pki.client_files();
  auto r = whoami_over_tls(srv.url("https"), pki.ca_file, cert, key);
  ASSERT_TRUE(r.ok()) << r.error().message;

  auto bad = whoami_over_tls(srv.url("https"), pki.ca_file);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::unavailable);
}

TEST(ClientTls, UnreadableFilesAreTlsErrorsOnFirstUse) {
  Pki pki;
  FakeServer srv(kWhoami, pki.server("IP:127.0.0.1"));
  auto r = whoami_over_tls(srv.url("https"), "/nonexistent/ca.pem");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_TRUE(r.error().message.starts_with("TLS with")) << r.error().message;
  EXPECT_NE(r.error().message.find("/nonexistent/ca.pem"), std::string::npos) << r.error().message;
  auto k = whoami_over_tls(srv.url("https"), pki.ca_file, pki.ca_file, "/nonexistent/key.pem");
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.error().message.find("/nonexistent/key.pem"), std::string::npos) << k.error().message;
}

TEST(ClientTls, PlainHttpServerIsATlsError) {
  // Answers the ClientHello the way an HTTP server answers garbage.
  SilentServer srv(false);
  const std::string url = "https" + srv.url().substr(4);
  std::thread answer([&] {
    const int c = ::accept4(srv.fd(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    const std::string bad = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    (void)::send(c, bad.data(), bad.size(), MSG_NOSIGNAL);
    ::close(c);
  });
  auto r = whoami_over_tls(url, "");
  answer.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_TRUE(r.error().message.starts_with("TLS with " + url + " failed")) << r.error().message;
  EXPECT_EQ(r.error().message.find(kToken), std::string::npos);
}

}  // namespace
}  // namespace hoop::client
