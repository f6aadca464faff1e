// What each stage of the recorder costs per byte, alone and on one core:
// the masker (built-in patterns), the asciicast encoder and SHA-256, fed the
// way the relay feeds them (one pty read, 4095 bytes, at a time).
//   transcript_stages [FILE]   (default: 64 MiB of generated log-like text)
// Prints MB/s per stage; bench/RESULTS.md quotes it.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "common/crypto.h"
#include "transcript/asciicast.h"
#include "transcript/mask.h"
#include "transcript/test_text.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kRead = 4095;

template <typename F>
void stage(const char* name, const std::string& text, F&& f) {
  const auto t0 = Clock::now();
  size_t out = 0;
  for (size_t at = 0; at < text.size(); at += kRead) out += f(std::string_view(text).substr(at, kRead));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("%-28s %8.0f MB/s  %7.3f s  (%zu bytes out)\n", name,
              static_cast<double>(text.size()) / 1e6 / s, s, out);
}

}  // namespace

int main(int argc, char** argv) {
  std::string text;
  if (argc > 1) {
    std::ifstream f(argv[1], std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "transcript_stages: cannot read %s\n", argv[1]);
      return 2;
    }
    text.assign(std::istreambuf_iterator<char>(f), {});
  } else {
    text = hoop::transcript::test::ordinary_text(size_t{64} << 20);
  }
  std::printf("%zu bytes in reads of %zu\n", text.size(), kRead);
  auto m = hoop::transcript::Masker::create();
  if (!m) {
    std::fprintf(stderr, "transcript_stages: %s\n", m.error().message.c_str());
    return 1;
  }
  std::string out;
  stage("mask (built-ins)", text, [&](std::string_view s) {
    out.clear();
    m->feed(s, out);
    return out.size();
  });
  hoop::transcript::CastEncoder enc;
  stage("asciicast encode", text, [&](std::string_view s) {
    out.clear();
    enc.event(123456, 'o', s, out);
    return out.size();
  });
  hoop::Sha256 sha;
  stage("sha256", text, [&](std::string_view s) {
    sha.update(s);
    return s.size();
  });
  auto m2 = hoop::transcript::Masker::create();
  hoop::transcript::CastEncoder enc2;
  hoop::Sha256 sha2;
  std::string masked;
  stage("all three", text, [&](std::string_view s) {
    masked.clear();
    out.clear();
    m2->feed(s, masked);
    enc2.event(123456, 'o', masked, out);
    sha2.update(out);
    return out.size();
  });
  return 0;
}
