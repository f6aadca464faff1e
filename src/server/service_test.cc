// Service against a real SQLite store, a parsed policy, an io_context run by
// the test and a clock the test moves. Every refused attempt also checks
// that nothing changed (state, decisions and audit row count).
// Longer than most files: one fixture serves every rule of the service,
// and splitting it would mean copying the fixture.

#include "server/service.h"

#include <gtest/gtest.h>

#include "store/failing_store.h"
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "audit/chain.h"
#include "common/crypto.h"

namespace hoop::server {
namespace {

using api::State;
using std::chrono::milliseconds;

constexpr int64_t kStart = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;

constexpr const char* kPolicy = R"toml(
[groups]
sre = ["bob", "carol"]
ops = ["alice", "dave"]

[[rule]]
name = "restart-web"
users = ["@ops"]
hosts = ["web*"]
commands = [["/usr/bin/systemctl", "restart", "*"]]
action = "review"
reviewers = ["@sre", "alice"]
approvals = 1
ttl = "15m"

[[rule]]
name = "two-person"
users = ["@ops"]
hosts = ["*"]
commands = [["/usr/sbin/reboot"]]
action = "review"
reviewers = ["@sre", "dave"]
approvals = 2
ttl = "5m"

[[rule]]
name = "status"
users = ["*"]
commands = [["/usr/bin/systemctl", "status", "**"]]
action = "allow"
ttl = "1m"

[[rule]]
name = "no-shells"
users = ["*"]
commands = [["/bin/bash", "**"]]
action = "deny"

[[rule]]
name = "need-reason"
users = ["@ops"]
commands = [["/usr/bin/apt-get", "**"]]
action = "review"
reviewers = ["@sre"]
reason_required = true
)toml";

std::shared_ptr<const policy::Policy> parse_policy(const char* text) {
  std::vector<policy::Diagnostic> diags;
  auto p = std::make_shared<const policy::Policy>(policy::Policy::parse(text, "test.toml", &diags));
  EXPECT_TRUE(p->valid()) << (diags.empty() ? "" : diags[0].to_string());
  return p;
}

api::NewRequest restart(std::string user = "alice") {
  api::NewRequest r;
  r.user = std::move(user);
  r.argv = {"systemctl", "restart", "nginx"};
  r.path = "/usr/bin/systemctl";
  r.digest = std::string(64, 'a');
  return r;
}

api::NewRequest reboot() {
  api::NewRequest r = restart();
  r.argv = {"reboot"};
  r.path = "/usr/sbin/reboot";
  return r;
}

using FlakyStore = store::FailingCommitStore;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hoop-service-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto st = store::open_sqlite(dir_ + "/hoop.db");
    ASSERT_TRUE(st) << st.error().message;
    store_ = std::move(*st);
    flaky_ = std::make_unique<FlakyStore>(*store_);
    cfg_.request_ttl = milliseconds(30 * kMinute);
    cfg_.max_wait = milliseconds(60'000);
    make_service();
  }
  void TearDown() override {
    svc_.reset();
    flaky_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void make_service() {
    svc_.reset();
    svc_ = std::make_unique<Service>(io_.get_executor(), *flaky_, parse_policy(kPolicy), cfg_,
                                     [this] { return now_; });
  }

  /// Runs every ready handler (commits, posted answers), never waits on timers.
  void settle() {
    io_.restart();
    while (io_.poll() > 0) {
    }
  }

  static Principal host(std::string n = "web1") { return {store::TokenKind::host, std::move(n), "h"}; }
  static Principal user(std::string n) { return {store::TokenKind::user, std::move(n), "u"}; }

  int64_t file(const api::NewRequest& nr, const Principal& h = host()) {
    auto r = svc_->create_request(h, nr);
    EXPECT_TRUE(r) << r.error().message;
    settle();
    return r ? r->id : 0;
  }
  api::Request stored(int64_t id) {
    auto r = store_->get_request(id);
    EXPECT_TRUE(r && r->has_value());
    return **r;
  }
  size_t audit_rows() {
    auto rows = store_->read_audit(0, 0);
    EXPECT_TRUE(rows);
    return rows->size();
  }
  /// A refused call: right code, message containing `text`, nothing stored changed.
  void expect_refused(const Result<api::Request>& r, Errc code, const std::string& text, int64_t id) {
    const api::Request before = stored(id);
    const size_t rows = audit_rows();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, code) << r.error().message;
    EXPECT_NE(r.error().message.find(text), std::string::npos) << r.error().message;
    settle();
    const api::Request after = stored(id);
    EXPECT_EQ(after.state, before.state);
    EXPECT_EQ(after.decisions.size(), before.decisions.size());
    EXPECT_EQ(after.uses, before.uses);
    EXPECT_EQ(audit_rows(), rows);
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<FlakyStore> flaky_;  // what the service uses
  config::ServerConfig cfg_;
  boost::asio::io_context io_;
  int64_t now_ = kStart;
  std::unique_ptr<Service> svc_;
};

// ---- authentication ----

TEST_F(ServiceTest, AuthenticatesOnlyExactActiveTokens) {
  const std::string id = "0123456789abcdef", secret(64, 'c');
  ASSERT_TRUE(store_->insert_token({id, store::TokenKind::user, "bob", sha256_hex(secret), "", kStart, 0}));
  const std::string good = "Bearer hoop_" + id + "_" + secret;
  auto p = svc_->authenticate(good);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->kind, store::TokenKind::user);
  EXPECT_EQ(p->name, "bob");
  EXPECT_EQ(p->token_id, id);
  EXPECT_EQ(p->actor(), "user:bob");

