#pragma once
// Private to the SQLite store: the schema and the text of every statement the
// store prepares. A new file gets version 1 (kSchema) and then every
// migration in order (kMigrations), so old and new files end up identical.
// Bump kSchemaVersion with each migration; older hoopd binaries then refuse
// the file.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace hoop::store::sqlite {

inline constexpr int64_t kSchemaVersion = 2;

// `requests_due` is partial: only pending rows are in it, so it stays small
// and costs nothing once a request is decided. pending_due names it (the
// planner, without statistics, would rather sort the state index) and
// repeats its WHERE clause literally, which INDEXED BY requires.
inline constexpr const char* kSchema = R"sql(
CREATE TABLE tokens (
  id TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('host', 'user')),
  name TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  note TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER NOT NULL
);
CREATE TABLE requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  host TEXT NOT NULL, user TEXT NOT NULL, run_as TEXT NOT NULL,
  argv TEXT NOT NULL, path TEXT NOT NULL, digest TEXT NOT NULL,
  cwd TEXT NOT NULL, tty TEXT NOT NULL, reason TEXT NOT NULL,
  state TEXT NOT NULL, rule TEXT NOT NULL, action TEXT NOT NULL,
  reviewers TEXT NOT NULL, approvals_required INTEGER NOT NULL, grant_ttl_ms INTEGER NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, decided_at INTEGER NOT NULL,
  decided_by TEXT NOT NULL, grant_expires_at INTEGER NOT NULL, uses INTEGER NOT NULL
);
CREATE INDEX requests_state ON requests(state);
CREATE INDEX requests_user ON requests(user);
CREATE INDEX requests_host ON requests(host);
CREATE INDEX requests_due ON requests(expires_at) WHERE state = 'pending';
CREATE INDEX requests_grants ON requests(host, user, digest, argv) WHERE state = 'approved';
CREATE TABLE decisions (
  request_id INTEGER NOT NULL REFERENCES requests(id),
  reviewer TEXT NOT NULL, approve INTEGER NOT NULL, comment TEXT NOT NULL, at INTEGER NOT NULL,
  UNIQUE (request_id, reviewer)
);
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  request_id INTEGER NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
PRAGMA user_version = 1;
)sql";

// kMigrations[i] takes a file from version i + 1 to i + 2.
// 2: the request's recording mode, and sessions (one per use of a grant).
// The transcript bytes are files beside the database; `length` here is
// written only at completion (while open, the file's size is the truth).
inline constexpr const char* kMigrations[] = {R"sql(
ALTER TABLE requests ADD COLUMN record TEXT NOT NULL DEFAULT 'required';
CREATE TABLE sessions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id INTEGER NOT NULL REFERENCES requests(id),
  host TEXT NOT NULL, user TEXT NOT NULL, run_as TEXT NOT NULL, argv TEXT NOT NULL,
  rule TEXT NOT NULL, record TEXT NOT NULL, mask TEXT NOT NULL, reviewers TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'complete')),
  length INTEGER NOT NULL, sha256 TEXT NOT NULL, exit_status INTEGER,
  started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user);
CREATE INDEX sessions_host ON sessions(host);
CREATE INDEX sessions_request ON sessions(request_id);
CREATE INDEX sessions_open ON sessions(id) WHERE state = 'open';
PRAGMA user_version = 2;
)sql"};
static_assert(std::size(kMigrations) == kSchemaVersion - 1);

#define HOOP_REQUEST_COLS                                                                         \
  "id, host, user, run_as, argv, path, digest, cwd, tty, reason, state, rule, action, "           \
  "reviewers, approvals_required, grant_ttl_ms, created_at, expires_at, decided_at, decided_by, " \
  "grant_expires_at, uses, record"
#define HOOP_TOKEN_COLS "id, kind, name, secret_hash, note, created_at, revoked_at"
#define HOOP_SESSION_COLS                                                                        \
  "id, request_id, host, user, run_as, argv, rule, record, mask, reviewers, state, length, sha256, " \
  "exit_status, started_at, ended_at"
#define HOOP_AUDIT_COLS "seq, at, actor, action, request_id, detail, prev_hash, hash"

