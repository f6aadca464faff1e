// The embedded SQLite backend of Store: one file in WAL mode, durable
// commits (synchronous=FULL), every statement prepared once and cached.
//
// MUST: every write outside begin() runs in its own BEGIN IMMEDIATE, so the
// audit chain (appended by hoopd and by `hoopd token create`) cannot fork;
// the cached audit tail is trusted only inside the transaction that read it;
// no exception leaves this file.
//
// Schema and SQL text: sqlite_schema.h; row decoding: sqlite_rows.h.

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>

#include "store/sqlite_query.h"
#include "store/sqlite_rows.h"
#include "store/sqlite_schema.h"
#include "store/store.h"

namespace hoop::store {

const char* token_kind_name(TokenKind k) {
  return k == TokenKind::host ? "host" : "user";
}

namespace {

using namespace sqlite;  // NOLINT: the store's private helpers

struct Tail {
  int64_t seq = 0;
  std::string hash;
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override {
    for (auto* s : stmts_) sqlite3_finalize(s);
    for (auto* s : list_stmts_) sqlite3_finalize(s);
    for (auto* s : list_sessions_stmts_) sqlite3_finalize(s);
    sqlite3_close_v2(db_);  // rolls back a batch that was never committed
  }
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Status begin() override {
    if (in_transaction()) return make_error(Errc::internal, "storage: begin() while a transaction is open");
    return tx_begin(kBeginWrite);
  }

  Status commit() override {
    tail_.reset();
    if (auto st = exec(kCommit, "commit"); !st) {
      // Fail closed: a batch that did not become durable must not linger and
      // be committed later with the next one.
      if (in_transaction()) (void)exec(kRollback, "rollback");
      return st;
    }
    return {};
  }

  void rollback() override {
    tail_.reset();
    if (in_transaction()) (void)exec(kRollback, "rollback");
  }

  // The truth is SQLite's: an I/O error or SQLITE_FULL rolls the whole
  // transaction back on its own, and then we are no longer in one.
  bool in_transaction() const override { return sqlite3_get_autocommit(db_) == 0; }

  Status savepoint() override {
    if (!in_transaction()) return make_error(Errc::internal, "storage: savepoint() outside begin()");
    return exec(kSavepoint, "savepoint");
  }
  Status release() override { return exec(kRelease, "release savepoint"); }
  void rollback_to() override {
    tail_.reset();  // the undone op may have appended audit rows
    if (exec(kRollbackTo, "rollback to savepoint")) (void)exec(kRelease, "release savepoint");
  }

  Status insert_token(const Token& t) override {
    return atomically([&]() -> Status {
      auto s = stmt(kInsertToken);
      if (!s) return s.error();
      Query q(*s);
      q.bind(1, t.id);
      q.bind(2, std::string_view(token_kind_name(t.kind)));
      q.bind(3, t.name);
      q.bind(4, t.secret_hash);
      q.bind(5, t.note);
      q.bind(6, t.created_at_ms);
      q.bind(7, t.revoked_at_ms);
      const int rc = q.step();
      if (is_unique_violation(rc)) return make_error(Errc::conflict, "token id " + t.id + " already exists");
      if (rc != SQLITE_DONE) return db_error(db_, rc, "insert token");
      return {};
    });
  }

  Result<std::optional<Token>> find_token(std::string_view id) override {
    auto s = stmt(kFindToken);
    if (!s) return s.error();
    Query q(*s);
    q.bind(1, id);
    const int rc = q.step();
    if (rc == SQLITE_DONE) return std::optional<Token>();
    if (rc != SQLITE_ROW) return db_error(db_, rc, "find token");
    auto t = read_token(q);
    if (!t) return t.error();
    return std::optional<Token>(std::move(t.value()));
  }

  Result<std::vector<Token>> list_tokens() override {
    auto s = stmt(kListTokens);
    if (!s) return s.error();
    Query q(*s);
    std::vector<Token> out;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      auto t = read_token(q);
      if (!t) return t.error();
      out.push_back(std::move(t.value()));
    }
    if (rc != SQLITE_DONE) return db_error(db_, rc, "list tokens");
    return out;
  }

