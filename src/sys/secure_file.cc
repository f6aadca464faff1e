// Opening files that hoop trusts (host config, host credential) or that hold
// a person's secret (a reviewer's token).
// MUST: check owner, type and mode on the open descriptor (fstat), never on a
//       path that could be swapped between check and use.
// MUST: check every directory above a trusted file, walking with openat and
//       O_NOFOLLOW so no component can be a link planted after the check.
// MUST NOT: follow a symlink in the last component, block on a FIFO, or read
//       past the size limit.
// Error messages name the file, say what is wrong and what to run.

#include "sys/secure_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/escape.h"
#include "sys/fd.h"

namespace hoop::sys {
namespace {


std::string mode_text(mode_t m) {
  // Four octal digits, as chmod takes them.
  std::string s(4, '0');
  unsigned v = static_cast<unsigned>(m & 07777);
  for (int i = 3; i >= 0; --i, v >>= 3) s[static_cast<size_t>(i)] = static_cast<char>('0' + (v & 7));
  return s;
}

std::string show(const std::string& path) {
  return escape_for_terminal(path);
}

Error refuse(const std::string& path, const std::string& why) {
  return make_error(Errc::io, "refusing " + show(path) + ": " + why);
}

Error open_error(const std::string& path, int err) {
  if (err == ENOENT) return make_error(Errc::not_found, show(path) + " does not exist");
  if (err == ELOOP) return refuse(path, "it is a symbolic link; point hoop at the real file");
  if (err == EACCES) return make_error(Errc::io, "cannot read " + show(path) + ": permission denied");
  return make_error(Errc::io, "cannot open " + show(path) + ": " + std::strerror(err));
}

// Opens the regular file `name` in directory `dirfd`, without blocking if it
// is a FIFO or a device, and (unless `follow`) without following a link.
Result<Fd> open_leaf(int dirfd, const char* name, const std::string& path, struct stat& st,
                     bool follow = false) {
  const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW);
  Fd fd(::openat(dirfd, name, flags));
  if (fd.get() < 0) return open_error(path, errno);
  if (::fstat(fd.get(), &st) != 0)
    return make_error(Errc::io, "cannot stat " + show(path) + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return refuse(path, "not a regular file");
  return fd;
}

Result<std::string> read_all(int fd, const struct stat& st, const std::string& path, size_t max_bytes) {
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > max_bytes)
    return make_error(Errc::too_large,
                      "refusing " + show(path) + ": larger than " + std::to_string(max_bytes) + " bytes");
  std::string out;
  out.resize(max_bytes + 1);
  size_t got = 0;
  // Read one byte past the limit so a file that grew after fstat is caught.
  while (got < out.size()) {
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::io, "cannot read " + show(path) + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > max_bytes)
    return make_error(Errc::too_large,
                      "refusing " + show(path) + ": larger than " + std::to_string(max_bytes) + " bytes");
  out.resize(got);
  return out;
}

// A directory above a trusted file: anyone who can write it can replace the
// file, so it must be root's alone. Sticky directories (/tmp) are refused
// too: the sticky bit does not stop others from creating the name first.
Status check_dir(const struct stat& st, const std::string& dir, const std::string& path) {
  if (!S_ISDIR(st.st_mode)) return refuse(path, show(dir) + " is not a directory");
  if (st.st_uid != 0)
    return refuse(path, "its directory " + show(dir) + " is owned by uid " + std::to_string(st.st_uid) +
                            ", not root; keep files hoop trusts in directories only root can change");
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    if ((st.st_mode & S_ISVTX) != 0)
      return refuse(path,
                    "its directory " + show(dir) + " is writable by others (mode " + mode_text(st.st_mode) +
                        "); keep files hoop trusts in a directory only root can write, such as /etc/hoop");
    return refuse(path, "its directory " + show(dir) + " is writable by group or others (mode " +
                            mode_text(st.st_mode) + "); run: chmod go-w " + show(dir));
  }
  return {};
}

}  // namespace

