#pragma once
// hoop-shell's core: one command line in, an exit status out. Every side
// effect (starting hoopctl, cd) goes through the Os interface, so tests run
// it against a fake.
// MUST: run commands only as `hoopctl run -- WORDS` with the fixed hoopctl
//       path and the allow-listed environment; allowed transfers only from
//       the fixed paths in rules.h; never gain privilege itself.
// MUST: print every refusal as one line naming the construct or rule, and
//       return kExitRefused for it.
// MUST NOT: print the user's bytes unescaped, or pass the user's
//       environment beyond environment.h's allow-list.

#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "config/host_config.h"
#include "shell/rules.h"

namespace hoop::shell {

// Exit statuses, documented in hoop-shell(1). Everything else is passed on
// from `hoopctl run` (the command's own status, or its 118-127).
inline constexpr int kExitShellError = 116;  // hoop-shell itself failed: usage, config, cannot start hoopctl
inline constexpr int kExitRefused = 117;     // refused by hoop-shell's rules (syntax, transfer, agent, cd)

/// The operating system as hoop-shell uses it.
class Os {
 public:
  virtual ~Os() = default;
  /// Starts argv (argv[0] an absolute path) with exactly `env` and waits:
  /// its exit status, or 128+N when signal N ended it.
  virtual Result<int> run(const std::vector<std::string>& argv, const std::vector<std::string>& env) = 0;
  /// Replaces this process with argv; returns only why it could not.
  virtual Error replace(const std::vector<std::string>& argv, const std::vector<std::string>& env) = 0;
  /// The canonical absolute path of an existing `path`.
  virtual Result<std::string> canonical(const std::string& path) = 0;
  virtual Status change_dir(const std::string& dir) = 0;
  virtual std::string current_dir() = 0;
  virtual bool exists(const std::string& path) = 0;
};

struct ShellOptions {
  config::ShellConfig cfg;
  std::string hoopctl;           // absolute path of hoopctl
  std::string user;              // the caller, from the password database
  std::string home;              // the caller's home, from the password database
  std::vector<std::string> env;  // hoopctl_environment(the session's environment)
};

class Shell {
 public:
  Shell(ShellOptions o, Os& os, std::ostream& out, std::ostream& err);

  /// Runs one command line. `last`: nothing follows it, so a request or a
  /// transfer may replace this process (its status is then the process's).
  int execute(std::string_view line, bool last);
  /// The whole session as one request: hoopctl run -u USER -- LOGIN_SHELL -l.
  int login_session(bool last);

  bool exit_requested() const { return exit_requested_; }
  int status() const { return status_; }
  /// Where the `history` builtin gets its lines (the prompt's history).
  void set_history(std::function<std::vector<std::string>()> h) { history_ = std::move(h); }
  /// "hoop-shell: MSG" on the error stream, escaped when it needs to be.
  void say(std::string_view msg);

 private:
  int builtin(const Decision& d);
  int cd(const std::vector<std::string>& argv);
  int requests();
  int launch(const std::vector<std::string>& argv, const std::vector<std::string>& env, bool last);
  std::vector<std::string> transfer_env() const;

  ShellOptions o_;
  Os& os_;
  std::ostream& out_;
  std::ostream& err_;
  std::function<std::vector<std::string>()> history_;
  int status_ = 0;
  bool exit_requested_ = false;
};

/// The text of the `help` builtin and of --help.
std::string help_text();

}  // namespace hoop::shell
