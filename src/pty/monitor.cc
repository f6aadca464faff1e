// The monitor loop: one process, one poll(), fixed buffers.
//
// MUST: restore the caller's terminal on every exit path: RawMode's
// destructor runs on every return, and the signals that would otherwise kill
// us (SIGTERM, SIGHUP, SIGINT, SIGQUIT) are caught, forwarded to the command,
// and the loop goes on until the command has exited.
// MUST: keep memory bounded: one 64 KiB buffer per direction, allocated once;
// a full buffer stops reading its source (backpressure), it never grows.
// MUST NOT: give the command the caller's terminal (TIOCSTI): in terminal
// mode it gets only the new pty's slave; in pipe mode a terminal on stdin is
// relayed through a pipe, never passed on.
// MUST NOT: allocate per read; observers get views into the relay buffer.
//
// Signals:
// - Keyboard Ctrl-C / Ctrl-\ / Ctrl-Z in terminal mode: the caller's terminal
//   is raw, so they arrive as bytes, go into the pty, and its line discipline
//   signals the command's foreground group, as on a terminal of its own.
// - SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 sent to the monitor
//   (by kill, or by the caller's terminal in pipe mode) go to the command's
//   process group (its pid: the child calls setsid).
// - Terminal mode: the child we start is a session leader of hoopctl's own
//   (exec/spawn.h) with the command in its own foreground group below it,
//   so Ctrl-Z's SIGTSTP stops the command as on any terminal, and the
//   session leader then stops itself, which we see. SIGTSTP sent to the
//   monitor is forwarded as SIGTSTP.
// - Pipe mode: SIGTSTP sent to the monitor (kill, or Ctrl-Z on the caller's
//   terminal) stops the command with SIGSTOP (a session leader whose parent
//   is outside its session heads an orphaned group, for which the kernel
//   drops SIGTSTP), then the monitor suspends itself as below.
// - When the command stops, the monitor restores the terminal and stops
//   itself (SIGTSTP, default action) so the caller's shell gets the terminal
//   back, as sudo does; when continued it re-enters raw mode (if in the
//   foreground) and sends SIGCONT. In an orphaned group the kernel drops our
//   SIGTSTP and the command simply continues.
// - SIGWINCH: the caller's size goes to the pty (the kernel then signals the
//   command's foreground group) and, when it changed, to observer.resize.
// - SIGPIPE: a handler that does nothing. Not SIG_IGN: that would survive
//   exec into the command. Failed writes are handled as described next.
//
// The caller's output goes away (EPIPE, EIO on fd 1 or 2):
// - from a pipe of ours: we close our read end, so the command gets SIGPIPE or
//   EPIPE on its next write, as if its output had gone there directly
//   (`hoopctl run -- yes | head -1` ends, as with sudo);
// - from the pty: treated as a terminal hangup: SIGHUP to the command, and
//   the pty is still read (and observed) but the bytes are discarded, so the
//   command can never block on it.
//
// The caller's terminal is written through an open file of our own: the
// monitor opens /proc/self/fd/N (the same terminal, checked by device number)
// non-blocking and write-only, so a full terminal never stops the relay and
// the caller's own file keeps its flags (setting O_NONBLOCK on it would leak
// to the shell that shares it). Blocking, the relay waited in write() while
// the terminal drained and the command's pty sat full: measured 1.7 ms a
// write. Where the reopen fails, the caller's fd is used, written only when
// poll() says it can take bytes.
//
// End: the command has been reaped AND every output source has reached
// EOF/EIO and been written out. A descendant that keeps the pty or a pipe
// open cannot hold us: the drain stops after kDrainIdle without a byte, or
// kDrainMax after the exit, whichever comes first.

#include "pty/monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include "pty/terminal.h"

