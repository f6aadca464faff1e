#include <gtest/gtest.h>
#include <sys/stat.h>

#include "store/store.h"
#include "store/test_util.h"

namespace hoop::store {
namespace {

using testing::StoreTest;

void expect_same(const api::Request& a, const api::Request& b) {
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.run_as, b.run_as);
  EXPECT_EQ(a.argv, b.argv);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(a.cwd, b.cwd);
  EXPECT_EQ(a.tty, b.tty);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.rule, b.rule);
  EXPECT_EQ(a.action, b.action);
  EXPECT_EQ(a.reviewers, b.reviewers);
  EXPECT_EQ(a.approvals_required, b.approvals_required);
  EXPECT_EQ(a.grant_ttl_ms, b.grant_ttl_ms);
  EXPECT_EQ(a.created_at_ms, b.created_at_ms);
  EXPECT_EQ(a.expires_at_ms, b.expires_at_ms);
  EXPECT_EQ(a.decided_at_ms, b.decided_at_ms);
  EXPECT_EQ(a.decided_by, b.decided_by);
  EXPECT_EQ(a.grant_expires_at_ms, b.grant_expires_at_ms);
  EXPECT_EQ(a.uses, b.uses);
}

TEST_F(StoreTest, FileIsPrivateWalWithSchemaVersion) {
  ASSERT_TRUE(
      store_->insert_token({"0123456789abcdef", TokenKind::user, "bob", std::string(64, 'b'), "", 1, 0}));
  for (const char* suffix : {"", "-wal"}) {
    struct stat st {};
    ASSERT_EQ(::stat((path_ + suffix).c_str(), &st), 0) << suffix;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << suffix;
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  auto one = [&](const char* sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &s, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(s), SQLITE_ROW);
    std::string v = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return v;
  };
  EXPECT_EQ(one("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(one("PRAGMA user_version"), "2");
  sqlite3_close(db);
}

TEST_F(StoreTest, ExistingWorldReadableFileIsTightened) {
  store_.reset();
  ASSERT_EQ(::chmod(path_.c_str(), 0644), 0);
  reopen();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(StoreTest, RefusesNewerSchema) {
  store_.reset();
  raw_sql("PRAGMA user_version = 7;");
  auto s = open_sqlite(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("schema version 7, newer"), std::string::npos) << s.error().message;
}

TEST_F(StoreTest, ReopenKeepsDataAndSchema) {
  const int64_t id = insert(sample());
  reopen();
  auto r = store_->get_request(id);
  ASSERT_TRUE(r.ok() && r->has_value());
  expect_same(**r, sample());
}

TEST_F(StoreTest, HostileStringsRoundTrip) {
  api::Request r = sample();
  r.argv = {"/bin/sh",
            "-c",
            "echo \"hi\"\n'; DROP TABLE requests; --",
            "a\\\"b\\",
            "\x1b[2J\x07",
            "line1\r\nline2\ttab",
            "ünïcödé ✓ 🚀 \xe2\x80\xae rtl",
            "[\"json\",\"inside\"]",
            "",
            "{}",
            std::string(size_t{100} * 1024, 'x') + "\n" + std::string(10, '"')};
  r.reason = "why?\n\"because\"\x01";
  r.cwd = "/tmp/dir with 'quotes'\n";
  r.tty = "";
  r.reviewers = {"bob", "\"carol\"", "a\nb"};
  r.rule = "rule'; --";
  r.decided_by = "policy";
  r.state = api::State::approved;
  r.uses = 3;
  const int64_t id = insert(r);
  reopen();
  auto got = store_->get_request(id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->id, id);
  expect_same(**got, r);
  EXPECT_EQ((*got)->argv.back().size(), size_t{100} * 1024 + 11);
}

TEST_F(StoreTest, InvalidUtf8IsRefusedAndNothingWritten) {
  api::Request r = sample();
  r.argv.push_back("\xff\xfe");
  auto id = store_->insert_request(r);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.error().code, Errc::invalid_argument);
  EXPECT_EQ(*store_->count_requests(std::nullopt), 0);
}

TEST_F(StoreTest, UnknownRequestIsEmpty) {
  auto r = store_->get_request(12345);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST_F(StoreTest, UpdateWritesOnlyDecisionFields) {
  const int64_t id = insert(sample());
  api::Request u = sample("mallory", "evil");
  u.id = id;
  u.argv = {"/bin/rm", "-rf", "/"};
  u.state = api::State::approved;
  u.decided_at_ms = 1700000001000;
  u.decided_by = "bob";
  u.grant_expires_at_ms = 1700000901000;
  u.uses = 2;
  ASSERT_TRUE(store_->update_request(u));
  auto got = store_->get_request(id);
  ASSERT_TRUE(got.ok() && got->has_value());
  const api::Request& g = **got;
  EXPECT_EQ(g.state, api::State::approved);
  EXPECT_EQ(g.decided_at_ms, 1700000001000);
  EXPECT_EQ(g.decided_by, "bob");
  EXPECT_EQ(g.grant_expires_at_ms, 1700000901000);
  EXPECT_EQ(g.uses, 2);
  // What the grant is pinned to never changes through update_request.
  EXPECT_EQ(g.user, "alice");
  EXPECT_EQ(g.host, "web1");
  EXPECT_EQ(g.argv, sample().argv);

  u.id = id + 100;
  auto st = store_->update_request(u);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::not_found);
}

TEST_F(StoreTest, DecisionsAreUniquePerReviewerAndOrderedByTime) {
  const int64_t id = insert(sample());
  ASSERT_TRUE(store_->add_decision(id, {"carol", false, "later", 2000}));
  ASSERT_TRUE(store_->add_decision(id, {"bob", true, "first \"ok\"\n", 1000}));
  auto dup = store_->add_decision(id, {"bob", false, "again", 3000});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::conflict);
  auto unknown = store_->add_decision(id + 1, {"bob", true, "", 1});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, Errc::not_found);

  auto got = store_->get_request(id);
  ASSERT_TRUE(got.ok() && got->has_value());
  const auto& d = (*got)->decisions;
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].reviewer, "bob");
  EXPECT_TRUE(d[0].approve);
  EXPECT_EQ(d[0].comment, "first \"ok\"\n");
  EXPECT_EQ(d[0].at_ms, 1000);
  EXPECT_EQ(d[1].reviewer, "carol");
  EXPECT_FALSE(d[1].approve);
  EXPECT_EQ((*got)->approvals_count(), 1);
}

