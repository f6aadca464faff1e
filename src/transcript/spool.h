#pragma once
// The local transcript spool (issue 4): `<spool_dir>/<session>.cast` holds
// the transcript bytes, locked (flock LOCK_EX) while a recorder writes it;
// `<session>.json` holds the metadata once the session has ended.
//
// MUST: use a trusted spool directory (root's, not writable by group or
//       others, every parent too: sys::open_trusted_dir), created 0700.
// MUST: create spool files 0600 with O_EXCL|O_NOFOLLOW; never follow a link
//       in the spool; open everything relative to the checked directory fd.
// MUST: accept only plain session ids (no '/', no leading '.').

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "sys/fd.h"

namespace hoop::transcript {

/// Written atomically (temp, fsync, rename) when a session ends.
struct SpoolMeta {
  std::string session;
  std::string request;
  uint64_t length = 0;
  std::string sha256;  // lowercase hex of the whole transcript
  std::optional<int> exit_status;
  bool finished = false;
};

std::string spool_meta_json(const SpoolMeta& m);
Result<SpoolMeta> parse_spool_meta(std::string_view text);

/// [A-Za-z0-9._-]{1,128}, not starting with '.'.
bool valid_session_id(std::string_view id);

class SpoolDir {
 public:
  static constexpr const char* kDefaultPath = "/var/spool/hoop";

  /// Opens `path` (absolute) after checking it and every parent with the
  /// trusted-directory walk; creates it 0700 when missing (its parent must
  /// be trusted).
  static Result<SpoolDir> open(const std::string& path);
  /// A directory the caller has already vouched for (tests, with a private
  /// temp dir). MUST NOT be used on the privileged path.
  static Result<SpoolDir> adopt_checked_elsewhere(const std::string& path);

  const std::string& path() const { return path_; }

  /// New `<session>.cast`, 0600, read-write, flock'ed for the life of the
  /// returned fd. Errc::conflict when it exists already.
  Result<sys::Fd> create_cast(const std::string& session) const;
  /// Existing `<session>.cast` for shipping, locked. Errc::conflict when a
  /// live recorder holds it.
  Result<sys::Fd> open_cast_for_ship(const std::string& session) const;
  Status write_meta(const SpoolMeta& m) const;
  /// std::nullopt when there is no .json (abandoned session).
  Result<std::optional<SpoolMeta>> read_meta(const std::string& session) const;
  /// Session ids that have a .cast, sorted.
  Result<std::vector<std::string>> list() const;
  /// Removes `.cast` then `.json` (a left-over .json alone is harmless).
  Status remove(const std::string& session) const;

 private:
  SpoolDir(sys::Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  sys::Fd fd_;  // O_RDONLY|O_DIRECTORY on the checked directory
  std::string path_;
};

}  // namespace hoop::transcript