namespace hoop::pty {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kBufferSize = size_t{64} * 1024;
constexpr auto kDrainIdle = std::chrono::seconds(1);
constexpr auto kDrainMax = std::chrono::seconds(5);
constexpr size_t kMaxChannels = 3;

constexpr int kCaught[] = {SIGCHLD, SIGWINCH, SIGCONT, SIGTSTP, SIGPIPE, SIGHUP,
                           SIGINT,  SIGQUIT,  SIGTERM, SIGUSR1, SIGUSR2};
constexpr int kForwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

/// A second open file of the caller's terminal `fd`, write-only and
/// non-blocking; an empty Fd when `fd` is not a writable terminal or the
/// reopen fails or does not lead to the same device.
Fd reopen_terminal_nonblocking(int fd) {
  struct stat was {};
  if (fstat(fd, &was) != 0 || !S_ISCHR(was.st_mode) || !isatty(fd)) return Fd();
  const int acc = fcntl(fd, F_GETFL) & O_ACCMODE;
  if (acc != O_WRONLY && acc != O_RDWR) return Fd();
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  Fd nb(open(path.c_str(), O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  struct stat is {};
  if (nb.get() < 0 || fstat(nb.get(), &is) != 0 || !S_ISCHR(is.st_mode) || is.st_rdev != was.st_rdev ||
      !isatty(nb.get()))
    return Fd();
  return nb;
}

std::atomic<int> g_wake_fd{-1};
std::atomic<pid_t> g_monitor_pid{0};
std::atomic<bool> g_pending[NSIG];

extern "C" void on_signal(int sig) {
  const int saved_errno = errno;
  if (getpid() != g_monitor_pid.load()) {
    // A child forked by `start` that has not exec'd yet: behave as if the
    // monitor had never installed anything.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    static_cast<void>(sigaction(sig, &dfl, nullptr));
    static_cast<void>(raise(sig));
  } else {
    g_pending[sig].store(true);
    const char byte = 0;
    const ssize_t r = write(g_wake_fd.load(), &byte, 1);  // a full pipe already wakes us
    static_cast<void>(r);
  }
  errno = saved_errno;
}

Error sys_error(const char* what) {
  return make_error(Errc::io, std::string(what) + ": " + std::strerror(errno));
}

/// Turns the caught signals into flags plus a byte on a pipe that poll()
/// watches. No SA_RESTART: a blocking write to the caller's terminal returns
/// when a signal arrives, so the loop can act on it.
class SignalRelay {
 public:
  SignalRelay() = default;
  SignalRelay(const SignalRelay&) = delete;
  SignalRelay& operator=(const SignalRelay&) = delete;
  ~SignalRelay() {
    if (!installed_) return;
    for (size_t i = 0; i < std::size(kCaught); ++i) sigaction(kCaught[i], &old_[i], nullptr);
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    g_wake_fd.store(-1);
  }

  Status install() {
    if (g_wake_fd.load() != -1) return make_error(Errc::internal, "only one monitor per process");
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return sys_error("pipe2");
    read_.reset(p[0]);
    write_.reset(p[1]);
    g_monitor_pid.store(getpid());
    g_wake_fd.store(p[1]);
    sigset_t caught;
    sigemptyset(&caught);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kCaught); ++i) {
      g_pending[kCaught[i]].store(false);
      sigaction(kCaught[i], &sa, &old_[i]);
      sigaddset(&caught, kCaught[i]);
    }
    pthread_sigmask(SIG_UNBLOCK, &caught, &old_mask_);
    installed_ = true;
    return {};
  }

  int fd() const { return read_.get(); }
  void drain() const {
    char sink[64];
    while (read(read_.get(), sink, sizeof sink) > 0) {
    }
  }
  static bool take(int sig) { return g_pending[sig].exchange(false); }

 private:
  Fd read_;
  Fd write_;
  bool installed_ = false;
  struct sigaction old_[std::size(kCaught)]{};
  sigset_t old_mask_{};
};

/// One direction of the relay: src -> fixed buffer -> dst.
struct Channel {
  bool input = false;  // caller's keystrokes (observer.input) or command output
  int src = -1;
  int dst = -1;
  bool src_nonblock = false;  // ours: read until EAGAIN; the caller's: one read per poll
  bool dst_nonblock = false;
  bool src_open = true;
  bool dst_open = true;
  bool eof_to_dst = false;  // stdin relay: the caller's EOF becomes the command's EOF
  Fd own_src;               // our pipe ends: closing them is how EOF/EPIPE passes on
  Fd own_dst;
  std::unique_ptr<char[]> buf;
  size_t head = 0;
  size_t tail = 0;
  int src_slot = -1;  // index into this round's pollfd array
  int dst_slot = -1;

