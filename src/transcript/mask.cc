// Streaming masking with PCRE2. Each pattern is compiled once (JIT when the
// platform has it) for complete, hard-partial and soft-partial matching.
// feed() scans with PCRE2_PARTIAL_HARD: a match that reaches the end of the
// bytes seen so far and could still grow is reported as partial, and only
// the bytes from its start are held back; everything before goes out now.
// finish() scans for complete matches only; the key-block pattern itself
// runs to the end of the stream when no END line came (a cut-off key is still
// a secret). Lookbehinds see the bytes before a feed through `context`.

#define PCRE2_CODE_UNIT_WIDTH 8
#include "transcript/mask.h"

#include <pcre2.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace hoop::transcript {
namespace {

// Built-ins, one regex each: PCRE2's JIT skips ahead to a pattern's
// possible first bytes, which an alternation of all three would defeat
// (measured: about 4x slower on log text).
// - PEM private keys, BEGIN through the END line of the same kind, or to the
//   end of the stream when the END never comes (a cut-off key is a secret).
// - AWS access key ids (long-term AKIA, temporary ASIA).
// - `password=`-style assignments: \K keeps the name, the `=` or `:` and an
//   optional quote, and masks the value. Not preceded by a letter or digit,
//   so `DB_PASSWORD=` counts and `mypassword=` does not.
const char* const kBuiltins[] = {
    R"(-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|\z))",
    R"(\b(?:AKIA|ASIA)[A-Z0-9]{16}\b)",
    R"((?i)(?<![a-z0-9])(?:password|passwd|pwd|secret|token|api[_-]?key)["']?\s*[=:]\s*["']?\K[^\s"'&;,]+)",
};

// The assignment pattern's JIT can only skip ahead to the first letters of
// its names (p, s, t, a in either case: a quarter of ordinary text), where
// it then tries a match; that made it 3/4 of the masker's time. Every match
// needs `=` or `:` right after a name (and an optional quote and spaces), so
// the masker finds those separators with memchr, looks back for a name, and
// runs the regex anchored where one starts. A partial match needs no
// separator when it reaches the end of the bytes (`...passw`, `token'  `):
// it starts at most kLongestName + 1 bytes before the trailing spaces, and
// the regex runs unanchored over that tail only. The regex stays the judge
// of every match (lookbehind, value); this only chooses where it looks.
constexpr size_t kAssignmentBuiltin = 2;
constexpr std::string_view kNames[] = {"password", "passwd", "pwd",     "secret",
                                       "token",    "apikey", "api_key", "api-key"};
constexpr size_t kLongestName = 8;

constexpr bool is_space(char c) {  // PCRE2's \s without UCP
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
constexpr char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Start of a name that ends exactly at `end` (no name ends another), or npos.
size_t name_ending_at(std::string_view s, size_t end) {
  if (end == 0) return std::string_view::npos;
  const char last = ascii_lower(s[end - 1]);  // most separators follow a digit or `]`
  if (last != 'd' && last != 't' && last != 'n' && last != 'y') return std::string_view::npos;
  for (std::string_view n : kNames) {
    if (end < n.size()) continue;
    const size_t b = end - n.size();
    size_t k = 0;
    while (k < n.size() && ascii_lower(s[b + k]) == n[k]) ++k;
    if (k == n.size()) return b;
  }
  return std::string_view::npos;
}

// Where a match of the assignment pattern whose separator is at `q` would
// start (name, optional quote, spaces, q), or npos.
size_t assignment_start(std::string_view s, size_t q) {
  size_t j = q;
  while (j > 0 && is_space(s[j - 1])) --j;
  if (j > 0 && (s[j - 1] == '"' || s[j - 1] == '\'')) --j;
  return name_ending_at(s, j);
}

// Lowest offset at which a partial match without a separator could start.
size_t assignment_tail(std::string_view s) {
  size_t e = s.size();
  while (e > 0 && is_space(s[e - 1])) --e;
  return e > kLongestName + 1 ? e - kLongestName - 1 : 0;
}

// Lookbehind context kept across feeds is capped (policy patterns could ask
// for more; they get this much).
constexpr size_t kMaxContext = 255;

struct Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  // The built-in assignment pattern only: the same, compiled anchored (JIT
  // code ignores PCRE2_ANCHORED given at match time).
  pcre2_code* anchored = nullptr;
  bool anchored_jit = false;
};

constexpr size_t kNone = std::numeric_limits<size_t>::max();

struct Hit {
  size_t start = kNone;  // kNone: no match at or after the scan position
  size_t end = kNone;
  bool partial = false;
  bool error = false;
  bool valid = false;  // cache entry filled
};

std::string pcre2_message(int rc) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(rc, buf, sizeof buf) < 0) return "error " + std::to_string(rc);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

