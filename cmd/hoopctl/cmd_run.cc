// hoopctl run: the privileged path, from the caller's command line to the
// approved command running as its target user. It reads top to bottom in a
// fixed order (as OpenDoas does); the order is part of the contract.
//
// MUST, in this order:
//  1. close stray fds and make the process not dumpable (no core, no
//     /proc/<pid>/{environ,fd,mem} for the caller) before any of run's
//     arguments is parsed: CLI11 calls prepare() the moment it sees `run`;
//  2. copy the caller's environment, then clear it, so nothing the caller
//     set (SSLKEYLOGFILE, CURL_CA_BUNDLE, *_proxy, LD_*, locale, NSS knobs)
//     can steer this process; the caller is the real uid, never a variable;
//  3. read the host config and its credential only from HOOP_SYSCONFDIR,
//     refusing files that are not root's alone; no flag or variable can
//     name another config, credential, CA or server;
//  4. resolve the command through secure_path (never the caller's PATH),
//     pinned by an open fd and its SHA-256;
//  5. run only what the server approved: its answer must match what was
//     asked, the use is recorded (and its session opened) first, the digest
//     is re-checked on the fd, and the fd itself is executed;
//  6. record the session (issue 4): the transcript is masked, spooled and
//     streamed to hoopd while the command runs; a rule with record =
//     "required" runs nothing unless the server takes the transcript at the
//     start.
// MUST NOT: run anything when the server cannot be reached (offline =
//     deny); print another person's text unescaped; leave a pending request
//     behind when the caller interrupts or the wait times out; let the host
//     credential reach the command. While the command runs, the credential
//     is held only by the shipper thread of this (root, not dumpable)
//     monitor process; the command's session leader (exec/spawn.h) is a
//     fork of it, not dumpable either, and the command itself is a fresh
//     exec.

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

#include "api/types.h"
#include "client/client.h"
#include "client/credentials.h"
#include "commands.h"
#include "common/duration.h"
#include "common/escape.h"
#include "config/host_config.h"
#include "exec/command.h"
#include "host.h"
#include "exec/spawn.h"
#include "output.h"
#include "ship.h"
#include "uploader.h"
#include "pty/monitor.h"
#include "transcript/recorder.h"
#include "sys/privilege.h"
#include "sys/process.h"
#include "sys/secure_file.h"

