#pragma once
// asciicast v2 encoding (https://docs.asciinema.org/manual/asciicast/v2/):
// one JSON header line, then one JSON array per event, `[t, "o", "text"]`.
// Pure logic: no system calls.
//
// MUST: produce valid UTF-8 JSON whatever the bytes: a character split
//       across reads is carried to the next one, invalid bytes become U+FFFD.
// MUST: keep memory bounded (a carry of at most 3 bytes per stream).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hoop::transcript {

/// The header. `width`/`height` 0 (no terminal) are written as 80x24.
/// Strings may hold any bytes (invalid UTF-8 is replaced).
struct SessionHeader {
  unsigned width = 0;
  unsigned height = 0;
  int64_t timestamp = 0;  // Unix seconds at the start
  std::string term;       // env.TERM
  std::string shell;      // env.SHELL
  std::string title;
  // hoop's own metadata, under "hoop".
  std::string session;
  std::string request;
  std::string host;
  std::string user;
  std::string run_as;
  std::vector<std::string> argv;
  std::string path;    // resolved executable
  std::string digest;  // its SHA-256
  bool tty = true;     // false in pipe mode
};

/// The header line, ending in '\n'.
std::string cast_header_line(const SessionHeader& h);

/// Appends `bytes` to `out` as the inside of a JSON string, valid UTF-8,
/// carrying an incomplete trailing character to the next call. One per
/// stream; not thread-safe.
class JsonUtf8Stream {
 public:
  void append(std::string_view bytes, std::string& out);
  /// End of stream: a carried incomplete character becomes U+FFFD.
  void finish(std::string& out);
  size_t carried() const { return carry_n_; }

 private:
  unsigned char carry_[4] = {};
  size_t carry_n_ = 0;
};

/// Event lines for one session. `usec` is the time since the start.
class CastEncoder {
 public:
  /// `[t, "o", ...]` (`kind` 'o') or `[t, "i", ...]` ('i'); nothing when
  /// all of `bytes` is carried.
  void event(uint64_t usec, char kind, std::string_view bytes, std::string& out);
  /// `[t, "r", "COLSxROWS"]`.
  static void resize(uint64_t usec, unsigned cols, unsigned rows, std::string& out);
  /// Flushes carried bytes of both streams as events at `usec`.
  void finish(uint64_t usec, std::string& out);

 private:
  void line(uint64_t usec, char kind, JsonUtf8Stream& s, std::string_view bytes, bool final,
            std::string& out);
  JsonUtf8Stream out_;
  JsonUtf8Stream in_;
  std::string scratch_;
};

}  // namespace hoop::transcript
