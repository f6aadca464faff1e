#include "transcript/mask.h"

#include <gtest/gtest.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "transcript/test_text.h"

namespace hoop::transcript {
namespace {

Masker make(const std::vector<std::string>& extra = {}) {
  auto m = Masker::create(extra);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return std::move(m).value();
}

std::string mask_all(std::string_view in, const std::vector<std::string>& extra = {}) {
  Masker m = make(extra);
  std::string out;
  m.feed(in, out);
  m.finish(out);
  return out;
}

size_t count(std::string_view hay, std::string_view needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string_view::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

const std::string kKey =
    "-----BEGIN RSA PRIVATE KEY-----\r\nMIIEpAIBAAKCAQEAsecretsecret\r\nQUJDREVGR0g=\r\n"
    "-----END RSA PRIVATE KEY-----";

TEST(Masker, BuiltinsMaskSecretsAndKeepNames) {
  EXPECT_EQ(mask_all("key: " + kKey + "\r\nafter"), "key: [hoop:masked]\r\nafter");
  EXPECT_EQ(mask_all("id AKIAABCDEFGHIJKLMNOP end"), "id [hoop:masked] end");
  EXPECT_EQ(mask_all("id ASIA0123456789ABCDEF\n"), "id [hoop:masked]\n");
  EXPECT_EQ(mask_all("password=hunter2 x"), "password=[hoop:masked] x");
  EXPECT_EQ(mask_all("DB_PASSWORD: 's3cr3t'"), "DB_PASSWORD: '[hoop:masked]'");
  EXPECT_EQ(mask_all("{\"api_key\": \"abc123\"}"), "{\"api_key\": \"[hoop:masked]\"}");
  EXPECT_EQ(mask_all("TOKEN=xyz&pwd=q"), "TOKEN=[hoop:masked]&pwd=[hoop:masked]");
  // Not secrets: a longer word, an id of the wrong length, a key of another kind.
  EXPECT_EQ(mask_all("mypassword=x AKIA123 passwords 3"), "mypassword=x AKIA123 passwords 3");
  EXPECT_EQ(mask_all("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----"),
            "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----");
  // END of another kind does not close the block; the end of stream masks it.
  EXPECT_EQ(mask_all("-----BEGIN EC PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\nmore"),
            "[hoop:masked]");
}

TEST(Masker, ExtraPatternsAndErrorsNameThePattern) {
  EXPECT_EQ(mask_all("ghp_abcdefABCDEF0123 done", {"ghp_[A-Za-z0-9]{16}"}), "[hoop:masked] done");
  auto bad = Masker::create({"ok", "a(b"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("a(b"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("pattern 2"), std::string::npos) << bad.error().message;
  auto empty = Masker::create({"x*"});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("empty string"), std::string::npos);
  // (*UTF) cannot turn invalid bytes into match errors.
  auto utf = Masker::create({"(*UTF)zz"});
  EXPECT_FALSE(utf.ok());
}

TEST(Masker, SecretSplitAtEveryBytePosition) {
  const std::string text = "start password=hunter2 mid AKIAABCDEFGHIJKLMNOP then\r\n" + kKey +
                           "\r\ntoken: 'abc' ghp_abcdefABCDEF0123 end";
  const std::vector<std::string> extra = {"ghp_[A-Za-z0-9]{16}"};
  const std::string want = mask_all(text, extra);
  EXPECT_EQ(count(want, Masker::kMarker), 5u) << want;
  EXPECT_EQ(want.find("hunter2"), std::string::npos);
  EXPECT_EQ(want.find("secret"), std::string::npos);
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); j += 7) {  // three pieces: [0,i) [i,j) [j,end)
      Masker m = make(extra);
      std::string out;
      m.feed(std::string_view(text).substr(0, i), out);
      m.feed(std::string_view(text).substr(i, j - i), out);
      m.feed(std::string_view(text).substr(j), out);
      m.finish(out);
      ASSERT_EQ(out, want) << "split at " << i << "," << j;
    }
  }
  Masker m = make(extra);  // one byte at a time
  std::string out;
  for (char c : text) m.feed(std::string_view(&c, 1), out);
  m.finish(out);
  EXPECT_EQ(out, want);
}

// The masker looks for the assignment pattern only where a separator follows
// a name (or at the tail, for a partial match). Differential check against
// plain PCRE2 over the whole text, on random texts built from the tokens that
// matter (names in any case, near misses, quotes, spaces, separators, value
// stops), fed in random pieces.
TEST(Masker, AssignmentShortcutAgreesWithTheRegex) {
  const char* pattern =  // the built-in, as in mask.cc
      R"((?i)(?<![a-z0-9])(?:password|passwd|pwd|secret|token|api[_-]?key)["']?\s*[=:]\s*["']?\K[^\s"'&;,]+)";
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                 PCRE2_NEVER_UTF, &err, &off, nullptr);
  ASSERT_NE(re, nullptr);
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  auto reference = [&](const std::string& text) {
    std::string out;
    size_t pos = 0;
    for (;;) {
      const int rc =
          pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos, 0, md, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      out.append(text, pos, ov[0] - pos);
      out.append(Masker::kMarker);
      pos = ov[1];
    }
    out.append(text, pos);
    return out;
  };
  const std::vector<std::string> tokens = {
      "password", "PASSWORD", "Passwd", "pwd",     "pWd",        "secret", "SECRET",    "token", "Token",
      "api_key",  "API-KEY",  "apikey", "api key", "mypassword", "xpwd",   "passwords", "tok",   "pass",
      "=",        "=",        ":",      ":",       " ",          "  ",     "\t",        "\r\n",  "\n",
      "'",        "\"",       "abc",    "s3cr3t",  "42",         ",",      "&",         ";",     "]",
      "_",        "-",        "9",      "a",       "Z",          "ke",     "y"};
  std::mt19937 rng(20261123);
  std::uniform_int_distribution<size_t> pick(0, tokens.size() - 1), len(1, 60), piece(1, 40);
  size_t masked = 0;
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    for (size_t n = len(rng); n > 0; --n) text += tokens[pick(rng)];
    const std::string want = reference(text);
    masked += count(want, Masker::kMarker);
    Masker m = make();
    std::string out;
    for (size_t at = 0; at < text.size();) {
      const size_t n = std::min(piece(rng), text.size() - at);
      m.feed(std::string_view(text).substr(at, n), out);
      at += n;
    }
    m.finish(out);
    ASSERT_EQ(out, want) << "text: " << text;
  }
  EXPECT_GT(masked, 500u);  // the texts did exercise the pattern
  pcre2_match_data_free(md);
  pcre2_code_free(re);
}

