#include "api/types.h"

#include <nlohmann/json.hpp>

#include "common/escape.h"

namespace hoop::api {

using nlohmann::json;

const char* state_name(State s) {
  switch (s) {
    case State::pending: return "pending";
    case State::approved: return "approved";
    case State::denied: return "denied";
    case State::cancelled: return "cancelled";
    case State::expired: return "expired";
  }
  return "pending";
}

std::optional<State> parse_state(std::string_view s) {
  for (State st : {State::pending, State::approved, State::denied, State::cancelled, State::expired})
    if (s == state_name(st)) return st;
  return std::nullopt;
}

const char* session_state_name(SessionState s) {
  return s == SessionState::complete ? "complete" : "open";
}

std::optional<SessionState> parse_session_state(std::string_view s) {
  if (s == "open") return SessionState::open;
  if (s == "complete") return SessionState::complete;
  return std::nullopt;
}

int Request::approvals_count() const {
  int n = 0;
  for (const auto& d : decisions)
    if (d.approve) ++n;
  return n;
}

bool is_valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] == '-' || s[0] == '.') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || (c == '$' && i + 1 == s.size() && i > 0);
    if (!ok) return false;
  }
  return true;
}

bool is_valid_host(std::string_view s) {
  if (s.empty() || s.size() > 253 || s[0] == '-' || s[0] == '.') return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

Error bad(std::string msg) { return make_error(Errc::invalid_argument, std::move(msg)); }

// Reads an optional string field. Missing is fine (keeps `out`); any other
// type, an over-long value or a NUL byte is an error naming the field.
Status get_string(const json& j, const char* key, size_t max, std::string& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) return bad(std::string("field '") + key + "' must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max)
    return make_error(Errc::too_large, std::string("field '") + key + "' is longer than " +
                                           std::to_string(max) + " bytes");
  if (s.find('\0') != std::string::npos) return bad(std::string("field '") + key + "' contains a NUL byte");
  out = s;
  return {};
}

// One-line text (names, reasons, comments, paths): no control characters.
Status get_clean(const json& j, const char* key, size_t max, std::string& out) {
  if (auto st = get_string(j, key, max, out); !st) return st;
  if (!is_clean_text(out)) return bad(std::string("field '") + key + "' contains control characters");
  return {};
}

Status check_keys(const json& j, std::initializer_list<const char*> allowed) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* a : allowed) known = known || it.key() == a;
    if (!known) return bad("unknown field '" + escape_for_terminal(it.key()) + "'");
  }
  return {};
}

}  // namespace

Result<NewRequest> parse_new_request(const json& j) {
  if (!j.is_object()) return bad("request body must be a JSON object");
  if (auto st = check_keys(j, {"user", "run_as", "argv", "path", "digest", "cwd", "tty", "reason", "use"}); !st)
    return st.error();
  NewRequest r;
  if (auto u = j.find("use"); u != j.end()) {
    if (!u->is_boolean()) return bad("field 'use' must be true or false");
    r.use = u->get<bool>();
  }
  if (auto st = get_clean(j, "user", 64, r.user); !st) return st.error();
  if (!is_valid_name(r.user)) return bad("field 'user' must be a valid user name");
  if (auto st = get_clean(j, "run_as", 64, r.run_as); !st) return st.error();
  if (!is_valid_name(r.run_as)) return bad("field 'run_as' must be a valid user name");

  auto av = j.find("argv");
  if (av == j.end() || !av->is_array() || av->empty()) return bad("field 'argv' must be a non-empty array of strings");
  if (av->size() > kMaxArgc) return make_error(Errc::too_large, "argv has more than " + std::to_string(kMaxArgc) + " elements");
  size_t total = 0;
  for (const auto& e : *av) {
    if (!e.is_string()) return bad("field 'argv' must contain only strings");
    const auto& s = e.get_ref<const std::string&>();
    if (s.find('\0') != std::string::npos) return bad("argv element contains a NUL byte");
    total += s.size() + 1;
    if (total > kMaxArgvBytes)
      return make_error(Errc::too_large, "argv is longer than " + std::to_string(kMaxArgvBytes) + " bytes");
    r.argv.push_back(s);
  }
  if (r.argv[0].empty()) return bad("argv[0] is empty");

  if (auto st = get_clean(j, "path", kMaxPathBytes, r.path); !st) return st.error();
  if (r.path.empty() || r.path[0] != '/') return bad("field 'path' must be an absolute path");
  if (auto st = get_clean(j, "digest", 64, r.digest); !st) return st.error();
  if (r.digest.size() != 64 || r.digest.find_first_not_of("0123456789abcdef") != std::string::npos)
    return bad("field 'digest' must be 64 lowercase hex digits (SHA-256)");
  if (auto st = get_clean(j, "cwd", kMaxPathBytes, r.cwd); !st) return st.error();
  if (auto st = get_clean(j, "tty", kMaxPathBytes, r.tty); !st) return st.error();
  if (auto st = get_clean(j, "reason", kMaxTextBytes, r.reason); !st) return st.error();
  return r;
}

