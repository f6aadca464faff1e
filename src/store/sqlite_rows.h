#pragma once
// Private to the SQLite store: turning result rows into Token, Request and
// audit::Row, and string lists into the JSON text stored in a column.
// Values read back are checked: a file edited by hand yields an error, never
// a guessed value.

#include <sqlite3.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/types.h"
#include "audit/chain.h"
#include "common/error.h"
#include "store/sqlite_query.h"
#include "store/store.h"

namespace hoop::store::sqlite {

inline bool is_unique_violation(int rc) {
  return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY;
}

// JSON text of a string list. Strict UTF-8: silently replacing bytes would
// change an argv that a grant is pinned to.
inline Result<std::string> encode_strings(const std::vector<std::string>& v, const char* field) {
  try {
    return nlohmann::json(v).dump();
  } catch (const nlohmann::json::exception&) {
    return make_error(Errc::invalid_argument, std::string(field) + " is not valid UTF-8");
  }
}

inline Result<std::vector<std::string>> decode_strings(const std::string& text, const char* field,
                                                       int64_t id) {
  auto bad = [&] {
    return make_error(Errc::internal, "storage: request " + std::to_string(id) + ": stored " + field +
                                          " is not a JSON array of strings");
  };
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return bad();
  std::vector<std::string> out;
  out.reserve(j.size());
  for (const auto& e : j) {
    if (!e.is_string()) return bad();
    out.push_back(e.get_ref<const std::string&>());
  }
  return out;
}

// Fails closed on an unknown kind: guessing one could turn a host
// credential into a personal one that may approve.
inline Result<Token> read_token(const Query& q) {
  Token t;
  t.id = q.text(0);
  const std::string kind = q.text(1);
  if (kind != "host" && kind != "user")
    return make_error(Errc::internal, "storage: token " + t.id + ": unknown kind");
  t.kind = kind == "host" ? TokenKind::host : TokenKind::user;
  t.name = q.text(2);
  t.secret_hash = q.text(3);
  t.note = q.text(4);
  t.created_at_ms = q.i64(5);
  t.revoked_at_ms = q.i64(6);
  return t;
}

inline audit::Row read_row(const Query& q) {
  audit::Row r;
  r.seq = q.i64(0);
  r.at_ms = q.i64(1);
  r.actor = q.text(2);
  r.action = q.text(3);
  r.request_id = q.i64(4);
  r.detail = q.text(5);
  r.prev_hash = q.text(6);
  r.hash = q.text(7);
  return r;
}

// Without decisions; the caller adds them.
inline Result<api::Request> read_request(const Query& q) {
  api::Request r;
  r.id = q.i64(0);
  r.host = q.text(1);
  r.user = q.text(2);
  r.run_as = q.text(3);
  auto argv = decode_strings(q.text(4), "argv", r.id);
  if (!argv) return argv.error();
  r.argv = std::move(argv.value());
  r.path = q.text(5);
  r.digest = q.text(6);
  r.cwd = q.text(7);
  r.tty = q.text(8);
  r.reason = q.text(9);
  const auto state = api::parse_state(q.text(10));
  if (!state)
    return make_error(Errc::internal, "storage: request " + std::to_string(r.id) + ": unknown state");
  r.state = *state;
  r.rule = q.text(11);
  r.action = q.text(12);
  auto reviewers = decode_strings(q.text(13), "reviewers", r.id);
  if (!reviewers) return reviewers.error();
  r.reviewers = std::move(reviewers.value());
  r.approvals_required = static_cast<int>(q.i64(14));
  r.grant_ttl_ms = q.i64(15);
  r.created_at_ms = q.i64(16);
  r.expires_at_ms = q.i64(17);
  r.decided_at_ms = q.i64(18);
  r.decided_by = q.text(19);
  r.grant_expires_at_ms = q.i64(20);
  r.uses = q.i64(21);
  r.record = q.text(22);
  if (r.record != api::kRecordRequired && r.record != api::kRecordBestEffort)
    return make_error(Errc::internal, "storage: request " + std::to_string(r.id) + ": unknown record mode");
  return r;
}

inline Result<SessionRecord> read_session(const Query& q) {
  SessionRecord rec;
  api::Session& s = rec.session;
  s.id = q.i64(0);
  s.request_id = q.i64(1);
  s.host = q.text(2);
  s.user = q.text(3);
  s.run_as = q.text(4);
  auto argv = decode_strings(q.text(5), "argv", s.id);
  if (!argv) return argv.error();
  s.argv = std::move(argv.value());
  s.rule = q.text(6);
  s.record = q.text(7);
  auto mask = decode_strings(q.text(8), "mask", s.id);
  if (!mask) return mask.error();
  s.mask = std::move(mask.value());
  auto reviewers = decode_strings(q.text(9), "reviewers", s.id);
  if (!reviewers) return reviewers.error();
  rec.reviewers = std::move(reviewers.value());
  const auto state = api::parse_session_state(q.text(10));
  const int64_t length = q.i64(11);
  if (!state || length < 0 || (s.record != api::kRecordRequired && s.record != api::kRecordBestEffort))
    return make_error(Errc::internal, "storage: session " + std::to_string(s.id) + ": malformed row");
  s.state = *state;
  s.length = static_cast<uint64_t>(length);
  s.sha256 = q.text(12);
  if (!q.is_null(13)) s.exit_status = static_cast<int>(q.i64(13));
  s.started_at_ms = q.i64(14);
  s.ended_at_ms = q.i64(15);
  return rec;
}

}  // namespace hoop::store::sqlite
