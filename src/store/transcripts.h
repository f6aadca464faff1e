#pragma once
// Session transcripts on disk: one file per session, <dir>/<id>.cast, beside
// the database. The file's size is the session's length: no database write
// per chunk, and after a crash (even SIGKILL mid-write) the server comes back
// with length = what reached the file, which is where the host resumes.
//
// MUST: the only name built here is the decimal session id; files are
// created 0600 and opened with O_NOFOLLOW relative to the directory's fd, so
// a symlink planted in the directory is refused, never followed; non-regular
// files are refused too.
// MUST: bytes already stored are never changed: a write that overlaps them
// must repeat them exactly (an idempotent resend), else it is a conflict.
//
// Single-threaded (the server's io thread); no locks.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"

namespace hoop::store {

class Transcripts {
 public:
  /// Opens `dir`, creating it 0700 when missing; a symlink is refused.
  static Result<std::unique_ptr<Transcripts>> open(const std::string& dir);
  ~Transcripts();
  Transcripts(const Transcripts&) = delete;
  Transcripts& operator=(const Transcripts&) = delete;

  /// Bytes stored for session `id` (0 when it has no file yet).
  Result<uint64_t> length(int64_t id);

  /// What an append found when it could not apply: the stored length.
  struct Refused {
    uint64_t length = 0;
  };
  /// Stores `bytes` at `offset`. offset == length appends; bytes overlapping
  /// what is stored must equal it and only the new tail is written. Returns
  /// the new length. Errc::conflict (and `*refused` filled) when the overlap
  /// differs or offset > length; Errc::unavailable on I/O errors (the bytes
  /// that reached the file count, the caller resumes at the new length).
  Result<uint64_t> append(int64_t id, uint64_t offset, std::string_view bytes, Refused* refused);

  /// Up to `max` bytes from `offset` (fewer at the end; none past it).
  Result<std::string> read(int64_t id, uint64_t offset, size_t max);

  /// Flushes the file to disk (fdatasync, and the directory entry) and
  /// returns its length and SHA-256 (lowercase hex). Creates an empty file
  /// for a session that never sent a byte.
  struct Sealed {
    uint64_t length = 0;
    std::string sha256;
  };
  Result<Sealed> seal(int64_t id);

  /// Removes a file left for `id` by a session whose row was never
  /// committed (the id is handed out again). Missing is fine.
  Status discard(int64_t id);

 private:
  explicit Transcripts(int dir_fd, std::string dir);
  struct Hasher;
  Result<int> open_file(int64_t id, bool create);
  std::string name_of(int64_t id) const;

  int dir_fd_;
  std::string dir_;  // for messages
  // Running SHA-256 of each file written in order since this process
  // started, so completion need not re-read the file. Rebuilt by reading
  // when missing (after a restart, or past the bound).
  std::map<int64_t, std::unique_ptr<Hasher>> hashers_;
};

}  // namespace hoop::store
