#pragma once
// Private helpers shared by the host and server config parsers: typed key
// access that records "source:line:col: message" errors and keeps going, so
// one run shows every problem. Not part of the module's interface.

#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"
#include "common/error.h"
#include "common/escape.h"
#include "policy/toml_guard.h"

namespace hoop::config::detail {

inline constexpr size_t kMaxConfigBytes = 1024 * 1024;

inline std::string quoted(std::string_view s) {
  return "'" + escape_for_terminal(s) + "'";
}

inline const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date or time";
    default:
      return "nothing";
  }
}

/// Collects errors for one file.
class Errors {
 public:
  explicit Errors(std::string_view source) : source_(source) {}

  void add(uint32_t line, uint32_t column, std::string_view msg) {
    lines_.push_back(source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                     std::string(msg));
  }
  void add(const toml::source_region& at, std::string_view msg) { add(at.begin.line, at.begin.column, msg); }
  bool empty() const { return lines_.empty(); }
  /// All errors, one per line.
  Error error() const {
    std::string msg;
    for (const auto& l : lines_) msg += (msg.empty() ? "" : "\n") + l;
    return make_error(Errc::invalid_argument, msg);
  }

 private:
  std::string source_;
  std::vector<std::string> lines_;
};

/// Parses `text` with the size and nesting guards; nullopt after recording
/// the reason.
inline std::optional<toml::table> parse_toml(std::string_view text, std::string_view source, Errors& errs) {
  if (text.size() > kMaxConfigBytes) {
    errs.add(1, 1, "file is larger than " + std::to_string(kMaxConfigBytes) + " bytes");
    return std::nullopt;
  }
  if (const uint32_t line = toml_guard::find_excess_key_dots(text)) {
    errs.add(line, 1, "too many dotted keys; this file uses none");
    return std::nullopt;
  }
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    errs.add(e.source(), e.description());
  } catch (const std::exception& e) {
    errs.add(1, 1, std::string("cannot parse: ") + e.what());
  }
  return std::nullopt;
}

inline std::string join(std::span<const std::string_view> words) {
  std::string out;
  for (auto w : words) out += (out.empty() ? "" : ", ") + std::string(w);
  return out;
}

/// Unknown keys are errors: a typo in a security config must not be ignored.
inline void check_keys(const toml::table& t, std::span<const std::string_view> allowed,
                       std::string_view where, Errors& errs) {
  for (const auto& [key, node] : t) {
    if (std::find(allowed.begin(), allowed.end(), key.str()) == allowed.end())
      errs.add(key.source(),
               "unknown key " + quoted(key.str()) + std::string(where) + " (allowed: " + join(allowed) + ")");
  }
}

/// A one-line string without control characters. False when absent or bad.
inline bool get_string(const toml::table& t, std::string_view key, Errors& errs, std::string& out) {
  const toml::node* n = t.get(key);
  if (!n) return false;
  const auto* s = n->as_string();
  if (!s) {
    errs.add(n->source(), "'" + std::string(key) + "' must be a string, not " + type_name(*n));
    return false;
  }
  if (!is_clean_text(s->get())) {
    errs.add(n->source(), "'" + std::string(key) + "' contains control characters or invalid UTF-8");
    return false;
  }
  out = s->get();
  return true;
}

inline void get_bool(const toml::table& t, std::string_view key, Errors& errs, bool& out) {
  const toml::node* n = t.get(key);
  if (!n) return;
  if (const auto* b = n->as_boolean())
    out = b->get();
  else
    errs.add(n->source(), "'" + std::string(key) + "' must be true or false, not " + type_name(*n));
}

/// A positive duration such as "30s" or "15m".
inline void get_duration(const toml::table& t, std::string_view key, Errors& errs,
                         std::chrono::milliseconds& out) {
  const toml::node* n = t.get(key);
  if (!n) return;
  std::string text;
  if (!n->is_string()) {
    errs.add(n->source(),
             "'" + std::string(key) + "' must be a duration string such as \"30s\", not " + type_name(*n));
    return;
  }
  if (!get_string(t, key, errs, text)) return;
  auto d = parse_duration(text);
  if (!d)
    errs.add(n->source(), "'" + std::string(key) + "': " + d.error().message);
  else if (d->count() <= 0)
    errs.add(n->source(), "'" + std::string(key) + "' must be longer than zero");
  else
    out = *d;
}

/// Position of key `key`'s value, for errors that concern a valid value.
inline toml::source_region where(const toml::table& t, std::string_view key) {
  const toml::node* n = t.get(key);
  return n ? n->source() : t.source();
}

}  // namespace hoop::config::detail