  const std::vector<std::string> bad = {"",
                                        "Bearer",
                                        "Bearer ",
                                        "Bearer nope",
                                        "Basic YWxpY2U6eA==",
                                        "bearer hoop_" + id + "_" + secret,
                                        good + " ",
                                        good.substr(0, good.size() - 1),
                                        good.substr(0, good.size() - 1) + "d",                 // wrong secret
                                        "Bearer hoop_" + std::string(16, '0') + "_" + secret,  // unknown id
                                        "Bearer hoop_0123456789ABCDEF_" + secret,
                                        "Bearer hoop_" + id + "_" + std::string(64, 'C'),
                                        "Bearer hoop_" + id + "-" + secret,
                                        "Bearer  hoop_" + id + "_" + secret};
  for (const auto& h : bad) {
    auto r = svc_->authenticate(h);
    ASSERT_FALSE(r) << h;
    EXPECT_EQ(r.error().code, Errc::unauthenticated);
    EXPECT_EQ(r.error().message, "invalid or revoked credential");  // never says which part
  }
  EXPECT_EQ(svc_->counters().auth_failures, bad.size());

  ASSERT_TRUE(store_->revoke_token(id, kStart + 1));
  auto revoked = svc_->authenticate(good);
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().code, Errc::unauthenticated);
  EXPECT_EQ(svc_->counters().auth_failures, bad.size() + 1);
}

// ---- filing ----

