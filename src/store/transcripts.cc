#include "store/transcripts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/crypto.h"

namespace hoop::store {

namespace {

constexpr size_t kMaxHashers = 4096;          // open sessions hashed as they stream
constexpr size_t kIoBlock = size_t{1} << 20;  // re-reading a file to hash it

// Disk writes of a growing transcript start every this many bytes (append()).
constexpr uint64_t kWriteBehind = uint64_t{8} << 20;

std::string errno_text() { return std::strerror(errno); }

Error io_error(const std::string& what) {
  return make_error(Errc::unavailable, "transcript store: " + what + ": " + errno_text());
}

/// Closes a descriptor when it goes out of scope.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

Result<uint64_t> size_of(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return io_error("fstat");
  return static_cast<uint64_t>(st.st_size);
}

// pread until `n` bytes or the end of the file; returns what was read.
Result<size_t> read_at(int fd, char* buf, size_t n, uint64_t offset) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, buf + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return io_error("read");
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

}  // namespace

// A running SHA-256 of bytes [0, covered) of one transcript file.
struct Transcripts::Hasher {
  void update(const char* p, size_t n) {
    sha.update({p, n});
    covered += n;
  }
  std::string final_hex() { return sha.final_hex(); }

  Sha256 sha;
  uint64_t covered = 0;
  uint64_t written_back = 0;  // disk writes started for [0, written_back)
};

Result<std::unique_ptr<Transcripts>> Transcripts::open(const std::string& dir) {
  if (dir.empty()) return make_error(Errc::unavailable, "transcript store: no data_dir is configured");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return io_error("cannot create " + dir);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open the directory " + dir);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
    // Transcripts may show secrets the masks missed: owner-only.
    if (::fchmod(fd, st.st_mode & 0700) != 0) {
      Error e = io_error(dir + " is open to group or others and chmod failed");
      ::close(fd);
      return e;
    }
  }
  return std::unique_ptr<Transcripts>(new Transcripts(fd, dir));
}

Transcripts::Transcripts(int dir_fd, std::string dir) : dir_fd_(dir_fd), dir_(std::move(dir)) {}

Transcripts::~Transcripts() {
  ::close(dir_fd_);
}

std::string Transcripts::name_of(int64_t id) const {
  return std::to_string(id) + ".cast";
}

Result<int> Transcripts::open_file(int64_t id, bool create) {
  if (id <= 0) return make_error(Errc::invalid_argument, "bad session id");
  const std::string name = name_of(id);
  const int flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (create ? O_CREAT : 0);
  const int fd = ::openat(dir_fd_, name.c_str(), flags, 0600);
  if (fd < 0) {
    if (errno == ENOENT && !create) return -1;
    return io_error("cannot open " + dir_ + "/" + name);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(Errc::unavailable, "transcript store: " + dir_ + "/" + name + " is not a regular file");
  }
  return fd;
}

Result<uint64_t> Transcripts::length(int64_t id) {
  auto fd = open_file(id, /*create=*/false);
  if (!fd) return fd.error();
  if (*fd < 0) return uint64_t{0};
  FdGuard g{*fd};
  return size_of(*fd);
}

