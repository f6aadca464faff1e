// hoopd's config: every key, every refusal, and the file reader.

#include "config/server_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace hoop::config {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kTls = "[tls]\ncert = \"server.pem\"\nkey = \"/etc/ssl/server.key\"\n";

Result<ServerConfig> parse(const std::string& text) {
  return parse_server_config(text, "/etc/hoop/hoopd.toml");
}

// The error text of a failed parse (fails the test when it parsed).
std::string error_of(const std::string& text) {
  auto r = parse(text);
  EXPECT_FALSE(r.ok()) << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  return r.error().message;
}

#define EXPECT_ERROR(text, part)                                      \
  do {                                                                \
    const std::string m_ = error_of(text);                            \
    EXPECT_NE(m_.find(part), std::string::npos) << "message: " << m_; \
  } while (0)

std::string base(const std::string& extra) {
  return "data_dir = \"/var/lib/hoop\"\npolicy = \"policy.toml\"\n" + extra;
}

TEST(ServerConfig, MinimalWithTlsAndDefaults) {
  auto r = parse(base(std::string(kTls)));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->source, "/etc/hoop/hoopd.toml");
  EXPECT_EQ(r->listen_address, "127.0.0.1");
  EXPECT_EQ(r->listen_port, 8443);
  EXPECT_EQ(r->data_dir, "/var/lib/hoop");
  EXPECT_EQ(r->policy_path, "/etc/hoop/policy.toml");  // relative to the config file
  ASSERT_TRUE(r->tls.has_value());
  EXPECT_EQ(r->tls->cert, "/etc/hoop/server.pem");
  EXPECT_EQ(r->tls->key, "/etc/ssl/server.key");
  EXPECT_EQ(r->tls->client_ca, "");
  EXPECT_FALSE(r->insecure_http);
  EXPECT_EQ(r->request_ttl, milliseconds(30 * 60 * 1000));
  EXPECT_EQ(r->max_wait, milliseconds(60 * 1000));
  EXPECT_EQ(r->read_timeout, milliseconds(10 * 1000));
  EXPECT_EQ(r->max_connections, 20000u);
  EXPECT_EQ(r->db_path(), "/var/lib/hoop/hoop.db");
}

TEST(ServerConfig, EveryKey) {
  auto r = parse(
      "listen = \"[::1]:9000\"\ndata_dir = \"./data/../state\"\npolicy = \"/srv/policy.toml\"\n"
      "request_ttl = \"1h\"\nmax_wait = \"30s\"\nread_timeout = \"2s\"\nmax_connections = 100\n"
      "insecure_http = false\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca/clients.pem\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->listen_address, "::1");
  EXPECT_EQ(r->listen_port, 9000);
  EXPECT_EQ(r->data_dir, "/etc/hoop/state");
  EXPECT_EQ(r->policy_path, "/srv/policy.toml");
  EXPECT_EQ(r->request_ttl, milliseconds(3600 * 1000));
  EXPECT_EQ(r->max_wait, milliseconds(30 * 1000));
  EXPECT_EQ(r->read_timeout, milliseconds(2000));
  EXPECT_EQ(r->max_connections, 100u);
  EXPECT_EQ(r->tls->client_ca, "/etc/hoop/ca/clients.pem");
}

TEST(ServerConfig, ListenForms) {
  auto listen = [](const std::string& v) {
    return parse(base("listen = \"" + v + "\"\n" + std::string(kTls)));
  };
  auto a = listen("localhost:80");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->listen_address, "127.0.0.1");
  EXPECT_EQ(a->listen_port, 80);
  auto b = listen("0.0.0.0:65535");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->listen_address, "0.0.0.0");
  EXPECT_EQ(b->listen_port, 65535);
  auto c = listen("127.0.0.1:0");  // any free port: tests and the demo use it
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->listen_port, 0);

  const std::string t(kTls);
  EXPECT_ERROR(base("listen = \"127.0.0.1\"\n" + t), "has no port");
  EXPECT_ERROR(base("listen = \"::1:8443\"\n" + t), "need brackets");
  EXPECT_ERROR(base("listen = \"[::1]8443\"\n" + t), "bad listen address");
  EXPECT_ERROR(base("listen = \"[nope]:8443\"\n" + t), "bad IPv6 address");
  EXPECT_ERROR(base("listen = \"example.com:8443\"\n" + t), "must be an IP address or localhost");
  EXPECT_ERROR(base("listen = \"127.1:8443\"\n" + t), "must be an IP address");
  EXPECT_ERROR(base("listen = \"127.0.0.1:65536\"\n" + t), "out of range");
  EXPECT_ERROR(base("listen = \"127.0.0.1:http\"\n" + t), "bad port");
  EXPECT_ERROR(base("listen = \"127.0.0.1:\"\n" + t), "bad port");
  EXPECT_ERROR(base("listen = \"127.0.0.1:-1\"\n" + t), "bad port");
  EXPECT_ERROR(base("listen = 8443\n" + t), "hoopd.toml:3:10: 'listen' must be a string, not an integer");
}

