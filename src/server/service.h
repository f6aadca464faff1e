#pragma once
// The approval service: every rule about who may do what to a request lives
// here, and only here (separation of duties is enforced by the server).
// HTTP handlers translate between HTTP and these calls; they hold no rules.
//
// MUST: a requester never approves or denies their own request; a host
// credential never approves or denies; a reviewer is in the rule's
// reviewers; N approvals are N distinct people; one denial ends the request;
// pending requests and grants expire; every state change appends an audit row
// in the same transaction as the change. Transcripts: only the host that
// owns a session writes it, never once it is complete; a session is read by
// its requester and the reviewers of its rule (named when it was filed;
// for an allow rule its `reviewers` list names them), and by its host.
//
// Threading: one io_context thread. All calls run on it; no locks.
// Durability: each mutating call runs in a store savepoint inside the current
// batch; the caller MUST answer the client only from on_durable(), which runs
// after the batch commit (group commit: many calls, one fsync).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "api/types.h"
#include "audit/chain.h"
#include "common/error.h"
#include "config/server_config.h"
#include "policy/policy.h"
#include "store/store.h"

namespace hoop::server {


/// Who is calling, from the bearer token.
struct Principal {
  store::TokenKind kind = store::TokenKind::user;
  std::string name;      // user name, or host name for host credentials
  std::string token_id;
  std::string actor() const;  // "user:alice" / "host:web1" (for audit rows)
};

/// Milliseconds since the epoch; injectable so tests can move time.
using Clock = std::function<int64_t()>;
int64_t system_now_ms();

struct ListQuery {
  std::optional<api::State> state;  // nullopt = any
  std::optional<std::string> user;
  std::optional<std::string> host;
  int64_t before_id = 0;
  int limit = 100;
};

struct SessionQuery {
  std::optional<api::SessionState> state;  // nullopt = any
  std::optional<std::string> user;
  std::optional<std::string> host;
  int64_t before_id = 0;
  int limit = 100;
};

/// A piece of a transcript and where the session stands.
struct TranscriptChunk {
  std::string bytes;     // at most api::kMaxReadBytes, from the asked offset
  api::Session session;  // session.length: bytes the server holds now
};

/// Counters for /metrics, owned by the service.
struct Counters {
  uint64_t requests_created = 0;
  uint64_t approvals = 0;
  uint64_t denials = 0;
  uint64_t cancellations = 0;
  uint64_t expirations = 0;
  uint64_t grant_uses = 0;
  uint64_t auth_failures = 0;
  uint64_t commits = 0;
  uint64_t commit_failures = 0;
  int64_t open_sessions = 0;  // a gauge, read from the store at start
  uint64_t sessions_opened = 0;
  uint64_t session_completes = 0;
  uint64_t transcript_bytes = 0;  // bytes received in accepted writes
  uint64_t rejected_writes = 0;   // transcript writes refused (conflicts)
};

class Service {
 public:
  Service(boost::asio::any_io_executor ex, store::Store& store,
          std::shared_ptr<const policy::Policy> policy, const config::ServerConfig& cfg,
          Clock clock = system_now_ms);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  /// Parses "Bearer hoop_<id>_<secret>", looks the id up, compares the
  /// secret's SHA-256 in constant time, refuses revoked tokens.
  /// Errc::unauthenticated with a message that never says which part failed.
  Result<Principal> authenticate(std::string_view authorization_header);

  /// Host credential only; the host name comes from `who`, never the body.
  /// Evaluates the policy: allow -> approved at once (decided_by "policy"),
  /// deny -> denied at once, review -> pending (reason checked when required),
  /// or, for review, the existing approved request when a live grant pins
  /// exactly this host, user, run-as, argv, path and digest (grant reuse).
  Result<api::Request> create_request(const Principal& who, const api::NewRequest& req);

  /// Visibility: a host sees its own requests; a user sees requests they
  /// filed and those they may review. Invisible ids are not_found.
  Result<api::Request> get_request(const Principal& who, int64_t id);
  Result<std::vector<api::Request>> list_requests(const Principal& who, const ListQuery& q);

