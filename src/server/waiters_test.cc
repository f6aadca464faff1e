// The long-poll registry on its own: at most once, never after release,
// timeouts through the hook, and small enough for thousands of waiters.

#include "server/waiters.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <boost/asio/io_context.hpp>
#include <vector>

namespace hoop::server {
namespace {

using api::State;
using std::chrono::milliseconds;

api::Request req(int64_t id, State s) {
  api::Request r;
  r.id = id;
  r.state = s;
  return r;
}

class WaitersTest : public ::testing::Test {
 protected:
  void settle() {
    io_.restart();
    while (io_.poll() > 0) {
    }
  }
  Waiters::Done count(int& n, std::vector<int64_t>* ids = nullptr) {
    return [&n, ids](Result<api::Request> r) {
      ++n;
      if (ids && r) ids->push_back(r->id);
    };
  }

  boost::asio::io_context io_;
  std::vector<std::pair<int64_t, Waiters::Ticket>> timeouts_;
  Waiters w_{io_.get_executor(),
             [this](int64_t id, const Waiters::Ticket& t) { timeouts_.emplace_back(id, t); }};
};

TEST_F(WaitersTest, WakeAnswersEveryWaiterOfThatIdOnce) {
  int a = 0, b = 0, other = 0;
  std::vector<int64_t> ids;
  auto h1 = w_.add(7, State::pending, milliseconds(60'000), count(a, &ids));
  auto h2 = w_.add(7, State::pending, milliseconds(60'000), count(b, &ids));
  auto h3 = w_.add(8, State::pending, milliseconds(60'000), count(other));
  EXPECT_EQ(w_.size(), 3u);
  EXPECT_TRUE(w_.has(7));
  w_.wake(7, req(7, State::approved));
  EXPECT_EQ(a + b, 0);  // posted, never inline
  EXPECT_EQ(w_.size(), 1u);
  EXPECT_FALSE(w_.has(7));
  settle();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(ids, (std::vector<int64_t>{7, 7}));
  w_.wake(7, req(7, State::approved));
  w_.deliver(Waiters::ticket(h1), req(7, State::approved));
  settle();
  EXPECT_EQ(a, 1);  // never twice
}

TEST_F(WaitersTest, WakeSkipsWaitersThatSawThatStateAlready) {
  int pending = 0, approved = 0;
  auto h1 = w_.add(7, State::pending, milliseconds(60'000), count(pending));
  auto h2 = w_.add(7, State::approved, milliseconds(60'000), count(approved));
  w_.wake(7, req(7, State::approved));
  settle();
  EXPECT_EQ(pending, 1);
  EXPECT_EQ(approved, 0);
  EXPECT_EQ(w_.size(), 1u);
  w_.wake(7, Result<api::Request>(make_error(Errc::not_found, "gone")));  // errors reach everyone
  settle();
  EXPECT_EQ(approved, 1);
}

TEST_F(WaitersTest, ReleasedHandleCancelsAtAnyPoint) {
  int n = 0;
  auto first = w_.add(1, State::pending, milliseconds(60'000), count(n));
  auto middle = w_.add(1, State::pending, milliseconds(60'000), count(n));
  auto last = w_.add(1, State::pending, milliseconds(60'000), count(n));
  middle.reset();  // unlinks from the middle of the list
  EXPECT_EQ(w_.size(), 2u);
  w_.wake(1, req(1, State::denied));
  first.reset();  // after the wake-up, before its delivery
  settle();
  EXPECT_EQ(n, 1);  // only `last`
  auto held = w_.answer(req(2, State::denied), count(n));
  held.reset();
  settle();
  EXPECT_EQ(n, 1);
  EXPECT_EQ(w_.size(), 0u);
  EXPECT_FALSE(w_.has(1));
}

TEST_F(WaitersTest, CallbackMayReleaseItsOwnHandle) {
  Waiters::Handle h;
  int n = 0;
  h = w_.add(3, State::pending, milliseconds(60'000), [&](Result<api::Request> r) {
    h.reset();  // destroys the entry that is running this callback
    EXPECT_TRUE(r);
    ++n;
  });
  w_.wake(3, req(3, State::approved));
  settle();
  EXPECT_EQ(n, 1);
  EXPECT_FALSE(h);
}

TEST_F(WaitersTest, TimeoutGoesThroughTheHookWhichAnswers) {
  int n = 0;
  auto h = w_.add(5, State::pending, milliseconds(10), count(n));
  auto gone = w_.add(6, State::pending, milliseconds(10), count(n));
  gone.reset();
  io_.restart();
  const auto t0 = std::chrono::steady_clock::now();
  while (timeouts_.empty() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    io_.run_one_for(milliseconds(50));
  ASSERT_EQ(timeouts_.size(), 1u);
  EXPECT_EQ(timeouts_[0].first, 5);
  EXPECT_EQ(w_.size(), 0u);             // left the registry before the hook ran
  w_.wake(5, req(5, State::approved));  // too late: no longer linked
  settle();
  EXPECT_EQ(n, 0);
  w_.deliver(timeouts_[0].second, req(5, State::pending));
  settle();
  EXPECT_EQ(n, 1);
}

TEST_F(WaitersTest, DestroyedRegistryNeverCallsAndHandlesStaySafe) {
  int n = 0;
  Waiters::Handle h;
  {
    Waiters local(io_.get_executor(), [](int64_t, const Waiters::Ticket&) { FAIL() << "no timeouts"; });
    h = local.add(1, State::pending, milliseconds(5), count(n));
  }
  settle();
  io_.restart();
  io_.run_for(milliseconds(30));
  h.reset();  // after the registry: must not touch it
  EXPECT_EQ(n, 0);
}

TEST_F(WaitersTest, FiveThousandWaitersAreCheapAndAllWake) {
  constexpr int kN = 5000;
  const size_t before = mallinfo2().uordblks;
  std::vector<Waiters::Handle> hs;
  hs.reserve(kN);
  int n = 0;
  for (int i = 0; i < kN; ++i) hs.push_back(w_.add(i % 2500, State::pending, milliseconds(60'000), count(n)));
  const size_t used = mallinfo2().uordblks - before;
  // Well under 1 KiB each, so 5,000 of them are a few MB of the 100 MB goal.
  EXPECT_LT(used, static_cast<size_t>(kN) * 1024) << used / kN << " bytes per waiter";
  EXPECT_EQ(w_.size(), static_cast<size_t>(kN));
  for (int i = 0; i < 2500; ++i) w_.wake(i, req(i, State::approved));
  settle();
  EXPECT_EQ(n, kN);
  EXPECT_EQ(w_.size(), 0u);
}

}  // namespace
}  // namespace hoop::server