  bool empty() const { return head == tail; }
  void clear() { head = tail = 0; }
  void close_src() {
    src_open = false;
    own_src.reset();
  }
};

class Session {
 public:
  explicit Session(const Observer& obs) : obs_(obs) {}
  Status setup(bool terminal, ChildFds& fds, std::array<Fd, 4>& child_ends);
  Result<int> relay(pid_t child, const SignalRelay& signals);

 private:
  Channel& add(bool input, int src, int dst);
  Status setup_terminal(ChildFds& fds, std::array<Fd, 4>& child_ends);
  Status setup_pipes(ChildFds& fds, std::array<Fd, 4>& child_ends);
  Result<int> loop(const SignalRelay& signals);
  size_t prepare_poll(std::array<pollfd, 1 + 2 * kMaxChannels>& pfd);
  size_t pump(Channel& c, const std::array<pollfd, 1 + 2 * kMaxChannels>& pfd);
  size_t fill(Channel& c);
  size_t flush(Channel& c);
  void dst_failed(Channel& c);
  void observe(const Channel& c, const char* p, size_t n);
  void handle_signals();
  void reap();
  void suspend();
  void on_continue();
  void sync_size();
  void forward(int sig) const;
  bool foreground() const { return tcgetpgrp(raw_.fd()) == getpgrp(); }
  bool outputs_done() const;
  void stop_inputs();
  void abandon();