  Status revoke_token(std::string_view id, int64_t at_ms) override {
    // revoked_at = 0 means active, so 0 cannot be a revocation time.
    if (at_ms <= 0) return make_error(Errc::invalid_argument, "revocation time must be positive");
    return atomically([&]() -> Status {
      {
        auto s = stmt(kRevokeToken);
        if (!s) return s.error();
        Query q(*s);
        q.bind(1, id);
        q.bind(2, at_ms);
        if (const int rc = q.step(); rc != SQLITE_DONE) return db_error(db_, rc, "revoke token");
        if (sqlite3_changes(db_) == 1) return {};
      }
      auto s = stmt(kTokenExists);
      if (!s) return s.error();
      Query q(*s);
      q.bind(1, id);
      const int rc = q.step();
      if (rc == SQLITE_ROW)
        return make_error(Errc::conflict, "token " + std::string(id) + " is already revoked");
      if (rc == SQLITE_DONE) return make_error(Errc::not_found, "no token with id " + std::string(id));
      return db_error(db_, rc, "revoke token");
    });
  }

  Result<int64_t> insert_request(const api::Request& r) override {
    auto argv = encode_strings(r.argv, "argv");
    if (!argv) return argv.error();
    auto reviewers = encode_strings(r.reviewers, "reviewers");
    if (!reviewers) return reviewers.error();
    return atomically([&]() -> Result<int64_t> {
      auto s = stmt(kInsertRequest);
      if (!s) return s.error();
      int64_t id = 0;
      {
        Query q(*s);
        q.bind(1, r.host);
        q.bind(2, r.user);
        q.bind(3, r.run_as);
        q.bind(4, *argv);
        q.bind(5, r.path);
        q.bind(6, r.digest);
        q.bind(7, r.cwd);
        q.bind(8, r.tty);
        q.bind(9, r.reason);
        q.bind(10, std::string_view(api::state_name(r.state)));
        q.bind(11, r.rule);
        q.bind(12, r.action);
        q.bind(13, *reviewers);
        q.bind(14, static_cast<int64_t>(r.approvals_required));
        q.bind(15, r.grant_ttl_ms);
        q.bind(16, r.created_at_ms);
        q.bind(17, r.expires_at_ms);
        q.bind(18, r.decided_at_ms);
        q.bind(19, r.decided_by);
        q.bind(20, r.grant_expires_at_ms);
        q.bind(21, r.uses);
        q.bind(22, r.record);
        if (const int rc = q.step(); rc != SQLITE_DONE) return db_error(db_, rc, "insert request");
        id = sqlite3_last_insert_rowid(db_);
      }
      for (const auto& d : r.decisions)
        if (auto st = insert_decision(id, d); !st) return st.error();
      return id;
    });
  }

  Result<std::optional<api::Request>> get_request(int64_t id) override {
    return snapshot([&]() -> Result<std::optional<api::Request>> {
      auto s = stmt(kGetRequest);
      if (!s) return s.error();
      Query q(*s);
      q.bind(1, id);
      const int rc = q.step();
      if (rc == SQLITE_DONE) return std::optional<api::Request>();
      if (rc != SQLITE_ROW) return db_error(db_, rc, "get request");
      auto r = read_request(q);
      if (!r) return r.error();
      if (auto st = load_decisions(*r); !st) return st.error();
      return std::optional<api::Request>(std::move(r.value()));
    });
  }

  Status update_request(const api::Request& r) override {
    auto s = stmt(kUpdateRequest);
    if (!s) return s.error();
    Query q(*s);
    q.bind(1, r.id);
    q.bind(2, std::string_view(api::state_name(r.state)));
    q.bind(3, r.decided_at_ms);
    q.bind(4, r.decided_by);
    q.bind(5, r.grant_expires_at_ms);
    q.bind(6, r.uses);
    // One statement: atomic on its own, even outside begin().
    if (const int rc = q.step(); rc != SQLITE_DONE) return db_error(db_, rc, "update request");
    if (sqlite3_changes(db_) != 1)
      return make_error(Errc::not_found, "no request with id " + std::to_string(r.id));
    return {};
  }

  Status add_decision(int64_t request_id, const api::Decision& d) override {
    return insert_decision(request_id, d);  // one statement: atomic on its own
  }

