// The only translation unit with Beast's parser and serializer in it (they
// compile slowly): listener, TLS context, signals, and the per-connection
// session. Over 300 lines because the session template belongs next to the
// listener that instantiates it and nowhere else.

#include "server/server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <deque>
#include <optional>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "api/types.h"
#include "server/handlers.h"
#include "server/metrics.h"
#include "server/service.h"
#include "server/tls_stream.h"

namespace hoop::server {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using std::chrono::milliseconds;

constexpr size_t kHeaderLimit = 16 * 1024;
// The read buffer must hold a whole header; body bytes pass through it.
constexpr size_t kBufferLimit = 2 * kHeaderLimit;
constexpr size_t kShrinkAbove = 4 * 1024;    // give big buffers back after a request
constexpr size_t kWatchBytes = 64;           // per read of the long-poll watcher
constexpr size_t kDrainLimit = 2 * api::kMaxBodyBytes;
constexpr milliseconds kLingerMax{5000};
constexpr milliseconds kTick{1000};
// A TLS handshake in progress holds ~40 KiB (OpenSSL's record buffers and
// handshake state) until the client's Finished arrives. 5,000 clients
// connecting at once would push the heap to 200 MB, and malloc keeps that
// peak. So a handshake starts only when its ClientHello is there (a silent
// client holds no slot), at most kMaxHandshakes run at once (one thread
// gains nothing from more), and one that stalls longer than kSlotHold gives
// its slot up (it may still finish), so stalling clients cannot block the
// queue for a whole read_timeout. Waiting in the queue counts against
// read_timeout.
constexpr size_t kMaxHandshakes = 32;
constexpr std::chrono::milliseconds kSlotHold{1000};

/// A string body that grows with what arrives. Beast's string_body reserves
/// Content-Length up front, which would let idle clients that merely
/// announce 512 KiB pin 512 KiB each.
struct GrowingBody {
  using value_type = std::string;

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(beast::http::header<isRequest, Fields>&, value_type& body) : body_(body) {}
    void init(const boost::optional<std::uint64_t>&, error_code& ec) { ec = {}; }
    template <class ConstBuffers>
    size_t put(const ConstBuffers& buffers, error_code& ec) {
      ec = {};
      size_t n = 0;
      for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
        asio::const_buffer b(*it);
        body_.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      return n;
    }
    void finish(error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

tcp::socket& lowest(tcp::socket& s) { return s; }
tcp::socket& lowest(TlsStream& s) { return s.socket(); }
void shutdown_tls(tcp::socket&) {}
void shutdown_tls(TlsStream& s) { s.shutdown_tls(); }

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void abort() = 0;
  /// Starts a TLS handshake that was given a slot; false if the session
  /// closed meanwhile (the slot goes to the next one).
  virtual bool begin_handshake() { return false; }
};

/// What sessions share. Held by shared_ptr from each session, so a session
/// that outlives the Server (its last handler destroyed with the io_context)
/// still finds the registry; `metrics` is cleared when the Server goes.
struct Shared {
  Shared(HandlerContext c, Metrics* m, milliseconds timeout) : ctx(c), metrics(m), read_timeout(timeout) {}

  HandlerContext ctx;
  Metrics* metrics;
  milliseconds read_timeout;
  std::unordered_set<SessionBase*> sessions;
  // TLS handshake admission (see kMaxHandshakes): who holds a slot since
  // when, and who waits for one (owned here: a queued session has no I/O
  // pending that would keep it alive).
  struct Slot {
    SessionBase* session;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<Slot> handshaking;
  std::deque<std::shared_ptr<SessionBase>> handshake_queue;

