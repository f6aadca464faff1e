#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/types.h"

namespace hoop::api {
namespace {

using nlohmann::json;

json good() {
  return json{{"user", "alice"}, {"run_as", "root"}, {"argv", {"systemctl", "restart", "nginx"}},
              {"path", "/usr/bin/systemctl"}, {"digest", std::string(64, 'a')},
              {"cwd", "/home/alice"}, {"tty", "/dev/pts/1"}, {"reason", "deploy"}};
}

TEST(NewRequest, ParsesGoodBody) {
  auto r = parse_new_request(good());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->user, "alice");
  EXPECT_EQ(r->argv.size(), 3u);
}

TEST(NewRequest, ArgvMayHoldNewlinesAndEscapes) {
  auto j = good();
  j["argv"] = {"echo", "line1\nline2", "\x1b[2J"};
  EXPECT_TRUE(parse_new_request(j).ok());
}

Errc code_of(const json& j) {
  auto r = parse_new_request(j);
  EXPECT_FALSE(r.ok());
  return r.ok() ? Errc::internal : r.error().code;
}

TEST(NewRequest, RejectsHostileBodies) {
  EXPECT_EQ(code_of(json::array()), Errc::invalid_argument);
  auto j = good(); j["user"] = 5;
  EXPECT_EQ(code_of(j), Errc::invalid_argument);
  j = good(); j["user"] = "al\nice";
  EXPECT_EQ(code_of(j), Errc::invalid_argument);
  j = good(); j["user"] = "-rf";
  EXPECT_EQ(code_of(j), Errc::invalid_argument);
  j = good(); j["run_as"] = "#-1";
  EXPECT_EQ(code_of(j), Errc::invalid_argument);
  j = good(); j["argv"] = json::array();
  EXPECT_EQ(code_of(j), Errc::invalid_argument);
  j = good(); j["argv"] = {"a", 1};
  EXPECT_EQ(code_of(j), Errc::invalid_argument);
  j = good(); j["argv"] = {std::string("a\0b", 3)};
  EXPECT_EQ(code_of(j), Errc::invalid_argument);
  j = good(); j["argv"] = {std::string(kMaxArgvBytes + 1, 'x')};
  EXPECT_EQ(code_of(j), Errc::too_large);
  j = good(); j["path"] = "usr/bin/x";
  EXPECT_EQ(code_of(j), Errc::invalid_argument);
  j = good(); j["digest"] = "xyz";
  EXPECT_EQ(code_of(j), Errc::invalid_argument);
  j = good(); j["reason"] = "ok\x1b]0;title\x07";
  EXPECT_EQ(code_of(j), Errc::invalid_argument);
  j = good(); j["host"] = "spoofed";
  EXPECT_EQ(code_of(j), Errc::invalid_argument);  // the host comes from the credential
}

TEST(Json, ParseLimits) {
  EXPECT_FALSE(parse_json_text("{").ok());
  EXPECT_EQ(parse_json_text(std::string(kMaxBodyBytes + 1, ' ')).error().code, Errc::too_large);
  EXPECT_FALSE(parse_json_text(std::string(100000, '[')).ok());
  EXPECT_TRUE(parse_json_text(R"({"a":[1,2]})").ok());
}

TEST(Comment, RequiredAndClean) {
  EXPECT_FALSE(parse_comment(json::object(), true).ok());
  EXPECT_TRUE(parse_comment(json::object(), false).ok());
  EXPECT_FALSE(parse_comment(json{{"comment", "a\nb"}}, false).ok());
  EXPECT_FALSE(parse_comment(json{{"extra", 1}}, false).ok());
  EXPECT_EQ(parse_comment(json{{"comment", "looks fine"}}, true).value(), "looks fine");
}

TEST(Request, RoundTrip) {
  Request r;
  r.id = 7; r.host = "web1"; r.user = "alice"; r.run_as = "root"; r.argv = {"a", "b\nc"};
  r.state = State::approved;
  r.decisions.push_back({"bob", true, "ok", 5});
  auto back = parse_request(to_json(r));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->argv, r.argv);
  EXPECT_EQ(back->state, State::approved);
  EXPECT_EQ(back->approvals_count(), 1);
  EXPECT_FALSE(parse_request(json{{"id", "x"}}).ok());
}

TEST(Names, Validation) {
  EXPECT_TRUE(is_valid_name("alice"));
  EXPECT_TRUE(is_valid_name("svc-deploy$"));
  EXPECT_FALSE(is_valid_name("$"));
  EXPECT_FALSE(is_valid_name("a b"));
  EXPECT_FALSE(is_valid_name(".hidden"));
  EXPECT_FALSE(is_valid_name(std::string(65, 'a')));
  EXPECT_TRUE(is_valid_host("web-1.example.org"));
  EXPECT_FALSE(is_valid_host("web_1"));
}

TEST(Sessions, RoundTripInsideARequest) {
  Request r;
  r.id = 3;
  r.host = "web1";
  r.user = "alice";
  r.run_as = "root";
  r.argv = {"ls"};
  r.record = kRecordBestEffort;
  Session s;
  s.id = 9;
  s.request_id = 3;
  s.host = "web1";
  s.user = "alice";
  s.mask = {"a+"};
  s.length = 5'000'000'000;
  r.session = s;
  const json j = to_json(r);
  EXPECT_TRUE(j["session"]["exit_status"].is_null());
  EXPECT_EQ(j["session"]["state"], "open");
  auto back = parse_request(j);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->record, "best-effort");
  ASSERT_TRUE(back->session);
  EXPECT_EQ(back->session->length, 5'000'000'000u);
  EXPECT_EQ(back->session->mask, s.mask);
  r.session.reset();
  EXPECT_FALSE(to_json(r).contains("session"));
  json bad = to_json(s);
  bad["state"] = "half";
  EXPECT_FALSE(parse_session(bad));
}

TEST(Sessions, CompletionIsStrict) {
  const std::string sha(64, 'a');
  auto ok = parse_completion(json{{"length", 3}, {"sha256", sha}, {"exit_status", 1}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->exit_status, 1);
  EXPECT_FALSE(parse_completion(json{{"length", 3}, {"sha256", sha}, {"exit_status", nullptr}})->exit_status);
  EXPECT_FALSE(parse_completion(json{{"length", -3}, {"sha256", sha}}));
  EXPECT_FALSE(parse_completion(json{{"length", 3.5}, {"sha256", sha}}));
  EXPECT_FALSE(parse_completion(json{{"sha256", sha}}));
  EXPECT_FALSE(parse_completion(json{{"length", 3}, {"sha256", std::string(64, 'A')}}));
  EXPECT_FALSE(parse_completion(json{{"length", 3}, {"sha256", sha}, {"exit_status", "0"}}));
  EXPECT_FALSE(parse_completion(json{{"length", 3}, {"sha256", sha}, {"extra", 1}}));
  auto nr = parse_new_request(json{{"user", "a"}, {"argv", {"x"}}, {"path", "/x"}, {"digest", sha}, {"use", true}});
  ASSERT_TRUE(nr);
  EXPECT_TRUE(nr->use);
  EXPECT_FALSE(parse_new_request(json{{"user", "a"}, {"argv", {"x"}}, {"path", "/x"}, {"digest", sha}, {"use", 1}}));
}

}  // namespace
}  // namespace hoop::api