  Result<std::vector<api::Request>> list_requests(const RequestFilter& f) override {
    const size_t mask = (f.state ? 1u : 0u) | (f.user ? 2u : 0u) | (f.host ? 4u : 0u);
    return snapshot([&]() -> Result<std::vector<api::Request>> {
      auto s = list_stmt(mask);
      if (!s) return s.error();
      return read_requests(*s, "list requests", [&](Query& q) {
        q.bind(1, f.before_id > 0 ? f.before_id : std::numeric_limits<int64_t>::max());
        if (f.state) q.bind(2, std::string_view(api::state_name(*f.state)));
        if (f.user) q.bind(3, *f.user);
        if (f.host) q.bind(4, *f.host);
        q.bind(5, static_cast<int64_t>(std::clamp(f.limit, 1, 1000)));
      });
    });
  }

  Result<std::vector<api::Request>> live_grants(const GrantKey& k, int64_t now_ms) override {
    // argv is compared in its stored encoding, so only exact matches come back.
    auto argv = encode_strings(k.argv, "argv");
    if (!argv) return argv.error();
    return snapshot([&]() -> Result<std::vector<api::Request>> {
      auto s = stmt(kLiveGrants);
      if (!s) return s.error();
      return read_requests(*s, "live grants", [&](Query& q) {
        q.bind(1, k.host);
        q.bind(2, k.user);
        q.bind(3, k.digest);
        q.bind(4, k.run_as);
        q.bind(5, k.path);
        q.bind(6, *argv);
        q.bind(7, now_ms);
      });
    });
  }

  Result<std::vector<int64_t>> pending_due(int64_t now_ms, int limit) override {
    auto s = stmt(kPendingDue);
    if (!s) return s.error();
    Query q(*s);
    q.bind(1, now_ms);
    q.bind(2, static_cast<int64_t>(limit > 0 ? limit : -1));
    std::vector<int64_t> out;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) out.push_back(q.i64(0));
    if (rc != SQLITE_DONE) return db_error(db_, rc, "pending due");
    return out;
  }

  Result<int64_t> count_requests(std::optional<api::State> state) override {
    auto s = stmt(state ? kCountState : kCountAll);
    if (!s) return s.error();
    Query q(*s);
    if (state) q.bind(1, std::string_view(api::state_name(*state)));
    const int rc = q.step();
    if (rc != SQLITE_ROW) return db_error(db_, rc, "count requests");
    return q.i64(0);
  }

  Result<int64_t> insert_session(const SessionRecord& rec) override {
    const api::Session& ss = rec.session;
    auto argv = encode_strings(ss.argv, "argv");
    if (!argv) return argv.error();
    auto mask = encode_strings(ss.mask, "mask");
    if (!mask) return mask.error();
    auto reviewers = encode_strings(rec.reviewers, "reviewers");
    if (!reviewers) return reviewers.error();
    auto s = stmt(kInsertSession);
    if (!s) return s.error();
    Query q(*s);
    q.bind(1, ss.request_id);
    q.bind(2, ss.host);
    q.bind(3, ss.user);
    q.bind(4, ss.run_as);
    q.bind(5, *argv);
    q.bind(6, ss.rule);
    q.bind(7, ss.record);
    q.bind(8, *mask);
    q.bind(9, *reviewers);
    q.bind(10, ss.started_at_ms);
    // One statement: atomic on its own, even outside begin().
    const int rc = q.step();
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
      return make_error(Errc::not_found, "no request with id " + std::to_string(ss.request_id));
    if (rc != SQLITE_DONE) return db_error(db_, rc, "insert session");
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
  }

  Result<std::optional<SessionRecord>> get_session(int64_t id) override {
    auto s = stmt(kGetSession);
    if (!s) return s.error();
    Query q(*s);
    q.bind(1, id);
    const int rc = q.step();
    if (rc == SQLITE_DONE) return std::optional<SessionRecord>();
    if (rc != SQLITE_ROW) return db_error(db_, rc, "get session");
    auto r = read_session(q);
    if (!r) return r.error();
    return std::optional<SessionRecord>(std::move(r.value()));
  }

