#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "exec/command.h"

namespace hoop::exec {
namespace {

constexpr const char* kSecurePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

Target nobody() {
  Target t;
  t.uid = 65534;
  t.gid = 65534;
  t.name = "nobody";
  t.home = "/nonexistent";
  t.shell = "/usr/sbin/nologin";
  return t;
}

std::map<std::string, std::string> as_map(const std::vector<std::string>& env) {
  std::map<std::string, std::string> m;
  for (const auto& e : env) {
    const size_t eq = e.find('=');
    EXPECT_NE(eq, std::string::npos) << e;
    EXPECT_TRUE(m.emplace(e.substr(0, eq), e.substr(eq + 1)).second) << "duplicate " << e;
  }
  return m;
}

std::map<std::string, std::string> build(const std::vector<std::string>& caller) {
  return as_map(build_environment(caller, nobody(), kSecurePath, "alice", 1000, 42));
}

TEST(Environment, FixedVariablesComeFromTargetAndRequest) {
  auto env = build({"PATH=/home/alice/bin:.", "HOME=/home/alice", "USER=alice", "LOGNAME=alice",
                    "SHELL=/bin/zsh", "HOOP_USER=root", "HOOP_UID=0", "HOOP_REQUEST_ID=1"});
  EXPECT_EQ(env["PATH"], kSecurePath);
  EXPECT_EQ(env["HOME"], "/nonexistent");
  EXPECT_EQ(env["SHELL"], "/usr/sbin/nologin");
  EXPECT_EQ(env["USER"], "nobody");
  EXPECT_EQ(env["LOGNAME"], "nobody");
  EXPECT_EQ(env["HOOP_USER"], "alice");
  EXPECT_EQ(env["HOOP_UID"], "1000");
  EXPECT_EQ(env["HOOP_REQUEST_ID"], "42");
  EXPECT_EQ(env.size(), 8u);
}

TEST(Environment, DangerousVariablesAreDropped) {
  const std::vector<std::string> caller = {"LD_PRELOAD=/tmp/evil.so",
                                           "LD_LIBRARY_PATH=/tmp",
                                           "LD_AUDIT=/tmp/a.so",
                                           "BASH_ENV=/tmp/rc",
                                           "ENV=/tmp/rc",
                                           "PYTHONPATH=/tmp",
                                           "PYTHONSTARTUP=/tmp/x.py",
                                           "PERL5LIB=/tmp",
                                           "PERL5OPT=-Mevil",
                                           "IFS=/",
                                           "GCONV_PATH=/tmp",
                                           "SHELLOPTS=xtrace",
                                           "PS4=$(id)",
                                           "BASH_FUNC_ls%%=() { id; }",
                                           "HOSTALIASES=/tmp/h",
                                           "TMPDIR=/tmp/x",
                                           "NODE_OPTIONS=--require /tmp/x.js",
                                           "lc_all=C",
                                           "LC_=x",
                                           "TERMINFO=/tmp/ti",
                                           "TERM"};
  auto env = build(caller);
  for (const char* name :
       {"LD_PRELOAD",    "LD_LIBRARY_PATH", "LD_AUDIT",    "BASH_ENV", "ENV",          "PYTHONPATH",
        "PYTHONSTARTUP", "PERL5LIB",        "PERL5OPT",    "IFS",      "GCONV_PATH",   "SHELLOPTS",
        "PS4",           "BASH_FUNC_ls%%",  "HOSTALIASES", "TMPDIR",   "NODE_OPTIONS", "lc_all",
        "LC_",           "TERMINFO",        "TERM"})
    EXPECT_EQ(env.count(name), 0u) << name;
  EXPECT_EQ(env.size(), 8u);
}

TEST(Environment, AllowListPassesCleanValues) {
  auto env = build({"TERM=xterm-256color", "COLORTERM=truecolor", "LANG=en_US.UTF-8", "LANGUAGE=de_DE:en",
                    "LC_ALL=C.UTF-8", "LC_MESSAGES=fr_FR.UTF-8", "TZ=Europe/Berlin", "NO_COLOR=1"});
  EXPECT_EQ(env["TERM"], "xterm-256color");
  EXPECT_EQ(env["COLORTERM"], "truecolor");
  EXPECT_EQ(env["LANG"], "en_US.UTF-8");
  EXPECT_EQ(env["LANGUAGE"], "de_DE:en");
  EXPECT_EQ(env["LC_ALL"], "C.UTF-8");
  EXPECT_EQ(env["LC_MESSAGES"], "fr_FR.UTF-8");
  EXPECT_EQ(env["TZ"], "Europe/Berlin");
  EXPECT_EQ(env["NO_COLOR"], "1");
  EXPECT_EQ(build({"TZ=:UTC"})["TZ"], ":UTC");
}

TEST(Environment, DirtyValuesAreDropped) {
  const std::vector<std::string> dirty = {"TERM=xterm\x1b]0;pwned\x07",
                                          "TERM=",
                                          "TERM=" + std::string(65, 'x'),
                                          "TERM=xterm;id",
                                          "TERM=../../tmp/ti",
                                          "LANG=../../x",
                                          "LANG=/tmp/locale",
                                          "LC_ALL=C/../../tmp",
                                          "LANGUAGE=en:../../x",
                                          "LC_CTYPE=en\nX=1",
                                          "TZ=/etc/shadow",
                                          "TZ=../../../etc/shadow",
                                          "TZ=:/tmp/zone",
                                          "TZ=Europe/../../x",
                                          "COLORTERM=true\x1b[2J",
                                          "NO_COLOR=\x9b",
                                          "NO_COLOR=" + std::string(5000, 'y')};
  for (const auto& e : dirty) {
    auto env = build({e});
    EXPECT_EQ(env.size(), 8u) << "passed: " << e;
  }
}

TEST(Environment, FirstOccurrenceDecides) {
  // getenv() sees the first one; a clean second copy must not stand in for
  // a dirty first one, nor be emitted twice.
  auto env = build({"LANG=../../x", "LANG=C"});
  EXPECT_EQ(env.count("LANG"), 0u);
  env = build({"TERM=vt100", "TERM=xterm"});
  EXPECT_EQ(env["TERM"], "vt100");
}

TEST(Environment, PathKeepsOnlyAbsoluteEntries) {
  auto env = as_map(build_environment({}, nobody(), ":.:/usr/bin:bin::/bin:", "alice", 1000, 1));
  EXPECT_EQ(env["PATH"], "/usr/bin:/bin");
}

TEST(Environment, OrderIsAllowListThenFixed) {
  auto env = build_environment({"TERM=vt100", "LD_PRELOAD=x"}, nobody(), "/bin", "alice", 1000, 7);
  ASSERT_EQ(env.size(), 9u);
  EXPECT_EQ(env.front(), "TERM=vt100");
  EXPECT_EQ(env.back(), "HOOP_REQUEST_ID=7");
}

}  // namespace
}  // namespace hoop::exec
