#include <gtest/gtest.h>

#include "common/crypto.h"
#include "common/duration.h"
#include "common/escape.h"

namespace hoop {
namespace {

using std::chrono::milliseconds;

TEST(Escape, PrintableTextPassesThrough) {
  EXPECT_EQ(escape_for_terminal("systemctl restart nginx"), "systemctl restart nginx");
  EXPECT_EQ(escape_for_terminal("grüße ✓"), "grüße ✓");
}

TEST(Escape, ControlsAndEscapeSequencesBecomeVisible) {
  EXPECT_EQ(escape_for_terminal("a\nb\tc\r"), "a\\nb\\tc\\r");
  EXPECT_EQ(escape_for_terminal("\x1b[2J\x1b]0;pwned\x07"), "\\x1b[2J\\x1b]0;pwned\\x07");
  EXPECT_EQ(escape_for_terminal("\x7f"), "\\x7f");
  EXPECT_EQ(escape_for_terminal("back\\slash"), "back\\\\slash");
}

TEST(Escape, C1ControlsBidiAndInvalidUtf8) {
  EXPECT_EQ(escape_for_terminal("\xc2\x9b" "31m"), "\\u009b31m");          // CSI as C1
  EXPECT_EQ(escape_for_terminal("abc\xe2\x80\xae" "fed"), "abc\\u202efed");  // RTL override
  EXPECT_EQ(escape_for_terminal("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(escape_for_terminal("\xc0\xaf"), "\\xc0\\xaf");                  // overlong '/'
  EXPECT_EQ(escape_for_terminal("\xed\xa0\x80"), "\\xed\\xa0\\x80");         // surrogate
  EXPECT_EQ(escape_for_terminal("\xe2\x82"), "\\xe2\\x82");                  // truncated
}

TEST(Escape, QuoteArg) {
  EXPECT_EQ(quote_arg("nginx"), "nginx");
  EXPECT_EQ(quote_arg(""), "''");
  EXPECT_EQ(quote_arg("two words"), "'two words'");
  EXPECT_EQ(quote_arg("it's"), "'it'\\''s'");
  EXPECT_EQ(quote_arg("x\ny"), "'x\\ny'");
  EXPECT_EQ(format_argv({"/bin/echo", "a b", "c"}), "/bin/echo 'a b' c");
}

TEST(Escape, CleanText) {
  EXPECT_TRUE(is_clean_text("deploy 1.2 – hotfix"));
  EXPECT_FALSE(is_clean_text("a\nb"));
  EXPECT_FALSE(is_clean_text("\x1b[31m"));
  EXPECT_FALSE(is_clean_text("\xff"));
  EXPECT_FALSE(is_clean_text("x\xe2\x80\xaey"));
  EXPECT_TRUE(is_valid_utf8("ok ✓"));
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST(Duration, Parses) {
  EXPECT_EQ(parse_duration("15m").value(), milliseconds(15 * 60 * 1000));
  EXPECT_EQ(parse_duration("1h30m").value(), milliseconds(90 * 60 * 1000));
  EXPECT_EQ(parse_duration("500ms").value(), milliseconds(500));
  EXPECT_EQ(parse_duration("2d").value(), milliseconds(2LL * 86400 * 1000));
}

TEST(Duration, RejectsHostileInput) {
  for (const char* s : {"", "15", "m", "-5m", "5x", "1h 30m", "99999999999999999999s", "366d", "5M"}) {
    auto r = parse_duration(s);
    EXPECT_FALSE(r.ok()) << s;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, Errc::invalid_argument);
    }
  }
}

TEST(Duration, Formats) {
  EXPECT_EQ(format_duration(milliseconds(90 * 60 * 1000)), "1h30m");
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(86400 * 1000 + 5000)), "1d5s");
}

TEST(Crypto, Sha256KnownAnswer) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(is_sha256_hex(sha256_hex("")));
  EXPECT_FALSE(is_sha256_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
}

TEST(Crypto, RandomAndCompare) {
  auto a = random_hex(32), b = random_hex(32);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->size(), 64u);
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(secure_equal("abc", "abc"));
  EXPECT_FALSE(secure_equal("abc", "abd"));
  EXPECT_FALSE(secure_equal("abc", "abcd"));
}

}  // namespace
}  // namespace hoop