  Status complete_session(const api::Session& ss) override {
    if (ss.length > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return make_error(Errc::invalid_argument, "session length out of range");
    auto s = stmt(kCompleteSession);
    if (!s) return s.error();
    Query q(*s);
    q.bind(1, ss.id);
    q.bind(2, static_cast<int64_t>(ss.length));
    q.bind(3, ss.sha256);
    if (ss.exit_status)
      q.bind(4, static_cast<int64_t>(*ss.exit_status));
    else
      q.bind_null(4);
    q.bind(5, ss.ended_at_ms);
    if (const int rc = q.step(); rc != SQLITE_DONE) return db_error(db_, rc, "complete session");
    if (sqlite3_changes(db_) != 1)
      return make_error(Errc::conflict, "session " + std::to_string(ss.id) + " is not open");
    return {};
  }

  Result<std::vector<SessionRecord>> list_sessions(const SessionFilter& f) override {
    const size_t mask = (f.state ? 1u : 0u) | (f.user ? 2u : 0u) | (f.host ? 4u : 0u);
    auto s = list_sessions_stmt(mask);
    if (!s) return s.error();
    Query q(*s);
    q.bind(1, f.before_id > 0 ? f.before_id : std::numeric_limits<int64_t>::max());
    if (f.state) q.bind(2, std::string_view(api::session_state_name(*f.state)));
    if (f.user) q.bind(3, *f.user);
    if (f.host) q.bind(4, *f.host);
    q.bind(5, static_cast<int64_t>(std::clamp(f.limit, 1, 1000)));
    std::vector<SessionRecord> out;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      auto r = read_session(q);
      if (!r) return r.error();
      out.push_back(std::move(r.value()));
    }
    if (rc != SQLITE_DONE) return db_error(db_, rc, "list sessions");
    return out;
  }

  Result<int64_t> count_open_sessions() override {
    auto s = stmt(kCountOpenSessions);
    if (!s) return s.error();
    Query q(*s);
    const int rc = q.step();
    if (rc != SQLITE_ROW) return db_error(db_, rc, "count sessions");
    return q.i64(0);
  }

  Result<audit::Row> append_audit(int64_t at_ms, std::string_view actor, std::string_view action,
                                  int64_t request_id, std::string_view detail_json) override {
    return atomically([&]() -> Result<audit::Row> {
      if (!tail_) {
        auto s = stmt(kAuditTail);
        if (!s) return s.error();
        Query q(*s);
        const int rc = q.step();
        if (rc == SQLITE_ROW)
          tail_ = Tail{q.i64(0), q.text(1)};
        else if (rc == SQLITE_DONE)
          tail_ = Tail{0, audit::kGenesisHash};
        else
          return db_error(db_, rc, "read audit tail");
      }
      audit::Row row{tail_->seq + 1,      at_ms,      std::string(actor),
                     std::string(action), request_id, std::string(detail_json),
                     tail_->hash,         ""};
      row.hash = audit::row_hash(row);
      auto s = stmt(kInsertAudit);
      if (!s) return s.error();
      Query q(*s);
      q.bind(1, row.seq);
      q.bind(2, row.at_ms);
      q.bind(3, row.actor);
      q.bind(4, row.action);
      q.bind(5, row.request_id);
      q.bind(6, row.detail);
      q.bind(7, row.prev_hash);
      q.bind(8, row.hash);
      if (const int rc = q.step(); rc != SQLITE_DONE) {
        tail_.reset();
        return db_error(db_, rc, "append audit row");
      }
      tail_ = Tail{row.seq, row.hash};
      return row;
    });
  }