  const Observer& obs_;
  bool terminal_ = false;
  Fd master_;
  std::optional<winsize> size_;
  std::array<Channel, kMaxChannels> ch_;
  size_t nch_ = 0;
  pid_t child_ = -1;
  std::optional<int> status_;
  bool lost_child_ = false;
  bool hung_up_ = false;
  bool quit_drain_ = false;
  RawMode raw_;  // last member: destroyed first, so the terminal is back before anything else
};

Channel& Session::add(bool input, int src, int dst) {
  Channel& c = ch_[nch_++];
  c.input = input;
  c.src = src;
  c.dst = dst;
  c.dst_open = dst >= 0;
  c.buf.reset(new char[kBufferSize]);  // not zeroed: touched only as bytes pass
  return c;
}

Status Session::setup(bool terminal, ChildFds& fds, std::array<Fd, 4>& child_ends) {
  terminal_ = terminal;
  Status st = terminal ? setup_terminal(fds, child_ends) : setup_pipes(fds, child_ends);
  if (!st) return st;
  if (obs_.begin) obs_.begin(size_ ? size_->ws_col : 0, size_ ? size_->ws_row : 0, terminal_);
  // Raw last, right before the command starts; RawMode undoes it if `start` fails.
  if (terminal_) return raw_.enter(0);
  return {};
}

// Output to a file or pipe gets a pipe (no CRLF, `test -t 1` false, as when
// run directly); the pty's own output goes to whichever of the caller's fds
// is the terminal.
Status Session::setup_terminal(ChildFds& fds, std::array<Fd, 4>& child_ends) {
  auto mode = get_termios(0);
  if (!mode) return mode.error();
  if (auto ws = get_window_size(0)) size_ = *ws;
  auto pty = open_pty(*mode, size_);
  if (!pty) return pty.error();
  master_ = std::move(pty->master);
  const int slave = pty->slave.get();
  fds.stdin_fd = fds.ctty_fd = slave;
  child_ends[0] = std::move(pty->slave);

  int term_out = -1;
  if (isatty(1)) {
    term_out = 1;
  } else if (isatty(2)) {
    term_out = 2;
  } else if ((fcntl(0, F_GETFL) & O_ACCMODE) == O_RDWR) {
    term_out = 0;  // a login terminal is opened read-write; echo and prompts go there
  }
  Channel& in = add(true, 0, master_.get());
  in.dst_nonblock = true;
  Channel& out = add(false, master_.get(), term_out);
  out.src_nonblock = true;
  if (Fd nb = term_out >= 0 ? reopen_terminal_nonblocking(term_out) : Fd(); nb.get() >= 0) {
    out.dst = nb.get();
    out.dst_nonblock = true;
    out.own_dst = std::move(nb);
  }

  for (int target : {1, 2}) {
    int& child_fd = target == 1 ? fds.stdout_fd : fds.stderr_fd;
    if (isatty(target)) {
      child_fd = slave;
      continue;
    }
    auto p = open_pipe(true);
    if (!p) return p.error();
    child_fd = p->write.get();
    child_ends[target] = std::move(p->write);
    Channel& c = add(false, p->read.get(), target);
    c.src_nonblock = true;
    c.own_src = std::move(p->read);
  }
  return {};
}

Status Session::setup_pipes(ChildFds& fds, std::array<Fd, 4>& child_ends) {
  fds.ctty_fd = -1;
  fds.stdin_fd = 0;
  if (isatty(0)) {
    // Never hand the caller's terminal to a root command: relay it instead.
    auto p = open_pipe(false);
    if (!p) return p.error();
    fds.stdin_fd = p->read.get();
    child_ends[0] = std::move(p->read);
    Channel& c = add(true, 0, p->write.get());
    c.dst_nonblock = true;
    c.eof_to_dst = true;
    c.own_dst = std::move(p->write);
  }
  for (int target : {1, 2}) {
    auto p = open_pipe(true);
    if (!p) return p.error();
    (target == 1 ? fds.stdout_fd : fds.stderr_fd) = p->write.get();
    child_ends[target] = std::move(p->write);
    Channel& c = add(false, p->read.get(), target);
    c.src_nonblock = true;
    c.own_src = std::move(p->read);
  }
  return {};
}

Result<int> Session::relay(pid_t child, const SignalRelay& signals) {
  child_ = child;
  try {
    auto r = loop(signals);
    if (!r) abandon();
    return r;
  } catch (const std::exception& e) {  // from an observer: fail closed
    abandon();
    return make_error(Errc::internal, std::string("monitor: ") + e.what());
  }
}

Result<int> Session::loop(const SignalRelay& signals) {
  std::array<pollfd, 1 + 2 * kMaxChannels> pfd{};
  std::optional<Clock::time_point> exited_at;
  Clock::time_point last_progress{};
  reap();  // the command may be gone already; its SIGCHLD flag is then stale but harmless
  for (;;) {
    signals.drain();
    handle_signals();
    if (lost_child_) return make_error(Errc::internal, "monitor: lost track of the command");
    int timeout = -1;
    if (status_) {
      const auto now = Clock::now();
      if (!exited_at) {
        exited_at = last_progress = now;
        stop_inputs();
      }
      if (outputs_done() || quit_drain_) break;
      const auto deadline = std::min(last_progress + kDrainIdle, *exited_at + kDrainMax);
      if (now >= deadline) break;
      timeout = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count());
    }
    const int flush_due = obs_.flush_in_ms && obs_.flush ? obs_.flush_in_ms() : -1;
    if (flush_due >= 0) timeout = timeout < 0 ? flush_due : std::min(timeout, flush_due);
    pfd[0] = {signals.fd(), POLLIN, 0};
    const size_t n = 1 + prepare_poll(pfd);
    const int ready = poll(pfd.data(), n, timeout);
    if (flush_due >= 0) obs_.flush();
    if (ready < 0) {
      if (errno == EINTR) continue;
      return sys_error("poll");
    }
    size_t moved = 0;
    for (size_t i = 0; i < nch_; ++i) moved += pump(ch_[i], pfd);
    if (moved > 0 && status_) last_progress = Clock::now();
  }
  raw_.restore();
  return *status_;
}

