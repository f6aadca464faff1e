#include "sys/privilege.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

namespace hoop::sys {
namespace {

constexpr uid_t kUid = 4242;
constexpr gid_t kGid = 4343;

// Runs `body` in a forked child and returns its exit status; the child's id
// changes must never leak into the test process.
int in_child(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

// Puts the child where a setuid-root exec by uid kUid leaves it: real ids the
// caller's, effective and saved ids root.
bool become_setuid_caller() {
  const gid_t groups[] = {kGid, 5555};
  return setgroups(2, groups) == 0 && setresgid(kGid, 0, 0) == 0 && setresuid(kUid, 0, 0) == 0;
}

class PrivilegeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
  }
};

TEST_F(PrivilegeTest, SetuidCallerIsElevatedUntilDrop) {
  EXPECT_EQ(in_child([] {
              if (!become_setuid_caller()) return 10;
              if (!is_elevated()) return 11;
              if (!drop_privileges_permanently().ok()) return 12;
              if (is_elevated()) return 13;
              return 0;
            }),
            0);
}

TEST_F(PrivilegeTest, DropCannotBeUndone) {
  EXPECT_EQ(in_child([] {
              if (!become_setuid_caller()) return 10;
              if (!drop_privileges_permanently().ok()) return 11;
              uid_t r, e, s;
              gid_t rg, eg, sg;
              if (getresuid(&r, &e, &s) != 0 || r != kUid || e != kUid || s != kUid) return 12;
              if (getresgid(&rg, &eg, &sg) != 0 || rg != kGid || eg != kGid || sg != kGid) return 13;
              // Every way back to root must fail.
              if (setuid(0) == 0 || seteuid(0) == 0 || setreuid(0, 0) == 0 || setresuid(0, 0, 0) == 0)
                return 14;
              if (setgid(0) == 0 || setegid(0) == 0 || setresgid(0, 0, 0) == 0) return 15;
              const gid_t g0[] = {0};
              if (setgroups(1, g0) == 0) return 16;
              return 0;
            }),
            0);
}

TEST_F(PrivilegeTest, KeepsCallersSupplementaryGroups) {
  EXPECT_EQ(in_child([] {
              if (!become_setuid_caller()) return 10;
              if (!drop_privileges_permanently().ok()) return 11;
              gid_t groups[8];
              const int n = getgroups(8, groups);
              if (n != 2 || groups[0] != kGid || groups[1] != 5555) return 12;
              return 0;
            }),
            0);
}

TEST_F(PrivilegeTest, DropAsRootIsANoOp) {
  EXPECT_EQ(in_child([] {
              if (!drop_privileges_permanently().ok()) return 10;
              return geteuid() == 0 ? 0 : 11;
            }),
            0);
}

TEST_F(PrivilegeTest, CurrentCallerUsesRealUid) {
  auto c = current_caller();
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->uid, 0u);
  EXPECT_EQ(c->name, "root");
  EXPECT_FALSE(c->home.empty());

  // Real uid nobody, effective root: the caller is nobody, whatever $USER says.
  EXPECT_EQ(in_child([] {
              setenv("USER", "root", 1);
              if (setresuid(65534, 0, 0) != 0) return 10;
              auto n = current_caller();
              if (!n.ok()) return 11;
              return n->uid == 65534 && n->name != "root" ? 0 : 12;
            }),
            0);
}

TEST_F(PrivilegeTest, CallerWithoutPasswdEntry) {
  EXPECT_EQ(in_child([] {
              if (setresuid(kUid, 0, 0) != 0) return 10;
              auto n = current_caller();
              if (n.ok()) return 11;
              return n.error().code == Errc::not_found ? 0 : 12;
            }),
            0);
}

}  // namespace
}  // namespace hoop::sys
