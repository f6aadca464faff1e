#include "uploader.h"

namespace hoop::ctl {

Result<uint64_t> HttpUploader::server_length() {
  auto s = cl_.get_session(session_);
  if (!s) return s.error();
  return s->length;
}

Result<uint64_t> HttpUploader::append(uint64_t offset, std::string_view bytes) {
  return cl_.append_transcript(session_, offset, bytes);
}

Result<void> HttpUploader::complete(uint64_t length, const std::string& sha256_hex,
                                    std::optional<int> exit_status) {
  auto s = cl_.complete_session(session_, length, sha256_hex, exit_status);
  if (!s) return s.error();
  return {};
}

}  // namespace hoop::ctl
