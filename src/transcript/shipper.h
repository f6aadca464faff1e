#pragma once
// Streams a transcript to hoopd while it is recorded (issue 4): chunks with
// their byte offset, resume at the server's length after any error, then
// `complete` with length, SHA-256 and exit status.
//
// MUST: resume at exactly the offset the server reports; never trust a
//       length the server could not have (more than we recorded).
// MUST: acknowledge to the transcript only bytes that we sent and the
//       server confirmed (so the ring never drops what the server lacks).
// MUST NOT: run on the relay thread (the Uploader does network I/O).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/error.h"
#include "transcript/transcript.h"

namespace hoop::transcript {

/// The server side of one session (the lead implements it over HTTP). Calls
/// come from the shipper thread only and MUST time out on their own.
struct Uploader {
  virtual ~Uploader() = default;
  /// Bytes the server holds for this session (GET /v1/sessions/{id} -> length).
  virtual Result<uint64_t> server_length() = 0;
  /// Append `bytes` at `offset` (idempotent on the server); returns the server's new length.
  /// Errc::conflict when the offset does not fit the server's length (then ask server_length()).
  virtual Result<uint64_t> append(uint64_t offset, std::string_view bytes) = 0;
  /// Ends the session: the server checks length and SHA-256 (lowercase hex) and marks it complete.
  virtual Result<void> complete(uint64_t length, const std::string& sha256_hex,
                                std::optional<int> exit_status) = 0;
};

struct ShipperOptions {
  size_t max_chunk = size_t{1} << 20;
  /// While bytes keep arriving, an upload waits until it has `batch_bytes`
  /// or its first byte is `batch_delay` old: a fast stream becomes a few
  /// large uploads, not thousands of small ones (each costs the server a
  /// request), and a live watcher is at most batch_delay behind.
  size_t batch_bytes = size_t{256} << 10;
  std::chrono::milliseconds batch_delay{20};
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{2000};
};

/// What finish() achieved. `confirmed`: the server checked and completed.
struct ShipReport {
  bool confirmed = false;
  uint64_t length = 0;         // transcript bytes
  uint64_t server_length = 0;  // last length the server confirmed
  std::string sha256;
  std::string detail;  // one line: what happened, or why not
};

/// One thread per session. The transcript and uploader MUST outlive it.
class Shipper {
 public:
  using Clock = std::chrono::steady_clock;
  Shipper(Transcript& t, Uploader& up, ShipperOptions opts = {});
  ~Shipper();  // stops the thread (without completing)
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  /// Starts shipping; `server_length` is the length from a probe, if any.
  void start(std::optional<uint64_t> server_length = std::nullopt);
  /// Closes the transcript, ships the rest and completes, giving up at
  /// `deadline` (bytes then stay in the spool for `hoopctl ship`).
  ShipReport finish(std::optional<int> exit_status, Clock::time_point deadline);
  /// finish() in two halves, so the caller can work while the rest ships:
  /// request_finish returns at once, wait_finish blocks as finish() does.
  void request_finish(std::optional<int> exit_status, Clock::time_point deadline);
  ShipReport wait_finish();

  uint64_t confirmed() const;
  std::string last_error() const;

 private:
  void loop();
  bool pause(std::chrono::milliseconds& backoff);  // false when stopping
  void set_error(const Error& e);

  Transcript& t_;
  Uploader& up_;
  ShipperOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool finishing_ = false;
  bool done_ = false;
  bool confirmed_done_ = false;
  std::optional<int> exit_status_;
  Clock::time_point deadline_ = Clock::time_point::max();
  std::optional<uint64_t> offset_;  // server length we resume at
  uint64_t confirmed_ = 0;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace hoop::transcript
