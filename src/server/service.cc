// The approval service. Longer than most files (~900 lines) on purpose:
// every separation-of-duties and visibility rule (requests and sessions) and
// the batch/durability machinery they rely on read best in one place, in the
// order the checks run. The session calls are the part to move out first
// (service_sessions.cc), keeping their rules beside the request rules.

#include "server/service.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "common/crypto.h"
#include "common/escape.h"
#include "server/waiters.h"
#include "store/transcripts.h"

namespace hoop::server {
namespace {

using nlohmann::json;

constexpr int kExpirePerCall = 500;  // expire_due() bound per timer tick
constexpr int kListMaxPages = 20;    // list_requests() over-fetch bound
constexpr int kListMaxLimit = 1000;
constexpr std::string_view kBearer = "Bearer ";
constexpr std::string_view kTokenPrefix = "hoop_";
constexpr size_t kTokenIdLen = 16;
constexpr size_t kTokenSecretLen = 64;
constexpr const char* kBadCredential = "invalid or revoked credential";
// Compared against when a token id is unknown, so an unknown id and a wrong
// secret cost the same work.
constexpr std::string_view kDummyHash = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

Error denied(std::string m) {
  return make_error(Errc::permission_denied, std::move(m));
}
Error conflict(std::string m) {
  return make_error(Errc::conflict, std::move(m));
}
Error invalid(std::string m) {
  return make_error(Errc::invalid_argument, std::move(m));
}
Error no_request(int64_t id) {
  return make_error(Errc::not_found, "no request " + std::to_string(id));
}
Error no_session(int64_t id) {
  return make_error(Errc::not_found, "no session " + std::to_string(id));
}

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Audit details are compact JSON. Invalid UTF-8 cannot come through the
// JSON parser, but a replacement character beats an exception if it did.
std::string compact(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

int distinct_approvals(const api::Request& r) {
  std::set<std::string> who;
  for (const auto& d : r.decisions)
    if (d.approve) who.insert(d.reviewer);
  return static_cast<int>(who.size());
}

Status check_comment(const std::string& c) {
  if (c.size() > api::kMaxTextBytes)
    return make_error(Errc::too_large,
                      "comment is longer than " + std::to_string(api::kMaxTextBytes) + " bytes");
  if (!is_clean_text(c)) return invalid("comment contains control characters");
  return {};
}

}  // namespace

std::string Principal::actor() const {
  return std::string(kind == store::TokenKind::host ? "host:" : "user:") + name;
}

int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

struct Service::Impl {
  Impl(Service& svc, boost::asio::any_io_executor executor, store::Store& st,
       std::shared_ptr<const policy::Policy> pol, const config::ServerConfig& cfg, Clock clk)
      : ex(std::move(executor)),
        store(st),
        policy(std::move(pol)),
        request_ttl_ms(cfg.request_ttl.count()),
        max_wait(cfg.max_wait),
        clock(std::move(clk)),
        counters(svc.counters_),
        waiters(ex, [this](int64_t id, const Waiters::Ticket& t) { answer_after_commit(id, t); }),
        swaiters(ex, [this](int64_t id, const SessionWaiters::Ticket& t) { session_after_commit(id, t); }) {
    if (!cfg.data_dir.empty()) {
      auto t = store::Transcripts::open(cfg.data_dir + "/transcripts");
      if (t)
        transcripts = std::move(*t);
      else
        transcripts_error = t.error().message;
    }
  }

  ~Impl() {
    // Shutting down with a batch open: keep what was accepted. Callers are
    // gone or going, so their callbacks are dropped, not run.
    if (batch && store.in_transaction() && !store.commit()) store.rollback();
  }

  // ---- batches (group commit) ----

  /// What the open batch owes once its commit is decided.
  struct Batch {
    std::vector<int64_t> changed;                    // ids to wake after commit
    std::vector<int64_t> sessions;                   // session ids to wake after commit
    std::vector<std::function<void()>> reads;        // waiter answers read after commit
    std::vector<std::function<void(Status)>> dones;  // on_durable callbacks
    Counters at_begin;                               // restored if the batch fails
  };

  /// Opens the batch if none is open and schedules its single commit.
  Status open_batch() {
    if (batch) {
      if (store.in_transaction()) return {};
      // SQLite already rolled the batch back on its own (I/O error, disk
      // full): fail it now so no later commit claims it became durable.
      Batch lost = take_batch();
      undo_counters(lost);
      boost::asio::post(
          ex, [this, alive = std::weak_ptr<char>(alive_token), lost = std::move(lost)]() mutable {
            if (alive.lock())
              run_callbacks(lost, make_error(Errc::unavailable, "storage lost the transaction"));
          });
    }
    if (auto st = store.begin(); !st) return make_error(Errc::unavailable, st.error().message);
    batch.emplace();
    batch->at_begin = counters;
    boost::asio::post(ex, [this, alive = std::weak_ptr<char>(alive_token)] {
      if (alive.lock()) commit_batch();
    });
    return {};
  }

