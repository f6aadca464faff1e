#pragma once
// Test helper for the layers above the store: the real store, whose commit
// fails on demand (a full disk, an I/O error). Header-only; tests only.

#include "store/store.h"

namespace hoop::store {

class FailingCommitStore final : public Store {
 public:
  explicit FailingCommitStore(Store& s) : s_(s) {}
  bool fail_commit = false;

  Status begin() override { return s_.begin(); }
  Status commit() override {
    if (!fail_commit) return s_.commit();
    s_.rollback();
    return make_error(Errc::io, "disk I/O error");
  }
  void rollback() override { s_.rollback(); }
  bool in_transaction() const override { return s_.in_transaction(); }
  Status savepoint() override { return s_.savepoint(); }
  Status release() override { return s_.release(); }
  void rollback_to() override { s_.rollback_to(); }
  Status insert_token(const Token& t) override { return s_.insert_token(t); }
  Result<std::optional<Token>> find_token(std::string_view id) override { return s_.find_token(id); }
  Result<std::vector<Token>> list_tokens() override { return s_.list_tokens(); }
  Status revoke_token(std::string_view id, int64_t at) override { return s_.revoke_token(id, at); }
  Result<int64_t> insert_request(const api::Request& r) override { return s_.insert_request(r); }
  Result<std::optional<api::Request>> get_request(int64_t id) override { return s_.get_request(id); }
  Status update_request(const api::Request& r) override { return s_.update_request(r); }
  Status add_decision(int64_t id, const api::Decision& d) override { return s_.add_decision(id, d); }
  Result<std::vector<api::Request>> list_requests(const RequestFilter& f) override {
    return s_.list_requests(f);
  }
  Result<std::vector<api::Request>> live_grants(const GrantKey& k, int64_t now) override {
    return s_.live_grants(k, now);
  }
  Result<std::vector<int64_t>> pending_due(int64_t now, int limit) override {
    return s_.pending_due(now, limit);
  }
  Result<int64_t> count_requests(std::optional<api::State> st) override { return s_.count_requests(st); }
  Result<int64_t> insert_session(const SessionRecord& r) override { return s_.insert_session(r); }
  Result<std::optional<SessionRecord>> get_session(int64_t id) override { return s_.get_session(id); }
  Status complete_session(const api::Session& r) override { return s_.complete_session(r); }
  Result<std::vector<SessionRecord>> list_sessions(const SessionFilter& f) override {
    return s_.list_sessions(f);
  }
  Result<int64_t> count_open_sessions() override { return s_.count_open_sessions(); }
  Result<audit::Row> append_audit(int64_t at, std::string_view actor, std::string_view action, int64_t id,
                                  std::string_view detail) override {
    return s_.append_audit(at, actor, action, id, detail);
  }
  Result<std::vector<audit::Row>> read_audit(int64_t after, int limit) override {
    return s_.read_audit(after, limit);
  }

 private:
  Store& s_;
};

}  // namespace hoop::store
