#pragma once
// Hashing, randomness and constant-time comparison through OpenSSL.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace hoop {

/// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// Lowercase hex of `n` bytes from the OpenSSL CSPRNG. Fails closed.
Result<std::string> random_hex(size_t n);

/// Constant-time equality for secrets of equal length (false when lengths
/// differ; the length itself is not secret for our fixed-size hashes).
bool secure_equal(std::string_view a, std::string_view b);

/// True when `s` is exactly 64 lowercase hex digits.
bool is_sha256_hex(std::string_view s);

}  // namespace hoop
