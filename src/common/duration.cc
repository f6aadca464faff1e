#include "common/duration.h"

#include <cstdint>

namespace hoop {

using std::chrono::milliseconds;

Result<milliseconds> parse_duration(std::string_view s) {
  if (s.empty()) return make_error(Errc::invalid_argument, "empty duration");
  constexpr int64_t kMax = 365LL * 24 * 3600 * 1000;
  int64_t total = 0;
  size_t i = 0;
  bool any = false;
  while (i < s.size()) {
    if (s[i] < '0' || s[i] > '9')
      return make_error(Errc::invalid_argument,
                        "bad duration '" + std::string(s) + "': expected a number like 15m, 1h30m or 45s");
    int64_t n = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      n = n * 10 + (s[i] - '0');
      if (n > kMax) return make_error(Errc::invalid_argument, "duration '" + std::string(s) + "' is too long");
      ++i;
    }
    size_t u = i;
    while (i < s.size() && ((s[i] >= 'a' && s[i] <= 'z'))) ++i;
    std::string_view unit = s.substr(u, i - u);
    int64_t mult = 0;
    if (unit == "ms") mult = 1;
    else if (unit == "s") mult = 1000;
    else if (unit == "m") mult = 60'000;
    else if (unit == "h") mult = 3'600'000;
    else if (unit == "d") mult = 86'400'000;
    else
      return make_error(Errc::invalid_argument,
                        "bad duration '" + std::string(s) + "': unit must be one of ms, s, m, h, d");
    total += n * mult;
    if (total > kMax) return make_error(Errc::invalid_argument, "duration '" + std::string(s) + "' is too long");
    any = true;
  }
  if (!any) return make_error(Errc::invalid_argument, "empty duration");
  return milliseconds(total);
}

std::string format_duration(milliseconds d) {
  int64_t ms = d.count();
  if (ms < 0) ms = 0;
  if (ms < 1000 && ms != 0) return std::to_string(ms) + "ms";
  int64_t s = ms / 1000;
  if (s == 0) return "0s";
  std::string out;
  const int64_t days = s / 86400, hours = s % 86400 / 3600, mins = s % 3600 / 60, secs = s % 60;
  if (days) out += std::to_string(days) + "d";
  if (hours) out += std::to_string(hours) + "h";
  if (mins) out += std::to_string(mins) + "m";
  if (secs) out += std::to_string(secs) + "s";
  return out;
}

}  // namespace hoop
