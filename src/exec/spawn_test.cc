#include "exec/spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace hoop::exec {
namespace {

namespace fs = std::filesystem;

// Root-owned 0755 scratch directory outside world-writable /tmp.
class TrustedDir {
 public:
  TrustedDir() {
    for (const char* base : {"/run", "/var/lib", "/var/cache"}) {
      struct stat st {};
      if (::stat(base, &st) != 0 || st.st_uid != 0 || (st.st_mode & 022) != 0) continue;
      std::string tmpl = std::string(base) + "/hoop-spawn-test.XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr) continue;
      path_ = tmpl;
      fs::permissions(path_, fs::perms(0755));
      return;
    }
  }
  ~TrustedDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  bool ok() const { return !path_.empty(); }
  std::string path(const std::string& name) const { return path_ + "/" + name; }
  std::string write(const std::string& name, const std::string& content, mode_t mode) const {
    std::ofstream(path(name), std::ios::binary | std::ios::trunc) << content;
    EXPECT_EQ(::chmod(path(name).c_str(), mode), 0);
    return path(name);
  }

 private:
  std::string path_;
};

struct Outcome {
  bool started = false;
  std::string error;
  int status = -1;  // shell-style
  std::string out;  // stdout and stderr
};

// Spawns with stdin from /dev/null and stdout+stderr into a pipe, waits.
Outcome run(const ResolvedCommand& cmd, const std::vector<std::string>& argv, const Target& target,
            const std::vector<std::string>& env, const std::string& cwd = "/") {
  Outcome o;
  int out[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  SpawnSpec spec;
  spec.command = &cmd;
  spec.argv = argv;
  spec.env = env;
  spec.target = target;
  spec.cwd = cwd;
  spec.stdin_fd = null_fd;
  spec.stdout_fd = out[1];
  spec.stderr_fd = out[1];
  auto pid = spawn(spec);
  ::close(out[1]);
  ::close(null_fd);
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) o.out.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  if (!pid) {
    o.error = pid.error().message;
    return o;
  }
  o.started = true;
  int status = 0;
  EXPECT_EQ(::waitpid(*pid, &status, 0), *pid);
  o.status = exit_status_of(status);
  return o;
}

ResolvedCommand resolve(const std::string& cmd) {
  auto c = resolve_command(cmd, "/usr/bin:/bin");
  EXPECT_TRUE(c.ok()) << cmd << ": " << (c ? "" : c.error().message);
  return c ? std::move(*c) : ResolvedCommand();
}

std::string field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  return "<missing " + key + ">";
}

std::set<gid_t> expected_groups(const char* name, gid_t gid) {
  std::vector<gid_t> g(256);
  int n = static_cast<int>(g.size());
  EXPECT_GE(::getgrouplist(name, gid, g.data(), &n), 0);
  return {g.begin(), g.begin() + std::max(n, 0)};
}

class SpawnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch identity";
    auto t = lookup_target("nobody");
    ASSERT_TRUE(t.ok()) << t.error().message;
    nobody_ = *t;
    ASSERT_EQ(nobody_.uid, 65534u);
    root_ = *lookup_target("root");
  }
  std::vector<std::string> env_for(const Target& t) const {
    return build_environment({}, t, "/usr/bin:/bin", "tester", 1000, 1);
  }
  Target nobody_, root_;
};

TEST_F(SpawnTest, RunsAsTargetWithTargetGroups) {
  auto id = resolve("id");
  auto uid = run(id, {"id", "-u"}, nobody_, env_for(nobody_));
  ASSERT_TRUE(uid.started) << uid.error;
  EXPECT_EQ(uid.out, "65534\n");
  EXPECT_EQ(uid.status, 0);

  auto cat = resolve("cat");
  auto st = run(cat, {"cat", "/proc/self/status"}, nobody_, env_for(nobody_));
  ASSERT_TRUE(st.started) << st.error;
  EXPECT_EQ(field(st.out, "Uid"), "\t65534\t65534\t65534\t65534");
  const std::string g = std::to_string(nobody_.gid);
  EXPECT_EQ(field(st.out, "Gid"), "\t" + g + "\t" + g + "\t" + g + "\t" + g);
  std::set<gid_t> groups;
  std::istringstream in(field(st.out, "Groups"));
  for (gid_t x; in >> x;) groups.insert(x);
  EXPECT_EQ(groups, expected_groups("nobody", nobody_.gid));
  EXPECT_EQ(groups.count(0), 0u);  // root's group is gone
  EXPECT_EQ(field(st.out, "CapEff"), "\t0000000000000000");
  EXPECT_EQ(field(st.out, "CapPrm"), "\t0000000000000000");
}

