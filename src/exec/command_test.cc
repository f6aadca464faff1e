#include "exec/command.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace hoop::exec {
namespace {

namespace fs = std::filesystem;

// True when `dir` and every directory above it are root's alone, as
// resolve_command demands.
bool trusted_chain(fs::path dir) {
  for (;;) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0)
      return false;
    if (dir == dir.root_path()) return true;
    dir = dir.parent_path();
  }
}

// A root-owned 0755 scratch directory in a root-only place (not /tmp, which
// is world-writable and therefore refused, rightly).
class TrustedDir {
 public:
  TrustedDir() {
    for (const char* base : {"/run", "/var/lib", "/var/cache"}) {
      if (!trusted_chain(base)) continue;
      std::string tmpl = std::string(base) + "/hoop-exec-test.XXXXXX";
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
  std::string path(const std::string& name = "") const { return name.empty() ? path_ : path_ + "/" + name; }

  std::string write(const std::string& name, const std::string& content, mode_t mode) const {
    std::string p = path(name);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    EXPECT_EQ(::chmod(p.c_str(), mode), 0);
    return p;
  }
  std::string copy_true(const std::string& name, mode_t mode = 0755) const {
    std::string p = path(name);
    fs::copy_file("/usr/bin/true", p, fs::copy_options::overwrite_existing);
    EXPECT_EQ(::chmod(p.c_str(), mode), 0);
    return p;
  }

 private:
  std::string path_;
};

std::string sha256sum(const std::string& path) {
  std::string cmd = "sha256sum '" + path + "'";
  // The reference implementation, on a path we made ourselves.
  FILE* f = ::popen(cmd.c_str(), "r");  // NOLINT(cert-env33-c)
  if (f == nullptr) return "";
  char buf[65] = {0};
  const size_t n = std::fread(buf, 1, 64, f);
  ::pclose(f);
  return std::string(buf, n);
}

class CommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (files must be root-owned)";
    ASSERT_TRUE(dir_.ok()) << "no root-owned place for a scratch directory";
  }
  TrustedDir dir_;
};

TEST_F(CommandTest, FindsNameInSecurePathAndDigestMatchesSha256sum) {
  auto c = resolve_command("true", "/usr/local/sbin:/usr/bin:/bin");
  ASSERT_TRUE(c.ok()) << c.error().message;
  char* real = ::realpath("/usr/bin/true", nullptr);
  ASSERT_NE(real, nullptr);
  EXPECT_EQ(c->path(), real);
  std::free(real);
  EXPECT_EQ(c->digest(), sha256sum(c->path()));
  EXPECT_EQ(c->digest().size(), 64u);
  EXPECT_FALSE(c->is_script());
  EXPECT_GE(c->fd(), 3);
  // Close-on-exec in the parent: nothing else we start may inherit it.
  EXPECT_EQ(::fcntl(c->fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_TRUE(verify_digest(*c, c->digest()).ok());
}

TEST_F(CommandTest, NotFoundNamesTheSearchPath) {
  auto c = resolve_command("hoop-no-such-command", "/usr/sbin:/usr/bin");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::not_found);
  EXPECT_EQ(c.error().message, "hoop-no-such-command: command not found in secure_path (/usr/sbin:/usr/bin)");
}

TEST_F(CommandTest, RelativePathsAreRefused) {
  for (const char* cmd : {"./true", "bin/true", "../usr/bin/true"}) {
    auto c = resolve_command(cmd, "/usr/bin");
    ASSERT_FALSE(c.ok()) << cmd;
    EXPECT_NE(c.error().message.find("refusing relative path"), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find("give an absolute path or a command name looked up in secure_path"),
              std::string::npos);
  }
}

TEST_F(CommandTest, RelativeSecurePathEntriesAreSkipped) {
  dir_.copy_true("hoop-rel-cmd");
  const fs::path old = fs::current_path();
  fs::current_path(dir_.path());
  auto c = resolve_command("hoop-rel-cmd", ".::relative");
  fs::current_path(old);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::not_found);
  // The same file is found through an absolute entry.
  EXPECT_TRUE(resolve_command("hoop-rel-cmd", "relative:" + dir_.path()).ok());
}

TEST_F(CommandTest, FirstDirectoryWins) {
  ASSERT_EQ(::mkdir(dir_.path("a").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir_.path("b").c_str(), 0755), 0);
  dir_.write("a/tool", "#!/bin/sh\necho a\n", 0755);
  dir_.write("b/tool", "#!/bin/sh\necho b\n", 0755);
  auto c = resolve_command("tool", dir_.path("a") + ":" + dir_.path("b"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->path(), dir_.path("a/tool"));
  EXPECT_TRUE(c->is_script());
  EXPECT_EQ(c->digest(), sha256sum(dir_.path("a/tool")));
  // A broken first match is a refusal, not a reason to run the second one.
  ASSERT_EQ(::chmod(dir_.path("a/tool").c_str(), 0757), 0);
  EXPECT_FALSE(resolve_command("tool", dir_.path("a") + ":" + dir_.path("b")).ok());
}

TEST_F(CommandTest, FileWritableByOthersIsRefused) {
  for (mode_t mode : {0757, 0775, 0777}) {
    const std::string p = dir_.copy_true("w", mode);
    auto c = resolve_command(p, "");
    ASSERT_FALSE(c.ok()) << std::oct << mode;
    EXPECT_NE(c.error().message.find("writable by group or others"), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find(p), std::string::npos);
  }
}

TEST_F(CommandTest, FileNotOwnedByRootOrNotExecutableIsRefused) {
  const std::string p = dir_.copy_true("owned");
  ASSERT_EQ(::chown(p.c_str(), 65534, 65534), 0);
  auto c = resolve_command(p, "");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("owned by uid 65534"), std::string::npos) << c.error().message;

  const std::string q = dir_.copy_true("noexec", 0644);
  auto d = resolve_command(q, "");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("not executable"), std::string::npos) << d.error().message;

  auto e = resolve_command(dir_.path(), "");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("not a regular file"), std::string::npos) << e.error().message;
}

