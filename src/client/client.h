#pragma once
// The hoopd HTTP client (HTTP/1.1 over Boost.Beast, TLS by OpenSSL), shared
// by the reviewer verbs and the setuid `hoopctl run` path.
// MUST: never log, print or put the bearer token in an error message.
// MUST NOT: follow redirects, use proxies, decompress, or read more than
//           ClientOptions::max_response_bytes.
// The client itself reads no environment variable; OpenSSL (OPENSSL_CONF,
// SSL_CERT_FILE, SSL_CERT_DIR) and the libc resolver ignore theirs in a
// setuid process. Privileged callers scrub the environment regardless.

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/types.h"
#include "common/error.h"

namespace hoop::client {

/// Where and how to reach hoopd. `server` is a base URL
/// ("https://hoop.example.org:8443"); http:// is accepted because the host
/// config allows it only for loopback.
struct ClientOptions {
  std::string server;
  std::string ca_file;      // PEM bundle; "" = the system store
  std::string client_cert;  // optional mutual TLS
  std::string client_key;
  std::string token;  // bearer token (personal or host)
  std::string user_agent = "hoopctl";
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  /// Extra time allowed on top of a long-poll's wait before giving up.
  std::chrono::milliseconds wait_slack{10000};
  /// Must exceed api::kMaxReadBytes (one transcript chunk) plus headers.
  size_t max_response_bytes = size_t{8} * 1024 * 1024;
};

/// GET /v1/whoami.
struct Identity {
  std::string kind;  // "user" | "host"
  std::string name;
  std::string token;  // public token id
};

/// Filters of GET /v1/requests; unset ones are not sent.
struct ListFilter {
  std::optional<api::State> state;
  std::string user;
  std::string host;
  int64_t before = 0;  // request id; 0 = newest
  int limit = 0;       // 0 = server default (100)
};

/// Filters of GET /v1/sessions; unset ones are not sent.
struct SessionFilter {
  std::optional<api::SessionState> state;
  std::string user;
  std::string host;
  int64_t before = 0;  // session id; 0 = newest
  int limit = 0;       // 0 = server default (100)
};

/// One answer of GET /v1/sessions/{id}/transcript.
struct TranscriptChunk {
  std::string bytes;      // from the asked offset; empty when a wait ended with nothing new
  uint64_t length = 0;    // bytes the server holds (Hoop-Session-Length)
  bool complete = false;  // Hoop-Session-State: complete
};

/// One row of GET /v1/audit. `detail` is kept as compact JSON text.
struct AuditRow {
  int64_t seq = 0;
  int64_t at_ms = 0;
  std::string actor;
  std::string action;
  int64_t request_id = 0;
  std::string detail;
  std::string prev_hash;
  std::string hash;
};

/// A connection to hoopd: one keep-alive HTTP/1.1 connection, opened by the
/// first call and reused by the next ones. When the server has closed it
/// meanwhile, the client reconnects; it resends a request only when the
/// server cannot have acted on it (a GET, or a send that failed). Every
/// call blocks until answered or timed out; a network failure or timeout is
/// Errc::unavailable with the URL in the message. Not thread-safe; one per
/// thread. Each typed call can hand back the server's raw JSON (`raw`) for
/// `--json` output.
class Client {
 public:
  /// Validates the options (URL shape, no control characters in the token);
  /// does not connect. CA, certificate and key files are read by the first
  /// call, whose error says which one failed.
  static Result<Client> create(ClientOptions opts);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  const std::string& server() const;

  Result<Identity> whoami(nlohmann::json* raw = nullptr);
  Result<api::Request> create_request(const api::NewRequest& req, nlohmann::json* raw = nullptr);
  /// With `wait`, holds until the state differs from `while_state` or the
  /// wait ends (then returns the unchanged request).
  Result<api::Request> get_request(int64_t id, std::optional<std::chrono::milliseconds> wait = std::nullopt,
                                   api::State while_state = api::State::pending,
                                   nlohmann::json* raw = nullptr);
  Result<std::vector<api::Request>> list_requests(const ListFilter& filter, nlohmann::json* raw = nullptr);
  Result<api::Request> approve(int64_t id, const std::string& comment, nlohmann::json* raw = nullptr);
  Result<api::Request> deny(int64_t id, const std::string& comment, nlohmann::json* raw = nullptr);
  /// `user` is set by a host cancelling for its user; empty for a personal
  /// credential cancelling its own request.
  Result<api::Request> cancel(int64_t id, const std::string& user = "", nlohmann::json* raw = nullptr);
  Result<api::Request> record_use(int64_t id, nlohmann::json* raw = nullptr);
  Result<std::vector<AuditRow>> read_audit(int64_t after, int limit, nlohmann::json* raw = nullptr);

  // Sessions and transcripts (docs/API.md).
  Result<api::Session> get_session(int64_t id, nlohmann::json* raw = nullptr);
  /// PUT at `offset`; returns the server's new length. Errc::conflict on 409
  /// (a gap, differing bytes, a complete session): ask get_session() for
  /// the length and resume there.
  Result<uint64_t> append_transcript(int64_t id, uint64_t offset, std::string_view bytes);
  /// Idempotent: repeating it with the same values answers the same session.
  Result<api::Session> complete_session(int64_t id, uint64_t length, const std::string& sha256_hex,
                                        std::optional<int> exit_status);
  Result<std::vector<api::Session>> list_sessions(const SessionFilter& f, nlohmann::json* raw = nullptr);
  /// At most 1 MiB from `offset`. With `wait`, an open session with nothing
  /// past `offset` is held until bytes arrive, it completes or the wait ends.
  Result<TranscriptChunk> read_transcript(int64_t id, uint64_t offset,
                                          std::optional<std::chrono::milliseconds> wait = std::nullopt);

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Maps a server error code ("not_found") to Errc; unknown names give nullopt.
std::optional<Errc> errc_from_name(std::string_view name);

/// Turns a non-2xx answer into an Error: the server's
/// {"error":{"code","message"}} when present, else one derived from the
/// HTTP status. The message is escaped for the terminal.
Error error_from_response(long status, std::string_view body);

/// A token's public part ("hoop_<id>") for messages; never the secret.
std::string token_label(std::string_view token);

}  // namespace hoop::client