// Walks from / to the directory that holds the file, one openat(O_NOFOLLOW)
// per component, checking each directory on its descriptor. `dir` is already
// canonical (realpath), so a link found on the way means something changed
// under us: refuse rather than follow.
Result<Fd> open_trusted_dir(const std::string& dir, const std::string& path) {
  Fd cur(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (cur.get() < 0) return make_error(Errc::io, std::string("cannot open /: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(cur.get(), &st) != 0)
    return make_error(Errc::io, std::string("cannot stat /: ") + std::strerror(errno));
  if (auto s = check_dir(st, "/", path); !s) return s.error();

  std::string sofar;
  size_t i = 1;
  while (i < dir.size()) {
    size_t j = dir.find('/', i);
    if (j == std::string::npos) j = dir.size();
    const std::string comp = dir.substr(i, j - i);
    i = j + 1;
    if (comp.empty()) continue;
    sofar += "/" + comp;
    Fd next(::openat(cur.get(), comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0) {
      if (errno == ENOENT)
        return make_error(Errc::not_found, show(path) + " does not exist (no " + show(sofar) + ")");
      if (errno == ENOTDIR || errno == ELOOP)
        return refuse(path,
                      show(sofar) + " changed while it was being checked (now a link or not a directory)");
      return make_error(Errc::io, "cannot open " + show(sofar) + ": " + std::strerror(errno));
    }
    if (::fstat(next.get(), &st) != 0)
      return make_error(Errc::io, "cannot stat " + show(sofar) + ": " + std::strerror(errno));
    if (auto s = check_dir(st, sofar, path); !s) return s.error();
    cur = std::move(next);
  }
  return cur;
}


Result<std::string> read_root_owned_file(const std::string& path, size_t max_bytes) {
  if (path.empty() || path[0] != '/')
    return make_error(Errc::invalid_argument,
                      "refusing " + show(path) + ": a trusted file needs an absolute path");
  const size_t slash = path.rfind('/');
  const std::string base = path.substr(slash + 1);
  if (base.empty() || base == "." || base == "..")
    return make_error(Errc::invalid_argument, "refusing " + show(path) + ": not a file name");
  const std::string parent = slash == 0 ? "/" : path.substr(0, slash);

  // Links in the directories are allowed (e.g. /etc -> /private/etc); we
  // resolve them once, then check the canonical chain piece by piece.
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(parent.c_str(), nullptr), &std::free);
  if (!real) {
    if (errno == ENOENT || errno == ENOTDIR)
      return make_error(Errc::not_found, show(path) + " does not exist");
    return make_error(Errc::io, "cannot resolve " + show(parent) + ": " + std::strerror(errno));
  }
  auto dir = open_trusted_dir(real.get(), path);
  if (!dir) return dir.error();

  struct stat st {};
  auto fd = open_leaf(dir->get(), base.c_str(), path, st);
  if (!fd) return fd.error();
  if (st.st_uid != 0)
    return refuse(path,
                  "owned by uid " + std::to_string(st.st_uid) + ", not root; run: chown root: " + show(path));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return refuse(path, "writable by group or others (mode " + mode_text(st.st_mode) + "); run: chmod go-w " +
                            show(path));
  return read_all(fd->get(), st, path, max_bytes);
}

Result<std::string> read_private_file(const std::string& path, uid_t owner, size_t max_bytes) {
  struct stat st {};
  auto fd = open_leaf(AT_FDCWD, path.c_str(), path, st);
  if (!fd) return fd.error();
  if (st.st_uid != owner)
    return refuse(path, "owned by uid " + std::to_string(st.st_uid) + ", not by you (uid " +
                            std::to_string(owner) + "); replace it with a file of your own");
  if ((st.st_mode & 077) != 0)
    return refuse(path, "readable or writable by group or others (mode " + mode_text(st.st_mode) +
                            "); run: chmod 600 " + show(path));
  return read_all(fd->get(), st, path, max_bytes);
}

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
  // Plain reads (a CA bundle, a policy under test) may follow links; only
  // the trusted readers refuse them.
  struct stat st {};
  auto fd = open_leaf(AT_FDCWD, path.c_str(), path, st, /*follow=*/true);
  if (!fd) return fd.error();
  return read_all(fd->get(), st, path, max_bytes);
}

}  // namespace hoop::sys
