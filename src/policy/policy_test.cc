// Parsing and validation of the policy: every error names its position.

#include "policy/policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace hoop::policy {
namespace {

using std::chrono::milliseconds;

std::string dump(const std::vector<Diagnostic>& d) {
  std::string out;
  for (const auto& x : d) out += x.to_string() + "\n";
  return out;
}

std::vector<Diagnostic> errors_of(std::string_view text) {
  std::vector<Diagnostic> d;
  const Policy p = Policy::parse(text, "p.toml", &d);
  EXPECT_FALSE(p.valid()) << text;
  EXPECT_FALSE(d.empty());
  return d;
}

// True when some diagnostic is at line:col and its message contains `part`.
bool has(const std::vector<Diagnostic>& d, uint32_t line, uint32_t col, std::string_view part) {
  for (const auto& x : d)
    if (x.pos.line == line && x.pos.column == col && x.message.find(part) != std::string::npos) return true;
  return false;
}

#define EXPECT_DIAG(text, line, col, part)             \
  do {                                                 \
    const auto d_ = errors_of(text);                   \
    EXPECT_TRUE(has(d_, line, col, part)) << dump(d_); \
  } while (0)

constexpr std::string_view kGood = R"([groups]
sre = ["alice", "bob", "alice"]
dev = ["carol"]

[[rule]]
name = "restart-web"
users = ["@dev", "dave"]
hosts = ["web*", "db?"]
run_as = "root"
commands = [["/usr/bin/systemctl", "restart", "*"], ["/usr/bin/journalctl", "**"]]
action = "review"
reviewers = ["@sre"]
approvals = 2
ttl = "1h30m"
reason_required = true

[[rule]]
name = "status"
users = ["*"]
commands = [["/usr/bin/systemctl", "status"]]
action = "allow"
)";

TEST(PolicyParse, GoodPolicyKeepsEveryField) {
  std::vector<Diagnostic> d;
  const Policy p = Policy::parse(kGood, "p.toml", &d);
  ASSERT_TRUE(p.valid()) << dump(d);
  EXPECT_TRUE(d.empty());
  ASSERT_EQ(p.rules().size(), 2u);
  const Rule& r = p.rules()[0];
  EXPECT_EQ(r.name, "restart-web");
  EXPECT_EQ(r.users, (std::vector<std::string>{"@dev", "dave"}));
  EXPECT_EQ(r.hosts, (std::vector<std::string>{"web*", "db?"}));
  EXPECT_EQ(r.run_as, (std::vector<std::string>{"root"}));
  ASSERT_EQ(r.commands.size(), 2u);
  EXPECT_EQ(r.commands[1], (std::vector<std::string>{"/usr/bin/journalctl", "**"}));
  EXPECT_EQ(r.action, Action::review);
  EXPECT_EQ(r.approvals, 2);
  EXPECT_EQ(r.ttl, milliseconds(90 * 60 * 1000));
  EXPECT_TRUE(r.reason_required);
  EXPECT_EQ(r.pos.line, 5u);
  EXPECT_EQ(r.pos.column, 1u);
  // Duplicates in a group collapse.
  EXPECT_EQ(p.groups().at("sre"), (std::vector<std::string>{"alice", "bob"}));

  const Rule& s = p.rules()[1];
  EXPECT_EQ(s.hosts, (std::vector<std::string>{"*"}));  // defaults
  EXPECT_EQ(s.run_as, (std::vector<std::string>{"root"}));
  EXPECT_EQ(s.ttl, milliseconds(15 * 60 * 1000));
  EXPECT_FALSE(s.reason_required);
  EXPECT_EQ(s.action, Action::allow);
  EXPECT_EQ(s.pos.line, 17u);
}

TEST(PolicyParse, EmptyPolicyIsValidAndDeniesEverything) {
  std::vector<Diagnostic> d;
  const Policy p = Policy::parse("", "p.toml", &d);
  ASSERT_TRUE(p.valid());
  EXPECT_EQ(p.decide({"web1", "alice", "root", "/bin/true", {"true"}}).action, Action::deny);
}

