#pragma once
// Reading transcripts back: an asciicast v2 reader that takes the text in
// chunks as it comes from hoopd, and a filter for what reaches a reviewer's
// terminal.
//
// The bytes in a transcript were produced by a command running as root on a
// host that may be compromised; replaying them is writing someone else's
// bytes to the reviewer's terminal. TerminalFilter keeps what draws (text,
// colours, cursor movement, screen modes) and drops what makes a terminal
// do more than draw: operating system commands (OSC: window title,
// clipboard writes, hyperlinks, colour queries), device control strings
// (DCS), APC/PM/SOS strings, C1 controls, and control sequences that make
// the terminal answer into the reviewer's input (device status and
// attribute reports, window reports).
//
// MUST: keep memory bounded: a line longer than kMaxCastLine is an error,
//       a string being dropped is not buffered.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/error.h"

namespace hoop::transcript {

inline constexpr size_t kMaxCastLine = size_t{8} * 1024 * 1024;

struct CastHeader {
  int width = 80;
  int height = 24;
  int64_t timestamp = 0;
  nlohmann::json raw;  // the whole header object, "hoop" metadata included
};

struct CastEvent {
  double time = 0;  // seconds since the start
  char kind = 'o';  // 'o' output, 'i' input, 'r' resize, 'm' marker
  std::string data;
};

/// Feeds asciicast v2 text in chunks of any size; calls `on_header` once for
/// the first line and `on_event` for each complete event line after it.
/// Events of unknown kinds are passed on; the caller decides.
class CastReader {
 public:
  using HeaderFn = std::function<void(const CastHeader&)>;
  using EventFn = std::function<void(const CastEvent&)>;
  CastReader(HeaderFn on_header, EventFn on_event);

  /// Errors name the line number: not JSON, not version 2, a malformed
  /// event, a line over kMaxCastLine.
  Status feed(std::string_view chunk);
  /// At the end of the text: a last line without '\n' is parsed too.
  Status finish();
  bool has_header() const { return header_seen_; }

 private:
  Status line(std::string_view text);
  HeaderFn on_header_;
  EventFn on_event_;
  std::string pending_;
  uint64_t line_no_ = 0;
  bool header_seen_ = false;
};

/// Streaming filter; sequences split across feeds are handled.
class TerminalFilter {
 public:
  void feed(std::string_view in, std::string& out);
  /// What to print at the end of a replay: attributes, cursor, mouse and
  /// paste modes, and the alternate screen back to normal.
  static std::string_view reset_sequence();

 private:
  enum class State { text, esc, csi, string, string_esc, c2 };
  State state_ = State::text;
  std::string csi_;  // the control sequence being read (bounded)
  bool string_c2_ = false;  // in a string, the last byte was 0xc2
};

}  // namespace hoop::transcript
