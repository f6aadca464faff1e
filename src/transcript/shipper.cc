// The shipper loop. State that only the thread uses lives in loop(); what
// finish() and the accessors see is under mu_.

#include "transcript/shipper.h"

#include <algorithm>

#include "sys/process.h"

namespace hoop::transcript {

Shipper::Shipper(Transcript& t, Uploader& up, ShipperOptions opts) : t_(t), up_(up), opts_(opts) {}

Shipper::~Shipper() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  t_.wake_reader();
  if (thread_.joinable()) thread_.join();
}

void Shipper::start(std::optional<uint64_t> server_length) {
  if (thread_.joinable()) return;
  offset_ = server_length;
  thread_ = std::thread([this] {
    sys::lower_thread_priority();
    loop();
  });
}

uint64_t Shipper::confirmed() const {
  std::lock_guard lk(mu_);
  return confirmed_;
}

std::string Shipper::last_error() const {
  std::lock_guard lk(mu_);
  return last_error_;
}

void Shipper::set_error(const Error& e) {
  std::lock_guard lk(mu_);
  last_error_ = e.message;
}

bool Shipper::pause(std::chrono::milliseconds& backoff) {
  std::unique_lock lk(mu_);
  const auto until = std::min(deadline_, Clock::now() + backoff);
  cv_.wait_until(lk, until, [&] { return stop_; });
  backoff = std::min(backoff * 2, opts_.backoff_max);
  return !stop_;
}

void Shipper::loop() {
  std::chrono::milliseconds backoff = opts_.backoff_min;
  // Where the server's copy ends; unknown (ask) after any error.
  bool known = false;
  uint64_t offset = 0;
  {
    std::lock_guard lk(mu_);
    known = offset_.has_value();
    offset = offset_.value_or(0);
  }
  uint64_t sent_end = 0;  // highest end of a chunk the server confirmed
  std::string chunk;
  bool batching = false;
  Clock::time_point batch_since{};  // when the oldest unsent byte was first seen
  auto give_up = [&](bool confirmed) {
    std::lock_guard lk(mu_);
    done_ = true;
    confirmed_done_ = confirmed;
    cv_.notify_all();
  };
  for (;;) {
    bool finishing;
    Clock::time_point deadline;
    {
      std::lock_guard lk(mu_);
      if (stop_) return;
      finishing = finishing_;
      deadline = deadline_;
    }
    if (finishing && Clock::now() >= deadline) return give_up(false);
    const bool closed = t_.closed();  // before length(): when closed, the length is final
    const uint64_t len = t_.length();
    if (!known) {
      auto r = up_.server_length();
      if (!r) {
        set_error(r.error());
        if (!pause(backoff)) return;
        continue;
      }
      if (*r > len) {  // we never sent that much: do not believe it
        set_error(make_error(Errc::conflict, "the server claims " + std::to_string(*r) + " bytes, only " +
                                                 std::to_string(len) + " were recorded"));
        if (!pause(backoff)) return;
        continue;
      }
      known = true;
      offset = *r;
      t_.acknowledge(std::min(*r, sent_end));
      std::lock_guard lk(mu_);
      confirmed_ = *r;
    }
    if (offset < len && !closed && len - offset < opts_.batch_bytes) {
      if (!batching) {
        batching = true;
        batch_since = Clock::now();
      }
      const auto until = std::min(batch_since + opts_.batch_delay, deadline);
      if (Clock::now() < until) {
        t_.wait_for_data(offset + opts_.batch_bytes - 1, until);  // woken early only by a full batch or close
        continue;
      }
    }
    if (offset < len) {
      batching = false;
      if (auto s = t_.read(offset, opts_.max_chunk, chunk); !s) {
        set_error(s.error());  // bytes gone: nothing can bring them back
        return give_up(false);
      }
      auto r = up_.append(offset, chunk);
      if (!r) {
        set_error(r.error());
        known = false;  // conflict or not, the server's length says where to go on
        if (!pause(backoff)) return;
        continue;
      }
      const uint64_t end = offset + chunk.size();
      if (*r > len) {
        set_error(make_error(Errc::conflict, "the server answered length " + std::to_string(*r) +
                                                 " for bytes up to " + std::to_string(end)));
        known = false;
        if (!pause(backoff)) return;
        continue;
      }
      sent_end = std::max(sent_end, std::min(*r, end));
      t_.acknowledge(std::min(*r, end));
      offset = *r;
      backoff = opts_.backoff_min;
      std::lock_guard lk(mu_);
      confirmed_ = *r;
      continue;
    }
    if (closed && offset == len) {
      if (!finishing) {
        std::unique_lock lk(mu_);
        cv_.wait_for(lk, std::chrono::milliseconds(200), [&] { return stop_ || finishing_; });
        continue;
      }
      std::optional<int> status;
      {
        std::lock_guard lk(mu_);
        status = exit_status_;
      }
      auto c = up_.complete(len, t_.sha256_hex(), status);
      if (c) return give_up(true);
      set_error(c.error());
      known = false;  // ask again: the server may lack bytes
      if (!pause(backoff)) return;
      continue;
    }
    t_.wait_for_data(offset, Clock::now() + std::chrono::milliseconds(200));
  }
}

void Shipper::request_finish(std::optional<int> exit_status, Clock::time_point deadline) {
  t_.close();
  {
    std::lock_guard lk(mu_);
    finishing_ = true;
    exit_status_ = exit_status;
    deadline_ = deadline;
  }
  if (!thread_.joinable()) start();
  cv_.notify_all();
  t_.wake_reader();
}

ShipReport Shipper::finish(std::optional<int> exit_status, Clock::time_point deadline) {
  request_finish(exit_status, deadline);
  return wait_finish();
}

ShipReport Shipper::wait_finish() {
  Clock::time_point deadline;
  {
    std::lock_guard lk(mu_);
    deadline = deadline_;
  }
  {
    std::unique_lock lk(mu_);
    // A little past the deadline: the loop itself gives up at it.
    cv_.wait_until(lk, deadline + std::chrono::milliseconds(100), [&] { return done_; });
    stop_ = true;
  }
  cv_.notify_all();
  t_.wake_reader();
  thread_.join();  // an upload call in flight ends by its own timeout

  ShipReport rep;
  std::lock_guard lk(mu_);
  rep.confirmed = confirmed_done_;
  rep.length = t_.length();
  rep.sha256 = t_.sha256_hex();
  rep.server_length = confirmed_done_ ? rep.length : confirmed_;
  if (rep.confirmed)
    rep.detail = "shipped and confirmed by the server (" + std::to_string(rep.length) + " bytes)";
  else
    rep.detail = "the server has " + std::to_string(confirmed_) + " of " + std::to_string(rep.length) +
                 " bytes, not confirmed" + (last_error_.empty() ? "" : ": " + last_error_);
  return rep;
}

}  // namespace hoop::transcript
