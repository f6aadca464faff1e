// Where hoop-shell's command comes from. Pure.

#include "shell/invocation.h"

#include <optional>

#include "common/escape.h"
#include "shell/lexer.h"

namespace hoop::shell {
namespace {

std::string_view base_name(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

Invocation usage(std::string why) {
  Invocation inv;
  inv.mode = Mode::usage_error;
  inv.error = std::move(why);
  return inv;
}

// True when `command` only starts hoop-shell again (ForceCommand run by a
// login shell that is hoop-shell); sets `login_session` when it asks for it.
bool is_self_invocation(const std::string& command, std::string_view self_path, bool& login_session) {
  auto words = split_words(command);
  if (!words || words->empty()) return false;
  const std::string& w0 = (*words)[0];
  if (w0 != self_path && base_name(w0) != "hoop-shell" && base_name(w0) != base_name(self_path)) return false;
  bool ls = false;
  for (size_t i = 1; i < words->size(); ++i) {
    if ((*words)[i] != "--login-session") return false;
    ls = true;
  }
  login_session = login_session || ls;
  return true;
}

}  // namespace

Invocation plan_invocation(const std::vector<std::string>& args, const char* ssh_original_command,
                           std::string_view self_path, bool have_terminal) {
  bool login_session = false;
  std::optional<std::string> command;
  for (size_t i = 0; i < args.size() && !command; ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") return Invocation{Mode::help, "", ""};
    if (a == "--version") return Invocation{Mode::version, "", ""};
    if (a == "--login-session") {
      login_session = true;
      continue;
    }
    if (a == "--login") continue;
    if (a.size() >= 2 && a[0] == '-' && a[1] != '-' && a.find_first_not_of("lic", 1) == std::string::npos) {
      if (a.find('c') == std::string::npos) continue;  // -l, -i: what a login shell is anyway
      if (i + 1 >= args.size()) return usage(a + " needs a command");
      command = args[i + 1];
      break;
    }
    return usage("unknown option " + quote_arg(a) + " (see hoop-shell --help)");
  }
  if (command && !is_self_invocation(*command, self_path, login_session))
    return Invocation{Mode::command, *command, ""};
  if (ssh_original_command != nullptr && *ssh_original_command != '\0')
    return Invocation{Mode::command, ssh_original_command, ""};
  if (login_session) return Invocation{Mode::login_session, "", ""};
  if (have_terminal) return Invocation{Mode::interactive, "", ""};
  return Invocation{Mode::no_terminal, "", ""};
}

}  // namespace hoop::shell