  Result<std::vector<audit::Row>> read_audit(int64_t after_seq, int limit) override {
    auto s = stmt(kReadAudit);
    if (!s) return s.error();
    Query q(*s);
    q.bind(1, after_seq);
    q.bind(2, static_cast<int64_t>(limit > 0 ? limit : -1));  // LIMIT -1: no limit
    std::vector<audit::Row> out;
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) out.push_back(read_row(q));
    if (rc != SQLITE_DONE) return db_error(db_, rc, "read audit");
    return out;
  }

 private:
  Result<sqlite3_stmt*> prepare(sqlite3_stmt*& slot, const char* sql) {
    if (slot != nullptr) return slot;
    const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot, nullptr);
    if (rc != SQLITE_OK) {
      slot = nullptr;
      return db_error(db_, rc, "prepare");
    }
    return slot;
  }
  // Steps a SELECT of request rows (bound by `bind`), then loads each row's
  // decisions once that statement has been reset.
  template <class Bind>
  Result<std::vector<api::Request>> read_requests(sqlite3_stmt* st, const char* what, Bind&& bind) {
    std::vector<api::Request> out;
    {
      Query q(st);
      bind(q);
      int rc;
      while ((rc = q.step()) == SQLITE_ROW) {
        auto r = read_request(q);
        if (!r) return r.error();
        out.push_back(std::move(r.value()));
      }
      if (rc != SQLITE_DONE) return db_error(db_, rc, what);
    }
    for (auto& r : out)
      if (auto st2 = load_decisions(r); !st2) return st2.error();
    return out;
  }

  Result<sqlite3_stmt*> stmt(Q q) { return prepare(stmts_[q], kSql[q]); }
  Result<sqlite3_stmt*> list_stmt(size_t mask) {
    if (list_stmts_[mask] != nullptr) return list_stmts_[mask];
    return prepare(list_stmts_[mask], list_sql(mask).c_str());
  }
  Result<sqlite3_stmt*> list_sessions_stmt(size_t mask) {
    if (list_sessions_stmts_[mask] != nullptr) return list_sessions_stmts_[mask];
    return prepare(list_sessions_stmts_[mask], list_sessions_sql(mask).c_str());
  }

  // Runs a statement that returns no rows.
  Status exec(Q which, const char* what) {
    auto s = stmt(which);
    if (!s) return s.error();
    Query q(*s);
    const int rc = q.step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return db_error(db_, rc, what);
    return {};
  }

  Status tx_begin(Q which) {
    tail_.reset();  // another process may have appended since our last transaction
    return exec(which, "begin");
  }

  // Runs `f` inside the caller's transaction, or inside its own
  // BEGIN IMMEDIATE ... COMMIT when there is none.
  template <class F>
  auto atomically(F&& f) -> decltype(f()) {
    if (in_transaction()) return f();
    if (auto st = tx_begin(kBeginWrite); !st) return st.error();
    auto r = f();
    if (!r.ok()) {
      rollback();
      return r;
    }
    if (auto st = commit(); !st) return st.error();
    return r;
  }

  // Several reads that must see one snapshot (a request and its decisions).
  template <class F>
  auto snapshot(F&& f) -> decltype(f()) {
    if (in_transaction()) return f();
    if (auto st = tx_begin(kBeginRead); !st) return st.error();
    auto r = f();
    rollback();  // read-only: ends the snapshot, nothing to undo
    return r;
  }

  Status insert_decision(int64_t request_id, const api::Decision& d) {
    auto s = stmt(kInsertDecision);
    if (!s) return s.error();
    Query q(*s);
    q.bind(1, request_id);
    q.bind(2, d.reviewer);
    q.bind(3, static_cast<int64_t>(d.approve ? 1 : 0));
    q.bind(4, d.comment);
    q.bind(5, d.at_ms);
    const int rc = q.step();
    if (rc == SQLITE_DONE) return {};
    if (is_unique_violation(rc))
      return make_error(Errc::conflict,
                        d.reviewer + " already decided on request " + std::to_string(request_id));
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
      return make_error(Errc::not_found, "no request with id " + std::to_string(request_id));
    return db_error(db_, rc, "add decision");
  }

  Status load_decisions(api::Request& r) {
    auto s = stmt(kDecisionsOf);
    if (!s) return s.error();
    Query q(*s);
    q.bind(1, r.id);
    r.decisions.clear();
    int rc;
    while ((rc = q.step()) == SQLITE_ROW)
      r.decisions.push_back(api::Decision{q.text(0), q.i64(1) != 0, q.text(2), q.i64(3)});
    if (rc != SQLITE_DONE) return db_error(db_, rc, "read decisions");
    return {};
  }

  sqlite3* db_;
  std::array<sqlite3_stmt*, kNumQ> stmts_{};
  std::array<sqlite3_stmt*, kListVariants> list_stmts_{};
  std::array<sqlite3_stmt*, kListVariants> list_sessions_stmts_{};
  // The audit tail (seq, hash) read in the current transaction. Valid only
  // while that transaction holds the write lock; cleared at every boundary.
  std::optional<Tail> tail_;
};

