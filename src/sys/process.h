#pragma once
// Process hygiene for the setuid path, done once at the start of
// `hoopctl run`, before anything else; and the identity switch of the child
// that runs the approved command.

#include <sys/types.h>

#include <vector>

#include "common/error.h"

namespace hoop::sys {

/// Makes sure fds 0, 1 and 2 are open (to /dev/null if the caller closed
/// them, so our own files never land on them) and closes every fd >= 3.
Status sanitize_fds();

/// Marks the process not dumpable (no core, no ptrace or /proc/<pid>/fd,
/// environ, mem by the unprivileged caller) and disables core dumps.
Status harden_process();

/// Switches the current process to uid/gid with the target's supplementary
/// groups: setresgid -> initgroups(name) -> setresuid, then verifies with
/// getres[ug]id and getgroups and, when uid != 0, that setuid(0)/setgid(0)
/// (and setgroups) fail. Same as prepare_identity + apply_identity; use
/// those two in a forked child.
Status switch_identity(uid_t uid, gid_t gid, const char* name);

/// Everything an identity switch needs, gathered BEFORE fork. The group list
/// comes from getgrouplist(name, gid), i.e. exactly what initgroups would
/// set; we look it up in the parent because NSS may allocate, take locks or
/// open sockets, none of which is safe in the forked child of a process that
/// may have threads. The child then only calls setgroups.
struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;   // supplementary groups, as initgroups would set them
  std::vector<gid_t> scratch;  // room for getgroups() in the check, sized here
};

/// Looks up `name`'s groups (with `gid` included) for apply_identity.
Result<Identity> prepare_identity(uid_t uid, gid_t gid, const char* name);

/// The switch itself: setresgid -> setgroups -> setresuid, then the checks
/// described at switch_identity. Async-signal-safe (no allocation, no NSS):
/// returns nullptr on success, or a static text naming the step that failed
/// with errno describing why (0 when a check, not a call, failed).
const char* apply_identity(Identity& id) noexcept;

/// Closes every fd >= 3 except `keep` and `keep2` (-1 for none).
/// Async-signal-safe, so a forked child can call it.
void close_fds_from_3(int keep, int keep2 = -1) noexcept;

/// Makes the calling thread 10 nice levels nicer (at most 19), relative to
/// what it has, so root never raises a priority the caller lowered. For
/// background work (recording, spooling, shipping) that must not take the
/// CPU from the relay the person at the terminal waits on. Best effort.
void lower_thread_priority() noexcept;

}  // namespace hoop::sys