  Batch take_batch() {
    Batch b = std::move(*batch);
    batch.reset();
    return b;
  }

  void commit_batch() {
    if (!batch) return;  // failed already (see open_batch)
    // Take the batch before running anything external: a callback may start
    // the next one.
    Batch b = take_batch();
    Status st = store.in_transaction() ? store.commit()
                                       : Status(make_error(Errc::internal, "the transaction was lost"));
    if (st) {
      ++counters.commits;
      // Wake first and read now: no other batch can have begun yet, so what
      // a waiter sees is exactly what was committed.
      for (int64_t id : b.changed)
        if (waiters.has(id)) waiters.wake(id, read(id));
      for (int64_t id : b.sessions)
        if (swaiters.has(id)) swaiters.wake(id, live_session(id));
    } else {
      store.rollback();
      undo_counters(b);
      st = make_error(Errc::unavailable, "storage failed to commit: " + st.error().message);
    }
    run_callbacks(b, st);
  }

  /// Nothing of a failed batch happened, so its counts go back too.
  void undo_counters(const Batch& b) {
    Counters c = b.at_begin;
    c.commits = counters.commits;
    c.commit_failures = counters.commit_failures + 1;
    c.auth_failures = counters.auth_failures;
    // Transcript bytes live in files, outside the batch: they happened.
    c.transcript_bytes = counters.transcript_bytes;
    c.rejected_writes = counters.rejected_writes;
    counters = c;
  }

  void run_callbacks(Batch& b, const Status& st) {
    for (auto& r : b.reads) r();
    for (auto& d : b.dones) d(st);
  }

  /// Runs `body` in a savepoint of the current batch: on error the savepoint
  /// is rolled back so the failed call changes nothing.
  template <class T, class F>
  Result<T> write(F&& body) {
    if (auto st = open_batch(); !st) return st.error();
    if (auto st = store.savepoint(); !st) return make_error(Errc::unavailable, st.error().message);
    const Counters before = counters;
    touched.clear();
    touched_sessions.clear();
    Result<T> r = body();
    if (r) {
      if (auto st = store.release(); !st) r = st.error();
    }
    if (!r) {
      store.rollback_to();
      counters = before;
      touched.clear();
      touched_sessions.clear();
      return r;
    }
    batch->changed.insert(batch->changed.end(), touched.begin(), touched.end());
    batch->sessions.insert(batch->sessions.end(), touched_sessions.begin(), touched_sessions.end());
    touched.clear();
    touched_sessions.clear();
    return r;
  }

  Status audit(int64_t now, const std::string& actor, std::string_view action, int64_t id,
               const json& detail) {
    auto row = store.append_audit(now, actor, action, id, compact(detail));
    if (!row) return row.error();
    return {};
  }

  // ---- reads ----

  Result<api::Request> read(int64_t id) {
    auto r = store.get_request(id);
    if (!r) return r.error();
    if (!r->has_value()) return no_request(id);
    return std::move(**r);
  }

  static bool visible(const Principal& who, const api::Request& r) {
    if (who.kind == store::TokenKind::host) return r.host == who.name;
    return r.user == who.name || contains(r.reviewers, who.name);
  }

  /// Unknown and invisible ids give the same answer, so ids of other
  /// people's requests cannot be probed.
  Result<api::Request> load_visible(const Principal& who, int64_t id) {
    auto r = read(id);
    if (!r) return r;
    if (!visible(who, *r)) return no_request(id);
    return r;
  }

  // ---- sessions ----

  /// The session with `length` as held now: the file's size while open.
  Result<store::SessionRecord> read_session(int64_t id) {
    auto r = store.get_session(id);
    if (!r) return r.error();
    if (!r->has_value()) return no_session(id);
    store::SessionRecord rec = std::move(**r);
    if (rec.session.state == api::SessionState::open && transcripts) {
      auto len = transcripts->length(id);
      if (!len) return len.error();
      rec.session.length = *len;
    }
    return rec;
  }

  Result<api::Session> live_session(int64_t id) {
    auto r = read_session(id);
    if (!r) return r.error();
    return std::move(r->session);
  }

