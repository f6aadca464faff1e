#include "common/escape.h"

#include <cstdint>

namespace hoop {
namespace {

// Decodes one UTF-8 sequence at s[i]. Returns its length and sets cp, or 0
// when the bytes there are not valid UTF-8 (overlong, surrogate, truncated).
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) { cp = b0; return 1; }
  size_t len;
  uint32_t min;
  if ((b0 & 0xe0) == 0xc0) { len = 2; cp = b0 & 0x1f; min = 0x80; }
  else if ((b0 & 0xf0) == 0xe0) { len = 3; cp = b0 & 0x0f; min = 0x800; }
  else if ((b0 & 0xf8) == 0xf0) { len = 4; cp = b0 & 0x07; min = 0x10000; }
  else return 0;
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

// Code points that change how the text around them is displayed: bidi
// embeddings/overrides/isolates and marks (Trojan Source), plus zero-width
// joiners/spaces that hide text.
bool is_invisible_or_bidi(uint32_t cp) {
  return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
         cp == 0x200e || cp == 0x200f || cp == 0x061c || (cp >= 0x200b && cp <= 0x200d) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0xfeff;
}

// "\x1b" for bytes, "\u202e" for code points.
void append_hex(std::string& out, bool unicode, uint32_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const int digits = unicode ? 4 : 2;
  out += unicode ? "\\u" : "\\x";
  for (int i = digits - 1; i >= 0; --i) out += kDigits[(v >> (4 * i)) & 0xf];
}

}  // namespace

std::string escape_for_terminal(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t n = decode_utf8(s, i, cp);
    if (n == 0) {
      append_hex(out, false, static_cast<unsigned char>(s[i]));
      ++i;
      continue;
    }
    if (cp == '\\') out += "\\\\";
    else if (cp == '\n') out += "\\n";
    else if (cp == '\t') out += "\\t";
    else if (cp == '\r') out += "\\r";
    else if (cp < 0x20 || cp == 0x7f) append_hex(out, false, cp);
    else if ((cp >= 0x80 && cp < 0xa0) || is_invisible_or_bidi(cp)) append_hex(out, true, cp);
    else out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string quote_arg(std::string_view s) {
  if (s.empty()) return "''";
  bool safe = true;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '/' || c == ':' || c == '=' ||
                    c == ',' || c == '@' || c == '+' || c == '%';
    if (!ok) { safe = false; break; }
  }
  if (safe) return std::string(s);
  std::string inner = escape_for_terminal(s);
  std::string out = "'";
  for (char c : inner) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  out += "'";
  return out;
}

std::string format_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (i) out += ' ';
    out += quote_arg(argv[i]);
  }
  return out;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t n = decode_utf8(s, i, cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool is_clean_text(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t n = decode_utf8(s, i, cp);
    if (n == 0) return false;
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || is_invisible_or_bidi(cp)) return false;
    i += n;
  }
  return true;
}

}  // namespace hoop
