#pragma once
// hoop-shell's interactive prompt: libedit for line editing and in-memory
// history (no ~/.editrc is read, no history file is written: what ran is
// recorded by hoopd), and the read-execute loop.

#include <string>

#include "shell/shell.h"

namespace hoop::shell {

struct PromptInfo {
  std::string user;
  std::string host;
  std::string home;
};

/// Reads lines from the terminal on stdin until Ctrl-D or `exit`, running
/// each through `sh`. Ctrl-C drops the line being typed. Returns the
/// session's exit status (that of the last command, or exit's argument).
/// Call install_prompt_signals() first.
int run_interactive(Shell& sh, Os& os, const PromptInfo& info);

}  // namespace hoop::shell