  void request_slot(std::shared_ptr<SessionBase> s) {
    handshake_queue.push_back(std::move(s));
    admit();
  }
  /// A handshake ended (done, failed or closed); no-op if it had forfeited.
  void release_slot(SessionBase* s) {
    std::erase_if(handshaking, [s](const Slot& slot) { return slot.session == s; });
    admit();
  }
  /// Called every tick: stalled handshakes give their slot to the queue.
  void forfeit_stalled(std::chrono::steady_clock::time_point now) {
    std::erase_if(handshaking, [now](const Slot& slot) { return now - slot.since >= kSlotHold; });
    admit();
  }
  void admit() {
    while (handshaking.size() < kMaxHandshakes && !handshake_queue.empty()) {
      auto next = std::move(handshake_queue.front());
      handshake_queue.pop_front();
      handshaking.push_back({next.get(), std::chrono::steady_clock::now()});
      if (!next->begin_handshake()) handshaking.pop_back();  // closed while queued
    }
  }
};

/// One connection: read a request (bounded), hand it to the router, write
/// the answer, repeat while keep-alive. See server.h for the long-poll watch.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(std::shared_ptr<Shared> shared, Args&&... args)
      : sh_(std::move(shared)), stream_(std::forward<Args>(args)...), timer_(stream_.get_executor()) {
    sh_->sessions.insert(this);
    if (sh_->metrics) sh_->metrics->connection_opened();
  }
  ~Session() override {
    sh_->sessions.erase(this);
    if (sh_->metrics) sh_->metrics->connection_closed();
  }

  Stream& stream() { return stream_; }

  void start() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      arm(sh_->read_timeout);  // covers the wait for a handshake slot too
      // Ask for a slot only once the ClientHello is here: silent clients cost
      // no slot. The readiness wait reads nothing, so OpenSSL sees every byte.
      stream_.socket().async_wait(tcp::socket::wait_read, [self = this->shared_from_this()](error_code ec) {
        if (self->phase_ == Phase::closed) return;
        if (ec) return self->close();
        self->sh_->request_slot(self);
      });
    } else {
      do_read();
    }
  }

