// Transcript files: appends at every kind of offset, hostile directory
// contents (symlinks, non-regular files), digests across a reopen, and the
// session rows and schema upgrade that go with them.

#include "store/transcripts.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/crypto.h"
#include "store/test_util.h"

namespace hoop::store {
namespace {

using testing::StoreTest;

class TranscriptsTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    tdir_ = dir_ + "/transcripts";
    auto t = Transcripts::open(tdir_);
    ASSERT_TRUE(t) << t.error().message;
    t_ = std::move(*t);
  }
  void TearDown() override {
    t_.reset();
    StoreTest::TearDown();
  }
  std::string tdir_;
  std::unique_ptr<Transcripts> t_;
};

TEST_F(TranscriptsTest, DirectoryAndFilesAreOwnerOnly) {
  ASSERT_TRUE(t_->append(1, 0, "x", nullptr));
  struct stat st {};
  ASSERT_EQ(stat(tdir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat((tdir_ + "/1.cast").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(TranscriptsTest, AppendsResendsGapsAndDifferences) {
  auto len = t_->length(5);
  ASSERT_TRUE(len);
  EXPECT_EQ(*len, 0u);  // no file yet
  EXPECT_EQ(*t_->append(5, 0, "abc", nullptr), 3u);
  EXPECT_EQ(*t_->append(5, 3, "def", nullptr), 6u);
  EXPECT_EQ(*t_->append(5, 1, "bcd", nullptr), 6u);     // all stored already
  EXPECT_EQ(*t_->append(5, 4, "efgh", nullptr), 8u);    // overlap and a tail
  EXPECT_EQ(*t_->append(5, 8, "", nullptr), 8u);        // empty at the end
  Transcripts::Refused why;
  auto gap = t_->append(5, 9, "x", &why);
  ASSERT_FALSE(gap);
  EXPECT_EQ(gap.error().code, Errc::conflict);
  EXPECT_EQ(why.length, 8u);
  why = {};
  auto differ = t_->append(5, 6, "gX", &why);
  ASSERT_FALSE(differ);
  EXPECT_EQ(differ.error().code, Errc::conflict);
  EXPECT_EQ(why.length, 8u);
  EXPECT_EQ(*t_->read(5, 0, 100), "abcdefgh");
  EXPECT_EQ(*t_->read(5, 6, 100), "gh");
  EXPECT_EQ(*t_->read(5, 2, 3), "cde");
  EXPECT_EQ(*t_->read(5, 8, 100), "");
  EXPECT_EQ(*t_->read(5, 99, 100), "");
  auto sealed = t_->seal(5);
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(sealed->length, 8u);
  EXPECT_EQ(sealed->sha256, sha256_hex("abcdefgh"));
}

TEST_F(TranscriptsTest, DigestIsRightAfterAReopenAndForAnEmptySession) {
  ASSERT_TRUE(t_->append(2, 0, "before ", nullptr));
  auto again = Transcripts::open(tdir_);  // a restart: the running hash is gone
  ASSERT_TRUE(again);
  t_ = std::move(*again);
  EXPECT_EQ(*t_->length(2), 7u);
  ASSERT_TRUE(t_->append(2, 7, "after", nullptr));
  EXPECT_EQ(t_->seal(2)->sha256, sha256_hex("before after"));
  auto empty = t_->seal(3);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->length, 0u);
  EXPECT_EQ(empty->sha256, sha256_hex(""));
}

TEST_F(TranscriptsTest, SymlinksAndOtherFilesAreRefusedNotFollowed) {
  const std::string target = dir_ + "/victim";
  { std::ofstream(target) << "keep"; }
  ASSERT_EQ(symlink(target.c_str(), (tdir_ + "/4.cast").c_str()), 0);
  auto w = t_->append(4, 0, "evil", nullptr);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, Errc::unavailable);
  EXPECT_FALSE(t_->length(4));
  EXPECT_FALSE(t_->seal(4));
  std::ifstream f(target);
  std::string content((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(content, "keep");
  ASSERT_EQ(mkfifo((tdir_ + "/6.cast").c_str(), 0600), 0);
  EXPECT_FALSE(t_->append(6, 0, "x", nullptr));
  EXPECT_FALSE(t_->append(0, 0, "x", nullptr));
  EXPECT_FALSE(t_->append(-3, 0, "x", nullptr));
  // A symlinked directory is refused too.
  const std::string link = dir_ + "/linkdir";
  ASSERT_EQ(symlink(tdir_.c_str(), link.c_str()), 0);
  EXPECT_FALSE(Transcripts::open(link));
  EXPECT_FALSE(Transcripts::open(""));
}

TEST_F(TranscriptsTest, DiscardRemovesAStaleFile) {
  ASSERT_TRUE(t_->append(9, 0, "stale", nullptr));
  ASSERT_TRUE(t_->discard(9));
  EXPECT_EQ(*t_->length(9), 0u);
  EXPECT_TRUE(t_->discard(9));  // missing is fine
}

TEST_F(StoreTest, SessionsRoundTripCompleteOnceAndList) {
  const int64_t req = insert(sample());
  SessionRecord rec;
  rec.session.request_id = req;
  rec.session.host = "web1";
  rec.session.user = "alice";
  rec.session.run_as = "root";
  rec.session.argv = {"systemctl", "status"};
  rec.session.rule = "status";
  rec.session.record = api::kRecordBestEffort;
  rec.session.mask = {"token=\\S+"};
  rec.session.started_at_ms = 5;
  rec.reviewers = {"carol"};
  auto id = store_->insert_session(rec);
  ASSERT_TRUE(id) << id.error().message;
  auto id2 = store_->insert_session(rec);
  ASSERT_TRUE(id2);
  EXPECT_EQ(*store_->count_open_sessions(), 2);
  auto got = store_->get_session(*id);
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->session.mask, rec.session.mask);
  EXPECT_EQ((*got)->session.record, "best-effort");
  EXPECT_EQ((*got)->reviewers, rec.reviewers);
  EXPECT_EQ((*got)->session.state, api::SessionState::open);
  EXPECT_FALSE((*got)->session.exit_status);

  api::Session done = (*got)->session;
  done.length = 10;
  done.sha256 = std::string(64, 'b');
  done.exit_status = -1;
  done.ended_at_ms = 9;
  ASSERT_TRUE(store_->complete_session(done));
  auto twice = store_->complete_session(done);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Errc::conflict);
  reopen();
  auto back = store_->get_session(*id);
  ASSERT_TRUE(back && back->has_value());
  EXPECT_EQ((*back)->session.state, api::SessionState::complete);
  EXPECT_EQ((*back)->session.length, 10u);
  EXPECT_EQ((*back)->session.exit_status, -1);
  EXPECT_EQ(*store_->count_open_sessions(), 1);

  SessionFilter f;
  auto all = store_->list_sessions(f);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].session.id, *id2);  // newest first
  f.state = api::SessionState::complete;
  EXPECT_EQ(store_->list_sessions(f)->size(), 1u);
  f.state.reset();
  f.user = "bob";
  EXPECT_TRUE(store_->list_sessions(f)->empty());
  rec.session.request_id = 999;  // no such request
  auto orphan = store_->insert_session(rec);
  ASSERT_FALSE(orphan);
  EXPECT_EQ(orphan.error().code, Errc::not_found);
  EXPECT_FALSE(*store_->get_session(12345));
}

TEST_F(StoreTest, AVersion1FileIsUpgradedInPlace) {
  const int64_t id = insert(sample());
  store_.reset();
  // Back to what a version-1 hoopd left: no sessions, no record column.
  raw_sql("DROP TABLE sessions; ALTER TABLE requests DROP COLUMN record; PRAGMA user_version = 1;");
  reopen();
  auto r = store_->get_request(id);
  ASSERT_TRUE(r && r->has_value()) << (r ? "" : r.error().message);
  EXPECT_EQ((*r)->record, "required");  // the default for old rows
  EXPECT_EQ(*store_->count_open_sessions(), 0);
}

}  // namespace
}  // namespace hoop::store
