// Rules: builtins, transfers (refused unless allowed), shell words, cd
// containment, agent forwarding; and the environment allow-list.

#include "shell/rules.h"

#include <gtest/gtest.h>

#include "shell/environment.h"

namespace hoop::shell {
namespace {

using Words = std::vector<std::string>;

config::ShellConfig allow_all() {
  config::ShellConfig c;
  c.allow_scp = c.allow_sftp = c.allow_rsync = c.allow_agent_forwarding = true;
  return c;
}

TEST(Rules, OrdinaryCommandsBecomeRequests) {
  const auto d = classify({"systemctl", "restart", "nginx"}, {});
  EXPECT_EQ(d.action, Action::request);
  EXPECT_EQ(d.argv, (Words{"systemctl", "restart", "nginx"}));
  EXPECT_EQ(classify({"/usr/bin/scp", "a", "b:c"}, {}).action, Action::request) << "scp as a client";
  EXPECT_EQ(classify({"rsync", "-a", "x", "y"}, {}).action, Action::request);
  EXPECT_EQ(classify({"time", "make"}, {}).action, Action::request) << "/usr/bin/time exists";
}

TEST(Rules, Builtins) {
  EXPECT_EQ(classify({"help"}, {}).builtin, Builtin::help);
  EXPECT_EQ(classify({"exit", "3"}, {}).builtin, Builtin::exit);
  EXPECT_EQ(classify({"requests"}, {}).builtin, Builtin::requests);
  EXPECT_EQ(classify({"history"}, {}).builtin, Builtin::history);
  EXPECT_EQ(classify({"cd", "/srv"}, {}).builtin, Builtin::cd);
  EXPECT_EQ(classify({"pwd"}, {}).builtin, Builtin::pwd);
  EXPECT_EQ(classify({"cd"}, {}).action, Action::builtin);
}

TEST(Rules, ShellWordsAreRefused) {
  for (const char* w : {"if", "for", "while", "exec", "eval", "source", ".", "export", "alias", "{", "fg"}) {
    const auto d = classify({w, "x"}, {});
    EXPECT_EQ(d.action, Action::refuse) << w;
    EXPECT_NE(d.message.find("shell syntax or a shell builtin"), std::string::npos) << d.message;
  }
}

TEST(Rules, ScpRefusedByDefault) {
  for (const Words& w : {Words{"scp", "-t", "/tmp"}, Words{"scp", "-f", "x"},
                         Words{"/usr/bin/scp", "-r", "-t", "."}, Words{"scp", "-rt", "."}}) {
    const auto d = classify(w, {});
    EXPECT_EQ(d.action, Action::refuse);
    EXPECT_NE(d.message.find("scp (file copy over the scp protocol) is not allowed on this account"),
              std::string::npos)
        << d.message;
    EXPECT_NE(d.message.find("allow_scp = true"), std::string::npos);
  }
}

TEST(Rules, ScpAllowedRunsTheFixedProgramWithProtocolFlagsOnly) {
  auto d = classify({"/home/me/bin/scp", "-v", "-r", "-p", "-t", "--", "dir"}, allow_all());
  ASSERT_EQ(d.action, Action::transfer) << d.message;
  EXPECT_EQ(d.argv, (Words{kScpPath, "-v", "-r", "-p", "-t", "--", "dir"}));
  d = classify({"scp", "-f", "file"}, allow_all());
  EXPECT_EQ(d.argv, (Words{kScpPath, "-f", "file"}));
  EXPECT_EQ(classify({"scp", "-S", "/bin/sh", "-t", "x"}, allow_all()).action, Action::refuse);
  EXPECT_EQ(classify({"scp", "-t", "-oProxyCommand=x", "x"}, allow_all()).action, Action::refuse);
  EXPECT_EQ(classify({"scp", "-t", "a", "b"}, allow_all()).action, Action::refuse);
  EXPECT_EQ(classify({"scp", "-t"}, allow_all()).action, Action::refuse);
}

TEST(Rules, Sftp) {
  for (const Words& w : {Words{"internal-sftp"}, Words{"/usr/lib/openssh/sftp-server"},
                         Words{"/usr/lib/sftp-server", "-l", "INFO"}, Words{"sftp-server"}}) {
    auto d = classify(w, {});
    EXPECT_EQ(d.action, Action::refuse);
    EXPECT_NE(d.message.find("sftp (file transfer) is not allowed"), std::string::npos) << d.message;
    EXPECT_NE(d.message.find("allow_sftp = true"), std::string::npos);
    d = classify(w, allow_all());
    ASSERT_EQ(d.action, Action::transfer);
    EXPECT_EQ(d.argv, Words{kSftpServerPath}) << "never the user's path or options";
  }
}

TEST(Rules, Rsync) {
  const Words w{"rsync", "--server", "-vlogDtpre.iLsfxC", ".", "dest"};
  auto d = classify(w, {});
  EXPECT_EQ(d.action, Action::refuse);
  EXPECT_NE(d.message.find("rsync (file transfer) is not allowed"), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("allow_rsync = true"), std::string::npos);
  d = classify({"/tmp/evil/rsync", "--server", "."}, allow_all());
  ASSERT_EQ(d.action, Action::transfer);
  EXPECT_EQ(d.argv, (Words{kRsyncPath, "--server", "."}));
}

TEST(Rules, EachTransferNeedsItsOwnKey) {
  config::ShellConfig only_scp;
  only_scp.allow_scp = true;
  EXPECT_EQ(classify({"scp", "-t", "x"}, only_scp).action, Action::transfer);
  EXPECT_EQ(classify({"internal-sftp"}, only_scp).action, Action::refuse);
  EXPECT_EQ(classify({"rsync", "--server", "."}, only_scp).action, Action::refuse);
}

TEST(Rules, AgentForwarding) {
  EXPECT_EQ(agent_forwarding_refusal(false, {}), "");
  EXPECT_EQ(agent_forwarding_refusal(true, allow_all()), "");
  const std::string m = agent_forwarding_refusal(true, {});
  EXPECT_NE(m.find("ssh agent forwarding is not allowed on this account"), std::string::npos);
  EXPECT_NE(m.find("allow_agent_forwarding = true"), std::string::npos);
}

TEST(Rules, IsWithin) {
  EXPECT_TRUE(is_within("/srv", "/srv"));
  EXPECT_TRUE(is_within("/srv/app/x", "/srv"));
  EXPECT_TRUE(is_within("/srv/app", "/srv/"));
  EXPECT_FALSE(is_within("/srv2", "/srv"));
  EXPECT_FALSE(is_within("/sr", "/srv"));
  EXPECT_FALSE(is_within("/", "/srv"));
  EXPECT_TRUE(is_within("/anything", "/"));
  EXPECT_FALSE(is_within("relative", "/"));
  EXPECT_FALSE(is_within("/srv", ""));
}

TEST(Environment, OnlyTheAllowList) {
  const std::vector<std::string> env{"TERM=xterm-256color",
                                     "LANG=C.UTF-8",
                                     "LC_ALL=C",
                                     "LC_TIME=de_DE.UTF-8",
                                     "COLORTERM=truecolor",
                                     "TZ=UTC",
                                     "NO_COLOR=1",
                                     "LANGUAGE=en",
                                     "PATH=/tmp/evil",
                                     "LD_PRELOAD=/tmp/x.so",
                                     "HOME=/tmp",
                                     "HOOP_TOKEN=x",
                                     "HOOP_SERVER=https://evil",
                                     "SSH_AUTH_SOCK=/tmp/a",
                                     "BASH_ENV=/tmp/x",
                                     "IFS=x",
                                     "LC_=x",
                                     "LC_lower=x",
                                     "TERMINFO=/tmp/t",
                                     "=x",
                                     "noequals"};
  EXPECT_EQ(
      hoopctl_environment(env),
      (std::vector<std::string>{"TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C", "LC_TIME=de_DE.UTF-8",
                                "COLORTERM=truecolor", "TZ=UTC", "NO_COLOR=1", "LANGUAGE=en"}));
}

TEST(Environment, HostileValuesAndDuplicates) {
  EXPECT_EQ(hoopctl_environment({"TERM=a\x1b]0;x\x07", "LANG=" + std::string(300, 'a'), "TERM=vt100",
                                 "LANG=C", "LANG=POSIX", "LC_ALL=\xff"}),
            (std::vector<std::string>{"TERM=vt100", "LANG=C"}));
}

}  // namespace
}  // namespace hoop::shell
