#pragma once
// What hoop-shell does with a command's words: a builtin, a file transfer
// the host config allows, a request through `hoopctl run`, or a refusal.
// Pure: no system calls; the config comes in as a value.
// MUST: refuse file transfers and shell keywords unless allowed, with a
//       one-line reason that names the [shell] key that would allow them.
// MUST NOT: run a transfer program from a path the user chose: only the
//       fixed paths below.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/host_config.h"

namespace hoop::shell {

/// The programs an allowed transfer runs (as the user, without hoopctl).
inline constexpr const char* kScpPath = "/usr/bin/scp";
inline constexpr const char* kSftpServerPath = "/usr/lib/openssh/sftp-server";
inline constexpr const char* kRsyncPath = "/usr/bin/rsync";

/// What to do. Values far apart, so one flipped bit cannot turn a refusal
/// into something that runs.
enum class Action : uint32_t {
  refuse = 0x0bad0bad,
  builtin = 0x5a17e11a,
  transfer = 0x7f3c21d9,
  request = 0xc0de4e57,
};

enum class Builtin { none, help, exit, requests, history, cd, pwd };

/// The decision for one command. `argv`: for a request, the command for
/// `hoopctl run --`; for a transfer, the argv to execute (argv[0] one of the
/// fixed paths); for a builtin, its words.
struct Decision {
  Action action = Action::refuse;
  Builtin builtin = Builtin::none;
  std::vector<std::string> argv;
  std::string message;  // refuse: why, one line
};

/// Classifies non-empty `words` (from split_words).
Decision classify(const std::vector<std::string>& words, const config::ShellConfig& cfg);

/// True when the canonical absolute path `dir` is `base` or below it (both
/// canonical; compared by whole components, so /srv2 is not below /srv).
bool is_within(std::string_view dir, std::string_view base);

/// The refusal for a session with a forwarded ssh agent, or "" when allowed.
std::string agent_forwarding_refusal(bool agent_socket_set, const config::ShellConfig& cfg);

}  // namespace hoop::shell
