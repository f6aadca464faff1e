#include "audit/chain.h"

#include <string_view>

#include "common/crypto.h"

namespace hoop::audit {
namespace {

// Length-prefixed fields ("<len>:<bytes>;") so that no two different rows
// encode to the same bytes: a separator inside `detail` cannot shift bytes
// from one field into the next.
void put(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out.append(field);
  out += ';';
}

void put(std::string& out, int64_t n) {
  put(out, std::string_view(std::to_string(n)));
}

std::string prefix(int64_t seq) {
  return "audit row " + std::to_string(seq) + ": ";
}

}  // namespace

std::string row_hash(const Row& r) {
  std::string buf;
  buf.reserve(128 + r.actor.size() + r.action.size() + r.detail.size() + r.prev_hash.size());
  // A version tag: a future encoding can never collide with this one.
  put(buf, std::string_view("hoop-audit-v1"));
  put(buf, r.seq);
  put(buf, r.at_ms);
  put(buf, r.actor);
  put(buf, r.action);
  put(buf, r.request_id);
  put(buf, r.detail);
  put(buf, r.prev_hash);
  return sha256_hex(buf);
}

bool Verifier::feed(const Row& r) {
  if (bad_seq_) return false;
  // Order matters: a missing or moved row is reported as such, not as the
  // hash mismatch it also causes further on.
  if (r.seq != expect_seq_) {
    bad_seq_ = expect_seq_;
    error_ = prefix(expect_seq_) + "expected seq " + std::to_string(expect_seq_) + ", found " +
             std::to_string(r.seq) +
             (r.seq > expect_seq_ ? " (row missing: removed or reordered)" : " (row removed or reordered)");
    return false;
  }
  if (r.prev_hash != prev_) {
    bad_seq_ = r.seq;
    error_ = prefix(r.seq) + "prev_hash does not match " +
             (r.seq == 1 ? std::string("the genesis hash") : "row " + std::to_string(r.seq - 1));
    return false;
  }
  if (r.hash != row_hash(r)) {
    bad_seq_ = r.seq;
    error_ = prefix(r.seq) + "hash does not match its contents (edited?)";
    return false;
  }
  prev_ = r.hash;
  ++expect_seq_;
  ++rows_;
  return true;
}

}  // namespace hoop::audit