TEST_F(StoreTest, ConflictInsideBatchKeepsTheBatch) {
  const int64_t id = insert(sample());
  ASSERT_TRUE(store_->begin());
  ASSERT_TRUE(store_->add_decision(id, {"bob", true, "", 1}));
  ASSERT_TRUE(store_->savepoint());
  ASSERT_FALSE(store_->add_decision(id, {"bob", true, "", 2}).ok());
  store_->rollback_to();
  EXPECT_TRUE(store_->in_transaction());
  ASSERT_TRUE(store_->commit());
  reopen();
  auto got = store_->get_request(id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->decisions.size(), 1u);
}

TEST_F(StoreTest, SavepointRollbackUndoesOnlyThatOp) {
  ASSERT_TRUE(store_->begin());
  EXPECT_TRUE(store_->in_transaction());
  ASSERT_TRUE(store_->savepoint());
  const int64_t a = insert(sample("alice"));
  ASSERT_TRUE(store_->release());

  ASSERT_TRUE(store_->savepoint());
  const int64_t b = insert(sample("bob"));
  ASSERT_TRUE(store_->add_decision(a, {"carol", true, "", 5}));
  ASSERT_TRUE(store_->update_request([&] {
    api::Request r = sample();
    r.id = a;
    r.state = api::State::approved;
    return r;
  }()));
  store_->rollback_to();

  ASSERT_TRUE(store_->savepoint());
  const int64_t c = insert(sample("carol"));
  ASSERT_TRUE(store_->release());
  ASSERT_TRUE(store_->commit());
  EXPECT_FALSE(store_->in_transaction());

  reopen();
  auto users = [&] {
    std::vector<std::string> out;
    auto all = store_->list_requests(RequestFilter{});
    EXPECT_TRUE(all.ok());
    if (all.ok())
      for (const auto& r : *all) out.push_back(r.user);
    return out;
  };
  EXPECT_EQ(users(), (std::vector<std::string>{"carol", "alice"}));
  EXPECT_EQ(c, b);  // the undone insert left no trace, not even its id
  auto ra = store_->get_request(a);
  ASSERT_TRUE(ra.ok() && ra->has_value());
  EXPECT_EQ((*ra)->state, api::State::pending);
  EXPECT_TRUE((*ra)->decisions.empty());
  EXPECT_EQ(*store_->count_requests(std::nullopt), 2);
}

TEST_F(StoreTest, BatchCommitSurvivesReopenAndRollbackDiscards) {
  ASSERT_TRUE(store_->begin());
  for (int i = 0; i < 32; ++i) insert(sample("u" + std::to_string(i)));
  // Reads inside the batch see its writes.
  EXPECT_EQ(*store_->count_requests(api::State::pending), 32);
  ASSERT_TRUE(store_->commit());

  ASSERT_TRUE(store_->begin());
  for (int i = 0; i < 5; ++i) insert(sample());
  store_->rollback();
  EXPECT_FALSE(store_->in_transaction());

  ASSERT_TRUE(store_->begin());
  insert(sample());
  store_.reset();  // closed with the batch open: never committed
  reopen();
  EXPECT_EQ(*store_->count_requests(std::nullopt), 32);
}

