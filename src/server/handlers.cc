#include "server/handlers.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core/string.hpp>
#include <nlohmann/json.hpp>

#include "api/types.h"
#include "common/duration.h"
#include "common/escape.h"

namespace hoop::server {

namespace {

using nlohmann::json;
namespace beast = boost::beast;

Error bad(std::string msg) { return make_error(Errc::invalid_argument, std::move(msg)); }

HttpResponse base_response(http::status st, std::string_view content_type) {
  HttpResponse res{st, 11};
  res.set(http::field::server, "hoopd");
  res.set(http::field::content_type, content_type);
  // Answers carry requests, reviewers and audit rows: no cache may keep them.
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  return res;
}

HttpResponse json_response(http::status st, const json& body) {
  HttpResponse res = base_response(st, "application/json");
  // Strings came through our own parser and are valid UTF-8; `replace` only
  // guarantees that dumping can never throw.
  res.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
  res.body() += '\n';
  res.prepare_payload();
  return res;
}

HttpResponse result_response(const Result<api::Request>& r, http::status ok = http::status::ok) {
  if (!r) return error_response(status_for(r.error().code), r.error());
  return json_response(ok, api::to_json(*r));
}

/// Hands `res` to `send` once everything written so far is durable. If the
/// commit failed, what `res` reports was rolled back: answer 503 instead.
void reply_durable(Service& service, const Send& send, HttpResponse res) {
  service.on_durable([send, res = std::move(res)](Status st) mutable {
    if (!st) {
      send(error_response(http::status::service_unavailable,
                          make_error(Errc::unavailable, "storage failure, nothing was changed: " +
                                                            st.error().message)));
      return;
    }
    send(std::move(res));
  });
}

void reply_error(Service& service, const Send& send, const Error& e) {
  reply_durable(service, send, error_response(status_for(e.code), e));
}

// A decimal count: digits only, no sign, no leading zero, at most 18 digits
// (so it fits int64_t). Returns nullopt for anything else.
std::optional<int64_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 18 || (s[0] == '0' && s.size() > 1)) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<int64_t> parse_id(std::string_view s) {
  auto v = parse_decimal(s);
  if (!v || *v <= 0) return std::nullopt;
  return v;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    const int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
    if (lo < 0) return bad("bad percent-encoding in the query string");
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  if (!is_clean_text(out)) return bad("query parameter contains control characters");
  return out;
}

using Params = std::map<std::string, std::string, std::less<>>;

/// Splits and decodes "a=1&b=2", refusing names not in `allowed` and repeats.
Result<Params> parse_query(std::string_view q, std::initializer_list<std::string_view> allowed) {
  Params out;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    std::string_view item = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    auto key = percent_decode(item.substr(0, eq));
    if (!key) return key.error();
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1));
    if (!value) return value.error();
    if (std::find(allowed.begin(), allowed.end(), *key) == allowed.end())
      return bad("unknown query parameter '" + escape_for_terminal(*key) + "'");
    if (!out.emplace(*key, *value).second)
      return bad("query parameter '" + *key + "' given twice");
  }
  return out;
}

Result<int> parse_limit(const Params& p, int fallback) {
  auto it = p.find("limit");
  if (it == p.end()) return fallback;
  auto v = parse_decimal(it->second);
  if (!v || *v < 1 || *v > 1000) return bad("limit must be a number from 1 to 1000");
  return static_cast<int>(*v);
}

/// The JSON body of a POST; an empty body counts as {} where `empty_ok`.
Result<json> body_json(const HttpRequest& req, bool empty_ok) {
  if (req.body().empty()) {
    if (empty_ok) return json::object();
    return bad("request body must be a JSON object");
  }
  auto j = api::parse_json_text(req.body());
  if (!j) return j.error();
  if (!j->is_object()) return bad("request body must be a JSON object");
  return j;
}

