#pragma once
// Starting the approved command as the target user.
//
// MUST, in the child, in this order: new session; controlling terminal when
// one is given; fds 0-2 from the spec and nothing else open but the exec fd;
// signal dispositions and mask reset; sys::switch_identity (setresgid ->
// initgroups -> setresuid, verified, old ids unreachable); umask 022; sane
// resource limits (core dumps off); chdir to cwd (or fail); with a
// terminal, fork once more: the command gets a process group of its own in
// the terminal's foreground, and the first child stays as a small session
// leader that makes Ctrl-Z work (see supervise() in spawn.cc); fexecve the
// pinned descriptor with the rebuilt environment.
// The pid returned is then the session leader's: it relays the monitor's
// signals to the command's group (SIGTSTP as SIGTSTP), stops itself when
// the command stops, continues the command when continued, and exits as the
// command did (same code, or killed by the same signal).
// MUST NOT: return to the caller's code in the child on any failure: it
// writes one line to the error pipe and _exit(127).

#include <string>
#include <sys/types.h>
#include <vector>

#include "common/error.h"
#include "exec/command.h"

namespace hoop::exec {

struct SpawnSpec {
  const ResolvedCommand* command = nullptr;
  std::vector<std::string> argv;  // argv[0] as the user typed it
  std::vector<std::string> env;   // from build_environment
  Target target;
  std::string cwd;
  int stdin_fd = 0, stdout_fd = 1, stderr_fd = 2;
  int ctty_fd = -1;               // pty slave to make the controlling terminal, or -1
};

/// Forks and execs. Returns the child's pid once the exec has succeeded
/// (a CLOEXEC status pipe tells exec failure apart: then an Error with the
/// child's message and the child already reaped).
Result<pid_t> spawn(const SpawnSpec& spec);

/// Shell-style status: exit code, or 128 + signal number.
int exit_status_of(int wait_status);

}  // namespace hoop::exec
