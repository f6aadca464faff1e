// hoopd: the approval server and its admin commands. Thin by design: each
// sub-command loads what it needs through the src/ libraries, and only this
// file prints and chooses exit codes. Every error is one line on stderr,
// "hoopd: ...", and no exception leaves main().
//
// Exit codes: 0 success, 1 error, 2 usage; `policy explain` also answers
// 3 (review) and 4 (deny) so scripts can branch on the decision.

#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "api/types.h"
#include "audit/chain.h"
#include "common/crypto.h"
#include "common/duration.h"
#include "common/error.h"
#include "common/escape.h"
#include "config/server_config.h"
#include "policy/policy.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/service.h"
#include "store/store.h"

namespace {

namespace fs = std::filesystem;
using hoop::Errc;
using hoop::Error;
using hoop::Result;
using hoop::make_error;
using nlohmann::json;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitReview = 3;
constexpr int kExitDeny = 4;

int report(const Error& e, int code = kExitError) {
  std::fprintf(stderr, "hoopd: %s\n", hoop::escape_for_terminal(e.message).c_str());
  return code;
}

void log_line(const std::string& line) {
  // One write per line so lines from signals and errors never interleave.
  const std::string out = "hoopd: " + line + "\n";
  (void)!write(STDERR_FILENO, out.data(), out.size());
}

std::string errno_text() { return std::strerror(errno); }

/// Paths in the config are relative to the config's folder.
std::string resolve(const std::string& config_path, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return (fs::absolute(config_path).parent_path() / p).lexically_normal().string();
}

Result<hoop::config::ServerConfig> load_config(const std::string& path) {
  auto cfg = hoop::config::load_server_config(path);
  if (!cfg) return cfg.error();
  const std::string& base = cfg->source.empty() ? path : cfg->source;
  cfg->data_dir = resolve(base, cfg->data_dir);
  cfg->policy_path = resolve(base, cfg->policy_path);
  if (cfg->tls) {
    cfg->tls->cert = resolve(base, cfg->tls->cert);
    cfg->tls->key = resolve(base, cfg->tls->key);
    cfg->tls->client_ca = resolve(base, cfg->tls->client_ca);
  }
  if (cfg->data_dir.empty()) return make_error(Errc::invalid_argument, path + ": data_dir is not set");
  return cfg;
}

/// Creates data_dir 0700 when missing: it holds the database with the
/// token hashes and the audit chain, nobody else needs to read it.
hoop::Status ensure_data_dir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) {
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return make_error(Errc::io, "data_dir " + dir + " is not a directory");
    return {};
  }
  return make_error(Errc::io, "cannot create data_dir " + dir + ": " + errno_text());
}

Result<std::unique_ptr<hoop::store::Store>> open_store(const hoop::config::ServerConfig& cfg, bool create) {
  if (create) {
    if (auto st = ensure_data_dir(cfg.data_dir); !st) return st.error();
  } else if (!fs::exists(cfg.db_path())) {
    return make_error(Errc::not_found, "no database at " + cfg.db_path() +
                                           " (hoopd serve or hoopd token create creates it)");
  }
  return hoop::store::open_sqlite(cfg.db_path());
}

/// Reads and validates a policy file; every problem goes to `problems` as
/// "file:line:col: message".
Result<std::shared_ptr<const hoop::policy::Policy>> load_policy(const std::string& path,
                                                                std::vector<std::string>& problems) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::io, "cannot read policy " + path + ": " + errno_text());
  std::stringstream text;
  text << in.rdbuf();
  std::vector<hoop::policy::Diagnostic> diags;
  auto p = hoop::policy::Policy::parse(text.str(), path, &diags);
  for (const auto& d : diags) problems.push_back(d.to_string());
  if (!diags.empty() || !p.valid()) {
    if (problems.empty()) problems.push_back(path + ": invalid policy");
    return make_error(Errc::invalid_argument,
                      "policy " + path + " has " + std::to_string(problems.size()) + " problem(s)");
  }
  return std::make_shared<const hoop::policy::Policy>(std::move(p));
}

