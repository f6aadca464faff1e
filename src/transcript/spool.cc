// The spool directory. Every file operation is relative to the directory
// fd that passed the trusted walk, with O_NOFOLLOW, so nothing in the spool
// can redirect root's writes elsewhere.

#include "transcript/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/escape.h"
#include "sys/secure_file.h"

namespace hoop::transcript {
namespace {

constexpr size_t kMaxMetaBytes = 64 * 1024;

Error sys_error(const std::string& what, const std::string& path, int err) {
  return make_error(Errc::io, what + " " + escape_for_terminal(path) + ": " + std::strerror(err));
}

// A setuid process creates files with the caller's gid: give them to root.
Status own_by_root(int fd, const std::string& path) {
  if (::geteuid() == 0 && ::fchown(fd, 0, 0) != 0) return sys_error("cannot give to root", path, errno);
  return {};
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<sys::Fd> reopen_readable(const sys::Fd& pathfd, const std::string& path) {
  sys::Fd fd(::openat(pathfd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return sys_error("cannot open", path, errno);
  return fd;
}

}  // namespace

bool valid_session_id(std::string_view id) {
  if (id.empty() || id.size() > 128 || id[0] == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string spool_meta_json(const SpoolMeta& m) {
  nlohmann::json j = {{"session", m.session},
                      {"request", m.request},
                      {"length", m.length},
                      {"sha256", m.sha256},
                      {"finished", m.finished}};
  j["exit_status"] = m.exit_status ? nlohmann::json(*m.exit_status) : nlohmann::json(nullptr);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<SpoolMeta> parse_spool_meta(std::string_view text) {
  try {
    const auto j = nlohmann::json::parse(text);
    SpoolMeta m;
    m.session = j.at("session").get<std::string>();
    m.request = j.at("request").get<std::string>();
    m.length = j.at("length").get<uint64_t>();
    m.sha256 = j.at("sha256").get<std::string>();
    m.finished = j.at("finished").get<bool>();
    if (!j.at("exit_status").is_null()) m.exit_status = j.at("exit_status").get<int>();
    return m;
  } catch (const std::exception& e) {
    return make_error(Errc::invalid_argument, std::string("bad spool metadata: ") + e.what());
  }
}

Result<SpoolDir> SpoolDir::open(const std::string& path) {
  if (path.size() < 2 || path[0] != '/' || path.back() == '/')
    return make_error(Errc::invalid_argument,
                      "spool_dir " + escape_for_terminal(path) + " must be an absolute directory path");
  const size_t slash = path.rfind('/');
  const std::string base = path.substr(slash + 1);
  if (base == "." || base == "..")
    return make_error(Errc::invalid_argument, "spool_dir " + escape_for_terminal(path) + " is not canonical");
  const std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(parent.c_str(), nullptr), &std::free);
  if (!real) return sys_error("cannot resolve the parent of spool_dir", path, errno);
  const std::string rparent = real.get();
  auto pfd = sys::open_trusted_dir(rparent, path);
  if (!pfd) return pfd.error();
  // Root-only from birth; an existing one is checked by the walk below.
  if (::mkdirat(pfd->get(), base.c_str(), 0700) == 0) {
    // A setuid process creates with the caller's gid; the spool is root's.
    if (::geteuid() == 0 && ::fchownat(pfd->get(), base.c_str(), 0, 0, AT_SYMLINK_NOFOLLOW) != 0)
      return sys_error("cannot give spool_dir to root", path, errno);
  } else if (errno != EEXIST) {
    return sys_error("cannot create spool_dir", path, errno);
  }
  const std::string full = (rparent == "/" ? "" : rparent) + "/" + base;
  auto dfd = sys::open_trusted_dir(full, path);
  if (!dfd) return dfd.error();
  auto rfd = reopen_readable(*dfd, path);
  if (!rfd) return rfd.error();
  return SpoolDir(std::move(*rfd), path);
}

Result<SpoolDir> SpoolDir::adopt_checked_elsewhere(const std::string& path) {
  sys::Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return sys_error("cannot open", path, errno);
  return SpoolDir(std::move(fd), path);
}

Result<sys::Fd> SpoolDir::create_cast(const std::string& session) const {
  if (!valid_session_id(session))
    return make_error(Errc::invalid_argument, "bad session id " + escape_for_terminal(session));
  const std::string name = session + ".cast";
  sys::Fd fd(::openat(fd_.get(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    if (errno == EEXIST)
      return make_error(Errc::conflict, "spool file " + escape_for_terminal(path_ + "/" + name) + " exists");
    return sys_error("cannot create spool file", path_ + "/" + name, errno);
  }
  if (auto st = own_by_root(fd.get(), path_ + "/" + name); !st) return st.error();
  // Held while recording: `hoopctl ship` tells a live session by it.
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
    return make_error(Errc::conflict, "spool file " + escape_for_terminal(path_ + "/" + name) +
                                          " was taken by another process");
  return fd;
}

Result<sys::Fd> SpoolDir::open_cast_for_ship(const std::string& session) const {
  if (!valid_session_id(session))
    return make_error(Errc::invalid_argument, "bad session id " + escape_for_terminal(session));
  const std::string name = session + ".cast";
  sys::Fd fd(::openat(fd_.get(), name.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return make_error(Errc::not_found, "no spool file for session " + session);
    return sys_error("cannot open spool file", path_ + "/" + name, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
    return make_error(Errc::io, "refusing spool file " + escape_for_terminal(path_ + "/" + name) +
                                    ": not a regular file of ours");
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return make_error(Errc::conflict, "session " + session + " is still recording");
    return sys_error("cannot lock", path_ + "/" + name, errno);
  }
  return fd;
}

Status SpoolDir::write_meta(const SpoolMeta& m) const {
  if (!valid_session_id(m.session))
    return make_error(Errc::invalid_argument, "bad session id " + escape_for_terminal(m.session));
  const std::string tmp = m.session + ".json.tmp", name = m.session + ".json";
  const std::string shown = path_ + "/" + name;
  sys::Fd fd(::openat(fd_.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) return sys_error("cannot create", path_ + "/" + tmp, errno);
  if (auto st = own_by_root(fd.get(), shown); !st) return st;
  if (auto s = write_all(fd.get(), spool_meta_json(m), shown); !s) {
    ::unlinkat(fd_.get(), tmp.c_str(), 0);
    return s;
  }
  if (::fsync(fd.get()) != 0) {
    const int err = errno;
    ::unlinkat(fd_.get(), tmp.c_str(), 0);
    return sys_error("cannot sync", shown, err);
  }
  if (::renameat(fd_.get(), tmp.c_str(), fd_.get(), name.c_str()) != 0)
    return sys_error("cannot rename", shown, errno);
  if (::fsync(fd_.get()) != 0) return sys_error("cannot sync", path_, errno);
  return {};
}

Result<std::optional<SpoolMeta>> SpoolDir::read_meta(const std::string& session) const {
  const std::string name = session + ".json";
  sys::Fd fd(::openat(fd_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<SpoolMeta>();
    return sys_error("cannot open", path_ + "/" + name, errno);
  }
  std::string text(kMaxMetaBytes + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("cannot read", path_ + "/" + name, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxMetaBytes)
    return make_error(Errc::too_large, escape_for_terminal(path_ + "/" + name) + " is too large");
  text.resize(got);
  auto m = parse_spool_meta(text);
  if (!m)
    return make_error(Errc::invalid_argument,
                      escape_for_terminal(path_ + "/" + name) + ": " + m.error().message);
  if (m->session != session)
    return make_error(Errc::invalid_argument,
                      escape_for_terminal(path_ + "/" + name) + " names another session");
  return std::optional<SpoolMeta>(std::move(*m));
}

Result<std::vector<std::string>> SpoolDir::list() const {
  const int dup = ::openat(fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) return sys_error("cannot list", path_, errno);
  struct CloseDir {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, CloseDir> dir(::fdopendir(dup));
  if (!dir) {
    ::close(dup);
    return sys_error("cannot list", path_, errno);
  }
  std::vector<std::string> out;
  constexpr std::string_view kExt = ".cast";
  while (dirent* e = ::readdir(dir.get())) {
    const std::string_view n = e->d_name;
    if (n.size() <= kExt.size() || n.substr(n.size() - kExt.size()) != kExt) continue;
    const std::string id(n.substr(0, n.size() - kExt.size()));
    if (valid_session_id(id)) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status SpoolDir::remove(const std::string& session) const {
  if (!valid_session_id(session))
    return make_error(Errc::invalid_argument, "bad session id " + escape_for_terminal(session));
  for (const char* ext : {".cast", ".json"}) {
    const std::string name = session + ext;
    if (::unlinkat(fd_.get(), name.c_str(), 0) != 0 && errno != ENOENT)
      return sys_error("cannot remove", path_ + "/" + name, errno);
  }
  return {};
}

}  // namespace hoop::transcript