namespace hoop::ctl {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// One long-poll call at most this long, so a signal is seen within it; the
// server still answers the moment the state changes.
constexpr milliseconds kPollSlice{2000};
// While waiting, how long the server may stay unreachable before we give up.
constexpr milliseconds kOfflineGrace{60000};
// After the command: how long to keep trying to get its transcript to hoopd
// before leaving it in the spool for `hoopctl ship`.
constexpr milliseconds kShipGrace{10000};
constexpr milliseconds kShipGraceOffline{2000};
// Not an exit status: "the decision lets the command run".
constexpr int kGo = -1;

constexpr const char* kUsage =
    "usage: hoopctl run [-u USER] [-r REASON] [--timeout DURATION] [--no-wait] -- CMD [ARG...]";

constexpr const char* kRunFooter =
    "CMD is looked up in secure_path from " HOOP_SYSCONFDIR
    "/hoop.toml, never in your PATH. Options end at CMD\n"
    "or at --. --server, --ca and HOOP_* variables are not honoured here.\n"
    "Exit status: the command's own; 128+N when it was killed by signal N; 0 after --no-wait\n"
    "filed a request; 119 cancelled (Ctrl-C while waiting); 120 refused by hoop locally (unsafe\n"
    "config or credential, changed file, ...); 121 bad usage; 122 denied; 123 request or grant\n"
    "expired; 124 timed out waiting (--timeout); 125 server unreachable (offline = deny);\n"
    "118 the rule requires a recording and hoopd cannot take it; 127 command not found or could\n"
    "not be executed. See hoopctl(1).";

volatile std::sig_atomic_t g_signal = 0;

void on_signal(int sig) {
  g_signal = sig;
}

/// The sub-command's flags, and what prepare() captured before parsing.
struct RunOpts {
  std::string user = "root";
  std::string reason;
  std::string timeout;
  bool no_wait = false;
  std::vector<std::string> command;
  CLI::App* sub = nullptr;
  CLI::Option* user_opt = nullptr;
  CLI::Option* reason_opt = nullptr;
  CLI::Option* timeout_opt = nullptr;
  // Fails closed: stays an error unless prepare() ran and succeeded.
  Status prepared = make_error(Errc::internal, "the run path was not prepared (this is a bug)");
  std::vector<std::string> caller_env;
};

void say(const std::string& msg) {
  const std::string safe = is_clean_text(msg) ? msg : escape_for_terminal(msg);
  (void)std::fprintf(stderr, "hoopctl: %s\n", safe.c_str());
}

int fail(int code, const std::string& msg) {
  say(msg);
  return code;
}

Status usage(const std::string& msg) {
  return make_error(Errc::invalid_argument, msg);
}

// Everything CLI11 let through leniently (so that every usage error, not
// only some, exits 121) is checked here.
Status check_command_line(const RunOpts& o, std::optional<milliseconds>& timeout) {
  for (const auto& extra : o.sub->remaining())
    if (extra != "--")
      return usage("unknown option " + quote_arg(extra) +
                   " (--server, --ca and HOOP_* settings are not honoured by run)");
  if (o.command.empty()) return usage("nothing to run");
  for (const CLI::Option* opt : {o.user_opt, o.reason_opt, o.timeout_opt})
    if (opt->count() > 1) return usage(opt->get_name() + " given more than once");
  if (o.user.empty()) return usage("-u needs a user name");
  if (o.reason_opt->count() == 1 && o.reason.empty()) return usage("-r needs a reason");
  if (o.reason.size() > api::kMaxTextBytes || !is_clean_text(o.reason))
    return usage("the reason must be one line of at most " + std::to_string(api::kMaxTextBytes) +
                 " bytes, without control characters");
  if (o.timeout_opt->count() == 1) {
    auto d = parse_duration(o.timeout);
    if (!d) return usage("--timeout: " + d.error().message);
    if (d->count() <= 0) return usage("--timeout must be longer than zero");
    timeout = *d;
  }
  if (o.command.size() > api::kMaxArgc)
    return usage("too many arguments (at most " + std::to_string(api::kMaxArgc) + ")");
  size_t total = 0;
  for (size_t i = 0; i < o.command.size(); ++i) {
    total += o.command[i].size() + 1;
    // The request is JSON: bytes that are not UTF-8 cannot be filed intact.
    if (!is_valid_utf8(o.command[i]))
      return usage("argument " + std::to_string(i) + " is not valid UTF-8; hoop files commands as text");
  }
  if (total > api::kMaxArgvBytes)
    return usage("the command line is longer than " + std::to_string(api::kMaxArgvBytes) + " bytes");
  if (o.command[0].empty()) return usage("the command name is empty");
  return {};
}

// The exit status and message for a failed call to hoopd.
int server_failure(const Error& e, const Host& host, const std::string& doing) {
  const std::string url = escape_for_terminal(host.cfg.server);
  switch (e.code) {
    case Errc::unavailable:
    case Errc::timeout: {
      // The client's message repeats the URL; keep only what went wrong.
      std::string_view detail = e.message;
      if (const std::string dup = "cannot reach " + url + ": "; detail.starts_with(dup))
        detail.remove_prefix(dup.size());
      return fail(kExitRunUnreachable, "cannot reach hoopd at " + url + " (" + std::string(detail) +
                                           "): refusing to run (offline = deny)");
    }
    case Errc::unauthenticated:
      return fail(kExitRunRefused, "hoopd did not accept this host's credential " +
                                       escape_for_terminal(host.cfg.credential) + " (" + e.message +
                                       "); ask an admin");
    case Errc::invalid_argument:
    case Errc::too_large:
      return fail(kExitRunUsage, "hoopd refused to " + doing + ": " + e.message);
    default:
      return fail(kExitRunRefused, "hoopd refused to " + doing + ": " + e.message);
  }
}

std::string reviewers_line(const api::Request& r) {
  const int needed = std::max(0, r.approvals_required - r.approvals_count());
  std::string who;
  for (const auto& n : remaining_reviewers(r)) who += (who.empty() ? "" : ", ") + escape_for_terminal(n);
  return std::to_string(needed) + (needed == 1 ? " more approval" : " more approvals") +
         " needed; can approve: " + (who.empty() ? "nobody left who may approve" : who);
}

// Sleeps up to `d`, waking early when a signal arrived.
void nap(milliseconds d) {
  const auto until = Clock::now() + d;
  while (g_signal == 0 && Clock::now() < until) std::this_thread::sleep_for(milliseconds(100));
}

int cancel_and_exit(client::Client& cl, const api::Request& r, const std::string& caller, int code,
                    const std::string& why) {
  const std::string id = std::to_string(r.id);
  auto c = cl.cancel(r.id, caller);
  if (c && c->state == api::State::cancelled) return fail(code, why + "request " + id + " cancelled");
  return fail(code, why + "could not cancel request " + id + " (" +
                        (c ? std::string("now ") + api::state_name(c->state) : c.error().message) +
                        "); see: hoopctl show " + id);
}

// Long-polls until the request is no longer pending (kGo), or returns the
// exit status after a signal, --timeout or a lost server.
int wait_for_decision(client::Client& cl, api::Request& r, std::optional<milliseconds> timeout,
                      const std::string& caller, const Host& host) {
  const auto start = Clock::now();
  int seen = r.approvals_count();
  std::optional<Clock::time_point> offline_since;
  for (;;) {
    if (g_signal != 0) return cancel_and_exit(cl, r, caller, kExitRunCancelled, "interrupted; ");
    milliseconds slice = kPollSlice;
    if (timeout) {
      const auto left = *timeout - std::chrono::duration_cast<milliseconds>(Clock::now() - start);
      if (left.count() <= 0)
        return cancel_and_exit(cl, r, caller, kExitRunTimeout,
                               "no decision within " + format_duration(*timeout) + "; ");
      slice = std::min(slice, left);
    }
    auto got = cl.get_request(r.id, slice);
    if (!got) {
      if (got.error().code != Errc::unavailable && got.error().code != Errc::timeout)
        return server_failure(got.error(), host, "report on request " + std::to_string(r.id));
      if (!offline_since) {
        offline_since = Clock::now();
        say("lost contact with hoopd (" + got.error().message + "); retrying");
      } else if (Clock::now() - *offline_since > kOfflineGrace) {
        return fail(kExitRunUnreachable, "cannot reach hoopd at " + escape_for_terminal(host.cfg.server) +
                                             ": giving up (offline = deny); request " + std::to_string(r.id) +
                                             " stays pending until it expires");
      }
      nap(milliseconds(1000));
      continue;
    }
    if (offline_since) say("in contact with hoopd again");
    offline_since.reset();
    r = std::move(*got);
    if (r.state != api::State::pending) return kGo;
    if (r.approvals_count() != seen) {
      seen = r.approvals_count();
      say("request " + std::to_string(r.id) + ": " + std::to_string(seen) + " of " +
          std::to_string(r.approvals_required) + " approvals; " + reviewers_line(r));
    }
  }
}

// While talking to hoopd, the usual ways to stop a program only set a flag:
// the wait loop then cancels the request instead of leaving it pending.
void catch_signals(bool on) {
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) (void)std::signal(s, on ? &on_signal : SIG_DFL);
  // A server closing the connection mid-write must be an error from the
  // client, not a silent death of the privileged process.
  (void)std::signal(SIGPIPE, on ? SIG_IGN : SIG_DFL);
}