  static bool visible(const Principal& who, const store::SessionRecord& r) {
    if (who.kind == store::TokenKind::host) return r.session.host == who.name;
    return r.session.user == who.name || contains(r.reviewers, who.name);
  }

  Result<store::SessionRecord> load_visible_session(const Principal& who, int64_t id) {
    auto r = read_session(id);
    if (!r) return r;
    if (!visible(who, *r)) return no_session(id);
    return r;
  }

  /// The session `id` for a write by `who`: its own host only.
  Result<store::SessionRecord> writable_session(const Principal& who, int64_t id) {
    auto r = load_visible_session(who, id);
    if (!r) return r;
    if (who.kind != store::TokenKind::host)
      return denied("only the host recording session " + std::to_string(id) + " can write it");
    return r;
  }

  Status need_transcripts() const {
    if (transcripts) return {};
    return make_error(Errc::unavailable,
                      transcripts_error.empty() ? "no transcript store (data_dir is not set)" : transcripts_error);
  }

  /// Up to kMaxReadBytes from `offset` of session `s`.
  Result<TranscriptChunk> chunk(api::Session s, uint64_t offset) {
    if (offset > s.length)
      return conflict("offset " + std::to_string(offset) + " is past the " + std::to_string(s.length) +
                      " bytes of session " + std::to_string(s.id));
    TranscriptChunk c;
    if (offset < s.length) {
      if (auto st = need_transcripts(); !st) return st.error();
      auto bytes = transcripts->read(s.id, offset, std::min<uint64_t>(api::kMaxReadBytes, s.length - offset));
      if (!bytes) return bytes.error();
      c.bytes = std::move(*bytes);
    }
    c.session = std::move(s);
    return c;
  }

  void session_after_commit(int64_t id, const SessionWaiters::Ticket& t) {
    if (batch) {
      batch->reads.push_back([this, id, t] { swaiters.deliver(t, live_session(id)); });
    } else {
      swaiters.deliver(t, live_session(id));
    }
  }

  /// Opens the session of one use of `r` (inside a write savepoint).
  Result<api::Session> open_session(const Principal& who, const api::Request& r, int64_t now) {
    store::SessionRecord rec;
    api::Session& s = rec.session;
    s.request_id = r.id;
    s.host = r.host;
    s.user = r.user;
    s.run_as = r.run_as;
    s.argv = r.argv;
    s.rule = r.rule;
    s.record = r.record;
    if (policy) s.mask = policy->mask();
    s.started_at_ms = now;
    rec.reviewers = r.reviewers;
    auto id = store.insert_session(rec);
    if (!id) return id.error();
    s.id = *id;
    // An id whose row was rolled back is handed out again: its file (if a
    // write raced the failed commit) must not become this session's start.
    if (transcripts)
      if (auto st = transcripts->discard(s.id); !st) return st.error();
    if (auto st = audit(now, who.actor(), "session.open", r.id,
                        json{{"session", s.id}, {"record", s.record}, {"uses", r.uses}});
        !st)
      return st.error();
    ++counters.sessions_opened;
    ++counters.open_sessions;
    return s;
  }

  /// A waiter whose answer may depend on the open batch is answered after
  /// its commit; otherwise at once (posted).
  void answer_after_commit(int64_t id, const Waiters::Ticket& t) {
    if (batch) {
      batch->reads.push_back([this, id, t] { waiters.deliver(t, read(id)); });
    } else {
      waiters.deliver(t, read(id));
    }
  }

  // ---- transitions shared by several calls ----

  Result<api::Request> expire(api::Request r, int64_t now) {
    r.state = api::State::expired;
    r.decided_at_ms = now;
    r.decided_by = "expiry";
    if (auto st = store.update_request(r); !st) return st.error();
    if (auto st = audit(now, "system", "request.expire", r.id, json{{"expires_at", r.expires_at_ms}}); !st)
      return st.error();
    ++counters.expirations;
    touched.push_back(r.id);
    return r;
  }

  /// conflict unless `r` is pending and not overdue. An overdue request is
  /// expired on the spot (the expiry timer had not caught up), so the answer
  /// and the stored state agree.
  Status still_pending(const api::Request& r) {
    const std::string id = std::to_string(r.id);
    if (r.state != api::State::pending)
      return conflict("request " + id + " is already " + api::state_name(r.state));
    const int64_t now = clock();
    if (now < r.expires_at_ms) return {};
    auto done = write<api::Request>([&] { return expire(r, now); });
    if (!done) return done.error();
    return conflict("request " + id + " has expired");
  }

