#pragma once
// Streaming secret masking for transcripts (issue 4): matches of the built-in
// patterns and of the policy's patterns are replaced by kMarker before bytes
// leave the monitor, also when a secret is split across two reads.
//
// MUST: mask a secret whatever the chunking of the stream (PCRE2 hard partial
//       matching holds back only a tail that may still become a match).
// MUST: keep memory bounded: at most kMaxHoldBack bytes are held back; a
//       would-be secret that grows past it is masked as a whole (fail closed).
// MUST: fail closed on a matcher error (the bytes concerned are masked).
// MUST NOT: change bytes that no pattern matches.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace hoop::transcript {

/// One Masker per stream (output, input); not thread-safe. Patterns are
/// PCRE2 syntax on bytes (no UTF mode). A pattern may use \K to keep a
/// prefix (the built-in assignment pattern keeps `password=`). Feed bytes in
/// order; what comes out is the same stream with matches replaced, possibly
/// later (a held tail comes out with the next feed or with finish()).
class Masker {
 public:
  static constexpr std::string_view kMarker = "[hoop:masked]";
  /// Past this many held-back bytes, the held part is masked and dropped.
  static constexpr size_t kMaxHoldBack = size_t{16} * 1024;

  /// Built-in patterns plus `extra` (from the policy). A pattern that does
  /// not compile or matches the empty string is an Error naming it.
  static Result<Masker> create(const std::vector<std::string>& extra = {});

  Masker(Masker&&) noexcept;
  Masker& operator=(Masker&&) noexcept;
  ~Masker();

  /// Appends to `out` the masked bytes that are certain so far.
  void feed(std::string_view in, std::string& out);
  /// End of stream: appends the held tail (a partial match is masked).
  void finish(std::string& out);
  /// Bytes currently held back (for tests and diagnostics).
  size_t held() const;
  /// Matcher errors met so far (each one masked its segment).
  uint64_t errors() const;

  struct Impl;

 private:
  explicit Masker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hoop::transcript