// Step 5a: files the request and waits. kGo with `r` approved, else the
// exit status.
int obtain_grant(client::Client& cl, const api::NewRequest& req, const RunOpts& o,
                 std::optional<milliseconds> timeout, const Host& host, api::Request& r) {
  auto filed = cl.create_request(req);
  if (!filed) return server_failure(filed.error(), host, "file the request");
  r = std::move(*filed);
  const std::string id = std::to_string(r.id);
  const bool waited = r.state == api::State::pending;
  if (waited) {
    if (o.no_wait && g_signal == 0) {
      (void)std::printf("request %s filed; run the same command again once approved\n", id.c_str());
      return kExitOk;
    }
    say("request " + id + " needs approval (rule " + escape_for_terminal(r.rule) + "): " + reviewers_line(r));
    say("waiting for a decision (the request expires " + format_time(r.expires_at_ms, now_ms()) +
        "); Ctrl-C cancels it");
    if (int rc = wait_for_decision(cl, r, timeout, req.user, host); rc != kGo) return rc;
  }
  switch (r.state) {
    case api::State::approved:
      if (g_signal != 0)
        return fail(kExitRunCancelled, "interrupted; request " + id + " approved but not run");
      if (waited) say("request " + id + " approved by " + escape_for_terminal(r.decided_by));
      return kGo;
    case api::State::denied: {
      if (r.decided_by == "policy")
        return fail(kExitRunDenied, r.rule.empty() ? "no policy rule allows this command; not run"
                                                   : "denied by policy rule " + escape_for_terminal(r.rule));
      std::string comment;
      for (const auto& d : r.decisions)
        if (!d.approve) comment = d.comment;
      return fail(kExitRunDenied, "request " + id + " denied by " + escape_for_terminal(r.decided_by) +
                                      (comment.empty() ? "" : ": " + escape_for_terminal(comment)));
    }
    case api::State::cancelled:
      return fail(kExitRunCancelled,
                  "request " + id + " was cancelled by " + escape_for_terminal(r.decided_by));
    case api::State::expired:
      return fail(kExitRunExpired,
                  "request " + id + " expired without a decision; run the command again to ask anew");
    case api::State::pending:
      break;
  }
  return fail(kExitRunRefused, "request " + id + " is still pending; not run");
}