TEST(PolicyParse, DiagnosticFormat) {
  const Diagnostic d{"policy.toml", {12, 3}, "bad thing"};
  EXPECT_EQ(d.to_string(), "policy.toml:12:3: bad thing");
  const Diagnostic whole{"policy.toml", {}, "too big"};
  EXPECT_EQ(whole.to_string(), "policy.toml: too big");
}

TEST(PolicyParse, SyntaxErrorHasPosition) {
  const auto d = errors_of("[[rule]]\nname = \"x\"\nusers = [\"a\"\n");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_GE(d[0].pos.line, 3u);
  EXPECT_EQ(d[0].file, "p.toml");
}

TEST(PolicyParse, UnknownKeys) {
  EXPECT_DIAG("secret_patterns = []\n", 1, 1, "unknown top-level key 'secret_patterns'");
  EXPECT_DIAG(
      "[[rule]]\nname = \"x\"\nusers = [\"a\"]\ncommands = [[\"/bin/x\"]]\naction = \"allow\"\n  "
      "reviewer = [\"b\"]\n",
      6, 3, "unknown key 'reviewer'");
  EXPECT_DIAG("[groups]\nsre = [\"a\"]\n[groups.more]\nx = 1\n", 3, 1,
              "group 'more' must be an array of strings");
  EXPECT_DIAG("[rule]\nname = \"x\"\n", 1, 1, "write [[rule]], not [rule]");
}

TEST(PolicyParse, MissingRequiredKeysPointAtTheRule) {
  const auto d = errors_of("\n\n[[rule]]\nhosts = [\"*\"]\n");
  EXPECT_TRUE(has(d, 3, 1, "missing required key 'name'")) << dump(d);
  EXPECT_TRUE(has(d, 3, 1, "missing required key 'users'")) << dump(d);
  EXPECT_TRUE(has(d, 3, 1, "missing required key 'commands'")) << dump(d);
  EXPECT_TRUE(has(d, 3, 1, "missing required key 'action'")) << dump(d);
  EXPECT_DIAG("[[rule]]\nname = \"r\"\nusers = [\"a\"]\ncommands = [[\"/bin/x\"]]\naction = \"review\"\n", 1,
              1, "needs 'reviewers'");
}

TEST(PolicyParse, WrongTypes) {
  const std::string head = "[[rule]]\nname = \"r\"\n";
  EXPECT_DIAG("[[rule]]\nname = 3\n", 2, 8, "'name' must be a string, not an integer");
  EXPECT_DIAG(head + "users = \"alice\"\n", 3, 9, "'users' must be an array of strings, not a string");
  EXPECT_DIAG(head + "users = [\"a\", 7]\n", 3, 15, "must contain only strings, found an integer");
  EXPECT_DIAG(head + "hosts = [true]\n", 3, 10, "found a boolean");
  EXPECT_DIAG(head + "run_as = 5\n", 3, 10, "'run_as' must be a user name");
  EXPECT_DIAG(head + "commands = \"/bin/x\"\n", 3, 12, "'commands' must be an array of argv patterns");
  EXPECT_DIAG(head + "commands = [\"/bin/x\"]\n", 3, 13, "must be an array of strings, not a string");
  EXPECT_DIAG(head + "action = 1\n", 3, 10, "'action' must be one of");
  EXPECT_DIAG(head + "action = \"permit\"\n", 3, 10, "not 'permit'");
  EXPECT_DIAG(head + "action = \"review\"\napprovals = \"2\"\n", 4, 13, "'approvals' must be an integer");
  EXPECT_DIAG(head + "action = \"allow\"\nttl = 15\n", 4, 7, "'ttl' must be a duration string");
  EXPECT_DIAG(head + "action = \"allow\"\nreason_required = \"yes\"\n", 4, 19, "must be true or false");
  EXPECT_DIAG("groups = [\"a\"]\n", 1, 10, "'groups' must be a table");
  EXPECT_DIAG("[groups]\nsre = \"alice\"\n", 2, 7, "group 'sre' must be an array of strings");
  EXPECT_DIAG("rule = [1]\n", 1, 9, "rule #1 must be a table, not an integer");
}

