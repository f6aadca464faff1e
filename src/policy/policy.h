#pragma once
// The server-side policy: who may run what where, and who must approve it.
// Pure: parsing takes text, evaluation takes a Query; no I/O, no clock.
//
// MUST: a matching deny rule wins over everything; otherwise the first
// matching rule decides; nothing matching is a deny.
// MUST NOT: join argv into one string for matching (the sudoers '*' trap):
// patterns match element by element.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace hoop::policy {

/// Hardened values: no single flipped bit turns one action into another,
/// and zero-initialised memory is not a valid action.
enum class Action : uint32_t {
  deny = 0x5a3c96e1,
  review = 0x2d91b74a,
  allow = 0xc3e4581f,
};
const char* action_name(Action a);

struct SourcePos {
  uint32_t line = 0;
  uint32_t column = 0;
};

/// What happens when no recording channel exists (policy key `record`).
enum class Record { required, best_effort };
const char* record_name(Record r);  // "required" | "best-effort"

struct Rule {
  std::string name;
  std::vector<std::string> users;      // names, "@group" or "*"
  std::vector<std::string> hosts;      // globs ('*', '?', '[...]')
  std::vector<std::string> run_as;     // names or "*"; default {"root"}
  std::vector<std::vector<std::string>> commands;  // argv patterns
  Action action = Action::deny;
  // Names or "@group". For review: who may approve. For review and allow:
  // who may read and watch the rule's session transcripts.
  std::vector<std::string> reviewers;
  int approvals = 1;                   // distinct people needed (review only)
  std::chrono::milliseconds ttl{15 * 60 * 1000};  // grant lifetime
  bool reason_required = false;
  Record record = Record::required;
  SourcePos pos;
};

/// What is asked. Element 0 of a command pattern is matched against `path`
/// (the resolved absolute executable), the rest against argv[1..]; argv[0]
/// itself is never trusted for matching. Patterns whose first element is not
/// an absolute path are rejected by parse().
struct Query {
  std::string host;
  std::string user;
  std::string run_as;
  std::string path;
  std::vector<std::string> argv;
};

struct Decision {
  Action action = Action::deny;
  int rule_index = -1;  // -1: no rule matched (default deny)
  std::string rule;     // rule name, "" when none matched
  std::string why;      // one line for humans: "rule 'restart-web' (policy.toml:12:1) requires 2 approvals"
};

/// One problem found while parsing: "file:line:col: message" via to_string.
struct Diagnostic {
  std::string file;
  SourcePos pos;
  std::string message;
  std::string to_string() const;
};

class Policy {
 public:
  /// Parses and validates. On failure returns every problem found (at least
  /// one), each with its position. `file` is used only in diagnostics.
  static Policy parse(std::string_view text, std::string_view file,
                      std::vector<Diagnostic>* diagnostics);

  bool valid() const { return valid_; }
  const std::vector<Rule>& rules() const { return rules_; }
  const std::map<std::string, std::vector<std::string>>& groups() const { return groups_; }
  /// [recording] mask: extra secret patterns (PCRE2 syntax, each checked to
  /// compile) that hosts replace in transcripts before they leave.
  const std::vector<std::string>& mask() const { return mask_; }

  Decision decide(const Query& q) const;

  /// Names (expanded from @groups, sorted, unique) who may review under rule i.
  std::vector<std::string> reviewers_of(int rule_index) const;
  /// True when `user` is a member of `@group` or named in `members`.
  bool member_of(const std::vector<std::string>& members, std::string_view user) const;

 private:
  std::string rule_label(int rule_index) const;

  bool valid_ = false;
  std::string file_;  // for positions in Decision::why
  std::map<std::string, std::vector<std::string>> groups_;
  std::vector<Rule> rules_;
  std::vector<std::string> mask_;
};

/// fnmatch-like glob for one element: '*' any run (not crossing nothing
/// special: elements are whole strings), '?' one char, '[a-z]' classes,
/// '\\' escapes. Pure and linear-time.
bool glob_match(std::string_view pattern, std::string_view text);

/// Matches an argv pattern against argv, element by element; "**" as the last
/// element matches any remaining elements (including none). The caller
/// passes argv with element 0 already replaced by the resolved path.
bool argv_match(const std::vector<std::string>& pattern, const std::vector<std::string>& argv);

}  // namespace hoop::policy
