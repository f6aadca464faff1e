// Process hygiene and the identity switch for the setuid path.
// MUST: leave fds 0-2 open (to /dev/null if need be) so files we open later
//       never become someone's stdin/stdout/stderr.
// MUST: change groups before the uid (once the uid is gone we could no
//       longer change groups), and verify every id afterwards, including
//       that root cannot be regained.
// MUST: keep close_fds_from_3 and apply_identity async-signal-safe: they run
//       in a forked child (no allocation, no stdio, no NSS, no locks).
// MUST NOT: read the environment for anything here.

#include "sys/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace hoop::sys {
namespace {

Error sys_error(const std::string& what) {
  return make_error(Errc::io, what + ": " + std::strerror(errno));
}

bool kept(int fd, int keep, int keep2) {
  return fd == keep || fd == keep2;
}

// Fallback when close_range is missing: list /proc/self/fd with raw
// getdents64 (opendir allocates). Closing while listing may hide entries,
// so repeat until a pass closes nothing. False when /proc is unavailable.
bool close_listed_fds(int keep, int keep2) noexcept {
  struct Dirent64 {
    ino64_t d_ino;
    off64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[1];
  };
  for (;;) {
    const int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return false;
    bool closed_any = false;
    alignas(8) char buf[4096];
    for (;;) {
      const long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        const auto* d = reinterpret_cast<const Dirent64*>(buf + off);
        off += d->d_reclen;
        int fd = 0;
        bool numeric = d->d_name[0] != '\0';
        for (const char* p = d->d_name; *p != '\0'; ++p) {
          if (*p < '0' || *p > '9' || fd > 100000000) {
            numeric = false;
            break;
          }
          fd = fd * 10 + (*p - '0');
        }
        if (!numeric || fd < 3 || fd == dir || kept(fd, keep, keep2)) continue;
        ::close(fd);
        closed_any = true;
      }
    }
    ::close(dir);
    if (!closed_any) return true;
  }
}

// Last resort without /proc: every number below the fd limit.
void close_up_to_limit(int keep, int keep2) noexcept {
  struct rlimit rl {};
  rlim_t limit = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limit = rl.rlim_cur;
  // Bounded so a huge limit cannot turn this into minutes of close() calls.
  if (limit > (1u << 20)) limit = 1u << 20;
  for (int fd = 3; static_cast<rlim_t>(fd) < limit; ++fd)
    if (!kept(fd, keep, keep2)) ::close(fd);
}

bool close_range_raw(unsigned lo, unsigned hi) noexcept {
  return ::syscall(SYS_close_range, lo, hi, 0u) == 0;
}

}  // namespace

Status sanitize_fds() {
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) continue;
    if (errno != EBADF) return sys_error("cannot inspect fd " + std::to_string(fd));
    // No O_CLOEXEC: this becomes a standard fd, inherited like one.
    const int n = ::open("/dev/null", O_RDWR | O_NOCTTY);
    if (n < 0) return sys_error("cannot open /dev/null");
    if (n != fd) {
      // open returns the lowest free fd, and 0..fd-1 are open by now.
      ::close(n);
      return make_error(Errc::internal, "/dev/null did not land on fd " + std::to_string(fd));
    }
  }
  close_fds_from_3(-1);
  return {};
}

Status harden_process() {
  // Not dumpable: the caller (same real uid) can then neither ptrace us nor
  // read /proc/<pid>/{mem,environ,fd}, where the host credential would be.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return sys_error("prctl(PR_SET_DUMPABLE)");
  if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
    return make_error(Errc::internal, "the process is still dumpable after PR_SET_DUMPABLE 0");
  const struct rlimit none { 0, 0 };
  if (::setrlimit(RLIMIT_CORE, &none) != 0) return sys_error("setrlimit(RLIMIT_CORE)");
  return {};
}

void close_fds_from_3(int keep, int keep2) noexcept {
  int lo = keep < 3 ? -1 : keep;
  int hi = keep2 < 3 ? -1 : keep2;
  if (lo > hi) {
    const int t = lo;
    lo = hi;
    hi = t;
  }
  // Close the gaps around the kept fds: [3, lo-1], [lo+1, hi-1], [hi+1, max].
  unsigned from = 3;
  bool ok = true;
  for (int k : {lo, hi}) {
    if (k < 0 || static_cast<unsigned>(k) < from) continue;
    if (static_cast<unsigned>(k) > from) ok = ok && close_range_raw(from, static_cast<unsigned>(k) - 1);
    from = static_cast<unsigned>(k) + 1;
  }
  ok = ok && close_range_raw(from, ~0u);
  if (ok) return;
  // close_range only fails when the kernel lacks it (ENOSYS, before 5.9).
  if (!close_listed_fds(keep, keep2)) close_up_to_limit(keep, keep2);
}

