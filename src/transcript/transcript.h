#pragma once
// The transcript byte stream between the relay thread (one writer) and the
// shipper (one reader), with the spool file under it (issue 4).
//
// MUST: lose nothing: a byte leaves the in-memory ring only when it is in the
//       spool file or the server has acknowledged it; when neither can take
//       more (spool failed, server away), append() blocks (back-pressure).
// MUST: keep memory bounded: the ring (4 MiB by default) plus one write
//       buffer of the spool thread.
// MUST: fdatasync the spool at least every `sync_interval` while bytes
//       arrive; a write error (ENOSPC, EIO) is reported, never fatal, and
//       retried every second.
// MUST NOT: do any system call on the writer's path except when blocked.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "common/error.h"
#include "sys/fd.h"


namespace hoop::transcript {

struct TranscriptOptions {
  size_t ring_bytes = size_t{4} << 20;
  std::chrono::milliseconds sync_interval{1000};
  std::chrono::milliseconds retry_interval{1000};  // after a spool write error
  size_t spool_batch = size_t{256} << 10;          // wake the spool thread at this much
  /// Called on the writer's thread, without locks held, when append() starts
  /// waiting because the spool failed and the server has not acknowledged
  /// (`stalled` true, `why` one line) and when it goes on (false).
  std::function<void(bool stalled, const std::string& why)> on_stall;
};

class Transcript {
 public:
  using Clock = std::chrono::steady_clock;

  /// Live transcript over the (empty, locked) spool file `spool`; an invalid
  /// fd means no spool (the server alone must keep up). Starts the spool thread.
  Transcript(sys::Fd spool, TranscriptOptions opts = {});
  /// A finished transcript already in `file` (for `hoopctl ship`): closed,
  /// `length` bytes, digest known.
  static std::unique_ptr<Transcript> from_file(sys::Fd file, uint64_t length, std::string sha256_hex);
  ~Transcript();
  Transcript(const Transcript&) = delete;
  Transcript& operator=(const Transcript&) = delete;

  // --- writer (one thread) ---
  /// Appends all of `bytes`, waiting for room when needed. Error only after close().
  Status append(std::string_view bytes);
  /// No more bytes; the digest is final.
  void close();
  /// After close(): waits until every byte is written to the spool and
  /// synced, or the deadline; error says why the spool is not complete.
  Status drain_spool(Clock::time_point deadline);

  // --- reader (one thread) ---
  /// Up to `max` bytes at `offset` into `out` (replaced), from the ring or
  /// the spool file. Errc::io when they are in neither (lost by the server
  /// after acknowledging them).
  Status read(uint64_t offset, size_t max, std::string& out);
  /// Waits until length() > offset, close(), wake_reader() or the deadline.
  void wait_for_data(uint64_t offset, Clock::time_point deadline);
  void wake_reader();
  /// The server holds the first `n` bytes (monotonic; lower values are ignored).
  void acknowledge(uint64_t n);

  // --- state, any thread ---
  uint64_t length() const;
  bool closed() const;
  std::string sha256_hex() const;  // after close()
  bool stalled() const;
  uint64_t spooled() const;         // bytes written to the spool file
  std::string spool_error() const;  // empty while the spool is healthy
  int spool_fd() const { return spool_.get(); }

 private:
  struct FromFile {};
  Transcript(FromFile, sys::Fd file);
  void spool_loop();
  size_t copy_out(uint64_t offset, size_t n, char* dst) const;  // from the ring, mu_ held
  bool spool_ok_locked() const { return spool_.get() >= 0 && spool_error_.empty(); }

  TranscriptOptions opts_;
  sys::Fd spool_;
  // Not zeroed: pages are touched only as bytes arrive, so a short session
  // never faults in (or forks with) the whole ring.
  std::unique_ptr<char[]> ring_;
  size_t ring_cap_ = 0;
  mutable std::mutex mu_;
  std::condition_variable space_cv_;  // writer waits for room
  std::condition_variable data_cv_;   // reader waits for bytes
  std::condition_variable spool_cv_;  // spool thread waits for work
  uint64_t length_ = 0;
  uint64_t ring_start_ = 0;  // ring holds [ring_start_, length_)
  uint64_t spooled_ = 0;     // file holds [file_from_, spooled_)
  uint64_t file_from_ = 0;
  uint64_t synced_ = 0;
  uint64_t acked_ = 0;
  bool closed_ = false;
  bool stop_ = false;
  bool stalled_ = false;
  bool reader_waiting_ = false;
  uint64_t reader_wants_ = 0;  // wake the reader once length_ exceeds this
  bool reader_woken_ = false;
  std::string spool_error_;
  std::string sha_;
  Sha256 sha_state_;
  std::thread thread_;
};

}  // namespace hoop::transcript
