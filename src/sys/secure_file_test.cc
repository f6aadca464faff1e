#include "sys/secure_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace hoop::sys {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kOtherUid = 4242;

// A scratch directory whose whole chain up to / is root's and not writable
// by others (so /tmp will not do). Needs root: the tests chown files.
class SecureFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (chown to other uids)";
    for (const char* base : {"/run", "/var/lib", "/root"}) {
      struct stat st {};
      if (::stat(base, &st) != 0 || st.st_uid != 0 || (st.st_mode & 022) != 0) continue;
      std::string tmpl = std::string(base) + "/hoop-sys-test.XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr) continue;
      dir_ = tmpl;
      break;
    }
    if (dir_.empty()) GTEST_SKIP() << "no root-only scratch directory";
    ::chmod(dir_.c_str(), 0755);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string write(const std::string& name, const std::string& text, mode_t mode, uid_t uid = 0) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    EXPECT_EQ(::chmod(p.c_str(), mode), 0);
    EXPECT_EQ(::chown(p.c_str(), uid, 0), 0);
    return p;
  }
  std::string subdir(const std::string& name, mode_t mode, uid_t uid = 0) {
    const std::string p = dir_ + "/" + name;
    EXPECT_EQ(::mkdir(p.c_str(), 0700), 0);
    EXPECT_EQ(::chmod(p.c_str(), mode), 0);
    EXPECT_EQ(::chown(p.c_str(), uid, 0), 0);
    return p;
  }

  std::string dir_;
};

void expect_refused(const Result<std::string>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "expected refusal containing: " << needle;
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

TEST_F(SecureFileTest, ReadsRootOwnedFile) {
  const auto p = write("hoop.toml", "server = \"x\"\n", 0644);
  auto r = read_root_owned_file(p, 1024);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "server = \"x\"\n");
}

TEST_F(SecureFileTest, RefusesGroupWritableFile) {
  const auto p = write("hoop.toml", "x", 0664);
  auto r = read_root_owned_file(p, 1024);
  expect_refused(r, "refusing " + p + ": writable by group or others (mode 0664); run: chmod go-w " + p);
}

TEST_F(SecureFileTest, RefusesWorldWritableFile) {
  expect_refused(read_root_owned_file(write("a", "x", 0602), 1024), "(mode 0602)");
}

TEST_F(SecureFileTest, RefusesFileNotOwnedByRoot) {
  const auto p = write("hoop.toml", "x", 0644, kOtherUid);
  expect_refused(read_root_owned_file(p, 1024), "owned by uid 4242, not root; run: chown root: " + p);
}

TEST_F(SecureFileTest, RefusesSymlinkAsLastComponent) {
  const auto target = write("real", "x", 0644);
  const auto link = dir_ + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  expect_refused(read_root_owned_file(link, 1024), "symbolic link");
}

TEST_F(SecureFileTest, FollowsLinkedDirectoryButChecksTarget) {
  const auto good = subdir("good", 0755);
  std::ofstream(good + "/f") << "ok";
  const auto link = dir_ + "/alias";
  ASSERT_EQ(::symlink(good.c_str(), link.c_str()), 0);
  auto r = read_root_owned_file(link + "/f", 1024);
  ASSERT_TRUE(r.ok()) << r.error().message;

  const auto bad = subdir("bad", 0777);
  std::ofstream(bad + "/f") << "x";
  const auto link2 = dir_ + "/alias2";
  ASSERT_EQ(::symlink(bad.c_str(), link2.c_str()), 0);
  expect_refused(read_root_owned_file(link2 + "/f", 1024), "its directory " + bad + " is writable");
}

TEST_F(SecureFileTest, RefusesDirectoryAndFifo) {
  subdir("d", 0755);
  expect_refused(read_root_owned_file(dir_ + "/d", 1024), "not a regular file");
  const auto fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  // Must not block waiting for a writer.
  expect_refused(read_root_owned_file(fifo, 1024), "not a regular file");
}

TEST_F(SecureFileTest, RefusesGroupWritableParent) {
  const auto d = subdir("etc", 0775);
  std::ofstream(d + "/hoop.toml") << "x";
  expect_refused(read_root_owned_file(d + "/hoop.toml", 1024),
                 "its directory " + d + " is writable by group or others (mode 0775); run: chmod go-w " + d);
}

