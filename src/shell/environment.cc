// The allow-list for hoopctl's environment. Pure.

#include "shell/environment.h"

#include <algorithm>
#include <string_view>

#include "common/escape.h"

namespace hoop::shell {
namespace {

constexpr size_t kMaxValueBytes = 256;
constexpr std::string_view kNames[] = {"TERM", "COLORTERM", "LANG", "LANGUAGE", "TZ", "NO_COLOR"};

bool allowed_name(std::string_view name) {
  if (std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames)) return true;
  if (!name.starts_with("LC_") || name.size() == 3) return false;
  return name.substr(3).find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == std::string_view::npos;
}

}  // namespace

std::vector<std::string> hoopctl_environment(const std::vector<std::string>& env) {
  std::vector<std::string> out;
  std::vector<std::string_view> seen;
  for (const auto& e : env) {
    const size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    const std::string_view name(e.data(), eq);
    const std::string_view value = std::string_view(e).substr(eq + 1);
    if (!allowed_name(name) || value.size() > kMaxValueBytes || !is_clean_text(value)) continue;
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) continue;
    seen.push_back(name);
    out.push_back(e);
  }
  return out;
}

}  // namespace hoop::shell
