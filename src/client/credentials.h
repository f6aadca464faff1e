#pragma once
// A reviewer's personal bearer token (HOOP_TOKEN or ~/.config/hoop/token).
// MUST: read a personal token only after privilege is dropped, and only
//       from a file the caller owns that nobody else can read.
// MUST NOT: put any part of the secret into an error message.

#include <string>
#include <string_view>

#include "common/error.h"
#include "sys/privilege.h"

namespace hoop::client {

/// Largest token file we read; a real token is 86 bytes plus a newline.
inline constexpr size_t kMaxTokenFileBytes = 4096;

/// True when `t` is exactly `hoop_<16 lowercase hex>_<64 lowercase hex>`.
bool is_valid_token_shape(std::string_view t);

/// Where a caller's personal token file lives: <home>/.config/hoop/token,
/// with home from the password database (never $HOME).
std::string personal_token_path(const sys::Caller& caller);

/// The personal token: `env_token` (the value of HOOP_TOKEN, or nullptr when
/// unset) wins when non-empty; otherwise the caller's token file, read with
/// sys::read_private_file. Whitespace around the token is trimmed; the shape
/// is checked. Errors say how to get or fix a token.
Result<std::string> load_personal_token(const char* env_token, const sys::Caller& caller);

}  // namespace hoop::client