// The database holds token hashes and the audit trail: owner-only. SQLite
// creates files 0644 & ~umask and gives -wal/-shm the mode of the database,
// so creating (or tightening) the main file first covers all three.
Status make_private(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return {};
  }
  if (errno != EEXIST)
    return make_error(Errc::unavailable, "storage: cannot create " + path + ": " + std::strerror(errno));
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string p = path + suffix;
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) continue;  // -wal/-shm need not exist
    if ((st.st_mode & 077) != 0 && ::chmod(p.c_str(), st.st_mode & 0700) != 0)
      return make_error(
          Errc::unavailable,
          "storage: " + p + " is open to group or others and chmod failed: " + std::strerror(errno));
  }
  return {};
}

// Runs one statement and returns the first column of its first row.
Result<std::string> pragma(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
  if (rc != SQLITE_OK) return db_error(db, rc, sql);
  std::string out;
  {
    Query q(s);
    rc = q.step();
    if (rc == SQLITE_ROW) out = q.text(0);
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(db, rc, sql);
  return out;
}

// ":memory:" is for tests of the layers above: no file, so no WAL either.
constexpr std::string_view kMemory = ":memory:";

Status setup(sqlite3* db, const std::string& path) {
  // busy_timeout first: the other statements may already need the lock.
  for (const char* sql : {"PRAGMA busy_timeout = 5000", "PRAGMA foreign_keys = ON",
                          "PRAGMA synchronous = FULL", "PRAGMA trusted_schema = OFF"})
    if (auto r = pragma(db, sql); !r) return r.error();
  auto mode = pragma(db, "PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  if (*mode != (path == kMemory ? "memory" : "wal"))
    return make_error(Errc::unavailable, "storage: " + path + ": cannot use WAL mode (journal_mode is " +
                                             *mode + "); is it on a network file system?");

  auto version = [&]() -> Result<int64_t> {
    auto v = pragma(db, "PRAGMA user_version");
    if (!v) return v.error();
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size())
      return make_error(Errc::internal, "storage: " + path + ": unreadable user_version");
    return n;
  };
  auto v = version();
  if (!v) return v.error();
  if (*v >= 0 && *v < kSchemaVersion) {
    // IMMEDIATE, then look again: two processes may open (or upgrade) the
    // file at once. Creation and every migration commit together.
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return db_error(db, rc, "create schema");
    v = version();
    if (!v) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return v.error();
    }
    if (*v == 0) rc = sqlite3_exec(db, kSchema, nullptr, nullptr, nullptr);
    for (int64_t from = std::max<int64_t>(*v, 1); rc == SQLITE_OK && from < kSchemaVersion; ++from)
      rc = sqlite3_exec(db, kMigrations[from - 1], nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      Error e = db_error(db, rc, "create or upgrade schema");
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return e;
    }
    v = version();
    if (!v) return v.error();
  }
  if (*v > kSchemaVersion)
    return make_error(Errc::unavailable, "storage: " + path + " has schema version " + std::to_string(*v) +
                                             ", newer than this hoopd understands (" +
                                             std::to_string(kSchemaVersion) + "); run a newer hoopd");
  if (*v != kSchemaVersion)
    return make_error(Errc::internal,
                      "storage: " + path + " has unknown schema version " + std::to_string(*v));
  return {};
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite(const std::string& path) {
  if (path != kMemory)
    if (auto st = make_private(path); !st) return st.error();
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error e = db_error(db, rc, "open " + path);
    sqlite3_close_v2(db);
    return e;
  }
  sqlite3_extended_result_codes(db, 1);  // tell UNIQUE from FOREIGN KEY violations
  if (auto st = setup(db, path); !st) {
    sqlite3_close_v2(db);
    return st.error();
  }
  return std::unique_ptr<Store>(std::make_unique<SqliteStore>(db));
}

}  // namespace hoop::store
