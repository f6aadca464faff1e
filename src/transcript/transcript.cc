// The transcript ring. One mutex guards the offsets; the writer copies into
// the ring under it (a memcpy of one relay read) and the spool thread copies
// out of it under it, then writes the file without the lock. Only the
// writer moves ring_start_ (dropping bytes), and only to what is safe.

#include "transcript/transcript.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sys/process.h"

namespace hoop::transcript {
namespace {

constexpr size_t kSpoolWriteChunk = size_t{256} << 10;

}  // namespace

Transcript::Transcript(sys::Fd spool, TranscriptOptions opts)
    : opts_(std::move(opts)), spool_(std::move(spool)), ring_(new char[std::max<size_t>(opts_.ring_bytes, 4096)]),
      ring_cap_(std::max<size_t>(opts_.ring_bytes, 4096)) {
  if (spool_.get() < 0) spool_error_ = "no spool file";
  thread_ = std::thread([this] {
    sys::lower_thread_priority();
    spool_loop();
  });
}

Transcript::Transcript(FromFile, sys::Fd file) : spool_(std::move(file)) {}

std::unique_ptr<Transcript> Transcript::from_file(sys::Fd file, uint64_t length, std::string sha256_hex) {
  struct stat st {};
  const uint64_t size = ::fstat(file.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  std::unique_ptr<Transcript> t(new Transcript(FromFile{}, std::move(file)));
  t->length_ = length;
  t->ring_start_ = length;
  t->spooled_ = t->synced_ = std::min(size, length);
  t->acked_ = 0;
  t->closed_ = true;
  t->sha_ = std::move(sha256_hex);
  return t;
}

Transcript::~Transcript() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  spool_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t Transcript::copy_out(uint64_t offset, size_t n, char* dst) const {
  const size_t cap = ring_cap_;
  const size_t idx = static_cast<size_t>(offset % cap);
  const size_t first = std::min(n, cap - idx);
  std::memcpy(dst, ring_.get() + idx, first);
  std::memcpy(dst + first, ring_.get(), n - first);
  return n;
}

Status Transcript::append(std::string_view bytes) {
  std::unique_lock lk(mu_);
  if (closed_) return make_error(Errc::internal, "transcript append after close");
  sha_state_.update(bytes);
  const size_t cap = ring_cap_;
  while (!bytes.empty()) {
    const uint64_t safe = spool_ok_locked() ? spooled_ : std::max(spooled_, acked_);
    ring_start_ = std::max(ring_start_, std::min(safe, length_));
    const size_t room = cap - static_cast<size_t>(length_ - ring_start_);
    if (room == 0) {
      spool_cv_.notify_one();
      if (!spool_ok_locked() && !stalled_) {
        stalled_ = true;
        const std::string why =
            "recording stalled: " + (spool_.get() < 0 ? std::string("no spool") : "spool: " + spool_error_) +
            ", and the server has not acknowledged the last " + std::to_string(length_ - acked_) +
            " bytes; the command waits";
        if (opts_.on_stall) {
          lk.unlock();
          opts_.on_stall(true, why);
          lk.lock();
        }
        continue;
      }
      space_cv_.wait_for(lk, std::chrono::milliseconds(200));
      continue;
    }
    const size_t n = std::min(room, bytes.size());
    const size_t idx = static_cast<size_t>(length_ % cap);
    const size_t first = std::min(n, cap - idx);
    std::memcpy(ring_.get() + idx, bytes.data(), first);
    std::memcpy(ring_.get(), bytes.data() + first, n - first);
    length_ += n;
    bytes.remove_prefix(n);
    // Only a wake-up the reader asked for: not one futex call per read.
    if (reader_waiting_ && length_ > reader_wants_) data_cv_.notify_one();
    if (length_ - spooled_ >= opts_.spool_batch) spool_cv_.notify_one();
  }
  if (stalled_) {
    stalled_ = false;
    if (opts_.on_stall) {
      lk.unlock();
      opts_.on_stall(false, "recording goes on");
    }
  }
  return {};
}

void Transcript::close() {
  std::lock_guard lk(mu_);
  if (closed_) return;
  sha_ = sha_state_.final_hex();
  closed_ = true;
  spool_cv_.notify_all();
  data_cv_.notify_all();
}

Status Transcript::drain_spool(Clock::time_point deadline) {
  std::unique_lock lk(mu_);
  if (spool_.get() < 0) return make_error(Errc::io, "no spool file");
  spool_cv_.notify_all();
  for (;;) {
    if (synced_ == length_ && file_from_ == 0) return {};
    if (file_from_ != 0)  // a hole: the spool can never be whole again
      return make_error(Errc::io, "the spool lacks bytes before " + std::to_string(file_from_) + " (" +
                                      (spool_error_.empty() ? "earlier write error" : spool_error_) +
                                      "); only the server has them");
    if (Clock::now() >= deadline) {
      std::string why = spool_error_.empty() ? "the spool did not catch up in time" : spool_error_;
      if (file_from_ != 0) why += " (bytes before " + std::to_string(file_from_) + " are only on the server)";
      return make_error(Errc::io, why);
    }
    space_cv_.wait_until(lk, std::min(deadline, Clock::now() + std::chrono::milliseconds(100)));
  }
}

void Transcript::spool_loop() {
  std::vector<char> buf(kSpoolWriteChunk);
  std::unique_lock lk(mu_);
  auto next_tick = Clock::now() + opts_.sync_interval;
  Clock::time_point retry_at{};
  for (;;) {
    spool_cv_.wait_until(lk, next_tick, [&] {
      return stop_ || (spool_error_.empty() && length_ - spooled_ >= opts_.spool_batch) ||
             (closed_ && synced_ < length_ && spool_error_.empty());
    });
    const bool tick = Clock::now() >= next_tick;
    if (tick) next_tick = Clock::now() + opts_.sync_interval;
    if (spool_.get() < 0) {
      if (stop_) return;
      continue;
    }
    while (spool_error_.empty() || Clock::now() >= retry_at) {
      const uint64_t from = std::max(spooled_, ring_start_);
      if (from > spooled_) {
        // The writer dropped bytes the server acknowledged while the spool
        // was failing: the file goes on after a hole.
        spooled_ = synced_ = file_from_ = from;
      }
      if (from >= length_) break;
      const size_t n = copy_out(from, std::min<uint64_t>(buf.size(), length_ - from), buf.data());
      lk.unlock();
      ssize_t w;
      do w = ::pwrite(spool_.get(), buf.data(), n, static_cast<off_t>(from));
      while (w < 0 && errno == EINTR);
      const int err = errno;
      lk.lock();
      if (w <= 0) {
        spool_error_ = std::string("cannot write the spool file: ") + std::strerror(w < 0 ? err : EIO);
        retry_at = Clock::now() + opts_.retry_interval;
        space_cv_.notify_all();
        break;
      }
      spooled_ = from + static_cast<uint64_t>(w);
      spool_error_.clear();
      space_cv_.notify_all();
    }
    if (synced_ < spooled_ && (tick || closed_ || stop_)) {
      const uint64_t upto = spooled_;
      lk.unlock();
      const int rc = ::fdatasync(spool_.get());
      const int err = errno;
      lk.lock();
      if (rc == 0) {
        synced_ = upto;
      } else {
        spool_error_ = std::string("cannot sync the spool file: ") + std::strerror(err);
        retry_at = Clock::now() + opts_.retry_interval;
      }
      space_cv_.notify_all();
    }
    if (stop_) return;
  }
}

Status Transcript::read(uint64_t offset, size_t max, std::string& out) {
  std::unique_lock lk(mu_);
  if (offset > length_)
    return make_error(Errc::invalid_argument, "offset " + std::to_string(offset) +
                                                  " is past the transcript (" + std::to_string(length_) +
                                                  " bytes)");
  size_t n = static_cast<size_t>(std::min<uint64_t>(max, length_ - offset));
  if (offset >= ring_start_ || n == 0) {
    out.resize(n);
    copy_out(offset, n, out.data());
    return {};
  }
  if (spool_.get() < 0 || offset < file_from_ || offset >= spooled_)
    return make_error(Errc::io, "transcript bytes at offset " + std::to_string(offset) +
                                    " are gone: the server lost them after acknowledging them, and the "
                                    "spool does not hold them");
  n = static_cast<size_t>(std::min<uint64_t>(n, spooled_ - offset));
  lk.unlock();
  out.resize(n);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(spool_.get(), out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      return make_error(Errc::io, std::string("cannot read the spool file: ") +
                                      (r < 0 ? std::strerror(errno) : "it is shorter than recorded"));
    got += static_cast<size_t>(r);
  }
  return {};
}

void Transcript::wait_for_data(uint64_t offset, Clock::time_point deadline) {
  std::unique_lock lk(mu_);
  reader_waiting_ = true;
  reader_wants_ = offset;
  data_cv_.wait_until(lk, deadline, [&] { return length_ > offset || closed_ || reader_woken_; });
  reader_waiting_ = false;
  reader_woken_ = false;
}

void Transcript::wake_reader() {
  std::lock_guard lk(mu_);
  reader_woken_ = true;
  data_cv_.notify_all();
}

void Transcript::acknowledge(uint64_t n) {
  std::lock_guard lk(mu_);
  if (n <= acked_) return;
  acked_ = std::min(n, length_);
  space_cv_.notify_all();
}

uint64_t Transcript::length() const {
  std::lock_guard lk(mu_);
  return length_;
}
bool Transcript::closed() const {
  std::lock_guard lk(mu_);
  return closed_;
}
std::string Transcript::sha256_hex() const {
  std::lock_guard lk(mu_);
  return sha_;
}
bool Transcript::stalled() const {
  std::lock_guard lk(mu_);
  return stalled_;
}
uint64_t Transcript::spooled() const {
  std::lock_guard lk(mu_);
  return spooled_;
}
std::string Transcript::spool_error() const {
  std::lock_guard lk(mu_);
  return spool_.get() < 0 ? "no spool file" : spool_error_;
}

}  // namespace hoop::transcript