TEST_F(SpawnTest, ChildCannotRegainRoot) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  auto py = resolve("/usr/bin/python3");
  const char* script =
      "import os\n"
      "for f in (lambda: os.setuid(0), lambda: os.seteuid(0), lambda: os.setgid(0),\n"
      "          lambda: os.setgroups([0])):\n"
      "    try:\n"
      "        f(); print('REGAINED')\n"
      "    except PermissionError:\n"
      "        print('denied')\n";
  auto o = run(py, {"python3", "-c", script}, nobody_, env_for(nobody_));
  ASSERT_TRUE(o.started) << o.error;
  EXPECT_EQ(o.out, "denied\ndenied\ndenied\ndenied\n");
}

TEST_F(SpawnTest, OnlyStandardFdsAreOpen) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  // Plant fds the child must not inherit: one without close-on-exec.
  const int leak = ::open("/etc/passwd", O_RDONLY);
  ASSERT_GE(leak, 3);
  const int high = ::fcntl(leak, F_DUPFD, 200);
  ASSERT_GE(high, 200);
  auto py = resolve("/usr/bin/python3");
  const char* script =
      "import os\n"
      "fds = []\n"
      "for fd in range(4096):\n"
      "    try:\n"
      "        os.fstat(fd); fds.append(fd)\n"
      "    except OSError:\n"
      "        pass\n"
      "print(fds)\n";
  for (const Target* t : {&nobody_, &root_}) {
    auto o = run(py, {"python3", "-c", script}, *t, env_for(*t));
    ASSERT_TRUE(o.started) << o.error;
    EXPECT_EQ(o.out, "[0, 1, 2]\n") << t->name;
  }
  ::close(leak);
  ::close(high);
}

TEST_F(SpawnTest, EnvironmentIsExactlyTheBuiltOne) {
  auto env = build_environment({"LD_PRELOAD=/tmp/x.so", "TERM=vt100", "PATH=.:/tmp", "IFS=x"}, nobody_,
                               "/usr/bin:/bin", "tester", 1000, 99);
  auto e = resolve("env");
  auto o = run(e, {"env"}, nobody_, env);
  ASSERT_TRUE(o.started) << o.error;
  std::string expected;
  for (const auto& v : env) expected += v + "\n";
  EXPECT_EQ(o.out, expected);
  EXPECT_EQ(o.out.find("LD_PRELOAD"), std::string::npos);
}

TEST_F(SpawnTest, NewSessionDefaultSignalsUmaskAndNoCore) {
  // Give the parent state the child must not inherit.
  struct sigaction ign {
  }, old_pipe{};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ign, &old_pipe), 0);
  sigset_t usr1, old_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ASSERT_EQ(::sigprocmask(SIG_BLOCK, &usr1, &old_mask), 0);
  const mode_t old_umask = ::umask(077);

  auto cat = resolve("cat");
  auto st = run(cat, {"cat", "/proc/self/status"}, nobody_, env_for(nobody_));
  auto stat = run(cat, {"cat", "/proc/self/stat"}, nobody_, env_for(nobody_));
  auto limits = run(cat, {"cat", "/proc/self/limits"}, nobody_, env_for(nobody_));

  ::umask(old_umask);
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);

  ASSERT_TRUE(st.started && stat.started && limits.started) << st.error << stat.error << limits.error;
  EXPECT_EQ(field(st.out, "SigBlk"), "\t0000000000000000");
  EXPECT_EQ(field(st.out, "SigIgn"), "\t0000000000000000");
  EXPECT_EQ(field(st.out, "Umask"), "\t0022");
  // /proc/self/stat: pid (comm) state ppid pgrp session ...
  std::istringstream in(stat.out);
  std::string pid, comm, state, ppid, pgrp, session;
  in >> pid >> comm >> state >> ppid >> pgrp >> session;
  EXPECT_EQ(session, pid);  // a session leader: setsid() happened
  EXPECT_NE(session, std::to_string(::getsid(0)));
  EXPECT_NE(limits.out.find("Max core file size        0                    0"), std::string::npos)
      << limits.out;
}

