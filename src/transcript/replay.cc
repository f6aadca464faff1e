#include "transcript/replay.h"

#include <utility>

namespace hoop::transcript {

CastReader::CastReader(HeaderFn on_header, EventFn on_event)
    : on_header_(std::move(on_header)), on_event_(std::move(on_event)) {}

Status CastReader::feed(std::string_view chunk) {
  while (!chunk.empty()) {
    const size_t nl = chunk.find('\n');
    const std::string_view part = chunk.substr(0, nl);
    if (pending_.size() + part.size() > kMaxCastLine)
      return make_error(Errc::invalid_argument, "transcript line " + std::to_string(line_no_ + 1) +
                                                    " is longer than " + std::to_string(kMaxCastLine) +
                                                    " bytes");
    if (nl == std::string_view::npos) {
      pending_.append(part);
      return {};
    }
    Status st;
    if (pending_.empty()) {
      st = line(part);
    } else {
      pending_.append(part);
      st = line(pending_);
      pending_.clear();
    }
    if (!st) return st;
    chunk.remove_prefix(nl + 1);
  }
  return {};
}

Status CastReader::finish() {
  if (pending_.empty()) return {};
  std::string last = std::move(pending_);
  pending_.clear();
  return line(last);
}

Status CastReader::line(std::string_view text) {
  ++line_no_;
  if (text.find_first_not_of(" \t\r") == std::string_view::npos) return {};
  auto bad = [&](const std::string& why) {
    return make_error(Errc::invalid_argument,
                      "transcript line " + std::to_string(line_no_) + ": " + why + " (not asciicast v2?)");
  };
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return bad("not JSON");
  if (!header_seen_) {
    if (!j.is_object() || !j.contains("version") || j["version"] != 2) return bad("no version 2 header");
    CastHeader h;
    if (j.contains("width") && j["width"].is_number_integer()) h.width = j["width"].get<int>();
    if (j.contains("height") && j["height"].is_number_integer()) h.height = j["height"].get<int>();
    if (j.contains("timestamp") && j["timestamp"].is_number_integer())
      h.timestamp = j["timestamp"].get<int64_t>();
    h.raw = j;
    header_seen_ = true;
    if (on_header_) on_header_(h);
    return {};
  }
  if (!j.is_array() || j.size() < 3 || !j[0].is_number() || !j[1].is_string() || !j[2].is_string())
    return bad("an event must be [time, kind, data]");
  const auto& kind = j[1].get_ref<const std::string&>();
  if (kind.size() != 1) return bad("unknown event kind");
  CastEvent e;
  e.time = j[0].get<double>();
  if (!(e.time >= 0)) return bad("negative or invalid time");
  e.kind = kind[0];
  e.data = j[2].get<std::string>();
  if (on_event_) on_event_(e);
  return {};
}

namespace {

constexpr unsigned char kEsc = 0x1b;
constexpr size_t kMaxCsi = 64;

bool keep_c0(unsigned char b) {
  return b >= 0x07 && b <= 0x0d;  // BEL BS HT LF VT FF CR
}

// Control sequences that make the terminal answer (into the reviewer's
// input) or act outside the screen: device status / attributes / parameter
// reports, window operations and reports, media copy, mode reports.
bool answering(const std::string& csi) {
  const char final = csi.back();
  if (final == 'n' || final == 'c' || final == 't' || final == 'x' || final == 'i') return true;
  const bool dollar = csi.find('$') != std::string::npos;
  return dollar && (final == 'p' || final == 'w' || final == 'u');
}

}  // namespace

void TerminalFilter::feed(std::string_view in, std::string& out) {
  for (size_t i = 0; i < in.size(); ++i) {
    const auto b = static_cast<unsigned char>(in[i]);
    switch (state_) {
      case State::text:
        if (b == kEsc) {
          state_ = State::esc;
        } else if (b == 0xc2) {
          state_ = State::c2;  // maybe a C1 control, U+0080..U+009F
        } else if (b >= 0x20 || keep_c0(b)) {
          out.push_back(static_cast<char>(b));
        }
        break;
      case State::c2:
        if (b >= 0x80 && b <= 0x9f) {
          // A C1 control: CSI/OSC/DCS... as one code point. Dropped, and a
          // string it opens is dropped with it.
          state_ = (b == 0x90 || b == 0x9d || b == 0x9e || b == 0x9f || b == 0x98) ? State::string
                                                                                    : State::text;
          string_c2_ = false;
        } else {
          out.push_back(static_cast<char>(0xc2));
          state_ = State::text;
          --i;  // this byte again, as text
        }
        break;
      case State::esc:
        if (b == '[') {
          csi_.assign("\x1b[");
          state_ = State::csi;
        } else if (b == ']' || b == 'P' || b == '_' || b == '^' || b == 'X') {
          state_ = State::string;
          string_c2_ = false;
        } else if (b < 0x20) {
          state_ = State::text;  // ESC cancelled by a control
          --i;
        } else {
          out.push_back(static_cast<char>(kEsc));
          out.push_back(static_cast<char>(b));
          state_ = State::text;
        }
        break;
      case State::csi:
        if (b < 0x20 || b > 0x7e) {  // not part of a sequence: drop what we had
          csi_.clear();
          state_ = State::text;
          --i;
        } else {
          csi_.push_back(static_cast<char>(b));
          if (b >= 0x40) {  // final byte
            if (!answering(csi_)) out.append(csi_);
            csi_.clear();
            state_ = State::text;
          } else if (csi_.size() > kMaxCsi) {
            csi_.clear();
            state_ = State::text;  // the rest shows as text: harmless
          }
        }
        break;
      case State::string:
        if (b == 0x07) {
          state_ = State::text;
        } else if (b == kEsc) {
          state_ = State::string_esc;
        } else if (b == 0x9c && string_c2_) {
          state_ = State::text;  // ST as a C1 code point
        }
        string_c2_ = b == 0xc2;
        break;
      case State::string_esc:
        if (b == '\\') {
          state_ = State::text;
        } else {
          state_ = State::esc;  // the string ended; a new escape begins
          --i;
        }
        break;
    }
  }
}

std::string_view TerminalFilter::reset_sequence() {
  return "\x1b[0m\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[?1049l";
}

}  // namespace hoop::transcript