constexpr std::string_view kRule = "[[rule]]\nname = \"r\"\nusers = [\"a\"]\ncommands = [[\"/bin/x\"]]\n";

TEST(PolicyParse, DuplicateRuleNames) {
  const std::string text =
      std::string(kRule) + "action = \"allow\"\n" + std::string(kRule) + "action = \"deny\"\n";
  EXPECT_DIAG(text, 7, 8, "duplicate rule name 'r' (first defined at line 1)");
}

TEST(PolicyParse, BadRuleNames) {
  EXPECT_DIAG("[[rule]]\nname = \"has space\"\n", 2, 8, "invalid rule name");
  EXPECT_DIAG("[[rule]]\nname = \"\"\n", 2, 8, "invalid rule name");
  // Shown escaped, so a hostile policy cannot repaint the admin's terminal.
  EXPECT_DIAG("[[rule]]\nname = \"x\\u001b[2J\"\n", 2, 8, "invalid rule name 'x\\x1b[2J'");
}

TEST(PolicyParse, GroupsAndNames) {
  const std::string rule = "[[rule]]\nname = \"r\"\ncommands = [[\"/bin/x\"]]\naction = \"allow\"\n";
  EXPECT_DIAG(rule + "users = [\"@nope\"]\n", 5, 10, "undefined group '@nope'");
  EXPECT_DIAG("[groups]\n\"bad name\" = [\"a\"]\n", 2, 1, "invalid group name 'bad name'");
  EXPECT_DIAG("[groups]\n\"@sre\" = [\"a\"]\n", 2, 1, "invalid group name '@sre'");
  EXPECT_DIAG("[groups]\nsre = [\"-bob\"]\n", 2, 8, "invalid user name '-bob'");
  EXPECT_DIAG("[groups]\nsre = [\".x\"]\n", 2, 8, "invalid user name");
  EXPECT_DIAG("[groups]\nsre = [\"a$b\"]\n", 2, 8, "invalid user name");
  EXPECT_DIAG("[groups]\nsre = [\"" + std::string(65, 'a') + "\"]\n", 2, 8, "invalid user name");
  EXPECT_DIAG("[groups]\nsre = [\"bob\\nroot\"]\n", 2, 8, "control characters");
  EXPECT_DIAG("[groups]\nsre = [\"a\"]\nops = [\"@sre\"]\n", 3, 8, "nested groups are not supported");
  EXPECT_DIAG(rule + "users = [\"ok\", \"not ok\"]\n", 5, 16, "invalid user name 'not ok'");
  EXPECT_DIAG(rule + "users = []\n", 5, 9, "'users' must not be empty");
  // A trailing '$' (machine accounts) is a valid name.
  std::vector<Diagnostic> d;
  EXPECT_TRUE(Policy::parse("[groups]\nm = [\"host1$\"]\n", "p.toml", &d).valid()) << dump(d);
}

TEST(PolicyParse, RunAs) {
  const std::string rule = std::string(kRule) + "action = \"allow\"\n";
  EXPECT_DIAG(rule + "run_as = \"@sre\"\n", 6, 10, "invalid user name '@sre'");
  EXPECT_DIAG(rule + "run_as = [\"root\", \"@sre\"]\n", 6, 19, "groups are not supported here");
  EXPECT_DIAG(rule + "run_as = []\n", 6, 10, "'run_as' must not be empty");
  std::vector<Diagnostic> d;
  const Policy p = Policy::parse(rule + "run_as = [\"postgres\", \"www-data\"]\n", "p.toml", &d);
  ASSERT_TRUE(p.valid()) << dump(d);
  EXPECT_EQ(p.rules()[0].run_as, (std::vector<std::string>{"postgres", "www-data"}));
}