TEST_F(SecureFileTest, RefusesParentNotOwnedByRoot) {
  const auto d = subdir("home", 0755, kOtherUid);
  std::ofstream(d + "/hoop.toml") << "x";
  expect_refused(read_root_owned_file(d + "/hoop.toml", 1024),
                 "its directory " + d + " is owned by uid 4242");
}

TEST_F(SecureFileTest, RefusesStickyWorldWritableParent) {
  const auto d = subdir("tmp", 01777);
  std::ofstream(d + "/hoop.toml") << "x";
  expect_refused(read_root_owned_file(d + "/hoop.toml", 1024), "is writable by others (mode 1777)");
}

TEST_F(SecureFileTest, RefusesGrandparentProblemsToo) {
  const auto d = subdir("open", 0777);
  ASSERT_EQ(::mkdir((d + "/inner").c_str(), 0755), 0);
  std::ofstream(d + "/inner/f") << "x";
  expect_refused(read_root_owned_file(d + "/inner/f", 1024), "its directory " + d + " is writable");
}

TEST_F(SecureFileTest, RefusesRealTmp) {
  // /tmp is sticky and world-writable on every normal system.
  expect_refused(read_root_owned_file("/tmp/hoop-does-not-matter", 1024), "its directory /tmp");
}

TEST_F(SecureFileTest, SizeLimit) {
  const auto p = write("big", std::string(100, 'a'), 0644);
  auto r = read_root_owned_file(p, 99);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::too_large);
  EXPECT_TRUE(read_root_owned_file(p, 100).ok());
}

TEST_F(SecureFileTest, MissingFileAndRelativePath) {
  auto r = read_root_owned_file(dir_ + "/nope", 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::not_found);
  auto r2 = read_root_owned_file(dir_ + "/nodir/nope", 10);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code, Errc::not_found);
  auto r3 = read_root_owned_file("etc/hoop/hoop.toml", 10);
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.error().code, Errc::invalid_argument);
}

TEST_F(SecureFileTest, PrivateFileAccepted) {
  const auto p = write("token", "secret\n", 0600, kOtherUid);
  auto r = read_private_file(p, kOtherUid, 1024);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "secret\n");
}

TEST_F(SecureFileTest, PrivateFileReadableByOthers) {
  const auto p = write("token", "secret", 0644, kOtherUid);
  expect_refused(
      read_private_file(p, kOtherUid, 1024),
      "refusing " + p + ": readable or writable by group or others (mode 0644); run: chmod 600 " + p);
  expect_refused(read_private_file(write("t2", "s", 0640, kOtherUid), kOtherUid, 1024), "(mode 0640)");
}

TEST_F(SecureFileTest, PrivateFileWrongOwner) {
  const auto p = write("token", "secret", 0600, 0);
  expect_refused(read_private_file(p, kOtherUid, 1024), "owned by uid 0, not by you (uid 4242)");
}

TEST_F(SecureFileTest, PrivateFileSymlinkRefused) {
  const auto p = write("token", "secret", 0600, kOtherUid);
  const auto link = dir_ + "/link";
  ASSERT_EQ(::symlink(p.c_str(), link.c_str()), 0);
  expect_refused(read_private_file(link, kOtherUid, 1024), "symbolic link");
}

TEST_F(SecureFileTest, PlainReadFollowsLinksAndCapsSize) {
  const auto p = write("ca.pem", "pem", 0666, kOtherUid);
  const auto link = dir_ + "/ca-link";
  ASSERT_EQ(::symlink(p.c_str(), link.c_str()), 0);
  auto r = read_file(link, 10);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "pem");
  EXPECT_FALSE(read_file(p, 2).ok());
}

TEST_F(SecureFileTest, MessagesEscapeControlCharacters) {
  auto r = read_root_owned_file(dir_ + "/\x1b[2Jevil", 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find('\x1b'), std::string::npos);
  EXPECT_NE(r.error().message.find("\\x1b[2Jevil"), std::string::npos);
}

}  // namespace
}  // namespace hoop::sys