TEST_F(ServiceTest, PolicyDecidesAtFilingAndAuditsIt) {
  auto allow = svc_->create_request(host(), [] {
    auto r = restart();
    r.argv = {"systemctl", "status", "nginx"};
    return r;
  }());
  ASSERT_TRUE(allow) << allow.error().message;
  EXPECT_EQ(allow->state, State::approved);
  EXPECT_EQ(allow->decided_by, "policy");
  EXPECT_EQ(allow->grant_expires_at_ms, kStart + kMinute);

  auto shell = restart();
  shell.argv = {"bash"};
  shell.path = "/bin/bash";
  auto deny = svc_->create_request(host(), shell);
  ASSERT_TRUE(deny);
  EXPECT_EQ(deny->state, State::denied);
  EXPECT_EQ(deny->rule, "no-shells");
  EXPECT_EQ(deny->decided_by, "policy");

  auto review = svc_->create_request(host(), restart());
  ASSERT_TRUE(review);
  EXPECT_EQ(review->state, State::pending);
  EXPECT_EQ(review->rule, "restart-web");
  EXPECT_EQ(review->action, "review");
  // The requester stays in the list; approve refuses them instead.
  EXPECT_EQ(review->reviewers, (std::vector<std::string>{"alice", "bob", "carol"}));
  EXPECT_EQ(review->expires_at_ms, kStart + 30 * kMinute);
  EXPECT_EQ(review->grant_ttl_ms, 15 * kMinute);
  EXPECT_EQ(review->host, "web1");

  // Host name comes from the credential: db1 does not match "web*".
  auto other = svc_->create_request(host("db1"), restart());
  ASSERT_TRUE(other);
  EXPECT_EQ(other->host, "db1");
  EXPECT_EQ(other->state, State::denied);
  EXPECT_EQ(other->rule, "");
  settle();

  auto rows = store_->read_audit(0, 0);
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ((*rows)[2].action, "request.create");
  EXPECT_EQ((*rows)[2].actor, "host:web1");
  EXPECT_EQ((*rows)[2].request_id, review->id);
  auto detail = nlohmann::json::parse((*rows)[2].detail);
  EXPECT_EQ(detail["state"], "pending");
  EXPECT_EQ(detail["rule"], "restart-web");
  EXPECT_EQ(detail["argv"][2], "nginx");
  EXPECT_EQ(svc_->counters().requests_created, 4u);
  EXPECT_EQ(svc_->counters().commits, 1u);  // one batch, one commit
}

TEST_F(ServiceTest, FilingRefusalsChangeNothing) {
  const size_t rows = audit_rows();
  auto by_user = svc_->create_request(user("alice"), restart());
  ASSERT_FALSE(by_user);
  EXPECT_EQ(by_user.error().code, Errc::permission_denied);
  EXPECT_EQ(by_user.error().message, "only a host credential can file requests");

  auto apt = restart();
  apt.argv = {"apt-get", "upgrade"};
  apt.path = "/usr/bin/apt-get";
  auto no_reason = svc_->create_request(host(), apt);
  ASSERT_FALSE(no_reason);
  EXPECT_EQ(no_reason.error().code, Errc::invalid_argument);
  EXPECT_EQ(no_reason.error().message, "rule 'need-reason' requires a reason: pass -r REASON");

  auto bad = restart();
  bad.user = "al ice";
  EXPECT_FALSE(svc_->create_request(host(), bad));
  bad = restart();
  bad.argv.clear();
  EXPECT_FALSE(svc_->create_request(host(), bad));
  settle();
  EXPECT_EQ(audit_rows(), rows);
  auto count = store_->count_requests(std::nullopt);
  ASSERT_TRUE(count);
  EXPECT_EQ(*count, 0);

  apt.reason = "CVE-2026-1234";
  auto ok = svc_->create_request(host(), apt);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->state, State::pending);
}

// ---- separation of duties ----

TEST_F(ServiceTest, ReviewChecksRunInOrderAndChangeNothing) {
  const int64_t id = file(restart());
  expect_refused(svc_->approve(host(), id, "root says yes"), Errc::permission_denied,
                 "host credentials cannot approve or deny", id);
  expect_refused(svc_->deny(host(), id, "no"), Errc::permission_denied, "host credentials", id);
  // Not a reviewer and not the requester: the request is invisible, and
  // looks exactly like an unknown id.
  expect_refused(svc_->approve(user("dave"), id, ""), Errc::not_found, "no request " + std::to_string(id),
                 id);
  auto unknown = svc_->approve(user("bob"), 9999, "");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::not_found);
  EXPECT_EQ(unknown.error().message, "no request 9999");
  // alice is in the reviewer list, and is still refused her own request.
  expect_refused(svc_->approve(user("alice"), id, "self"), Errc::permission_denied,
                 "you filed request " + std::to_string(id) + "; another person must review it", id);
  expect_refused(svc_->deny(user("alice"), id, "self"), Errc::permission_denied, "another person", id);
  expect_refused(svc_->deny(user("bob"), id, ""), Errc::invalid_argument, "comment", id);
  EXPECT_EQ(stored(id).state, State::pending);

  ASSERT_TRUE(svc_->approve(user("bob"), id, "ok"));
  settle();
  expect_refused(svc_->approve(user("carol"), id, ""), Errc::conflict,
                 "request " + std::to_string(id) + " is already approved", id);
  expect_refused(svc_->deny(user("carol"), id, "late"), Errc::conflict, "already approved", id);
  EXPECT_EQ(svc_->counters().approvals, 1u);
}

