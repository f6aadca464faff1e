#pragma once
// The storage interface of hoopd. Handlers and the service never see SQL:
// a PostgreSQL backend can be added by implementing Store.
//
// Transactions: the server batches the writes of many requests into one
// durable commit (group commit). begin() opens the batch, each operation of
// one API call runs inside a savepoint (savepoint/release/rollback_to) so a
// failed call undoes only itself, and commit() makes the batch durable.
// Reads see the batch's uncommitted writes; the server never answers a
// client before the commit that covers what it read.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/types.h"
#include "audit/chain.h"
#include "common/error.h"

namespace hoop::store {

enum class TokenKind { host, user };
const char* token_kind_name(TokenKind k);

/// A credential. Only the SHA-256 of the secret part is kept.
struct Token {
  std::string id;           // public, 16 hex chars; part of the token text
  TokenKind kind = TokenKind::user;
  std::string name;         // host name or user name
  std::string secret_hash;  // sha256 hex of the secret
  std::string note;
  int64_t created_at_ms = 0;
  int64_t revoked_at_ms = 0;  // 0 = active
};

struct RequestFilter {
  std::optional<api::State> state;
  std::optional<std::string> user;
  std::optional<std::string> host;
  int64_t before_id = 0;  // paging: only ids below this (0 = no bound)
  int limit = 100;        // 1..1000
};

/// Everything a grant is pinned to.
struct GrantKey {
  std::string host;
  std::string user;
  std::string run_as;
  std::vector<std::string> argv;
  std::string path;
  std::string digest;
};

/// A session row: the session, plus who may read its transcript besides
/// its requester (the rule's reviewers when the request was filed).
struct SessionRecord {
  api::Session session;
  std::vector<std::string> reviewers;
};

struct SessionFilter {
  std::optional<api::SessionState> state;
  std::optional<std::string> user;
  std::optional<std::string> host;
  int64_t before_id = 0;  // paging: only ids below this (0 = no bound)
  int limit = 100;        // 1..1000
};

class Store {
 public:
  virtual ~Store() = default;

  // Batch control (see above). begin() on an open batch is an error.
  virtual Status begin() = 0;
  virtual Status commit() = 0;
  virtual void rollback() = 0;
  virtual bool in_transaction() const = 0;
  virtual Status savepoint() = 0;
  virtual Status release() = 0;
  virtual void rollback_to() = 0;

  // Credentials.
  virtual Status insert_token(const Token& t) = 0;
  virtual Result<std::optional<Token>> find_token(std::string_view id) = 0;
  virtual Result<std::vector<Token>> list_tokens() = 0;
  /// not_found for an unknown id; conflict when already revoked.
  virtual Status revoke_token(std::string_view id, int64_t at_ms) = 0;

  // Requests. insert assigns and returns the id; decisions are kept with
  // the request and returned by get/list.
  virtual Result<int64_t> insert_request(const api::Request& r) = 0;
  virtual Result<std::optional<api::Request>> get_request(int64_t id) = 0;
  /// Writes state, decided_*, grant_expires_at_ms and uses of `r.id`.
  virtual Status update_request(const api::Request& r) = 0;
  /// conflict when this reviewer already decided on this request.
  virtual Status add_decision(int64_t request_id, const api::Decision& d) = 0;
  /// Newest first.
  virtual Result<std::vector<api::Request>> list_requests(const RequestFilter& f) = 0;
  /// Approved requests matching all of `k` whose grant is live at now_ms,
  /// newest first, at most 50 (indexed and exact: cheap on every filing).
  virtual Result<std::vector<api::Request>> live_grants(const GrantKey& k, int64_t now_ms) = 0;
  /// Pending requests with expires_at_ms <= now_ms, oldest first, at most `limit`.
  virtual Result<std::vector<int64_t>> pending_due(int64_t now_ms, int limit) = 0;
  /// Number of requests in `state` (all when nullopt), for /metrics.
  virtual Result<int64_t> count_requests(std::optional<api::State> state) = 0;

  // Sessions. insert assigns and returns the id (length, sha256 and the end
  // are taken as given: an open session starts empty).
  virtual Result<int64_t> insert_session(const SessionRecord& s) = 0;
  virtual Result<std::optional<SessionRecord>> get_session(int64_t id) = 0;
  /// Marks `s.id` complete with s.length, s.sha256, s.exit_status and
  /// s.ended_at_ms; conflict unless it was open.
  virtual Status complete_session(const api::Session& s) = 0;
  /// Newest first.
  virtual Result<std::vector<SessionRecord>> list_sessions(const SessionFilter& f) = 0;
  /// Sessions still open, for /metrics.
  virtual Result<int64_t> count_open_sessions() = 0;

  // Audit chain. append computes prev_hash/hash from the current tail.
  virtual Result<audit::Row> append_audit(int64_t at_ms, std::string_view actor,
                                          std::string_view action, int64_t request_id,
                                          std::string_view detail_json) = 0;
  /// Rows with seq > after_seq in seq order, at most `limit` (limit<=0: all).
  virtual Result<std::vector<audit::Row>> read_audit(int64_t after_seq, int limit) = 0;
};

/// Opens (creating if needed) the SQLite database at `path` in WAL mode with
/// synchronous=FULL, creates the schema, and checks its version.
Result<std::unique_ptr<Store>> open_sqlite(const std::string& path);

}  // namespace hoop::store