json to_json(const NewRequest& r) {
  json j{{"user", r.user}, {"run_as", r.run_as}, {"argv", r.argv}, {"path", r.path},
         {"digest", r.digest}, {"cwd", r.cwd}, {"tty", r.tty}, {"reason", r.reason}};
  // Sent only when set, so a client keeps working with a server that
  // predates sessions (it refuses unknown fields).
  if (r.use) j["use"] = true;
  return j;
}

json to_json(const Session& s) {
  return json{{"id", s.id},
              {"request_id", s.request_id},
              {"host", s.host},
              {"user", s.user},
              {"run_as", s.run_as},
              {"argv", s.argv},
              {"rule", s.rule},
              {"record", s.record},
              {"mask", s.mask},
              {"state", session_state_name(s.state)},
              {"length", s.length},
              {"sha256", s.sha256},
              {"exit_status", s.exit_status ? json(*s.exit_status) : json(nullptr)},
              {"started_at", s.started_at_ms},
              {"ended_at", s.ended_at_ms}};
}

Result<Session> parse_session(const json& j) {
  try {
    if (!j.is_object()) return bad("server answer is not a JSON object");
    Session s;
    s.id = j.at("id").get<int64_t>();
    s.request_id = j.at("request_id").get<int64_t>();
    s.host = j.at("host").get<std::string>();
    s.user = j.at("user").get<std::string>();
    s.run_as = j.value("run_as", "");
    s.argv = j.value("argv", std::vector<std::string>{});
    s.rule = j.value("rule", "");
    s.record = j.value("record", std::string(kRecordRequired));
    if (s.record != kRecordRequired && s.record != kRecordBestEffort)
      return bad("server answer has an unknown record mode");
    s.mask = j.value("mask", std::vector<std::string>{});
    auto st = parse_session_state(j.at("state").get<std::string>());
    if (!st) return bad("server answer has an unknown session state");
    s.state = *st;
    s.length = j.at("length").get<uint64_t>();
    s.sha256 = j.value("sha256", "");
    if (auto e = j.find("exit_status"); e != j.end() && !e->is_null()) s.exit_status = e->get<int>();
    s.started_at_ms = j.value("started_at", int64_t{0});
    s.ended_at_ms = j.value("ended_at", int64_t{0});
    return s;
  } catch (const json::exception& e) {
    return bad(std::string("malformed session object from server: ") + e.what());
  }
}