TEST_F(ServiceTest, ApprovalsNeedDistinctPeople) {
  const int64_t id = file(reboot());
  auto first = svc_->approve(user("bob"), id, "one");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->state, State::pending);
  settle();
  expect_refused(svc_->approve(user("bob"), id, "again"), Errc::conflict, "you already approved", id);
  expect_refused(svc_->deny(user("bob"), id, "changed my mind"), Errc::conflict, "already", id);
  EXPECT_EQ(stored(id).state, State::pending);

  now_ += 1000;
  auto second = svc_->approve(user("carol"), id, "two");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->state, State::approved);
  EXPECT_EQ(second->decided_by, "carol");
  EXPECT_EQ(second->grant_expires_at_ms, now_ + 5 * kMinute);
  settle();
  const api::Request r = stored(id);
  EXPECT_EQ(r.state, State::approved);
  ASSERT_EQ(r.decisions.size(), 2u);

  auto rows = store_->read_audit(0, 0);
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ(nlohmann::json::parse((*rows)[1].detail)["final"], false);
  EXPECT_EQ(nlohmann::json::parse((*rows)[2].detail)["final"], true);
  EXPECT_EQ((*rows)[2].actor, "user:carol");
}

TEST_F(ServiceTest, OneDenialEndsTheRequest) {
  const int64_t id = file(reboot());
  ASSERT_TRUE(svc_->approve(user("bob"), id, ""));
  auto d = svc_->deny(user("dave"), id, "not during the sale");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->state, State::denied);
  EXPECT_EQ(d->decided_by, "dave");
  settle();
  expect_refused(svc_->approve(user("carol"), id, ""), Errc::conflict, "is already denied", id);
  EXPECT_EQ(svc_->counters().denials, 1u);
}

TEST_F(ServiceTest, ConcurrentApproveAndDenyLeaveOneOutcome) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(file(restart()));
  int durable = 0;
  for (int64_t id : ids) {
    // Both calls are issued before the io_context runs the commit.
    auto a = (id % 2) ? svc_->approve(user("bob"), id, "race") : svc_->deny(user("carol"), id, "race");
    auto b = (id % 2) ? svc_->deny(user("carol"), id, "race") : svc_->approve(user("bob"), id, "race");
    EXPECT_TRUE(a);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().code, Errc::conflict);
  }
  svc_->on_durable([&](Status st) {
    EXPECT_TRUE(st);
    ++durable;
  });
  EXPECT_EQ(durable, 0);  // not before the commit
  settle();
  EXPECT_EQ(durable, 1);
  for (int64_t id : ids) {
    const api::Request r = stored(id);
    EXPECT_EQ(r.state, (id % 2) ? State::approved : State::denied);
    EXPECT_EQ(r.decisions.size(), 1u);
  }
}

// ---- expiry, grants, cancel ----

TEST_F(ServiceTest, PendingRequestsExpire) {
  const int64_t a = file(restart());
  const int64_t b = file(reboot());
  now_ += 30 * kMinute - 1;
  svc_->expire_due();
  settle();
  EXPECT_EQ(stored(a).state, State::pending);
  now_ += 1;
  svc_->expire_due();
  settle();
  const api::Request r = stored(a);
  EXPECT_EQ(r.state, State::expired);
  EXPECT_EQ(r.decided_by, "expiry");
  EXPECT_EQ(stored(b).state, State::expired);
  EXPECT_EQ(svc_->counters().expirations, 2u);
  expect_refused(svc_->approve(user("bob"), a, ""), Errc::conflict, "is already expired", a);
}

