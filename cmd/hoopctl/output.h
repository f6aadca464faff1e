#pragma once
// What hoopctl shows a person. Every string that another person chose
// (argv, reason, comment, names, host) goes through escape_for_terminal or
// format_argv here, so a crafted request cannot move the cursor, retitle the
// window or hide text in a reviewer's terminal. Pure: returns text, prints
// nothing.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "api/types.h"

namespace hoop::ctl {

/// ID, STATE, HOST, USER, RUN_AS, COMMAND, AGE; one line per request.
std::string format_request_table(const std::vector<api::Request>& reqs, int64_t now_ms);

/// ID, REQUEST, STATE, EXIT, HOST, USER, RUN_AS, SIZE, STARTED, COMMAND.
std::string format_session_table(const std::vector<api::Session>& sessions, int64_t now_ms);

/// One line: who ran what where, when, and how it ended (escaped).
std::string format_session_summary(const api::Session& s, int64_t now_ms);

/// Everything about one request, decisions included, with who can still
/// approve it while it is pending.
std::string format_request_detail(const api::Request& r, int64_t now_ms);

/// "alice on web1 as root: systemctl restart nginx" (escaped).
std::string format_summary(const api::Request& r);

/// Reviewers who may still approve: listed, not the requester, not decided.
std::vector<std::string> remaining_reviewers(const api::Request& r);

/// "5s", "3m", "2h", "4d": coarse, for ages and countdowns.
std::string format_age(int64_t ms);

/// "2024-05-01 12:00:03 CEST (5m ago)" / "(in 10m)"; "-" for 0.
std::string format_time(int64_t ms, int64_t now_ms);

/// JSON for --json: indented, and ASCII only (every control character and
/// non-ASCII code point as \uXXXX) so it is safe on a terminal as well.
std::string format_json(const nlohmann::json& j);

/// Milliseconds since the epoch, now.
int64_t now_ms();

}  // namespace hoop::ctl
