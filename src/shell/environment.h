#pragma once
// The environment hoop-shell hands to hoopctl: an allow-list of what
// `hoopctl run` itself keeps (terminal type and locale), nothing else.
// MUST NOT: pass anything else the user's session holds (LD_*, PATH, HOME,
//       HOOP_*, SSH_AUTH_SOCK, ...): hoopctl is setuid and clears its
//       environment anyway, but nothing the user set should even reach it.

#include <string>
#include <vector>

namespace hoop::shell {

/// The entries of `env` ("NAME=value") named TERM, COLORTERM, LANG,
/// LANGUAGE, LC_*, TZ or NO_COLOR whose value is one line of clean text of
/// at most 256 bytes; the first of duplicates wins.
std::vector<std::string> hoopctl_environment(const std::vector<std::string>& env);

}  // namespace hoop::shell
