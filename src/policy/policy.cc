// Policy parsing and validation. Every problem becomes a Diagnostic with its
// position, and parsing goes on so that `hoopd policy check` shows them all
// at once. toml++ exceptions stop here.
//
// MUST: refuse anything ambiguous (unknown keys, wrong types, keys that have
// no effect for the rule's action): a typo in a security policy must never
// be silently ignored.

#include "policy/policy.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <toml++/toml.h>

#include <algorithm>
#include <optional>
#include <set>
#include <span>
#include <utility>

#include "common/duration.h"
#include "common/escape.h"
#include "policy/toml_guard.h"

namespace hoop::policy {
namespace {

constexpr size_t kMaxPolicyBytes = 4 * 1024 * 1024;
// Matching costs up to pattern x argument length; long patterns buy nothing.
constexpr size_t kMaxPatternBytes = 1024;
constexpr size_t kMaxDiagnostics = 200;

constexpr std::string_view kTopKeys[] = {"groups", "recording", "rule"};
constexpr std::string_view kRuleKeys[] = {"name",      "users",     "hosts", "run_as",          "commands", "action",
                                          "reviewers", "approvals", "ttl",   "reason_required", "record"};
constexpr std::string_view kRecordingKeys[] = {"mask"};
constexpr size_t kMaxMaskPatterns = 256;

// Compiles `pattern` as PCRE2 (UTF mode, as hosts will) and returns the
// compiler's message and offset when it does not compile.
std::optional<std::string> regex_error(const std::string& pattern) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF,
                                 &code, &offset, nullptr);
  if (re != nullptr) {
    pcre2_code_free(re);
    return std::nullopt;
  }
  PCRE2_UCHAR msg[256];
  if (pcre2_get_error_message(code, msg, sizeof msg) < 0) return "invalid regular expression";
  return std::string(reinterpret_cast<const char*>(msg)) + " at offset " + std::to_string(offset);
}

// Same rules as hoop::api::is_valid_name (hoop_policy must not link hoop_api):
// 1-64 of [A-Za-z0-9._-], an optional trailing '$', no leading '-' or '.'.
bool is_valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] == '-' || s[0] == '.') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-' || (c == '$' && i + 1 == s.size() && i > 0);
    if (!ok) return false;
  }
  return true;
}

// Rule names appear in requests, audit rows and terminals: keep them plain.
bool is_valid_rule_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string quoted(std::string_view s) {
  return "'" + escape_for_terminal(s) + "'";
}

std::string join(std::span<const std::string_view> words) {
  std::string out;
  for (auto w : words) out += (out.empty() ? "" : ", ") + std::string(w);
  return out;
}

bool contains(std::span<const std::string_view> words, std::string_view w) {
  return std::find(words.begin(), words.end(), w) != words.end();
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "nothing";
  }
}

SourcePos pos_of(const toml::source_region& r) {
  return SourcePos{r.begin.line, r.begin.column};
}

class Parser {
 public:
  explicit Parser(std::string_view file) : file_(file) {}

  void error(SourcePos at, std::string msg) { found_.push_back({file_, at, std::move(msg)}); }
  void error(const toml::source_region& at, std::string msg) { error(pos_of(at), std::move(msg)); }

  void parse(const toml::table& root) {
    for (const auto& [key, node] : root) {
      if (!contains(kTopKeys, key.str()))
        error(key.source(),
              "unknown top-level key " + quoted(key.str()) + " (allowed: " + join(kTopKeys) + ")");
    }
    // Groups first: rules refer to them wherever they appear in the file.
    if (const auto* g = root.get("groups")) parse_groups(*g);
    if (const auto* rec = root.get("recording")) parse_recording(*rec);
    if (const auto* r = root.get("rule")) {
      const auto* arr = r->as_array();
      if (!arr) {
        error(r->source(),
              std::string("'rule' must be an array of tables: write [[rule]], not [rule] (got ") +
                  type_name(*r) + ")");
        return;
      }
      for (const auto& item : *arr) parse_rule(item);
    }
  }

  std::map<std::string, std::vector<std::string>> groups_;
  std::vector<Rule> rules_;
  std::vector<std::string> mask_;
  std::vector<Diagnostic> found_;

