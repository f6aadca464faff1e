#pragma once
// transcript::Uploader over hoopd's session API, for `hoopctl run` (live
// shipping) and `hoopctl ship` (what the spool kept). Used from the shipper
// thread only; it owns its client, so nothing else may use that client.

#include <cstdint>
#include <memory>

#include "client/client.h"
#include "transcript/shipper.h"

namespace hoop::ctl {

class HttpUploader final : public transcript::Uploader {
 public:
  HttpUploader(client::Client cl, int64_t session) : cl_(std::move(cl)), session_(session) {}
  Result<uint64_t> server_length() override;
  Result<uint64_t> append(uint64_t offset, std::string_view bytes) override;
  Result<void> complete(uint64_t length, const std::string& sha256_hex, std::optional<int> exit_status) override;

 private:
  client::Client cl_;
  int64_t session_;
};

}  // namespace hoop::ctl