TEST_F(ServiceTest, ApproveExpiresAnOverduePendingRequestFirst) {
  const int64_t id = file(restart());
  const size_t rows = audit_rows();
  now_ += 31 * kMinute;  // the expiry timer has not run
  auto r = svc_->approve(user("bob"), id, "too late");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(r.error().message, "request " + std::to_string(id) + " has expired");
  settle();
  EXPECT_EQ(stored(id).state, State::expired);
  EXPECT_TRUE(stored(id).decisions.empty());
  auto all = store_->read_audit(0, 0);
  ASSERT_EQ(all->size(), rows + 1);
  EXPECT_EQ(all->back().action, "request.expire");
}

TEST_F(ServiceTest, GrantsAreUsedOnlyByTheirHostUntilTheyExpire) {
  const int64_t id = file(restart());
  expect_refused(svc_->record_use(host(), id), Errc::conflict, "is not approved", id);
  ASSERT_TRUE(svc_->approve(user("bob"), id, ""));
  settle();
  expect_refused(svc_->record_use(host("db1"), id), Errc::not_found, "no request", id);
  expect_refused(svc_->record_use(user("alice"), id), Errc::permission_denied, "host", id);
  auto used = svc_->record_use(host(), id);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->uses, 1);
  settle();
  now_ += 15 * kMinute;
  expect_refused(svc_->record_use(host(), id), Errc::conflict,
                 "grant for request " + std::to_string(id) + " expired", id);
  EXPECT_EQ(stored(id).uses, 1);
  EXPECT_EQ(svc_->counters().grant_uses, 1u);
}

TEST_F(ServiceTest, CancelOnlyByTheRequesterOrTheirHost) {
  const int64_t id = file(restart());
  expect_refused(svc_->cancel(host("db1"), id, "alice"), Errc::not_found, "no request", id);
  expect_refused(svc_->cancel(host(), id, "dave"), Errc::permission_denied, "not filed by dave", id);
  expect_refused(svc_->cancel(user("bob"), id, ""), Errc::permission_denied, "only the requester", id);
  expect_refused(svc_->cancel(user("mallory"), id, ""), Errc::not_found, "no request", id);
  auto c = svc_->cancel(user("alice"), id, "");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->state, State::cancelled);
  settle();
  expect_refused(svc_->cancel(user("alice"), id, ""), Errc::conflict, "already cancelled", id);

  const int64_t id2 = file(restart());
  auto by_host = svc_->cancel(host(), id2, "alice");
  ASSERT_TRUE(by_host);
  EXPECT_EQ(by_host->state, State::cancelled);
  EXPECT_EQ(svc_->counters().cancellations, 2u);

  const int64_t id3 = file(restart());
  now_ += 30 * kMinute;  // overdue, and the expiry timer has not run
  auto late = svc_->cancel(user("alice"), id3, "");
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().message, "request " + std::to_string(id3) + " has expired");
  settle();
  EXPECT_EQ(stored(id3).state, State::expired);
  EXPECT_EQ(svc_->counters().cancellations, 2u);
}

// ---- visibility ----

TEST_F(ServiceTest, ListAndGetShowOnlyWhatTheCallerMaySee) {
  const int64_t boot = file(reboot(), host("db1"));
  const int64_t web = file(restart());
  for (int i = 0; i < 120; ++i) ASSERT_TRUE(svc_->create_request(host("db1"), restart()));  // denied
  settle();

  EXPECT_FALSE(svc_->get_request(user("mallory"), web));
  EXPECT_FALSE(svc_->get_request(host("db1"), web));
  EXPECT_TRUE(svc_->get_request(user("bob"), web));
  EXPECT_TRUE(svc_->get_request(user("alice"), web));

  auto mallory = svc_->list_requests(user("mallory"), {});
  ASSERT_TRUE(mallory);
  EXPECT_TRUE(mallory->empty());
  // dave may review only `boot`, below 121 newer rows he cannot see: the
  // service reads page after page to find it.
  ListQuery one;
  one.limit = 1;
  auto dave = svc_->list_requests(user("dave"), one);
  ASSERT_TRUE(dave);
  ASSERT_EQ(dave->size(), 1u);
  EXPECT_EQ((*dave)[0].id, boot);
  ListQuery two;
  two.limit = 2;
  auto bob = svc_->list_requests(user("bob"), two);
  ASSERT_TRUE(bob);
  ASSERT_EQ(bob->size(), 2u);
  EXPECT_EQ((*bob)[0].id, web);
  EXPECT_EQ((*bob)[1].id, boot);
  auto web1 = svc_->list_requests(host(), {});
  ASSERT_TRUE(web1);
  ASSERT_EQ(web1->size(), 1u);
  ListQuery spy;
  spy.host = "db1";
  auto spied = svc_->list_requests(host(), spy);
  ASSERT_TRUE(spied);
  EXPECT_TRUE(spied->empty());
}

