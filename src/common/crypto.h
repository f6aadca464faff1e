#pragma once
// Hashing, randomness and constant-time comparison through OpenSSL.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace hoop {

/// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// Incremental SHA-256. Like sha256_hex it aborts when OpenSSL cannot
/// allocate its context: a wrong digest would be worse than none.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view data);
  /// Lowercase hex of everything given so far; starts over afterwards.
  std::string final_hex();

 private:
  ::evp_md_ctx_st* ctx_;
};

/// SHA-256 of the first `length` bytes of `fd` (all of it when nullopt),
/// read with pread so the descriptor's position does not matter. Errors
/// name `what` (a path for people).
Result<std::string> sha256_fd(int fd, const std::string& what, std::optional<uint64_t> length = std::nullopt);

/// Lowercase hex of `n` bytes.
std::string to_hex(const unsigned char* p, size_t n);

/// Lowercase hex of `n` bytes from the OpenSSL CSPRNG. Fails closed.
Result<std::string> random_hex(size_t n);

/// Constant-time equality for secrets of equal length (false when lengths
/// differ; the length itself is not secret for our fixed-size hashes).
bool secure_equal(std::string_view a, std::string_view b);

/// True when `s` is exactly 64 lowercase hex digits.
bool is_sha256_hex(std::string_view s);

}  // namespace hoop
