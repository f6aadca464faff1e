// The real Os: the system calls hoop-shell makes, as the logged-in user.

#include "shell/os.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

namespace hoop::shell {
namespace {

volatile std::sig_atomic_t g_interrupt = 0;
volatile std::sig_atomic_t g_resize = 0;

void on_interrupt(int) {
  g_interrupt = 1;
}

void on_resize(int) {
  g_resize = 1;
}

constexpr int kChildDefaults[] = {SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH, SIGPIPE, SIGCHLD};

/// argv/envp arrays for execve, built before fork (no allocation after).
struct ExecArrays {
  std::vector<char*> argv;
  std::vector<char*> env;
  ExecArrays(const std::vector<std::string>& a, const std::vector<std::string>& e) {
    for (const auto& s : a) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    for (const auto& s : e) env.push_back(const_cast<char*>(s.c_str()));
    env.push_back(nullptr);
  }
};

Error errno_error(const std::string& what, int e) {
  return make_error(Errc::io, what + std::strerror(e));
}

}  // namespace

Result<int> RealOs::run(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/')
    return make_error(Errc::internal, "not an absolute path (this is a bug)");
  ExecArrays x(argv, env);
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return errno_error("pipe: ", errno);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(report[0]);
    ::close(report[1]);
    return errno_error("fork: ", e);
  }
  if (pid == 0) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s : kChildDefaults) (void)::sigaction(s, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    (void)::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(x.argv[0], x.argv.data(), x.env.data());
    const int e = errno;
    (void)!::write(report[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(report[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WUNTRACED);
    if (r < 0 && errno == EINTR) continue;  // Ctrl-C at the terminal reached hoopctl too: it decides
    if (r < 0) return errno_error("waitpid: ", errno);
    if (WIFSTOPPED(status)) {
      (void)::kill(pid, SIGCONT);
      continue;
    }
    break;
  }
  if (n == static_cast<ssize_t>(sizeof exec_errno)) return errno_error("", exec_errno);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

Error RealOs::replace(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/')
    return make_error(Errc::internal, "not an absolute path (this is a bug)");
  ExecArrays x(argv, env);
  ::execve(x.argv[0], x.argv.data(), x.env.data());
  return errno_error("", errno);
}

Result<std::string> RealOs::canonical(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> p(::realpath(path.c_str(), nullptr), &std::free);
  if (!p) return errno_error("", errno);
  return std::string(p.get());
}

Status RealOs::change_dir(const std::string& dir) {
  if (::chdir(dir.c_str()) != 0) return errno_error("", errno);
  return {};
}

std::string RealOs::current_dir() {
  std::error_code ec;
  auto p = std::filesystem::current_path(ec);
  return ec ? std::string("?") : p.string();
}

bool RealOs::exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void install_prompt_signals() {
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = &on_interrupt;
  sa.sa_flags = 0;  // no SA_RESTART: the read at the prompt must return
  (void)::sigaction(SIGINT, &sa, nullptr);
  (void)::sigaction(SIGQUIT, &sa, nullptr);
  sa.sa_handler = &on_resize;
  sa.sa_flags = SA_RESTART;
  (void)::sigaction(SIGWINCH, &sa, nullptr);
  sa.sa_handler = SIG_IGN;
  sa.sa_flags = 0;
  for (int s : {SIGTSTP, SIGTTIN, SIGTTOU}) (void)::sigaction(s, &sa, nullptr);
}

bool take_interrupt() {
  const bool got = g_interrupt != 0;
  g_interrupt = 0;
  return got;
}

bool take_resize() {
  const bool got = g_resize != 0;
  g_resize = 0;
  return got;
}

}  // namespace hoop::shell
