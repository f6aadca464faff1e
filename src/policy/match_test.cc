// Globs, argv patterns and decisions.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "policy/policy.h"
#include "policy/toml_guard.h"

namespace hoop::policy {
namespace {

TEST(Glob, LiteralsStarsAndQuestionMarks) {
  EXPECT_TRUE(glob_match("web1", "web1"));
  EXPECT_FALSE(glob_match("web1", "web12"));
  EXPECT_FALSE(glob_match("web1", "web"));
  EXPECT_TRUE(glob_match("web*", "web"));
  EXPECT_TRUE(glob_match("web*", "web-eu-1"));
  EXPECT_FALSE(glob_match("web*", "db1"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
  EXPECT_TRUE(glob_match("*.example.org", "a.b.example.org"));
  EXPECT_FALSE(glob_match("*.example.org", "example.org"));
  EXPECT_TRUE(glob_match("db?", "db1"));
  EXPECT_FALSE(glob_match("db?", "db"));
  EXPECT_FALSE(glob_match("db?", "db12"));
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(glob_match("a*b*c", "aXXbYY"));
  EXPECT_TRUE(glob_match("**", "anything"));
  // '*' crosses '/': an element is one string, not a path.
  EXPECT_TRUE(glob_match("/usr/bin/*", "/usr/bin/sub/tool"));
}

TEST(Glob, Classes) {
  EXPECT_TRUE(glob_match("db[123]", "db2"));
  EXPECT_FALSE(glob_match("db[123]", "db4"));
  EXPECT_TRUE(glob_match("db[a-c]x", "dbbx"));
  EXPECT_FALSE(glob_match("db[a-c]x", "dbdx"));
  EXPECT_TRUE(glob_match("[!x]", "y"));
  EXPECT_FALSE(glob_match("[!x]", "x"));
  EXPECT_TRUE(glob_match("[^x]", "y"));
  EXPECT_FALSE(glob_match("[^a-z]", "q"));
  EXPECT_TRUE(glob_match("[^a-z]", "Q"));
  EXPECT_TRUE(glob_match("[]]", "]"));  // ']' first is literal
  EXPECT_TRUE(glob_match("[!]]", "a"));
  EXPECT_FALSE(glob_match("[!]]", "]"));
  EXPECT_TRUE(glob_match("[a-]", "-"));   // '-' last is literal
  EXPECT_TRUE(glob_match("[\\]]", "]"));  // escaped inside a class
  EXPECT_TRUE(glob_match("[", "["));      // unterminated: literal '['
  EXPECT_TRUE(glob_match("a[b", "a[b"));
  EXPECT_FALSE(glob_match("a[b", "ab"));
  EXPECT_TRUE(glob_match("x[0-9][0-9]", "x42"));
  EXPECT_FALSE(glob_match("x[0-9][0-9]", "x4"));
  // Bytes above 0x7f compare unsigned.
  EXPECT_TRUE(glob_match("[\x80-\xff]", "\xc3"));
  EXPECT_FALSE(glob_match("[a-z]", "\xc3"));
}

TEST(Glob, Escapes) {
  EXPECT_TRUE(glob_match("\\*", "*"));
  EXPECT_FALSE(glob_match("\\*", "x"));
  EXPECT_TRUE(glob_match("\\?\\[", "?["));
  EXPECT_FALSE(glob_match("\\?", "a"));
  EXPECT_TRUE(glob_match("a\\\\b", "a\\b"));
  EXPECT_TRUE(glob_match("ab\\", "ab\\"));  // trailing backslash is literal
  EXPECT_TRUE(glob_match("*\\*", "x*"));
  EXPECT_FALSE(glob_match("*\\*", "xy"));
}

TEST(Glob, PathologicalPatternsAreFast) {
  const std::string as(10000, 'a');
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(glob_match("*a*a*a*a*a*b", as));
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", as));
  EXPECT_FALSE(glob_match("*" + std::string(500, '?') + "b", as));
  EXPECT_FALSE(glob_match(std::string(1000, '*') + "b", as));
  EXPECT_TRUE(glob_match("*a*a*a*a*a*a", as));
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  EXPECT_LT(ms.count(), 1000);
}

TEST(Argv, ElementByElement) {
  const std::vector<std::string> p = {"/usr/bin/systemctl", "restart", "*"};
  EXPECT_TRUE(argv_match(p, {"/usr/bin/systemctl", "restart", "nginx"}));
  EXPECT_TRUE(argv_match(p, {"/usr/bin/systemctl", "restart", ""}));  // '*' matches an empty element
  EXPECT_FALSE(argv_match(p, {"/usr/bin/systemctl", "restart"}));
  // The sudoers trap: '*' never swallows further elements.
  EXPECT_FALSE(argv_match(p, {"/usr/bin/systemctl", "restart", "nginx", "; rm -rf /"}));
  EXPECT_FALSE(argv_match(p, {"/usr/bin/systemctl", "stop", "nginx"}));
  EXPECT_FALSE(argv_match({"/bin/echo", "a b"}, {"/bin/echo", "a", "b"}));
  EXPECT_FALSE(argv_match({"/bin/echo", "a", "b"}, {"/bin/echo", "a b"}));
  EXPECT_FALSE(argv_match({}, {}));
  EXPECT_FALSE(argv_match({}, {"/bin/x"}));
}

TEST(Argv, DoubleStarMatchesTheRest) {
  const std::vector<std::string> p = {"/usr/bin/journalctl", "**"};
  EXPECT_TRUE(argv_match(p, {"/usr/bin/journalctl"}));
  EXPECT_TRUE(argv_match(p, {"/usr/bin/journalctl", "-u", "nginx", "-f"}));
  EXPECT_FALSE(argv_match(p, {"/usr/bin/journalctl2", "-u"}));
  const std::vector<std::string> q = {"/usr/bin/systemctl", "status", "**"};
  EXPECT_TRUE(argv_match(q, {"/usr/bin/systemctl", "status"}));
  EXPECT_TRUE(argv_match(q, {"/usr/bin/systemctl", "status", "a", "b"}));
  EXPECT_FALSE(argv_match(q, {"/usr/bin/systemctl"}));  // fixed elements still required
  EXPECT_FALSE(argv_match(q, {"/usr/bin/systemctl", "restart", "a"}));
  // An escaped "**" is the literal argument.
  EXPECT_TRUE(argv_match({"/bin/x", "\\*\\*"}, {"/bin/x", "**"}));
  EXPECT_FALSE(argv_match({"/bin/x", "\\*\\*"}, {"/bin/x", "ab"}));
}

TEST(Actions, HardenedValuesAndNames) {
  EXPECT_STREQ(action_name(Action::allow), "allow");
  EXPECT_STREQ(action_name(Action::review), "review");
  EXPECT_STREQ(action_name(Action::deny), "deny");
  EXPECT_STREQ(action_name(static_cast<Action>(0)), "invalid");
  EXPECT_NE(static_cast<uint32_t>(Action::deny), 0u);
  // No single bit flip turns one action into another.
  const uint32_t v[] = {static_cast<uint32_t>(Action::deny), static_cast<uint32_t>(Action::review),
                        static_cast<uint32_t>(Action::allow)};
  for (uint32_t a : v) {
    for (uint32_t b : v) {
      if (a != b) {
        EXPECT_GT(__builtin_popcount(a ^ b), 1);
      }
    }
  }
}

constexpr std::string_view kPolicy = R"([groups]
sre = ["bob", "carol"]
ops = ["alice", "dave"]

[[rule]]
name = "restart-web"
users = ["@ops"]
hosts = ["web*"]
commands = [["/usr/bin/systemctl", "restart", "*"]]
action = "review"
reviewers = ["@sre", "alice"]
approvals = 2
reason_required = true

[[rule]]
name = "status"
users = ["*"]
commands = [["/usr/bin/systemctl", "status", "**"]]
action = "allow"

[[rule]]
name = "postgres"
users = ["erin"]
run_as = ["postgres", "backup"]
hosts = ["db[0-9]"]
commands = [["/usr/bin/psql", "**"]]
action = "allow"

[[rule]]
name = "anyone-as-anyone"
users = ["frank"]
run_as = "*"
commands = [["/usr/bin/id"]]
action = "allow"

[[rule]]
name = "no-status-of-secrets"
users = ["*"]
commands = [["/usr/bin/systemctl", "status", "secret*", "**"]]
action = "deny"

[[rule]]
name = "no-shells"
users = ["*"]
commands = [["/bin/*sh", "**"], ["/usr/bin/*sh", "**"]]
action = "deny"
)";

class Decide : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<Diagnostic> d;
    policy_ = Policy::parse(kPolicy, "policy.toml", &d);
    ASSERT_TRUE(policy_.valid()) << (d.empty() ? "" : d[0].to_string());
  }
  Decision decide(std::string host, std::string user, std::string path, std::vector<std::string> argv,
                  std::string run_as = "root") const {
    return policy_.decide(
        Query{std::move(host), std::move(user), std::move(run_as), std::move(path), std::move(argv)});
  }
  Policy policy_;
};

TEST_F(Decide, FirstMatchDecidesAndWhyNamesTheRule) {
  const auto d = decide("web1", "alice", "/usr/bin/systemctl", {"systemctl", "restart", "nginx"});
  EXPECT_EQ(d.action, Action::review);
  EXPECT_EQ(d.rule, "restart-web");
  EXPECT_EQ(d.rule_index, 0);
  EXPECT_EQ(d.why,
            "rule 'restart-web' (policy.toml:5:1): review by 2 of [alice, bob, carol], reason required");
  const auto s = decide("web1", "mallory", "/usr/bin/systemctl", {"systemctl", "status", "nginx"});
  EXPECT_EQ(s.action, Action::allow);
  EXPECT_EQ(s.rule, "status");
  EXPECT_EQ(s.rule_index, 1);
  EXPECT_EQ(s.why, "rule 'status' (policy.toml:15:1): allow");
}

TEST_F(Decide, MatchingDenyWinsOverAnEarlierAllow) {
  const auto d = decide("web1", "alice", "/usr/bin/systemctl", {"systemctl", "status", "secret-vault"});
  EXPECT_EQ(d.action, Action::deny);
  EXPECT_EQ(d.rule, "no-status-of-secrets");
  EXPECT_EQ(d.rule_index, 4);
  EXPECT_NE(d.why.find("wins over rule 'status' (policy.toml:15:1)"), std::string::npos) << d.why;
  EXPECT_EQ(decide("h", "bob", "/usr/bin/bash", {"bash"}).rule, "no-shells");
  EXPECT_EQ(decide("h", "bob", "/bin/sh", {"sh", "-c", "id"}).action, Action::deny);
}

TEST_F(Decide, NoMatchIsDefaultDeny) {
  const auto d = decide("web1", "alice", "/bin/rm", {"rm", "-rf", "/"});
  EXPECT_EQ(d.action, Action::deny);
  EXPECT_EQ(d.rule_index, -1);
  EXPECT_EQ(d.rule, "");
  EXPECT_EQ(d.why, "no rule matches (default deny)");
}

TEST_F(Decide, UsersGroupsAndHosts) {
  const std::vector<std::string> argv = {"systemctl", "restart", "nginx"};
  EXPECT_EQ(decide("web1", "dave", "/usr/bin/systemctl", argv).rule, "restart-web");  // via @ops
  EXPECT_EQ(decide("web1", "bob", "/usr/bin/systemctl", argv).rule, "");              // not in @ops
  EXPECT_EQ(decide("db1", "alice", "/usr/bin/systemctl", argv).rule, "");             // host glob
  EXPECT_EQ(decide("ops", "alice", "/usr/bin/systemctl", argv).rule, "");             // group name is no user
}

TEST_F(Decide, RunAs) {
  const std::vector<std::string> argv = {"psql", "-c", "select 1"};
  EXPECT_EQ(decide("db1", "erin", "/usr/bin/psql", argv, "postgres").action, Action::allow);
  EXPECT_EQ(decide("db1", "erin", "/usr/bin/psql", argv, "backup").action, Action::allow);
  EXPECT_EQ(decide("db1", "erin", "/usr/bin/psql", argv, "root").rule, "");
  EXPECT_EQ(decide("dbx", "erin", "/usr/bin/psql", argv, "postgres").rule, "");
  // The default run_as is root only.
  EXPECT_EQ(decide("web1", "alice", "/usr/bin/systemctl", {"s", "restart", "x"}, "www-data").rule, "");
  EXPECT_EQ(decide("h", "frank", "/usr/bin/id", {"id"}, "nobody").action, Action::allow);
}

TEST_F(Decide, PathNotArgvZeroIsMatched) {
  // argv[0] is the caller's choice; the resolved path decides.
  EXPECT_EQ(decide("web1", "alice", "/tmp/systemctl", {"/usr/bin/systemctl", "status", "x"}).rule, "");
  EXPECT_EQ(decide("web1", "alice", "/usr/bin/systemctl", {"evil", "status", "x"}).rule, "status");
  // Empty argv is the path alone.
  EXPECT_EQ(decide("h", "frank", "/usr/bin/id", {}, "root").action, Action::allow);
}

TEST_F(Decide, MalformedQueriesAreDenied) {
  const std::vector<std::string> argv = {"systemctl", "status", "x"};
  EXPECT_EQ(decide("web1", "", "/usr/bin/systemctl", argv).action, Action::deny);
  EXPECT_EQ(decide("", "alice", "/usr/bin/systemctl", argv).action, Action::deny);
  EXPECT_EQ(decide("web1", "alice", "/usr/bin/systemctl", argv, "").action, Action::deny);
  for (const char* p : {"usr/bin/systemctl", "/usr/bin/../bin/systemctl", "/usr//bin/systemctl",
                        "/usr/bin/./systemctl", "/usr/bin/systemctl/", ""}) {
    const auto d = decide("web1", "alice", p, argv);
    EXPECT_EQ(d.action, Action::deny) << p;
    EXPECT_EQ(d.rule_index, -1) << p;
  }
}

TEST_F(Decide, MembersAndReviewers) {
  EXPECT_TRUE(policy_.member_of({"@sre"}, "bob"));
  EXPECT_FALSE(policy_.member_of({"@sre"}, "alice"));
  EXPECT_TRUE(policy_.member_of({"@sre", "alice"}, "alice"));
  EXPECT_TRUE(policy_.member_of({"*"}, "anyone"));
  EXPECT_FALSE(policy_.member_of({"@nosuch"}, "bob"));
  EXPECT_FALSE(policy_.member_of({}, "bob"));
  EXPECT_EQ(policy_.reviewers_of(0), (std::vector<std::string>{"alice", "bob", "carol"}));
  EXPECT_TRUE(policy_.reviewers_of(1).empty());
  EXPECT_TRUE(policy_.reviewers_of(-1).empty());
  EXPECT_TRUE(policy_.reviewers_of(99).empty());
}

TEST(TomlGuard, CountsOnlyDotsInKeys) {
  using toml_guard::find_excess_key_dots;
  EXPECT_EQ(find_excess_key_dots("a.b.c = 1\n", 2), 0u);
  EXPECT_EQ(find_excess_key_dots("a.b.c.d = 1\n", 2), 1u);
  EXPECT_EQ(find_excess_key_dots("\n\n[a.b.c.d]\n", 2), 3u);
  EXPECT_EQ(find_excess_key_dots("x = {a.b = 1, c.d.e = 2}\n", 2), 1u);
  EXPECT_EQ(find_excess_key_dots("x = [{a.b = 1}, {c.d.e = 2}]\n", 2), 1u);
  // Dots in values, strings, quoted keys and comments do not count.
  EXPECT_EQ(find_excess_key_dots("x = 1.5\ny = [1.0, 2.0, 3.0]\nz = \"a.b.c.d\"\n# a.b.c.d\n", 2), 0u);
  EXPECT_EQ(find_excess_key_dots("\"a.b.c.d\" = 1\n'e.f.g.h' = 2\n", 2), 0u);
  EXPECT_EQ(find_excess_key_dots("x = \"\"\"\na.b.c.d = 1\n\"\"\"\n", 2), 0u);
  EXPECT_EQ(find_excess_key_dots("x = '''a.b.c.d'''\n", 2), 0u);
  // A multi-line string may end in extra quotes; what follows is keys again.
  EXPECT_EQ(find_excess_key_dots("x = \"\"\"a\"\"\"\"\na.b.c.d = 1\n", 2), 2u);
  EXPECT_EQ(find_excess_key_dots("x = \"a\\\"b\"\na.b.c.d = 1\n", 2), 2u);
  EXPECT_EQ(find_excess_key_dots("x = [\n 1.5,\n 2.5,\n]\na.b.c.d = 1\n", 2), 5u);
}

}  // namespace
}  // namespace hoop::policy
