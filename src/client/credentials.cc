// A reviewer's personal token.
// MUST: run after sys::drop_privileges_permanently(): HOOP_TOKEN and the
//       token file are the caller's to choose.
// MUST NOT: echo the token, or any part of it, in a message.

#include "client/credentials.h"

#include <string.h>  // explicit_bzero

#include "common/escape.h"
#include "sys/secure_file.h"

namespace hoop::client {
namespace {

constexpr const char* kHowToGet = "ask an admin to run: hoopd token create --user ";

bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

Error bad_shape(const std::string& where, const sys::Caller& c) {
  return make_error(Errc::unauthenticated,
                    where + " does not hold a hoop token (expected hoop_<16 hex>_<64 hex>); " + kHowToGet +
                        escape_for_terminal(c.name));
}

}  // namespace

bool is_valid_token_shape(std::string_view t) {
  // hoop_ + 16 + _ + 64
  if (t.size() != 5 + 16 + 1 + 64) return false;
  if (t.substr(0, 5) != "hoop_" || t[21] != '_') return false;
  return is_lower_hex(t.substr(5, 16)) && is_lower_hex(t.substr(22));
}

std::string personal_token_path(const sys::Caller& caller) {
  return caller.home + "/.config/hoop/token";
}

Result<std::string> load_personal_token(const char* env_token, const sys::Caller& caller) {
  if (env_token != nullptr && *env_token != '\0') {
    const std::string_view t = trim(env_token);
    if (!is_valid_token_shape(t)) return bad_shape("HOOP_TOKEN", caller);
    return std::string(t);
  }
  const std::string path = personal_token_path(caller);
  auto text = sys::read_private_file(path, caller.uid, kMaxTokenFileBytes);
  if (!text) {
    if (text.error().code == Errc::not_found)
      return make_error(Errc::unauthenticated, "no personal token: set HOOP_TOKEN or save your token in " +
                                                   escape_for_terminal(path) + " (chmod 600); to get one, " +
                                                   kHowToGet + escape_for_terminal(caller.name));
    return text.error();
  }
  const std::string_view t = trim(*text);
  Result<std::string> out = is_valid_token_shape(t)
                                ? Result<std::string>(std::string(t))
                                : Result<std::string>(bad_shape(escape_for_terminal(path), caller));
  // The file text still holds the secret; do not leave it in freed memory.
  explicit_bzero(text->data(), text->size());
  return out;
}

}  // namespace hoop::client