int64_t now_ms() { return hoop::server::system_now_ms(); }

std::string iso_time(int64_t ms) {
  if (ms <= 0) return "-";
  const time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// "admin:<login>" for audit rows written by these commands.
std::string admin_actor() {
  const uid_t uid = getuid();
  if (const passwd* pw = getpwuid(uid); pw != nullptr && pw->pw_name != nullptr) return std::string("admin:") + pw->pw_name;
  return "admin:" + std::to_string(uid);
}

/// Runs `body` and one audit row in one transaction.
hoop::Status in_transaction(hoop::store::Store& store, const std::string& action, const json& detail,
                            const std::function<hoop::Status()>& body) {
  if (auto st = store.begin(); !st) return st;
  auto st = body();
  if (st) {
    auto row = store.append_audit(now_ms(), admin_actor(), action, 0, detail.dump());
    if (!row) st = row.error();
  }
  if (st) st = store.commit();
  if (!st) store.rollback();
  return st;
}

// ---------------------------------------------------------------- serve

void raise_fd_limit() {
  // Each waiting client holds a descriptor; 5,000 of them need more than
  // the usual soft limit of 1,024. The hard limit is the admin's to set.
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int cmd_serve(const std::string& config_path) {
  auto cfg = load_config(config_path);
  if (!cfg) return report(cfg.error());
  if (!cfg->tls && !cfg->insecure_http)
    return report(make_error(Errc::invalid_argument,
                             config_path + ": no [tls] section; set [tls] cert and key, or insecure_http = true "
                                           "to serve plain HTTP (loopback tests only)"));
  if (geteuid() == 0) log_line("warning: running as root; the hoop service user is enough (dist/hoopd.service)");
  std::vector<std::string> problems;
  auto policy = load_policy(cfg->policy_path, problems);
  if (!policy) {
    for (const auto& p : problems) log_line(hoop::escape_for_terminal(p));
    return report(policy.error());
  }
  auto store = open_store(*cfg, /*create=*/true);
  if (!store) return report(store.error());
  raise_fd_limit();

  boost::asio::io_context io(1);  // one thread: lets Asio skip its locking
  hoop::server::Metrics metrics;
  hoop::server::Service service(io.get_executor(), **store, *policy, *cfg);
  hoop::server::ServerOptions opts;
  opts.log = log_line;
  opts.reload_policy = [path = cfg->policy_path]() -> std::shared_ptr<const hoop::policy::Policy> {
    std::vector<std::string> errs;
    auto p = load_policy(path, errs);
    if (p) return *p;
    log_line("policy reload failed, keeping the current policy: " + p.error().message);
    for (const auto& e : errs) log_line(hoop::escape_for_terminal(e));
    return nullptr;
  };
  auto server = hoop::server::Server::create(io, service, *cfg, metrics, std::move(opts));
  if (!server) return report(server.error());
  (*server)->start();
  std::string addr = (*server)->address();
  if (addr.find(':') != std::string::npos) addr = "[" + addr + "]";
  log_line("listening on " + addr + ":" + std::to_string((*server)->port()) +
           ((*server)->tls() ? " (tls)" : " (plain http)") + ", policy " + cfg->policy_path + " (" +
           std::to_string((*policy)->rules().size()) + " rules), data " + cfg->data_dir);
  io.run();
  log_line("stopped");
  return 0;
}

// ---------------------------------------------------------------- token

int cmd_token_create(const std::string& config_path, const std::string& host, const std::string& user,
                     const std::string& note) {
  if (host.empty() == user.empty()) return report(make_error(Errc::invalid_argument, "give exactly one of --host NAME or --user NAME"), kExitUsage);
  const bool is_host = !host.empty();
  if (is_host && !hoop::api::is_valid_host(host))
    return report(make_error(Errc::invalid_argument, "bad host name '" + host + "': letters, digits, '.' and '-'"), kExitUsage);
  if (!is_host && !hoop::api::is_valid_name(user))
    return report(make_error(Errc::invalid_argument, "bad user name '" + user + "': letters, digits, '.', '_' and '-'"), kExitUsage);
  if (note.size() > hoop::api::kMaxTextBytes || !hoop::is_clean_text(note))
    return report(make_error(Errc::invalid_argument, "--note must be one line of text, at most 2048 bytes"), kExitUsage);
  auto cfg = load_config(config_path);
  if (!cfg) return report(cfg.error());
  auto store = open_store(*cfg, /*create=*/true);
  if (!store) return report(store.error());

  auto id = hoop::random_hex(8);
  auto secret = hoop::random_hex(32);
  if (!id) return report(id.error());
  if (!secret) return report(secret.error());
  hoop::store::Token t;
  t.id = *id;
  t.kind = is_host ? hoop::store::TokenKind::host : hoop::store::TokenKind::user;
  t.name = is_host ? host : user;
  t.secret_hash = hoop::sha256_hex(*secret);  // the secret itself is never stored
  t.note = note;
  t.created_at_ms = now_ms();
  const json detail = {{"token", t.id}, {"kind", hoop::store::token_kind_name(t.kind)}, {"name", t.name}};
  auto st = in_transaction(**store, "token.create", detail, [&] { return (*store)->insert_token(t); });
  if (!st) return report(st.error());
  std::printf("hoop_%s_%s\n", id->c_str(), secret->c_str());
  return std::fflush(stdout) == 0 ? 0 : kExitError;
}

int cmd_token_list(const std::string& config_path, bool as_json) {
  auto cfg = load_config(config_path);
  if (!cfg) return report(cfg.error());
  auto store = open_store(*cfg, /*create=*/false);
  if (!store) return report(store.error());
  auto tokens = (*store)->list_tokens();
  if (!tokens) return report(tokens.error());
  if (as_json) {
    json arr = json::array();
    for (const auto& t : *tokens)
      arr.push_back({{"id", t.id}, {"kind", hoop::store::token_kind_name(t.kind)}, {"name", t.name},
                     {"created_at", t.created_at_ms}, {"revoked_at", t.revoked_at_ms}, {"note", t.note}});
    std::cout << json{{"tokens", arr}}.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::printf("%-16s  %-4s  %-20s  %-20s  %-20s  %s\n", "ID", "KIND", "NAME", "CREATED", "REVOKED", "NOTE");
  for (const auto& t : *tokens)
    std::printf("%-16s  %-4s  %-20s  %-20s  %-20s  %s\n", hoop::escape_for_terminal(t.id).c_str(),
                hoop::store::token_kind_name(t.kind), hoop::escape_for_terminal(t.name).c_str(),
                iso_time(t.created_at_ms).c_str(), iso_time(t.revoked_at_ms).c_str(),
                hoop::escape_for_terminal(t.note).c_str());
  return 0;
}

int cmd_token_revoke(const std::string& config_path, const std::string& id) {
  if (id.size() != 16 || id.find_first_not_of("0123456789abcdef") != std::string::npos)
    return report(make_error(Errc::invalid_argument,
                             "a token id is 16 lowercase hex digits (the part after hoop_, see hoopd token list)"),
                  kExitUsage);
  auto cfg = load_config(config_path);
  if (!cfg) return report(cfg.error());
  auto store = open_store(*cfg, /*create=*/false);
  if (!store) return report(store.error());
  const json detail = {{"token", id}};
  auto st = in_transaction(**store, "token.revoke", detail, [&] { return (*store)->revoke_token(id, now_ms()); });
  if (!st) {
    if (st.error().code == Errc::not_found) return report(make_error(Errc::not_found, "no token with id " + id));
    if (st.error().code == Errc::conflict) return report(make_error(Errc::conflict, "token " + id + " is already revoked"));
    return report(st.error());
  }
  std::printf("revoked %s\n", id.c_str());
  return 0;
}

// ---------------------------------------------------------------- policy

int cmd_policy_check(const std::string& file) {
  std::vector<std::string> problems;
  auto p = load_policy(file, problems);
  if (!p) {
    for (const auto& e : problems) std::fprintf(stderr, "%s\n", hoop::escape_for_terminal(e).c_str());
    if (problems.empty()) return report(p.error());
    return kExitError;
  }
  std::printf("%s: ok (%zu rules, %zu groups)\n", hoop::escape_for_terminal(file).c_str(), (*p)->rules().size(),
              (*p)->groups().size());
  return 0;
}

int cmd_policy_explain(const std::string& config_path, const hoop::policy::Query& q, bool as_json) {
  if (!hoop::api::is_valid_host(q.host)) return report(make_error(Errc::invalid_argument, "bad --host"), kExitUsage);
  if (!hoop::api::is_valid_name(q.user)) return report(make_error(Errc::invalid_argument, "bad --user"), kExitUsage);
  if (!hoop::api::is_valid_name(q.run_as)) return report(make_error(Errc::invalid_argument, "bad --run-as"), kExitUsage);
  if (q.argv.empty() || q.argv[0].empty() || q.argv[0][0] != '/')
    return report(make_error(Errc::invalid_argument,
                             "the command must start with an absolute path, as hoopctl resolves it: "
                             "-- /usr/bin/systemctl restart nginx"),
                  kExitUsage);
  auto cfg = load_config(config_path);
  if (!cfg) return report(cfg.error());
  std::vector<std::string> problems;
  auto p = load_policy(cfg->policy_path, problems);
  if (!p) {
    for (const auto& e : problems) std::fprintf(stderr, "%s\n", hoop::escape_for_terminal(e).c_str());
    return report(p.error());
  }
  const hoop::policy::Policy& pol = **p;
  const auto d = pol.decide(q);
  const bool review = d.action == hoop::policy::Action::review;
  std::vector<std::string> reviewers;
  const hoop::policy::Rule* rule = nullptr;
  if (d.rule_index >= 0 && static_cast<size_t>(d.rule_index) < pol.rules().size()) {
    rule = &pol.rules()[static_cast<size_t>(d.rule_index)];
    if (review) reviewers = pol.reviewers_of(d.rule_index);
  }
  if (as_json) {
    json j = {{"decision", hoop::policy::action_name(d.action)}, {"rule", d.rule}, {"why", d.why}};
    if (review && rule != nullptr) {
      j["reviewers"] = reviewers;
      j["approvals"] = rule->approvals;
      j["ttl_ms"] = rule->ttl.count();
      j["reason_required"] = rule->reason_required;
    }
    std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    auto esc = [](const std::string& s) { return hoop::escape_for_terminal(s); };
    std::printf("decision: %s\n", hoop::policy::action_name(d.action));
    std::printf("rule:     %s\n", d.rule.empty() ? "(none matched: default deny)" : esc(d.rule).c_str());
    std::printf("why:      %s\n", esc(d.why).c_str());
    if (review && rule != nullptr) {
      std::string names;
      for (const auto& r : reviewers) names += (names.empty() ? "" : ", ") + esc(r);
      std::printf("reviewers: %s\n", names.empty() ? "(nobody: no one can approve)" : names.c_str());
      std::printf("approvals: %d, grant ttl %s%s\n", rule->approvals, hoop::format_duration(rule->ttl).c_str(),
                  rule->reason_required ? ", reason required" : "");
    }
  }
  switch (d.action) {
    case hoop::policy::Action::allow: return 0;
    case hoop::policy::Action::review: return kExitReview;
    case hoop::policy::Action::deny: return kExitDeny;
  }
  return kExitDeny;  // hardened enum: anything unexpected is a deny
}

// ---------------------------------------------------------------- audit

int cmd_audit_verify(const std::string& config_path, bool as_json) {
  auto cfg = load_config(config_path);
  if (!cfg) return report(cfg.error());
  auto store = open_store(*cfg, /*create=*/false);
  if (!store) return report(store.error());
  constexpr int kPage = 1000;
  hoop::audit::Verifier v;
  int64_t after = 0;
  bool more = true;
  while (more && v.ok()) {
    auto rows = (*store)->read_audit(after, kPage);
    if (!rows) return report(rows.error());
    for (const auto& r : *rows) {
      if (!v.feed(r)) break;
      after = r.seq;
    }
    more = rows->size() == static_cast<size_t>(kPage);
  }
  if (as_json) {
    json j = {{"rows", v.rows()}, {"intact", v.ok()}};
    if (!v.ok()) {
      j["bad_row"] = *v.bad_seq();
      j["error"] = v.error();
    }
    std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else if (v.ok()) {
    std::printf("audit: %lld rows, chain intact\n", static_cast<long long>(v.rows()));
  } else {
    std::printf("audit: row %lld: %s\n", static_cast<long long>(*v.bad_seq()),
                hoop::escape_for_terminal(v.error()).c_str());
  }
  return v.ok() ? 0 : kExitError;
}

// ---------------------------------------------------------------- CLI

int run(int argc, char** argv) {
  CLI::App app{"hoopd - the hoop approval server: policy, separation of duties, audit trail", "hoopd"};
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  hoopd policy check /etc/hoop/policy.toml\n"
      "  hoopd serve --config /etc/hoop/hoopd.toml\n"
      "  hoopd token create --config /etc/hoop/hoopd.toml --host web1 > host.token\n"
      "  hoopd token create --config /etc/hoop/hoopd.toml --user bob --note 'laptop'\n"
      "  hoopd audit verify --config /etc/hoop/hoopd.toml\n"
      "See hoopd(8), hoop-policy(5) and hoopctl(1).\n");

  std::string config;
  auto add_config = [&config](CLI::App* sub) {
    sub->add_option("--config,-c", config, "server config (TOML), e.g. /etc/hoop/hoopd.toml")->required();
  };

  auto* serve = app.add_subcommand("serve", "run the approval server (HTTPS, or HTTP if the config says insecure_http)");
  add_config(serve);
  serve->footer(
      "Prints 'hoopd: listening on ADDR:PORT (tls)' once ready. SIGHUP reloads the policy\n"
      "(a broken policy is refused and the old one kept); SIGINT/SIGTERM stop it cleanly.\n"
      "Example:\n  hoopd serve --config /etc/hoop/hoopd.toml");

  auto* token = app.add_subcommand("token", "create, list and revoke bearer tokens");
  token->require_subcommand(1);
  std::string host, user, note, token_id;
  bool as_json = false;
  auto* tcreate = token->add_subcommand("create", "print a new token (only its SHA-256 is stored)");
  add_config(tcreate);
  auto* host_opt = tcreate->add_option("--host", host, "host credential: files requests for this host");
  tcreate->add_option("--user", user, "personal credential: reviews and approves as this user")->excludes(host_opt);
  tcreate->add_option("--note", note, "free text shown by 'token list', e.g. where the token lives");
  tcreate->footer(
      "The token (hoop_<id>_<secret>) is printed once, alone on stdout; store it right away.\n"
      "Examples:\n"
      "  hoopd token create -c /etc/hoop/hoopd.toml --host web1 > /tmp/web1.token   # then to web1:/etc/hoop/host.token, 0600\n"
      "  hoopd token create -c /etc/hoop/hoopd.toml --user bob    # bob keeps it in ~/.config/hoop/token, 0600");
  auto* tlist = token->add_subcommand("list", "list tokens (ids, never secrets)");
  add_config(tlist);
  tlist->add_flag("--json", as_json, "machine-readable output");
  auto* trevoke = token->add_subcommand("revoke", "revoke a token at once");
  add_config(trevoke);
  trevoke->add_option("id", token_id, "token id (16 hex digits, from 'token list')")->required();
  trevoke->footer("Example:\n  hoopd token revoke -c /etc/hoop/hoopd.toml 3f2a9c0d1e4b5a67");

  auto* policy = app.add_subcommand("policy", "check a policy file, or explain a decision");
  policy->require_subcommand(1);
  std::string policy_file;
  auto* pcheck = policy->add_subcommand("check", "report every problem as file:line:col: message");
  pcheck->add_option("file", policy_file, "policy file (TOML)")->required();
  pcheck->footer("Exit 0 when the policy is valid, 1 otherwise.\nExample:\n  hoopd policy check /etc/hoop/policy.toml");
  hoop::policy::Query q;
  q.run_as = "root";
  auto* pexplain = policy->add_subcommand("explain", "show which rule decides a command, and why");
  add_config(pexplain);
  pexplain->add_option("--host", q.host, "host the command would run on")->required();
  pexplain->add_option("--user", q.user, "user asking")->required();
  pexplain->add_option("--run-as", q.run_as, "target user (default root)");
  pexplain->add_flag("--json", as_json, "machine-readable output");
  pexplain->add_option("argv", q.argv, "the command, absolute path first, after --")->required();
  pexplain->footer(
      "Exit 0 allow, 3 review, 4 deny (1 error, 2 usage).\n"
      "Example:\n"
      "  hoopd policy explain -c /etc/hoop/hoopd.toml --host web1 --user alice -- /usr/bin/systemctl restart nginx");

  auto* audit = app.add_subcommand("audit", "verify the hash-chained audit trail");
  audit->require_subcommand(1);
  auto* averify = audit->add_subcommand("verify", "walk every row and check the chain");
  add_config(averify);
  averify->add_flag("--json", as_json, "machine-readable output");
  averify->footer(
      "Prints 'audit: N rows, chain intact' (exit 0), or names the first row that was\n"
      "changed, removed or reordered (exit 1). Safe while hoopd runs.\n"
      "Example:\n  hoopd audit verify -c /etc/hoop/hoopd.toml");

  // CLI11 would call a mistyped command "a subcommand is required"; say what it is.
  const std::string first = argc > 1 ? argv[1] : "";
  if (!first.empty() && first[0] != '-' && first != "serve" && first != "token" && first != "policy" &&
      first != "audit") {
    std::fprintf(stderr, "hoopd: unknown command '%s'; commands: serve, token, policy, audit (see hoopd --help)\n",
                 hoop::escape_for_terminal(argv[1]).c_str());
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "hoopd: %s (see hoopd --help)\n", hoop::escape_for_terminal(e.what()).c_str());
    return kExitUsage;
  }

  if (serve->parsed()) return cmd_serve(config);
  if (tcreate->parsed()) return cmd_token_create(config, host, user, note);
  if (tlist->parsed()) return cmd_token_list(config, as_json);
  if (trevoke->parsed()) return cmd_token_revoke(config, token_id);
  if (pcheck->parsed()) return cmd_policy_check(policy_file);
  if (pexplain->parsed()) {
    q.path = q.argv.empty() ? std::string() : q.argv[0];
    return cmd_policy_explain(config, q, as_json);
  }
  if (averify->parsed()) return cmd_audit_verify(config, as_json);
  return report(make_error(Errc::invalid_argument, "no command given (see hoopd --help)"), kExitUsage);
}

}  // namespace

int main(int argc, char** argv) {
  umask(077);  // database, WAL and anything else we create stay private
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return report(make_error(Errc::internal, std::string("unexpected error: ") + e.what()));
  } catch (...) {
    return report(make_error(Errc::internal, "unexpected error"));
  }
}
