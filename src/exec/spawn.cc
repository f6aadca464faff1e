// Starting the approved command as the target user (see spawn.h for the
// MUST list the child follows, in order).
// MUST: prepare everything that allocates or consults NSS (argv/envp arrays,
//       the target's groups, error texts) BEFORE fork; the child only makes
//       async-signal-safe calls, because the parent may have threads.
// MUST: block all signals across fork, so no handler of ours runs in the
//       child before the dispositions are reset.
// MUST NOT: let the child return into our code: every failure writes one
//       line to the close-on-exec error pipe and calls _exit(127).

#include "exec/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/escape.h"
#include "sys/process.h"

namespace hoop::exec {
namespace {

constexpr int kExitChildFailed = 127;

/// What the child needs, built by the parent so the child never allocates.
struct ChildPlan {
  int exec_fd = -1;
  bool is_script = false;
  int err_fd = -1;
  int std_fds[3] = {0, 1, 2};
  int ctty_fd = -1;
  const char* cwd = nullptr;
  std::vector<char*> argv;
  std::vector<char*> envp;
  sys::Identity identity;
  std::string msg_session, msg_ctty, msg_fds, msg_signals, msg_identity, msg_limits, msg_cwd, msg_exec;
};

// Writes "what[: detail][: strerror]\n" to the error pipe and exits. Uses
// strerrordesc_np: a table lookup, unlike strerror (locale, buffers).
[[noreturn]] void child_fail(const ChildPlan& p, const std::string& what, const char* detail,
                             int err) noexcept {
  char line[1024];
  size_t n = 0;
  auto put = [&](const char* s) {
    while (s != nullptr && *s != '\0' && n < sizeof line - 1) line[n++] = *s++;
  };
  put(what.c_str());
  if (detail != nullptr) {
    put(": ");
    put(detail);
  }
  if (err != 0) {
    const char* desc = strerrordesc_np(err);
    put(": ");
    put(desc != nullptr ? desc : "unknown error");
  }
  line[n++] = '\n';
  for (size_t done = 0; done < n;) {
    const ssize_t w = ::write(p.err_fd, line + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  ::_exit(kExitChildFailed);
}

// Ends this process the way `sig` ended the command, so the monitor reports
// 128 + sig (core dumps are off: RLIMIT_CORE is 0).
[[noreturn]] void die_like(int sig) noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  (void)::sigaction(sig, &dfl, nullptr);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, sig);
  (void)::sigprocmask(SIG_UNBLOCK, &only, nullptr);
  ::kill(::getpid(), sig);
  ::_exit(128 + sig);  // a signal whose default is not to terminate
}

// The session leader between the monitor and a command that has a terminal,
// running as the target user, all signals blocked. It exists for job
// control: a session leader whose parent is outside the session heads an
// orphaned process group, and the kernel drops Ctrl-Z's SIGTSTP for those.
// With the command in its own group below us, Ctrl-Z stops the command;
// we then stop ourselves (SIGSTOP), which the monitor sees and answers by
// handing the caller's terminal back to the caller's shell. When the monitor
// continues us (`fg`), we give the command the terminal again and continue
// it. Signals the monitor forwards to us go on to the command's group. We
// end as the command ended. Only async-signal-safe calls.
[[noreturn]] void supervise(pid_t cmd) noexcept {
  sigset_t wanted;
  sigemptyset(&wanted);
  for (int sig : {SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGTSTP, SIGCONT})
    sigaddset(&wanted, sig);
  for (;;) {
    const int sig = ::sigwaitinfo(&wanted, nullptr);
    if (sig < 0) continue;  // EINTR
    if (sig == SIGCONT) continue;  // handled where we stopped ourselves
    if (sig == SIGTSTP) {
      ::kill(-cmd, SIGTSTP);  // from the monitor; the stop comes back as SIGCHLD
      continue;
    }
    if (sig != SIGCHLD) {
      ::kill(-cmd, sig);
      continue;
    }
    for (;;) {
      int st = 0;
      const pid_t r = ::waitpid(cmd, &st, WNOHANG | WUNTRACED);
      if (r == 0) break;
      if (r < 0) {
        if (errno == EINTR) continue;
        ::_exit(kExitChildFailed);  // cannot happen: cmd is our child
      }
      if (WIFEXITED(st)) ::_exit(WEXITSTATUS(st));
      if (WIFSIGNALED(st)) die_like(WTERMSIG(st));
      if (WIFSTOPPED(st)) {
        ::kill(::getpid(), SIGSTOP);  // returns when the monitor continues us
        (void)::tcsetpgrp(0, cmd);
        ::kill(-cmd, SIGCONT);
      }
    }
  }
}

[[noreturn]] void run_child(ChildPlan& p) noexcept {
  // 1. A session of its own: the command cannot signal or read from the
  //    caller's terminal session, and can own a terminal of its own.
  if (::setsid() < 0) child_fail(p, p.msg_session, nullptr, errno);
  // 2. The pty slave becomes its controlling terminal.
  if (p.ctty_fd >= 0 && ::ioctl(p.ctty_fd, TIOCSCTTY, 0) != 0) child_fail(p, p.msg_ctty, nullptr, errno);

  // 3. fds 0-2 from the spec, nothing else but the exec fd and the error
  //    pipe (close-on-exec). Copies above 2 first, so a spec fd that is
  //    itself 0-2 is not clobbered by an earlier dup2.
  if (p.exec_fd < 3 && (p.exec_fd = ::fcntl(p.exec_fd, F_DUPFD_CLOEXEC, 3)) < 0)
    child_fail(p, p.msg_fds, "exec fd", errno);
  int copies[3];
  for (int i = 0; i < 3; ++i)
    if ((copies[i] = ::fcntl(p.std_fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
      child_fail(p, p.msg_fds, "duplicate", errno);
  for (int i = 0; i < 3; ++i)  // dup2 clears close-on-exec on 0-2
    if (::dup2(copies[i], i) < 0) child_fail(p, p.msg_fds, "dup2", errno);
  sys::close_fds_from_3(p.exec_fd, p.err_fd);
  // A script's interpreter opens /dev/fd/N, so N must survive the exec
  // (scripts only: a binary must not inherit its own descriptor).
  if (::fcntl(p.exec_fd, F_SETFD, p.is_script ? 0 : FD_CLOEXEC) != 0)
    child_fail(p, p.msg_fds, "exec fd flags", errno);

  // 4. Default dispositions (SIG_IGN would survive exec; handlers are reset
  //    by exec anyway). SIGKILL/SIGSTOP and the libc-internal signals
  //    refuse: that is fine. Everything stays blocked (spawn() blocked it
  //    across fork) until just before the exec.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) (void)::sigaction(sig, &dfl, nullptr);

  // 5. The target identity, verified; root cannot be regained.
  if (const char* step = sys::apply_identity(p.identity); step != nullptr)
    child_fail(p, p.msg_identity, step, errno);

  // 6. umask and limits: core dumps stay off (hard limit too), since the
  //    command runs with the target's privilege.
  ::umask(022);
  const struct rlimit no_core { 0, 0 };
  if (::setrlimit(RLIMIT_CORE, &no_core) != 0) child_fail(p, p.msg_limits, nullptr, errno);

  // 7. The working directory, with the target's permissions.
  if (::chdir(p.cwd) != 0) child_fail(p, p.msg_cwd, nullptr, errno);

  // 8. With a terminal: the command in a process group of its own, in the
  //    foreground, below us as session leader (see supervise()).
  if (p.ctty_fd >= 0) {
    const pid_t cmd = ::fork();
    if (cmd < 0) child_fail(p, p.msg_session, "fork", errno);
    if (cmd > 0) {
      ::close(p.exec_fd);
      ::close(p.err_fd);  // the command's exec alone tells spawn() it started
      // Inherited from the monitor, which is not dumpable; set it again
      // anyway: this process is a copy of the monitor's memory running as
      // the target user, and must never be readable through /proc.
      ::prctl(PR_SET_DUMPABLE, 0);
      (void)::setpgid(cmd, cmd);  // both sides, as shells do: no race with the exec
      supervise(cmd);
    }
    if (::setpgid(0, 0) != 0) child_fail(p, p.msg_session, "process group", errno);
    // SIGTTOU is still blocked, so this works from the background.
    if (::tcsetpgrp(0, ::getpid()) != 0) child_fail(p, p.msg_ctty, "foreground", errno);
  }

  // 9. Nothing blocked, then the pinned descriptor, not a path: what was
  //    hashed is what runs.
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) child_fail(p, p.msg_signals, nullptr, errno);
  ::fexecve(p.exec_fd, p.argv.data(), p.envp.data());
  child_fail(p, p.msg_exec, nullptr, errno);
}

bool has_nul(const std::string& s) {
  return s.find('\0') != std::string::npos;
}

Status validate(const SpawnSpec& spec) {
  auto bad = [](const std::string& why) { return make_error(Errc::invalid_argument, "cannot run: " + why); };
  if (spec.command == nullptr || spec.command->fd() < 0) return bad("no open command");
  if (spec.argv.empty()) return bad("empty argv");
  // A NUL would silently cut an argument short: what runs would differ
  // from what was approved.
  for (const auto& a : spec.argv)
    if (has_nul(a)) return bad("an argument contains a NUL byte");
  for (const auto& e : spec.env)
    if (has_nul(e) || e.find('=') == std::string::npos || e[0] == '=')
      return bad("malformed environment entry");
  if (spec.cwd.empty() || spec.cwd[0] != '/' || has_nul(spec.cwd))
    return bad("the working directory must be an absolute path");
  if (spec.target.name.empty()) return bad("no target user");
  if (spec.stdin_fd < 0 || spec.stdout_fd < 0 || spec.stderr_fd < 0) return bad("a standard fd is missing");
  return {};
}

// A pipe end must not be 0-2, or the child's dup2 onto 0-2 would close it.
bool move_above_2(int& fd) {
  if (fd >= 3) return true;
  const int n = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  fd = n;
  return n >= 0;
}

}  // namespace

Result<pid_t> spawn(const SpawnSpec& spec) {
  if (auto s = validate(spec); !s) return s.error();
  ChildPlan p;
  auto identity = sys::prepare_identity(spec.target.uid, spec.target.gid, spec.target.name.c_str());
  if (!identity) return identity.error();
  p.identity = std::move(*identity);
  p.exec_fd = spec.command->fd();
  p.is_script = spec.command->is_script();
  p.std_fds[0] = spec.stdin_fd;
  p.std_fds[1] = spec.stdout_fd;
  p.std_fds[2] = spec.stderr_fd;
  p.ctty_fd = spec.ctty_fd;
  p.cwd = spec.cwd.c_str();
  // execve takes char* const[]; it does not write through them.
  for (const auto& a : spec.argv) p.argv.push_back(const_cast<char*>(a.c_str()));
  p.argv.push_back(nullptr);
  for (const auto& e : spec.env) p.envp.push_back(const_cast<char*>(e.c_str()));
  p.envp.push_back(nullptr);
  const std::string user = quote_arg(spec.target.name);
  p.msg_session = "cannot start a new session for the command";
  p.msg_ctty = "cannot give the command its terminal";
  p.msg_fds = "cannot set up the command's file descriptors";
  p.msg_signals = "cannot reset the command's signal mask";
  p.msg_identity = "cannot switch to user " + user;
  p.msg_limits = "cannot disable core dumps for the command";
  p.msg_cwd = "cannot change directory to " + escape_for_terminal(spec.cwd) + " as user " + user;
  p.msg_exec = "cannot execute " + escape_for_terminal(spec.command->path()) + " as user " + user;

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
    return make_error(Errc::io, std::string("cannot create a pipe: ") + std::strerror(errno));
  int& rd = pipe_fds[0];
  int& wr = pipe_fds[1];
  if (!move_above_2(rd) || !move_above_2(wr)) {
    const int err = errno;
    if (rd >= 0) ::close(rd);
    if (wr >= 0) ::close(wr);
    return make_error(Errc::io, std::string("cannot set up the status pipe: ") + std::strerror(err));
  }
  p.err_fd = wr;

  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::fork();
  if (pid == 0) run_child(p);
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(wr);
  if (pid < 0) {
    ::close(rd);
    return make_error(Errc::io, std::string("cannot fork: ") + std::strerror(fork_errno));
  }

  // EOF without a byte: the exec succeeded and closed the write end.
  std::string msg;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(rd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // Cannot tell whether the exec happened: fail closed, stop the child.
      msg = std::string("cannot read the command's start status: ") + std::strerror(errno);
      ::kill(pid, SIGKILL);
      break;
    }
    if (n == 0) break;
    if (msg.size() < 4096) msg.append(buf, static_cast<size_t>(n));
  }
  ::close(rd);
  if (msg.empty()) return pid;

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  return make_error(Errc::io, msg);
}

int exit_status_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  // Stopped (only with WUNTRACED): as the shell reports a stopped job.
  if (WIFSTOPPED(wait_status)) return 128 + WSTOPSIG(wait_status);
  return 1;
}

}  // namespace hoop::exec
