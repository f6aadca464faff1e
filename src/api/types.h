#pragma once
// Wire types shared by hoopd and hoopctl, and their JSON. Pure: no I/O.
// Everything parsed here came from the network: parse_* validate types,
// sizes, names and control characters and fail with Errc::invalid_argument
// (or too_large) and a message naming the field.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/error.h"

namespace hoop::api {

enum class State { pending, approved, denied, cancelled, expired };
const char* state_name(State s);
std::optional<State> parse_state(std::string_view s);
inline bool is_final(State s) { return s != State::pending; }

// Limits on what a client may send. The HTTP body limit is larger than the
// sum so that the field checks, not the parser, give the precise message.
inline constexpr size_t kMaxArgc = 1024;
inline constexpr size_t kMaxArgvBytes = 256 * 1024;
inline constexpr size_t kMaxTextBytes = 2048;      // reason, comment
inline constexpr size_t kMaxPathBytes = 4096;      // path, cwd, tty
inline constexpr size_t kMaxBodyBytes = 512 * 1024;
// Transcripts travel as raw bytes, outside the JSON limit: one PUT carries at
// most kMaxChunkBytes, one GET answers at most kMaxReadBytes.
inline constexpr size_t kMaxChunkBytes = 4 * 1024 * 1024;
inline constexpr size_t kMaxReadBytes = 1024 * 1024;

/// A recorded session: `open` while bytes arrive, `complete` once the host
/// sent the transcript's length and SHA-256 and the server checked them.
enum class SessionState { open, complete };
const char* session_state_name(SessionState s);
std::optional<SessionState> parse_session_state(std::string_view s);

/// What a rule says when no recording channel exists: "required" (no
/// recording, no command) or "best-effort" (run, spool, ship later).
inline constexpr const char* kRecordRequired = "required";
inline constexpr const char* kRecordBestEffort = "best-effort";

/// One reviewer's verdict on a request.
struct Decision {
  std::string reviewer;
  bool approve = false;
  std::string comment;
  int64_t at_ms = 0;
};

/// What a host sends to file a request (POST /v1/requests). The host name is
/// not here on purpose: the server takes it from the host credential.
struct NewRequest {
  std::string user;     // requester's login name on the host
  std::string run_as = "root";
  std::vector<std::string> argv;
  std::string path;     // resolved absolute path of argv[0]
  std::string digest;   // SHA-256 (hex) of that file
  std::string cwd;
  std::string tty;
  std::string reason;
  /// When the request is approved at once (allow rule, or a live grant),
  /// also record a use and open its session, in the same commit.
  bool use = false;
};

/// One run of an approved command, and where its transcript stands.
struct Session {
  int64_t id = 0;
  int64_t request_id = 0;
  std::string host;
  std::string user;
  std::string run_as;
  std::vector<std::string> argv;
  std::string rule;
  std::string record = kRecordRequired;  // "required" | "best-effort"
  std::vector<std::string> mask;         // extra secret patterns (PCRE2) from the policy
  SessionState state = SessionState::open;
  uint64_t length = 0;                   // transcript bytes the server holds
  std::string sha256;                    // "" until complete
  std::optional<int> exit_status;        // nullopt until complete, or unknown
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;               // 0 while open
};

/// A request as the server stores and returns it.
struct Request {
  int64_t id = 0;
  std::string host;
  std::string user;
  std::string run_as;
  std::vector<std::string> argv;
  std::string path;
  std::string digest;
  std::string cwd;
  std::string tty;
  std::string reason;

  State state = State::pending;
  std::string rule;            // name of the deciding rule ("" if none matched)
  std::string action;          // "allow" | "review" | "deny"
  std::vector<std::string> reviewers;  // expanded names eligible to review
  int approvals_required = 0;
  std::vector<Decision> decisions;
  int64_t grant_ttl_ms = 0;

  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;        // pending requests expire here
  int64_t decided_at_ms = 0;        // 0 while pending
  std::string decided_by;           // reviewer, "policy", "expiry", or the canceller
  int64_t grant_expires_at_ms = 0;  // 0 unless approved
  int64_t uses = 0;                 // recorded grant uses
  std::string record = kRecordRequired;  // the rule's recording mode when filed
  /// Set only in the answer that opened a session (use in create, /use).
  std::optional<Session> session;

  int approvals_count() const;
};

/// Name rules shared by hosts, users and run-as targets: 1-64 chars of
/// [A-Za-z0-9._-], optionally ending in '$', not starting with '-' or '.'.
bool is_valid_name(std::string_view s);
/// Host names: 1-253 chars of [A-Za-z0-9.-], not starting with '-' or '.'.
bool is_valid_host(std::string_view s);

Result<NewRequest> parse_new_request(const nlohmann::json& j);
nlohmann::json to_json(const NewRequest& r);

nlohmann::json to_json(const Request& r);
/// Used by clients on server answers; validates shapes, not policy.
Result<Request> parse_request(const nlohmann::json& j);

nlohmann::json to_json(const Session& s);
/// Used by clients on server answers; validates shapes.
Result<Session> parse_session(const nlohmann::json& j);

/// {"length": L, "sha256": "hex", "exit_status": int|null} of
/// POST /v1/sessions/{id}/complete.
struct Completion {
  uint64_t length = 0;
  std::string sha256;
  std::optional<int> exit_status;
};
Result<Completion> parse_completion(const nlohmann::json& j);

/// Optional {"comment": "..."} body of approve/deny/cancel. `required` makes
/// an empty comment an error.
Result<std::string> parse_comment(const nlohmann::json& j, bool required);

/// {"error": {"code": "...", "message": "..."}}
nlohmann::json error_json(const Error& e);

/// Parses JSON text with a size limit; never throws.
Result<nlohmann::json> parse_json_text(std::string_view text, size_t max_bytes = kMaxBodyBytes);

}  // namespace hoop::api
