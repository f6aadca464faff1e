// Human and JSON output for hoopctl.
// MUST: pass every string another person chose through escape_for_terminal
//       or format_argv before it is returned for printing.

#include "output.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/escape.h"

namespace hoop::ctl {
namespace {

constexpr size_t kMaxCommandColumn = 60;

// Columns of already-escaped text: escaped text is printable, so counting
// code points (not bytes) lines the table up for all but wide characters.
size_t columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;
  return n;
}

// Cuts escaped text to `max` code points, marking the cut.
std::string clip(const std::string& s, size_t max) {
  if (columns(s) <= max) return s;
  size_t n = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80 && n++ == max - 3) break;
  }
  return s.substr(0, i) + "...";
}

std::string pad(const std::string& s, size_t width) {
  const size_t c = columns(s);
  return c >= width ? s : s + std::string(width - c, ' ');
}

std::string esc(const std::string& s) {
  return escape_for_terminal(s);
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + esc(s);
  return out;
}

}  // namespace

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string format_age(int64_t ms) {
  if (ms < 0) ms = 0;
  const int64_t s = ms / 1000;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string format_time(int64_t ms, int64_t now) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  char buf[64];
  if (localtime_r(&t, &tm) == nullptr || std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
    return "@" + std::to_string(ms / 1000);
  const std::string rel = ms <= now ? format_age(now - ms) + " ago" : "in " + format_age(ms - now);
  return std::string(buf) + " (" + rel + ")";
}

std::string format_summary(const api::Request& r) {
  return esc(r.user) + " on " + esc(r.host) + " as " + esc(r.run_as) + ": " + format_argv(r.argv);
}

std::vector<std::string> remaining_reviewers(const api::Request& r) {
  std::vector<std::string> out;
  for (const auto& name : r.reviewers) {
    if (name == r.user) continue;  // nobody approves their own request
    const bool decided = std::any_of(r.decisions.begin(), r.decisions.end(),
                                     [&](const api::Decision& d) { return d.reviewer == name; });
    if (!decided) out.push_back(name);
  }
  return out;
}

namespace {

std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], columns(row[i]));
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) line += (i + 1 < row.size() ? pad(row[i], width[i] + 2) : row[i]);
    out += line + "\n";
  }
  return out;
}

std::string format_bytes(uint64_t n) {
  if (n < 10 * 1024) return std::to_string(n) + " B";
  if (n < 10 * 1024 * 1024) return std::to_string(n / 1024) + " KiB";
  return std::to_string(n / (1024 * 1024)) + " MiB";
}

}  // namespace

std::string format_request_table(const std::vector<api::Request>& reqs, int64_t now) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"ID", "STATE", "HOST", "USER", "RUN_AS", "COMMAND", "AGE"});
  for (const auto& r : reqs)
    rows.push_back({std::to_string(r.id), api::state_name(r.state), esc(r.host), esc(r.user), esc(r.run_as),
                    clip(format_argv(r.argv), kMaxCommandColumn), format_age(now - r.created_at_ms)});
  return table(rows);
}

std::string format_session_table(const std::vector<api::Session>& sessions, int64_t now) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"ID", "REQUEST", "STATE", "EXIT", "HOST", "USER", "RUN_AS", "SIZE", "STARTED", "COMMAND"});
  for (const auto& x : sessions)
    rows.push_back({std::to_string(x.id), std::to_string(x.request_id), api::session_state_name(x.state),
                    x.exit_status ? std::to_string(*x.exit_status) : "-", esc(x.host), esc(x.user),
                    esc(x.run_as), format_bytes(x.length), format_age(now - x.started_at_ms) + " ago",
                    clip(format_argv(x.argv), kMaxCommandColumn)});
  return table(rows);
}

std::string format_session_summary(const api::Session& x, int64_t now) {
  std::string out = "session " + std::to_string(x.id) + " (request " + std::to_string(x.request_id) + "): " +
                    esc(x.user) + " on " + esc(x.host) + " as " + esc(x.run_as) + ": " + format_argv(x.argv) +
                    "; started " + format_time(x.started_at_ms, now);
  if (x.state == api::SessionState::complete)
    out += ", ended " + format_time(x.ended_at_ms, now) + ", exit status " +
           (x.exit_status ? std::to_string(*x.exit_status) : std::string("unknown"));
  else
    out += ", still running";
  return out;
}

std::string format_request_detail(const api::Request& r, int64_t now) {
  std::string out;
  auto field = [&](const char* name, const std::string& value) {
    out += "  " + pad(name, 14) + value + "\n";
  };
  out += "Request " + std::to_string(r.id) + ": " + api::state_name(r.state) + "\n";
  field("requested by", esc(r.user) + " on " + esc(r.host));
  field("run as", esc(r.run_as));
  field("command", format_argv(r.argv));
  if (!r.path.empty()) field("path", esc(r.path));
  if (!r.digest.empty()) field("sha256", esc(r.digest));
  if (!r.cwd.empty()) field("cwd", esc(r.cwd));
  if (!r.tty.empty()) field("tty", esc(r.tty));
  field("reason", r.reason.empty() ? "(none given)" : esc(r.reason));
  field("rule", r.rule.empty() ? "(no rule matched)" : esc(r.rule) + " (" + esc(r.action) + ")");
  if (r.action == "review" || r.approvals_required > 0) {
    field("approvals", std::to_string(r.approvals_count()) + " of " + std::to_string(r.approvals_required));
    field("reviewers", r.reviewers.empty() ? "(none)" : join(r.reviewers));
  }
  if (r.state == api::State::pending) {
    const auto left = remaining_reviewers(r);
    const int needed = std::max(0, r.approvals_required - r.approvals_count());
    field("can approve", left.empty() ? "nobody left who may approve" : join(left));
    field("still needed", std::to_string(needed) + (needed == 1 ? " approval" : " approvals"));
    if (r.grant_ttl_ms > 0) field("grant lasts", format_age(r.grant_ttl_ms) + " once approved");
  }
  field("created", format_time(r.created_at_ms, now));
  if (r.state == api::State::pending) field("expires", format_time(r.expires_at_ms, now));
  if (r.decided_at_ms > 0)
    field("decided",
          format_time(r.decided_at_ms, now) + (r.decided_by.empty() ? "" : " by " + esc(r.decided_by)));
  if (r.state == api::State::approved) {
    field("grant until", format_time(r.grant_expires_at_ms, now));
    field("uses", std::to_string(r.uses));
  }
  if (!r.decisions.empty()) {
    out += "Decisions:\n";
    for (const auto& d : r.decisions) {
      out += "  " + pad(d.approve ? "approve" : "deny", 9) + pad(esc(d.reviewer), 16) +
             format_time(d.at_ms, now) + "\n";
      if (!d.comment.empty()) out += "      comment: " + esc(d.comment) + "\n";
    }
  }
  return out;
}

std::string format_json(const nlohmann::json& j) {
  return j.dump(2, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace hoop::ctl
