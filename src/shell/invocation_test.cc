// Where the command comes from: -c, SSH_ORIGINAL_COMMAND, the ForceCommand
// shapes, a prompt.

#include "shell/invocation.h"

#include <gtest/gtest.h>

namespace hoop::shell {
namespace {

using Args = std::vector<std::string>;
constexpr const char* kSelf = "/usr/local/bin/hoop-shell";

Invocation plan(const Args& a, const char* orig = nullptr, bool tty = true) {
  return plan_invocation(a, orig, kSelf, tty);
}

TEST(Invocation, LoginShellWithCommand) {
  auto i = plan({"-c", "systemctl restart nginx"});
  EXPECT_EQ(i.mode, Mode::command);
  EXPECT_EQ(i.command, "systemctl restart nginx");
  EXPECT_EQ(plan({"-c", "id", "sh", "x"}).command, "id") << "sh's $0 $1 are ignored";
  EXPECT_EQ(plan({"-lc", "id"}).command, "id");
  EXPECT_EQ(plan({"-l", "-c", "id"}).command, "id");
  EXPECT_EQ(plan({"-c", ""}).mode, Mode::command);
  EXPECT_EQ(plan({"-c", "-x"}).command, "-x");
}

TEST(Invocation, InteractiveAndNoTerminal) {
  EXPECT_EQ(plan({}).mode, Mode::interactive);
  EXPECT_EQ(plan({"-l"}).mode, Mode::interactive);
  EXPECT_EQ(plan({"-i"}).mode, Mode::interactive);
  EXPECT_EQ(plan({}, nullptr, false).mode, Mode::no_terminal);
  EXPECT_EQ(plan({}, "", true).mode, Mode::interactive) << "an empty SSH_ORIGINAL_COMMAND is no command";
}

TEST(Invocation, ForceCommandRunByAnotherLoginShell) {
  // sshd: bash -c "hoop-shell" with SSH_ORIGINAL_COMMAND set; bash execs us.
  auto i = plan({}, "journalctl -u nginx");
  EXPECT_EQ(i.mode, Mode::command);
  EXPECT_EQ(i.command, "journalctl -u nginx");
  EXPECT_EQ(plan({"--login-session"}, "id").command, "id") << "a command is a request of its own";
  EXPECT_EQ(plan({"--login-session"}).mode, Mode::login_session);
  EXPECT_EQ(plan({"--login-session"}, nullptr, false).mode, Mode::login_session);
}

TEST(Invocation, ForceCommandRunByHoopShellAsLoginShell) {
  // sshd: hoop-shell -c "/usr/local/bin/hoop-shell" with SSH_ORIGINAL_COMMAND.
  auto i = plan({"-c", kSelf}, "uptime");
  EXPECT_EQ(i.mode, Mode::command);
  EXPECT_EQ(i.command, "uptime");
  EXPECT_EQ(plan({"-c", "hoop-shell"}, "uptime").command, "uptime");
  EXPECT_EQ(plan({"-c", kSelf}).mode, Mode::interactive);
  EXPECT_EQ(plan({"-c", "'/usr/local/bin/hoop-shell'"}).mode, Mode::interactive);
  EXPECT_EQ(plan({"-c", std::string(kSelf) + " --login-session"}).mode, Mode::login_session);
  EXPECT_EQ(plan({"-c", std::string(kSelf) + " --login-session"}, "id").command, "id");
  // Anything more is an ordinary command, through the rules like any other.
  EXPECT_EQ(plan({"-c", std::string(kSelf) + " -c 'a;b'"}, "id").command, std::string(kSelf) + " -c 'a;b'");
  EXPECT_EQ(plan({"-c", "hoop-shell; id"}, "id").command, "hoop-shell; id");
}

TEST(Invocation, Options) {
  EXPECT_EQ(plan({"--help"}).mode, Mode::help);
  EXPECT_EQ(plan({"--version"}).mode, Mode::version);
  auto i = plan({"-c"});
  EXPECT_EQ(i.mode, Mode::usage_error);
  EXPECT_NE(i.error.find("-c needs a command"), std::string::npos);
  i = plan({"--rcfile", "x"});
  EXPECT_EQ(i.mode, Mode::usage_error);
  EXPECT_NE(i.error.find("unknown option --rcfile"), std::string::npos);
  EXPECT_EQ(plan({"-x"}).mode, Mode::usage_error);
  EXPECT_EQ(plan({"script.sh"}).mode, Mode::usage_error);
  EXPECT_NE(plan({"\x1b[2J"}).error.find("\\x1b"), std::string::npos) << "escaped";
}

}  // namespace
}  // namespace hoop::shell
