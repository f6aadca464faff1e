// The real listener and sessions on 127.0.0.1, plain HTTP, port 0, with the
// io_context in a thread and clients made of raw sockets: timeouts, limits,
// keep-alive, long-polls whose client leaves, and the connection cap.

#include "server/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "api/types.h"
#include "common/crypto.h"
#include "server/metrics.h"
#include "server/service.h"
#include "store/store.h"

namespace hoop::server {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kPolicy = R"toml(
[[rule]]
name = "restart-web"
users = ["alice"]
commands = [["/usr/bin/systemctl", "restart", "*"]]
action = "review"
reviewers = ["bob"]

[[rule]]
name = "status"
users = ["*"]
commands = [["/usr/bin/systemctl", "status", "**"]]
action = "allow"
)toml";

const std::string kHostToken = "hoop_" + std::string(16, '1') + "_" + std::string(64, '1');

class Conn {
 public:
  explicit Conn(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Conn() { close_now(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool ok() const { return ok_; }
  void close_now() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  /// Reads one response (headers and Content-Length body); "" on close/timeout.
  std::string response(milliseconds limit = milliseconds(5000)) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      const size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t len = 0;
        const size_t cl = buf_.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) len = std::stoul(buf_.substr(cl + 16));
        if (buf_.size() >= end + 4 + len) {
          std::string out = buf_.substr(0, end + 4 + len);
          buf_.erase(0, end + 4 + len);
          return out;
        }
      }
      if (!fill(deadline)) return "";
    }
  }
  /// How long until the server closed the connection; nullopt if it did not within `limit`.
  std::optional<milliseconds> closed_within(milliseconds limit) {
    const auto t0 = Clock::now();
    while (fill(t0 + limit)) buf_.clear();
    if (!closed_) return std::nullopt;
    return std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  }

 private:
  bool fill(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char tmp[4096];
    const ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool ok_ = false;
  bool closed_ = false;
  std::string buf_;
};

