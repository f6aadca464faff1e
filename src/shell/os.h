#pragma once
// The real Os for hoop-shell: fork/exec/wait, realpath, chdir. The only
// file of the module with system calls besides prompt.cc (libedit).
// hoop-shell runs unprivileged, so these are plain calls; src/sys holds the
// privileged ones.

#include "shell/shell.h"

namespace hoop::shell {

class RealOs final : public Os {
 public:
  /// The child gets default dispositions for every signal the shell catches
  /// or ignores, and an empty signal mask. A child that stops is continued
  /// at once: hoop-shell has no job control to resume it later.
  Result<int> run(const std::vector<std::string>& argv, const std::vector<std::string>& env) override;
  Error replace(const std::vector<std::string>& argv, const std::vector<std::string>& env) override;
  Result<std::string> canonical(const std::string& path) override;
  Status change_dir(const std::string& dir) override;
  std::string current_dir() override;
  bool exists(const std::string& path) override;
};

/// Sets the dispositions of the interactive prompt: SIGINT and SIGQUIT set a
/// flag (no SA_RESTART, so a read at the prompt returns), SIGWINCH sets a
/// flag, SIGTSTP/SIGTTIN/SIGTTOU are ignored (no job control).
void install_prompt_signals();
/// Whether SIGINT/SIGQUIT (resp. SIGWINCH) arrived since the last call; clears it.
bool take_interrupt();
bool take_resize();

}  // namespace hoop::shell