TEST(ServerConfig, TransportMustBeChosenExplicitly) {
  auto plain = parse(base("insecure_http = true\n"));
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_TRUE(plain->insecure_http);
  EXPECT_FALSE(plain->tls.has_value());
  // Neither: the message says what to write.
  const std::string none = error_of(base(""));
  EXPECT_NE(none.find("/etc/hoop/hoopd.toml:1:1: "), std::string::npos) << none;
  EXPECT_NE(none.find("[tls]"), std::string::npos) << none;
  EXPECT_NE(none.find("cert = \"FILE\""), std::string::npos) << none;
  EXPECT_NE(none.find("insecure_http = true"), std::string::npos) << none;
  EXPECT_ERROR(base("insecure_http = false\n"), "no TLS configured");
  EXPECT_ERROR(base("insecure_http = true\n" + std::string(kTls)),
               "hoopd.toml:3:17: both [tls] and insecure_http");
  EXPECT_ERROR(base("insecure_http = \"yes\"\n"), "hoopd.toml:3:17: 'insecure_http' must be true or false");
}

TEST(ServerConfig, TlsTable) {
  EXPECT_ERROR(base("[tls]\ncert = \"c.pem\"\n"), "hoopd.toml:3:1: [tls] needs key");
  EXPECT_ERROR(base("[tls]\nkey = \"k.pem\"\n"), "hoopd.toml:3:1: [tls] needs cert");
  EXPECT_ERROR(base("[tls]\ncert = \"c\"\nkey = \"k\"\nca = \"x\"\n"),
               "hoopd.toml:6:1: unknown key 'ca' in [tls]");
  EXPECT_ERROR(base("tls = \"on\"\n"), "'tls' must be a table");
  EXPECT_ERROR(base("[tls]\ncert = \"\"\nkey = \"k\"\n"), "hoopd.toml:4:8: 'cert' must not be empty");
}

TEST(ServerConfig, RequiredAndUnknownKeys) {
  EXPECT_ERROR("policy = \"p\"\ninsecure_http = true\n", "missing required key 'data_dir'");
  EXPECT_ERROR("data_dir = \"d\"\ninsecure_http = true\n", "missing required key 'policy'");
  EXPECT_ERROR(base("insecure_http = true\nlisten_port = 1\n"), "hoopd.toml:4:1: unknown key 'listen_port'");
  EXPECT_ERROR(base("insecure_http = true\n[store]\npath = \"x\"\n"), "hoopd.toml:4:2: unknown key 'store'");
  EXPECT_ERROR("data_dir = 1\npolicy = \"p\"\ninsecure_http = true\n",
               "hoopd.toml:1:12: 'data_dir' must be a string");
}