// Step 5b: the grant must be for exactly what we asked, and its use is
// recorded, with a session opened, before anything runs. An answer to a
// request filed with `use` may carry its session already.
int claim_grant(client::Client& cl, api::Request& r, const api::NewRequest& asked, const Host& host) {
  const std::string id = std::to_string(r.id);
  if (r.user != asked.user || r.run_as != asked.run_as || r.argv != asked.argv || r.path != asked.path ||
      r.digest != asked.digest)
    return fail(kExitRunRefused, "hoopd answered with request " + id +
                                     ", which is not the command asked for; refusing to run it");
  if (r.session) {
    if (r.session->request_id != r.id)
      return fail(kExitRunRefused, "hoopd opened a session for another request; refusing to run");
    return kGo;
  }
  auto used = cl.record_use(r.id);
  if (!used) {
    if (used.error().code == Errc::conflict)
      return fail(kExitRunExpired, "the grant of request " + id +
                                       " expired before it was used; run the command again to ask anew");
    return server_failure(used.error(), host, "record the use of request " + id);
  }
  if (used->state != api::State::approved)
    return fail(kExitRunExpired, "request " + id + " is " + api::state_name(used->state) + "; not run");
  if (!used->session || used->session->request_id != r.id)
    return fail(kExitRunRefused, "hoopd recorded the use of request " + id +
                                     " but opened no session for it; refusing to run unrecorded");
  r = std::move(*used);
  return kGo;
}