// Every fixed statement, prepared on first use and kept for the life of the
// connection. The index into this table is the Q enum below.
enum Q : size_t {
  kBeginWrite,
  kBeginRead,
  kCommit,
  kRollback,
  kSavepoint,
  kRelease,
  kRollbackTo,
  kInsertToken,
  kFindToken,
  kListTokens,
  kRevokeToken,
  kTokenExists,
  kInsertRequest,
  kGetRequest,
  kUpdateRequest,
  kInsertDecision,
  kDecisionsOf,
  kPendingDue,
  kLiveGrants,
  kCountAll,
  kCountState,
  kAuditTail,
  kInsertAudit,
  kReadAudit,
  kInsertSession,
  kGetSession,
  kCompleteSession,
  kCountOpenSessions,
  kNumQ
};
inline constexpr std::array<const char*, kNumQ> kSql = {
    "BEGIN IMMEDIATE",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT op",
    "RELEASE op",
    "ROLLBACK TO op",
    "INSERT INTO tokens (" HOOP_TOKEN_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    "SELECT " HOOP_TOKEN_COLS " FROM tokens WHERE id = ?1",
    "SELECT " HOOP_TOKEN_COLS " FROM tokens ORDER BY created_at, id",
    "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at = 0",
    "SELECT 1 FROM tokens WHERE id = ?1",
    "INSERT INTO requests (host, user, run_as, argv, path, digest, cwd, tty, reason, state, rule, "
    "action, reviewers, approvals_required, grant_ttl_ms, created_at, expires_at, decided_at, "
    "decided_by, grant_expires_at, uses, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
    "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
    "SELECT " HOOP_REQUEST_COLS " FROM requests WHERE id = ?1",
    "UPDATE requests SET state = ?2, decided_at = ?3, decided_by = ?4, grant_expires_at = ?5, "
    "uses = ?6 WHERE id = ?1",
    "INSERT INTO decisions (request_id, reviewer, approve, comment, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    "SELECT reviewer, approve, comment, at FROM decisions WHERE request_id = ?1 ORDER BY at, rowid",
    "SELECT id FROM requests INDEXED BY requests_due WHERE state = 'pending' AND expires_at <= ?1 "
    "ORDER BY expires_at, id LIMIT ?2",
    "SELECT " HOOP_REQUEST_COLS " FROM requests INDEXED BY requests_grants WHERE state = 'approved' "
    "AND host = ?1 AND user = ?2 AND digest = ?3 AND run_as = ?4 AND path = ?5 "
    "AND argv = ?6 AND grant_expires_at > ?7 ORDER BY id DESC LIMIT 50",
    "SELECT count(*) FROM requests",
    "SELECT count(*) FROM requests WHERE state = ?1",
    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    "INSERT INTO audit (" HOOP_AUDIT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    "SELECT " HOOP_AUDIT_COLS " FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    "INSERT INTO sessions (request_id, host, user, run_as, argv, rule, record, mask, reviewers, state, "
    "length, sha256, exit_status, started_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
    "'open', 0, '', NULL, ?10, 0)",
    "SELECT " HOOP_SESSION_COLS " FROM sessions WHERE id = ?1",
    "UPDATE sessions SET state = 'complete', length = ?2, sha256 = ?3, exit_status = ?4, ended_at = ?5 "
    "WHERE id = ?1 AND state = 'open'",
    "SELECT count(*) FROM sessions WHERE state = 'open'",
};

// list_requests: one statement per combination of filters (state, user,
// host), so each gets its own plan and index instead of one catch-all scan.
inline constexpr size_t kListVariants = 8;

inline std::string list_sql(size_t mask) {
  std::string sql = "SELECT " HOOP_REQUEST_COLS " FROM requests WHERE id < ?1";
  if (mask & 1) sql += " AND state = ?2";
  if (mask & 2) sql += " AND user = ?3";
  if (mask & 4) sql += " AND host = ?4";
  return sql + " ORDER BY id DESC LIMIT ?5";
}

inline std::string list_sessions_sql(size_t mask) {
  std::string sql = "SELECT " HOOP_SESSION_COLS " FROM sessions WHERE id < ?1";
  if (mask & 1) sql += " AND state = ?2";
  if (mask & 2) sql += " AND user = ?3";
  if (mask & 4) sql += " AND host = ?4";
  return sql + " ORDER BY id DESC LIMIT ?5";
}

#undef HOOP_SESSION_COLS
#undef HOOP_REQUEST_COLS
#undef HOOP_TOKEN_COLS
#undef HOOP_AUDIT_COLS

}  // namespace hoop::store::sqlite
