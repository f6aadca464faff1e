#pragma once
// Identity switching for the setuid hoopctl.
// MUST: drop exactly once, in the order setresgid -> setgroups/initgroups ->
// setresuid, then verify with getres[ug]id and that uid 0 cannot be regained.
// MUST NOT: consult the environment for identity.

#include <string>
#include <sys/types.h>

#include "common/error.h"

namespace hoop::sys {

/// The invoking user, from the real uid (never from $USER/$LOGNAME).
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
  std::string home;
};

/// Looks up the real uid in the password database.
Result<Caller> current_caller();

/// Permanently becomes the real uid/gid (keeping the caller's own
/// supplementary groups). Verifies the result; fails closed.
Status drop_privileges_permanently();

/// True when running with more privilege than the caller has (setuid/setgid).
bool is_elevated();

}  // namespace hoop::sys