// Step 6: the recorder for this session, started. nullptr with `rc` set
// when the command must not run.
std::unique_ptr<transcript::Recorder> start_recording(const Host& host, const api::Request& r,
                                                  const api::NewRequest& req, const exec::Target& target,
                                                  const std::vector<std::string>& caller_env,
                                                  client::Client cl, int& rc) {
  const api::Session& s = *r.session;
  transcript::RecorderOptions ro;
  ro.spool_dir = host.cfg.spool_dir;
  ro.session_id = std::to_string(s.id);
  ro.request_id = std::to_string(r.id);
  ro.required = s.record != api::kRecordBestEffort;
  ro.mask_patterns = s.mask;
  for (const auto& e : caller_env)
    if (e.starts_with("TERM=")) ro.header.term = e.substr(5);
  ro.header.shell = target.shell;
  ro.header.title = "hoop session " + ro.session_id + ": " + format_argv(req.argv);
  ro.header.session = ro.session_id;
  ro.header.request = ro.request_id;
  ro.header.host = r.host;
  ro.header.user = r.user;
  ro.header.run_as = r.run_as;
  ro.header.argv = r.argv;
  ro.header.path = r.path;
  ro.header.digest = r.digest;
  ro.uploader = std::make_unique<HttpUploader>(std::move(cl), s.id);
  // Printed in the middle of the command's output, maybe in raw mode.
  ro.notice = [](const std::string& line) {
    const std::string msg = "\r\nhoopctl: " + (is_clean_text(line) ? line : escape_for_terminal(line)) + "\r\n";
    (void)!::write(2, msg.data(), msg.size());
  };
  auto rec = transcript::Recorder::create(std::move(ro));
  if (!rec) {
    rc = fail(kExitRunNoRecording, "cannot record session " + std::to_string(s.id) + ": " +
                                       rec.error().message + "; not run");
    return nullptr;
  }
  if (auto st = (*rec)->start(); !st) {
    rc = fail(kExitRunNoRecording, st.error().message + "; rule " + escape_for_terminal(r.rule) +
                                       " requires a recording (record = \"required\"): not run");
    return nullptr;
  }
  if (!(*rec)->start_notice().empty()) say((*rec)->start_notice());
  return std::move(*rec);
}

