#pragma once
// A pre-parse guard for TOML text from files (policy, configs).
//
// Why: toml++ 3.3 builds one nested table per dotted-key part and walks them
// recursively, so a 200 KB line such as `a.a.a.a...a = 1` overflows the stack
// and kills the process. Value nesting ([[[...]]] and {a={b=...}}) is already
// capped by toml++ at 256 levels; dotted keys are not. None of hoop's files
// need dotted keys at all, so a small total budget is generous.
//
// Header-only and free of toml++ so that both hoop_policy and hoop_config can
// use it without linking each other. (Its natural home is src/common/.)

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace hoop::toml_guard {

inline constexpr size_t kMaxKeyDots = 256;

/// Returns 0 when the keys of `text` (in [headers], `key = value` lines and
/// inline tables) hold at most `max_dots` dotted-key separators in total;
/// otherwise the 1-based line where the budget ran out. Skips strings and
/// comments. It may over-count on malformed text, which toml++ rejects
/// anyway; it must never under-count on text toml++ accepts. Linear time.
inline uint32_t find_excess_key_dots(std::string_view text, size_t max_dots = kMaxKeyDots) {
  enum class Mode { line_start, key, header, value };
  Mode mode = Mode::line_start;
  std::vector<char> nest;  // '[' arrays and '{' inline tables around the cursor
  size_t dots = 0;
  uint32_t line = 1;
  size_t i = 0;
  const size_t n = text.size();

  // text[i] is a quote; leaves i after the closing quote(s), or at the
  // newline that ends an unterminated one-line string.
  auto skip_string = [&] {
    const char q = text[i];
    const bool multi = i + 2 < n && text[i + 1] == q && text[i + 2] == q;
    i += multi ? 3 : 1;
    while (i < n) {
      const char c = text[i];
      if (c == '\\' && q == '"') {
        if (i + 1 < n && text[i + 1] == '\n') ++line;
        i += 2;
        continue;
      }
      if (c == '\n') {
        if (!multi) return;
        ++line;
      } else if (c == q) {
        if (!multi) {
          ++i;
          return;
        }
        if (i + 2 < n && text[i + 1] == q && text[i + 2] == q) {
          i += 3;
          // """a"""" is the string `a"`: up to two more quotes are content.
          for (int k = 0; k < 2 && i < n && text[i] == q; ++k) ++i;
          return;
        }
      }
      ++i;
    }
  };

  while (i < n) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
      if (nest.empty()) mode = Mode::line_start;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
      continue;
    }
    if (c == '#') {
      while (i < n && text[i] != '\n') ++i;
      continue;
    }
    switch (mode) {
      case Mode::line_start:
        if (c == '[') {
          mode = Mode::header;
          ++i;
        } else {
          mode = Mode::key;  // look at c again as part of a key
        }
        continue;
      case Mode::key:
      case Mode::header:
        if (c == '"' || c == '\'') {
          skip_string();
        } else if (c == '.') {
          if (++dots > max_dots) return line;
          ++i;
        } else if (mode == Mode::key && c == '=') {
          mode = Mode::value;
          ++i;
        } else if (mode == Mode::header && c == ']') {
          mode = Mode::value;  // the rest of the line: a second ']' or a comment
          ++i;
        } else if (mode == Mode::key && c == '}' && !nest.empty()) {
          nest.pop_back();  // an empty inline table: {}
          mode = Mode::value;
          ++i;
        } else {
          ++i;
        }
        continue;
      case Mode::value:
        if (c == '"' || c == '\'') {
          skip_string();
        } else if (c == '[') {
          nest.push_back('[');
          ++i;
        } else if (c == '{') {
          nest.push_back('{');
          mode = Mode::key;
          ++i;
        } else if ((c == ']' || c == '}') && !nest.empty()) {
          nest.pop_back();
          ++i;
        } else if (c == ',' && !nest.empty() && nest.back() == '{') {
          mode = Mode::key;
          ++i;
        } else {
          ++i;
        }
        continue;
    }
  }
  return 0;
}

}  // namespace hoop::toml_guard