  bool begin_handshake() override {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      if (phase_ == Phase::closed) return false;
      handshake();
      return true;
    }
    return false;
  }

  void abort() override { close(); }

 private:
  enum class Phase { reading, handling, writing, resuming, draining, closed };
  using Parser = beast::http::request_parser<GrowingBody>;

  void handshake() {
    stream_.async_handshake([self = this->shared_from_this()](error_code ec, size_t) {
      self->sh_->release_slot(self.get());  // also on failure and close
      if (self->phase_ == Phase::closed) return;
      if (ec) return self->close();
      self->do_read();
    });
  }

  void do_read() {
    phase_ = Phase::reading;
    parser_ = std::make_unique<Parser>();
    parser_->header_limit(static_cast<std::uint32_t>(kHeaderLimit));
    parser_->body_limit(api::kMaxBodyBytes);
    arm(sh_->read_timeout);  // the whole request, and idle keep-alive before it
    beast::http::async_read_header(stream_, buffer_, *parser_,
                                   [self = this->shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (phase_ == Phase::closed) return;
    if (ec) return on_read_error(ec);
    const auto& h = parser_->get();
    if (h.version() >= 11 && !parser_->is_done() && beast::iequals(h[beast::http::field::expect], "100-continue")) {
      // curl waits a second for this before sending a larger body.
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = this->shared_from_this()](error_code wec, size_t) {
                          if (self->phase_ == Phase::closed) return;
                          if (wec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    beast::http::async_read(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read_error(error_code ec) {
    namespace he = beast::http;
    if (ec == he::error::body_limit)
      return reply_now(beast::http::status::payload_too_large,
                       make_error(Errc::too_large, "body is larger than " +
                                                       std::to_string(api::kMaxBodyBytes / 1024) + " KiB"));
    if (ec == he::error::header_limit || ec == he::error::buffer_overflow)
      return reply_now(beast::http::status::request_header_fields_too_large,
                       make_error(Errc::too_large, "request headers are larger than 16 KiB"));
    const bool http_syntax = ec.category() == make_error_code(he::error::bad_method).category();
    if (http_syntax && ec != he::error::end_of_stream && ec != he::error::partial_message)
      return reply_now(beast::http::status::bad_request,
                       make_error(Errc::invalid_argument, "malformed HTTP request: " + ec.message()));
    close();  // end of stream, timeout, reset: nobody to answer
  }

  void on_read(error_code ec) {
    if (phase_ == Phase::closed) return;
    if (ec) return on_read_error(ec);
    // No read timeout while the server works or a long-poll waits; only a
    // backstop in case an answer never comes (a bug must not leak the
    // connection): the longest wait plus one more read_timeout.
    arm(sh_->ctx.cfg.max_wait + sh_->read_timeout);
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    HttpRequest req(std::move(msg.base()), std::move(msg.body()));
    parser_.reset();
    if (buffer_.capacity() > kShrinkAbove) buffer_.shrink_to_fit();

    phase_ = Phase::handling;
    const uint64_t gen = ++generation_;
    auto handle = handle_request(sh_->ctx, std::move(req), [self = this->shared_from_this(), gen](HttpResponse res) {
      self->on_answer(gen, std::move(res));
    });
    if (phase_ == Phase::handling && handle) {
      wait_ = std::move(handle);
      start_watch();
    }
  }

  void reply_now(beast::http::status st, const Error& e) {
    parser_.reset();
    keep_alive_ = false;  // the stream is out of step with the parser
    version_ = 11;
    phase_ = Phase::handling;
    on_answer(++generation_, error_response(st, e));
  }

  void on_answer(uint64_t gen, HttpResponse res) {
    if (gen != generation_ || phase_ != Phase::handling) return;  // closed meanwhile
    res.version(version_);
    res.keep_alive(keep_alive_);
    if (sh_->metrics) sh_->metrics->count_response(res.result_int());
    res_ = std::make_unique<HttpResponse>(std::move(res));
    phase_ = Phase::writing;
    arm(sh_->read_timeout);  // a client that does not read its answer is cut off too
    beast::http::async_write(stream_, *res_,
                             [self = this->shared_from_this()](error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(error_code ec) {
    res_.reset();
    wait_.reset();  // released only now: never from inside the Service's callback
    if (phase_ == Phase::closed) return;
    if (ec || peer_gone_) return close();
    if (!keep_alive_) return linger();
    if (watching_) {
      // The watch read stays pending and becomes the start of the next request.
      phase_ = Phase::resuming;
      arm(sh_->read_timeout);
      return;
    }
    do_read();
  }

  void start_watch() {
    if (buffer_.size() + kWatchBytes > buffer_.max_size()) return;  // enough pipelined already
    if (buffer_.size() == 0) buffer_.shrink_to_fit();  // a waiting connection keeps ~64 bytes
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(kWatchBytes), [self = this->shared_from_this()](error_code ec, size_t n) {
      self->on_watch(ec, n);
    });
  }

  void on_watch(error_code ec, size_t n) {
    watching_ = false;
    if (phase_ == Phase::closed) return;
    if (ec) {
      // The client left (or half-closed): cancel its wait, there is nobody to answer.
      if (phase_ == Phase::writing) {
        peer_gone_ = true;
        return;
      }
      return close();
    }
    buffer_.commit(n);
    if (phase_ == Phase::handling) return start_watch();
    if (phase_ == Phase::resuming) return do_read();
    // writing: on_write sees watching_ == false and reads the next request.
  }

  /// Half-closes after a final answer and reads what the client still sends
  /// (bounded in bytes and time), so its unread bytes cannot make our kernel
  /// send a reset that destroys the answer before the client read it.
  void linger() {
    phase_ = Phase::draining;
    shutdown_tls(stream_);
    error_code ec;
    lowest(stream_).shutdown(tcp::socket::shutdown_send, ec);
    if (ec || watching_) return close();
    arm(std::min(sh_->read_timeout, kLingerMax));
    drain();
  }

  void drain() {
    buffer_.consume(buffer_.size());
    if (drained_ > kDrainLimit) return close();
    lowest(stream_).async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](error_code ec, size_t n) {
      if (self->phase_ == Phase::closed) return;
      if (ec) return self->close();
      self->drained_ += n;
      self->drain();
    });
  }

  void arm(milliseconds d) {
    timer_.expires_after(d);
    timer_.async_wait([weak = this->weak_from_this()](error_code ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      // A handler that had already fired may run after a re-arm: check.
      if (self->timer_.expiry() > std::chrono::steady_clock::now()) return;
      self->close();
    });
  }
  void disarm() { timer_.expires_at(asio::steady_timer::time_point::max()); }

  void close() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    wait_.reset();  // cancels an open long-poll
    disarm();
    error_code ec;
    lowest(stream_).close(ec);  // pending operations complete with errors
  }

  std::shared_ptr<Shared> sh_;
  Stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_{kBufferLimit};
  // Heap-allocated only while a request is read or an answer written, so an
  // idle or waiting connection does not carry their ~400 bytes.
  std::unique_ptr<Parser> parser_;
  std::unique_ptr<HttpResponse> res_;
  Service::WaitHandle wait_;
  Phase phase_ = Phase::reading;
  uint64_t generation_ = 0;
  size_t drained_ = 0;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool watching_ = false;
  bool peer_gone_ = false;
};

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Result<SslCtxPtr> make_tls_context(const config::TlsConfig& tls) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return make_error(Errc::internal, "cannot create a TLS context: " + openssl_error());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                             SSL_OP_IGNORE_UNEXPECTED_EOF);
  // TLS 1.2: forward-secret AEAD suites only (1.3 suites are all fine).
  SSL_CTX_set_cipher_list(c, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20");
  // Idle connections give OpenSSL's 16 KiB record buffers back (waiters).
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_sess_set_cache_size(c, 1024);
  static const unsigned char kSidCtx[] = "hoopd";
  SSL_CTX_set_session_id_context(c, kSidCtx, sizeof kSidCtx - 1);
  if (SSL_CTX_use_certificate_chain_file(c, tls.cert.c_str()) != 1)
    return make_error(Errc::io, "cannot load the certificate chain " + tls.cert + ": " + openssl_error());
  if (SSL_CTX_use_PrivateKey_file(c, tls.key.c_str(), SSL_FILETYPE_PEM) != 1)
    return make_error(Errc::io, "cannot load the private key " + tls.key + ": " + openssl_error());
  if (SSL_CTX_check_private_key(c) != 1)
    return make_error(Errc::invalid_argument, "the private key " + tls.key + " does not match the certificate " + tls.cert);
  if (!tls.client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(c, tls.client_ca.c_str(), nullptr) != 1)
      return make_error(Errc::io, "cannot load client_ca " + tls.client_ca + ": " + openssl_error());
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(c, names);  // tells clients which CA to use
    // A host without a certificate signed by client_ca cannot even connect.
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  ERR_clear_error();
  return ctx;
}

}  // namespace

struct Server::Impl {
  asio::io_context& io;
  Service& service;
  const config::ServerConfig& cfg;
  Metrics& metrics;
  ServerOptions opts;
  std::shared_ptr<Shared> shared;
  SslCtxPtr ssl;
  tcp::acceptor acceptor;
  asio::steady_timer tick;
  asio::steady_timer accept_retry;
  std::optional<asio::signal_set> signals;
  tcp::endpoint bound;
  bool stopped = false;

  Impl(asio::io_context& i, Service& s, const config::ServerConfig& c, Metrics& m, ServerOptions o)
      : io(i), service(s), cfg(c), metrics(m), opts(std::move(o)),
        shared(std::make_shared<Shared>(HandlerContext{s, c, m}, &m, c.read_timeout)),
        acceptor(i), tick(i), accept_retry(i) {
    if (!opts.log) opts.log = [](const std::string&) {};
  }

  void do_accept() {
    acceptor.async_accept([this](error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
  }

  void on_accept(error_code ec, tcp::socket socket) {
    if (stopped || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors (or similar): retrying at once would spin.
      opts.log("accept failed: " + ec.message() + "; retrying in 100ms");
      accept_retry.expires_after(milliseconds(100));
      accept_retry.async_wait([this](error_code wec) {
        if (!wec && !stopped) do_accept();
      });
      return;
    }
    if (shared->sessions.size() >= cfg.max_connections) {
      metrics.connection_refused();
      error_code ignored;
      socket.close(ignored);
    } else {
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);  // small answers, latency matters
      if (ssl) {
        auto s = std::make_shared<Session<TlsStream>>(shared, std::move(socket), ssl.get());
        if (s->stream().ok()) s->start();
      } else {
        std::make_shared<Session<tcp::socket>>(shared, std::move(socket))->start();
      }
    }
    do_accept();
  }

  void do_tick() {
    tick.expires_after(kTick);
    tick.async_wait([this](error_code ec) {
      if (ec || stopped) return;
      service.expire_due();
      shared->forfeit_stalled(std::chrono::steady_clock::now());
      do_tick();
    });
  }

  void do_signals() {
    signals->async_wait([this](error_code ec, int sig) {
      if (ec || stopped) return;
      if (sig == SIGHUP) {
        if (opts.reload_policy) {
          if (auto p = opts.reload_policy()) {
            service.set_policy(std::move(p));
            opts.log("policy reloaded");
          }
        }
        return do_signals();
      }
      opts.log(std::string("stopping (") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ")");
      stop();
      // Let the last batch commit so no answered call is lost, then end.
      service.on_durable([&ctx = io](Status) { ctx.stop(); });
    });
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    error_code ignored;
    acceptor.close(ignored);
    tick.cancel();
    accept_retry.cancel();
    if (signals) signals->cancel(ignored);
    std::vector<SessionBase*> all(shared->sessions.begin(), shared->sessions.end());
    for (SessionBase* s : all) s->abort();
    shared->handshake_queue.clear();  // they hold Shared: break the cycle
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  if (!impl_) return;
  impl_->stop();
  impl_->shared->metrics = nullptr;  // sessions may outlive us until the io_context goes
}

Result<std::unique_ptr<Server>> Server::create(asio::io_context& io, Service& service, const config::ServerConfig& cfg,
                                               Metrics& metrics, ServerOptions options) {
  auto impl = std::make_unique<Impl>(io, service, cfg, metrics, std::move(options));
  if (cfg.tls) {
    auto ctx = make_tls_context(*cfg.tls);
    if (!ctx) return ctx.error();
    impl->ssl = std::move(*ctx);
  } else if (!cfg.insecure_http) {
    return make_error(Errc::invalid_argument,
                      "no [tls] section: set [tls] cert and key, or insecure_http = true to serve plain HTTP");
  }
  error_code ec;
  const auto addr = asio::ip::make_address(cfg.listen_address, ec);
  if (ec) return make_error(Errc::invalid_argument, "bad listen address '" + cfg.listen_address + "'");
  const tcp::endpoint ep(addr, cfg.listen_port);
  const std::string where = cfg.listen_address + ":" + std::to_string(cfg.listen_port);
  auto fail = [&](const char* what) {
    return make_error(Errc::io, std::string("cannot ") + what + " " + where + ": " + ec.message());
  };
  if (impl->acceptor.open(ep.protocol(), ec); ec) return fail("open a socket for");
  if (impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec); ec) return fail("set SO_REUSEADDR on");
  if (impl->acceptor.bind(ep, ec); ec) return fail("bind to");
  if (impl->acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) return fail("listen on");
  impl->bound = impl->acceptor.local_endpoint(ec);
  if (ec) return fail("read the address of");
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

std::string Server::address() const { return impl_->bound.address().to_string(); }
uint16_t Server::port() const { return impl_->bound.port(); }
bool Server::tls() const { return impl_->ssl != nullptr; }
size_t Server::connections() const { return impl_->shared->sessions.size(); }

void Server::start() {
  impl_->do_accept();
  impl_->do_tick();
  if (impl_->opts.handle_signals) {
    impl_->signals.emplace(impl_->io, SIGINT, SIGTERM, SIGHUP);
    impl_->do_signals();
  }
}

void Server::stop() { impl_->stop(); }

}  // namespace hoop::server