TEST(PolicyParse, ActionSpecificKeys) {
  EXPECT_DIAG(std::string(kRule) + "action = \"deny\"\nreviewers = [\"b\"]\n", 6, 13,
              "'reviewers' has no effect on a deny rule");
  EXPECT_DIAG(std::string(kRule) + "action = \"deny\"\nrecord = \"required\"\n", 6, 10, "no effect on a deny");
  EXPECT_DIAG(std::string(kRule) + "action = \"deny\"\napprovals = 1\n", 6, 13, "'approvals' applies only");
  EXPECT_DIAG(std::string(kRule) + "action = \"deny\"\nttl = \"5m\"\n", 6, 7, "no effect on a deny rule");
  EXPECT_DIAG(std::string(kRule) + "action = \"deny\"\nreason_required = false\n", 6, 19,
              "no effect on a deny");
  EXPECT_DIAG(std::string(kRule) + "action = \"review\"\nreviewers = [\"*\"]\n", 6, 14, "cannot be '*'");
  EXPECT_DIAG(std::string(kRule) + "action = \"review\"\nreviewers = []\n", 6, 13, "must not be empty");
  EXPECT_DIAG(std::string(kRule) + "action = \"review\"\nreviewers = [\"@ghost\"]\n", 6, 14,
              "undefined group");
}

TEST(PolicyParse, Approvals) {
  const std::string groups = "[groups]\nsre = [\"alice\", \"bob\"]\n";
  const std::string rule = groups + std::string(kRule) + "action = \"review\"\n";  // rule body ends on line 7
  // alice is in @sre and named again: two distinct people, not three.
  EXPECT_DIAG(rule + "reviewers = [\"@sre\", \"alice\"]\napprovals = 3\n", 9, 13,
              "'approvals' = 3 but the reviewers name only 2 distinct people");
  EXPECT_DIAG(rule + "reviewers = [\"@sre\"]\napprovals = 0\n", 9, 13, "between 1 and 1000");
  EXPECT_DIAG(rule + "reviewers = [\"@sre\"]\napprovals = -1\n", 9, 13, "between 1 and 1000");
  EXPECT_DIAG(rule + "reviewers = [\"@sre\"]\napprovals = 99999999999\n", 9, 13, "between 1 and 1000");
  std::vector<Diagnostic> d;
  const Policy p = Policy::parse(rule + "reviewers = [\"@sre\", \"carol\"]\napprovals = 3\n", "p.toml", &d);
  ASSERT_TRUE(p.valid()) << dump(d);
  EXPECT_EQ(p.rules()[0].approvals, 3);
  EXPECT_EQ(p.reviewers_of(0), (std::vector<std::string>{"alice", "bob", "carol"}));
}

TEST(PolicyParse, Durations) {
  const std::string rule = std::string(kRule) + "action = \"allow\"\n";
  EXPECT_DIAG(rule + "ttl = \"15\"\n", 6, 7, "'ttl': bad duration");
  EXPECT_DIAG(rule + "ttl = \"soon\"\n", 6, 7, "'ttl': bad duration");
  EXPECT_DIAG(rule + "ttl = \"0s\"\n", 6, 7, "longer than zero");
  EXPECT_DIAG(rule + "ttl = \"400d\"\n", 6, 7, "too long");
}

TEST(PolicyParse, CommandPatterns) {
  const std::string head = "[[rule]]\nname = \"r\"\nusers = [\"a\"]\naction = \"allow\"\n";
  EXPECT_DIAG(head + "commands = []\n", 5, 12, "'commands' must not be empty");
  EXPECT_DIAG(head + "commands = [[]]\n", 5, 13, "empty command pattern");
  EXPECT_DIAG(head + "commands = [[\"systemctl\", \"status\"]]\n", 5, 14, "must start with an absolute path");
  EXPECT_DIAG(head + "commands = [[\"\"]]\n", 5, 14, "must start with an absolute path");
  EXPECT_DIAG(head + "commands = [[\"**\"]]\n", 5, 14, "must start with an absolute path");
  EXPECT_DIAG(head + "commands = [[\"/bin/ls\", \"**\", \"-l\"]]\n", 5, 25,
              "'**' is allowed only as the last");
  EXPECT_DIAG(head + "commands = [[\"/bin/ls\", \"x\\u0000y\"]]\n", 5, 25, "control characters");
  EXPECT_DIAG(head + "commands = [[\"/bin/ls\", \"" + std::string(2000, '*') + "\"]]\n", 5, 25,
              "longer than");
  EXPECT_DIAG(head + "commands = [[\"/bin/ls\"]]\nhosts = [\"\"]\n", 6, 10, "host patterns must be");
  std::vector<Diagnostic> d;
  EXPECT_TRUE(Policy::parse(head + "commands = [[\"/usr/*/python3*\", \"**\"]]\n", "p.toml", &d).valid())
      << dump(d);
}

