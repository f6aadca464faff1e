#include "server/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "server/service.h"

namespace hoop::server {

namespace {

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const char* name, uint64_t value) {
  out += name;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

void counter(std::string& out, const char* name, const char* help, uint64_t value) {
  family(out, name, "counter", help);
  sample(out, name, value);
}

void gauge(std::string& out, const char* name, const char* help, uint64_t value) {
  family(out, name, "gauge", help);
  sample(out, name, value);
}

// Resident set size from /proc: the figure the 5,000-waiter budget is about,
// so operators can watch it without extra tooling.
uint64_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  const long page = sysconf(_SC_PAGESIZE);
  return resident * static_cast<uint64_t>(page > 0 ? page : 4096);
}

}  // namespace

Metrics::Metrics() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  start_time_s_ = std::chrono::duration<double>(now).count();
}

uint64_t Metrics::responses(unsigned status) const {
  auto it = responses_.find(status);
  return it == responses_.end() ? 0 : it->second;
}

std::string Metrics::render(const Service& service) const {
  const Counters& c = service.counters();
  std::string out;
  out.reserve(2048);
  counter(out, "hoopd_requests_created_total", "Approval requests filed.", c.requests_created);
  counter(out, "hoopd_approvals_total", "Approvals recorded (each reviewer counts once).", c.approvals);
  counter(out, "hoopd_denials_total", "Requests denied by a reviewer.", c.denials);
  counter(out, "hoopd_cancellations_total", "Requests cancelled by their requester.", c.cancellations);
  counter(out, "hoopd_expirations_total", "Pending requests that expired.", c.expirations);
  counter(out, "hoopd_grant_uses_total", "Recorded uses of approved grants.", c.grant_uses);
  counter(out, "hoopd_auth_failures_total", "Calls refused for a missing, bad or revoked token.",
          c.auth_failures);
  counter(out, "hoopd_commits_total", "Durable store commits (group commit batches).", c.commits);
  counter(out, "hoopd_commit_failures_total", "Store commits that failed.", c.commit_failures);
  gauge(out, "hoopd_sessions_open", "Recorded sessions not yet complete.",
        static_cast<uint64_t>(std::max<int64_t>(0, c.open_sessions)));
  counter(out, "hoopd_sessions_opened_total", "Sessions opened (one per grant use).", c.sessions_opened);
  counter(out, "hoopd_session_completes_total", "Sessions completed with a checked SHA-256.", c.session_completes);
  counter(out, "hoopd_transcript_bytes_received_total", "Transcript bytes received in accepted writes.",
          c.transcript_bytes);
  counter(out, "hoopd_transcript_writes_rejected_total",
          "Transcript writes and completions refused (gap, differing bytes, digest, complete session).",
          c.rejected_writes);
  gauge(out, "hoopd_waiters", "Open long-polls.", service.waiting());
  gauge(out, "hoopd_connections", "Open client connections.", connections_);
  counter(out, "hoopd_connections_refused_total", "Connections closed at once because max_connections was reached.",
          refused_);

  family(out, "hoopd_http_requests_total", "counter", "HTTP answers sent, by status code.");
  for (const auto& [code, n] : responses_) {
    out += "hoopd_http_requests_total{code=\"";
    out += std::to_string(code);
    out += "\"} ";
    out += std::to_string(n);
    out += '\n';
  }

  family(out, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.");
  char buf[64];
  std::snprintf(buf, sizeof buf, "process_start_time_seconds %.3f\n", start_time_s_);
  out += buf;
  gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.", resident_bytes());
  return out;
}

}  // namespace hoop::server
