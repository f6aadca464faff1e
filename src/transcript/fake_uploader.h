#pragma once
// Test double for the server side of a session: an in-memory hoopd that can
// be down, drop connections before or after storing, lie about its length,
// or lose its tail. Shared state so a test can flip it while shipping runs.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "common/crypto.h"
#include "transcript/shipper.h"

namespace hoop::transcript::test {

struct FakeServer {
  std::mutex mu;
  std::string data;
  bool completed = false;
  std::optional<int> exit_status;
  std::string sha;
  // Faults.
  bool down = false;
  int fail_before_every = 0;    // every Nth append fails without storing
  int fail_after_every = 0;     // every Nth append stores, then "loses the connection"
  int lie_longer = 0;           // next N server_length answers claim 1000 bytes more
  bool lose_tail_once = false;  // next append: first truncate to half (the server lost data)
  int appends = 0, completes = 0, probes = 0;

  std::string snapshot() {
    std::lock_guard lk(mu);
    return data;
  }
  bool is_completed() {
    std::lock_guard lk(mu);
    return completed;
  }
};

class FakeUploader : public Uploader {
 public:
  explicit FakeUploader(std::shared_ptr<FakeServer> s) : s_(std::move(s)) {}

  Result<uint64_t> server_length() override {
    std::lock_guard lk(s_->mu);
    ++s_->probes;
    if (s_->down) return make_error(Errc::unavailable, "connection refused");
    if (s_->lie_longer > 0) {
      --s_->lie_longer;
      return s_->data.size() + 1000;
    }
    return s_->data.size();
  }

  Result<uint64_t> append(uint64_t offset, std::string_view bytes) override {
    std::lock_guard lk(s_->mu);
    if (s_->down) return make_error(Errc::unavailable, "connection refused");
    if (s_->completed) return make_error(Errc::conflict, "session complete");
    ++s_->appends;
    if (s_->lose_tail_once && !s_->data.empty()) {
      s_->lose_tail_once = false;
      s_->data.resize(s_->data.size() / 2);
    }
    if (s_->fail_before_every > 0 && s_->appends % s_->fail_before_every == 0)
      return make_error(Errc::unavailable, "connection reset");
    if (offset > s_->data.size()) return make_error(Errc::conflict, "offset past the end");
    // Idempotent: bytes already held must be the same.
    const size_t overlap = std::min<size_t>(bytes.size(), s_->data.size() - offset);
    if (s_->data.compare(offset, overlap, bytes.substr(0, overlap)) != 0)
      return make_error(Errc::conflict, "bytes differ");
    s_->data.append(bytes.substr(overlap));
    if (s_->fail_after_every > 0 && s_->appends % s_->fail_after_every == 0)
      return make_error(Errc::unavailable, "connection lost after the write");
    return s_->data.size();
  }

  Result<void> complete(uint64_t length, const std::string& sha256, std::optional<int> exit_status) override {
    std::lock_guard lk(s_->mu);
    if (s_->down) return make_error(Errc::unavailable, "connection refused");
    ++s_->completes;
    if (length != s_->data.size() || sha256 != sha256_hex(s_->data))
      return make_error(Errc::conflict, "length or digest mismatch");
    s_->completed = true;
    s_->sha = sha256;
    s_->exit_status = exit_status;
    return {};
  }

 private:
  std::shared_ptr<FakeServer> s_;
};

}  // namespace hoop::transcript::test
