#pragma once
// Private to the store tests: a temporary directory with a database in it,
// removed afterwards, and a sample request.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "store/store.h"

namespace hoop::store::testing {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hoop-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/hoop.db";
    reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void reopen() {
    store_.reset();
    auto s = open_sqlite(path_);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s.value());
  }

  // Raw SQL on the file, as an attacker with write access would run it.
  void raw_sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    const std::string msg = err != nullptr ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
  }

  static api::Request sample(std::string user = "alice", std::string host = "web1") {
    api::Request r;
    r.host = std::move(host);
    r.user = std::move(user);
    r.run_as = "root";
    r.argv = {"/usr/bin/systemctl", "restart", "nginx"};
    r.path = "/usr/bin/systemctl";
    r.digest = std::string(64, 'a');
    r.cwd = "/home/alice";
    r.tty = "/dev/pts/3";
    r.reason = "deploy";
    r.rule = "restart-web";
    r.action = "review";
    r.reviewers = {"bob", "carol"};
    r.approvals_required = 1;
    r.grant_ttl_ms = 900000;
    r.created_at_ms = 1700000000000;
    r.expires_at_ms = 1700001800000;
    return r;
  }

  int64_t insert(const api::Request& r) {
    auto id = store_->insert_request(r);
    EXPECT_TRUE(id.ok()) << id.error().message;
    return id.ok() ? *id : 0;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

}  // namespace hoop::store::testing