TEST(Masker, HoldBackIsBoundedAndFailsClosed) {
  Masker m = make();
  std::string out;
  m.feed("before -----BEGIN RSA PRIVATE KEY-----\n", out);
  EXPECT_EQ(out, "before ");
  const std::string line(1000, 'Q');
  for (int i = 0; i < 100; ++i) {
    m.feed(line, out);
    ASSERT_LE(m.held(), Masker::kMaxHoldBack);
  }
  m.finish(out);
  // No key material passed unmasked while it was held: what came out is the
  // marker, then at most what followed a masked hold.
  EXPECT_EQ(out.compare(0, 7 + Masker::kMarker.size(), "before [hoop:masked]"), 0);
  EXPECT_LT(out.size(), 100'000u);
}

TEST(Masker, OrdinaryTextPassesUnchanged) {
  const std::string text = test::ordinary_text(1 << 20);
  Masker m = make();
  std::string out;
  for (size_t off = 0; off < text.size(); off += 4093) m.feed(std::string_view(text).substr(off, 4093), out);
  m.finish(out);
  EXPECT_EQ(out, text);
}

TEST(MaskerBench, HundredMegabytes) {
  const std::string chunk = test::ordinary_text(size_t{64} * 1024);
  Masker m = make({"ghp_[A-Za-z0-9]{36}"});
  std::string out;
  const size_t total = size_t{100} << 20;
  const auto t0 = std::chrono::steady_clock::now();
  size_t outsz = 0;
  for (size_t done = 0; done < total; done += chunk.size()) {
    out.clear();
    m.feed(chunk, out);
    outsz += out.size();
  }
  m.finish(out);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[bench] mask: %.0f MB/s over 100 MiB of text (built-ins + 1 policy pattern)\n",
              static_cast<double>(total) / 1e6 / s);
  EXPECT_GT(outsz, total / 2);
}

}  // namespace
}  // namespace hoop::transcript
