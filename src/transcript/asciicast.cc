// asciicast v2 encoding. The header goes through nlohmann/json (small, once
// per session). Event text does not: nlohmann's string dump (with
// error_handler_t::replace) measured 150-270 MB/s on terminal text here,
// against 1250-1800 MB/s for the escaper below (CastBench in
// asciicast_test.cc, on a loaded 2-core box), and it cannot carry a
// character split across reads. The escaper is one pass that validates
// UTF-8, escapes for JSON and copies plain ASCII eight bytes at a time.

#include "transcript/asciicast.h"

#include <cstring>
#include <nlohmann/json.hpp>

namespace hoop::transcript {
namespace {

constexpr char kReplacement[] = "\xef\xbf\xbd";  // U+FFFD

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

constexpr uint64_t has_zero(uint64_t y) {
  return (y - kOnes) & ~y & kHighs;
}

// True when one of the 8 bytes is not plain printable ASCII other than
// '"' and '\\' (control, quote, backslash or >= 0x80).
constexpr bool needs_care(uint64_t x) {
  const uint64_t below_space = (x - 0x20 * kOnes) & ~x & kHighs;
  return ((x & kHighs) | below_space | has_zero(x ^ ('"' * kOnes)) | has_zero(x ^ ('\\' * kOnes))) != 0;
}

constexpr bool plain(unsigned char c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

void escape_ascii(unsigned char c, std::string& out) {
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    default: {
      static constexpr char kHex[] = "0123456789abcdef";
      const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out.append(u, 6);
    }
  }
}

// Encodes p[0, n) into `out`. Stops after the first character that ends at
// or past `stop`, or before an incomplete character at the end (unless
// `final`, where it becomes U+FFFD). Returns the bytes consumed.
size_t encode(const unsigned char* p, size_t n, size_t stop, bool final, std::string& out) {
  size_t i = 0;
  while (i < n && i < stop) {
    size_t j = i;
    for (uint64_t x; j + 8 <= n; j += 8) {
      std::memcpy(&x, p + j, 8);
      if (needs_care(x)) break;
    }
    while (j < n && plain(p[j])) ++j;
    if (j > i) {
      out.append(reinterpret_cast<const char*>(p + i), j - i);
      i = j;
      continue;
    }
    const unsigned char c = p[i];
    if (c < 0x80) {
      escape_ascii(c, out);
      ++i;
      continue;
    }
    // Unicode table 3-7: well-formed sequences; the second byte's range
    // depends on the lead (no overlongs, surrogates or > U+10FFFF).
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
      len = 2;
    else if (c == 0xe0)
      len = 3, lo = 0xa0;
    else if (c == 0xed)
      len = 3, hi = 0x9f;
    else if (c >= 0xe1 && c <= 0xef)
      len = 3;
    else if (c == 0xf0)
      len = 4, lo = 0x90;
    else if (c == 0xf4)
      len = 4, hi = 0x8f;
    else if (c >= 0xf1 && c <= 0xf3)
      len = 4;
    if (len == 0) {  // stray continuation or impossible lead byte
      out += kReplacement;
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < len; ++k) {
      if (i + k >= n) break;
      const unsigned char b = p[i + k];
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) break;
    }
    if (k == len) {
      out.append(reinterpret_cast<const char*>(p + i), len);
    } else if (i + k >= n && !final) {
      return i;  // incomplete at the end: carry it
    } else {
      out += kReplacement;  // the maximal valid prefix becomes one U+FFFD
    }
    i += k;
  }
  return i;
}

void append_time(uint64_t usec, std::string& out) {
  char buf[32];
  char* e = buf + sizeof buf;
  char* b = e;
  uint64_t frac = usec % 1000000, secs = usec / 1000000;
  for (int d = 0; d < 6; ++d, frac /= 10) *--b = static_cast<char>('0' + frac % 10);
  *--b = '.';
  do {
    *--b = static_cast<char>('0' + secs % 10);
    secs /= 10;
  } while (secs != 0);
  out.append(b, static_cast<size_t>(e - b));
}

}  // namespace

std::string cast_header_line(const SessionHeader& h) {
  const bool sized = h.width != 0 && h.height != 0;
  nlohmann::json j = {
      {"version", 2},
      {"width", sized ? h.width : 80},
      {"height", sized ? h.height : 24},
      {"timestamp", h.timestamp},
      {"env", {{"TERM", h.term}, {"SHELL", h.shell}}},
  };
  if (!h.title.empty()) j["title"] = h.title;
  j["hoop"] = {{"session", h.session}, {"request", h.request}, {"host", h.host},
               {"user", h.user},       {"run_as", h.run_as},   {"argv", h.argv},
               {"path", h.path},       {"digest", h.digest},   {"tty", h.tty}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void JsonUtf8Stream::append(std::string_view bytes, std::string& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  if (carry_n_ != 0) {
    // Complete the carried character with at most 4 new bytes.
    unsigned char tmp[8];
    const size_t k = carry_n_;
    const size_t m = std::min<size_t>(4, n);
    std::memcpy(tmp, carry_, k);
    if (m != 0) std::memcpy(tmp + k, p, m);
    const size_t used = encode(tmp, k + m, k, false, out);
    if (used < k) {  // still incomplete: everything new joined the carry
      carry_n_ = k + m - used;
      std::memmove(carry_, tmp + used, carry_n_);
      return;
    }
    carry_n_ = 0;
    p += used - k;
    n -= used - k;
  }
  const size_t used = encode(p, n, n, false, out);
  carry_n_ = n - used;
  if (carry_n_ != 0) std::memcpy(carry_, p + used, carry_n_);
}

void JsonUtf8Stream::finish(std::string& out) {
  if (carry_n_ != 0) encode(carry_, carry_n_, carry_n_, true, out);
  carry_n_ = 0;
}

void CastEncoder::line(uint64_t usec, char kind, JsonUtf8Stream& s, std::string_view bytes, bool final,
                       std::string& out) {
  const size_t mark = out.size();
  out += '[';
  append_time(usec, out);
  out += kind == 'i' ? ", \"i\", \"" : ", \"o\", \"";
  const size_t text = out.size();
  s.append(bytes, out);
  if (final) s.finish(out);
  if (out.size() == text) {
    out.resize(mark);  // all carried: no event yet
    return;
  }
  out += "\"]\n";
}

void CastEncoder::event(uint64_t usec, char kind, std::string_view bytes, std::string& out) {
  line(usec, kind, kind == 'i' ? in_ : out_, bytes, false, out);
}

void CastEncoder::resize(uint64_t usec, unsigned cols, unsigned rows, std::string& out) {
  out += '[';
  append_time(usec, out);
  out += ", \"r\", \"" + std::to_string(cols) + "x" + std::to_string(rows) + "\"]\n";
}

void CastEncoder::finish(uint64_t usec, std::string& out) {
  line(usec, 'o', out_, {}, true, out);
  line(usec, 'i', in_, {}, true, out);
}

}  // namespace hoop::transcript
