// Matching and decisions. Pure: no I/O, no clock.
//
// MUST: a matching deny wins; otherwise the first matching rule in file order
// decides; no match, an invalid policy or a malformed query is a deny.
// MUST: glob matching stays polynomial (no backtracking blow-up): argv comes
// from the requester, and a slow match would stall the server's one thread.

#include <algorithm>
#include <set>

#include "policy/policy.h"

namespace hoop::policy {
namespace {

constexpr size_t kNone = static_cast<size_t>(-1);

// Matches the class starting at pattern[p] == '[' against c. Returns the
// class length in `len`, or false in `valid` when there is no closing ']'
// (then '[' is an ordinary character, as in fnmatch).
bool class_match(std::string_view pat, size_t p, unsigned char c, size_t& len, bool& valid) {
  size_t i = p + 1;
  bool negate = false;
  if (i < pat.size() && (pat[i] == '!' || pat[i] == '^')) {
    negate = true;
    ++i;
  }
  bool hit = false;
  bool first = true;
  // Reads one (possibly escaped) class character.
  auto read = [&](unsigned char& out) {
    if (pat[i] == '\\' && i + 1 < pat.size()) ++i;
    out = static_cast<unsigned char>(pat[i]);
    ++i;
  };
  while (i < pat.size()) {
    if (pat[i] == ']' && !first) {
      len = i + 1 - p;
      valid = true;
      return hit != negate;
    }
    first = false;
    unsigned char lo = 0;
    read(lo);
    unsigned char hi = lo;
    if (i + 1 < pat.size() && pat[i] == '-' && pat[i + 1] != ']') {
      ++i;
      read(hi);
    }
    if (lo <= c && c <= hi) hit = true;
  }
  valid = false;
  len = 1;
  return false;
}

// Matches the single-character token at pattern[p] against c; sets `len`
// to the token's length in the pattern.
bool token_match(std::string_view pat, size_t p, unsigned char c, size_t& len) {
  const char t = pat[p];
  if (t == '?') {
    len = 1;
    return true;
  }
  if (t == '\\' && p + 1 < pat.size()) {
    len = 2;
    return static_cast<unsigned char>(pat[p + 1]) == c;
  }
  if (t == '[') {
    bool valid = false;
    const bool hit = class_match(pat, p, c, len, valid);
    if (valid) return hit;
  }
  len = 1;
  return static_cast<unsigned char>(t) == c;
}

// The path the host resolved must be canonical: "/usr/bin/../../bin/sh"
// would otherwise slip past a rule for "/usr/bin/*".
bool is_canonical_path(std::string_view p) {
  if (p.empty() || p[0] != '/') return false;
  if (p == "/") return true;
  if (p.back() == '/') return false;
  size_t start = 1;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    const std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

const char* action_name(Action a) {
  switch (a) {
    case Action::deny:
      return "deny";
    case Action::review:
      return "review";
    case Action::allow:
      return "allow";
  }
  return "invalid";
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Two pointers with one saved star: each failure moves the star's text
  // position forward by one, so the work is at most |pattern| * |text|.
  size_t p = 0;
  size_t t = 0;
  size_t star_p = kNone;
  size_t star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      star_p = p;
      star_t = t;
      continue;
    }
    size_t len = 0;
    if (p < pattern.size() && token_match(pattern, p, static_cast<unsigned char>(text[t]), len)) {
      p += len;
      ++t;
      continue;
    }
    if (star_p == kNone) return false;
    p = star_p;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool argv_match(const std::vector<std::string>& pattern, const std::vector<std::string>& argv) {
  if (pattern.empty()) return false;  // parse() refuses these; fail closed anyway
  size_t fixed = pattern.size();
  const bool rest = pattern.size() > 1 && pattern.back() == "**";
  if (rest) {
    --fixed;
    if (argv.size() < fixed) return false;
  } else if (argv.size() != fixed) {
    return false;
  }
  for (size_t i = 0; i < fixed; ++i) {
    if (!glob_match(pattern[i], argv[i])) return false;
  }
  return true;
}

bool Policy::member_of(const std::vector<std::string>& members, std::string_view user) const {
  for (const auto& m : members) {
    if (m == "*" || m == user) return true;
    if (!m.empty() && m[0] == '@') {
      auto g = groups_.find(m.substr(1));
      if (g != groups_.end() && std::find(g->second.begin(), g->second.end(), user) != g->second.end())
        return true;
    }
  }
  return false;
}

std::vector<std::string> Policy::reviewers_of(int rule_index) const {
  if (rule_index < 0 || static_cast<size_t>(rule_index) >= rules_.size()) return {};
  std::set<std::string> names;
  for (const auto& m : rules_[static_cast<size_t>(rule_index)].reviewers) {
    if (!m.empty() && m[0] == '@') {
      auto g = groups_.find(m.substr(1));
      if (g != groups_.end()) names.insert(g->second.begin(), g->second.end());
    } else if (m != "*") {
      names.insert(m);
    }
  }
  return {names.begin(), names.end()};
}

std::string Policy::rule_label(int rule_index) const {
  const Rule& r = rules_[static_cast<size_t>(rule_index)];
  return "rule '" + r.name + "' (" + file_ + ":" + std::to_string(r.pos.line) + ":" +
         std::to_string(r.pos.column) + ")";
}

Decision Policy::decide(const Query& q) const {
  Decision d;  // deny, no rule
  if (!valid_) {
    d.why = "policy is not valid (default deny)";
    return d;
  }
  if (q.user.empty() || q.host.empty() || q.run_as.empty()) {
    d.why = "request lacks a user, host or run-as user (default deny)";
    return d;
  }
  if (!is_canonical_path(q.path)) {
    d.why = "executable path is not a canonical absolute path (default deny)";
    return d;
  }
  std::vector<std::string> argv = q.argv;
  if (argv.empty()) argv.push_back(q.path);
  argv[0] = q.path;  // argv[0] is chosen by the caller; never match on it

  int first = -1;
  int deny = -1;
  for (size_t i = 0; i < rules_.size() && deny < 0; ++i) {
    const Rule& r = rules_[i];
    if (!member_of(r.users, q.user)) continue;
    if (std::none_of(r.hosts.begin(), r.hosts.end(),
                     [&](const std::string& h) { return glob_match(h, q.host); }))
      continue;
    if (std::none_of(r.run_as.begin(), r.run_as.end(),
                     [&](const std::string& u) { return u == "*" || u == q.run_as; }))
      continue;
    if (std::none_of(r.commands.begin(), r.commands.end(),
                     [&](const std::vector<std::string>& c) { return argv_match(c, argv); }))
      continue;
    if (first < 0) first = static_cast<int>(i);
    // Only a known non-deny value may allow; anything else is a deny.
    if (r.action != Action::allow && r.action != Action::review) deny = static_cast<int>(i);
  }
  if (first < 0) {
    d.why = "no rule matches (default deny)";
    return d;
  }
  const int pick = deny >= 0 ? deny : first;
  const Rule& r = rules_[static_cast<size_t>(pick)];
  d.rule_index = pick;
  d.rule = r.name;
  d.why = rule_label(pick) + ": ";
  if (deny >= 0) {
    d.action = Action::deny;
    d.why += "deny";
    if (first != deny) d.why += " (a matching deny wins over " + rule_label(first) + ")";
  } else if (r.action == Action::review) {
    d.action = Action::review;
    d.why += "review by " + std::to_string(r.approvals) + " of [" + join_names(reviewers_of(pick)) + "]";
    if (r.reason_required) d.why += ", reason required";
  } else {
    d.action = Action::allow;
    d.why += "allow";
  }
  return d;
}

}  // namespace hoop::policy
