#pragma once
// Durations as people write them in configs and flags: "90s", "15m", "1h30m",
// "2d". Bare numbers are refused: the unit is never guessed.

#include <chrono>
#include <string>
#include <string_view>

#include "common/error.h"

namespace hoop {

using Seconds = std::chrono::seconds;

/// Parses "1h30m", "15m", "45s", "500ms", "2d". Rejects empty, negative,
/// bare numbers, unknown units and values over 365 days.
Result<std::chrono::milliseconds> parse_duration(std::string_view s);

/// Formats as the shortest of "1h30m", "45s", "2d3h".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace hoop