TEST_F(ServiceTest, AuditIsForPeopleAndItsChainVerifies) {
  const int64_t a = file(restart());
  ASSERT_TRUE(svc_->approve(user("bob"), a, "ok"));
  ASSERT_TRUE(svc_->record_use(host(), a));
  const int64_t b = file(reboot());
  ASSERT_TRUE(svc_->approve(user("bob"), b, ""));
  ASSERT_TRUE(svc_->deny(user("carol"), b, "no"));
  auto other = restart();
  other.argv[2] = "postgres";  // not the approved command: no grant reuse
  const int64_t c = file(other);
  ASSERT_TRUE(svc_->cancel(user("alice"), c, ""));
  file(other);
  now_ += 31 * kMinute;
  svc_->expire_due();
  settle();

  auto host_read = svc_->read_audit(host(), 0, 100);
  ASSERT_FALSE(host_read);
  EXPECT_EQ(host_read.error().code, Errc::permission_denied);
  auto rows = svc_->read_audit(user("mallory"), 0, 5000);
  ASSERT_TRUE(rows);
  std::vector<std::string> actions;
  audit::Verifier v;
  for (const auto& r : *rows) {
    EXPECT_TRUE(v.feed(r)) << v.error();
    actions.push_back(r.action);
  }
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(actions,
            (std::vector<std::string>{"request.create", "request.approve", "grant.use", "session.open", "request.create",
                                      "request.approve", "request.deny", "request.create", "request.cancel",
                                      "request.create", "request.expire"}));
  auto one = svc_->read_audit(user("bob"), 0, 0);  // clamped to 1
  ASSERT_TRUE(one);
  EXPECT_EQ(one->size(), 1u);
}

TEST_F(ServiceTest, PolicyReloadKeepsFiledRequestsAsTheyWere) {
  const int64_t id = file(reboot());
  svc_->set_policy(parse_policy(R"toml(
[[rule]]
name = "reboot-solo"
users = ["alice"]
commands = [["/usr/sbin/reboot"]]
action = "review"
reviewers = ["mallory"]
)toml"));
  expect_refused(svc_->approve(user("mallory"), id, ""), Errc::not_found, "no request", id);
  ASSERT_TRUE(svc_->approve(user("bob"), id, ""));
  EXPECT_EQ(stored(id).state, State::pending);  // still needs 2
  std::vector<policy::Diagnostic> diags;
  svc_->set_policy(
      std::make_shared<const policy::Policy>(policy::Policy::parse("[[rule]\n", "bad.toml", &diags)));
  auto fresh = svc_->create_request(host(), reboot());  // the broken reload was ignored
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->rule, "reboot-solo");
  EXPECT_EQ(fresh->reviewers, std::vector<std::string>{"mallory"});
}

// ---- durability and long-polls ----

