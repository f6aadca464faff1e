#pragma once
// Long-poll registry: which callbacks wait for which request (or session
// transcript), until when. Used only by Service, on the io thread; no locks.
//
// MUST: a waiter's callback runs at most once, always posted (never inside
// the call that wakes it), and never after its handle was released.
// MUST: stay small per waiter (one callback, one timer, one id, the state
// it saw, two links),
// so that thousands of open long-polls cost a few megabytes.

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "api/types.h"
#include "common/error.h"

namespace hoop::server {

/// What a waiter saw, and whether a new value is what it waits for.
template <class T>
struct WaitTraits;

/// Request waiters wait for the state to differ from the one they saw.
template <>
struct WaitTraits<api::Request> {
  using Seen = api::State;
  static bool changed(const api::Request& r, Seen seen) { return r.state != seen; }
};

/// Transcript waiters saw `Seen` bytes of an open session: they wait for
/// more bytes or for the session to complete.
template <>
struct WaitTraits<api::Session> {
  using Seen = uint64_t;
  static bool changed(const api::Session& s, Seen seen) {
    return s.length > seen || s.state == api::SessionState::complete;
  }
};

/// Waiters keyed by id. A waiter is owned by its handle: the caller
/// keeps the handle while it waits and releases it (reset or destroy) to
/// cancel. The registry only links live waiters; it never owns them.
template <class T>
class BasicWaiters {
 public:
  using Seen = typename WaitTraits<T>::Seen;
  using Done = std::function<void(Result<T>)>;
  /// Owns one waiter; releasing it cancels the wait.
  using Handle = std::shared_ptr<void>;
  class Entry;
  /// Names one waiter without keeping it alive.
  using Ticket = std::weak_ptr<Entry>;
  /// Runs when a waiter's time ran out. The waiter has already left the
  /// registry; the hook answers it later with deliver().
  using OnTimeout = std::function<void(int64_t id, const Ticket& t)>;

  BasicWaiters(boost::asio::any_io_executor ex, OnTimeout on_timeout);
  /// Detaches every waiter still linked: their callbacks are never called,
  /// and releasing their handles afterwards stays safe.
  ~BasicWaiters();
  BasicWaiters(const BasicWaiters&) = delete;
  BasicWaiters& operator=(const BasicWaiters&) = delete;

  /// Links a waiter on `id` that is answered when a value `changed` from
  /// `seen` (WaitTraits) is woken, or when `timeout` passes.
  Handle add(int64_t id, Seen seen, std::chrono::milliseconds timeout, Done done);
  /// A waiter that is not linked: it is answered only through deliver().
  Handle hold(Done done);
  /// Posts `r` to a new, unlinked waiter (an answer known at once).
  Handle answer(Result<T> r, Done done);

  bool has(int64_t id) const { return heads_.count(id) != 0; }
  /// Unlinks every waiter on `id` for which `r` changed what it saw (all
  /// of them when `r` is an error) and posts `r` to each.
  void wake(int64_t id, const Result<T>& r);
  /// Posts `r` to one waiter; nothing happens if it was released or answered.
  void deliver(const Ticket& t, Result<T> r);

  static Ticket ticket(const Handle& h);
  /// Linked waiters (open long-polls).
  size_t size() const { return count_; }

 private:
  friend class Entry;
  void link(Entry& e);
  void unlink(Entry& e);
  void timed_out(Entry& e);

  boost::asio::any_io_executor ex_;
  OnTimeout on_timeout_;
  // Head of an intrusive doubly linked list per id: O(1) cancel, and no
  // per-waiter allocation beyond the entry itself.
  std::unordered_map<int64_t, Entry*> heads_;
  size_t count_ = 0;
};

extern template class BasicWaiters<api::Request>;
extern template class BasicWaiters<api::Session>;
/// Long-polls on a request's state (GET /v1/requests/{id}?wait=).
using Waiters = BasicWaiters<api::Request>;
/// Long-polls on a session's transcript (GET /v1/sessions/{id}/transcript?wait=).
using SessionWaiters = BasicWaiters<api::Session>;

}  // namespace hoop::server