TEST_F(CommandTest, FileInWritableDirectoryIsRefused) {
  for (mode_t mode : {0775, 0777, 01777}) {
    const std::string sub = dir_.path("d");
    fs::remove_all(sub);
    ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
    ASSERT_EQ(::chmod(sub.c_str(), mode), 0);
    dir_.copy_true("d/tool");
    auto c = resolve_command("tool", sub);
    ASSERT_FALSE(c.ok()) << std::oct << mode;
    // Sticky directories get their own hint ("writable by others"), so
    // match the part every refusal shares.
    EXPECT_NE(c.error().message.find("its directory " + sub + " is writable by"), std::string::npos)
        << c.error().message;
  }
  // And a directory owned by someone else.
  ASSERT_EQ(::chmod(dir_.path("d").c_str(), 0755), 0);
  ASSERT_EQ(::chown(dir_.path("d").c_str(), 65534, 65534), 0);
  auto c = resolve_command(dir_.path("d/tool"), "");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("owned by uid 65534, not root"), std::string::npos) << c.error().message;
}

TEST_F(CommandTest, SymlinkResolvesToCanonicalTarget) {
  const std::string real = dir_.copy_true("real-tool");
  ASSERT_EQ(::symlink("real-tool", dir_.path("alias").c_str()), 0);
  auto c = resolve_command("alias", dir_.path());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->path(), real);
  EXPECT_EQ(c->digest(), sha256sum(real));
}

TEST_F(CommandTest, SymlinkThroughWritableDirectoryIsRefused) {
  // The link sits in a directory others can write: they chose the target.
  const std::string sub = dir_.path("open");
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(sub.c_str(), 0777), 0);
  ASSERT_EQ(::symlink("/usr/bin/true", (sub + "/tool").c_str()), 0);
  auto c = resolve_command("tool", sub);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("writable by group or others"), std::string::npos) << c.error().message;
}

TEST_F(CommandTest, VerifyDigestDetectsInPlaceChange) {
  const std::string p = dir_.write("script", "#!/bin/sh\nexit 0\n", 0755);
  auto c = resolve_command(p, "");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const std::string approved = c->digest();
  EXPECT_TRUE(verify_digest(*c, approved).ok());
  {
    std::ofstream f(p, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(10);
    f << "rm -rf /";  // same inode, new content
  }
  auto s = verify_digest(*c, approved);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("changed since it was approved"), std::string::npos) << s.error().message;
  EXPECT_FALSE(verify_digest(*c, "not-a-digest").ok());
  EXPECT_FALSE(verify_digest(ResolvedCommand(), approved).ok());
}

TEST_F(CommandTest, MoveKeepsOwnershipOfTheFd) {
  auto c = resolve_command("true", "/usr/bin");
  ASSERT_TRUE(c.ok());
  const int fd = c->fd();
  ResolvedCommand moved(std::move(*c));
  EXPECT_EQ(moved.fd(), fd);
  EXPECT_EQ(c->fd(), -1);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  ResolvedCommand other;
  other = std::move(moved);
  EXPECT_EQ(other.fd(), fd);
  EXPECT_NE(::fcntl(fd, F_GETFD), -1);
}

TEST(LookupTarget, RefusesUidSyntaxNumbersAndBadNames) {
  struct Case {
    const char* spec;
    const char* expect;
  };
  for (const Case& c :
       {Case{"#-1", "uid syntax is not supported"}, Case{"#0", "uid syntax is not supported"},
        Case{"#4294967295", "uid syntax is not supported"}, Case{"0", "is a number; give a user name"},
        Case{"65534", "is a number"}, Case{"root;id", "invalid user name"},
        Case{"root\n", "invalid user name"}, Case{"-root", "invalid user name"},
        Case{"ro ot", "invalid user name"}, Case{"$", "invalid user name"},
        Case{"", "empty run-as user name"}, Case{"nosuchuser-hoop", "unknown run-as user"}}) {
    auto t = lookup_target(c.spec);
    ASSERT_FALSE(t.ok()) << c.spec;
    EXPECT_NE(t.error().message.find(c.expect), std::string::npos) << c.spec << ": " << t.error().message;
  }
  EXPECT_EQ(lookup_target("nosuchuser-hoop").error().code, Errc::not_found);
  EXPECT_EQ(lookup_target("#-1").error().code, Errc::invalid_argument);
}

TEST(LookupTarget, FindsRealUsers) {
  auto root = lookup_target("root");
  ASSERT_TRUE(root.ok()) << root.error().message;
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->gid, 0u);
  EXPECT_EQ(root->name, "root");
  EXPECT_EQ(root->home, "/root");
  auto nobody = lookup_target("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.error().message;
  EXPECT_EQ(nobody->uid, 65534u);
  EXPECT_EQ(nobody->name, "nobody");
  EXPECT_EQ(nobody->shell.front(), '/');
}

}  // namespace
}  // namespace hoop::exec
