// Identity switching for the setuid hoopctl.
// MUST: change groups before the uid (once the uid is gone we could no
//       longer change groups), and verify every id afterwards.
// MUST: fail closed: any unexpected result is an error and the caller exits.
// MUST NOT: read the environment, or trust $USER/$HOME for who the caller is.

#include "sys/privilege.h"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace hoop::sys {
namespace {

Error sys_error(const std::string& what) {
  return make_error(Errc::internal, what + ": " + std::strerror(errno));
}

}  // namespace

Result<Caller> current_caller() {
  const uid_t uid = getuid();
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  size_t size = hint > 0 ? static_cast<size_t>(hint) : 4096;
  // Grow on ERANGE: large NSS entries exist; cap so a broken NSS module
  // cannot make us allocate without bound.
  constexpr size_t kMaxBuffer = 1 << 20;
  for (;;) {
    std::vector<char> buf(size);
    struct passwd pw {};
    struct passwd* found = nullptr;
    const int rc = getpwuid_r(uid, &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && size < kMaxBuffer) {
      size *= 2;
      continue;
    }
    if (rc != 0) {
      errno = rc;
      return sys_error("cannot look up uid " + std::to_string(uid) + " in the password database");
    }
    if (found == nullptr)
      return make_error(Errc::not_found,
                        "your uid " + std::to_string(uid) +
                            " has no entry in the password database; ask an admin to add one");
    Caller c;
    c.uid = uid;
    c.gid = getgid();
    c.name = pw.pw_name != nullptr ? pw.pw_name : "";
    c.home = pw.pw_dir != nullptr ? pw.pw_dir : "";
    if (c.name.empty())
      return make_error(Errc::internal,
                        "uid " + std::to_string(uid) + " has an empty name in the password database");
    return c;
  }
}

Status drop_privileges_permanently() {
  const uid_t ruid = getuid();
  const gid_t rgid = getgid();

  // Groups first: after setresuid we would no longer be allowed to.
  if (setresgid(rgid, rgid, rgid) != 0) return sys_error("setresgid");
  // Supplementary groups: a setuid exec leaves them as the caller's own, so
  // they carry no privilege the caller lacks; with ruid 0 there is nothing to
  // drop. We keep them so the caller can still read group-readable files.
  if (setresuid(ruid, ruid, ruid) != 0) return sys_error("setresuid");

  uid_t r = 0, e = 0, s = 0;
  if (getresuid(&r, &e, &s) != 0) return sys_error("getresuid");
  if (r != ruid || e != ruid || s != ruid)
    return make_error(Errc::internal, "privilege drop did not take effect (uid)");
  gid_t rg = 0, eg = 0, sg = 0;
  if (getresgid(&rg, &eg, &sg) != 0) return sys_error("getresgid");
  if (rg != rgid || eg != rgid || sg != rgid)
    return make_error(Errc::internal, "privilege drop did not take effect (gid)");

  // The proof that counts: root can no longer be regained. Both calls
  // succeeding would be a kernel or libc surprise; treat it as fatal.
  if (ruid != 0) {
    if (setuid(0) == 0 || seteuid(0) == 0)
      return make_error(Errc::internal, "privilege drop failed: uid 0 could be regained");
  }
  if (ruid != 0 && rgid != 0) {
    if (setgid(0) == 0 || setegid(0) == 0)
      return make_error(Errc::internal, "privilege drop failed: gid 0 could be regained");
  }
  return {};
}

bool is_elevated() {
  uid_t r = 0, e = 0, s = 0;
  gid_t rg = 0, eg = 0, sg = 0;
  // If we cannot even ask, assume the worst.
  if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0) return true;
  return e != r || s != r || eg != rg || sg != rg;
}

}  // namespace hoop::sys
