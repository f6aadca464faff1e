// Sessions and transcripts in the Service: opening with a use (also inside
// the filing), appends at every kind of offset, completion, restart after a
// kill, visibility and the transcript long-poll. A real SQLite store and a
// real data_dir; the test runs the io_context and moves the clock.

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/crypto.h"
#include "server/service.h"
#include "store/store.h"

namespace hoop::server {
namespace {

using api::SessionState;
using api::State;
using std::chrono::milliseconds;

constexpr int64_t kStart = 1'700'000'000'000;

constexpr const char* kPolicy = R"toml(
[groups]
sre = ["bob", "carol"]

[recording]
mask = ['token=\S+']

[[rule]]
name = "restart-web"
users = ["alice"]
commands = [["/usr/bin/systemctl", "restart", "*"]]
action = "review"
reviewers = ["@sre"]
record = "best-effort"

[[rule]]
name = "status"
users = ["*"]
commands = [["/usr/bin/systemctl", "status", "**"]]
action = "allow"
reviewers = ["carol"]

[[rule]]
name = "no-shells"
users = ["*"]
commands = [["/bin/bash", "**"]]
action = "deny"
)toml";

api::NewRequest command(std::string verb, bool use) {
  api::NewRequest r;
  r.user = "alice";
  r.argv = {"systemctl", std::move(verb), "nginx"};
  r.path = "/usr/bin/systemctl";
  r.digest = std::string(64, 'a');
  r.use = use;
  return r;
}

class SessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hoop-sessions-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cfg_.data_dir = dir_;
    cfg_.max_wait = milliseconds(60'000);
    open();
  }
  void TearDown() override {
    svc_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  /// (Re)opens the store and the service, as hoopd does at start.
  void open() {
    svc_.reset();
    store_.reset();
    auto st = store::open_sqlite(cfg_.db_path());
    ASSERT_TRUE(st) << st.error().message;
    store_ = std::move(*st);
    std::vector<policy::Diagnostic> d;
    auto pol = std::make_shared<const policy::Policy>(policy::Policy::parse(kPolicy, "t.toml", &d));
    ASSERT_TRUE(pol->valid()) << (d.empty() ? "" : d[0].to_string());
    svc_ = std::make_unique<Service>(io_.get_executor(), *store_, pol, cfg_, [this] { return now_; });
  }
  void settle() {
    io_.restart();
    while (io_.poll() > 0) {
    }
  }
  static Principal host(std::string n = "web1") { return {store::TokenKind::host, std::move(n), "h"}; }
  static Principal user(std::string n) { return {store::TokenKind::user, std::move(n), "u"}; }

  /// An allowed command run with use: its session.
  api::Session run_allowed() {
    auto r = svc_->create_request(host(), command("status", true));
    EXPECT_TRUE(r) << r.error().message;
    settle();
    EXPECT_TRUE(r && r->session);
    return r && r->session ? *r->session : api::Session{};
  }
  std::string file_bytes(int64_t id) {
    std::ifstream f(dir_ + "/transcripts/" + std::to_string(id) + ".cast", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

  std::string dir_;
  config::ServerConfig cfg_;
  boost::asio::io_context io_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Service> svc_;
  int64_t now_ = kStart;
};

TEST_F(SessionsTest, UseInCreateOpensTheSessionInTheSameCommit) {
  const uint64_t commits = svc_->counters().commits;
  auto r = svc_->create_request(host(), command("status", true));
  ASSERT_TRUE(r) << r.error().message;
  settle();
  EXPECT_EQ(r->state, State::approved);
  EXPECT_EQ(r->uses, 1);
  EXPECT_EQ(r->record, "required");
  ASSERT_TRUE(r->session);
  const api::Session& s = *r->session;
  EXPECT_GT(s.id, 0);
  EXPECT_EQ(s.request_id, r->id);
  EXPECT_EQ(s.host, "web1");
  EXPECT_EQ(s.user, "alice");
  EXPECT_EQ(s.rule, "status");
  EXPECT_EQ(s.state, SessionState::open);
  EXPECT_EQ(s.mask, (std::vector<std::string>{"token=\\S+"}));
  EXPECT_EQ(s.length, 0u);
  EXPECT_FALSE(s.exit_status);
  EXPECT_EQ(svc_->counters().commits, commits + 1);  // one fsync for filing, use and session
  EXPECT_EQ(svc_->counters().open_sessions, 1);
  auto stored = store_->get_request(r->id);
  ASSERT_TRUE(stored && stored->has_value());
  EXPECT_EQ((*stored)->uses, 1);
  auto rows = store_->read_audit(0, 0);
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].action, "request.create");
  EXPECT_EQ((*rows)[1].action, "grant.use");
  EXPECT_EQ((*rows)[2].action, "session.open");

  // Without use: approved, but no use and no session.
  auto plain = svc_->create_request(host(), command("status", false));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->uses, 0);
  EXPECT_FALSE(plain->session);
}

