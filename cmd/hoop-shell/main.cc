// hoop-shell: a restricted login shell and SSH ForceCommand. Every command
// becomes `hoopctl run -- CMD`: a request to hoopd, run once approved and
// recorded. NOT setuid: it runs as the logged-in user.
// MUST: take the user from the real uid (password database), never $USER;
//       read its config only from HOOP_SYSCONFDIR/hoop.toml, root's alone;
//       start hoopctl only from the path fixed at build time or in that
//       config, never from PATH or another variable.
// MUST: refuse a session with a forwarded agent unless the config allows it.
// MUST NOT: let an exception escape main; pass on the environment beyond
//       shell/environment.h's allow-list.

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "common/escape.h"
#include "config/host_config.h"
#include "shell/environment.h"
#include "shell/invocation.h"
#include "shell/os.h"
#include "shell/prompt.h"
#include "shell/rules.h"
#include "shell/shell.h"
#include "sys/privilege.h"
#include "sys/secure_file.h"

extern char** environ;

namespace {

using namespace hoop::shell;

constexpr const char* kConfigPath = HOOP_SYSCONFDIR "/hoop.toml";
constexpr size_t kMaxConfigBytes = size_t{64} * 1024;

constexpr const char* kUsage =
    "usage: hoop-shell [-c COMMAND] [--login-session]\n"
    "A restricted login shell and SSH ForceCommand: every command becomes a request to hoopd\n"
    "through `hoopctl run` (" HOOP_HOOPCTL " unless [shell] hoopctl in " HOOP_SYSCONFDIR
    "/hoop.toml says otherwise).\n"
    "  -c COMMAND        run COMMAND (what sshd passes a login shell)\n"
    "  --login-session   without a command: the whole session as one approved, recorded request\n"
    "                    for the login shell ([shell] login_shell, default /bin/bash)\n"
    "Without -c, the command comes from SSH_ORIGINAL_COMMAND (ForceCommand), else a prompt.\n"
    "Exit status: the command's own, through hoopctl run (118-125, 127: hoopctl's refusals);\n"
    "117 refused by hoop-shell's rules; 116 hoop-shell could not run. See hoop-shell(1).\n";

void say(const std::string& msg) {
  const std::string safe = hoop::is_clean_text(msg) ? msg : hoop::escape_for_terminal(msg);
  (void)std::fprintf(stderr, "hoop-shell: %s\n", safe.c_str());
}

// The [shell] table; defaults (everything optional refused) when hoop is not
// set up here, in which case hoopctl will say so.
hoop::Result<hoop::config::ShellConfig> load_config() {
  auto text = hoop::sys::read_root_owned_file(kConfigPath, kMaxConfigBytes);
  if (!text) {
    if (text.error().code == hoop::Errc::not_found) return hoop::config::ShellConfig{};
    return text.error();
  }
  auto cfg = hoop::config::parse_host_config(*text, kConfigPath);
  if (!cfg) return cfg.error();
  return cfg->shell;
}

std::string self_path() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("hoop-shell");
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  std::string h(buf);
  return h.substr(0, h.find('.'));
}

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  const char* original = std::getenv("SSH_ORIGINAL_COMMAND");
  const Invocation inv = plan_invocation(args, original, self_path(), ::isatty(0) == 1);
  switch (inv.mode) {
    case Mode::help:
      (void)std::fputs(kUsage, stdout);
      return 0;
    case Mode::version:
      (void)std::puts("hoop-shell 0.1.0");
      return 0;
    case Mode::usage_error:
      say(inv.error);
      (void)std::fputs("usage: hoop-shell [-c COMMAND] [--login-session]\n", stderr);
      return kExitShellError;
    default:
      break;
  }

  auto caller = hoop::sys::current_caller();
  if (!caller) {
    say(caller.error().message);
    return kExitShellError;
  }
  auto cfg = load_config();
  if (!cfg) {
    say("cannot use " + std::string(kConfigPath) + ": " + cfg.error().message);
    return kExitShellError;
  }
  const std::string refusal = agent_forwarding_refusal(std::getenv("SSH_AUTH_SOCK") != nullptr, *cfg);
  if (!refusal.empty()) {
    say("refused: " + refusal);
    return kExitRefused;
  }

  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  ShellOptions o;
  o.hoopctl = cfg->hoopctl.empty() ? HOOP_HOOPCTL : cfg->hoopctl;
  o.cfg = std::move(*cfg);
  o.user = caller->name;
  o.home = caller->home;
  o.env = hoopctl_environment(env);

  RealOs os;
  Shell sh(std::move(o), os, std::cout, std::cerr);
  switch (inv.mode) {
    case Mode::command:
      return sh.execute(inv.command, true);
    case Mode::login_session:
      return sh.login_session(true);
    case Mode::no_terminal:
      say("no command and no terminal: pass a command (ssh HOST -- COMMAND) or ask for a terminal (ssh -t)");
      return kExitShellError;
    case Mode::interactive: {
      install_prompt_signals();
      say("every command here is a request to hoopd (hoopctl run); type help for the rules");
      return run_interactive(sh, os, PromptInfo{caller->name, host_name(), caller->home});
    }
    default:
      return kExitShellError;
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    say(std::string("internal error: ") + e.what());
  } catch (...) {
    say("internal error");
  }
  return kExitShellError;
}