TEST(PolicyParse, CollectsManyErrorsInFileOrder) {
  const auto d = errors_of(
      "bogus = 1\n"                  // 1
      "[[rule]]\n"                   // 2
      "name = \"a\"\n"               // 3
      "users = [\"@ghost\"]\n"       // 4
      "commands = [[\"rel\"]]\n"     // 5
      "action = \"allow\"\n"         // 6
      "ttl = \"forever\"\n"          // 7
      "[[rule]]\n"                   // 8
      "name = \"a\"\n"               // 9
      "users = [\"*\"]\n"            // 10
      "commands = [[\"/bin/x\"]]\n"  // 11
      "action = \"maybe\"\n");       // 12
  EXPECT_EQ(d.size(), 6u) << dump(d);
  for (size_t i = 1; i < d.size(); ++i) EXPECT_LE(d[i - 1].pos.line, d[i].pos.line) << dump(d);
  EXPECT_TRUE(has(d, 1, 1, "unknown top-level key")) << dump(d);
  EXPECT_TRUE(has(d, 4, 10, "undefined group")) << dump(d);
  EXPECT_TRUE(has(d, 5, 14, "absolute path")) << dump(d);
  EXPECT_TRUE(has(d, 7, 7, "bad duration")) << dump(d);
  EXPECT_TRUE(has(d, 9, 8, "duplicate rule name")) << dump(d);
  EXPECT_TRUE(has(d, 12, 10, "'action' must be one of")) << dump(d);
}

TEST(PolicyParse, DiagnosticsWithoutOutputPointer) {
  const Policy p = Policy::parse("nonsense = 1", "p.toml", nullptr);
  EXPECT_FALSE(p.valid());
  EXPECT_EQ(p.decide({"h", "u", "root", "/bin/x", {"x"}}).action, Action::deny);
}

// Hostile input: none of these may crash, hang or be accepted.

TEST(PolicyHostile, HugeFileIsRefusedBeforeParsing) {
  const std::string text = "# " + std::string(5 * 1024 * 1024, 'x') + "\n";
  const auto d = errors_of(text);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].message.find("larger than"), std::string::npos);
}

TEST(PolicyHostile, DeepNestingIsAnErrorNotACrash) {
  errors_of("x = " + std::string(100000, '[') + std::string(100000, ']') + "\n");
  std::string inline_tables = "x = ";
  for (int i = 0; i < 5000; ++i) inline_tables += "{a=";
  errors_of(inline_tables + "1" + std::string(5000, '}') + "\n");
  // Dotted keys nest tables with no limit in toml++; the guard stops them.
  std::string dotted;
  for (int i = 0; i < 200000; ++i) dotted += "a.";
  const auto d = errors_of(dotted + "b = 1\n");
  EXPECT_NE(d[0].message.find("dotted keys"), std::string::npos) << dump(d);
  std::string header = "[";
  for (int i = 0; i < 200000; ++i) header += "a.";
  EXPECT_DIAG(header + "b]\nx = 1\n", 1, 1, "dotted keys");
}