TEST_F(StoreTest, TransactionMisuseIsAnError) {
  EXPECT_FALSE(store_->savepoint().ok());
  ASSERT_TRUE(store_->begin());
  EXPECT_FALSE(store_->begin().ok());
  EXPECT_TRUE(store_->in_transaction());
  store_->rollback();
}

TEST_F(StoreTest, ListFiltersAndPaging) {
  struct Spec {
    const char* user;
    const char* host;
    api::State state;
  };
  const Spec specs[] = {{"alice", "web1", api::State::pending}, {"bob", "web1", api::State::approved},
                        {"alice", "web2", api::State::denied},  {"alice", "web1", api::State::approved},
                        {"carol", "db1", api::State::pending},  {"alice", "web1", api::State::pending},
                        {"bob", "db1", api::State::expired}};
  std::vector<int64_t> ids;
  for (const auto& s : specs) {
    api::Request r = sample(s.user, s.host);
    r.state = s.state;
    ids.push_back(insert(r));
  }
  ASSERT_TRUE(store_->add_decision(ids[1], {"carol", true, "ok", 9}));

  auto F = [](std::optional<api::State> state, std::optional<std::string> user,
              std::optional<std::string> host, int64_t before = 0, int limit = 100) {
    RequestFilter f;
    f.state = state;
    f.user = std::move(user);
    f.host = std::move(host);
    f.before_id = before;
    f.limit = limit;
    return f;
  };
  auto list = [&](const RequestFilter& f) {
    auto r = store_->list_requests(f);
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<int64_t> out;
    if (r.ok())
      for (const auto& q : *r) out.push_back(q.id);
    return out;
  };
  using V = std::vector<int64_t>;
  EXPECT_EQ(list(F({}, {}, {})), (V{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}));
  EXPECT_EQ(list(F(api::State::pending, {}, {})), (V{ids[5], ids[4], ids[0]}));
  EXPECT_EQ(list(F({}, "alice", {})), (V{ids[5], ids[3], ids[2], ids[0]}));
  EXPECT_EQ(list(F({}, {}, "db1")), (V{ids[6], ids[4]}));
  EXPECT_EQ(list(F(api::State::approved, "alice", "web1")), (V{ids[3]}));
  EXPECT_EQ(list(F({}, "alice", "web1")), (V{ids[5], ids[3], ids[0]}));
  EXPECT_EQ(list(F({}, "nobody", {})), V{});
  // Paging: newest first, `before` excludes its own id.
  EXPECT_EQ(list(F({}, {}, {}, 0, 3)), (V{ids[6], ids[5], ids[4]}));
  EXPECT_EQ(list(F({}, {}, {}, ids[4], 3)), (V{ids[3], ids[2], ids[1]}));
  EXPECT_EQ(list(F({}, {}, {}, ids[1], 3)), (V{ids[0]}));
  EXPECT_EQ(list(F({}, "alice", {}, ids[3])), (V{ids[2], ids[0]}));

  auto full = store_->list_requests(F(api::State::approved, "bob", {}));
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->size(), 1u);
  expect_same((*full)[0], [&] {
    api::Request r = sample("bob", "web1");
    r.state = api::State::approved;
    return r;
  }());
  ASSERT_EQ((*full)[0].decisions.size(), 1u);
  EXPECT_EQ((*full)[0].decisions[0].reviewer, "carol");
}

TEST_F(StoreTest, PendingDueAndCounts) {
  std::vector<int64_t> ids;
  const int64_t expiries[] = {500, 100, 300, 100, 900};
  const api::State states[] = {api::State::pending, api::State::pending, api::State::approved,
                               api::State::pending, api::State::pending};
  for (int i = 0; i < 5; ++i) {
    api::Request r = sample();
    r.expires_at_ms = expiries[i];
    r.state = states[i];
    ids.push_back(insert(r));
  }
  using V = std::vector<int64_t>;
  EXPECT_EQ(*store_->pending_due(500, 100), (V{ids[1], ids[3], ids[0]}));  // oldest first
  EXPECT_EQ(*store_->pending_due(500, 2), (V{ids[1], ids[3]}));
  EXPECT_EQ(*store_->pending_due(99, 100), V{});
  api::Request done = sample();
  done.id = ids[1];
  done.state = api::State::expired;
  ASSERT_TRUE(store_->update_request(done));
  EXPECT_EQ(*store_->pending_due(500, 100), (V{ids[3], ids[0]}));

  EXPECT_EQ(*store_->count_requests(std::nullopt), 5);
  EXPECT_EQ(*store_->count_requests(api::State::pending), 3);
  EXPECT_EQ(*store_->count_requests(api::State::approved), 1);
  EXPECT_EQ(*store_->count_requests(api::State::denied), 0);
}