json audit_row_json(const audit::Row& r) {
  // `detail` stays the exact string that was hashed, so a client can
  // recompute the chain from what it received.
  return json{{"seq", r.seq},           {"at", r.at_ms},
              {"actor", r.actor},       {"action", r.action},
              {"request_id", r.request_id}, {"detail", r.detail},
              {"prev_hash", r.prev_hash},   {"hash", r.hash}};
}

enum class Route {
  healthz, metrics, whoami, requests, request, approve, deny, cancel, use, audit,
  sessions, session, transcript, complete, none
};

struct Match {
  Route route = Route::none;
  std::string_view id;  // the {id} segment, unparsed
};

Match match_path(std::string_view path) {
  if (path == "/healthz") return {Route::healthz, {}};
  if (path == "/metrics") return {Route::metrics, {}};
  if (path == "/v1/whoami") return {Route::whoami, {}};
  if (path == "/v1/audit") return {Route::audit, {}};
  if (path == "/v1/requests") return {Route::requests, {}};
  if (path == "/v1/sessions") return {Route::sessions, {}};
  constexpr std::string_view kRequests = "/v1/requests/", kSessions = "/v1/sessions/";
  const bool session = path.starts_with(kSessions);
  if (!session && !path.starts_with(kRequests)) return {};
  std::string_view rest = path.substr(session ? kSessions.size() : kRequests.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return {session ? Route::session : Route::request, rest};
  const std::string_view id = rest.substr(0, slash), verb = rest.substr(slash + 1);
  if (session) {
    if (verb == "transcript") return {Route::transcript, id};
    if (verb == "complete") return {Route::complete, id};
    return {};
  }
  if (verb == "approve") return {Route::approve, id};
  if (verb == "deny") return {Route::deny, id};
  if (verb == "cancel") return {Route::cancel, id};
  if (verb == "use") return {Route::use, id};
  return {};
}

/// Methods each route answers; anything else is 405 with this Allow list.
const char* allowed_methods(Route r) {
  switch (r) {
    case Route::requests: return "GET, POST";
    case Route::transcript: return "GET, PUT";
    case Route::approve:
    case Route::deny:
    case Route::cancel:
    case Route::use:
    case Route::complete: return "POST";
    default: return "GET";
  }
}

bool method_allowed(Route r, http::verb m) {
  if (r == Route::requests) return m == http::verb::get || m == http::verb::post;
  if (r == Route::transcript) return m == http::verb::get || m == http::verb::put;
  if (r == Route::approve || r == Route::deny || r == Route::cancel || r == Route::use || r == Route::complete)
    return m == http::verb::post;
  return m == http::verb::get;
}

/// GET /v1/requests/{id}, with `?wait=` a long-poll (returns its handle).
Service::WaitHandle get_request(HandlerContext& ctx, const Principal& who, int64_t id,
                                std::string_view query, const Send& send) {
  auto fail = [&](const Error& e) {
    reply_error(ctx.service, send, e);
    return Service::WaitHandle();
  };
  auto params = parse_query(query, {"wait", "state"});
  if (!params) return fail(params.error());
  auto wait_it = params->find("wait");
  if (wait_it == params->end()) {
    reply_durable(ctx.service, send, result_response(ctx.service.get_request(who, id)));
    return nullptr;
  }
  auto wait = parse_duration(wait_it->second);
  if (!wait) return fail(wait.error());
  api::State seen = api::State::pending;
  if (auto st = params->find("state"); st != params->end()) {
    auto s = api::parse_state(st->second);
    if (!s) return fail(bad("unknown state '" + escape_for_terminal(st->second) + "'"));
    seen = *s;
  }
  const auto timeout = std::min(*wait, ctx.cfg.max_wait);
  // The Service runs `done` only once what it reports is durable (its
  // contract), so the answer goes out at once: no second trip through
  // on_durable, which could add a commit's latency to every wake-up.
  return ctx.service.wait_for_change(who, id, seen, timeout,
                                     [send](Result<api::Request> r) { send(result_response(r)); });
}

// The filters both lists share: user, host, before (an id of `kind`), limit.
Status parse_list_filters(const Params& p, const char* kind, std::optional<std::string>& user,
                          std::optional<std::string>& host,
                          int64_t& before_id, int& limit) {
  if (auto it = p.find("user"); it != p.end()) {
    if (!api::is_valid_name(it->second)) return bad("user must be a valid user name");
    user = it->second;
  }
  if (auto it = p.find("host"); it != p.end()) {
    if (!api::is_valid_host(it->second)) return bad("host must be a valid host name");
    host = it->second;
  }
  if (auto it = p.find("before"); it != p.end()) {
    auto v = parse_id(it->second);
    if (!v) return bad(std::string("before must be a ") + kind + " id");
    before_id = *v;
  }
  auto l = parse_limit(p, 100);
  if (!l) return l.error();
  limit = *l;
  return {};
}

void list_requests(HandlerContext& ctx, const Principal& who, std::string_view query, const Send& send) {
  auto p = parse_query(query, {"state", "user", "host", "before", "limit"});
  if (!p) return reply_error(ctx.service, send, p.error());
  ListQuery q;
  if (auto it = p->find("state"); it != p->end()) {
    q.state = api::parse_state(it->second);
    if (!q.state) return reply_error(ctx.service, send, bad("unknown state '" + escape_for_terminal(it->second) + "'"));
  }
  if (auto st = parse_list_filters(*p, "request", q.user, q.host, q.before_id, q.limit); !st)
    return reply_error(ctx.service, send, st.error());
  auto r = ctx.service.list_requests(who, q);
  if (!r) return reply_error(ctx.service, send, r.error());
  json arr = json::array();
  for (const auto& req : *r) arr.push_back(api::to_json(req));
  reply_durable(ctx.service, send, json_response(http::status::ok, json{{"requests", std::move(arr)}}));
}

void read_audit(HandlerContext& ctx, const Principal& who, std::string_view query, const Send& send) {
  auto p = parse_query(query, {"after", "limit"});
  if (!p) return reply_error(ctx.service, send, p.error());
  int64_t after = 0;
  if (auto it = p->find("after"); it != p->end()) {
    auto v = parse_decimal(it->second);
    if (!v) return reply_error(ctx.service, send, bad("after must be an audit sequence number"));
    after = *v;
  }
  auto limit = parse_limit(*p, 1000);
  if (!limit) return reply_error(ctx.service, send, limit.error());
  auto rows = ctx.service.read_audit(who, after, *limit);
  if (!rows) return reply_error(ctx.service, send, rows.error());
  json arr = json::array();
  for (const auto& r : *rows) arr.push_back(audit_row_json(r));
  reply_durable(ctx.service, send, json_response(http::status::ok, json{{"rows", std::move(arr)}}));
}

// ---- sessions ----

/// An error answer; a conflict on a session also carries the length the
/// server holds, so the host knows where to resume.
void reply_session_error(HandlerContext& ctx, const Principal& who, int64_t id, const Error& e, const Send& send) {
  json body = api::error_json(e);
  if (e.code == Errc::conflict)
    if (auto len = ctx.service.transcript_length(who, id); len) body["error"]["length"] = *len;
  reply_durable(ctx.service, send, json_response(status_for(e.code), body));
}

Result<uint64_t> parse_offset(const Params& p, bool required) {
  auto it = p.find("offset");
  if (it == p.end()) {
    if (required) return bad("offset is required (the byte offset of the body in the transcript)");
    return uint64_t{0};
  }
  auto v = parse_decimal(it->second);
  if (!v) return bad("offset must be a byte offset (a decimal number)");
  return static_cast<uint64_t>(*v);
}

void list_sessions(HandlerContext& ctx, const Principal& who, std::string_view query, const Send& send) {
  auto p = parse_query(query, {"state", "user", "host", "before", "limit"});
  if (!p) return reply_error(ctx.service, send, p.error());
  SessionQuery q;
  if (auto it = p->find("state"); it != p->end()) {
    q.state = api::parse_session_state(it->second);
    if (!q.state) return reply_error(ctx.service, send, bad("state must be open or complete"));
  }
  if (auto st = parse_list_filters(*p, "session", q.user, q.host, q.before_id, q.limit); !st)
    return reply_error(ctx.service, send, st.error());
  auto r = ctx.service.list_sessions(who, q);
  if (!r) return reply_error(ctx.service, send, r.error());
  json arr = json::array();
  for (const auto& s : *r) arr.push_back(api::to_json(s));
  reply_durable(ctx.service, send, json_response(http::status::ok, json{{"sessions", std::move(arr)}}));
}

/// PUT /v1/sessions/{id}/transcript?offset=N: raw bytes (at most
/// api::kMaxChunkBytes, enforced while reading: body_limit_for).
void put_transcript(HandlerContext& ctx, const Principal& who, int64_t id, std::string_view query,
                    const HttpRequest& req, const Send& send) {
  auto p = parse_query(query, {"offset"});
  if (!p) return reply_error(ctx.service, send, p.error());
  auto offset = parse_offset(*p, /*required=*/true);
  if (!offset) return reply_error(ctx.service, send, offset.error());
  if (auto ct = req.find(http::field::content_type);
      ct != req.end() && !beast::iequals(ct->value(), "application/octet-stream"))
    return reply_error(ctx.service, send, bad("a transcript body is application/octet-stream"));
  if (req.body().size() > api::kMaxChunkBytes)
    return reply_error(ctx.service, send, make_error(Errc::too_large, "transcript chunk is larger than 4 MiB"));
  auto len = ctx.service.append_transcript(who, id, *offset, req.body());
  if (!len) return reply_session_error(ctx, who, id, len.error(), send);
  reply_durable(ctx.service, send, json_response(http::status::ok, json{{"length", *len}}));
}

/// GET /v1/sessions/{id}/transcript?offset=N[&wait=D]: raw bytes, with the
/// session's state and length in headers. Always answered through the
/// transcript waiters (at once when there is something to say).
Service::WaitHandle get_transcript(HandlerContext& ctx, const Principal& who, int64_t id, std::string_view query,
                                   const Send& send) {
  auto fail = [&](const Error& e) {
    reply_error(ctx.service, send, e);
    return Service::WaitHandle();
  };
  auto p = parse_query(query, {"offset", "wait"});
  if (!p) return fail(p.error());
  auto offset = parse_offset(*p, /*required=*/false);
  if (!offset) return fail(offset.error());
  std::chrono::milliseconds timeout{0};
  if (auto it = p->find("wait"); it != p->end()) {
    auto wait = parse_duration(it->second);
    if (!wait) return fail(wait.error());
    timeout = std::min(*wait, ctx.cfg.max_wait);
  }
  // The Service answers only once what it reports is durable (as for the
  // request long-poll), so the answer goes out at once.
  return ctx.service.wait_for_transcript(
      who, id, *offset, timeout, [&ctx, who, id, send](Result<TranscriptChunk> r) {
        if (!r) {
          json body = api::error_json(r.error());
          if (r.error().code == Errc::conflict)
            if (auto len = ctx.service.transcript_length(who, id); len) body["error"]["length"] = *len;
          return send(json_response(status_for(r.error().code), body));
        }
        HttpResponse res = base_response(http::status::ok, "application/octet-stream");
        res.set("Hoop-Session-State", api::session_state_name(r->session.state));
        res.set("Hoop-Session-Length", std::to_string(r->session.length));
        res.body() = std::move(r->bytes);
        res.prepare_payload();
        send(std::move(res));
      });
}

void complete_session(HandlerContext& ctx, const Principal& who, int64_t id, const HttpRequest& req,
                      const Send& send) {
  auto body = body_json(req, /*empty_ok=*/false);
  if (!body) return reply_error(ctx.service, send, body.error());
  auto c = api::parse_completion(*body);
  if (!c) return reply_error(ctx.service, send, c.error());
  auto s = ctx.service.complete_session(who, id, *c);
  if (!s) return reply_session_error(ctx, who, id, s.error(), send);
  reply_durable(ctx.service, send, json_response(http::status::ok, api::to_json(*s)));
}

/// POST /v1/requests/{id}/{approve,deny,cancel,use}.
void act(HandlerContext& ctx, const Principal& who, Route route, int64_t id, const HttpRequest& req,
         const Send& send) {
  auto body = body_json(req, /*empty_ok=*/true);
  if (!body) return reply_error(ctx.service, send, body.error());
  Result<api::Request> r = make_error(Errc::internal, "unrouted");
  if (route == Route::approve || route == Route::deny) {
    auto comment = api::parse_comment(*body, /*required=*/route == Route::deny);
    if (!comment) return reply_error(ctx.service, send, comment.error());
    r = route == Route::approve ? ctx.service.approve(who, id, *comment) : ctx.service.deny(who, id, *comment);
  } else if (route == Route::cancel) {
    std::string user;
    for (auto it = body->begin(); it != body->end(); ++it) {
      if (it.key() != "user") return reply_error(ctx.service, send, bad("unknown field '" + escape_for_terminal(it.key()) + "'"));
      if (!it->is_string() || !api::is_valid_name(it->get_ref<const std::string&>()))
        return reply_error(ctx.service, send, bad("field 'user' must be a valid user name"));
      user = it->get<std::string>();
    }
    r = ctx.service.cancel(who, id, user);
  } else {
    if (!body->empty()) return reply_error(ctx.service, send, bad("the body of /use must be {}"));
    r = ctx.service.record_use(who, id);
  }
  reply_durable(ctx.service, send, result_response(r));
}

}  // namespace