TEST_F(SessionsTest, UseInCreateReusesALiveGrantButNeverOpensPendingOrDenied) {
  auto pending = svc_->create_request(host(), command("restart", true));
  ASSERT_TRUE(pending);
  settle();
  EXPECT_EQ(pending->state, State::pending);
  EXPECT_EQ(pending->uses, 0);
  EXPECT_FALSE(pending->session);
  EXPECT_EQ(pending->record, "best-effort");

  auto shell = command("x", true);
  shell.argv = {"bash"};
  shell.path = "/bin/bash";
  auto denied = svc_->create_request(host(), shell);
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->state, State::denied);
  EXPECT_FALSE(denied->session);
  auto none = store_->list_sessions({});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(svc_->approve(user("bob"), pending->id, "ok"));
  settle();
  auto again = svc_->create_request(host(), command("restart", true));  // grant reuse
  ASSERT_TRUE(again) << again.error().message;
  settle();
  EXPECT_EQ(again->id, pending->id);
  EXPECT_EQ(again->uses, 1);
  ASSERT_TRUE(again->session);
  EXPECT_EQ(again->session->record, "best-effort");
  EXPECT_EQ(again->session->request_id, pending->id);

  // /use opens a session of its own each time.
  auto use = svc_->record_use(host(), pending->id);
  ASSERT_TRUE(use);
  settle();
  EXPECT_EQ(use->uses, 2);
  ASSERT_TRUE(use->session);
  EXPECT_NE(use->session->id, again->session->id);
  EXPECT_EQ(svc_->counters().open_sessions, 2);
}

TEST_F(SessionsTest, AppendsAtEveryKindOfOffset) {
  const api::Session s = run_allowed();
  auto a = svc_->append_transcript(host(), s.id, 0, "hello ");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(*a, 6u);
  a = svc_->append_transcript(host(), s.id, 6, "world");  // at the end
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 11u);
  a = svc_->append_transcript(host(), s.id, 0, "hello world");  // a resend: nothing new
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 11u);
  a = svc_->append_transcript(host(), s.id, 6, "world!!");  // overlap plus a new tail
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 13u);
  EXPECT_EQ(file_bytes(s.id), "hello world!!");

  auto differ = svc_->append_transcript(host(), s.id, 6, "W");
  ASSERT_FALSE(differ);
  EXPECT_EQ(differ.error().code, Errc::conflict);
  auto gap = svc_->append_transcript(host(), s.id, 14, "x");
  ASSERT_FALSE(gap);
  EXPECT_EQ(gap.error().code, Errc::conflict);
  EXPECT_NE(gap.error().message.find("resend from 13"), std::string::npos) << gap.error().message;
  EXPECT_EQ(file_bytes(s.id), "hello world!!");  // refused writes changed nothing
  EXPECT_EQ(svc_->counters().rejected_writes, 2u);
  auto len = svc_->transcript_length(host(), s.id);
  ASSERT_TRUE(len);
  EXPECT_EQ(*len, 13u);
  auto got = svc_->get_session(user("alice"), s.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->length, 13u);

  // Only the recording host writes.
  auto person = svc_->append_transcript(user("alice"), s.id, 13, "x");
  ASSERT_FALSE(person);
  EXPECT_EQ(person.error().code, Errc::permission_denied);
  auto other = svc_->append_transcript(host("web2"), s.id, 13, "x");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Errc::not_found);
}