std::string status_line(const std::string& res) { return res.substr(0, res.find("\r\n")); }

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hoop-srv-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto st = store::open_sqlite(dir_ + "/hoop.db");
    ASSERT_TRUE(st) << st.error().message;
    store_ = std::move(*st);
    ASSERT_TRUE(store_->insert_token(
        {std::string(16, '1'), store::TokenKind::host, "web1", sha256_hex(std::string(64, '1')), "", 1, 0}));
    cfg_.listen_address = "127.0.0.1";
    cfg_.listen_port = 0;
    cfg_.insecure_http = true;
    cfg_.read_timeout = milliseconds(300);
    cfg_.data_dir = dir_;
  }
  void TearDown() override {
    if (thread_.joinable()) {
      boost::asio::post(io_, [this] {
        server_->stop();
        io_.stop();
      });
      thread_.join();
    }
    server_.reset();
    svc_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void start() {
    std::vector<policy::Diagnostic> diags;
    auto pol = std::make_shared<const policy::Policy>(policy::Policy::parse(kPolicy, "test.toml", &diags));
    ASSERT_TRUE(pol->valid());
    svc_ = std::make_unique<Service>(io_.get_executor(), *store_, pol, cfg_);
    ServerOptions opts;
    opts.handle_signals = false;
    auto s = Server::create(io_, *svc_, cfg_, metrics_, opts);
    ASSERT_TRUE(s) << s.error().message;
    server_ = std::move(*s);
    ASSERT_NE(server_->port(), 0);
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }

  std::string get(Conn& c, const std::string& target, const std::string& extra = "") {
    EXPECT_TRUE(c.send("GET " + target + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n"));
    return c.response();
  }

  /// The hoopd_waiters gauge, read over HTTP like a scraper would.
  long waiters() {
    Conn c(server_->port());
    const std::string res = get(c, "/metrics");
    const size_t at = res.find("\nhoopd_waiters ");
    return at == std::string::npos ? -1 : std::stol(res.substr(at + 15));
  }
  bool waiters_become(long n) {
    for (int i = 0; i < 100; ++i) {
      if (waiters() == n) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  config::ServerConfig cfg_;
  boost::asio::io_context io_;
  Metrics metrics_;
  std::unique_ptr<Service> svc_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(ServerTest, SlowAndIdleClientsAreCutOffAfterReadTimeout) {
  start();
  const auto t0 = Clock::now();
  Conn half(server_->port());
  ASSERT_TRUE(half.ok());
  ASSERT_TRUE(half.send("GET /healthz HTTP/1.1\r\nHost: t\r\n"));  // never finishes
  Conn idle(server_->port());
  Conn slow_body(server_->port());
  ASSERT_TRUE(slow_body.send("POST /v1/requests HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{"));
  for (Conn* c : {&half, &idle, &slow_body}) {
    ASSERT_TRUE(c->closed_within(milliseconds(3000))) << "not closed";
    EXPECT_GE(Clock::now() - t0, milliseconds(250));  // not before read_timeout (300ms)
  }
  Conn fresh(server_->port());
  EXPECT_EQ(status_line(get(fresh, "/healthz")), "HTTP/1.1 200 OK");
}

TEST_F(ServerTest, OversizedBodyGets413AndTheConnectionCloses) {
  start();
  Conn c(server_->port());
  const std::string body = "{\"a\":\"" + std::string(600 * 1024, 'x') + "\"}";
  ASSERT_TRUE(c.send("POST /v1/requests HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + kHostToken +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  c.send(body);  // the server may already have answered and half-closed
  const std::string res = c.response();
  EXPECT_EQ(status_line(res), "HTTP/1.1 413 Payload Too Large");
  EXPECT_NE(res.find("\"too_large\""), std::string::npos);
  EXPECT_NE(res.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(c.closed_within(milliseconds(3000)));
}

std::string body_of(const std::string& res) { return res.substr(res.find("\r\n\r\n") + 4); }

TEST_F(ServerTest, BodyLimitIsPerRoute) {
  start();
  // An allowed command with use: the session to write to.
  Conn c(server_->port());
  const std::string filing = R"({"user":"alice","argv":["systemctl","status"],"path":"/usr/bin/systemctl",)"
                             R"("digest":")" + std::string(64, 'a') + R"(","use":true})";
  ASSERT_TRUE(c.send("POST /v1/requests HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + kHostToken +
                     "\r\nContent-Length: " + std::to_string(filing.size()) + "\r\n\r\n" + filing));
  const std::string created = c.response();
  ASSERT_EQ(status_line(created), "HTTP/1.1 201 Created") << created;
  const size_t at = created.find("\"session\":{");
  ASSERT_NE(at, std::string::npos) << created;
  const size_t idp = created.find("\"id\":", at);
  const std::string sid = std::to_string(std::stol(created.substr(idp + 5)));

  auto put = [&](Conn& conn, size_t n) {
    const std::string head = "PUT /v1/sessions/" + sid + "/transcript?offset=0 HTTP/1.1\r\nHost: t\r\n" +
                             "Authorization: Bearer " + kHostToken +
                             "\r\nContent-Type: application/octet-stream\r\nContent-Length: " + std::to_string(n) +
                             "\r\n\r\n";
    EXPECT_TRUE(conn.send(head));
    conn.send(std::string(n, 'x'));  // the server may already have answered and half-closed
    return conn.response();
  };
  // 3 MiB: over the JSON limit, under the transcript limit.
  const std::string ok = put(c, 3 * 1024 * 1024);
  EXPECT_EQ(status_line(ok), "HTTP/1.1 200 OK") << ok;
  EXPECT_EQ(body_of(ok), "{\"length\":3145728}\n");
  Conn big(server_->port());
  const std::string refused = put(big, api::kMaxChunkBytes + 1);
  EXPECT_EQ(status_line(refused), "HTTP/1.1 413 Payload Too Large");
  EXPECT_NE(refused.find("4096 KiB"), std::string::npos) << refused;
  // The same 3 MiB to a JSON route is refused by the 512 KiB limit.
  Conn json_route(server_->port());
  ASSERT_TRUE(json_route.send("POST /v1/sessions/" + sid + "/complete HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                              kHostToken + "\r\nContent-Length: 3145728\r\n\r\n"));
  const std::string too_big = json_route.response();
  EXPECT_EQ(status_line(too_big), "HTTP/1.1 413 Payload Too Large");
  EXPECT_NE(too_big.find("512 KiB"), std::string::npos) << too_big;
}

TEST_F(ServerTest, OversizedHeadersAndControlCharactersAreRefused) {
  start();
  Conn big(server_->port());
  EXPECT_EQ(status_line(get(big, "/healthz", "X-Big: " + std::string(20 * 1024, 'a') + "\r\n")),
            "HTTP/1.1 431 Request Header Fields Too Large");
  Conn ctl(server_->port());
  EXPECT_EQ(status_line(get(ctl, "/healthz", "X-Note: a\x01" "b\r\n")), "HTTP/1.1 400 Bad Request");
  Conn garbage(server_->port());
  ASSERT_TRUE(garbage.send("\x16\x03\x01garbage\r\n\r\n"));
  EXPECT_EQ(status_line(garbage.response()), "HTTP/1.1 400 Bad Request");
}

TEST_F(ServerTest, KeepAliveAndPipelining) {
  start();
  Conn c(server_->port());
  for (int i = 0; i < 3; ++i) {
    const std::string res = get(c, "/healthz");
    EXPECT_EQ(status_line(res), "HTTP/1.1 200 OK");
    EXPECT_EQ(res.find("Connection: close"), std::string::npos);
  }
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(status_line(c.response()), "HTTP/1.1 200 OK");
  EXPECT_EQ(status_line(c.response()), "HTTP/1.1 404 Not Found");
  // An idle keep-alive connection is closed after read_timeout too.
  EXPECT_TRUE(c.closed_within(milliseconds(3000)));
}

TEST_F(ServerTest, ALongPollWhoseClientLeavesIsCancelled) {
  cfg_.read_timeout = milliseconds(2000);
  start();
  Conn filer(server_->port());
  const std::string body = R"({"user":"alice","argv":["systemctl","restart","nginx"],"path":"/usr/bin/systemctl",)"
                           R"("digest":")" + std::string(64, 'a') + "\"}";
  ASSERT_TRUE(filer.send("POST /v1/requests HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + kHostToken +
                         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
  ASSERT_EQ(status_line(filer.response()), "HTTP/1.1 201 Created");

  auto waiter = std::make_unique<Conn>(server_->port());
  ASSERT_TRUE(waiter->send("GET /v1/requests/1?wait=60s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + kHostToken +
                           "\r\n\r\n"));
  ASSERT_TRUE(waiters_become(1));
  // No read timeout while waiting: the wait outlives read_timeout.
  std::this_thread::sleep_for(milliseconds(2500));
  EXPECT_EQ(waiters(), 1);
  waiter.reset();  // the client goes away
  EXPECT_TRUE(waiters_become(0));
}

TEST_F(ServerTest, ConnectionsBeyondTheCapAreClosedAtOnce) {
  cfg_.read_timeout = milliseconds(5000);
  cfg_.max_connections = 2;
  start();
  Conn a(server_->port()), b(server_->port());
  EXPECT_EQ(status_line(get(a, "/healthz")), "HTTP/1.1 200 OK");
  EXPECT_EQ(status_line(get(b, "/healthz")), "HTTP/1.1 200 OK");
  Conn c(server_->port());
  auto t = c.closed_within(milliseconds(1000));
  ASSERT_TRUE(t) << "third connection was not refused";
  a.close_now();
  std::this_thread::sleep_for(milliseconds(200));  // the server notices the close
  Conn d(server_->port());
  EXPECT_EQ(status_line(get(d, "/healthz")), "HTTP/1.1 200 OK");
}

}  // namespace
}  // namespace hoop::server
