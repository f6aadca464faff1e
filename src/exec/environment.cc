// Who the approved command runs as (lookup_target) and what environment it
// sees (build_environment). The command.h contracts for both live here so
// that command.cc is only about the executable.
// MUST: take the target from a user NAME in the password database; never a
//       uid given by the caller (sudo's '#-1' bug, CVE-2019-14287).
// MUST: build the environment from scratch: an allow-list with validated
//       values, then fixed variables. Deny by default: an unknown variable
//       never passes, whatever its name looks like.
// MUST NOT: let a value carry control characters, a locale or zone path
//       outside the system directories, or a relative PATH entry.
// build_environment is pure: no system calls, trivially testable.

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "common/escape.h"
#include "exec/command.h"

namespace hoop::exec {
namespace {

constexpr size_t kMaxUserName = 255;
constexpr size_t kMaxValue = 1024;

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

bool is_term_char(char c) {
  return is_name_char(c) || c == '+';
}

bool all_of(std::string_view s, bool (*pred)(char)) {
  for (char c : s)
    if (!pred(c)) return false;
  return true;
}

// Locale values name files under the system locale directories; '/' or '..'
// would let the caller make a root program load locale data (format strings)
// from a directory they control.
bool clean_locale(std::string_view v) {
  return v.find('/') == std::string_view::npos && v.find("..") == std::string_view::npos;
}

// TZ may name a zone under the system zoneinfo directory ("UTC",
// "Europe/Berlin", ":Etc/GMT+5"), never an absolute path or one with '..',
// which would read an arbitrary file as a zone.
bool clean_tz(std::string_view v) {
  if (!v.empty() && v[0] == ':') v.remove_prefix(1);
  if (v.empty() || v.size() > 128 || v[0] == '/') return false;
  if (v.find("..") != std::string_view::npos || v.find("//") != std::string_view::npos) return false;
  return all_of(v, [](char c) { return is_term_char(c) || c == '/'; });
}

bool is_lc_name(std::string_view n) {
  if (n.size() <= 3 || n.substr(0, 3) != "LC_") return false;
  return all_of(n.substr(3), [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; });
}

// Whether NAME=VALUE from the caller may pass. Unknown names never do.
bool allowed(std::string_view name, std::string_view value) {
  if (value.size() > kMaxValue || !is_clean_text(value)) return false;
  if (name == "TERM") return !value.empty() && value.size() <= 64 && all_of(value, is_term_char);
  if (name == "COLORTERM") return value.size() <= 64 && all_of(value, is_term_char);
  if (name == "LANG" || name == "LANGUAGE" || is_lc_name(name)) return clean_locale(value);
  if (name == "TZ") return clean_tz(value);
  if (name == "NO_COLOR") return true;
  return false;
}

// Only absolute entries: an empty or relative one means "the cwd", where
// the caller may have planted a program.
std::string absolute_path_entries(std::string_view path) {
  std::string out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find(':', i);
    if (j == std::string_view::npos) j = path.size();
    const std::string_view dir = path.substr(i, j - i);
    i = j + 1;
    if (dir.empty() || dir[0] != '/') continue;
    if (!out.empty()) out += ':';
    out += dir;
  }
  return out;
}

}  // namespace

Result<Target> lookup_target(std::string_view spec) {
  const std::string shown = quote_arg(spec);
  if (spec.empty()) return make_error(Errc::invalid_argument, "empty run-as user name");
  if (spec[0] == '#')
    return make_error(Errc::invalid_argument,
                      "refusing run-as user " + shown + ": uid syntax is not supported: give a user name");
  if (all_of(spec, [](char c) { return c >= '0' && c <= '9'; }))
    return make_error(Errc::invalid_argument,
                      "refusing run-as user " + shown + ": it is a number; give a user name, not a uid");
  std::string_view body = spec;
  if (body.back() == '$') body.remove_suffix(1);  // Samba machine accounts
  if (body.empty() || spec.size() > kMaxUserName || spec[0] == '-' || !all_of(body, is_name_char))
    return make_error(Errc::invalid_argument,
                      "refusing run-as user " + shown +
                          ": invalid user name (letters, digits, '.', '_', '-', not starting with '-')");

  const std::string name(spec);
  const long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  size_t size = hint > 0 ? static_cast<size_t>(hint) : 4096;
  constexpr size_t kMaxBuffer = 1 << 20;  // a broken NSS module must not make us allocate forever
  for (;;) {
    std::string buf(size, '\0');
    struct passwd pw {};
    struct passwd* found = nullptr;
    const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && size < kMaxBuffer) {
      size *= 2;
      continue;
    }
    if (rc != 0) return make_error(Errc::io, "cannot look up user " + shown + ": " + std::strerror(rc));
    if (found == nullptr) return make_error(Errc::not_found, "unknown run-as user " + shown);
    Target t;
    t.uid = pw.pw_uid;
    t.gid = pw.pw_gid;
    // The database's spelling: an NSS module may match names loosely.
    t.name = pw.pw_name != nullptr ? pw.pw_name : "";
    t.home = pw.pw_dir != nullptr && pw.pw_dir[0] == '/' ? pw.pw_dir : "/";
    t.shell = pw.pw_shell != nullptr && pw.pw_shell[0] == '/' ? pw.pw_shell : "/bin/sh";
    if (t.name != name)
      return make_error(Errc::invalid_argument, "run-as user " + shown + " is spelled " + quote_arg(t.name) +
                                                    " in the password database");
    return t;
  }
}

std::vector<std::string> build_environment(const std::vector<std::string>& caller_env, const Target& target,
                                           std::string_view secure_path, std::string_view caller_name,
                                           uid_t caller_uid, int64_t request_id) {
  std::vector<std::string> env;
  std::set<std::string, std::less<>> seen;
  for (const std::string& entry : caller_env) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    const std::string_view name(entry.data(), eq);
    // The first occurrence is the one getenv() sees; a later duplicate must
    // not sneak a different value past a check of the first.
    if (!seen.emplace(name).second) continue;
    if (allowed(name, std::string_view(entry).substr(eq + 1))) env.push_back(entry);
  }
  env.push_back("PATH=" + absolute_path_entries(secure_path));
  env.push_back("HOME=" + target.home);
  env.push_back("SHELL=" + target.shell);
  env.push_back("USER=" + target.name);
  env.push_back("LOGNAME=" + target.name);
  env.push_back("HOOP_USER=" + std::string(caller_name));
  env.push_back("HOOP_UID=" + std::to_string(caller_uid));
  env.push_back("HOOP_REQUEST_ID=" + std::to_string(request_id));
  return env;
}

}  // namespace hoop::exec