struct Masker::Impl {
  std::vector<Regex> regexes;
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  std::string held;     // possible start of a secret, not emitted yet
  std::string context;  // bytes just before `held`, already emitted
  std::string buf;
  size_t lookbehind = 0;
  std::vector<Hit> cache;
  uint64_t errors = 0;

  ~Impl() {
    for (auto& r : regexes) {
      pcre2_code_free(r.code);
      pcre2_code_free(r.anchored);
    }
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(stack);
  }

  static Result<Regex> compile(const std::string& pattern, const std::string& name, uint32_t options) {
    int err = 0;
    PCRE2_SIZE off = 0;
    // NEVER_UTF: transcripts are bytes; a (*UTF) pattern would make invalid
    // UTF-8 a match error instead of plain bytes.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_NEVER_UTF | options, &err, &off, nullptr);
    if (code == nullptr)
      return make_error(Errc::invalid_argument, "mask pattern " + name + " does not compile at offset " +
                                                    std::to_string(off) + ": " + pcre2_message(err));
    return Regex{code, pcre2_jit_compile(code, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD) == 0};
  }

  Status add(const std::string& pattern, const std::string& name) {
    auto r = compile(pattern, name, 0);
    if (!r) return r.error();
    regexes.push_back(*r);
    uint32_t lb = 0;
    if (pcre2_pattern_info(r->code, PCRE2_INFO_MAXLOOKBEHIND, &lb) == 0)
      lookbehind = std::min(kMaxContext, std::max<size_t>(lookbehind, lb));
    // A pattern matching nothing at all would insert a marker between every
    // pair of bytes; refuse it rather than guess.
    const int rc = run(regexes.size() - 1, "", 0, 0, false);
    if (rc >= 0)
      return make_error(Errc::invalid_argument, "mask pattern " + name + " matches the empty string");
    return {};
  }

  Status add_anchored(size_t i, const std::string& pattern) {
    auto r = compile(pattern, "(built-in, anchored)", PCRE2_ANCHORED);
    if (!r) return r.error();
    regexes[i].anchored = r->code;
    regexes[i].anchored_jit = r->jit;
    return {};
  }

  int run(size_t i, std::string_view s, size_t pos, uint32_t opts, bool anchored) {
    const Regex& r = regexes[i];
    const auto* p = reinterpret_cast<PCRE2_SPTR>(s.data());
    pcre2_code* code = anchored ? r.anchored : r.code;
    if (anchored ? r.anchored_jit : r.jit) return pcre2_jit_match(code, p, s.size(), pos, opts, md, mctx);
    return pcre2_match(code, p, s.size(), pos, opts, md, mctx);
  }

  Hit find(size_t i, std::string_view s, size_t pos, bool final) {
    if (regexes[i].anchored != nullptr) return find_assignment(i, s, pos, final);
    return find_at(i, s, pos, final, false);
  }

  // Same answer as find_at(i, s, pos, final, false), looking only where a match
  // can start (see assignment_start).
  Hit find_assignment(size_t i, std::string_view s, size_t pos, bool final) {
    const char* const p = s.data();
    const char* eq = nullptr;
    const char* colon = nullptr;
    size_t from = pos;
    while (from < s.size()) {
      // The next '=' and ':' at or after `from`, each searched again only
      // once passed.
      const size_t left = s.size() - from;
      if (eq == nullptr || eq < p + from) {
        eq = static_cast<const char*>(std::memchr(p + from, '=', left));
        if (eq == nullptr) eq = p + s.size();
      }
      if (colon == nullptr || colon < p + from) {
        colon = static_cast<const char*>(std::memchr(p + from, ':', left));
        if (colon == nullptr) colon = p + s.size();
      }
      const size_t q = static_cast<size_t>(std::min(eq, colon) - p);
      if (q >= s.size()) break;
      from = q + 1;
      const size_t b = assignment_start(s, q);
      if (b == std::string_view::npos || b < pos) continue;
      Hit h = find_at(i, s, b, final, true);
      if (h.start != kNone) return h;
    }
    return find_at(i, s, std::max(pos, assignment_tail(s)), final, false);
  }