TEST_F(ServiceTest, FailedCommitUndoesTheBatchAndTellsEveryCaller) {
  const int64_t id = file(restart());
  std::vector<Result<api::Request>> woken;
  auto h = svc_->wait_for_change(host(), id, State::pending, milliseconds(60'000),
                                 [&](Result<api::Request> r) { woken.push_back(std::move(r)); });
  const size_t rows = audit_rows();
  flaky_->fail_commit = true;
  ASSERT_TRUE(svc_->approve(user("bob"), id, "ok"));
  EXPECT_EQ(svc_->counters().approvals, 1u);
  std::vector<Status> done;
  svc_->on_durable([&](Status st) { done.push_back(st); });
  svc_->on_durable([&](Status st) { done.push_back(st); });
  settle();
  ASSERT_EQ(done.size(), 2u);
  for (const auto& st : done) {
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, Errc::unavailable);
  }
  EXPECT_TRUE(woken.empty());  // nothing changed, nobody is told it did
  EXPECT_EQ(svc_->waiting(), 1u);
  EXPECT_EQ(stored(id).state, State::pending);
  EXPECT_EQ(audit_rows(), rows);
  EXPECT_EQ(svc_->counters().commit_failures, 1u);
  EXPECT_EQ(svc_->counters().approvals, 0u);

  flaky_->fail_commit = false;
  ASSERT_TRUE(svc_->approve(user("bob"), id, "ok"));
  settle();
  ASSERT_EQ(woken.size(), 1u);
  EXPECT_EQ(woken[0]->state, State::approved);
}

