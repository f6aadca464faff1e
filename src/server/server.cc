// The listener, the TLS context, signals and the expiry tick; the
// per-connection session is in session.h. The only translation unit with
// Beast's parser and serializer in it (they compile slowly).

#include "server/server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <csignal>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/metrics.h"
#include "server/service.h"
#include "server/session.h"

namespace hoop::server {

namespace {

using namespace detail;  // Session, Shared, SessionBase (session.h)
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using std::chrono::milliseconds;

constexpr milliseconds kTick{1000};

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