size_t Session::prepare_poll(std::array<pollfd, 1 + 2 * kMaxChannels>& pfd) {
  size_t n = 1;
  for (size_t i = 0; i < nch_; ++i) {
    Channel& c = ch_[i];
    if (c.empty()) c.clear();
    if (c.tail == kBufferSize && c.head > 0) {  // bounded: at most one buffer moved per round
      std::memmove(c.buf.get(), c.buf.get() + c.head, c.tail - c.head);
      c.tail -= c.head;
      c.head = 0;
    }
    c.src_slot = c.dst_slot = -1;
    if (c.src_open && c.tail < kBufferSize) {
      c.src_slot = static_cast<int>(n);
      pfd[n++] = {c.src, POLLIN, 0};
    }
    if (!c.empty() && c.dst_open) {
      c.dst_slot = static_cast<int>(n);
      pfd[n++] = {c.dst, POLLOUT, 0};
    }
  }
  return n - 1;
}

size_t Session::pump(Channel& c, const std::array<pollfd, 1 + 2 * kMaxChannels>& pfd) {
  size_t moved = 0;
  if (c.src_slot >= 0 && pfd[c.src_slot].revents != 0) moved += fill(c);
  if (!c.dst_open) c.clear();  // discarding: observed, never written
  // A blocking fd of the caller is written only when poll said so; ours are
  // non-blocking and can be tried at once.
  const bool writable = c.dst_slot >= 0 ? pfd[c.dst_slot].revents != 0 : c.dst_nonblock;
  if (!c.empty() && c.dst_open && writable) moved += flush(c);
  if (c.eof_to_dst && !c.src_open && c.empty()) c.own_dst.reset();
  return moved;
}

size_t Session::fill(Channel& c) {
  size_t total = 0;
  while (c.tail < kBufferSize) {
    const size_t room = kBufferSize - c.tail;
    const ssize_t r = read(c.src, c.buf.get() + c.tail, room);
    if (r > 0) {
      observe(c, c.buf.get() + c.tail, static_cast<size_t>(r));
      c.tail += static_cast<size_t>(r);
      total += static_cast<size_t>(r);
      // Less than asked for: the source is empty for now, and another read
      // would only say EAGAIN (a pty gives at most 4 KiB a read, then needs
      // the kernel's flush work to refill; measured: 1 read in 4 failed).
      if (!c.src_nonblock || static_cast<size_t>(r) < room) break;
      continue;
    }
    if (r < 0 && errno == EINTR && c.src_nonblock) continue;
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
    // 0 or an error: EOF. EIO on the master means every slave fd is closed.
    c.close_src();
    break;
  }
  return total;
}

size_t Session::flush(Channel& c) {
  size_t total = 0;
  while (!c.empty()) {
    const size_t want = c.tail - c.head;
    const ssize_t w = write(c.dst, c.buf.get() + c.head, want);
    if (w > 0) {
      c.head += static_cast<size_t>(w);
      total += static_cast<size_t>(w);
      // A blocking write returns short only on a signal; a non-blocking one
      // when the destination is full, and the next would say EAGAIN.
      if (!c.dst_nonblock || static_cast<size_t>(w) < want) break;
      continue;
    }
    if (w < 0 && errno == EINTR && c.dst_nonblock) continue;
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) break;
    dst_failed(c);
    break;
  }
  return total;
}

void Session::dst_failed(Channel& c) {
  c.dst_open = false;
  c.clear();
  if (c.input) {  // the command stopped reading: stop taking the caller's input
    c.close_src();
    c.own_dst.reset();
  } else if (c.src == master_.get()) {  // the caller's terminal hung up
    if (!hung_up_) forward(SIGHUP);
    hung_up_ = true;
  } else {  // output pipe: pass EPIPE on to the command
    c.close_src();
  }
}

void Session::observe(const Channel& c, const char* p, size_t n) {
  if (c.input) {
    if (obs_.input) obs_.input({p, n}, echo_enabled(terminal_ ? master_.get() : 0));
  } else if (obs_.output) {
    obs_.output({p, n});
  }
}

bool Session::outputs_done() const {
  for (size_t i = 0; i < nch_; ++i) {
    if (!ch_[i].input && (ch_[i].src_open || !ch_[i].empty())) return false;
  }
  return true;
}

// After the exit, keystrokes stay with the caller's shell instead of being
// swallowed by a command that is gone.
void Session::stop_inputs() {
  for (size_t i = 0; i < nch_; ++i) {
    Channel& c = ch_[i];
    if (!c.input) continue;
    c.src_open = c.dst_open = false;
    c.clear();
    c.own_dst.reset();
  }
}

