#pragma once
// What `hoopctl run` is asked to execute, resolved and pinned: the file is
// opened once, checked and hashed on that descriptor, and later executed
// through the same descriptor, so it cannot be swapped after approval.
//
// MUST: resolve through secure_path only, never the caller's PATH.
// MUST: refuse files that someone other than root can modify (the file and
// every directory above it), since such a file could change between hashing
// and execution.
// MUST NOT: follow the caller's environment for anything here.

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "common/error.h"

namespace hoop::exec {

/// An executable opened for fexecve. Owns `fd` (closed on destruction).
class ResolvedCommand {
 public:
  ResolvedCommand() = default;
  ResolvedCommand(int fd, std::string path, std::string digest, bool is_script);
  ~ResolvedCommand();
  ResolvedCommand(ResolvedCommand&& o) noexcept;
  ResolvedCommand& operator=(ResolvedCommand&& o) noexcept;
  ResolvedCommand(const ResolvedCommand&) = delete;
  ResolvedCommand& operator=(const ResolvedCommand&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }      // absolute, canonical
  const std::string& digest() const { return digest_; }  // SHA-256 hex of the content
  bool is_script() const { return is_script_; }          // starts with "#!"

 private:
  int fd_ = -1;
  std::string path_;
  std::string digest_;
  bool is_script_ = false;
};

/// `cmd` without '/' is searched in the colon-separated `secure_path`; with
/// '/', it must be absolute. The result must be a regular executable file,
/// owned by root, not writable by group or others, in root-owned directories
/// that are not writable by group or others. Errors name the file and why.
Result<ResolvedCommand> resolve_command(std::string_view cmd, std::string_view secure_path);

/// Re-hashes the open descriptor and compares with the digest that was
/// approved (defence in depth right before exec).
Status verify_digest(const ResolvedCommand& c, std::string_view approved_digest);

/// The account a command runs as.
struct Target {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
  std::string home;
  std::string shell;
};

/// `-u` argument: a user NAME that exists. Refuses "#123", "#-1", plain
/// numbers, names with characters outside [A-Za-z0-9._-] (and trailing $),
/// and unknown users, each with its own message.
Result<Target> lookup_target(std::string_view spec);

/// The environment for the command, rebuilt from scratch: the allow-list
/// (TERM, COLORTERM, LANG, LANGUAGE, LC_*, TZ only when it names a zone
/// file under the zoneinfo directory: no leading '/', no '..'; NO_COLOR)
/// taken from `caller_env` (first occurrence of a name) when the
/// values are clean, plus PATH=secure_path, HOME, SHELL, USER, LOGNAME of the
/// target (PATH keeps only absolute entries), and HOOP_USER, HOOP_UID,
/// HOOP_REQUEST_ID. Everything else
/// (LD_*, BASH_ENV, PYTHON*, PERL5*, IFS, ...) is dropped. Pure.
std::vector<std::string> build_environment(const std::vector<std::string>& caller_env,
                                           const Target& target, std::string_view secure_path,
                                           std::string_view caller_name, uid_t caller_uid,
                                           int64_t request_id);

}  // namespace hoop::exec
