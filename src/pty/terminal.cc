#include "pty/terminal.h"

#include <fcntl.h>
#include <pty.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

namespace hoop::pty {
namespace {

Error sys_error(const char* what) {
  return make_error(Errc::io, std::string(what) + ": " + std::strerror(errno));
}

Status add_fd_flags(int fd, bool cloexec, bool nonblock) {
  if (cloexec) {
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) return sys_error("fcntl(F_SETFD)");
  }
  if (nonblock) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return sys_error("fcntl(F_SETFL)");
  }
  return {};
}

// Blocks SIGTTOU for one scope: a terminal write of the mode from a
// background process group is then allowed instead of stopping us, which is
// what restoring the caller's terminal needs.
class BlockTtou {
 public:
  BlockTtou() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTTOU);
    pthread_sigmask(SIG_BLOCK, &s, &old_);
  }
  ~BlockTtou() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  BlockTtou(const BlockTtou&) = delete;
  BlockTtou& operator=(const BlockTtou&) = delete;

 private:
  sigset_t old_{};
};

}  // namespace

void Fd::reset(int fd) {
  if (fd_ >= 0) close(fd_);  // close() is final on Linux even on EINTR: no retry
  fd_ = fd;
}

Result<termios> get_termios(int fd) {
  termios t{};
  while (tcgetattr(fd, &t) != 0) {
    if (errno != EINTR) return sys_error("tcgetattr");
  }
  return t;
}

Status set_termios(int fd, const termios& mode) {
  // TCSADRAIN: output already written keeps the mode it was written under,
  // and typeahead is not thrown away (TCSAFLUSH would).
  while (tcsetattr(fd, TCSADRAIN, &mode) != 0) {
    if (errno != EINTR) return sys_error("tcsetattr");
  }
  return {};
}

Result<winsize> get_window_size(int fd) {
  winsize w{};
  while (ioctl(fd, TIOCGWINSZ, &w) != 0) {
    if (errno != EINTR) return sys_error("ioctl(TIOCGWINSZ)");
  }
  return w;
}

Status set_window_size(int fd, const winsize& size) {
  while (ioctl(fd, TIOCSWINSZ, &size) != 0) {
    if (errno != EINTR) return sys_error("ioctl(TIOCSWINSZ)");
  }
  return {};
}

bool echo_enabled(int fd) {
  termios t{};
  if (tcgetattr(fd, &t) != 0) return false;
  return (t.c_lflag & ECHO) != 0;
}

Status RawMode::enter(int fd) {
  auto mode = get_termios(fd);
  if (!mode) return mode.error();
  termios raw = *mode;
  cfmakeraw(&raw);
  // Saved before the change, so a failure half way still restores.
  fd_ = fd;
  saved_ = *mode;
  active_ = true;
  return set_termios(fd, raw);
}

Status RawMode::reenter() {
  if (fd_ < 0) return make_error(Errc::internal, "RawMode::reenter before enter");
  return enter(fd_);
}

Status RawMode::reapply() {
  if (!active_) return {};
  termios raw = saved_;
  cfmakeraw(&raw);
  return set_termios(fd_, raw);
}

bool RawMode::restore() {
  if (!active_) return true;
  active_ = false;
  BlockTtou block;
  return set_termios(fd_, saved_).ok();
}

Result<PtyPair> open_pty(const std::optional<termios>& mode, const std::optional<winsize>& size) {
  int m = -1;
  int s = -1;
  if (openpty(&m, &s, nullptr, mode ? &*mode : nullptr, size ? &*size : nullptr) != 0)
    return sys_error("openpty");
  PtyPair p{Fd(m), Fd(s)};
  if (auto st = add_fd_flags(m, true, true); !st) return st.error();
  if (auto st = add_fd_flags(s, true, false); !st) return st.error();
  return p;
}

Result<Pipe> open_pipe(bool nonblock_read) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return sys_error("pipe2");
  Pipe p{Fd(fds[0]), Fd(fds[1])};
  if (auto st = add_fd_flags(nonblock_read ? fds[0] : fds[1], false, true); !st) return st.error();
  return p;
}

}  // namespace hoop::pty
