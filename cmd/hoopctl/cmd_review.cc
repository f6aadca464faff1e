// Reviewer verbs: list, show, approve, deny, cancel, whoami.
// MUST: run only after main() dropped privilege for good; connect() checks
//       again and refuses to go on while still elevated.
// MUST: read everything the caller controls (HOOP_SERVER, HOOP_CA,
//       HOOP_TOKEN, the token file, --server/--ca) only here, after the drop.
//       That is why reviewers may point hoopctl at another server: nothing
//       privileged is left to misuse. The run path must never honour them.
// MUST NOT: print another person's text except through output.h.

#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "api/types.h"
#include "client/client.h"
#include "client/credentials.h"
#include "commands.h"
#include "common/escape.h"
#include "config/host_config.h"
#include "output.h"
#include "reviewer.h"
#include "sys/privilege.h"
#include "sys/secure_file.h"

namespace hoop::ctl {

namespace {
constexpr const char* kHostConfig = HOOP_SYSCONFDIR "/hoop.toml";
constexpr size_t kMaxConfigBytes = size_t{64} * 1024;
constexpr const char* kStates[] = {"pending", "approved", "denied", "cancelled", "expired"};

}  // namespace

void add_common(CLI::App& sub, Common& c, bool with_json) {
  sub.add_option("--server", c.server,
                 "hoopd URL (default: $HOOP_SERVER, else `server` in " + std::string(kHostConfig) + ")");
  sub.add_option("--ca", c.ca,
                 "CA bundle for hoopd's certificate (default: $HOOP_CA, else `ca` in hoop.toml)");
  sub.add_option("--client-cert", c.client_cert,
                 "your certificate, when hoopd requires client certificates (default: $HOOP_CLIENT_CERT)");
  sub.add_option("--client-key", c.client_key,
                 "its private key, if not in the same PEM file (default: $HOOP_CLIENT_KEY)");
  if (with_json) sub.add_flag("--json", c.json, "print the server's JSON instead of a table");
}

namespace {

// A missing local file is not a missing request: keep exit status 5 for the
// server's not_found only.
Error local(Error e) {
  if (e.code == Errc::not_found) e.code = Errc::io;
  return e;
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

}  // namespace

Result<Reviewer> connect(const Common& c) {
  if (sys::is_elevated())
    return make_error(Errc::internal,
                      "still running with privilege in a reviewer verb; refusing (this is a bug)");
  auto caller = sys::current_caller();
  if (!caller) return local(caller.error());

  std::string server = !c.server.empty() ? c.server : env("HOOP_SERVER") ? env("HOOP_SERVER") : "";
  std::string ca = !c.ca.empty() ? c.ca : env("HOOP_CA") ? env("HOOP_CA") : "";
  const bool server_given = !server.empty(), ca_given = !ca.empty();
  if (!server_given || !ca_given) {
    auto text = sys::read_root_owned_file(kHostConfig, kMaxConfigBytes);
    if (text) {
      auto cfg = config::parse_host_config(*text, kHostConfig);
      if (!cfg) return make_error(Errc::io, cfg.error().message);
      if (!server_given) server = cfg->server;
      if (!ca_given) ca = cfg->ca;
    } else if (text.error().code == Errc::not_found && !server_given) {
      return make_error(Errc::io, std::string("no host config at ") + kHostConfig +
                                      "; ask an admin to set up hoop on this host, or give --server URL");
    } else if (text.error().code != Errc::not_found) {
      return local(text.error());
    }
  }
  if (server.empty())
    return make_error(Errc::io,
                      std::string("no `server` in ") + kHostConfig + "; ask an admin, or give --server URL");

  auto token = client::load_personal_token(std::getenv("HOOP_TOKEN"), *caller);
  if (!token) return local(token.error());
  client::ClientOptions o;
  o.server = std::move(server);
  o.ca_file = std::move(ca);
  // A reviewer's own certificate for a hoopd with [tls] client_ca; read as
  // the reviewer (privilege is gone), never the host's root-only one.
  o.client_cert = !c.client_cert.empty() ? c.client_cert : env("HOOP_CLIENT_CERT") ? env("HOOP_CLIENT_CERT") : "";
  o.client_key = !c.client_key.empty() ? c.client_key : env("HOOP_CLIENT_KEY") ? env("HOOP_CLIENT_KEY") : "";
  o.token = std::move(*token);
  o.user_agent = "hoopctl";
  auto cl = client::Client::create(std::move(o));
  if (!cl) return cl.error();
  return Reviewer{std::move(*cl), caller->name};
}

Error explain(Error e, const Reviewer& s, int64_t id, std::string_view what) {
  const std::string n = std::to_string(id);
  switch (e.code) {
    case Errc::unavailable:
      if (e.message.starts_with("TLS"))
        e.message += "; the CA bundle comes from --ca, HOOP_CA or `ca` in " + std::string(kHostConfig);
      else
        e.message += "; is hoopd running there? (server: --server, HOOP_SERVER or `server` in " +
                     std::string(kHostConfig) + ")";
      break;
    case Errc::unauthenticated:
      e.message = "the server did not accept your token (" + e.message +
                  "); ask an admin to run: hoopd token create --user " + escape_for_terminal(s.local_name);
      break;
    case Errc::not_found:
      if (id > 0)
        e.message = std::string(what) + " " + n + " not found, or not visible to you; see: " +
                    (what == "request" ? "hoopctl list --all" : "hoopctl sessions");
      break;
    case Errc::permission_denied:
      e.message = "refused: " + e.message;
      break;
    case Errc::conflict:
      if (id > 0 && what == "request") e.message += "; see: hoopctl show " + n;
      break;
    default:
      break;
  }
  return e;
}

namespace {

Status check_comment(const std::string& m, bool required) {
  if (required && m.find_first_not_of(" \t") == std::string::npos)
    return make_error(Errc::invalid_argument, "a denial needs a reason: hoopctl deny ID -m TEXT");
  if (m.size() > api::kMaxTextBytes)
    return make_error(Errc::invalid_argument,
                      "the comment is longer than " + std::to_string(api::kMaxTextBytes) + " bytes");
  if (!is_clean_text(m))
    return make_error(Errc::invalid_argument,
                      "the comment has control characters (newline, tab, escape); keep it to one line");
  return {};
}

}  // namespace

const CLI::Validator kRequestId(
    [](std::string& s) -> std::string {
      const bool digits =
          !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || s.find_first_not_of('0') == std::string::npos)
        return "expected a request id (a positive number), got '" + escape_for_terminal(s) + "'";
      return {};
    },
    "ID");

namespace {

void add_id(CLI::App& sub, int64_t& id) {
  sub.add_option("id", id, "request id (see: hoopctl list)")->required()->check(kRequestId);
}

// ---- list -----------------------------------------------------------------

struct ListOpts {
  Common c;
  bool all = false;
  std::string state;
  int limit = 0;
};

bool can_act(const api::Request& r, const std::string& me) {
  if (r.state != api::State::pending || r.user == me) return false;
  for (const auto& name : remaining_reviewers(r))
    if (name == me) return true;
  return false;
}

Result<int> run_list(const ListOpts& o) {
  auto s = connect(o.c);
  if (!s) return s.error();
  client::ListFilter f;
  const bool mine = !o.all && o.state.empty();  // default: what I can act on now
  if (!o.state.empty()) f.state = api::parse_state(o.state);
  if (mine) f.state = api::State::pending;
  f.limit = o.limit;
  std::string me;
  if (mine) {
    auto who = s->client.whoami();
    if (!who) return explain(who.error(), *s);
    me = who->name;
  }
  nlohmann::json raw;
  auto list = s->client.list_requests(f, &raw);
  if (!list) return explain(list.error(), *s);

  std::vector<api::Request> shown;
  nlohmann::json shown_raw = nlohmann::json::array();
  for (size_t i = 0; i < list->size(); ++i) {
    if (mine && !can_act((*list)[i], me)) continue;
    shown.push_back((*list)[i]);
    shown_raw.push_back(raw["requests"][i]);
  }
  if (o.c.json) {
    std::cout << format_json(shown_raw);
  } else if (shown.empty()) {
    std::cout << (mine ? "No pending requests for you to review. (all you can see: hoopctl list --all)\n"
                       : "No requests.\n");
  } else {
    std::cout << format_request_table(shown, now_ms());
  }
  return kExitOk;
}

// ---- show -----------------------------------------------------------------

struct ShowOpts {
  Common c;
  int64_t id = 0;
};

Result<int> run_show(const ShowOpts& o) {
  auto s = connect(o.c);
  if (!s) return s.error();
  nlohmann::json raw;
  auto r = s->client.get_request(o.id, std::nullopt, api::State::pending, &raw);
  if (!r) return explain(r.error(), *s, o.id);
  std::cout << (o.c.json ? format_json(raw) : format_request_detail(*r, now_ms()));
  return kExitOk;
}

// ---- approve / deny / cancel ----------------------------------------------

enum class Verdict { approve, deny, cancel };

struct DecideOpts {
  Common c;
  int64_t id = 0;
  std::string message;
};

Result<int> run_decide(const DecideOpts& o, Verdict v) {
  if (v != Verdict::cancel) {
    if (auto st = check_comment(o.message, v == Verdict::deny); !st) return st.error();
  }
  auto s = connect(o.c);
  if (!s) return s.error();
  auto r = v == Verdict::approve ? s->client.approve(o.id, o.message)
           : v == Verdict::deny  ? s->client.deny(o.id, o.message)
                                 : s->client.cancel(o.id);
  if (!r) return explain(r.error(), *s, o.id);
  const char* done = v == Verdict::approve ? "Approved" : v == Verdict::deny ? "Denied" : "Cancelled";
  std::cout << done << " request " << r->id << ": " << format_summary(*r) << "\n";
  if (v == Verdict::approve) {
    if (r->state == api::State::approved) {
      std::cout << "  granted; the grant lasts until " << format_time(r->grant_expires_at_ms, now_ms())
                << "\n";
    } else if (r->state == api::State::pending) {
      const int needed = std::max(0, r->approvals_required - r->approvals_count());
      const auto left = remaining_reviewers(*r);
      std::string who;
      for (const auto& n : left) who += (who.empty() ? "" : ", ") + escape_for_terminal(n);
      std::cout << "  " << r->approvals_count() << " of " << r->approvals_required << " approvals; " << needed
                << " more needed" << (who.empty() ? "" : " (can approve: " + who + ")") << "\n";
    }
  }
  return kExitOk;
}

Runner setup_decide(CLI::App& sub, Verdict v) {
  auto o = std::make_shared<DecideOpts>();
  add_common(sub, o->c, false);
  add_id(sub, o->id);
  if (v == Verdict::approve)
    sub.add_option("-m,--message", o->message, "comment recorded with your approval");
  if (v == Verdict::deny)
    sub.add_option("-m,--message", o->message, "why you deny it (required)")->required();
  return [o, v] { return run_decide(*o, v); };
}

// ---- whoami ---------------------------------------------------------------

Result<int> run_whoami(const Common& c) {
  auto s = connect(c);
  if (!s) return s.error();
  nlohmann::json raw;
  auto who = s->client.whoami(&raw);
  if (!who) return explain(who.error(), *s);
  if (c.json) {
    std::cout << format_json(raw);
  } else {
    std::cout << escape_for_terminal(who->name) << " (" << escape_for_terminal(who->kind) << " token hoop_"
              << escape_for_terminal(who->token) << ") at " << escape_for_terminal(s->client.server())
              << "\n";
  }
  return kExitOk;
}

}  // namespace

Runner setup_list(CLI::App& sub) {
  auto o = std::make_shared<ListOpts>();
  add_common(sub, o->c, true);
  sub.add_flag("-a,--all", o->all, "everything you can see, in any state");
  sub.add_option("-s,--state", o->state, "only requests in this state (implies --all)")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(kStates), std::end(kStates))));
  sub.add_option("-n,--limit", o->limit, "at most N requests, newest first (server default 100)")
      ->check(CLI::Range(1, 1000));
  return [o] { return run_list(*o); };
}

Runner setup_show(CLI::App& sub) {
  auto o = std::make_shared<ShowOpts>();
  add_common(sub, o->c, true);
  add_id(sub, o->id);
  return [o] { return run_show(*o); };
}

Runner setup_approve(CLI::App& sub) {
  return setup_decide(sub, Verdict::approve);
}
Runner setup_deny(CLI::App& sub) {
  return setup_decide(sub, Verdict::deny);
}
Runner setup_cancel(CLI::App& sub) {
  return setup_decide(sub, Verdict::cancel);
}

Runner setup_whoami(CLI::App& sub) {
  auto o = std::make_shared<Common>();
  add_common(sub, *o, true);
  return [o] { return run_whoami(*o); };
}

int exit_code_for(const Error& e) {
  switch (e.code) {
    case Errc::invalid_argument:
      return kExitUsage;
    case Errc::unavailable:
    case Errc::timeout:
      return kExitUnreachable;
    case Errc::permission_denied:
      return kExitDenied;
    case Errc::not_found:
      return kExitNotFound;
    default:
      return kExitError;
  }
}

}  // namespace hoop::ctl
