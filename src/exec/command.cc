// Resolving, opening and pinning the executable that `hoopctl run` asks for,
// and looking up the run-as user.
// MUST: search secure_path only; refuse relative paths with '/'.
// MUST: check the file on its open descriptor (fstat), and every directory
//       above it (and above the secure_path entry it was found through)
//       walking with openat(O_NOFOLLOW): only root may be able to change any
//       of them, or the content could change between hashing and exec.
// MUST: hash the content read from that same descriptor, which is the one
//       later executed.
// MUST NOT: consult the caller's environment, or follow a link that
//       appears during the checks.
// The directory walk is sys::open_trusted_dir, shared with the config and
// credential checks.

#include "exec/command.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/crypto.h"
#include "common/escape.h"
#include "sys/secure_file.h"

namespace hoop::exec {
namespace {

using sys::Fd;

std::string show(std::string_view s) {
  return escape_for_terminal(s);
}

std::string mode_text(mode_t m) {
  std::string s(4, '0');
  unsigned v = static_cast<unsigned>(m & 07777);
  for (int i = 3; i >= 0; --i, v >>= 3) s[static_cast<size_t>(i)] = static_cast<char>('0' + (v & 7));
  return s;
}

Error refuse(const std::string& path, const std::string& why) {
  return make_error(Errc::permission_denied, "refusing " + show(path) + ": " + why);
}

Error sys_error(const std::string& what, const std::string& path) {
  return make_error(Errc::io, what + " " + show(path) + ": " + std::strerror(errno));
}

// realpath(); ENOENT/ENOTDIR become not_found so the search can go on.
Result<std::string> canonical(const std::string& p) {
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(p.c_str(), nullptr), &std::free);
  if (real) return std::string(real.get());
  if (errno == ENOENT || errno == ENOTDIR) return make_error(Errc::not_found, show(p) + " does not exist");
  return sys_error("cannot resolve", p);
}

std::string parent_of(const std::string& p) {
  const size_t slash = p.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : p.substr(0, slash);
}


// Opens `candidate` (absolute) as a pinned executable. not_found when it
// does not exist; any other error is a refusal that ends the search.
Result<ResolvedCommand> open_executable(const std::string& candidate) {
  auto real = canonical(candidate);
  if (!real) return real.error();
  const std::string& path = *real;
  // The directory the name was found through matters too: a link planted
  // there would choose which root-owned program runs under this name.
  auto lookup_dir = canonical(parent_of(candidate));
  if (!lookup_dir) return lookup_dir.error();
  const std::string dir = parent_of(path);
  if (*lookup_dir != dir) {
    if (auto d = sys::open_trusted_dir(*lookup_dir, candidate); !d) return d.error();
  }
  auto dfd = sys::open_trusted_dir(dir, path);
  if (!dfd) return dfd.error();
  const std::string base = path.substr(path.rfind('/') + 1);

  // O_NONBLOCK: a FIFO must not hang us before the S_ISREG check.
  Fd fd(::openat(dfd->get(), base.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ELOOP) return refuse(path, "it became a symbolic link while it was being checked");
    return sys_error("cannot open", path);
  }
  struct stat st {
  }, named{};
  if (::fstat(fd.get(), &st) != 0) return sys_error("cannot stat", path);
  // The name must still be this very file, or we would pin one file and
  // report (and have approved) another.
  if (::fstatat(dfd->get(), base.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0 || named.st_dev != st.st_dev ||
      named.st_ino != st.st_ino)
    return refuse(path, "it changed while it was being checked");
  if (!S_ISREG(st.st_mode)) return refuse(path, "not a regular file");
  if ((st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0)
    return refuse(path, "not executable (mode " + mode_text(st.st_mode) + ")");
  if (st.st_uid != 0) return refuse(path, "owned by uid " + std::to_string(st.st_uid) + ", not root");
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return refuse(path, "writable by group or others (mode " + mode_text(st.st_mode) + ")");

  char magic[2] = {0, 0};
  ssize_t got = 0;
  do got = ::pread(fd.get(), magic, sizeof magic, 0);
  while (got < 0 && errno == EINTR);
  if (got < 0) return sys_error("cannot read", path);
  const bool is_script = got == 2 && magic[0] == '#' && magic[1] == '!';
  auto digest = sha256_fd(fd.get(), escape_for_terminal(path));
  if (!digest) return digest.error();
  // The fd stays close-on-exec even for scripts; spawn clears the flag in the
  // child only, so the descriptor cannot leak into any other program.
  return ResolvedCommand(fd.release(), path, std::move(*digest), is_script);
}

}  // namespace

ResolvedCommand::ResolvedCommand(int fd, std::string path, std::string digest, bool is_script)
    : fd_(fd), path_(std::move(path)), digest_(std::move(digest)), is_script_(is_script) {}

ResolvedCommand::~ResolvedCommand() {
  if (fd_ >= 0) ::close(fd_);
}

ResolvedCommand::ResolvedCommand(ResolvedCommand&& o) noexcept
    : fd_(o.fd_), path_(std::move(o.path_)), digest_(std::move(o.digest_)), is_script_(o.is_script_) {
  o.fd_ = -1;
}

ResolvedCommand& ResolvedCommand::operator=(ResolvedCommand&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
    path_ = std::move(o.path_);
    digest_ = std::move(o.digest_);
    is_script_ = o.is_script_;
  }
  return *this;
}

Result<ResolvedCommand> resolve_command(std::string_view cmd, std::string_view secure_path) {
  if (cmd.empty()) return make_error(Errc::invalid_argument, "empty command name");
  if (cmd.find('\0') != std::string_view::npos || cmd.size() >= PATH_MAX)
    return make_error(Errc::invalid_argument, "refusing command " + show(cmd) + ": not a valid path");
  const std::string name(cmd);
  if (name.find('/') != std::string::npos) {
    if (name[0] != '/')
      return make_error(Errc::invalid_argument,
                        "refusing relative path " + quote_arg(name) +
                            ": give an absolute path or a command name looked up in secure_path");
    return open_executable(name);
  }
  if (name == "." || name == "..")
    return make_error(Errc::invalid_argument, "refusing command " + quote_arg(name) + ": not a file name");

  // The first entry where the name exists decides: a refusal there is not
  // skipped in favour of a later directory, so what runs never depends on
  // which files happen to be broken.
  size_t i = 0;
  while (i <= secure_path.size()) {
    size_t j = secure_path.find(':', i);
    if (j == std::string_view::npos) j = secure_path.size();
    const std::string_view dir = secure_path.substr(i, j - i);
    i = j + 1;
    // Empty and relative entries would mean the caller's cwd: never.
    if (dir.empty() || dir[0] != '/') continue;
    std::string candidate(dir);
    if (candidate.back() != '/') candidate += '/';
    candidate += name;
    auto r = open_executable(candidate);
    if (r || r.error().code != Errc::not_found) return r;
  }
  return make_error(Errc::not_found,
                    show(name) + ": command not found in secure_path (" + show(secure_path) + ")");
}

Status verify_digest(const ResolvedCommand& c, std::string_view approved_digest) {
  if (!is_sha256_hex(approved_digest))
    return make_error(Errc::invalid_argument, "the approved digest is not a SHA-256 hex string");
  if (c.fd() < 0) return make_error(Errc::internal, "verify_digest on a command that is not open");
  auto now = sha256_fd(c.fd(), escape_for_terminal(c.path()));
  if (!now) return now.error();
  if (*now != approved_digest)
    return refuse(c.path(), "its content changed since it was approved (sha256 " + *now + ", approved " +
                                std::string(approved_digest) + ")");
  return {};
}

}  // namespace hoop::exec