TEST_F(ServiceTest, WaitersWakeAfterTheCommitAndNotBefore) {
  const int64_t id = file(restart());
  std::vector<Result<api::Request>> got;
  bool durable_when_woken = false;
  auto h =
      svc_->wait_for_change(host(), id, State::pending, milliseconds(60'000), [&](Result<api::Request> r) {
        durable_when_woken = !store_->in_transaction() && svc_->counters().commits == 2;
        got.push_back(std::move(r));
      });
  auto h2 = svc_->wait_for_change(user("bob"), id, State::pending, milliseconds(60'000),
                                  [&](Result<api::Request> r) { got.push_back(std::move(r)); });
  EXPECT_EQ(svc_->waiting(), 2u);
  ASSERT_TRUE(svc_->approve(user("carol"), id, "ok"));
  EXPECT_TRUE(got.empty());  // not inside the call, not before the commit
  settle();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(durable_when_woken);
  ASSERT_TRUE(got[0]);
  EXPECT_EQ(got[0]->state, State::approved);
  EXPECT_EQ(svc_->waiting(), 0u);
  settle();
  EXPECT_EQ(got.size(), 2u);  // never twice
}

TEST_F(ServiceTest, WaiterIgnoresChangesThatKeepTheState) {
  const int64_t id = file(reboot());
  int calls = 0;
  auto h = svc_->wait_for_change(host(), id, State::pending, milliseconds(60'000),
                                 [&](Result<api::Request>) { ++calls; });
  ASSERT_TRUE(svc_->approve(user("bob"), id, ""));  // 1 of 2
  settle();
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(svc_->waiting(), 1u);
  now_ += 31 * kMinute;
  svc_->expire_due();
  settle();
  EXPECT_EQ(calls, 1);
}

TEST_F(ServiceTest, CancelledWaiterIsNeverCalled) {
  const int64_t id = file(restart());
  int calls = 0;
  auto h = svc_->wait_for_change(host(), id, State::pending, milliseconds(60'000),
                                 [&](Result<api::Request>) { ++calls; });
  h.reset();
  EXPECT_EQ(svc_->waiting(), 0u);
  // Released between the wake-up and its delivery.
  auto late = svc_->wait_for_change(host(), id, State::pending, milliseconds(60'000),
                                    [&](Result<api::Request>) { ++calls; });
  ASSERT_TRUE(svc_->approve(user("bob"), id, ""));
  io_.restart();
  ASSERT_EQ(io_.run_one(), 1u);  // the commit: the answer is now posted
  late.reset();
  settle();
  EXPECT_EQ(calls, 0);
  // An answer known at once is cancellable too.
  auto now = svc_->wait_for_change(host(), id, State::pending, milliseconds(60'000),
                                   [&](Result<api::Request>) { ++calls; });
  now.reset();
  settle();
  EXPECT_EQ(calls, 0);
}

TEST_F(ServiceTest, WaitAnswersAtOnceWhenTheStateDiffersOrTheIdIsHidden) {
  const int64_t id = file(restart());
  std::vector<Result<api::Request>> got;
  auto cb = [&](Result<api::Request> r) { got.push_back(std::move(r)); };
  auto seen_other = svc_->wait_for_change(host(), id, State::approved, milliseconds(60'000), cb);
  auto hidden = svc_->wait_for_change(host("db1"), id, State::pending, milliseconds(60'000), cb);
  EXPECT_TRUE(got.empty());  // posted, never inline
  settle();
  ASSERT_EQ(got.size(), 2u);
  ASSERT_TRUE(got[0]);
  EXPECT_EQ(got[0]->state, State::pending);
  ASSERT_FALSE(got[1]);
  EXPECT_EQ(got[1].error().code, Errc::not_found);

  // A change still in the open batch is reported only after its commit.
  ASSERT_TRUE(svc_->approve(user("bob"), id, ""));
  bool committed = false;
  svc_->on_durable([&](Status) { committed = true; });
  auto fresh =
      svc_->wait_for_change(host(), id, State::pending, milliseconds(60'000), [&](Result<api::Request> r) {
        EXPECT_TRUE(committed);
        got.push_back(std::move(r));
      });
  settle();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2]->state, State::approved);

  // ...so an approval that never became durable is never reported.
  auto other = restart();
  other.argv[2] = "postgres";  // not the approved command: no grant reuse
  const int64_t id2 = file(other);
  flaky_->fail_commit = true;
  ASSERT_TRUE(svc_->approve(user("bob"), id2, ""));
  auto lost = svc_->wait_for_change(host(), id2, State::pending, milliseconds(60'000), cb);
  settle();
  ASSERT_EQ(got.size(), 4u);
  ASSERT_TRUE(got[3]);
  EXPECT_EQ(got[3]->state, State::pending);
  EXPECT_EQ(stored(id2).state, State::pending);
}

TEST_F(ServiceTest, TimeoutReturnsTheUnchangedRequestWithinMaxWait) {
  cfg_.max_wait = milliseconds(50);
  make_service();
  const int64_t id = file(restart());
  std::vector<Result<api::Request>> got;
  const auto t0 = std::chrono::steady_clock::now();
  auto h = svc_->wait_for_change(host(), id, State::pending, std::chrono::hours(1),
                                 [&](Result<api::Request> r) { got.push_back(std::move(r)); });
  io_.restart();
  while (got.empty() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    io_.run_one_for(milliseconds(100));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));  // capped at max_wait
  ASSERT_TRUE(got[0]);
  EXPECT_EQ(got[0]->state, State::pending);
  EXPECT_EQ(got[0]->id, id);
  EXPECT_EQ(svc_->waiting(), 0u);
}

}  // namespace
}  // namespace hoop::server

namespace hoop::server {
namespace {

TEST_F(ServiceTest, LiveGrantIsReusedOnlyForTheExactCommand) {
  const int64_t id = file(restart());
  ASSERT_TRUE(svc_->approve(user("bob"), id, "ok"));
  settle();

  // Same command inside the TTL: the approved request comes back, no new row.
  auto again = svc_->create_request(host(), restart());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->id, id);
  EXPECT_EQ(again->state, State::approved);
  settle();

  // Any difference in argv, digest, run-as or host files a new request.
  auto other_arg = restart();
  other_arg.argv[2] = "postgres";
  auto other_digest = restart();
  other_digest.digest = std::string(64, 'b');
  auto other_target = restart();
  other_target.run_as = "www-data";
  for (const auto& nr : {other_arg, other_digest, other_target}) {
    auto r = svc_->create_request(host(), nr);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_NE(r->id, id);
    settle();
  }
  auto other_host = svc_->create_request(host("web2"), restart());
  ASSERT_TRUE(other_host);
  EXPECT_NE(other_host->id, id);
  settle();

  // After the grant expires, a new request is filed and must be reviewed.
  now_ += 16 * kMinute;
  auto late = svc_->create_request(host(), restart());
  ASSERT_TRUE(late);
  EXPECT_NE(late->id, id);
  EXPECT_EQ(late->state, State::pending);
  settle();
}

}  // namespace
}  // namespace hoop::server