TEST_F(SessionsTest, CompleteChecksLengthAndDigestAndIsIdempotent) {
  const api::Session s = run_allowed();
  ASSERT_TRUE(svc_->append_transcript(host(), s.id, 0, "abc"));
  const std::string digest = sha256_hex("abc");
  auto short_len = svc_->complete_session(host(), s.id, {2, sha256_hex("ab"), 0});
  ASSERT_FALSE(short_len);
  EXPECT_EQ(short_len.error().code, Errc::conflict);
  EXPECT_NE(short_len.error().message.find("holds 3 bytes"), std::string::npos) << short_len.error().message;
  auto bad_digest = svc_->complete_session(host(), s.id, {3, sha256_hex("abd"), 0});
  ASSERT_FALSE(bad_digest);
  EXPECT_EQ(bad_digest.error().code, Errc::conflict);
  auto open = svc_->get_session(host(), s.id);
  ASSERT_TRUE(open);
  EXPECT_EQ(open->state, SessionState::open);

  auto done = svc_->complete_session(host(), s.id, {3, digest, 7});
  ASSERT_TRUE(done) << done.error().message;
  settle();
  EXPECT_EQ(done->state, SessionState::complete);
  EXPECT_EQ(done->sha256, digest);
  EXPECT_EQ(done->exit_status, 7);
  EXPECT_EQ(done->ended_at_ms, kStart);
  EXPECT_EQ(svc_->counters().open_sessions, 0);
  EXPECT_EQ(svc_->counters().session_completes, 1u);
  auto rows = store_->read_audit(0, 0);
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->back().action, "session.complete");
  EXPECT_NE(rows->back().detail.find(digest), std::string::npos);

  auto again = svc_->complete_session(host(), s.id, {3, digest, 7});  // the answer was lost
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->sha256, digest);
  auto other = svc_->complete_session(host(), s.id, {3, digest, 1});
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Errc::conflict);
  settle();
  auto after = store_->read_audit(0, 0);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->size(), rows->size());  // the repeat wrote nothing

  auto late = svc_->append_transcript(host(), s.id, 3, "more");
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::conflict);
  auto resend = svc_->append_transcript(host(), s.id, 0, "abc");
  ASSERT_FALSE(resend);  // complete means closed, even for identical bytes
  EXPECT_EQ(file_bytes(s.id), "abc");
}

TEST_F(SessionsTest, AnEmptySessionCompletes) {
  const api::Session s = run_allowed();
  auto done = svc_->complete_session(host(), s.id, {0, sha256_hex(""), std::nullopt});
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->length, 0u);
  EXPECT_FALSE(done->exit_status);
}

TEST_F(SessionsTest, AKilledServerComesBackWithTheFileSizeAndTakesTheResume) {
  const api::Session s = run_allowed();
  ASSERT_TRUE(svc_->append_transcript(host(), s.id, 0, "first part, "));
  // SIGKILL: no destructor flushes anything beyond what the calls did.
  // Here the objects go, and the store and service are opened afresh.
  open();
  auto len = svc_->transcript_length(host(), s.id);
  ASSERT_TRUE(len) << len.error().message;
  EXPECT_EQ(*len, 12u);
  EXPECT_EQ(svc_->counters().open_sessions, 1);  // read back from the store
  auto resend = svc_->append_transcript(host(), s.id, 6, "part, second");
  ASSERT_TRUE(resend) << resend.error().message;
  EXPECT_EQ(*resend, 18u);
  const std::string all = "first part, second";
  auto done = svc_->complete_session(host(), s.id, {all.size(), sha256_hex(all), 0});
  ASSERT_TRUE(done) << done.error().message;  // digest re-read from the file
  settle();
  open();
  auto back = svc_->get_session(user("alice"), s.id);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->state, SessionState::complete);
  EXPECT_EQ(back->length, all.size());
}

