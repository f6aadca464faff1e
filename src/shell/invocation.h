#pragma once
// How hoop-shell was started, and so where its command comes from. Pure.
//
// sshd starts a login shell as `hoop-shell -c COMMAND` when the client
// passed a command, and as `-hoop-shell` (no arguments) otherwise. Under
// `ForceCommand hoop-shell [--login-session]` sshd runs the user's login
// shell with `-c "hoop-shell [--login-session]"` and puts the client's
// command in SSH_ORIGINAL_COMMAND; when that login shell is hoop-shell too,
// the -c string names hoop-shell itself, which is recognised here.

#include <string>
#include <string_view>
#include <vector>

namespace hoop::shell {

enum class Mode {
  help,           // --help
  version,        // --version
  usage_error,    // `error` says why
  command,        // run `command` (one line) and leave
  interactive,    // a prompt on the terminal
  login_session,  // the whole session as one `hoopctl run` of the login shell
  no_terminal,    // no command and no terminal: nothing sensible to do
};

struct Invocation {
  Mode mode = Mode::usage_error;
  std::string command;  // Mode::command
  std::string error;    // Mode::usage_error
};

/// `args` are argv[1..] (argv[0] is ignored: a leading '-' only marks a
/// login shell). Accepted: -c COMMAND (later arguments are ignored, as sh
/// takes them for $0...), --login-session, and the -l, -i, --login flags
/// other programs give shells; short flags combine ("-lc"). `self_path` is
/// this program's absolute path; a -c string that is only this program
/// (by path or by the name hoop-shell), optionally with --login-session, is
/// the ForceCommand shape. `ssh_original_command` may be null.
Invocation plan_invocation(const std::vector<std::string>& args, const char* ssh_original_command,
                           std::string_view self_path, bool have_terminal);

}  // namespace hoop::shell
