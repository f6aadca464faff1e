#include "server/waiters.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <utility>

namespace hoop::server {

/// One waiter. Owned by the caller's handle (shared_ptr); the registry and
/// every posted task refer to it weakly, so a released handle frees it at
/// once and nothing runs for it afterwards.
template <class T>
class BasicWaiters<T>::Entry : public std::enable_shared_from_this<Entry> {
 public:
  Entry(const boost::asio::any_io_executor& ex, int64_t id, Seen seen, Done done)
      : id_(id), seen_(seen), timer_(ex), done_(std::move(done)) {}
  ~Entry() {
    if (linked_) owner_->unlink(*this);
    // The timer's destructor cancels its wait; the handler then finds this
    // entry gone (weak pointer) and does nothing.
  }
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

  /// Runs the callback once. Moving it out first makes a second call a
  /// no-op, even when the callback itself releases the last handle.
  void fire(Result<T> r) {
    if (!done_) return;
    Done f = std::move(done_);
    done_ = nullptr;
    f(std::move(r));
  }

  int64_t id_;
  Seen seen_;
  BasicWaiters* owner_ = nullptr;  // valid while linked_
  Entry* prev_ = nullptr;
  Entry* next_ = nullptr;
  bool linked_ = false;
  boost::asio::steady_timer timer_;
  Done done_;
};

template <class T>
BasicWaiters<T>::BasicWaiters(boost::asio::any_io_executor ex, OnTimeout on_timeout)
    : ex_(std::move(ex)), on_timeout_(std::move(on_timeout)) {}

template <class T>
BasicWaiters<T>::~BasicWaiters() {
  for (auto& [id, head] : heads_) {
    for (Entry* e = head; e != nullptr;) {
      Entry* next = e->next_;
      e->linked_ = false;
      e->owner_ = nullptr;
      e->prev_ = e->next_ = nullptr;
      try {
        e->timer_.cancel();  // lets io_context::run() return
      } catch (...) {
        // Cancelling cannot fail in practice; a destructor must not throw.
      }
      e = next;
    }
  }
}

template <class T>
void BasicWaiters<T>::link(Entry& e) {
  auto [it, inserted] = heads_.try_emplace(e.id_, &e);
  if (!inserted) {
    e.next_ = it->second;
    it->second->prev_ = &e;
    it->second = &e;
  }
  e.owner_ = this;
  e.linked_ = true;
  ++count_;
}

template <class T>
void BasicWaiters<T>::unlink(Entry& e) {
  if (e.prev_ != nullptr) {
    e.prev_->next_ = e.next_;
  } else if (e.next_ != nullptr) {
    heads_[e.id_] = e.next_;
  } else {
    heads_.erase(e.id_);
  }
  if (e.next_ != nullptr) e.next_->prev_ = e.prev_;
  e.prev_ = e.next_ = nullptr;
  e.linked_ = false;
  --count_;
}

template <class T>
typename BasicWaiters<T>::Handle BasicWaiters<T>::add(int64_t id, Seen seen, std::chrono::milliseconds timeout,
                                                      Done done) {
  auto e = std::make_shared<Entry>(ex_, id, seen, std::move(done));
  link(*e);
  e->timer_.expires_after(timeout);
  e->timer_.async_wait([w = Ticket(e)](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: woken or released
    auto self = w.lock();
    // A wake-up may have won the race after the timer had already fired.
    if (self && self->linked_) self->owner_->timed_out(*self);
  });
  return e;
}

template <class T>
typename BasicWaiters<T>::Handle BasicWaiters<T>::hold(Done done) {
  return std::make_shared<Entry>(ex_, 0, Seen{}, std::move(done));
}

template <class T>
typename BasicWaiters<T>::Handle BasicWaiters<T>::answer(Result<T> r, Done done) {
  auto h = hold(std::move(done));
  deliver(ticket(h), std::move(r));
  return h;
}

template <class T>
void BasicWaiters<T>::timed_out(Entry& e) {
  unlink(e);
  on_timeout_(e.id_, e.weak_from_this());
}

template <class T>
void BasicWaiters<T>::wake(int64_t id, const Result<T>& r) {
  auto it = heads_.find(id);
  if (it == heads_.end()) return;
  for (Entry* e = it->second; e != nullptr;) {
    Entry* next = e->next_;
    // A change that leaves the state as this waiter saw it (a grant use, an
    // approval short of the quorum) is not what it waits for.
    if (!r || WaitTraits<T>::changed(*r, e->seen_)) {
      unlink(*e);
      e->timer_.cancel();
      deliver(e->weak_from_this(), r);
    }
    e = next;
  }
}

template <class T>
void BasicWaiters<T>::deliver(const Ticket& t, Result<T> r) {
  // The task holds only a weak reference: a handle released before it runs
  // cancels the answer.
  boost::asio::post(ex_, [t, r = std::move(r)]() mutable {
    if (auto e = t.lock()) e->fire(std::move(r));
  });
}

template <class T>
typename BasicWaiters<T>::Ticket BasicWaiters<T>::ticket(const Handle& h) {
  return std::static_pointer_cast<Entry>(h);
}

template class BasicWaiters<api::Request>;
template class BasicWaiters<api::Session>;

}  // namespace hoop::server