int run_privileged(RunOpts& o) {
  // 1-2 happened in prepare(); stop here if they did not succeed.
  if (!o.prepared) return fail(kExitRunRefused, o.prepared.error().message);
  if (::geteuid() != 0)
    return fail(kExitRunRefused, "hoopctl run needs hoopctl to be installed setuid root; ask an admin");
  auto caller = sys::current_caller();
  if (!caller) return fail(kExitRunRefused, caller.error().message);

  std::optional<milliseconds> timeout;
  if (auto st = check_command_line(o, timeout); !st) {
    say(st.error().message);
    (void)std::fprintf(stderr, "%s\n", kUsage);
    return kExitRunUsage;
  }

  // 3. Trusted files, from fixed paths only.
  auto host = load_host();
  if (!host) return fail(kExitRunRefused, host.error().message);

  // 4. Who to run as, and what exactly.
  auto target = exec::lookup_target(o.user);
  if (!target) return fail(kExitRunUsage, target.error().message);
  auto cmd = exec::resolve_command(o.command[0], host->cfg.secure_path);
  if (!cmd) return fail(kExitRunNotFound, cmd.error().message);
  std::error_code ec;
  const std::string cwd = std::filesystem::current_path(ec).string();
  if (ec) return fail(kExitRunRefused, "cannot tell the current directory (" + ec.message() + "); cd first");
  if (!is_clean_text(cwd) || cwd.size() > api::kMaxPathBytes)
    return fail(kExitRunRefused,
                "the current directory's name has control characters or is too long; cd first");
  const char* tty = ::isatty(0) == 1 ? ::ttyname(0) : nullptr;

  api::NewRequest req;
  req.user = caller->name;
  req.run_as = target->name;
  req.argv = o.command;
  req.path = cmd->path();
  req.digest = cmd->digest();
  req.cwd = cwd;
  req.tty = tty != nullptr && is_clean_text(tty) ? tty : "";
  req.reason = o.reason;
  req.use = true;  // an allowed command is filed and claimed in one call

  // 5. Ask, wait, claim; 6. start recording. The client moves into the
  // recorder's shipper (its connection is reused for the transcript).
  int64_t request_id = 0;
  std::unique_ptr<transcript::Recorder> recorder;
  {
    auto cl = client::Client::create(host_client_options(*host, "hoopctl-run"));
    if (!cl) return fail(kExitRunRefused, cl.error().message);

    catch_signals(true);
    api::Request r;
    if (int rc = obtain_grant(*cl, req, o, timeout, *host, r); rc != kGo) return rc;
    if (int rc = claim_grant(*cl, r, req, *host); rc != kGo) return rc;
    request_id = r.id;
    int rc = 0;
    recorder = start_recording(*host, r, req, *target, o.caller_env, std::move(*cl), rc);
    if (!recorder) return rc;
  }
  catch_signals(false);  // from here the monitor owns signals

  if (auto st = exec::verify_digest(*cmd, req.digest); !st)
    return fail(kExitRunRefused, st.error().message + "; it changed after it was approved, not running it");
  const auto env = exec::build_environment(o.caller_env, *target, host->cfg.secure_path, caller->name,
                                           caller->uid, request_id);

  pty::MonitorOptions mo;
  mo.use_pty = ::isatty(0) == 1;
  mo.observer = recorder->observer();
  bool spawn_failed = false;
  auto status = pty::run_monitored(mo, [&](const pty::ChildFds& fds) -> Result<pid_t> {
    exec::SpawnSpec s;
    s.command = &*cmd;
    s.argv = o.command;
    s.env = env;
    s.target = *target;
    s.cwd = cwd;
    s.stdin_fd = fds.stdin_fd;
    s.stdout_fd = fds.stdout_fd;
    s.stderr_fd = fds.stderr_fd;
    s.ctty_fd = fds.ctty_fd;
    auto pid = exec::spawn(s);
    spawn_failed = !pid;
    return pid;
  });
  // The transcript goes on to the server; a command that never started
  // still completes its (empty) session.
  // hoopd already away at the start (best effort): do not hold the caller
  // long; the spool keeps the transcript for `hoopctl ship`.
  const milliseconds grace = recorder->start_notice().empty() ? kShipGrace : kShipGraceOffline;
  const auto report =
      recorder->finish(status ? std::optional<int>(*status) : std::nullopt, Clock::now() + grace);
  if (!report.confirmed) say("the transcript of this session " + report.detail);
  recorder.reset();
  // hoopd took ours: a good moment to send what earlier runs left behind.
  if (report.confirmed) ship_leftovers(*host);
  wipe(host->token);
  if (!status) return fail(spawn_failed ? kExitRunNotFound : kExitRunRefused, status.error().message);
  return *status;
}

}  // namespace

Runner setup_run(CLI::App& sub) {
  auto o = std::make_shared<RunOpts>();
  o->sub = &sub;
  // Runs when CLI11 meets `run`, before it parses any of run's arguments.
  sub.preparse_callback([o](size_t) { o->prepared = prepare_privileged(o->caller_env); });
  // Everything after CMD belongs to CMD (getopt's "+"), and unknown options
  // are collected so check_command_line reports them with exit status 121.
  sub.positionals_at_end();
  sub.allow_extras();
  sub.footer(kRunFooter);
  o->user_opt = sub.add_option("-u,--user", o->user, "run as USER, a user name (default: root)")
                    ->expected(0, 1)
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  o->reason_opt = sub.add_option("-r,--reason", o->reason, "why: shown to the reviewers")
                      ->expected(0, 1)
                      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  o->timeout_opt = sub.add_option("--timeout", o->timeout,
                                  "stop waiting (and cancel the request) after DURATION, e.g. 10m "
                                  "(default: until the server expires it)")
                       ->expected(0, 1)
                       ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  sub.add_flag("--no-wait", o->no_wait,
               "file the request, print its id and exit 0; run the same command again once approved");
  sub.add_option("command", o->command, "CMD [ARG...]: the command, found in secure_path");
  return [o]() -> Result<int> { return run_privileged(*o); };
}

}  // namespace hoop::ctl
