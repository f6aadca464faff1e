#pragma once
// Test harness for the monitor: runs run_monitored in a forked child whose
// stdin/stdout/stderr the test chooses (pipes, or a pty the test creates and
// makes the child's controlling terminal, as a terminal emulator would), and
// brings back what the child's observers saw. No privilege, no tty of the
// test runner's own and no network are needed.

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "pty/monitor.h"

namespace hoop::pty::testing {

/// What the monitor child saw; plain data, written back through a pipe.
struct Report {
  int ok = 0;  // run_monitored returned a status (not an Error)
  int status = -1;
  char error[256] = {};
  uint64_t output_bytes = 0;
  uint64_t input_bytes = 0;
  long rss_growth_kb = 0;
  int fd_growth = 0;
  int begin_calls = 0;
  unsigned begin_cols = 0, begin_rows = 0;
  unsigned resizes = 0, resize_cols = 0, resize_rows = 0;
  char echo_input[128] = {};
  unsigned echo_len = 0;
  char noecho_input[128] = {};
  unsigned noecho_len = 0;
};

inline int count_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the DIR's own fd
}

inline void append(char* buf, unsigned& len, size_t cap, std::string_view v) {
  const size_t n = std::min(v.size(), cap - 1 - len);
  std::memcpy(buf + len, v.data(), n);
  len += static_cast<unsigned>(n);
}

/// What `start` does in hoopctl, minus the privilege: new session, the pty
/// as controlling terminal, fds 0-2 and nothing else, default signal mask.
inline pid_t start_shell(const ChildFds& f, const char* cmd) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  setsid();
  if (f.ctty_fd >= 0 && ioctl(f.ctty_fd, TIOCSCTTY, 0) != 0) _exit(126);
  if (dup2(f.stdin_fd, 0) < 0 || dup2(f.stdout_fd, 1) < 0 || dup2(f.stderr_fd, 2) < 0) _exit(126);
  close_range(3, ~0U, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execl("/bin/sh", "sh", "-c", cmd, static_cast<char*>(nullptr));
  _exit(127);
}

[[noreturn]] inline void monitor_child(const std::string& cmd, bool use_pty, bool fail_start, int report_fd) {
  Report r;
  MonitorOptions mo;
  mo.use_pty = use_pty;
  mo.observer.output = [&r](std::string_view v) { r.output_bytes += v.size(); };
  mo.observer.input = [&r](std::string_view v, bool echo) {
    r.input_bytes += v.size();
    if (echo) {
      append(r.echo_input, r.echo_len, sizeof r.echo_input, v);
    } else {
      append(r.noecho_input, r.noecho_len, sizeof r.noecho_input, v);
    }
  };
  mo.observer.resize = [&r](unsigned short c, unsigned short rows) {
    ++r.resizes;
    r.resize_cols = c;
    r.resize_rows = rows;
  };
  mo.observer.begin = [&r](unsigned short c, unsigned short rows, bool) {
    ++r.begin_calls;
    r.begin_cols = c;
    r.begin_rows = rows;
  };
  const int fds_before = count_fds();
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  auto res = run_monitored(mo, [&](const ChildFds& f) -> Result<pid_t> {
    if (fail_start) return make_error(Errc::io, "start refused");
    const pid_t p = start_shell(f, cmd.c_str());
    if (p < 0) return make_error(Errc::io, "fork failed");
    return p;
  });
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  r.rss_growth_kb = after.ru_maxrss - before.ru_maxrss;
  r.fd_growth = count_fds() - fds_before;
  if (res) {
    r.ok = 1;
    r.status = *res;
  } else {
    static_cast<void>(std::snprintf(r.error, sizeof r.error, "%s", res.error().message.c_str()));
  }
  const ssize_t w = write(report_fd, &r, sizeof r);
  _exit(w == static_cast<ssize_t>(sizeof r) ? 0 : 1);
}

/// What one run produced.
struct Outcome {
  Report report{};
  bool got_report = false;
  bool timed_out = false;
  int wait_status = 0;
  rusage usage{};          // of the monitor child and what it reaped
  std::string out;         // stdout, or everything the outer terminal showed
  std::string err;         // stderr (pipe mode)
  uint64_t out_bytes = 0;  // counted, also past kKeep
  double seconds = 0;
};

struct Step {
  std::string wait_for;  // run `act` once the output contains this
  std::function<void()> act;
};

/// One monitored run. Set the fields, add steps, call run(). Steps can use
/// `master` (outer terminal), `slave` and `monitor` while it runs.
class Harness {
 public:
  static constexpr size_t kKeep = 4 << 20;

  std::string cmd;
  bool outer_pty = true;  // the caller has a terminal (ours); else pipes
  bool use_pty = true;    // MonitorOptions::use_pty
  bool fail_start = false;
  bool stdout_to_pipe = false;  // with outer_pty: stdout redirected, stdin a terminal
  bool close_stdout_reader = false;
  int stdin_fd = -1;  // pipe mode: the child's stdin (default /dev/null)
  winsize size{30, 100, 0, 0};
  std::vector<Step> steps;

  int master = -1;
  int slave = -1;
  pid_t monitor = -1;
  const std::string* output = nullptr;  // what has been shown so far, while run() runs

