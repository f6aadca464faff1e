#pragma once
// hoop-shell's lexer: one command line in, one argv out, or the reason it is
// refused. Pure: no system calls, no environment.
// MUST: treat every byte as hostile; refuse, naming the construct, anything
//       a POSIX shell would give a meaning beyond "these words": lists,
//       pipes, background jobs, redirections, substitutions, expansions,
//       globs, comments, subshells, line continuations, assignments.
// MUST NOT: expand anything. What a quote makes literal stays literal, and
//       that is the only way to pass a metacharacter as text.

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace hoop::shell {

/// Longest command line hoop-shell reads (hoopctl and hoopd refuse longer
/// argv anyway; this bounds the work on hostile input).
inline constexpr size_t kMaxLineBytes = 64 * 1024;

/// Splits `line` into words the way sh would for a simple command made only
/// of literal words: blanks (space, tab) separate words; '...' is literal;
/// "..." is literal except \" \\ \$ \` (and $ or ` unescaped, which are
/// refused because sh would expand them); \X outside quotes is X. An empty
/// quoted word ('' or "") is an empty argument. A line with only blanks
/// gives no words.
///
/// Errors (one line, naming the construct, e.g. "'|' (pipe) is not
/// allowed: ..."): Errc::permission_denied for a construct hoop-shell does
/// not allow, Errc::invalid_argument for malformed input (unterminated
/// quote, NUL or control bytes, invalid UTF-8, too long).
Result<std::vector<std::string>> split_words(std::string_view line);

}  // namespace hoop::shell