TEST(PolicyHostile, DeepestInputTheGuardLetsThroughIsSafe) {
  // 256 dotted-key parts plus toml++'s own limit of nested values.
  std::string text = "[";
  for (int i = 0; i < 128; ++i) text += "a.";
  text += "b]\n";
  for (int i = 0; i < 128; ++i) text += "c.";
  text += "d = ";
  for (int i = 0; i < 250; ++i) text += "{e=";
  text += "1" + std::string(250, '}') + "\n";
  EXPECT_DIAG(text, 1, 2, "unknown top-level key 'a'");
}

TEST(PolicyHostile, ManyErrorsAreCapped) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "bogus" + std::to_string(i) + " = 1\n";
  const auto d = errors_of(text);
  EXPECT_EQ(d.size(), 201u);
  EXPECT_NE(d.back().message.find("800 more errors"), std::string::npos) << d.back().message;
}

TEST(PolicyHostile, BinaryAndInvalidUtf8) {
  errors_of(std::string("\0\0\0\x01\xff", 5));
  errors_of("[[rule]]\nname = \"\xc3\x28\"\n");
  EXPECT_DIAG("[groups]\nsre = [\"bob\\u202e\"]\n", 2, 8,
              "control characters or invalid UTF-8: 'bob\\u202e'");
}

TEST(PolicyRecording, RecordModeAndWatchersOfAllowRules) {
  std::vector<Diagnostic> d;
  const Policy p = Policy::parse(std::string(kRule) +
                                     "action = \"allow\"\nreviewers = [\"bob\"]\nrecord = \"best-effort\"\n" +
                                     "[[rule]]\nname = \"s\"\nusers = [\"a\"]\ncommands = [[\"/bin/y\"]]\n" + "action = \"review\"\nreviewers = [\"bob\"]\n",
                                 "p.toml", &d);
  ASSERT_TRUE(p.valid()) << dump(d);
  EXPECT_EQ(p.rules()[0].record, Record::best_effort);
  EXPECT_EQ(p.reviewers_of(0), (std::vector<std::string>{"bob"}));  // may watch its sessions
  EXPECT_EQ(p.rules()[1].record, Record::required);                 // the default
  EXPECT_STREQ(record_name(Record::best_effort), "best-effort");
  EXPECT_DIAG(std::string(kRule) + "action = \"allow\"\nrecord = \"maybe\"\n", 6, 10,
              "'record' must be \"required\" or \"best-effort\", not 'maybe'");
  EXPECT_DIAG(std::string(kRule) + "action = \"allow\"\nrecord = true\n", 6, 10, "not a boolean");
}

TEST(PolicyRecording, MaskPatternsAreCheckedAsPcre2) {
  std::vector<Diagnostic> d;
  const Policy p = Policy::parse("[recording]\nmask = ['token=\\S+', '(?i)secret:\\s*\\w+']\n" +
                                     std::string(kRule) + "action = \"allow\"\n",
                                 "p.toml", &d);
  ASSERT_TRUE(p.valid()) << dump(d);
  EXPECT_EQ(p.mask(), (std::vector<std::string>{"token=\\S+", "(?i)secret:\\s*\\w+"}));
  // A bad pattern is reported at its own position, with PCRE2's reason.
  EXPECT_DIAG("[recording]\nmask = ['ok', 'a(b']\n", 2, 15, "bad regular expression 'a(b': missing closing parenthesis");
  EXPECT_DIAG("[recording]\nmask = ['']\n", 2, 9, "patterns must be 1-");
  EXPECT_DIAG("[recording]\nmask = 'x'\n", 2, 8, "must be an array of strings");
  EXPECT_DIAG("[recording]\nmasks = ['x']\n", 2, 1, "[recording]: unknown key 'masks'");
  EXPECT_DIAG("recording = 1\n", 1, 13, "'recording' must be a table");
  const std::string file = "[recording]\nmask = ['a(b']\n";
  const auto diags = errors_of(file);
  ASSERT_FALSE(diags.empty());
  EXPECT_EQ(diags[0].to_string().rfind("p.toml:2:9: ", 0), 0u) << diags[0].to_string();
}

}  // namespace
}  // namespace hoop::policy