  /// The checks approve and deny share, in the order the API documents.
  Result<api::Request> reviewable(const Principal& who, int64_t id) {
    if (who.kind == store::TokenKind::host) return denied("host credentials cannot approve or deny");
    auto r = load_visible(who, id);
    if (!r) return r;
    if (r->user == who.name)
      return denied("you filed request " + std::to_string(id) + "; another person must review it");
    // Unreachable through visibility today (a non-requester sees only what
    // they review); kept so a wider visibility rule can never grant review.
    if (!contains(r->reviewers, who.name))
      return denied(who.name + " is not a reviewer for rule '" + r->rule + "'");
    if (auto st = still_pending(*r); !st) return st.error();
    for (const auto& d : r->decisions)
      if (d.reviewer == who.name)
        return conflict("you already " + std::string(d.approve ? "approved" : "denied") + " request " +
                        std::to_string(id));
    return r;
  }

  boost::asio::any_io_executor ex;
  store::Store& store;
  std::shared_ptr<const policy::Policy> policy;
  int64_t request_ttl_ms;
  std::chrono::milliseconds max_wait;
  Clock clock;
  Counters& counters;
  // Posted tasks check this so they never touch a destroyed service.
  std::shared_ptr<char> alive_token = std::make_shared<char>(0);
  std::vector<int64_t> touched;           // ids changed by the call in progress
  std::vector<int64_t> touched_sessions;  // session ids changed by it
  std::optional<Batch> batch;             // the open batch, if any
  std::unique_ptr<store::Transcripts> transcripts;  // null without data_dir
  std::string transcripts_error;                    // why it is null
  // Last: their timeout hooks use the members above.
  Waiters waiters;
  SessionWaiters swaiters;
};

Service::Service(boost::asio::any_io_executor ex, store::Store& store,
                 std::shared_ptr<const policy::Policy> policy, const config::ServerConfig& cfg, Clock clock)
    : impl_(std::make_unique<Impl>(*this, std::move(ex), store, std::move(policy), cfg, std::move(clock))) {
  // Here, not in Impl: counters_ is constructed after impl_.
  if (auto n = store.count_open_sessions(); n) counters_.open_sessions = *n;
}

Service::~Service() = default;

Result<Principal> Service::authenticate(std::string_view header) {
  auto fail = [this]() -> Result<Principal> {
    ++counters_.auth_failures;
    return make_error(Errc::unauthenticated, kBadCredential);
  };
  // Exactly "Bearer hoop_<16 hex>_<64 hex>": anything else is refused
  // before the store is touched.
  if (!header.starts_with(kBearer)) return fail();
  const std::string_view tok = header.substr(kBearer.size());
  if (tok.size() != kTokenPrefix.size() + kTokenIdLen + 1 + kTokenSecretLen) return fail();
  if (!tok.starts_with(kTokenPrefix) || tok[kTokenPrefix.size() + kTokenIdLen] != '_') return fail();
  const std::string_view id = tok.substr(kTokenPrefix.size(), kTokenIdLen);
  const std::string_view secret = tok.substr(kTokenPrefix.size() + kTokenIdLen + 1);
  if (!is_lower_hex(id) || !is_sha256_hex(secret)) return fail();

  auto found = impl_->store.find_token(id);
  if (!found) return make_error(Errc::unavailable, "credential store unavailable");
  const std::string hash = sha256_hex(secret);
  if (!found->has_value()) {
    (void)secure_equal(hash, kDummyHash);
    return fail();
  }
  const store::Token& t = **found;
  if (!secure_equal(hash, t.secret_hash)) return fail();
  if (t.revoked_at_ms != 0) return fail();
  return Principal{t.kind, t.name, t.id};
}

Result<std::optional<api::Request>> Service::find_live_grant(const api::Request& want, int64_t now) {
  auto list =
      impl_->store.live_grants({want.host, want.user, want.run_as, want.argv, want.path, want.digest}, now);
  if (!list) return list.error();
  for (auto& r : *list)
    if (r.action == policy::action_name(policy::Action::review) && r.argv == want.argv)
      return std::optional<api::Request>(std::move(r));
  return std::optional<api::Request>();
}

Result<api::Request> Service::create_request(const Principal& who, const api::NewRequest& nr) {
  if (who.kind != store::TokenKind::host) return denied("only a host credential can file requests");
  // The HTTP layer validated already; these cheap checks keep the service
  // safe on its own (tests, future transports).
  if (!api::is_valid_host(who.name)) return invalid("host credential has an invalid host name");
  if (!api::is_valid_name(nr.user)) return invalid("field 'user' must be a valid user name");
  if (!api::is_valid_name(nr.run_as)) return invalid("field 'run_as' must be a valid user name");
  if (nr.argv.empty() || nr.argv[0].empty())
    return invalid("field 'argv' must be a non-empty array of strings");
  if (nr.path.empty() || nr.path[0] != '/') return invalid("field 'path' must be an absolute path");

  const auto pol = impl_->policy;  // a reload mid-call must not change the rule under us
  if (!pol || !pol->valid()) return make_error(Errc::unavailable, "no valid policy is loaded");
  const policy::Decision d = pol->decide(policy::Query{who.name, nr.user, nr.run_as, nr.path, nr.argv});
  const int64_t now = impl_->clock();

  api::Request r;
  r.host = who.name;
  r.user = nr.user;
  r.run_as = nr.run_as;
  r.argv = nr.argv;
  r.path = nr.path;
  r.digest = nr.digest;
  r.cwd = nr.cwd;
  r.tty = nr.tty;
  r.reason = nr.reason;
  r.rule = d.rule;
  r.created_at_ms = now;
  const policy::Rule* rule = nullptr;
  if (d.rule_index >= 0 && static_cast<size_t>(d.rule_index) < pol->rules().size())
    rule = &pol->rules()[static_cast<size_t>(d.rule_index)];

  // Compare against each hardened value; anything else (a flipped bit, a
  // review without its rule) falls through to deny.
  if (d.action == policy::Action::allow && rule != nullptr) {
    r.action = policy::action_name(policy::Action::allow);
    r.state = api::State::approved;
    r.decided_at_ms = now;
    r.decided_by = "policy";
    r.grant_ttl_ms = rule->ttl.count();
    r.grant_expires_at_ms = now + r.grant_ttl_ms;
    r.record = policy::record_name(rule->record);
    // On an allow rule, `reviewers` names who may watch its sessions.
    r.reviewers = pol->reviewers_of(d.rule_index);
  } else if (d.action == policy::Action::review && rule != nullptr) {
    // A live grant for exactly this command (host, user, run-as, argv, path
    // and digest) is answered instead of a new request: a second run inside
    // the TTL needs no second approval. Only while the current policy still
    // says review, so a rule turned to deny takes effect at once.
    auto reuse = find_live_grant(r, now);
    if (!reuse) return reuse.error();
    if (*reuse) {
      if (!nr.use) return std::move(**reuse);
      api::Request found = std::move(**reuse);
      return impl_->write<api::Request>([&]() { return use_grant(who, std::move(found), now); });
    }
    if (rule->reason_required && nr.reason.empty())
      return invalid("rule '" + rule->name + "' requires a reason: pass -r REASON");
    r.action = policy::action_name(policy::Action::review);
    r.state = api::State::pending;
    // The requester may appear among the reviewers (e.g. via a group); they
    // are refused at approve time rather than silently dropped here.
    r.reviewers = pol->reviewers_of(d.rule_index);
    r.approvals_required = std::max(1, rule->approvals);
    r.grant_ttl_ms = rule->ttl.count();
    r.expires_at_ms = now + impl_->request_ttl_ms;
    r.record = policy::record_name(rule->record);
  } else {
    r.action = policy::action_name(policy::Action::deny);
    r.state = api::State::denied;
    r.decided_at_ms = now;
    r.decided_by = "policy";
  }

  auto out = impl_->write<api::Request>([&]() -> Result<api::Request> {
    auto id = impl_->store.insert_request(r);
    if (!id) return id.error();
    r.id = *id;
    json detail{{"host", r.host}, {"user", r.user},     {"run_as", r.run_as},
                {"argv", r.argv}, {"path", r.path},     {"digest", r.digest},
                {"rule", r.rule}, {"action", r.action}, {"state", api::state_name(r.state)}};
    if (auto st = impl_->audit(now, who.actor(), "request.create", r.id, detail); !st) return st.error();
    ++counters_.requests_created;
    impl_->touched.push_back(r.id);
    // Approved at once and asked to run: the use and its session ride in
    // this savepoint, so the run costs one commit (one fsync), not two.
    if (nr.use && r.state == api::State::approved) return use_grant(who, r, now);
    return r;
  });
  return out;
}

Result<api::Request> Service::get_request(const Principal& who, int64_t id) {
  return impl_->load_visible(who, id);
}

Result<std::vector<api::Request>> Service::list_requests(const Principal& who, const ListQuery& q) {
  const int limit = std::clamp(q.limit, 1, kListMaxLimit);
  store::RequestFilter f{q.state, q.user, q.host, std::max<int64_t>(0, q.before_id), limit};
  if (who.kind == store::TokenKind::host) {
    if (q.host && *q.host != who.name) return std::vector<api::Request>{};
    f.host = who.name;  // every row is then visible: one fetch
    return impl_->store.list_requests(f);
  }
  if (q.user && *q.user == who.name) return impl_->store.list_requests(f);  // all their own

  // A user sees only some rows: read pages until the limit is filled, the
  // store runs out, or the bound is hit (then a shorter page is answered;
  // the client continues with before=<last id>).
  f.limit = std::clamp(limit * 2, 50, kListMaxLimit);
  std::vector<api::Request> out;
  for (int page = 0; page < kListMaxPages; ++page) {
    auto rows = impl_->store.list_requests(f);
    if (!rows) return rows.error();
    for (auto& r : *rows) {
      if (!Impl::visible(who, r)) continue;
      out.push_back(std::move(r));
      if (out.size() >= static_cast<size_t>(limit)) return out;
    }
    if (rows->size() < static_cast<size_t>(f.limit) || rows->back().id <= 1) break;
    f.before_id = rows->back().id;
  }
  return out;
}

Result<api::Request> Service::approve(const Principal& who, int64_t id, const std::string& comment) {
  auto r = impl_->reviewable(who, id);
  if (!r) return r;
  if (auto st = check_comment(comment); !st) return st.error();
  const int64_t now = impl_->clock();
  return impl_->write<api::Request>([&]() -> Result<api::Request> {
    api::Decision d{who.name, true, comment, now};
    if (auto st = impl_->store.add_decision(id, d); !st) return st.error();
    r->decisions.push_back(d);
    const bool final = distinct_approvals(*r) >= std::max(1, r->approvals_required);
    if (final) {
      r->state = api::State::approved;
      r->decided_at_ms = now;
      r->decided_by = who.name;
      r->grant_expires_at_ms = now + r->grant_ttl_ms;
      if (auto st = impl_->store.update_request(*r); !st) return st.error();
    }
    if (auto st = impl_->audit(now, who.actor(), "request.approve", id,
                               json{{"final", final}, {"comment", comment}});
        !st)
      return st.error();
    ++counters_.approvals;
    impl_->touched.push_back(id);
    return *r;
  });
}

Result<api::Request> Service::deny(const Principal& who, int64_t id, const std::string& comment) {
  auto r = impl_->reviewable(who, id);
  if (!r) return r;
  if (comment.empty()) return invalid("a comment is required to deny request " + std::to_string(id));
  if (auto st = check_comment(comment); !st) return st.error();
  const int64_t now = impl_->clock();
  return impl_->write<api::Request>([&]() -> Result<api::Request> {
    api::Decision d{who.name, false, comment, now};
    if (auto st = impl_->store.add_decision(id, d); !st) return st.error();
    r->decisions.push_back(d);
    // One denial ends the request, whatever approvals came before.
    r->state = api::State::denied;
    r->decided_at_ms = now;
    r->decided_by = who.name;
    if (auto st = impl_->store.update_request(*r); !st) return st.error();
    if (auto st = impl_->audit(now, who.actor(), "request.deny", id, json{{"comment", comment}}); !st)
      return st.error();
    ++counters_.denials;
    impl_->touched.push_back(id);
    return *r;
  });
}

Result<api::Request> Service::cancel(const Principal& who, int64_t id, const std::string& user) {
  auto r = impl_->load_visible(who, id);
  if (!r) return r;
  if (who.kind == store::TokenKind::host) {
    if (r->user != user)
      return denied("request " + std::to_string(id) + " was not filed by " + user + " on " + who.name);
  } else if (r->user != who.name) {
    return denied("only the requester can cancel request " + std::to_string(id));
  }
  if (auto st = impl_->still_pending(*r); !st) return st.error();
  const int64_t now = impl_->clock();
  return impl_->write<api::Request>([&]() -> Result<api::Request> {
    r->state = api::State::cancelled;
    r->decided_at_ms = now;
    r->decided_by = r->user;
    if (auto st = impl_->store.update_request(*r); !st) return st.error();
    if (auto st = impl_->audit(now, who.actor(), "request.cancel", id, json{{"user", r->user}}); !st)
      return st.error();
    ++counters_.cancellations;
    impl_->touched.push_back(id);
    return *r;
  });
}

Result<api::Request> Service::record_use(const Principal& who, int64_t id) {
  if (who.kind != store::TokenKind::host) return denied("only the requesting host can use a grant");
  auto r = impl_->load_visible(who, id);  // another host's request is not_found
  if (!r) return r;
  if (r->state != api::State::approved)
    return conflict("request " + std::to_string(id) + " is not approved (it is " + api::state_name(r->state) +
                    ")");
  const int64_t now = impl_->clock();
  if (now >= r->grant_expires_at_ms) return conflict("grant for request " + std::to_string(id) + " expired");
  return impl_->write<api::Request>([&]() { return use_grant(who, std::move(*r), now); });
}

Result<api::Request> Service::use_grant(const Principal& who, api::Request r, int64_t now) {
  ++r.uses;
  if (auto st = impl_->store.update_request(r); !st) return st.error();
  if (auto st = impl_->audit(now, who.actor(), "grant.use", r.id, json{{"uses", r.uses}}); !st) return st.error();
  ++counters_.grant_uses;
  impl_->touched.push_back(r.id);
  auto s = impl_->open_session(who, r, now);
  if (!s) return s.error();
  r.session = std::move(*s);
  return r;
}

Result<api::Session> Service::get_session(const Principal& who, int64_t id) {
  auto r = impl_->load_visible_session(who, id);
  if (!r) return r.error();
  return std::move(r->session);
}

Result<std::vector<api::Session>> Service::list_sessions(const Principal& who, const SessionQuery& q) {
  const int limit = std::clamp(q.limit, 1, kListMaxLimit);
  store::SessionFilter f{q.state, q.user, q.host, std::max<int64_t>(0, q.before_id), limit};
  const bool all_visible = who.kind == store::TokenKind::host || (q.user && *q.user == who.name);
  if (who.kind == store::TokenKind::host) {
    if (q.host && *q.host != who.name) return std::vector<api::Session>{};
    f.host = who.name;
  } else if (!all_visible) {
    f.limit = std::clamp(limit * 2, 50, kListMaxLimit);  // over-fetch, as list_requests does
  }
  std::vector<api::Session> out;
  for (int page = 0; page < kListMaxPages; ++page) {
    auto rows = impl_->store.list_sessions(f);
    if (!rows) return rows.error();
    for (auto& r : *rows) {
      if (!Impl::visible(who, r)) continue;
      if (r.session.state == api::SessionState::open && impl_->transcripts) {
        auto len = impl_->transcripts->length(r.session.id);
        if (!len) return len.error();
        r.session.length = *len;
      }
      out.push_back(std::move(r.session));
      if (out.size() >= static_cast<size_t>(limit)) return out;
    }
    if (all_visible || rows->size() < static_cast<size_t>(f.limit) || rows->back().session.id <= 1) break;
    f.before_id = rows->back().session.id;
  }
  return out;
}

Result<uint64_t> Service::append_transcript(const Principal& who, int64_t id, uint64_t offset,
                                            std::string_view bytes) {
  auto r = impl_->writable_session(who, id);
  if (!r) return r.error();
  if (auto st = impl_->need_transcripts(); !st) return st.error();
  if (r->session.state == api::SessionState::complete) {
    ++counters_.rejected_writes;
    return conflict("session " + std::to_string(id) + " is complete; it takes no more bytes");
  }
  auto len = impl_->transcripts->append(id, offset, bytes, nullptr);
  if (!len) {
    if (len.error().code == Errc::conflict) ++counters_.rejected_writes;
    return len.error();
  }
  counters_.transcript_bytes += bytes.size();
  if (impl_->swaiters.has(id)) {
    api::Session s = std::move(r->session);
    s.length = *len;
    impl_->swaiters.wake(id, s);
  }
  return len;
}

Result<api::Session> Service::complete_session(const Principal& who, int64_t id, const api::Completion& c) {
  auto r = impl_->writable_session(who, id);
  if (!r) return r.error();
  api::Session& s = r->session;
  const std::string sid = std::to_string(id);
  if (s.state == api::SessionState::complete) {
    // The host may have lost our first answer: the same values again are fine.
    if (s.length == c.length && s.sha256 == c.sha256 && s.exit_status == c.exit_status) return std::move(s);
    ++counters_.rejected_writes;
    return conflict("session " + sid + " is already complete with other values");
  }
  if (auto st = impl_->need_transcripts(); !st) return st.error();
  auto sealed = impl_->transcripts->seal(id);
  if (!sealed) return sealed.error();
  if (sealed->length != c.length) {
    ++counters_.rejected_writes;
    return conflict("session " + sid + ": the server holds " + std::to_string(sealed->length) + " bytes, not " +
                    std::to_string(c.length));
  }
  if (sealed->sha256 != c.sha256) {
    ++counters_.rejected_writes;
    return conflict("session " + sid + ": the SHA-256 of the " + std::to_string(sealed->length) +
                    " bytes the server holds differs from the one sent");
  }
  const int64_t now = impl_->clock();
  return impl_->write<api::Session>([&]() -> Result<api::Session> {
    s.state = api::SessionState::complete;
    s.length = sealed->length;
    s.sha256 = sealed->sha256;
    s.exit_status = c.exit_status;
    s.ended_at_ms = now;
    if (auto st = impl_->store.complete_session(s); !st) return st.error();
    if (auto st = impl_->audit(now, who.actor(), "session.complete", s.request_id,
                               json{{"session", id},
                                    {"length", s.length},
                                    {"sha256", s.sha256},
                                    {"exit_status", s.exit_status ? json(*s.exit_status) : json(nullptr)}});
        !st)
      return st.error();
    ++counters_.session_completes;
    --counters_.open_sessions;
    impl_->touched_sessions.push_back(id);
    return s;
  });
}

Result<uint64_t> Service::transcript_length(const Principal& who, int64_t id) {
  auto r = impl_->load_visible_session(who, id);
  if (!r) return r.error();
  return r->session.length;
}

Service::WaitHandle Service::wait_for_transcript(const Principal& who, int64_t id, uint64_t offset,
                                                 std::chrono::milliseconds timeout,
                                                 std::function<void(Result<TranscriptChunk>)> done) {
  auto& w = impl_->swaiters;
  // Bytes are read when the answer is due, not when the wait began; the
  // weak token keeps a posted answer from touching a destroyed service.
  auto answer = [impl = impl_.get(), alive = std::weak_ptr<char>(impl_->alive_token), offset,
                 done = std::move(done)](Result<api::Session> s) {
    if (!alive.lock()) return;
    if (!s) return done(s.error());
    done(impl->chunk(std::move(*s), offset));
  };
  auto r = impl_->load_visible_session(who, id);
  if (!r) return w.answer(r.error(), std::move(answer));
  if (r->session.length > offset || r->session.state == api::SessionState::complete ||
      timeout <= std::chrono::milliseconds(0)) {
    // What is there now (a completion may belong to the open batch: answer
    // only once it is durable).
    auto h = w.hold(std::move(answer));
    impl_->session_after_commit(id, SessionWaiters::ticket(h));
    return h;
  }
  if (offset > r->session.length) return w.answer(r->session, std::move(answer));  // chunk() refuses it
  timeout = std::min(timeout, impl_->max_wait);
  return w.add(id, offset, timeout, std::move(answer));
}

Result<std::vector<audit::Row>> Service::read_audit(const Principal& who, int64_t after_seq, int limit) {
  if (who.kind != store::TokenKind::user) return denied("host credentials cannot read the audit trail");
  return impl_->store.read_audit(std::max<int64_t>(0, after_seq), std::clamp(limit, 1, kListMaxLimit));
}

void Service::on_durable(std::function<void(Status)> done) {
  if (impl_->batch) {
    impl_->batch->dones.push_back(std::move(done));
    return;
  }
  boost::asio::post(impl_->ex, [done = std::move(done)] { done(Status{}); });
}

Service::WaitHandle Service::wait_for_change(const Principal& who, int64_t id, api::State seen,
                                             std::chrono::milliseconds timeout,
                                             std::function<void(Result<api::Request>)> done) {
  auto& w = impl_->waiters;
  auto r = impl_->load_visible(who, id);
  if (!r) return w.answer(r.error(), std::move(done));
  if (r->state != seen) {
    // The change may belong to the open batch: answer only once it is durable.
    auto h = w.hold(std::move(done));
    impl_->answer_after_commit(id, Waiters::ticket(h));
    return h;
  }
  timeout = std::clamp(timeout, std::chrono::milliseconds(0), impl_->max_wait);
  return w.add(id, seen, timeout, std::move(done));
}

void Service::expire_due() {
  const int64_t now = impl_->clock();
  auto due = impl_->store.pending_due(now, kExpirePerCall);
  if (!due) return;  // storage trouble: the next tick tries again
  for (int64_t id : *due) {
    // Each in its own savepoint: one bad row does not hold back the rest.
    auto r = impl_->write<api::Request>([&]() -> Result<api::Request> {
      auto cur = impl_->read(id);
      if (!cur) return cur;
      if (cur->state != api::State::pending || cur->expires_at_ms > now) return cur;
      return impl_->expire(std::move(*cur), now);
    });
    (void)r;
  }
}

void Service::set_policy(std::shared_ptr<const policy::Policy> policy) {
  // A broken reload keeps the policy in force rather than denying everything.
  if (policy && policy->valid()) impl_->policy = std::move(policy);
}

size_t Service::waiting() const {
  return impl_->waiters.size() + impl_->swaiters.size();
}

}  // namespace hoop::server