Result<uint64_t> Transcripts::append(int64_t id, uint64_t offset, std::string_view bytes, Refused* refused) {
  auto fd = open_file(id, /*create=*/true);
  if (!fd) return fd.error();
  FdGuard g{*fd};
  auto len = size_of(*fd);
  if (!len) return len.error();
  const uint64_t have = *len;
  auto refuse = [&](std::string why) -> Result<uint64_t> {
    if (refused != nullptr) refused->length = have;
    return make_error(Errc::conflict, std::move(why));
  };
  if (offset > have)
    return refuse("offset " + std::to_string(offset) + " is past the " + std::to_string(have) +
                  " bytes stored; resend from " + std::to_string(have));

  // The part already stored must be repeated exactly.
  const size_t overlap = static_cast<size_t>(std::min<uint64_t>(have - offset, bytes.size()));
  if (overlap > 0) {
    std::vector<char> stored(overlap);
    auto got = read_at(*fd, stored.data(), overlap, offset);
    if (!got) return got.error();
    if (*got != overlap || std::memcmp(stored.data(), bytes.data(), overlap) != 0)
      return refuse("bytes at offset " + std::to_string(offset) + " differ from those stored");
  }
  std::string_view tail = bytes.substr(overlap);
  if (tail.empty()) return have;

  Hasher* h = nullptr;
  if (auto it = hashers_.find(id); it != hashers_.end()) {
    h = it->second.get();
  } else if (have == 0 && hashers_.size() < kMaxHashers) {
    h = hashers_.emplace(id, std::make_unique<Hasher>()).first->second.get();
  }
  uint64_t at = have;
  while (!tail.empty()) {
    const ssize_t n = ::pwrite(*fd, tail.data(), tail.size(), static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = io_error("cannot write " + dir_ + "/" + name_of(id));
      hashers_.erase(id);  // what reached the file is unknown to it now
      return e;
    }
    if (h != nullptr && h->covered == at) h->update(tail.data(), static_cast<size_t>(n));
    at += static_cast<uint64_t>(n);
    tail.remove_prefix(static_cast<size_t>(n));
  }
  // seal() runs fdatasync on the io thread, where every other request
  // waits: for a long session, start the disk writes as the file grows
  // (without waiting for them), so seal() finds only the last few MiB dirty.
  // A 100 MB session: hoopctl exits ~50 ms after the last byte, was ~95.
  // Best effort; the fdatasync in seal() is what makes the bytes durable.
  if (h != nullptr && at - h->written_back >= kWriteBehind) {
    static_cast<void>(::sync_file_range(*fd, static_cast<off_t>(h->written_back),
                                        static_cast<off_t>(at - h->written_back), SYNC_FILE_RANGE_WRITE));
    h->written_back = at;
  }
  return at;
}

Result<std::string> Transcripts::read(int64_t id, uint64_t offset, size_t max) {
  auto fd = open_file(id, /*create=*/false);
  if (!fd) return fd.error();
  if (*fd < 0) return std::string();
  FdGuard g{*fd};
  auto len = size_of(*fd);
  if (!len) return len.error();
  if (offset >= *len) return std::string();
  std::string out(static_cast<size_t>(std::min<uint64_t>(*len - offset, max)), '\0');
  auto got = read_at(*fd, out.data(), out.size(), offset);
  if (!got) return got.error();
  out.resize(*got);
  return out;
}

Result<Transcripts::Sealed> Transcripts::seal(int64_t id) {
  auto fd = open_file(id, /*create=*/true);
  if (!fd) return fd.error();
  FdGuard g{*fd};
  if (::fdatasync(*fd) != 0) return io_error("cannot flush " + dir_ + "/" + name_of(id));
  // The file may be new (fdatasync does not cover its directory entry).
  if (::fsync(dir_fd_) != 0) return io_error("cannot flush the directory " + dir_);
  auto len = size_of(*fd);
  if (!len) return len.error();

  Sealed out{*len, {}};
  auto it = hashers_.find(id);
  if (it != hashers_.end() && it->second->covered == *len) {
    out.sha256 = it->second->final_hex();
  } else {
    // Shrunk under us: the digest fails, and so does the check.
    auto h = sha256_fd(*fd, "transcript " + std::to_string(id), *len);
    if (!h) return h.error();
    out.sha256 = *h;
  }
  hashers_.erase(id);
  if (out.sha256.empty()) return make_error(Errc::internal, "transcript store: SHA-256 failed");
  return out;
}

Status Transcripts::discard(int64_t id) {
  hashers_.erase(id);
  if (::unlinkat(dir_fd_, name_of(id).c_str(), 0) != 0 && errno != ENOENT)
    return io_error("cannot remove the stale " + dir_ + "/" + name_of(id));
  return {};
}

}  // namespace hoop::store
