#pragma once
// The audit trail is a hash chain: row n stores hash(row n-1) and its own
// hash over (seq, time, actor, action, request id, detail, prev_hash). Any
// change, removal or reordering of a row breaks the chain at that row.
// Pure: no I/O; the store persists rows, hoopd audit verify walks them.

#include <cstdint>
#include <optional>
#include <string>

namespace hoop::audit {

/// The all-zero hash that the first row points back to.
inline constexpr const char* kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

struct Row {
  int64_t seq = 0;        // 1, 2, 3, ... without gaps
  int64_t at_ms = 0;
  std::string actor;      // "user:alice", "host:web1", "system"
  std::string action;     // "request.create", "request.approve", ...
  int64_t request_id = 0; // 0 when not about a request
  std::string detail;     // compact JSON object
  std::string prev_hash;
  std::string hash;
};

/// SHA-256 (hex) over an unambiguous encoding of every field but `hash`.
std::string row_hash(const Row& r);

/// Checks rows one at a time, in the order read. The first failure sticks:
/// later rows are not examined. The chain alone cannot show rows cut off the
/// end: `hoopd audit verify` prints the last seq and hash so an operator can
/// record them elsewhere and compare later.
class Verifier {
 public:
  /// Returns false at the first bad row; `error()` then names it.
  bool feed(const Row& r);
  bool ok() const { return !bad_seq_.has_value(); }
  int64_t rows() const { return rows_; }
  std::optional<int64_t> bad_seq() const { return bad_seq_; }
  const std::string& error() const { return error_; }

 private:
  int64_t rows_ = 0;
  int64_t expect_seq_ = 1;
  std::string prev_ = kGenesisHash;
  std::optional<int64_t> bad_seq_;
  std::string error_;
};

}  // namespace hoop::audit