TEST_F(SpawnTest, WorkingDirectoryIsSetWithTargetPermissions) {
  auto pwd = resolve("pwd");
  auto o = run(pwd, {"pwd"}, nobody_, env_for(nobody_), "/usr");
  ASSERT_TRUE(o.started) << o.error;
  EXPECT_EQ(o.out, "/usr\n");

  TrustedDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string priv = dir.path("private");
  ASSERT_EQ(::mkdir(priv.c_str(), 0700), 0);
  auto denied = run(pwd, {"pwd"}, nobody_, env_for(nobody_), priv);
  EXPECT_FALSE(denied.started);
  EXPECT_EQ(denied.error, "cannot change directory to " + priv + " as user nobody: Permission denied");
  EXPECT_EQ(denied.out, "");
  // Root may enter it.
  auto ok = run(pwd, {"pwd"}, root_, env_for(root_), priv);
  EXPECT_EQ(ok.out, priv + "\n");
}

TEST_F(SpawnTest, ExecFailureIsReportedAndChildReaped) {
  TrustedDir dir;
  ASSERT_TRUE(dir.ok());
  // Root-only executable: passes resolution, but nobody may not execute it.
  const std::string p = dir.path("root-only");
  fs::copy_file("/usr/bin/true", p);
  ASSERT_EQ(::chmod(p.c_str(), 0700), 0);
  auto c = resolve_command(p, "");
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto o = run(*c, {"root-only"}, nobody_, env_for(nobody_));
  EXPECT_FALSE(o.started);
  EXPECT_EQ(o.error, "cannot execute " + p + " as user nobody: Permission denied");
  // The failed child was reaped by spawn: no child is left to wait for.
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  // Root can run it: the failure above was the identity switch at work.
  EXPECT_EQ(run(*c, {"root-only"}, root_, env_for(root_)).status, 0);
}

TEST_F(SpawnTest, PinnedFdRunsOriginalContentAfterSwap) {
  TrustedDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string p = dir.path("cmd");
  fs::copy_file("/usr/bin/true", p);
  ASSERT_EQ(::chmod(p.c_str(), 0755), 0);
  auto pinned = resolve_command(p, "");
  ASSERT_TRUE(pinned.ok()) << pinned.error().message;
  const std::string approved = pinned->digest();

  // Swap in something else under the same name after "approval".
  dir.write("cmd.new", "#!/bin/sh\necho swapped\nexit 42\n", 0755);
  ASSERT_EQ(::rename(dir.path("cmd.new").c_str(), p.c_str()), 0);

  EXPECT_TRUE(verify_digest(*pinned, approved).ok());
  auto o = run(*pinned, {"cmd"}, nobody_, env_for(nobody_));
  ASSERT_TRUE(o.started) << o.error;
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(o.out, "");

  // Resolving afresh sees the new file, with another digest, and it runs.
  auto fresh = resolve_command(p, "");
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(fresh->digest(), approved);
  EXPECT_FALSE(verify_digest(*fresh, approved).ok());
  auto swapped = run(*fresh, {"cmd"}, nobody_, env_for(nobody_));
  EXPECT_EQ(swapped.status, 42);
  EXPECT_EQ(swapped.out, "swapped\n");
}

