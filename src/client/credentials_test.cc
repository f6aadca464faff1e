#include "client/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace hoop::client {
namespace {

namespace fs = std::filesystem;

const std::string kToken = "hoop_0123456789abcdef_" + std::string(64, 'a');

TEST(TokenShape, AcceptsOnlyTheIssuedForm) {
  EXPECT_TRUE(is_valid_token_shape(kToken));
  EXPECT_FALSE(is_valid_token_shape(""));
  EXPECT_FALSE(is_valid_token_shape("hoop_0123456789abcdef_" + std::string(63, 'a')));
  EXPECT_FALSE(is_valid_token_shape("hoop_0123456789abcdef_" + std::string(65, 'a')));
  EXPECT_FALSE(is_valid_token_shape("hoop_0123456789ABCDEF_" + std::string(64, 'a')));
  EXPECT_FALSE(is_valid_token_shape("hoop_0123456789abcdeg_" + std::string(64, 'a')));
  EXPECT_FALSE(is_valid_token_shape("HOOP_0123456789abcdef_" + std::string(64, 'a')));
  EXPECT_FALSE(is_valid_token_shape("hoop-0123456789abcdef_" + std::string(64, 'a')));
  EXPECT_FALSE(is_valid_token_shape("hoop_0123456789abcdef-" + std::string(64, 'a')));
  EXPECT_FALSE(is_valid_token_shape(kToken + "\n"));
}

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = fs::temp_directory_path().string() + "/hoop-cred-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    caller_.uid = geteuid();
    caller_.gid = getegid();
    caller_.name = "bob";
    caller_.home = tmpl;
    fs::create_directories(tmpl + "/.config/hoop");
  }
  void TearDown() override { fs::remove_all(caller_.home); }

  void write_token(const std::string& text, mode_t mode) {
    const auto p = personal_token_path(caller_);
    std::ofstream(p) << text;
    ASSERT_EQ(::chmod(p.c_str(), mode), 0);
  }

  sys::Caller caller_;
};

TEST_F(TokenFileTest, PathComesFromTheCallersHome) {
  EXPECT_EQ(personal_token_path(caller_), caller_.home + "/.config/hoop/token");
}

TEST_F(TokenFileTest, EnvironmentWinsAndIsTrimmed) {
  write_token("garbage", 0600);
  auto t = load_personal_token((" " + kToken + "\n").c_str(), caller_);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(*t, kToken);
}

TEST_F(TokenFileTest, MalformedEnvironmentTokenIsNotEchoed) {
  const std::string secret = "hoop_0123456789abcdef_" + std::string(63, 'b');
  auto t = load_personal_token(secret.c_str(), caller_);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::unauthenticated);
  EXPECT_EQ(t.error().message.find("bbbb"), std::string::npos);
  EXPECT_NE(t.error().message.find("HOOP_TOKEN"), std::string::npos);
  EXPECT_NE(t.error().message.find("hoopd token create --user bob"), std::string::npos);
}

TEST_F(TokenFileTest, EmptyEnvironmentFallsBackToFile) {
  write_token(kToken + "\n", 0600);
  auto t = load_personal_token("", caller_);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(*t, kToken);
  auto t2 = load_personal_token(nullptr, caller_);
  ASSERT_TRUE(t2.ok());
}

TEST_F(TokenFileTest, FileReadableByOthersIsRefused) {
  write_token(kToken, 0644);
  auto t = load_personal_token(nullptr, caller_);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("(mode 0644); run: chmod 600 " + personal_token_path(caller_)),
            std::string::npos)
      << t.error().message;
}

TEST_F(TokenFileTest, MissingFileSaysHowToGetOne) {
  auto t = load_personal_token(nullptr, caller_);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::unauthenticated);
  EXPECT_NE(t.error().message.find("set HOOP_TOKEN"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("hoopd token create --user bob"), std::string::npos);
}

TEST_F(TokenFileTest, MalformedFileIsRefusedWithoutEchoing) {
  write_token("hoop_0123456789abcdef_" + std::string(64, 'Z'), 0600);
  auto t = load_personal_token(nullptr, caller_);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message.find("ZZZZ"), std::string::npos);
  EXPECT_NE(t.error().message.find("does not hold a hoop token"), std::string::npos);
}

}  // namespace
}  // namespace hoop::client