http::status status_for(Errc code) {
  switch (code) {
    case Errc::invalid_argument: return http::status::bad_request;
    case Errc::unauthenticated: return http::status::unauthorized;
    case Errc::permission_denied: return http::status::forbidden;
    case Errc::not_found: return http::status::not_found;
    case Errc::conflict: return http::status::conflict;
    case Errc::too_large: return http::status::payload_too_large;
    case Errc::unavailable:
    case Errc::timeout: return http::status::service_unavailable;
    case Errc::io:
    case Errc::internal: return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

HttpResponse error_response(http::status status, const Error& e) {
  HttpResponse res = json_response(status, api::error_json(e));
  if (status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer");
  return res;
}

bool is_clean_request(const HttpRequest& req) {
  // Targets are ASCII by RFC 3986 (anything else is percent-encoded).
  for (unsigned char c : req.target())
    if (c <= 0x20 || c >= 0x7f) return false;
  for (const auto& f : req) {
    for (unsigned char c : f.value())
      if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

size_t body_limit_for(http::verb method, std::string_view target) {
  if (method != http::verb::put) return api::kMaxBodyBytes;
  const std::string_view path = target.substr(0, target.find('?'));
  return match_path(path).route == Route::transcript ? api::kMaxChunkBytes : api::kMaxBodyBytes;
}

Service::WaitHandle handle_request(HandlerContext& ctx, HttpRequest&& req, Send send) {
  if (!is_clean_request(req)) {
    send(error_response(http::status::bad_request, bad("control characters in the request line or headers")));
    return nullptr;
  }
  const std::string_view target = req.target();
  const size_t qmark = target.find('?');
  const std::string_view path = target.substr(0, qmark);
  const std::string_view query = qmark == std::string_view::npos ? std::string_view{} : target.substr(qmark + 1);

  const Match m = match_path(path);
  if (m.route == Route::none) {
    send(error_response(http::status::not_found, make_error(Errc::not_found, "no such endpoint; see docs/API.md")));
    return nullptr;
  }
  if (!method_allowed(m.route, req.method())) {
    HttpResponse res = error_response(http::status::method_not_allowed,
                                      bad(std::string("method not allowed; use ") + allowed_methods(m.route)));
    res.set(http::field::allow, allowed_methods(m.route));
    send(std::move(res));
    return nullptr;
  }
  if (m.route == Route::healthz) {
    send(json_response(http::status::ok, json{{"status", "ok"}}));
    return nullptr;
  }
  if (m.route == Route::metrics) {
    HttpResponse res = base_response(http::status::ok, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = ctx.metrics.render(ctx.service);
    res.prepare_payload();
    send(std::move(res));
    return nullptr;
  }

  // Everything under /v1 needs a credential, and answers after the commit.
  auto auth = req.find(http::field::authorization);
  if (auth == req.end() || req.count(http::field::authorization) != 1) {
    reply_error(ctx.service, send,
                make_error(Errc::unauthenticated, "send exactly one 'Authorization: Bearer <token>' header"));
    return nullptr;
  }
  auto who = ctx.service.authenticate(auth->value());
  if (!who) {
    reply_error(ctx.service, send, who.error());
    return nullptr;
  }

  const bool on_session =
      m.route == Route::session || m.route == Route::transcript || m.route == Route::complete;
  std::optional<int64_t> id;
  if (!m.id.empty() || m.route == Route::request || m.route == Route::session) {
    id = parse_id(m.id);
    if (!id) {
      reply_error(ctx.service, send,
                  make_error(Errc::not_found, std::string("no such ") + (on_session ? "session" : "request") +
                                                  " (ids are positive integers)"));
      return nullptr;
    }
  }
  const bool takes_query = m.route == Route::request || m.route == Route::requests || m.route == Route::audit ||
                           m.route == Route::sessions || m.route == Route::transcript;
  if (!takes_query && !query.empty()) {
    reply_error(ctx.service, send, bad("this endpoint takes no query parameters"));
    return nullptr;
  }

  switch (m.route) {
    case Route::whoami:
      reply_durable(ctx.service, send,
                    json_response(http::status::ok, json{{"kind", store::token_kind_name(who->kind)},
                                                         {"name", who->name},
                                                         {"token", who->token_id}}));
      return nullptr;
    case Route::requests:
      if (req.method() == http::verb::get) {
        list_requests(ctx, *who, query, send);
        return nullptr;
      }
      if (!query.empty()) {
        reply_error(ctx.service, send, bad("POST /v1/requests takes no query parameters"));
        return nullptr;
      }
      if (auto body = body_json(req, /*empty_ok=*/false); !body) {
        reply_error(ctx.service, send, body.error());
      } else if (auto nr = api::parse_new_request(*body); !nr) {
        reply_error(ctx.service, send, nr.error());
      } else {
        reply_durable(ctx.service, send,
                      result_response(ctx.service.create_request(*who, *nr), http::status::created));
      }
      return nullptr;
    case Route::request: return get_request(ctx, *who, *id, query, send);
    case Route::audit: read_audit(ctx, *who, query, send); return nullptr;
    case Route::sessions: list_sessions(ctx, *who, query, send); return nullptr;
    case Route::session: {
      auto s = ctx.service.get_session(*who, *id);
      if (!s) {
        reply_error(ctx.service, send, s.error());
      } else {
        reply_durable(ctx.service, send, json_response(http::status::ok, api::to_json(*s)));
      }
      return nullptr;
    }
    case Route::transcript:
      if (req.method() == http::verb::get) return get_transcript(ctx, *who, *id, query, send);
      put_transcript(ctx, *who, *id, query, req, send);
      return nullptr;
    case Route::complete: complete_session(ctx, *who, *id, req, send); return nullptr;
    default: act(ctx, *who, m.route, *id, req, send); return nullptr;
  }
}

}  // namespace hoop::server