Result<Identity> prepare_identity(uid_t uid, gid_t gid, const char* name) {
  if (name == nullptr || *name == '\0')
    return make_error(Errc::invalid_argument, "cannot switch identity: empty user name");
  const long max_groups = ::sysconf(_SC_NGROUPS_MAX);
  Identity id;
  id.uid = uid;
  id.gid = gid;
  int n = 32;
  for (;;) {
    id.groups.assign(static_cast<size_t>(n), 0);
    int got = n;
    if (::getgrouplist(name, gid, id.groups.data(), &got) >= 0) {
      id.groups.resize(static_cast<size_t>(got));
      break;
    }
    // -1 means the buffer was too small and `got` now holds the count.
    if (got <= n || (max_groups > 0 && got > max_groups))
      return make_error(Errc::invalid_argument,
                        std::string("user ") + name + " is in too many groups (" + std::to_string(got) + ")");
    n = got;
  }
  id.scratch.assign(id.groups.size() + 1, 0);
  return id;
}

const char* apply_identity(Identity& id) noexcept {
  if (::setresgid(id.gid, id.gid, id.gid) != 0) return "setresgid";
  if (::setgroups(id.groups.size(), id.groups.data()) != 0) return "setgroups";
  if (::setresuid(id.uid, id.uid, id.uid) != 0) return "setresuid";

  uid_t r = 0, e = 0, s = 0;
  if (::getresuid(&r, &e, &s) != 0) return "getresuid";
  if (r != id.uid || e != id.uid || s != id.uid) {
    errno = 0;
    return "the uid change did not take effect";
  }
  gid_t rg = 0, eg = 0, sg = 0;
  if (::getresgid(&rg, &eg, &sg) != 0) return "getresgid";
  if (rg != id.gid || eg != id.gid || sg != id.gid) {
    errno = 0;
    return "the gid change did not take effect";
  }
  // The kernel sorts the list, so compare as sets (and by count).
  const int n = ::getgroups(static_cast<int>(id.scratch.size()), id.scratch.data());
  if (n < 0) return "getgroups";
  bool same = static_cast<size_t>(n) == id.groups.size();
  for (int i = 0; same && i < n; ++i) {
    bool found = false;
    for (gid_t g : id.groups) found = found || g == id.scratch[static_cast<size_t>(i)];
    same = found;
  }
  for (size_t j = 0; same && j < id.groups.size(); ++j) {
    bool found = false;
    for (int i = 0; i < n; ++i) found = found || id.groups[j] == id.scratch[static_cast<size_t>(i)];
    same = found;
  }
  if (!same) {
    errno = 0;
    return "the supplementary groups did not take effect";
  }

  // The proof that counts: the old (root) ids cannot be regained.
  if (id.uid != 0) {
    if (::setuid(0) == 0 || ::seteuid(0) == 0) {
      errno = 0;
      return "uid 0 could be regained";
    }
    if (id.gid != 0 && (::setgid(0) == 0 || ::setegid(0) == 0)) {
      errno = 0;
      return "gid 0 could be regained";
    }
    if (::setgroups(0, nullptr) == 0) {
      errno = 0;
      return "the groups could still be changed";
    }
  }
  return nullptr;
}

Status switch_identity(uid_t uid, gid_t gid, const char* name) {
  auto id = prepare_identity(uid, gid, name);
  if (!id) return id.error();
  if (const char* failed = apply_identity(*id); failed != nullptr) {
    std::string msg = std::string("cannot switch to user ") + name + ": " + failed;
    if (errno != 0) msg += std::string(": ") + std::strerror(errno);
    return make_error(Errc::internal, msg);
  }
  return {};
}

void lower_thread_priority() noexcept {
  // PRIO_PROCESS with a thread id acts on that thread alone (Linux).
  const auto tid = static_cast<id_t>(gettid());
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, tid);
  if (now == -1 && errno != 0) return;
  static_cast<void>(setpriority(PRIO_PROCESS, tid, std::min(now + 10, 19)));
}

}  // namespace hoop::sys
