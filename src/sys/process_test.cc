#include "sys/process.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <thread>

namespace hoop::sys {
namespace {

// Runs `body` in a forked child and returns its exit code: fd and identity
// changes must never leak into the test process. Each failed check in a body
// returns its own code, so a failure says which check it was.
int in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

bool is_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

bool is_dev_null(int fd) {
  struct stat a {
  }, b{};
  return ::fstat(fd, &a) == 0 && ::stat("/dev/null", &b) == 0 && S_ISCHR(a.st_mode) && a.st_rdev == b.st_rdev;
}

TEST(Process, SanitizeFdsReopensStdFdsAndClosesTheRest) {
  EXPECT_EQ(in_child([] {
              const int a = ::open("/etc/passwd", O_RDONLY);  // no close-on-exec, on purpose
              const int b = ::dup2(a, 77);
              if (a < 3 || b != 77) return 10;
              ::close(0);
              ::close(2);
              if (!sanitize_fds().ok()) return 11;
              if (!is_open(0) || !is_open(1) || !is_open(2)) return 12;
              if (!is_dev_null(0) || !is_dev_null(2)) return 13;
              if (is_open(a) || is_open(77)) return 15;
              // The next file we open lands above the standard fds.
              const int c = ::open("/etc/passwd", O_RDONLY | O_CLOEXEC);
              if (c < 3) return 16;
              return 0;
            }),
            0);
}

TEST(Process, CloseFdsKeepsOnlyWhatIsAsked) {
  EXPECT_EQ(in_child([] {
              const int base = ::open("/dev/null", O_RDONLY);
              if (base < 3) return 10;
              for (int fd : {5, 9, 20, 300}) ::dup2(base, fd);
              close_fds_from_3(9);
              if (!is_open(9) || is_open(5) || is_open(20) || is_open(300) || is_open(base)) return 11;
              if (!is_open(0) || !is_open(1) || !is_open(2)) return 12;
              for (int fd : {4, 5, 20, 300}) ::dup2(9, fd);
              close_fds_from_3(300, 4);  // order of the two does not matter
              if (!is_open(4) || !is_open(300) || is_open(5) || is_open(9) || is_open(20)) return 13;
              ::dup2(4, 3);
              close_fds_from_3(3, 3);
              if (!is_open(3) || is_open(4) || is_open(300)) return 14;
              close_fds_from_3(-1);
              if (is_open(3)) return 15;
              return 0;
            }),
            0);
}

// Background threads get 10 nice levels more than they had, capped at 19,
// and never less than the caller chose (root could otherwise raise it).
TEST(Process, LowerThreadPriorityIsRelativeAndCapped) {
  auto nice_after = [](int start) {
    int got = -100;
    std::thread t([&] {
      const auto tid = static_cast<id_t>(gettid());
      if (setpriority(PRIO_PROCESS, tid, start) != 0) return;
      lower_thread_priority();
      errno = 0;
      got = getpriority(PRIO_PROCESS, tid);
    });
    t.join();
    return got;
  };
  EXPECT_EQ(nice_after(0), 10);
  EXPECT_EQ(nice_after(5), 15);
  EXPECT_EQ(nice_after(15), 19);
  EXPECT_EQ(nice_after(19), 19);
  // The calling thread (this one) is untouched.
  errno = 0;
  const int mine = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  EXPECT_LT(mine, 10);
}

TEST(Process, HardenMakesProcessUndumpableWithoutCores) {
  EXPECT_EQ(in_child([] {
              if (::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) return 10;
              if (!harden_process().ok()) return 11;
              if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) return 12;
              struct rlimit rl {};
              if (::getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0) return 13;
              return 0;
            }),
            0);
}

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  }
};

TEST_F(IdentityTest, PrepareMatchesGetgrouplist) {
  auto id = prepare_identity(65534, 65534, "nobody");
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(id->uid, 65534u);
  EXPECT_NE(std::find(id->groups.begin(), id->groups.end(), 65534u), id->groups.end());
  EXPECT_EQ(id->scratch.size(), id->groups.size() + 1);
  EXPECT_FALSE(prepare_identity(1, 1, "").ok());
  EXPECT_FALSE(prepare_identity(1, 1, nullptr).ok());
}

TEST_F(IdentityTest, SwitchToNobodyIsVerifiedAndFinal) {
  EXPECT_EQ(in_child([] {
              const gid_t junk[] = {0, 4, 27};  // groups the child must lose
              if (::setgroups(3, junk) != 0) return 10;
              if (!switch_identity(65534, 65534, "nobody").ok()) return 11;
              uid_t r, e, s;
              gid_t rg, eg, sg;
              if (::getresuid(&r, &e, &s) != 0 || r != 65534 || e != 65534 || s != 65534) return 12;
              if (::getresgid(&rg, &eg, &sg) != 0 || rg != 65534 || eg != 65534 || sg != 65534) return 13;
              gid_t groups[64];
              const int n = ::getgroups(64, groups);
              if (n < 1) return 14;
              for (int i = 0; i < n; ++i)
                if (groups[i] == 0 || groups[i] == 4 || groups[i] == 27) return 15;
              if (::setuid(0) == 0 || ::seteuid(0) == 0 || ::setresuid(0, 0, 0) == 0) return 16;
              if (::setgid(0) == 0 || ::setgroups(1, junk) == 0) return 17;
              return 0;
            }),
            0);
}

TEST_F(IdentityTest, ApplyIdentityReportsTheFailingStep) {
  // As nobody, a second switch to another user cannot work: the first call
  // that needs privilege fails and is named.
  EXPECT_EQ(in_child([] {
              if (!switch_identity(65534, 65534, "nobody").ok()) return 10;
              auto id = prepare_identity(0, 0, "root");
              if (!id.ok()) return 11;
              const char* step = apply_identity(*id);
              if (step == nullptr || std::string(step) != "setresgid") return 12;
              if (errno != EPERM) return 13;
              auto st = switch_identity(0, 0, "root");
              if (st.ok() || st.error().message.find("cannot switch to user root: setresgid") != 0) return 14;
              return 0;
            }),
            0);
}

TEST_F(IdentityTest, SwitchToRootKeepsRoot) {
  EXPECT_EQ(in_child([] {
              if (!switch_identity(0, 0, "root").ok()) return 10;
              if (::getuid() != 0 || ::geteuid() != 0) return 11;
              return 0;
            }),
            0);
}

}  // namespace
}  // namespace hoop::sys
