#pragma once
// Opening files that hoop trusts or that hold secrets. Checks are made on
// the open descriptor (fstat), never on the path, so the file cannot be
// swapped between check and use.

#include <string>
#include <sys/types.h>

#include "common/error.h"
#include "sys/fd.h"

namespace hoop::sys {

/// Reads a file that grants trust (host config, host credential, policy as
/// root). MUST be a regular file owned by root and not writable by group or
/// others, and so must every directory above it; symlinks in the last
/// component are refused. Errors name the file and say what is wrong.
Result<std::string> read_root_owned_file(const std::string& path, size_t max_bytes);

/// Reads a personal secret (a reviewer's token): regular file owned by
/// `owner`, no permission bits for group or others.
Result<std::string> read_private_file(const std::string& path, uid_t owner, size_t max_bytes);

/// Opens the canonical directory `dir` one component at a time from "/"
/// with openat(O_NOFOLLOW), checking on each descriptor that the directory
/// is root's and not writable by group or others (sticky ones included).
/// `path` is the file this is for and is named in errors. A link met on the
/// way means something changed under us: refused, never followed.
Result<Fd> open_trusted_dir(const std::string& dir, const std::string& path);

/// Reads any regular file up to max_bytes (no ownership checks).
Result<std::string> read_file(const std::string& path, size_t max_bytes);

}  // namespace hoop::sys