void Session::handle_signals() {
  for (int sig : kForwarded) {
    if (!SignalRelay::take(sig)) continue;
    if (status_) {
      quit_drain_ = true;  // asked to stop while only draining: stop now
    } else {
      forward(sig);
    }
  }
  if (SignalRelay::take(SIGTSTP) && !status_) {
    if (terminal_) {
      // The child is spawn()'s session leader, which passes SIGTSTP on to
      // the command's group; the stop comes back through reap().
      forward(SIGTSTP);
    } else {
      // Stop the command and ourselves at once, without waiting to hear
      // that it stopped: a shell caught in vfork() never reports the stop,
      // and its stopped vfork child would wait for a SIGCONT that never came.
      forward(SIGSTOP);
      suspend();
    }
  }
  if (SignalRelay::take(SIGCONT)) on_continue();
  if (SignalRelay::take(SIGWINCH)) sync_size();
  SignalRelay::take(SIGPIPE);
  if (SignalRelay::take(SIGCHLD)) reap();
}

void Session::reap() {
  while (!status_) {
    int st = 0;
    const pid_t r = waitpid(child_, &st, WNOHANG | WUNTRACED);
    if (r == 0) return;
    if (r < 0) {
      if (errno == EINTR) continue;
      lost_child_ = true;
      return;
    }
    if (WIFSTOPPED(st)) {
      suspend();
    } else if (WIFEXITED(st)) {
      status_ = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
      status_ = 128 + WTERMSIG(st);
    }
  }
}

void Session::suspend() {
  const bool was_raw = raw_.active();
  raw_.restore();
  struct sigaction dfl {};
  struct sigaction old {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGTSTP, &dfl, &old);
  kill(getpid(), SIGTSTP);  // returns once we are continued, or at once if dropped
  sigaction(SIGTSTP, &old, nullptr);
  SignalRelay::take(SIGTSTP);
  if (was_raw && foreground()) {
    static_cast<void>(raw_.reenter());  // a refusing terminal leaves it cooked, never stuck
    sync_size();
  }
  forward(SIGCONT);
}

void Session::on_continue() {
  if (!terminal_ || status_ || !foreground()) return;
  // Continued after a stop we did not arrange (SIGSTOP to us, or `bg`
  // then `fg`): the shell may have put its own mode back.
  static_cast<void>(raw_.active() ? raw_.reapply() : raw_.reenter());
  sync_size();
}

void Session::sync_size() {
  if (!terminal_) return;
  auto ws = get_window_size(0);
  if (!ws) return;
  const bool changed = !size_ || size_->ws_col != ws->ws_col || size_->ws_row != ws->ws_row;
  if (!set_window_size(master_.get(), *ws)) return;
  size_ = *ws;
  if (changed && obs_.resize) obs_.resize(ws->ws_col, ws->ws_row);
}

void Session::forward(int sig) const {
  if (status_) return;
  if (kill(-child_, sig) != 0) kill(child_, sig);  // before its setsid the group does not exist yet
}

void Session::abandon() {
  if (status_ || child_ <= 0) return;
  kill(-child_, SIGKILL);
  kill(child_, SIGKILL);
  while (waitpid(child_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

Result<int> run_monitored(const MonitorOptions& opts,
                          const std::function<Result<pid_t>(const ChildFds&)>& start) {
  SignalRelay signals;
  if (auto st = signals.install(); !st) return st.error();
  Session session(opts.observer);
  ChildFds fds;
  std::array<Fd, 4> child_ends;  // the child's ends: ours to close once `start` returns
  Result<pid_t> pid = make_error(Errc::internal, "not started");
  try {  // observers and `start` are the caller's code: no exception leaves the monitor
    if (auto st = session.setup(opts.use_pty && isatty(0), fds, child_ends); !st) return st.error();
    pid = start(fds);
  } catch (const std::exception& e) {
    pid = make_error(Errc::internal, std::string("monitor setup: ") + e.what());
  }
  for (Fd& f : child_ends) f.reset();
  if (!pid) return pid.error();
  return session.relay(*pid, signals);
}

}  // namespace hoop::pty