  /// For commands that print "<marker> $$ ..." and then `exec sleep`: waits until
  /// that exec has happened. A shell's signal handling between its fork/exec
  /// and the new program loses signals (dash catches SIGINT under -c), so a
  /// signal test must not fire earlier.
  bool wait_exec(const std::string& marker, const char* comm = "sleep\n") const {
    const size_t at = output->find(marker + " ");
    if (at == std::string::npos) return false;
    const std::string path =
        "/proc/" + std::to_string(std::atol(output->c_str() + at + marker.size() + 1)) + "/comm";
    for (int i = 0; i < 1000; ++i) {
      char buf[32] = {};
      const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        const ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0 && std::strcmp(buf, comm) == 0) return true;
      }
      usleep(10'000);
    }
    return false;
  }

  Harness() = default;
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;
  ~Harness() {
    for (int fd : {master, slave}) {
      if (fd >= 0) close(fd);
    }
  }

  /// Opens the outer terminal early, so a test can read its mode first.
  void open_outer() {
    if (master < 0) openpty(&master, &slave, nullptr, nullptr, &size);
  }

  Outcome run(std::chrono::seconds limit = std::chrono::seconds(30)) {
    Outcome o;
    int rep[2];
    int out[2] = {-1, -1};
    int err[2] = {-1, -1};
    if (pipe2(rep, O_CLOEXEC) != 0) return o;
    if (outer_pty) open_outer();
    if (!outer_pty || stdout_to_pipe) {
      if (pipe2(out, O_CLOEXEC) != 0) return o;
    }
    if (!outer_pty && pipe2(err, O_CLOEXEC) != 0) return o;
    const auto t0 = std::chrono::steady_clock::now();
    monitor = fork();
    if (monitor == 0) {
      setsid();
      if (outer_pty) {
        ioctl(slave, TIOCSCTTY, 0);
        for (int fd = 0; fd < 3; ++fd) dup2(slave, fd);
        if (stdout_to_pipe) dup2(out[1], 1);
      } else {
        const int in = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
      }
      // Only 0-2 and the report pipe (as 3, close-on-exec) stay open.
      if (rep[1] != 3) dup2(rep[1], 3);
      fcntl(3, F_SETFD, FD_CLOEXEC);
      close_range(4, ~0U, 0);
      monitor_child(cmd, use_pty, fail_start, 3);
    }
    close(rep[1]);
    if (out[1] >= 0) close(out[1]);
    if (err[1] >= 0) close(err[1]);
    if (close_stdout_reader && out[0] >= 0) {
      close(out[0]);
      out[0] = -1;
    }
    output = &o.out;
    pump(o, out[0], err[0], t0 + limit);
    output = nullptr;
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    o.got_report = read(rep[0], &o.report, sizeof o.report) == static_cast<ssize_t>(sizeof o.report);
    for (int fd : {rep[0], out[0], err[0]}) {
      if (fd >= 0) close(fd);
    }
    return o;
  }

 private:
  // After a timeout: the command (a session leader, child of the monitor)
  // and its process group, so a stuck test leaves nothing behind.
  static void kill_commands_of(pid_t parent) {
    DIR* d = opendir("/proc");
    if (d == nullptr) return;
    while (dirent* e = readdir(d)) {
      const pid_t pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      char path[64];
      static_cast<void>(std::snprintf(path, sizeof path, "/proc/%d/stat", pid));
      FILE* f = std::fopen(path, "re");
      if (f == nullptr) continue;
      int ppid = 0;
      // pid (comm) state ppid: comm is the shell's or sleep's, without spaces
      const bool parsed = std::fscanf(f, "%*d %*s %*c %d", &ppid) == 1;
      static_cast<void>(std::fclose(f));
      if (parsed && ppid == parent) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
      }
    }
    closedir(d);
  }

  void pump(Outcome& o, int out_fd, int err_fd, std::chrono::steady_clock::time_point deadline) {
    size_t next_step = 0;
    size_t search_from = 0;
    bool exited = false;
    char buf[65536];
    for (;;) {
      // Read each round: a step may close the outer terminal (hangup).
      const int src_out = outer_pty && !stdout_to_pipe ? master : out_fd;
      const int tty = outer_pty && stdout_to_pipe ? master : -1;  // echo of the outer terminal
      pollfd p[3] = {{src_out, POLLIN, 0}, {err_fd, POLLIN, 0}, {tty, POLLIN, 0}};
      const int ready = poll(p, 3, exited ? 0 : 20);
      bool got = false;
      for (int i = 0; i < 3 && ready > 0; ++i) {
        if (p[i].fd < 0 || (p[i].revents & (POLLIN | POLLHUP)) == 0) continue;
        const ssize_t n = read(p[i].fd, buf, sizeof buf);
        if (n <= 0) continue;
        got = true;
        if (i == 1) {
          o.err.append(buf, static_cast<size_t>(n));
        } else if (i == 0) {
          o.out_bytes += static_cast<uint64_t>(n);
          if (o.out.size() < kKeep) o.out.append(buf, static_cast<size_t>(n));
        }
      }
      while (next_step < steps.size()) {
        const size_t at = o.out.find(steps[next_step].wait_for, search_from);
        if (at == std::string::npos) break;
        search_from = at + steps[next_step].wait_for.size();
        steps[next_step++].act();
      }
      if (exited && !got) return;  // the child is gone and nothing more is buffered
      if (!exited && wait4(monitor, &o.wait_status, WNOHANG, &o.usage) == monitor) exited = true;
      if (!exited && std::chrono::steady_clock::now() > deadline) {
        o.timed_out = true;
        kill_commands_of(monitor);
        kill(monitor, SIGKILL);
        wait4(monitor, &o.wait_status, 0, &o.usage);
        exited = true;
      }
    }
  }
};

inline bool same_mode(const termios& a, const termios& b) {
  return a.c_iflag == b.c_iflag && a.c_oflag == b.c_oflag && a.c_cflag == b.c_cflag &&
         a.c_lflag == b.c_lflag && std::memcmp(a.c_cc, b.c_cc, sizeof a.c_cc) == 0;
}

inline termios mode_of(int fd) {
  termios t{};
  tcgetattr(fd, &t);
  return t;
}

}  // namespace hoop::pty::testing
