#pragma once
// hoopctl's sub-command table and exit statuses.
// MUST: a verb runs with root only when its table entry says keep_root; main
//       decides this from argv[1] alone, before any parsing, and drops
//       privilege for everything else (unknown verbs, --help, typos).

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>

#include "common/error.h"

namespace hoop::ctl {

// Exit statuses, documented in hoopctl(1) and the --help footer.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;        // refused by the server, local file problem, ...
inline constexpr int kExitUsage = 2;        // bad command line or input
inline constexpr int kExitUnreachable = 3;  // no usable answer from hoopd
inline constexpr int kExitDenied = 4;       // permission denied (separation of duties)
inline constexpr int kExitNotFound = 5;     // no such request (or not visible to you)

// Exit statuses of `hoopctl run`, which otherwise passes on the command's own
// status (128+N when it was killed by signal N). Kept high, as sudo and env
// do, so they rarely collide with a command's.
inline constexpr int kExitRunNoRecording = 118;  // record = "required" and hoopd cannot take the transcript
inline constexpr int kExitRunCancelled = 119;    // Ctrl-C/SIGTERM/SIGHUP while waiting, or cancelled
inline constexpr int kExitRunRefused = 120;      // hoop error or refused locally (unsafe file, ...)
inline constexpr int kExitRunUsage = 121;        // bad command line, unknown -u user
inline constexpr int kExitRunDenied = 122;       // denied by a reviewer or the policy
inline constexpr int kExitRunExpired = 123;      // request or grant expired
inline constexpr int kExitRunTimeout = 124;      // --timeout ran out (the request is cancelled)
inline constexpr int kExitRunUnreachable = 125;  // hoopd unreachable (offline = deny)
inline constexpr int kExitRunNotFound = 127;     // command not found or could not be executed

/// Whether a verb needs root. Values are far apart so that one flipped bit
/// cannot turn drop_first into keep_root.
enum class Privilege : uint32_t {
  drop_first = 0x5eed0d0bu,  // drop before parsing; every reviewer verb
  keep_root = 0xa113f2f4u,   // reserved for the verb that executes approved commands
  root_caller = 0x3c6e91a5u, // keeps root only when the real uid is root too (ship); else drop_first
};

/// What a verb does once its command line parsed: an exit status, or an
/// Error that main prints as one line and turns into a status.
using Runner = std::function<Result<int>()>;

/// One row of the table: `setup` declares the verb's flags on its CLI11
/// sub-app and returns the runner bound to them.
struct Command {
  const char* name;
  const char* summary;
  Privilege privilege;
  Runner (*setup)(CLI::App& sub);
};

// Reviewer verbs (cmd_review.cc).
Runner setup_list(CLI::App& sub);
Runner setup_show(CLI::App& sub);
Runner setup_approve(CLI::App& sub);
Runner setup_deny(CLI::App& sub);
Runner setup_cancel(CLI::App& sub);
Runner setup_whoami(CLI::App& sub);

// Session verbs for reviewers (cmd_sessions.cc).
Runner setup_sessions(CLI::App& sub);
Runner setup_replay(CLI::App& sub);
Runner setup_watch(CLI::App& sub);

// The privileged verb (cmd_run.cc): keep_root. Its runner prints its own
// messages and always returns one of the statuses above.
Runner setup_run(CLI::App& sub);

// Root's verb for the spool (cmd_ship.cc): root_caller.
Runner setup_ship(CLI::App& sub);

/// The exit status for an error (see the constants above).
int exit_code_for(const Error& e);

}  // namespace hoop::ctl