TEST_F(SpawnTest, ScriptRunsThroughItsDescriptor) {
  TrustedDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string p = dir.write("script", "#!/bin/sh\necho \"script $# $1 $(id -u)\"\nexit 7\n", 0755);
  auto c = resolve_command(p, "");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(c->is_script());
  // Close-on-exec in the parent; only the child clears it.
  EXPECT_EQ(::fcntl(c->fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  auto o = run(*c, {"script", "arg"}, nobody_, env_for(nobody_));
  ASSERT_TRUE(o.started) << o.error;
  EXPECT_EQ(o.out, "script 1 arg 65534\n");
  EXPECT_EQ(o.status, 7);
  EXPECT_EQ(::fcntl(c->fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

TEST_F(SpawnTest, ArgvIsPassedExactly) {
  const std::string big(size_t{100} * 1024, 'x');
  auto printf_cmd = resolve("printf");
  auto o = run(printf_cmd, {"printf", "[%s]", "a\nb", "\x1b[2J", "", "$(id)", big}, root_, env_for(root_));
  ASSERT_TRUE(o.started) << o.error;
  EXPECT_EQ(o.out, "[a\nb][\x1b[2J][][$(id)][" + big + "]");
  auto cat = resolve("cat");
  auto cmdline = run(cat, {"typed-name", "/proc/self/cmdline"}, root_, env_for(root_));
  EXPECT_EQ(cmdline.out, std::string("typed-name\0/proc/self/cmdline\0", 30));
}

TEST_F(SpawnTest, ControllingTerminalOnlyWhenGiven) {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const std::string slave_name = ::ptsname(master);
  const int slave = ::open(slave_name.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0);
  auto sh = resolve("sh");
  SpawnSpec spec;
  spec.command = &sh;
  spec.argv = {"sh", "-c", "if true 3</dev/tty 2>/dev/null; then echo ctty-ok; else echo no-ctty; fi"};
  spec.env = env_for(root_);
  spec.target = root_;
  spec.cwd = "/";
  spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = slave;
  spec.ctty_fd = slave;
  auto pid = spawn(spec);
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  ::close(slave);
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(master, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  int status = 0;
  ASSERT_EQ(::waitpid(*pid, &status, 0), *pid);
  ::close(master);
  EXPECT_NE(out.find("ctty-ok"), std::string::npos) << out;

  // Without ctty_fd the new session has no terminal at all.
  auto o = run(sh, spec.argv, root_, env_for(root_));
  EXPECT_NE(o.out.find("no-ctty"), std::string::npos) << o.out;
}

// A pty pair whose slave becomes the command's terminal.
struct Pty {
  int master = -1, slave = -1;
  Pty() {
    master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) return;
    slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  }
  ~Pty() {
    if (slave >= 0) ::close(slave);
    if (master >= 0) ::close(master);
  }
  // Reads until `want` shows up or ~5 s pass.
  std::string read_until(const std::string& want) const {
    std::string out;
    char buf[256];
    for (int i = 0; i < 50 && out.find(want) == std::string::npos; ++i) {
      pollfd p{master, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
};

// Waits (bounded) for a stop or an end of `pid`; -1 if neither came.
int wait_change(pid_t pid, int& status) {
  for (int i = 0; i < 500; ++i) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG | WUNTRACED);
    if (r == pid) return 0;
    ::usleep(10000);
  }
  return -1;
}

// `sh -c SCRIPT` as root with the pty `t` as its terminal.
SpawnSpec on_terminal(const ResolvedCommand& sh, const Target& root, const std::vector<std::string>& env,
                      const Pty& t, const std::string& script) {
  SpawnSpec spec;
  spec.command = &sh;
  spec.argv = {"sh", "-c", script};
  spec.env = env;
  spec.target = root;
  spec.cwd = "/";
  spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = t.slave;
  spec.ctty_fd = t.slave;
  return spec;
}

TEST_F(SpawnTest, WithATerminalCtrlZStopsTheCommandAndItsLeaderAndFgResumesIt) {
  Pty t;
  ASSERT_GE(t.slave, 0);
  auto sh = resolve("sh");
  // The command is the terminal's foreground group, not the session leader.
  auto pid = spawn(on_terminal(sh, root_, env_for(root_), t,
                               "ps -o pid=,pgid=,sid=,tpgid= -p $$ | { read p g s f; "
                               "[ \"$p\" = \"$g\" ] && [ \"$g\" = \"$f\" ] && [ \"$s\" != \"$p\" ] && echo own-fg-group; }; "
                               "echo READY; read x; echo got-$x"));
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  const std::string first = t.read_until("READY");
  EXPECT_NE(first.find("own-fg-group"), std::string::npos) << first;
  ASSERT_NE(first.find("READY"), std::string::npos) << first;

  ASSERT_EQ(::write(t.master, "\x1a", 1), 1);  // Ctrl-Z, as typed
  int status = 0;
  ASSERT_EQ(wait_change(*pid, status), 0) << "the session leader did not stop";
  ASSERT_TRUE(WIFSTOPPED(status)) << status;

  ASSERT_EQ(::kill(*pid, SIGCONT), 0);  // what the monitor does on `fg`
  ASSERT_EQ(::write(t.master, "on\n", 3), 3);
  const std::string after = t.read_until("got-on");
  EXPECT_NE(after.find("got-on"), std::string::npos) << after;
  ASSERT_EQ(wait_change(*pid, status), 0);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(SpawnTest, WithATerminalTheLeaderRelaysSignalsAndEndsAsTheCommandDid) {
  auto sh = resolve("sh");
  for (int sig : {SIGTERM, SIGHUP, SIGINT}) {
    Pty t;
    ASSERT_GE(t.slave, 0);
    auto pid = spawn(on_terminal(sh, root_, env_for(root_), t, "echo READY; exec sleep 30"));
    ASSERT_TRUE(pid.ok()) << pid.error().message;
    ASSERT_NE(t.read_until("READY").find("READY"), std::string::npos);
    ::usleep(50000);  // let the exec of sleep happen
    ASSERT_EQ(::kill(*pid, sig), 0);
    int status = 0;
    ASSERT_EQ(wait_change(*pid, status), 0) << strsignal(sig);
    ASSERT_TRUE(WIFSIGNALED(status)) << strsignal(sig) << " status " << status;
    EXPECT_EQ(WTERMSIG(status), sig);
  }
  Pty t;
  auto pid = spawn(on_terminal(sh, root_, env_for(root_), t, "exit 7"));
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  int status = 0;
  ASSERT_EQ(wait_change(*pid, status), 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
}

TEST_F(SpawnTest, MalformedSpecsAreRefusedBeforeFork) {
  auto t = resolve("true");
  SpawnSpec spec;
  spec.command = &t;
  spec.argv = {"true"};
  spec.target = root_;
  spec.cwd = "/";
  spec.argv = {"true", std::string("a\0b", 3)};
  EXPECT_FALSE(spawn(spec).ok());
  spec.argv = {};
  EXPECT_FALSE(spawn(spec).ok());
  spec.argv = {"true"};
  spec.cwd = "relative";
  EXPECT_FALSE(spawn(spec).ok());
  spec.cwd = "/";
  spec.env = {"NOEQUALS"};
  EXPECT_FALSE(spawn(spec).ok());
  spec.env = {};
  spec.command = nullptr;
  EXPECT_FALSE(spawn(spec).ok());
}

TEST(ExitStatus, CodeOrSignal) {
  const pid_t killed = ::fork();
  if (killed == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(killed, 0);
  ASSERT_EQ(::kill(killed, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(killed, &status, 0), killed);
  EXPECT_EQ(exit_status_of(status), 128 + 9);

  const pid_t exited = ::fork();
  if (exited == 0) ::_exit(3);
  ASSERT_EQ(::waitpid(exited, &status, 0), exited);
  EXPECT_EQ(exit_status_of(status), 3);
}

}  // namespace
}  // namespace hoop::exec