TEST(ServerConfig, DurationsAndLimits) {
  const std::string ok = "insecure_http = true\n";
  EXPECT_ERROR(base(ok + "request_ttl = \"30\"\n"), "hoopd.toml:4:15: 'request_ttl': bad duration");
  EXPECT_ERROR(base(ok + "max_wait = 30\n"), "hoopd.toml:4:12: 'max_wait' must be a duration string");
  EXPECT_ERROR(base(ok + "read_timeout = \"0s\"\n"), "'read_timeout' must be longer than zero");
  EXPECT_ERROR(base(ok + "max_connections = 0\n"), "hoopd.toml:4:19: 'max_connections' must be between 1");
  EXPECT_ERROR(base(ok + "max_connections = 1000001\n"), "must be between 1 and 1000000");
  EXPECT_ERROR(base(ok + "max_connections = \"10\"\n"), "'max_connections' must be an integer");
  EXPECT_ERROR(base(ok + "max_connections = 1.5\n"), "must be an integer, not a float");
}

TEST(ServerConfig, ReportsEveryErrorAtOnce) {
  const std::string m = error_of("listen = \"x\"\ndata_dir = 3\nbogus = 1\nmax_wait = \"1y\"\n");
  EXPECT_NE(m.find("hoopd.toml:1:10:"), std::string::npos) << m;
  EXPECT_NE(m.find("hoopd.toml:2:12:"), std::string::npos) << m;
  EXPECT_NE(m.find("hoopd.toml:3:1: unknown key 'bogus'"), std::string::npos) << m;
  EXPECT_NE(m.find("hoopd.toml:4:12:"), std::string::npos) << m;
  EXPECT_NE(m.find("missing required key 'policy'"), std::string::npos) << m;
  EXPECT_NE(m.find("no TLS configured"), std::string::npos) << m;
}

TEST(ServerConfig, HostileInput) {
  EXPECT_ERROR("# " + std::string(2 * 1024 * 1024, 'x'), "larger than 1048576 bytes");
  std::string dotted;
  for (int i = 0; i < 100000; ++i) dotted += "a.";
  EXPECT_ERROR(dotted + "b = 1\n", "too many dotted keys");
  EXPECT_ERROR("x = " + std::string(10000, '[') + std::string(10000, ']'), "hoopd.toml:1:");
  EXPECT_ERROR("data_dir = \"/x\\u001b[2J\"\npolicy = \"p\"\ninsecure_http = true\n",
               "hoopd.toml:1:12: 'data_dir' contains control characters");
  EXPECT_ERROR(std::string("\xff\xfe\0\0", 4), "hoopd.toml:1:");
}

class LoadServerConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "hoopcfgXXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  std::string dir_;
};

TEST_F(LoadServerConfig, ResolvesPathsAgainstTheFilesFolder) {
  const std::string p =
      write("hoopd.toml", "data_dir = \"data\"\npolicy = \"policy.toml\"\ninsecure_http = true\n");
  auto r = load_server_config(p);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->source, p);
  EXPECT_EQ(r->data_dir, std::filesystem::path(dir_ + "/data").lexically_normal().string());
  EXPECT_EQ(r->policy_path, std::filesystem::path(dir_ + "/policy.toml").lexically_normal().string());
}

TEST_F(LoadServerConfig, ReadErrorsNameTheFile) {
  auto missing = load_server_config(dir_ + "/nope.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "cannot read " + dir_ + "/nope.toml: No such file or directory");
  auto folder = load_server_config(dir_);
  ASSERT_FALSE(folder.ok());
  EXPECT_EQ(folder.error().message, "cannot read " + dir_ + ": not a regular file");
  const std::string big = write("big.toml", "# " + std::string(1024 * 1024, 'x') + "\n");
  auto large = load_server_config(big);
  ASSERT_FALSE(large.ok());
  EXPECT_EQ(large.error().code, Errc::too_large);
  EXPECT_NE(large.error().message.find("cannot read " + big + ": larger than"), std::string::npos);
  const std::string bad = write("bad.toml", "listen = 1\n");
  auto invalid = load_server_config(bad);
  ASSERT_FALSE(invalid.ok());
  EXPECT_NE(invalid.error().message.find(bad + ":1:10: 'listen' must be a string"), std::string::npos)
      << invalid.error().message;
}

}  // namespace
}  // namespace hoop::config
