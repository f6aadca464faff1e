// The shell core against a fake Os: what it starts, with which argv and
// environment, what it refuses and how it reports it.

#include "shell/shell.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "shell/os.h"

namespace hoop::shell {
namespace {

using Words = std::vector<std::string>;

struct FakeOs : Os {
  std::vector<Words> ran;
  std::vector<Words> envs;
  std::vector<Words> replaced;
  int status = 0;
  bool fail = false;
  std::string cwd = "/home/alice";
  std::map<std::string, std::string> links;  // path -> canonical; absent = does not exist
  std::vector<std::string> files;

  Result<int> run(const Words& argv, const Words& env) override {
    ran.push_back(argv);
    envs.push_back(env);
    if (fail) return make_error(Errc::io, "No such file or directory");
    return status;
  }
  Error replace(const Words& argv, const Words& env) override {
    replaced.push_back(argv);
    envs.push_back(env);
    return make_error(Errc::io, "Permission denied");
  }
  Result<std::string> canonical(const std::string& path) override {
    auto it = links.find(path);
    if (it == links.end()) return make_error(Errc::io, "No such file or directory");
    return it->second;
  }
  Status change_dir(const std::string& dir) override {
    cwd = dir;
    return {};
  }
  std::string current_dir() override { return cwd; }
  bool exists(const std::string& path) override {
    return std::find(files.begin(), files.end(), path) != files.end();
  }
};

struct Fixture : ::testing::Test {
  FakeOs os;
  std::ostringstream out, err;
  ShellOptions opts() {
    ShellOptions o;
    o.hoopctl = "/usr/bin/hoopctl";
    o.user = "alice";
    o.home = "/home/alice";
    o.env = {"TERM=xterm", "LANG=C.UTF-8"};
    return o;
  }
  std::unique_ptr<Shell> make(ShellOptions o) { return std::make_unique<Shell>(std::move(o), os, out, err); }
  std::unique_ptr<Shell> make() { return make(opts()); }
};

TEST_F(Fixture, ACommandIsHoopctlRunWithTheAllowListedEnvironment) {
  auto sh = make();
  os.status = 42;
  EXPECT_EQ(sh->execute("systemctl restart 'my unit'", false), 42);
  ASSERT_EQ(os.ran.size(), 1u);
  EXPECT_EQ(os.ran[0], (Words{"/usr/bin/hoopctl", "run", "--", "systemctl", "restart", "my unit"}));
  EXPECT_EQ(os.envs[0], (Words{"TERM=xterm", "LANG=C.UTF-8"}));
  EXPECT_EQ(sh->status(), 42);
  EXPECT_EQ(err.str(), "");
}

TEST_F(Fixture, OptionLookingWordsStayTheCommands) {
  auto sh = make();
  (void)sh->execute("--help -u root", false);
  EXPECT_EQ(os.ran[0], (Words{"/usr/bin/hoopctl", "run", "--", "--help", "-u", "root"}));
}

TEST_F(Fixture, LastCommandReplacesTheProcess) {
  auto sh = make();
  EXPECT_EQ(sh->execute("uptime", true), kExitShellError) << "the fake's exec fails";
  ASSERT_EQ(os.replaced.size(), 1u);
  EXPECT_EQ(os.replaced[0], (Words{"/usr/bin/hoopctl", "run", "--", "uptime"}));
  EXPECT_NE(err.str().find("hoop-shell: cannot run /usr/bin/hoopctl: Permission denied"), std::string::npos);
}

TEST_F(Fixture, HoopctlMissing) {
  auto sh = make();
  os.fail = true;
  EXPECT_EQ(sh->execute("uptime", false), kExitShellError);
  EXPECT_NE(err.str().find("cannot run /usr/bin/hoopctl"), std::string::npos);
}

TEST_F(Fixture, RefusalsRunNothingAndSayWhyOnOneLine) {
  auto sh = make();
  for (const char* line : {"ls; id",     "ls | wc",   "ls & ",       "ls && id",      "ls || id",
                           "ls > f",     "ls 2> f",   "cat < f",     "echo $(id)",    "echo `id`",
                           "echo $HOME", "echo ${x}", "ls *",        "ls ?",          "ls [a]",
                           "ls ~",       "echo 'x",   "scp -t /tmp", "internal-sftp", "rsync --server . x",
                           "eval id"}) {
    err.str("");
    EXPECT_EQ(sh->execute(line, true), kExitRefused) << line;
    const std::string e = err.str();
    EXPECT_TRUE(e.starts_with("hoop-shell: refused: ")) << e;
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  }
  EXPECT_TRUE(os.ran.empty());
  EXPECT_TRUE(os.replaced.empty());
}

TEST_F(Fixture, QuotedMetacharactersAreArguments) {
  auto sh = make();
  (void)sh->execute("echo 'a;b' \"c|d\" e\\&f", false);
  EXPECT_EQ(os.ran[0], (Words{"/usr/bin/hoopctl", "run", "--", "echo", "a;b", "c|d", "e&f"}));
}

TEST_F(Fixture, BlankLineKeepsTheStatus) {
  auto sh = make();
  EXPECT_EQ(sh->execute("", true), 0);
  os.status = 3;
  (void)sh->execute("false", false);
  EXPECT_EQ(sh->execute("   ", false), 3);
  EXPECT_TRUE(os.replaced.empty());
}

TEST_F(Fixture, AllowedTransferRunsTheFixedProgramAsTheUser) {
  auto o = opts();
  o.cfg.allow_sftp = true;
  auto sh = make(o);
  (void)sh->execute("/tmp/evil/sftp-server -d /", true);
  ASSERT_EQ(os.replaced.size(), 1u);
  EXPECT_EQ(os.replaced[0], Words{kSftpServerPath});
  EXPECT_EQ(os.envs[0], (Words{"TERM=xterm", "LANG=C.UTF-8", "HOME=/home/alice", "USER=alice",
                               "LOGNAME=alice", "PATH=/usr/bin:/bin"}));
}

TEST_F(Fixture, LoginSession) {
  auto o = opts();
  o.cfg.login_shell = "/bin/zsh";
  auto sh = make(o);
  os.status = 7;
  EXPECT_EQ(sh->login_session(false), 7);
  EXPECT_EQ(os.ran[0], (Words{"/usr/bin/hoopctl", "run", "-u", "alice", "--", "/bin/zsh", "-l"}));
}

TEST_F(Fixture, ExitBuiltin) {
  auto sh = make();
  os.status = 5;
  (void)sh->execute("false", false);
  EXPECT_EQ(sh->execute("exit", false), 5);
  EXPECT_TRUE(sh->exit_requested());
  auto sh2 = make();
  EXPECT_EQ(sh2->execute("exit 9", false), 9);
  EXPECT_TRUE(sh2->exit_requested());
  auto sh3 = make();
  EXPECT_EQ(sh3->execute("exit 256", false), 1);
  EXPECT_FALSE(sh3->exit_requested());
  EXPECT_EQ(sh3->execute("exit x", false), 1);
  EXPECT_EQ(sh3->execute("exit 1 2", false), 1);
  EXPECT_FALSE(sh3->exit_requested());
}

TEST_F(Fixture, HelpHistoryPwd) {
  auto sh = make();
  EXPECT_EQ(sh->execute("help", false), 0);
  EXPECT_NE(out.str().find("every command is a request to hoopd"), std::string::npos);
  EXPECT_NE(out.str().find("117 refused by hoop-shell's rules"), std::string::npos);
  out.str("");
  sh->set_history([] { return Words{"uptime", "echo \x1b[2J"}; });
  EXPECT_EQ(sh->execute("history", false), 0);
  EXPECT_EQ(out.str(), "1  uptime\n2  echo \\x1b[2J\n");
  out.str("");
  EXPECT_EQ(sh->execute("pwd", false), 0);
  EXPECT_EQ(out.str(), "/home/alice\n");
  EXPECT_TRUE(os.ran.empty());
}

TEST_F(Fixture, RequestsNeedsAPersonalToken) {
  auto sh = make();
  EXPECT_EQ(sh->execute("requests", false), 1);
  EXPECT_NE(err.str().find("you have no personal hoop token (/home/alice/.config/hoop/token)"),
            std::string::npos)
      << err.str();
  EXPECT_TRUE(os.ran.empty());
  os.files.push_back("/home/alice/.config/hoop/token");
  EXPECT_EQ(sh->execute("requests", false), 0);
  EXPECT_EQ(os.ran[0], (Words{"/usr/bin/hoopctl", "list", "--all", "--state", "pending"}));
}

TEST_F(Fixture, CdStaysWithinHomeAndAllowedDirectories) {
  auto o = opts();
  o.cfg.cd_dirs = {"/srv", "/gone"};
  auto sh = make(o);
  os.links = {{"/home/alice", "/home/alice"},
              {"/srv", "/srv"},
              {"/srv/app", "/srv/app"},
              {"/home/alice/..", "/home"},
              {"/etc", "/etc"},
              {"/home/alice/link", "/etc"},
              {"/srv/app/../../etc", "/etc"},
              {"/home/alice/sub", "/home/alice/sub"}};
  EXPECT_EQ(sh->execute("cd /srv/app", false), 0);
  EXPECT_EQ(os.cwd, "/srv/app");
  EXPECT_EQ(sh->execute("cd ../../etc", false), kExitRefused);
  EXPECT_NE(err.str().find("refused: cd to /etc is not allowed: this account may use only /home/alice, /srv"),
            std::string::npos)
      << err.str();
  EXPECT_EQ(os.cwd, "/srv/app");
  EXPECT_EQ(sh->execute("cd", false), 0);
  EXPECT_EQ(os.cwd, "/home/alice");
  EXPECT_EQ(sh->execute("cd link", false), kExitRefused) << "a symlink out of home";
  EXPECT_EQ(sh->execute("cd ..", false), kExitRefused);
  EXPECT_EQ(sh->execute("cd sub", false), 0);
  EXPECT_EQ(sh->execute("cd /nowhere", false), 1);
  EXPECT_EQ(sh->execute("cd a b", false), 1);
  EXPECT_EQ(sh->execute("cd ''", false), 1);
  EXPECT_TRUE(os.ran.empty());
}

TEST(Action, ValuesAreFarApart) {
  // One flipped bit (or a few) must not turn a refusal into a run.
  const uint32_t v[] = {static_cast<uint32_t>(Action::refuse), static_cast<uint32_t>(Action::builtin),
                        static_cast<uint32_t>(Action::transfer), static_cast<uint32_t>(Action::request)};
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = i + 1; j < 4; ++j) EXPECT_GE(__builtin_popcount(v[i] ^ v[j]), 8) << i << " " << j;
}

}  // namespace
}  // namespace hoop::shell
