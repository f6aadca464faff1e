#include "transcript/replay.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hoop::transcript {
namespace {

std::string filter_whole(std::string_view in) {
  TerminalFilter f;
  std::string out;
  f.feed(in, out);
  return out;
}

// Every split of the input into two feeds gives the same result.
std::string filter_split_everywhere(std::string_view in) {
  const std::string whole = filter_whole(in);
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    TerminalFilter f;
    std::string out;
    f.feed(in.substr(0, cut), out);
    f.feed(in.substr(cut), out);
    EXPECT_EQ(out, whole) << "split at " << cut;
  }
  return whole;
}

TEST(TerminalFilter, KeepsTextColoursAndCursorMovement) {
  const std::string in = "plain \x1b[1;31mred\x1b[0m\r\n\x1b[2J\x1b[H\x1b[?1049h\tgr\xc3\xbc\xc3\x9f\x1b" "7\x1b" "8";
  EXPECT_EQ(filter_split_everywhere(in), in);
}

TEST(TerminalFilter, DropsOperatingSystemCommandsAndOtherStrings) {
  // Window title (BEL- and ST-terminated), clipboard write, hyperlink, DCS.
  const std::string in =
      "a\x1b]0;owned\x07"
      "b\x1b]52;c;ZWNobyBoaQ==\x1b\\"
      "c\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"
      "d\x1bP$q\"p\x1b\\"
      "e\x1b_apc\x1b\\f\x1b^pm\x1b\\g\x1bXsos\x1b\\h";
  EXPECT_EQ(filter_split_everywhere(in), "abclinkdefgh");
}

TEST(TerminalFilter, DropsSequencesThatMakeTheTerminalAnswer) {
  const std::string in = "x\x1b[6n\x1b[c\x1b[>c\x1b[5n\x1b[21t\x1b[?2004$p\x1b[5iy\x1b[31mz";
  EXPECT_EQ(filter_split_everywhere(in), "xy\x1b[31mz");
}

TEST(TerminalFilter, DropsC1ControlsAndOtherC0Controls) {
  // U+009B (CSI) and U+009D (OSC ... ST as U+009C), and a raw NUL / SO.
  const std::string in = std::string("a\xc2\x9b") + "6n" + "b\xc2\x9d" + "0;t\xc2\x9c" + "c" + std::string(1, '\0') +
                         "\x0e" + "d\xc2\xa9";
  EXPECT_EQ(filter_split_everywhere(in), "a6nbcd\xc2\xa9");
}

TEST(TerminalFilter, UnterminatedStringIsDroppedWithoutGrowing) {
  TerminalFilter f;
  std::string out;
  f.feed("\x1b]0;", out);
  const std::string junk(1 << 20, 'A');
  for (int i = 0; i < 8; ++i) f.feed(junk, out);
  EXPECT_TRUE(out.empty());
  f.feed("\x07ok", out);
  EXPECT_EQ(out, "ok");
}

TEST(TerminalFilter, OverlongControlSequenceIsAbandoned) {
  const std::string in = "\x1b[" + std::string(200, '1') + "mZ";
  const std::string out = filter_whole(in);
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(out.back(), 'Z');
}

struct Collected {
  std::vector<CastHeader> headers;
  std::vector<CastEvent> events;
  CastReader reader() {
    return CastReader([this](const CastHeader& h) { headers.push_back(h); },
                      [this](const CastEvent& e) { events.push_back(e); });
  }
};

TEST(CastReader, ReadsHeaderAndEventsInChunksOfAnySize) {
  const std::string cast =
      "{\"version\": 2, \"width\": 100, \"height\": 30, \"timestamp\": 1700000000, \"hoop\": {\"session\": 7}}\n"
      "[0.5, \"o\", \"hello\\r\\n\"]\n"
      "[1.25, \"r\", \"90x20\"]\n"
      "[2.0, \"o\", \"\\u00e9\\u001b[0m\"]";  // no final newline
  for (size_t step = 1; step <= cast.size(); ++step) {
    Collected c;
    auto r = c.reader();
    for (size_t at = 0; at < cast.size(); at += step) ASSERT_TRUE(r.feed(std::string_view(cast).substr(at, step)));
    ASSERT_TRUE(r.finish());
    ASSERT_EQ(c.headers.size(), 1U);
    EXPECT_EQ(c.headers[0].width, 100);
    EXPECT_EQ(c.headers[0].height, 30);
    EXPECT_EQ(c.headers[0].raw["hoop"]["session"], 7);
    ASSERT_EQ(c.events.size(), 3U);
    EXPECT_EQ(c.events[0].data, "hello\r\n");
    EXPECT_EQ(c.events[1].kind, 'r');
    EXPECT_DOUBLE_EQ(c.events[1].time, 1.25);
    EXPECT_EQ(c.events[2].data, "\xc3\xa9\x1b[0m");
  }
}

TEST(CastReader, RefusesWhatIsNotAsciicastV2WithTheLineNumber) {
  for (const char* bad : {"not json\n", "{\"version\": 1}\n", "[1, \"o\", \"x\"]\n"}) {
    Collected c;
    auto r = c.reader();
    auto st = r.feed(bad);
    ASSERT_FALSE(st) << bad;
    EXPECT_NE(st.error().message.find("line 1"), std::string::npos) << st.error().message;
  }
  Collected c;
  auto r = c.reader();
  ASSERT_TRUE(r.feed("{\"version\": 2}\n"));
  for (const char* bad : {"[\"x\", \"o\", \"y\"]\n", "[1, \"oo\", \"y\"]\n", "[-1, \"o\", \"y\"]\n", "{}\n"}) {
    auto st = r.feed(bad);
    EXPECT_FALSE(st) << bad;
  }
}

TEST(CastReader, OverlongLineIsAnErrorNotUnboundedMemory) {
  Collected c;
  auto r = c.reader();
  ASSERT_TRUE(r.feed("{\"version\": 2}\n[1, \"o\", \""));
  const std::string chunk(1 << 20, 'a');
  Status st;
  for (int i = 0; i < 10 && st; ++i) st = r.feed(chunk);
  EXPECT_FALSE(st);
}

}  // namespace
}  // namespace hoop::transcript
