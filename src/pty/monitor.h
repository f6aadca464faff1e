#pragma once
// The monitor: runs the approved command under a new pseudo-terminal when
// the caller has a terminal (so the command can never inject keystrokes into
// the caller's terminal with TIOCSTI), and under pipes otherwise; relays
// bytes, window size changes and signals; returns the command's status.
//
// MUST: restore the caller's terminal mode on every exit path (normal end,
// error, SIGTERM/SIGHUP/SIGINT to the monitor).
// MUST: keep memory bounded whatever the output size (fixed buffers).
// MUST NOT: pass the caller's terminal itself to the command.

#include <functional>
#include <string_view>
#include <sys/types.h>

#include "common/error.h"

namespace hoop::pty {

/// Where the command's fds come from, decided by the monitor.
struct ChildFds {
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int ctty_fd = -1;  // pty slave, or -1 in pipe mode
};

/// Observes every byte that passes (issue 4 records through this): `output`
/// for the command's output, `input` for the caller's keystrokes with
/// `echo` telling whether the pty currently echoes, `resize` for window size
/// changes, `begin` once before the command starts with the initial window
/// size and whether the command gets a terminal (a pty may be 0x0 when the
/// caller's terminal reports no size; the asciicast header needs both). All
/// optional. Views point into the relay buffer: valid only during the call.
///
/// An observer that hands bytes on in batches says so through `flush_in_ms`:
/// -1 when it holds nothing back, else how soon (ms, >= 0) it wants `flush`
/// called. The relay then never sleeps longer than that and calls `flush`
/// after every wait while something is held (flush checks the time itself).
struct Observer {
  std::function<void(std::string_view)> output;
  std::function<void(std::string_view, bool echo)> input;
  std::function<void(unsigned short cols, unsigned short rows)> resize;
  std::function<void(unsigned short cols, unsigned short rows, bool terminal)> begin;
  std::function<int()> flush_in_ms;
  std::function<void()> flush;
};

struct MonitorOptions {
  bool use_pty = true;  // when false or the caller has no terminal: pipes
  Observer observer;
};

/// Sets up the pty (or pipes), calls `start` to spawn the command with the
/// given fds (the monitor closes its copies of the child's ends afterwards),
/// relays until the command exits and its output is drained, and returns the
/// shell-style exit status (code, or 128 + signal).
Result<int> run_monitored(const MonitorOptions& opts,
                          const std::function<Result<pid_t>(const ChildFds&)>& start);

}  // namespace hoop::pty