TEST_F(StoreTest, LiveGrantsMatchEveryPinnedFieldAndTheClock) {
  api::Request granted = sample();
  granted.state = api::State::approved;
  granted.grant_expires_at_ms = 1000;
  const int64_t id = insert(granted);
  api::Request pending = sample();  // same command, not approved: never a grant
  insert(pending);

  GrantKey k{granted.host, granted.user, granted.run_as, granted.argv, granted.path, granted.digest};
  auto hit = store_->live_grants(k, 999);
  ASSERT_TRUE(hit) << hit.error().message;
  ASSERT_EQ(hit->size(), 1u);
  EXPECT_EQ((*hit)[0].id, id);
  EXPECT_TRUE(store_->live_grants(k, 1000)->empty());  // expired at its deadline

  auto miss = [&](GrantKey other) { return store_->live_grants(other, 0)->empty(); };
  GrantKey x = k;
  x.argv.back() += "x";
  EXPECT_TRUE(miss(x));
  x = k;
  x.argv.push_back("more");
  EXPECT_TRUE(miss(x));
  x = k;
  x.digest[0] = x.digest[0] == 'a' ? 'b' : 'a';
  EXPECT_TRUE(miss(x));
  for (auto field : {&GrantKey::host, &GrantKey::user, &GrantKey::run_as, &GrantKey::path}) {
    x = k;
    x.*field += "2";
    EXPECT_TRUE(miss(x));
  }
}

TEST_F(StoreTest, TokensAndRevocation) {
  const Token host{"00000000000000aa", TokenKind::host, "web1", std::string(64, '1'), "rack 4", 10, 0};
  const Token user{"00000000000000bb", TokenKind::user, "bob", std::string(64, '2'), "", 20, 0};
  // Outside begin(): each write is its own durable transaction.
  ASSERT_TRUE(store_->insert_token(host));
  ASSERT_TRUE(store_->insert_token(user));
  EXPECT_FALSE(store_->in_transaction());
  auto dup = store_->insert_token(host);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::conflict);

  reopen();
  auto found = store_->find_token("00000000000000aa");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->kind, TokenKind::host);
  EXPECT_EQ((*found)->name, "web1");
  EXPECT_EQ((*found)->secret_hash, std::string(64, '1'));
  EXPECT_EQ((*found)->note, "rack 4");
  EXPECT_EQ((*found)->created_at_ms, 10);
  EXPECT_EQ((*found)->revoked_at_ms, 0);
  EXPECT_FALSE(store_->find_token("ffffffffffffffff")->has_value());

  ASSERT_TRUE(store_->revoke_token("00000000000000bb", 99));
  auto again = store_->revoke_token("00000000000000bb", 100);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::conflict);
  auto missing = store_->revoke_token("ffffffffffffffff", 100);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::not_found);
  EXPECT_FALSE(store_->revoke_token("00000000000000aa", 0).ok());

  reopen();
  auto all = store_->list_tokens();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, host.id);
  EXPECT_EQ((*all)[0].revoked_at_ms, 0);
  EXPECT_EQ((*all)[1].id, user.id);
  EXPECT_EQ((*all)[1].kind, TokenKind::user);
  EXPECT_EQ((*all)[1].revoked_at_ms, 99);  // the first revocation time stays
}

TEST_F(StoreTest, InMemoryWorksForTestsOfOtherLayers) {
  auto s = open_sqlite(":memory:");
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto id = (*s)->insert_request(sample());
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto r = (*s)->append_audit(1, "system", "request.create", *id, "{}");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->seq, 1);
  EXPECT_FALSE(std::filesystem::exists(":memory:"));
}

TEST_F(StoreTest, UnknownTokenKindFailsClosed) {
  ASSERT_TRUE(
      store_->insert_token({"00000000000000aa", TokenKind::host, "web1", std::string(64, '1'), "", 1, 0}));
  store_.reset();
  // The CHECK constraint stops this through SQL; a crafted file may still hold it.
  raw_sql("PRAGMA ignore_check_constraints = ON; UPDATE tokens SET kind = 'root';");
  reopen();
  auto t = store_->find_token("00000000000000aa");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::internal);
  EXPECT_FALSE(store_->list_tokens().ok());
}

TEST(TokenKind, Names) {
  EXPECT_STREQ(token_kind_name(TokenKind::host), "host");
  EXPECT_STREQ(token_kind_name(TokenKind::user), "user");
}

}  // namespace
}  // namespace hoop::store
