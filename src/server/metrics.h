#pragma once
// Figures for Prometheus (GET /metrics): what the service counted, plus what
// only the HTTP layer sees (connections, answers by status code).
// Single-threaded like the rest of the server: no atomics, no locks.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace hoop::server {

class Service;

/// HTTP-side counters and the text exposition of all figures. The server
/// owns one and updates it as connections come and go and answers leave.
class Metrics {
 public:
  Metrics();

  void connection_opened() { ++connections_; }
  void connection_closed() { if (connections_ > 0) --connections_; }
  void connection_refused() { ++refused_; }
  /// One answer written with this HTTP status.
  void count_response(unsigned status) { ++responses_[status]; }

  size_t connections() const { return connections_; }
  uint64_t responses(unsigned status) const;

  /// Prometheus text format 0.0.4.
  std::string render(const Service& service) const;

 private:
  double start_time_s_ = 0;
  size_t connections_ = 0;
  uint64_t refused_ = 0;
  // Few distinct codes ever occur (200, 201, 4xx, 503): a small ordered map
  // keeps the exposition sorted and stable.
  std::map<unsigned, uint64_t> responses_;
};

}  // namespace hoop::server
