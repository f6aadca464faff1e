#include "audit/chain.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/crypto.h"

namespace hoop::audit {
namespace {

// A well-formed chain of `n` rows, as the store would write it.
std::vector<Row> make_chain(int n) {
  std::vector<Row> rows;
  std::string prev = kGenesisHash;
  for (int i = 1; i <= n; ++i) {
    Row r{i,
          1700000000000 + i,
          "user:alice",
          "request.approve",
          100 + i,
          R"({"reviewer":"bob","n":)" + std::to_string(i) + "}",
          prev,
          ""};
    r.hash = row_hash(r);
    prev = r.hash;
    rows.push_back(r);
  }
  return rows;
}

Verifier verify(const std::vector<Row>& rows) {
  Verifier v;
  for (const auto& r : rows)
    if (!v.feed(r)) break;
  return v;
}

TEST(RowHash, PinnedEncoding) {
  // Stored hashes depend on this encoding: changing it breaks every
  // existing audit trail, so the exact bytes are spelled out here.
  Row r{7, 1700000000123, "host:web1", "grant.use", 42, R"({"a":1})", kGenesisHash, ""};
  const std::string encoded =
      std::string("13:hoop-audit-v1;1:7;13:1700000000123;9:host:web1;9:grant.use;2:42;") +
      "7:{\"a\":1};64:" + kGenesisHash + ";";
  EXPECT_EQ(row_hash(r), sha256_hex(encoded));
  EXPECT_TRUE(is_sha256_hex(row_hash(r)));
}

TEST(RowHash, EveryFieldCountsAndHashDoesNot) {
  const Row base = make_chain(1)[0];
  const std::string h = row_hash(base);
  auto differs = [&](auto mutate) {
    Row r = base;
    mutate(r);
    return row_hash(r) != h;
  };
  EXPECT_TRUE(differs([](Row& r) { r.seq = 2; }));
  EXPECT_TRUE(differs([](Row& r) { r.at_ms += 1; }));
  EXPECT_TRUE(differs([](Row& r) { r.actor = "user:eve"; }));
  EXPECT_TRUE(differs([](Row& r) { r.action = "request.deny"; }));
  EXPECT_TRUE(differs([](Row& r) { r.request_id = 0; }));
  EXPECT_TRUE(differs([](Row& r) { r.detail += " "; }));
  EXPECT_TRUE(differs([](Row& r) { r.prev_hash[0] = '1'; }));
  EXPECT_FALSE(differs([](Row& r) { r.hash = "anything"; }));
}

TEST(RowHash, FieldBoundariesAreUnambiguous) {
  Row a{1, 1, "user:ab", "c", 0, "{}", kGenesisHash, ""};
  Row b{1, 1, "user:a", "bc", 0, "{}", kGenesisHash, ""};
  EXPECT_NE(row_hash(a), row_hash(b));
  // A separator smuggled into one field cannot imitate the next field.
  Row c{1, 1, "x", "y;1:z", 0, "{}", kGenesisHash, ""};
  Row d{1, 1, "x", "y", 0, "z;2:{}", kGenesisHash, ""};
  EXPECT_NE(row_hash(c), row_hash(d));
}

TEST(Verifier, AcceptsIntactChain) {
  const auto v = verify(make_chain(20));
  EXPECT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v.rows(), 20);
  EXPECT_FALSE(v.bad_seq().has_value());
  EXPECT_TRUE(v.error().empty());
}

TEST(Verifier, EmptyChainIsIntact) {
  Verifier v;
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(v.rows(), 0);
}

TEST(Verifier, EditedRowIsNamed) {
  auto rows = make_chain(20);
  rows[16].detail = R"({"reviewer":"eve"})";  // seq 17
  const auto v = verify(rows);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.bad_seq(), 17);
  EXPECT_EQ(v.error(), "audit row 17: hash does not match its contents (edited?)");
  EXPECT_EQ(v.rows(), 16);
}

TEST(Verifier, EditedRowWithRecomputedHashBreaksTheNextLink) {
  auto rows = make_chain(20);
  rows[16].actor = "user:eve";
  rows[16].hash = row_hash(rows[16]);
  const auto v = verify(rows);
  EXPECT_EQ(v.bad_seq(), 18);
  EXPECT_EQ(v.error(), "audit row 18: prev_hash does not match row 17");
}

TEST(Verifier, RemovedRowIsNamed) {
  auto rows = make_chain(20);
  rows.erase(rows.begin() + 16);  // seq 17
  const auto v = verify(rows);
  EXPECT_EQ(v.bad_seq(), 17);
  EXPECT_NE(v.error().find("audit row 17: expected seq 17, found 18"), std::string::npos) << v.error();
}

TEST(Verifier, RemovedFirstRowIsNamed) {
  auto rows = make_chain(5);
  rows.erase(rows.begin());
  const auto v = verify(rows);
  EXPECT_EQ(v.bad_seq(), 1);
}

TEST(Verifier, ReorderedRowsAreNamed) {
  auto rows = make_chain(20);
  std::swap(rows[8], rows[9]);  // 10 read before 9
  const auto v = verify(rows);
  EXPECT_EQ(v.bad_seq(), 9);
  EXPECT_NE(v.error().find("expected seq 9, found 10"), std::string::npos) << v.error();
}

TEST(Verifier, SwappedSeqNumbersAreNamed) {
  // What an UPDATE of the seq column does: the contents move, the order stays.
  auto rows = make_chain(20);
  std::swap(rows[8].seq, rows[9].seq);
  std::swap(rows[8], rows[9]);
  const auto v = verify(rows);
  EXPECT_EQ(v.bad_seq(), 9);
  EXPECT_EQ(v.error(), "audit row 9: prev_hash does not match row 8");
}

TEST(Verifier, DuplicatedRowIsNamed) {
  auto rows = make_chain(5);
  rows.insert(rows.begin() + 3, rows[2]);  // seq 3 twice
  const auto v = verify(rows);
  EXPECT_EQ(v.bad_seq(), 4);
  EXPECT_NE(v.error().find("expected seq 4, found 3"), std::string::npos) << v.error();
}

TEST(Verifier, FirstRowMustPointAtGenesis) {
  auto rows = make_chain(3);
  rows[0].prev_hash = std::string(64, 'f');
  rows[0].hash = row_hash(rows[0]);
  const auto v = verify(rows);
  EXPECT_EQ(v.bad_seq(), 1);
  EXPECT_EQ(v.error(), "audit row 1: prev_hash does not match the genesis hash");
}

TEST(Verifier, FirstFailureSticks) {
  auto rows = make_chain(10);
  rows[2].detail = "{}";
  Verifier v;
  for (int i = 0; i < 3; ++i) v.feed(rows[static_cast<size_t>(i)]);
  ASSERT_EQ(v.bad_seq(), 3);
  const std::string err = v.error();
  // Even a good row later does not clear or move the failure.
  EXPECT_FALSE(v.feed(rows[3]));
  EXPECT_FALSE(v.feed(make_chain(1)[0]));
  EXPECT_EQ(v.bad_seq(), 3);
  EXPECT_EQ(v.error(), err);
}

}  // namespace
}  // namespace hoop::audit