  Hit find_at(size_t i, std::string_view s, size_t pos, bool final, bool anchored) {
    Hit h;
    h.valid = true;
    const int rc = run(i, s, pos, final ? 0 : PCRE2_PARTIAL_HARD, anchored);
    if (rc == PCRE2_ERROR_NOMATCH) return h;
    if (rc < 0 && rc != PCRE2_ERROR_PARTIAL) {
      h.error = true;
      h.start = pos;
      return h;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    h.start = std::min<size_t>(ov[0], s.size());
    h.end = std::min<size_t>(std::max<size_t>(ov[1], h.start), s.size());
    h.partial = rc == PCRE2_ERROR_PARTIAL;
    return h;
  }

  // Masks buf[base, end) into `out`; buf[0, base) is lookbehind context.
  // Returns where the held tail starts (buf.size() when nothing is held).
  size_t process(std::string_view s, size_t base, bool final, std::string& out) {
    for (auto& c : cache) c.valid = false;
    size_t pos = base;
    for (;;) {
      Hit best;
      for (size_t i = 0; i < regexes.size(); ++i) {
        Hit& c = cache[i];
        if (!c.valid || (c.start != kNone && c.start < pos)) c = find(i, s, pos, final);
        // Earliest start wins; at the same start a partial one (hold) or an
        // error (mask) beats a complete one.
        if (c.start < best.start || (c.start == best.start && c.start != kNone && (c.partial || c.error) &&
                                     !best.partial && !best.error))
          best = c;
      }
      if (best.start == kNone) {
        out.append(s.substr(pos));
        return s.size();
      }
      out.append(s.substr(pos, best.start - pos));
      if (best.error) {  // fail closed: the rest of this segment is masked
        ++errors;
        out.append(kMarker);
        return s.size();
      }
      if (best.partial) {
        if (!final && s.size() - best.start <= kMaxHoldBack) return best.start;
        out.append(kMarker);  // too long to hold (or the end): mask it
        return s.size();
      }
      if (best.end == best.start) {  // empty match (lookaround, \K): no marker
        out.push_back(s[best.start]);
        pos = best.start + 1;
        if (pos == s.size()) return pos;
        continue;
      }
      out.append(kMarker);
      pos = best.end;
    }
  }

  void run_stream(std::string_view in, bool final, std::string& out) {
    // The subject is context + held + new bytes. Copying the new bytes costs
    // far less than the scan, and lets lookbehinds see across feeds.
    buf.assign(context);
    buf.append(held);
    buf.append(in);
    const size_t base = context.size();
    const size_t hold = base == buf.size() ? base : process(buf, base, final, out);
    const size_t keep = std::min(hold, lookbehind);
    context.assign(buf, hold - keep, keep);
    held.assign(buf, hold, std::string::npos);
  }
};

Masker::Masker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Masker::Masker(Masker&&) noexcept = default;
Masker& Masker::operator=(Masker&&) noexcept = default;
Masker::~Masker() = default;

Result<Masker> Masker::create(const std::vector<std::string>& extra) {
  auto impl = std::make_unique<Impl>();
  impl->md = pcre2_match_data_create(1, nullptr);
  impl->mctx = pcre2_match_context_create(nullptr);
  // The lazy key body and the policy's patterns may need more than the
  // default 32 KiB JIT stack; 1 MiB bounds it.
  impl->stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, nullptr);
  if (impl->md == nullptr || impl->mctx == nullptr || impl->stack == nullptr)
    return make_error(Errc::internal, "cannot allocate the secret matcher");
  pcre2_jit_stack_assign(impl->mctx, nullptr, impl->stack);
  for (const char* p : kBuiltins)
    if (auto s = impl->add(p, "(built-in)"); !s) return s.error();
  if (auto s = impl->add_anchored(kAssignmentBuiltin, kBuiltins[kAssignmentBuiltin]); !s) return s.error();
  for (size_t i = 0; i < extra.size(); ++i)
    if (auto s = impl->add(extra[i], std::to_string(i + 1) + " \"" + extra[i] + "\""); !s) return s.error();
  impl->cache.resize(impl->regexes.size());
  return Masker(std::move(impl));
}

void Masker::feed(std::string_view in, std::string& out) {
  if (!in.empty()) impl_->run_stream(in, false, out);
}

void Masker::finish(std::string& out) {
  if (!impl_->held.empty()) impl_->run_stream({}, true, out);
  impl_->held.clear();
  impl_->context.clear();
}

size_t Masker::held() const {
  return impl_->held.size();
}
uint64_t Masker::errors() const {
  return impl_->errors;
}

}  // namespace hoop::transcript
