// The audit chain as the SQLite store keeps it: appends, the tail cache
// across transactions and connections, tamper detection on the real file,
// and a micro-benchmark of one server cycle.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "audit/chain.h"
#include "store/store.h"
#include "store/test_util.h"

namespace hoop::store {
namespace {

using testing::StoreTest;

audit::Verifier verify(Store& s) {
  audit::Verifier v;
  auto rows = s.read_audit(0, 0);
  EXPECT_TRUE(rows.ok()) << rows.error().message;
  if (rows.ok())
    for (const auto& r : *rows)
      if (!v.feed(r)) break;
  return v;
}

void append(Store& s, int64_t n) {
  auto r = s.append_audit(1000 + n, "user:bob", "request.approve", n,
                          R"({"comment":"ok \"quoted\"\n","n":)" + std::to_string(n) + "}");
  ASSERT_TRUE(r.ok()) << r.error().message;
}

TEST_F(StoreTest, AppendBuildsAVerifiableChain) {
  auto first = store_->append_audit(5, "system", "token.create", 0, "{}");
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->seq, 1);
  EXPECT_EQ(first->prev_hash, audit::kGenesisHash);
  EXPECT_EQ(first->hash, audit::row_hash(*first));
  for (int i = 2; i <= 20; ++i) append(*store_, i);

  reopen();
  auto rows = store_->read_audit(0, 0);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 20u);
  EXPECT_EQ((*rows)[0].hash, first->hash);
  EXPECT_EQ((*rows)[1].prev_hash, first->hash);
  EXPECT_EQ((*rows)[5].detail, R"({"comment":"ok \"quoted\"\n","n":6})");
  const auto v = verify(*store_);
  EXPECT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v.rows(), 20);

  auto page = store_->read_audit(5, 3);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].seq, 6);
  EXPECT_EQ((*page)[2].seq, 8);
  EXPECT_TRUE(store_->read_audit(20, 10)->empty());
}

TEST_F(StoreTest, RolledBackAppendLeavesNoGapOrFork) {
  ASSERT_TRUE(store_->begin());
  ASSERT_TRUE(store_->savepoint());
  append(*store_, 1);
  ASSERT_TRUE(store_->release());
  ASSERT_TRUE(store_->savepoint());
  append(*store_, 2);
  append(*store_, 3);
  store_->rollback_to();  // the cached tail must forget rows 2 and 3
  ASSERT_TRUE(store_->savepoint());
  auto r = store_->append_audit(9, "system", "request.expire", 4, "{}");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->seq, 2);
  ASSERT_TRUE(store_->release());
  ASSERT_TRUE(store_->commit());

  ASSERT_TRUE(store_->begin());
  append(*store_, 5);
  store_->rollback();
  append(*store_, 6);  // outside begin(): its own transaction

  const auto v = verify(*store_);
  EXPECT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v.rows(), 3);
}

TEST_F(StoreTest, TwoWritersShareOneChain) {
  // hoopd and `hoopd token create` are two processes on one file; two
  // connections behave the same way. A tail cached across transactions would
  // fork the chain (or fail on the duplicate seq) here.
  auto other = open_sqlite(path_);
  ASSERT_TRUE(other.ok()) << other.error().message;
  Store& b = **other;
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(store_->begin());
    append(*store_, 10 * round + 1);
    append(*store_, 10 * round + 2);
    ASSERT_TRUE(store_->commit());
    append(b, 10 * round + 3);  // outside begin()
    ASSERT_TRUE(b.begin());
    append(b, 10 * round + 4);
    ASSERT_TRUE(b.commit());
  }
  const auto v = verify(*store_);
  EXPECT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v.rows(), 20);
}

TEST_F(StoreTest, SecondWriterWaitsForTheOpenBatch) {
  // BEGIN IMMEDIATE: while one connection holds a batch, another's append
  // waits (busy_timeout) instead of reading a tail that is about to change.
  auto other = open_sqlite(path_);
  ASSERT_TRUE(other.ok()) << other.error().message;
  ASSERT_TRUE(store_->begin());
  append(*store_, 1);
  append(*store_, 2);
  std::thread committer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_TRUE(store_->commit());
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*other)->append_audit(7, "system", "token.create", 0, "{}");
  const auto waited = std::chrono::steady_clock::now() - t0;
  committer.join();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->seq, 3);
  EXPECT_GE(waited, std::chrono::milliseconds(150));
  const auto v = verify(*store_);
  EXPECT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v.rows(), 3);
}

class TamperTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    for (int i = 1; i <= 20; ++i) append(*store_, i);
    store_.reset();
  }
  audit::Verifier verify_file() {
    reopen();
    return verify(*store_);
  }
};

TEST_F(TamperTest, Untouched) {
  const auto v = verify_file();
  EXPECT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v.rows(), 20);
}

TEST_F(TamperTest, EditedDetail) {
  raw_sql("UPDATE audit SET detail = replace(detail, 'ok', 'no') WHERE seq = 12;");
  const auto v = verify_file();
  EXPECT_EQ(v.bad_seq(), 12);
  EXPECT_EQ(v.error(), "audit row 12: hash does not match its contents (edited?)");
}

TEST_F(TamperTest, DeletedMiddleRow) {
  raw_sql("DELETE FROM audit WHERE seq = 10;");
  const auto v = verify_file();
  EXPECT_EQ(v.bad_seq(), 10);
  EXPECT_NE(v.error().find("audit row 10: expected seq 10, found 11"), std::string::npos) << v.error();
}

TEST_F(TamperTest, SwappedSeq) {
  raw_sql(
      "UPDATE audit SET seq = -1 WHERE seq = 9; UPDATE audit SET seq = 9 WHERE seq = 10;"
      "UPDATE audit SET seq = 10 WHERE seq = -1;");
  const auto v = verify_file();
  EXPECT_EQ(v.bad_seq(), 9);
  EXPECT_EQ(v.error(), "audit row 9: prev_hash does not match row 8");
}

TEST_F(TamperTest, EditedAndRehashedRow) {
  // Recomputing the edited row's own hash only moves the break to the next row.
  reopen();
  auto rows = store_->read_audit(0, 0);
  ASSERT_TRUE(rows.ok());
  audit::Row r = (*rows)[4];
  r.actor = "user:eve";
  store_.reset();
  raw_sql("UPDATE audit SET actor = 'user:eve', hash = '" + audit::row_hash(r) + "' WHERE seq = 5;");
  const auto v = verify_file();
  EXPECT_EQ(v.bad_seq(), 6);
}

// Not a timed assertion: prints the rate of one server cycle (create, one
// approval, state update, two audit rows, each in a savepoint) with one
// durable commit per 32 cycles, as hoopd's group commit does.
TEST_F(StoreTest, MicroBenchmarkCycles) {
  constexpr int kCycles = 2000;
  constexpr int kBatch = 32;
  const auto t0 = std::chrono::steady_clock::now();
  int done = 0;
  while (done < kCycles) {
    ASSERT_TRUE(store_->begin());
    for (int i = 0; i < kBatch && done < kCycles; ++i, ++done) {
      ASSERT_TRUE(store_->savepoint());
      api::Request r = sample();
      r.created_at_ms = 1700000000000 + done;
      auto id = store_->insert_request(r);
      ASSERT_TRUE(id.ok()) << id.error().message;
      ASSERT_TRUE(store_
                      ->append_audit(r.created_at_ms, "host:web1", "request.create", *id,
                                     R"({"user":"alice","argv":["/usr/bin/systemctl","restart","nginx"]})")
                      .ok());
      ASSERT_TRUE(store_->release());
      ASSERT_TRUE(store_->savepoint());
      ASSERT_TRUE(store_->add_decision(*id, {"bob", true, "ok", r.created_at_ms + 1}));
      r.id = *id;
      r.state = api::State::approved;
      r.decided_at_ms = r.created_at_ms + 1;
      r.decided_by = "bob";
      r.grant_expires_at_ms = r.decided_at_ms + r.grant_ttl_ms;
      ASSERT_TRUE(store_->update_request(r));
      ASSERT_TRUE(store_
                      ->append_audit(r.decided_at_ms, "user:bob", "request.approve", *id,
                                     R"({"comment":"ok","final":true})")
                      .ok());
      ASSERT_TRUE(store_->release());
    }
    ASSERT_TRUE(store_->commit());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "[ bench    ] %d create+approve cycles in %.3f s: %.0f cycles/s (batches of %d, synchronous=FULL)\n",
      kCycles, secs, kCycles / secs, kBatch);
  EXPECT_EQ(*store_->count_requests(api::State::approved), kCycles);
  const auto v = verify(*store_);
  EXPECT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v.rows(), 2 * kCycles);
}

}  // namespace
}  // namespace hoop::store