TEST_F(SessionsTest, VisibilityFollowsTheRuleReviewersAndTheRequester) {
  const api::Session allowed = run_allowed();  // rule "status": reviewers = carol
  auto req = svc_->create_request(host(), command("restart", false));
  ASSERT_TRUE(req);
  settle();
  ASSERT_TRUE(svc_->approve(user("bob"), req->id, ""));
  settle();
  auto used = svc_->record_use(host(), req->id);  // rule "restart-web": @sre
  ASSERT_TRUE(used && used->session);
  settle();
  const int64_t reviewed = used->session->id;

  auto sees = [&](const Principal& p, int64_t id) {
    auto s = svc_->get_session(p, id);
    if (!s) {
      EXPECT_EQ(s.error().code, Errc::not_found);
    }
    auto t = svc_->transcript_length(p, id);
    EXPECT_EQ(t.ok(), s.ok());
    return s.ok();
  };
  EXPECT_TRUE(sees(user("alice"), allowed.id));  // requester
  EXPECT_TRUE(sees(user("carol"), allowed.id));  // watcher of the allow rule
  EXPECT_FALSE(sees(user("bob"), allowed.id));   // not named by that rule
  EXPECT_TRUE(sees(user("bob"), reviewed));
  EXPECT_TRUE(sees(user("carol"), reviewed));
  EXPECT_FALSE(sees(user("mallory"), reviewed));
  EXPECT_TRUE(sees(host("web1"), reviewed));
  EXPECT_FALSE(sees(host("web2"), reviewed));
  EXPECT_FALSE(sees(user("alice"), 999));

  auto ids = [&](const Principal& p, SessionQuery q = {}) {
    std::vector<int64_t> out;
    auto l = svc_->list_sessions(p, q);
    EXPECT_TRUE(l) << l.error().message;
    if (l)
      for (const auto& s : *l) out.push_back(s.id);
    return out;
  };
  EXPECT_EQ(ids(user("alice")), (std::vector<int64_t>{reviewed, allowed.id}));  // newest first
  EXPECT_EQ(ids(user("bob")), (std::vector<int64_t>{reviewed}));
  EXPECT_EQ(ids(user("mallory")), (std::vector<int64_t>{}));
  EXPECT_EQ(ids(host("web2")), (std::vector<int64_t>{}));
  EXPECT_EQ(ids(host("web1"), {std::nullopt, std::nullopt, std::string("web2"), 0, 100}), (std::vector<int64_t>{}));
  EXPECT_EQ(ids(user("alice"), {std::nullopt, std::nullopt, std::nullopt, reviewed, 100}),
            (std::vector<int64_t>{allowed.id}));
  ASSERT_TRUE(svc_->complete_session(host(), allowed.id, {0, sha256_hex(""), 0}));
  settle();
  EXPECT_EQ(ids(user("alice"), {SessionState::open, std::nullopt, std::nullopt, 0, 100}),
            (std::vector<int64_t>{reviewed}));
}

TEST_F(SessionsTest, TranscriptLongPollWakesOnBytesAndOnCompletion) {
  const api::Session s = run_allowed();
  std::optional<Result<TranscriptChunk>> got;
  auto cb = [&](Result<TranscriptChunk> r) { got = std::move(r); };

  auto h = svc_->wait_for_transcript(user("carol"), s.id, 0, milliseconds(30'000), cb);
  settle();
  EXPECT_FALSE(got);  // nothing to say yet
  EXPECT_EQ(svc_->waiting(), 1u);
  ASSERT_TRUE(svc_->append_transcript(host(), s.id, 0, "live"));
  settle();
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->bytes, "live");
  EXPECT_EQ((*got)->session.length, 4u);
  EXPECT_EQ((*got)->session.state, SessionState::open);

  // Bytes already there: answered at once, from the offset.
  got.reset();
  h = svc_->wait_for_transcript(user("alice"), s.id, 2, milliseconds(30'000), cb);
  settle();
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->bytes, "ve");

  // At the end: held until completion, which wakes it with no bytes.
  got.reset();
  h = svc_->wait_for_transcript(user("alice"), s.id, 4, milliseconds(30'000), cb);
  settle();
  EXPECT_FALSE(got);
  ASSERT_TRUE(svc_->complete_session(host(), s.id, {4, sha256_hex("live"), 0}));
  settle();
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->bytes, "");
  EXPECT_EQ((*got)->session.state, SessionState::complete);
  EXPECT_EQ(svc_->waiting(), 0u);

  // A released handle is never answered; a stranger gets not_found at once.
  got.reset();
  const api::Session s2 = run_allowed();
  h = svc_->wait_for_transcript(user("alice"), s2.id, 0, milliseconds(30'000), cb);
  h.reset();
  ASSERT_TRUE(svc_->append_transcript(host(), s2.id, 0, "x"));
  settle();
  EXPECT_FALSE(got);
  h = svc_->wait_for_transcript(user("mallory"), s2.id, 0, milliseconds(30'000), cb);
  settle();
  ASSERT_TRUE(got);
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().code, Errc::not_found);
}

TEST_F(SessionsTest, TranscriptLongPollEndsEmptyWhenTheWaitRunsOut) {
  const api::Session s = run_allowed();
  std::optional<Result<TranscriptChunk>> got;
  auto h = svc_->wait_for_transcript(user("alice"), s.id, 0, milliseconds(20),
                                     [&](Result<TranscriptChunk> r) { got = std::move(r); });
  for (int i = 0; i < 100 && !got; ++i) {
    io_.restart();
    io_.run_for(milliseconds(5));
  }
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->bytes, "");
  EXPECT_EQ((*got)->session.state, SessionState::open);
}

}  // namespace
}  // namespace hoop::server
