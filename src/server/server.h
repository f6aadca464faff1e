#pragma once
// hoopd's network front end, shaped like the Beast examples:
// listener -> session (timeout and limits on every read) -> router
// (handlers.h). HTTP/1.1 on one io_context thread; TLS through OpenSSL when
// the config has [tls], plain HTTP only when it says insecure_http = true.
//
// MUST: every read is bounded in time (read_timeout: TLS handshake, whole
// request, idle keep-alive) and size (16 KiB of headers; of body
// api::kMaxBodyBytes for JSON, api::kMaxChunkBytes for a transcript PUT:
// handlers.h body_limit_for, decided once the header is read); connections
// beyond max_connections are closed at once.
// MUST: an open long-poll costs a few KiB (5,000 waiters < 100 MB in all,
// TLS included: see TlsStream, and the handshake admission in server.cc).
//
// Long-polls notice a client that leaves: while a wait is open the session
// keeps one small read pending on the connection; when it fails (FIN, RST,
// TLS close) the wait is cancelled through its Service::WaitHandle. Bytes
// that arrive instead (a pipelined request) are kept for the next read.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/error.h"
#include "config/server_config.h"
#include "policy/policy.h"

namespace boost::asio {
class io_context;
}

namespace hoop::server {

class Metrics;
class Service;

/// Receives one log line (no trailing newline).
using Log = std::function<void(const std::string&)>;

struct ServerOptions {
  /// SIGHUP: returns the new policy, or null to keep the current one (the
  /// callback has already logged why). Unset: SIGHUP is ignored.
  std::function<std::shared_ptr<const policy::Policy>()> reload_policy;
  Log log;
  /// SIGINT/SIGTERM stop the server, SIGHUP reloads. Off in tests.
  bool handle_signals = true;
};

/// The listener and every connection. Create, start(), then run the
/// io_context; stop() (or SIGINT/SIGTERM) ends it. `service`, `cfg` and
/// `metrics` must outlive the Server; destroy the Server only when the
/// io_context no longer runs.
class Server {
 public:
  /// Loads the TLS certificate and key, binds and listens, so that every
  /// configuration error surfaces before anything is accepted.
  static Result<std::unique_ptr<Server>> create(boost::asio::io_context& io, Service& service,
                                                const config::ServerConfig& cfg, Metrics& metrics,
                                                ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::string address() const;  // the bound address, e.g. "127.0.0.1"
  uint16_t port() const;        // the bound port (the real one when the config says 0)
  bool tls() const;

  /// Starts accepting, the 1-second expiry tick and (if asked) signals.
  void start();
  /// Stops accepting and closes every connection; open waits are
  /// cancelled. Idempotent; call on the io thread. With signals, SIGTERM
  /// does this and then stops the io_context once the last commit is done.
  void stop();
  size_t connections() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hoop::server
