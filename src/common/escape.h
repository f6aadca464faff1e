#pragma once
// Escaping of strings that came from another person (argv, reasons,
// comments, names) before they reach a terminal: a crafted request MUST NOT
// be able to move the cursor, retitle the window, hide text or reorder it.

#include <string>
#include <string_view>
#include <vector>

namespace hoop {

/// Returns `s` with every C0/C1 control, DEL, invalid UTF-8 byte and
/// bidirectional-override code point replaced by a visible escape
/// (`\n`, `\t`, `\x1b`, `\u202e`, ...). A backslash becomes `\\` so the
/// output is unambiguous. Printable UTF-8 passes through unchanged.
std::string escape_for_terminal(std::string_view s);

/// Quotes one argv element for display the way a shell user reads it: bare
/// when it is made only of safe characters, otherwise in single quotes, with
/// escape_for_terminal applied inside either way.
std::string quote_arg(std::string_view s);

/// Joins argv for display with quote_arg.
std::string format_argv(const std::vector<std::string>& argv);

/// True when `s` holds no control characters (C0, DEL, C1) and is valid UTF-8.
/// Used to reject one-line fields such as names, reasons and comments.
bool is_clean_text(std::string_view s);

/// True when `s` is valid UTF-8 (no overlongs, no surrogates).
bool is_valid_utf8(std::string_view s);

}  // namespace hoop