 private:
  void parse_recording(const toml::node& n) {
    const auto* t = n.as_table();
    if (!t) {
      error(n.source(), std::string("'recording' must be a table ([recording]), not ") + type_name(n));
      return;
    }
    for (const auto& [key, value] : *t) {
      if (!contains(kRecordingKeys, key.str()))
        error(key.source(), "[recording]: unknown key " + quoted(key.str()) + " (allowed: " + join(kRecordingKeys) + ")");
    }
    const auto* m = t->get("mask");
    if (!m) return;
    std::vector<std::string> list;
    if (!strings(*m, "[recording] 'mask'", list)) return;
    if (list.size() > kMaxMaskPatterns)
      error(m->source(), "[recording] 'mask' has more than " + std::to_string(kMaxMaskPatterns) + " patterns");
    const auto& arr = *m->as_array();
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].empty() || list[i].size() > kMaxPatternBytes) {
        error(arr[i].source(), "[recording] 'mask' patterns must be 1-" + std::to_string(kMaxPatternBytes) + " bytes");
      } else if (auto why = regex_error(list[i])) {
        error(arr[i].source(), "[recording] 'mask': bad regular expression " + quoted(list[i]) + ": " + *why);
      } else {
        mask_.push_back(list[i]);
      }
    }
  }

  // Reads an array of clean strings; reports and returns false otherwise.
  bool strings(const toml::node& n, const std::string& what, std::vector<std::string>& out) {
    const auto* arr = n.as_array();
    if (!arr) {
      error(n.source(), what + " must be an array of strings, not " + type_name(n));
      return false;
    }
    bool ok = true;
    for (const auto& e : *arr) {
      const auto* s = e.as_string();
      if (!s) {
        error(e.source(), what + " must contain only strings, found " + type_name(e));
        ok = false;
      } else if (!is_clean_text(s->get())) {
        error(e.source(), what + " contains control characters or invalid UTF-8: " + quoted(s->get()));
        ok = false;
      } else {
        out.push_back(s->get());
      }
    }
    return ok;
  }

  void parse_groups(const toml::node& n) {
    const auto* t = n.as_table();
    if (!t) {
      error(n.source(), std::string("'groups' must be a table ([groups]), not ") + type_name(n));
      return;
    }
    for (const auto& [key, value] : *t) {
      const std::string name(key.str());
      if (!is_valid_name(name)) {
        error(key.source(), "invalid group name " + quoted(name) +
                                ": use 1-64 of A-Z a-z 0-9 . _ - (not starting with '-' or '.')");
        continue;
      }
      std::vector<std::string> raw;
      std::vector<std::string>& members = groups_[name];
      if (!strings(value, "group " + quoted(name), raw)) continue;
      const auto* arr = value.as_array();
      for (size_t i = 0; i < raw.size(); ++i) {
        const auto at = (*arr)[i].source();
        if (!raw[i].empty() && raw[i][0] == '@') {
          error(at, "group " + quoted(name) + " includes " + quoted(raw[i]) +
                        ": nested groups are not supported; list its members directly");
        } else if (!is_valid_name(raw[i])) {
          error(at, "group " + quoted(name) + ": invalid user name " + quoted(raw[i]));
        } else if (std::find(members.begin(), members.end(), raw[i]) == members.end()) {
          members.push_back(raw[i]);
        }
      }
    }
  }

  // Checks a list of people: names, "@group" (defined) and, when allowed, "*".
  void check_people(const toml::node& n, const std::vector<std::string>& list, const std::string& what,
                    bool allow_star) {
    const auto* arr = n.as_array();
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string& m = list[i];
      const auto at = (*arr)[i].source();
      if (m == "*") {
        if (!allow_star) error(at, what + " cannot be '*' (anyone could approve): name people or @groups");
      } else if (!m.empty() && m[0] == '@') {
        if (!groups_.count(m.substr(1)))
          error(at, what + ": undefined group " + quoted(m) + " (define it in [groups])");
      } else if (!is_valid_name(m)) {
        error(at, what + ": invalid user name " + quoted(m));
      }
    }
  }

  void parse_commands(const toml::node& n, const std::string& ctx, Rule& rule) {
    const auto* arr = n.as_array();
    if (!arr) {
      error(n.source(), ctx +
                            "'commands' must be an array of argv patterns, e.g. [[\"/usr/bin/systemctl\", "
                            "\"status\", \"**\"]]");
      return;
    }
    if (arr->empty()) error(n.source(), ctx + "'commands' must not be empty");
    for (const auto& pat : *arr) {
      std::vector<std::string> argv;
      if (!strings(pat, ctx + "each command pattern", argv)) continue;
      if (argv.empty()) {
        error(pat.source(),
              ctx + "empty command pattern: element 0 must be the absolute path of the program");
        continue;
      }
      const auto& elems = *pat.as_array();
      bool ok = true;
      if (argv[0].empty() || argv[0][0] != '/') {
        error(elems[0].source(),
              ctx + "command " + quoted(argv[0]) +
                  " must start with an absolute path (globs allowed), e.g. \"/usr/bin/systemctl\"");
        ok = false;
      }
      for (size_t i = 0; i < argv.size(); ++i) {
        if (argv[i] == "**" && i + 1 != argv.size() && i != 0) {
          error(elems[i].source(), ctx + "'**' is allowed only as the last element of a command pattern");
          ok = false;
        }
        if (argv[i].size() > kMaxPatternBytes) {
          error(elems[i].source(),
                ctx + "pattern element longer than " + std::to_string(kMaxPatternBytes) + " bytes");
          ok = false;
        }
      }
      if (ok) rule.commands.push_back(std::move(argv));
    }
  }

  void parse_rule(const toml::node& n) {
    const auto* t = n.as_table();
    const std::string index = "rule #" + std::to_string(rules_.size() + skipped_ + 1);
    if (!t) {
      ++skipped_;
      error(n.source(), index + " must be a table, not " + type_name(n));
      return;
    }
    Rule rule;
    rule.pos = pos_of(t->source());
    rule.hosts = {"*"};
    rule.run_as = {"root"};

    std::string ctx = index + ": ";
    if (const auto* name = t->get("name")) {
      if (const auto* s = name->as_string()) {
        if (!is_valid_rule_name(s->get())) {
          error(name->source(),
                ctx + "invalid rule name " + quoted(s->get()) + ": use 1-64 of A-Z a-z 0-9 . _ -");
        } else {
          rule.name = s->get();
          ctx = "rule " + quoted(rule.name) + ": ";
          auto [it, fresh] = names_.emplace(rule.name, rule.pos);
          if (!fresh)
            error(name->source(), "duplicate rule name " + quoted(rule.name) + " (first defined at line " +
                                      std::to_string(it->second.line) + ")");
        }
      } else {
        error(name->source(), ctx + "'name' must be a string, not " + type_name(*name));
      }
    } else {
      error(rule.pos, ctx + "missing required key 'name'");
    }

    for (const auto& [key, value] : *t) {
      if (!contains(kRuleKeys, key.str()))
        error(key.source(), ctx + "unknown key " + quoted(key.str()) + " (allowed: " + join(kRuleKeys) + ")");
    }

    if (const auto* u = t->get("users")) {
      if (strings(*u, ctx + "'users'", rule.users)) {
        if (rule.users.empty())
          error(u->source(), ctx + "'users' must not be empty (use [\"*\"] for everyone)");
        check_people(*u, rule.users, ctx + "'users'", /*allow_star=*/true);
      }
    } else {
      error(rule.pos, ctx + "missing required key 'users'");
    }

    if (const auto* h = t->get("hosts")) {
      rule.hosts.clear();
      if (strings(*h, ctx + "'hosts'", rule.hosts)) {
        if (rule.hosts.empty())
          error(h->source(), ctx + "'hosts' must not be empty (leave it out for every host)");
        for (size_t i = 0; i < rule.hosts.size(); ++i) {
          if (rule.hosts[i].empty() || rule.hosts[i].size() > kMaxPatternBytes)
            error((*h->as_array())[i].source(),
                  ctx + "host patterns must be 1-" + std::to_string(kMaxPatternBytes) + " bytes");
        }
      }
    }

    if (const auto* r = t->get("run_as")) {
      rule.run_as.clear();
      if (const auto* s = r->as_string()) {
        rule.run_as.push_back(s->get());
        if (s->get() != "*" && !is_valid_name(s->get()))
          error(r->source(), ctx + "'run_as': invalid user name " + quoted(s->get()));
      } else if (r->is_array()) {
        if (strings(*r, ctx + "'run_as'", rule.run_as)) {
          if (rule.run_as.empty()) error(r->source(), ctx + "'run_as' must not be empty");
          const auto& arr = *r->as_array();
          for (size_t i = 0; i < rule.run_as.size(); ++i) {
            if (rule.run_as[i] != "*" && !is_valid_name(rule.run_as[i]))
              error(arr[i].source(), ctx + "'run_as': invalid user name " + quoted(rule.run_as[i]) +
                                         " (groups are not supported here)");
          }
        }
      } else {
        error(r->source(),
              ctx + "'run_as' must be a user name, \"*\" or an array of names, not " + type_name(*r));
      }
    }

    if (const auto* c = t->get("commands")) {
      parse_commands(*c, ctx, rule);
    } else {
      error(rule.pos, ctx + "missing required key 'commands'");
    }

    bool action_ok = false;
    if (const auto* a = t->get("action")) {
      const auto* s = a->as_string();
      const std::string v = s ? s->get() : "";
      if (v == "allow")
        rule.action = Action::allow;
      else if (v == "review")
        rule.action = Action::review;
      else if (v == "deny")
        rule.action = Action::deny;
      action_ok = v == "allow" || v == "review" || v == "deny";
      if (!action_ok)
        error(a->source(), ctx + "'action' must be one of \"allow\", \"review\", \"deny\"" +
                               (s ? ", not " + quoted(v) : std::string(", not ") + type_name(*a)));
    } else {
      error(rule.pos, ctx + "missing required key 'action' (allow, review or deny)");
    }
    parse_action_keys(*t, ctx, action_ok, rule);
    rules_.push_back(std::move(rule));
  }

  // Keys whose meaning depends on the action.
  void parse_action_keys(const toml::table& t, const std::string& ctx, bool action_ok, Rule& rule) {
    const bool review = action_ok && rule.action == Action::review;
    const bool deny = action_ok && rule.action == Action::deny;
    const char* act = action_ok ? action_name(rule.action) : "";

    // On an allow rule, 'reviewers' names who may watch its sessions.
    const auto* rv = t.get("reviewers");
    if (rv && deny) {
      error(rv->source(), ctx + "'reviewers' has no effect on a deny rule; remove it");
    } else if (rv) {
      if (strings(*rv, ctx + "'reviewers'", rule.reviewers)) {
        if (rule.reviewers.empty()) error(rv->source(), ctx + "'reviewers' must not be empty");
        check_people(*rv, rule.reviewers, ctx + "'reviewers'", /*allow_star=*/false);
      }
    } else if (review) {
      error(t.source(), ctx + "action = \"review\" needs 'reviewers' (names or @groups)");
    }

    if (const auto* ap = t.get("approvals")) {
      if (action_ok && !review) {
        error(ap->source(), ctx + "'approvals' applies only to action = \"review\", not \"" + act + "\"");
      } else if (const auto* i = ap->as_integer()) {
        const int64_t v = i->get();
        if (v < 1 || v > 1000) {
          error(ap->source(), ctx + "'approvals' must be between 1 and 1000, not " + std::to_string(v));
        } else {
          rule.approvals = static_cast<int>(v);
          const size_t people = distinct_people(rule.reviewers);
          if (!rule.reviewers.empty() && static_cast<size_t>(v) > people)
            error(ap->source(), ctx + "'approvals' = " + std::to_string(v) + " but the reviewers name only " +
                                    std::to_string(people) + " distinct people");
        }
      } else {
        error(ap->source(), ctx + "'approvals' must be an integer, not " + type_name(*ap));
      }
    }

    if (const auto* ttl = t.get("ttl")) {
      if (deny) {
        error(ttl->source(), ctx + "'ttl' has no effect on a deny rule; remove it");
      } else if (const auto* s = ttl->as_string()) {
        auto d = parse_duration(s->get());
        if (!d)
          error(ttl->source(), ctx + "'ttl': " + d.error().message);
        else if (d->count() <= 0)
          error(ttl->source(), ctx + "'ttl' must be longer than zero");
        else
          rule.ttl = *d;
      } else {
        error(ttl->source(), ctx + "'ttl' must be a duration string such as \"15m\", not " + type_name(*ttl));
      }
    }

    if (const auto* rec = t.get("record")) {
      const auto* s = rec->as_string();
      if (deny)
        error(rec->source(), ctx + "'record' has no effect on a deny rule; remove it");
      else if (s && s->get() == "required")
        rule.record = Record::required;
      else if (s && s->get() == "best-effort")
        rule.record = Record::best_effort;
      else
        error(rec->source(), ctx + "'record' must be \"required\" or \"best-effort\"" +
                                 (s ? ", not " + quoted(s->get()) : std::string(", not ") + type_name(*rec)));
    }

    if (const auto* rr = t.get("reason_required")) {
      if (deny)
        error(rr->source(), ctx + "'reason_required' has no effect on a deny rule; remove it");
      else if (const auto* b = rr->as_boolean())
        rule.reason_required = b->get();
      else
        error(rr->source(), ctx + "'reason_required' must be true or false, not " + type_name(*rr));
    }
  }

  size_t distinct_people(const std::vector<std::string>& list) const {
    std::set<std::string> people;
    for (const auto& m : list) {
      if (!m.empty() && m[0] == '@') {
        auto g = groups_.find(m.substr(1));
        if (g != groups_.end()) people.insert(g->second.begin(), g->second.end());
      } else if (m != "*") {
        people.insert(m);
      }
    }
    return people.size();
  }

  std::string file_;
  std::map<std::string, SourcePos> names_;
  size_t skipped_ = 0;
};

}  // namespace