  Result<api::Request> approve(const Principal& who, int64_t id, const std::string& comment);
  Result<api::Request> deny(const Principal& who, int64_t id, const std::string& comment);
  /// By the requesting host (for `user`, who must be the requester) or by
  /// the requester's own personal credential. Pending requests only.
  Result<api::Request> cancel(const Principal& who, int64_t id, const std::string& user);
  /// Host credential of the request's host; approved and unexpired grants
  /// only. Opens the use's session in the same savepoint (the answer's
  /// `session`).
  Result<api::Request> record_use(const Principal& who, int64_t id);

  // ---- sessions (see the MUST list above) ----

  /// Visible sessions only (others are not_found). `length` of an open
  /// session is what its transcript file holds now.
  Result<api::Session> get_session(const Principal& who, int64_t id);
  Result<std::vector<api::Session>> list_sessions(const Principal& who, const SessionQuery& q);
  /// Stores transcript bytes at `offset` (Transcripts::append): returns the
  /// new length; conflict on a gap, a differing overlap or a complete session.
  Result<uint64_t> append_transcript(const Principal& who, int64_t id, uint64_t offset, std::string_view bytes);
  /// Checks the file's length and SHA-256 against `c`, flushes it, and marks
  /// the session complete (audit row `session.complete`). The same values
  /// again answer the complete session (idempotent); others are conflict.
  Result<api::Session> complete_session(const Principal& who, int64_t id, const api::Completion& c);
  /// The stored length of a visible session (for 409 answers).
  Result<uint64_t> transcript_length(const Principal& who, int64_t id);
  /// Long-poll on a transcript: `done` gets the bytes from `offset` (at most
  /// api::kMaxReadBytes) at once when there are some or the session is
  /// complete, else when bytes arrive, the session completes, or `timeout`
  /// (capped at max_wait) passes (then none). Returns a WaitHandle (below).
  [[nodiscard]] std::shared_ptr<void> wait_for_transcript(const Principal& who, int64_t id, uint64_t offset,
                                               std::chrono::milliseconds timeout,
                                               std::function<void(Result<TranscriptChunk>)> done);

  /// Personal credentials only.
  Result<std::vector<audit::Row>> read_audit(const Principal& who, int64_t after_seq, int limit);

  /// Runs `done` after everything written so far is durable (or failed to
  /// be), on the io thread. If nothing is pending, runs it soon (posted).
  void on_durable(std::function<void(Status)> done);

  /// Long-poll: calls `done` with the request once its state differs from
  /// `seen` (at once if it already does), or with the unchanged request when
  /// `timeout` (capped at max_wait) passes; errors (not_found) come at once.
  /// `done` always runs posted on the io thread, at most once, and only
  /// after the state it reports is durable.
  ///
  /// The returned handle OWNS the wait: keep it while waiting, release it
  /// (`handle.reset()` or destroy it, e.g. when the client disconnects) to
  /// cancel; `done` is then never called. Dropping the handle at once
  /// cancels at once, hence [[nodiscard]]. Releasing it is safe at any
  /// time, also from inside `done` and after the Service is gone.
  using WaitHandle = std::shared_ptr<void>;
  [[nodiscard]] WaitHandle wait_for_change(const Principal& who, int64_t id, api::State seen,
                                           std::chrono::milliseconds timeout,
                                           std::function<void(Result<api::Request>)> done);

  /// Expires pending requests whose time has come (a timer calls this every
  /// second; tests call it directly).
  void expire_due();

  /// Swaps the policy (SIGHUP reload). Requests already filed keep the
  /// rule, reviewers and approvals they were filed under.
  void set_policy(std::shared_ptr<const policy::Policy> policy);

  const Counters& counters() const { return counters_; }
  size_t waiting() const;  // open long-polls, for /metrics (transcripts included)

 private:
  Result<std::optional<api::Request>> find_live_grant(const api::Request& want, int64_t now);
  /// Records one use of `r`'s grant and opens its session; runs inside a
  /// write savepoint.
  Result<api::Request> use_grant(const Principal& who, api::Request r, int64_t now);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  Counters counters_;
};

}  // namespace hoop::server
