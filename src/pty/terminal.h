#pragma once
// Terminal and descriptor helpers for the monitor: an owned fd, termios raw
// mode with guaranteed restoration, window sizes, and opening the command's
// pseudo-terminal and pipes.
//
// MUST: leave the caller's terminal exactly as it was found: RawMode restores
// the saved termios on every exit path (its destructor), also when the
// monitor is in the background (SIGTTOU is blocked for the restore).
// MUST: create every fd close-on-exec, so the command inherits only what
// ChildFds hands it.
// MUST NOT: set O_NONBLOCK on the caller's fds: the open file description is
// shared with the caller's shell and other jobs.

#include <sys/ioctl.h>
#include <termios.h>

#include <optional>
#include <utility>

#include "common/error.h"

namespace hoop::pty {

/// Owns one file descriptor; closes it when destroyed or reset. Move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

/// termios and window size accessors; retry on EINTR, Error names the call.
Result<termios> get_termios(int fd);
Status set_termios(int fd, const termios& mode);
Result<winsize> get_window_size(int fd);
Status set_window_size(int fd, const winsize& size);

/// Whether the terminal behind `fd` echoes input now (ECHO in c_lflag). On a
/// pty master Linux reports the slave's mode. Unknown counts as not echoing,
/// so a failure can only ever hide input from a recording, never expose it.
bool echo_enabled(int fd);

/// Puts a terminal in raw mode (cfmakeraw of its current mode) and restores
/// the saved mode when asked, on reapply after a stop, and on destruction.
/// Not copyable or movable: it is the one record of the caller's mode.
class RawMode {
 public:
  RawMode() = default;
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;
  ~RawMode() { restore(); }

  /// Saves the mode of `fd` and switches it to raw.
  Status enter(int fd);
  /// After restore(): saves the mode found now (the caller may have changed
  /// it while we were stopped) and switches to raw again.
  Status reenter();
  /// While active: applies raw mode again without saving (a job-control
  /// shell resets the terminal to its own mode when it stops a job).
  Status reapply();
  /// Restores the saved mode; idempotent. Returns false if the terminal
  /// refused (it may have been hung up), which callers can only report.
  bool restore();
  bool active() const { return active_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool active_ = false;
  termios saved_{};
};

/// The command's pseudo-terminal. The slave starts with the caller's mode
/// and window size when given; both ends are close-on-exec and the master is
/// non-blocking (it belongs to the monitor alone).
struct PtyPair {
  Fd master;
  Fd slave;
};
Result<PtyPair> open_pty(const std::optional<termios>& mode, const std::optional<winsize>& size);

/// A close-on-exec pipe; the end the monitor keeps is made non-blocking
/// (`nonblock_read` picks which end that is).
struct Pipe {
  Fd read;
  Fd write;
};
Result<Pipe> open_pipe(bool nonblock_read);

}  // namespace hoop::pty