Result<Completion> parse_completion(const json& j) {
  if (!j.is_object()) return bad("request body must be a JSON object");
  if (auto st = check_keys(j, {"length", "sha256", "exit_status"}); !st) return st.error();
  Completion c;
  auto len = j.find("length");
  if (len == j.end() || !len->is_number_integer() || (!len->is_number_unsigned() && len->get<int64_t>() < 0))
    return bad("field 'length' must be a non-negative integer");
  c.length = len->get<uint64_t>();
  auto sha = j.find("sha256");
  if (sha == j.end() || !sha->is_string()) return bad("field 'sha256' must be a string");
  c.sha256 = sha->get<std::string>();
  if (c.sha256.size() != 64 || c.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
    return bad("field 'sha256' must be 64 lowercase hex digits");
  if (auto e = j.find("exit_status"); e != j.end() && !e->is_null()) {
    if (!e->is_number_integer()) return bad("field 'exit_status' must be an integer or null");
    const int64_t v = e->get<int64_t>();
    if (v < -1'000'000 || v > 1'000'000) return bad("field 'exit_status' is out of range");
    c.exit_status = static_cast<int>(v);
  }
  return c;
}

json to_json(const Request& r) {
  json decisions = json::array();
  for (const auto& d : r.decisions)
    decisions.push_back({{"reviewer", d.reviewer}, {"verdict", d.approve ? "approve" : "deny"},
                         {"comment", d.comment}, {"at", d.at_ms}});
  json j{{"id", r.id}, {"host", r.host}, {"user", r.user}, {"run_as", r.run_as},
              {"argv", r.argv}, {"path", r.path}, {"digest", r.digest}, {"cwd", r.cwd},
              {"tty", r.tty}, {"reason", r.reason}, {"state", state_name(r.state)},
              {"rule", r.rule}, {"action", r.action}, {"reviewers", r.reviewers},
              {"approvals_required", r.approvals_required}, {"decisions", decisions},
              {"grant_ttl_ms", r.grant_ttl_ms}, {"created_at", r.created_at_ms},
              {"expires_at", r.expires_at_ms}, {"decided_at", r.decided_at_ms},
              {"decided_by", r.decided_by}, {"grant_expires_at", r.grant_expires_at_ms},
              {"uses", r.uses}, {"record", r.record}};
  if (r.session) j["session"] = to_json(*r.session);
  return j;
}

Result<Request> parse_request(const json& j) {
  // Server answers are trusted for shape only; every field is still checked
  // for type so a broken or hostile server gives an error, not a crash.
  try {
    if (!j.is_object()) return bad("server answer is not a JSON object");
    Request r;
    r.id = j.at("id").get<int64_t>();
    r.host = j.at("host").get<std::string>();
    r.user = j.at("user").get<std::string>();
    r.run_as = j.at("run_as").get<std::string>();
    r.argv = j.at("argv").get<std::vector<std::string>>();
    r.path = j.value("path", "");
    r.digest = j.value("digest", "");
    r.cwd = j.value("cwd", "");
    r.tty = j.value("tty", "");
    r.reason = j.value("reason", "");
    auto st = parse_state(j.at("state").get<std::string>());
    if (!st) return bad("server answer has an unknown state");
    r.state = *st;
    r.rule = j.value("rule", "");
    r.action = j.value("action", "");
    r.reviewers = j.value("reviewers", std::vector<std::string>{});
    r.approvals_required = j.value("approvals_required", 0);
    for (const auto& d : j.value("decisions", json::array())) {
      Decision dec;
      dec.reviewer = d.at("reviewer").get<std::string>();
      dec.approve = d.at("verdict").get<std::string>() == "approve";
      dec.comment = d.value("comment", "");
      dec.at_ms = d.value("at", int64_t{0});
      r.decisions.push_back(std::move(dec));
    }
    r.grant_ttl_ms = j.value("grant_ttl_ms", int64_t{0});
    r.created_at_ms = j.value("created_at", int64_t{0});
    r.expires_at_ms = j.value("expires_at", int64_t{0});
    r.decided_at_ms = j.value("decided_at", int64_t{0});
    r.decided_by = j.value("decided_by", "");
    r.grant_expires_at_ms = j.value("grant_expires_at", int64_t{0});
    r.uses = j.value("uses", int64_t{0});
    r.record = j.value("record", std::string(kRecordRequired));
    if (auto s = j.find("session"); s != j.end() && !s->is_null()) {
      auto sess = parse_session(*s);
      if (!sess) return sess.error();
      r.session = std::move(*sess);
    }
    return r;
  } catch (const json::exception& e) {
    return bad(std::string("malformed request object from server: ") + e.what());
  }
}

Result<std::string> parse_comment(const json& j, bool required) {
  if (!j.is_object()) return bad("request body must be a JSON object");
  if (auto st = check_keys(j, {"comment"}); !st) return st.error();
  std::string c;
  if (auto st = get_clean(j, "comment", kMaxTextBytes, c); !st) return st.error();
  if (required && c.empty()) return bad("a comment is required");
  return c;
}

json error_json(const Error& e) {
  return json{{"error", {{"code", errc_name(e.code)}, {"message", e.message}}}};
}

Result<json> parse_json_text(std::string_view text, size_t max_bytes) {
  if (text.size() > max_bytes)
    return make_error(Errc::too_large, "body is larger than " + std::to_string(max_bytes) + " bytes");
  // Depth is bounded by the callback so nested arrays cannot exhaust the stack.
  constexpr int kMaxDepth = 32;
  bool too_deep = false;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t, json&) {
    if (depth > kMaxDepth) too_deep = true;
    return !too_deep;
  };
  json j = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (too_deep) return bad("JSON nested too deeply");
  if (j.is_discarded()) return bad("body is not valid JSON");
  return j;
}

}  // namespace hoop::api
