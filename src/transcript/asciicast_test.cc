#include "transcript/asciicast.h"

#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "transcript/test_text.h"

namespace hoop::transcript {
namespace {

// Decodes our event lines back into (kind, text) and checks each is JSON.
std::string replay(const std::string& lines, char kind) {
  std::string got;
  size_t start = 0;
  while (start < lines.size()) {
    const size_t nl = lines.find('\n', start);
    EXPECT_NE(nl, std::string::npos);
    auto ev = nlohmann::json::parse(lines.substr(start, nl - start));
    EXPECT_TRUE(ev.is_array() && ev.size() == 3) << ev.dump();
    EXPECT_TRUE(ev[0].is_number());
    if (ev[1].get<std::string>() == std::string(1, kind)) got += ev[2].get<std::string>();
    start = nl + 1;
  }
  return got;
}

std::string encode_whole(std::string_view in) {
  CastEncoder e;
  std::string out;
  e.event(1, 'o', in, out);
  e.finish(2, out);
  return replay(out, 'o');
}

TEST(Asciicast, HeaderCarriesMetadataAndDefaultsWithoutTerminal) {
  SessionHeader h;
  h.timestamp = 1700000000;
  h.term = "xterm";
  h.shell = "/bin/bash";
  h.session = "s1";
  h.request = "r1";
  h.argv = {"ls", "-l", "bad\xff"};
  h.tty = false;
  const std::string line = cast_header_line(h);
  ASSERT_EQ(line.back(), '\n');
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["width"], 80);
  EXPECT_EQ(j["height"], 24);
  EXPECT_EQ(j["timestamp"], 1700000000);
  EXPECT_EQ(j["env"]["TERM"], "xterm");
  EXPECT_EQ(j["hoop"]["session"], "s1");
  EXPECT_EQ(j["hoop"]["argv"][2], "bad\xef\xbf\xbd");
  EXPECT_EQ(j["hoop"]["tty"], false);
  h.width = 132;
  h.height = 50;
  EXPECT_EQ(nlohmann::json::parse(cast_header_line(h))["width"], 132);
}

TEST(Asciicast, EventsTimeAndEscapes) {
  CastEncoder e;
  std::string out;
  e.event(1'500'000, 'o', "a\"b\\c\n\x1b[0m\x7f", out);
  EXPECT_EQ(out, "[1.500000, \"o\", \"a\\\"b\\\\c\\n\\u001b[0m\x7f\"]\n");
  out.clear();
  e.event(12, 'i', "ls\r", out);
  CastEncoder::resize(3'000'001, 100, 40, out);
  EXPECT_EQ(out, "[0.000012, \"i\", \"ls\\r\"]\n[3.000001, \"r\", \"100x40\"]\n");
}

TEST(Asciicast, InvalidBytesBecomeReplacementCharacters) {
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(encode_whole("a\xff"
                         "b"),
            "a" + fffd + "b");
  EXPECT_EQ(encode_whole("\xc0\x80"), fffd + fffd);                        // overlong
  EXPECT_EQ(encode_whole("\xed\xa0\x80"), fffd + fffd + fffd);             // surrogate
  EXPECT_EQ(encode_whole("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // > U+10FFFF
  EXPECT_EQ(encode_whole("\xe2\x9c"
                         "x"),
            fffd + "x");                                     // truncated, one U+FFFD
  EXPECT_EQ(encode_whole("end\xf0\x9f\x98"), "end" + fffd);  // cut off by the end
}

TEST(Asciicast, Utf8SplitAtEveryPosition) {
  const std::string text =
      "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 bad\xff\xe2\x9c ok\xed\xa0\x80 \"q\" \x1b";
  const std::string want = encode_whole(text);
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      CastEncoder e;
      std::string out;
      e.event(1, 'o', std::string_view(text).substr(0, i), out);
      e.event(2, 'o', std::string_view(text).substr(i, j - i), out);
      e.event(3, 'o', std::string_view(text).substr(j), out);
      e.finish(4, out);
      ASSERT_EQ(replay(out, 'o'), want) << "split at " << i << "," << j;
    }
  }
  EXPECT_NE(want.find("\xf0\x9f\x98\x80"), std::string::npos);
}

TEST(Asciicast, StreamsCarrySeparately) {
  CastEncoder e;
  std::string out;
  e.event(1, 'o', "\xe2\x9c", out);
  e.event(2, 'i', "\xc3", out);
  EXPECT_EQ(out, "");  // both carried
  e.event(3, 'o', "\x93", out);
  e.event(4, 'i', "\xa9", out);
  EXPECT_EQ(replay(out, 'o'), "\xe2\x9c\x93");
  EXPECT_EQ(replay(out, 'i'), "\xc3\xa9");
}

// asciinema opens /dev/tty, so it runs on a pty of ours in raw mode (no
// \n -> \r\n) and we read back exactly what it printed.
TEST(Asciicast, AsciinemaCatReproducesTheBytes) {
  if (access("/usr/bin/asciinema", X_OK) != 0)
    GTEST_SKIP() << "asciinema is not installed (apt install asciinema)";
  char path[] = "/tmp/hoop-cast-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::string original = "hello \x1b[1;31mred\x1b[0m \"quoted\" back\\slash\ttab\r\n" +
                               std::string("caf\xc3\xa9 \xf0\x9f\x98\x80 ") + test::ordinary_text(3000) +
                               "\r\nbell\x07 end\r\n";
  SessionHeader h;
  h.width = 100;
  h.height = 30;
  h.timestamp = 1700000000;
  std::string cast = cast_header_line(h);
  CastEncoder e;
  for (size_t off = 0, t = 0; off < original.size(); off += 77, t += 1000)  // cuts characters too
    e.event(t, 'o', std::string_view(original).substr(off, 77), cast);
  CastEncoder::resize(99'000, 120, 40, cast);
  e.finish(100'000, cast);
  std::ofstream(path) << cast;

  struct termios raw {};
  cfmakeraw(&raw);
  struct winsize ws {};
  ws.ws_col = 100;
  ws.ws_row = 30;
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, &raw, &ws);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/usr/bin/asciinema", "asciinema", "cat", path, static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string got;
  char buf[4096];
  for (int i = 0; i < 100000; ++i) {  // until EIO: the child closed the pty
    const ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  close(master);
  int status = 0;
  waitpid(pid, &status, 0);
  unlink(path);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << " output: " << got.substr(0, 300);
  EXPECT_EQ(got, original);
}

TEST(CastBench, EncodeHundredMegabytes) {
  const std::string chunk = test::ordinary_text(size_t{64} * 1024);
  const size_t total = size_t{100} << 20;
  CastEncoder e;
  std::string out;
  size_t outsz = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t done = 0; done < total; done += chunk.size()) {
    out.clear();
    e.event(done, 'o', chunk, out);
    outsz += out.size();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[bench] asciicast encode: %.0f MB/s over 100 MiB\n", static_cast<double>(total) / 1e6 / s);
  EXPECT_GT(outsz, total);

  // The alternative we measured against (see asciicast.cc).
  const size_t nl_total = size_t{20} << 20;
  t0 = std::chrono::steady_clock::now();
  size_t nl_out = 0;
  for (size_t done = 0; done < nl_total; done += chunk.size()) {
    nlohmann::json j = chunk;
    nl_out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
  }
  s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[bench] nlohmann dump (replace): %.0f MB/s over 20 MiB\n",
              static_cast<double>(nl_total) / 1e6 / s);
  EXPECT_GT(nl_out, nl_total);
}

}  // namespace
}  // namespace hoop::transcript
