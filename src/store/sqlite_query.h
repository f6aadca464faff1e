#pragma once
// Private to the SQLite store: one bound use of a cached prepared statement,
// and the mapping of SQLite result codes to hoop::Error.

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace hoop::store::sqlite {

/// Busy and I/O failures are the storage being unavailable (503, retry
/// later); anything else means the database or our SQL is wrong.
inline Error db_error(sqlite3* db, int rc, std::string_view what) {
  Errc code = Errc::internal;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_READONLY:
      code = Errc::unavailable;
      break;
    default:
      break;
  }
  // errmsg describes the most recent failure on `db`, which is this one: the
  // store runs on one thread and formats the error before the next call.
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return make_error(code, "storage: " + std::string(what) + ": " + msg);
}

/// One use of a prepared statement. The destructor resets it, so a reader
/// never keeps its WAL snapshot (and the checkpointer) pinned after the call,
/// and clears the bindings, which point at caller-owned strings.
class Query {
 public:
  explicit Query(sqlite3_stmt* s) : s_(s) {}
  ~Query() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  // Text is bound without copying (SQLITE_STATIC): the caller's strings
  // outlive the Query. A null data() would bind SQL NULL, hence the "".
  void bind(int i, std::string_view v) {
    keep(sqlite3_bind_text64(s_, i, v.data() != nullptr ? v.data() : "", v.size(), SQLITE_STATIC,
                             SQLITE_UTF8));
  }
  void bind(int i, int64_t v) { keep(sqlite3_bind_int64(s_, i, v)); }
  void bind_null(int i) { keep(sqlite3_bind_null(s_, i)); }

  /// SQLITE_ROW, SQLITE_DONE, or the first error (binding errors included).
  int step() { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(s_); }

  int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    if (p == nullptr) return {};
    return std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col)));
  }

 private:
  void keep(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  sqlite3_stmt* s_;
  int bind_rc_ = SQLITE_OK;
};

}  // namespace hoop::store::sqlite