const char* record_name(Record r) {
  return r == Record::best_effort ? "best-effort" : "required";
}

std::string Diagnostic::to_string() const {
  if (pos.line == 0) return file + ": " + message;
  return file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column) + ": " + message;
}

Policy Policy::parse(std::string_view text, std::string_view file, std::vector<Diagnostic>* diagnostics) {
  std::vector<Diagnostic> local;
  std::vector<Diagnostic>& out = diagnostics ? *diagnostics : local;
  Policy p;
  p.file_ = std::string(file);
  if (text.size() > kMaxPolicyBytes) {
    out.push_back({p.file_, {}, "policy is larger than " + std::to_string(kMaxPolicyBytes) + " bytes"});
    return p;
  }
  if (const uint32_t line = toml_guard::find_excess_key_dots(text)) {
    out.push_back({p.file_,
                   {line, 1},
                   "too many dotted keys (more than " + std::to_string(toml_guard::kMaxKeyDots) +
                       "); the policy uses none"});
    return p;
  }
  Parser parser(file);
  try {
    const toml::table root = toml::parse(text, std::string_view(file));
    parser.parse(root);
  } catch (const toml::parse_error& e) {
    out.push_back({p.file_, pos_of(e.source()), std::string(e.description())});
    return p;
  } catch (const std::exception& e) {
    // toml++ may throw other exceptions (e.g. allocation failure); fail closed.
    out.push_back({p.file_, {}, std::string("cannot parse: ") + e.what()});
    return p;
  }
  auto& found = parser.found_;
  if (!found.empty()) {
    std::stable_sort(found.begin(), found.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return a.pos.line != b.pos.line ? a.pos.line < b.pos.line : a.pos.column < b.pos.column;
    });
    const size_t shown = std::min(found.size(), kMaxDiagnostics);
    out.insert(out.end(), found.begin(), found.begin() + static_cast<std::ptrdiff_t>(shown));
    if (found.size() > shown)
      out.push_back({p.file_, {}, std::to_string(found.size() - shown) + " more errors not shown"});
    return p;
  }
  p.groups_ = std::move(parser.groups_);
  p.rules_ = std::move(parser.rules_);
  p.mask_ = std::move(parser.mask_);
  p.valid_ = true;
  return p;
}

}  // namespace hoop::policy
