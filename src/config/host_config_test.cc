// The host config: every key, every refusal, with positions.

#include "config/host_config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hoop::config {
namespace {

Result<HostConfig> parse(const std::string& text) {
  return parse_host_config(text, "hoop.toml");
}

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

std::string with_server(const std::string& url) {
  return "server = \"" + url + "\"\n";
}

TEST(HostConfig, ServerOnlyGivesDefaults) {
  auto r = parse(with_server("https://hoop.example.org:8443"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->source, "hoop.toml");
  EXPECT_EQ(r->server, "https://hoop.example.org:8443");
  EXPECT_EQ(r->ca, "");
  EXPECT_EQ(r->credential, "/etc/hoop/host.token");
  EXPECT_EQ(r->spool_dir, "/var/spool/hoop");
  EXPECT_EQ(r->offline, Offline::deny);
  EXPECT_EQ(r->secure_path, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  EXPECT_EQ(r->client_cert, "");
  EXPECT_EQ(r->client_key, "");
}

TEST(HostConfig, EveryKey) {
  auto r = parse(
      "server = \"https://10.0.0.5/\"\nca = \"/etc/hoop/ca.pem\"\ncredential = \"/etc/hoop/t\"\n"
      "spool_dir = \"/var/spool/h\"\noffline = \"deny\"\nsecure_path = \"/usr/bin:/bin\"\n"
      "client_cert = \"/etc/hoop/c.pem\"\nclient_key = \"/etc/hoop/c.key\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->server, "https://10.0.0.5");  // trailing '/' dropped
  EXPECT_EQ(r->ca, "/etc/hoop/ca.pem");
  EXPECT_EQ(r->credential, "/etc/hoop/t");
  EXPECT_EQ(r->spool_dir, "/var/spool/h");
  EXPECT_EQ(r->secure_path, "/usr/bin:/bin");
  EXPECT_EQ(r->client_cert, "/etc/hoop/c.pem");
  EXPECT_EQ(r->client_key, "/etc/hoop/c.key");
}

TEST(HostConfig, PlainHttpOnlyForLoopback) {
  for (const char* ok : {"http://127.0.0.1:8080", "http://127.5.6.7", "http://[::1]:80", "http://localhost:1",
                         "https://[2001:db8::1]:8443", "https://hoop"}) {
    auto r = parse(with_server(ok));
    EXPECT_TRUE(r.ok()) << ok << ": " << r.error().message;
  }
  for (const char* bad : {"http://10.0.0.1", "http://hoop.example.org:8443", "http://localhost.evil.org",
                          "http://127.0.0.1.evil.org", "http://128.0.0.1", "http://[::2]",
                          "http://0x7f000001", "http://[::ffff:10.0.0.1]"}) {
    const std::string m = error_of(with_server(bad));
    EXPECT_NE(m.find("hoop.toml:1:10: "), std::string::npos) << bad << ": " << m;
    EXPECT_NE(m.find("TLS is required"), std::string::npos) << bad << ": " << m;
  }
}

TEST(HostConfig, ServerUrlShape) {
  EXPECT_ERROR("", "hoop.toml:1:1: missing required key 'server'");
  EXPECT_ERROR("server = 8443\n", "hoop.toml:1:10: 'server' must be a string, not an integer");
  EXPECT_ERROR("[server]\nurl = \"x\"\n", "'server' must be a string, not a table");
  EXPECT_ERROR(with_server("hoop.example.org"), "must start with https://");
  EXPECT_ERROR(with_server("HTTPS://hoop"), "must start with https://");
  EXPECT_ERROR(with_server("ftp://hoop"), "must start with https://");
  EXPECT_ERROR(with_server("https://hoop/v1"), "no path, query or user name");
  EXPECT_ERROR(with_server("https://hoop?x=1"), "no path, query or user name");
  EXPECT_ERROR(with_server("https://user@hoop"), "no path, query or user name");
  EXPECT_ERROR(with_server("https://"), "not a valid host name");
  EXPECT_ERROR(with_server("https://-hoop"), "not a valid host name");
  EXPECT_ERROR(with_server("https://ho_op"), "not a valid host name");
  EXPECT_ERROR(with_server("https://::1:8443"), "not a valid host name");
  EXPECT_ERROR(with_server("https://[::1"), "missing ']'");
  EXPECT_ERROR(with_server("https://[::1]x"), "unexpected text after ']'");
  EXPECT_ERROR(with_server("https://[zz]"), "is not an IPv6 address");
  EXPECT_ERROR(with_server("https://hoop:0"), "port must be 1-65535");
  EXPECT_ERROR(with_server("https://hoop:65536"), "port must be 1-65535");
  EXPECT_ERROR(with_server("https://hoop:"), "port must be 1-65535");
  EXPECT_ERROR(with_server("https://hoop:84x3"), "port must be 1-65535");
  EXPECT_ERROR(with_server("https://hoop\\u0007"), "control characters");
}

TEST(HostConfig, PathsMustBeAbsolute) {
  const std::string s = with_server("https://hoop");
  EXPECT_ERROR(s + "ca = \"ca.pem\"\n", "hoop.toml:2:6: 'ca' must be an absolute path, not 'ca.pem'");
  EXPECT_ERROR(s + "credential = \"./t\"\n", "hoop.toml:2:14: 'credential' must be an absolute path");
  EXPECT_ERROR(s + "spool_dir = \"\"\n", "hoop.toml:2:13: 'spool_dir' must be an absolute path");
  EXPECT_ERROR(s + "client_cert = \"c\"\nclient_key = \"/k\"\n",
               "hoop.toml:2:15: 'client_cert' must be an absolute");
  EXPECT_ERROR(s + "ca = 1\n", "hoop.toml:2:6: 'ca' must be a string, not an integer");
}

TEST(HostConfig, SecurePath) {
  const std::string s = with_server("https://hoop");
  EXPECT_ERROR(s + "secure_path = \"/usr/bin::/bin\"\n",
               "hoop.toml:2:15: 'secure_path' has an empty element");
  EXPECT_ERROR(s + "secure_path = \"/usr/bin:\"\n", "has an empty element");
  EXPECT_ERROR(s + "secure_path = \":/usr/bin\"\n", "has an empty element");
  EXPECT_ERROR(s + "secure_path = \".:/usr/bin\"\n", "element '.' is not an absolute directory");
  EXPECT_ERROR(s + "secure_path = \"/usr/bin:bin\"\n", "element 'bin' is not an absolute directory");
  EXPECT_ERROR(s + "secure_path = \"\"\n", "'secure_path' must not be empty");
  EXPECT_ERROR(s + "secure_path = [\"/bin\"]\n", "'secure_path' must be a string, not an array");
  auto r = parse(s + "secure_path = \"/opt/bin\"\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->secure_path, "/opt/bin");
}

TEST(HostConfig, OfflineAndClientCertificates) {
  const std::string s = with_server("https://hoop");
  EXPECT_ERROR(s + "offline = \"allow\"\n",
               "hoop.toml:2:11: offline = 'allow' is not supported; allowed values: \"deny\"");
  EXPECT_ERROR(s + "offline = false\n", "'offline' must be a string, not a boolean");
  EXPECT_ERROR(s + "client_cert = \"/c\"\n", "hoop.toml:2:15: client_cert and client_key go together");
  EXPECT_ERROR(s + "client_key = \"/k\"\n", "hoop.toml:2:14: client_cert and client_key go together");
}

TEST(HostConfig, UnknownKeysAndManyErrors) {
  const std::string m = error_of("server = \"http://10.1.1.1\"\nsever = \"x\"\nca = \"rel\"\n[extra]\n");
  EXPECT_NE(m.find("hoop.toml:1:10: "), std::string::npos) << m;
  EXPECT_NE(m.find("hoop.toml:2:1: unknown key 'sever'"), std::string::npos) << m;
  EXPECT_NE(m.find("hoop.toml:3:6: 'ca' must be an absolute path"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown key 'extra'"), std::string::npos) << m;
  EXPECT_NE(m.find("allowed: server, ca, credential"), std::string::npos) << m;
}

TEST(HostConfig, HostileInput) {
  EXPECT_ERROR(with_server("https://hoop") + "# " + std::string(1024 * 1024, 'x'), "larger than");
  std::string dotted;
  for (int i = 0; i < 100000; ++i) dotted += "a.";
  EXPECT_ERROR(dotted + "b = 1\n", "too many dotted keys");
  EXPECT_ERROR("server = " + std::string(5000, '[') + std::string(5000, ']'), "hoop.toml:1:");
  EXPECT_ERROR(std::string("server = \"https://hoop\"\x00\n", 24), "hoop.toml:1:");
  EXPECT_ERROR("server = \"https://hoop\"\n\"\\u001b]0;x\" = 1\n", "unknown key '\\x1b]0;x'");
}

TEST(HostConfig, ShellDefaultsRefuseEverythingOptional) {
  auto r = parse(with_server("https://hoop"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->shell.hoopctl, "");
  EXPECT_EQ(r->shell.login_shell, "/bin/bash");
  EXPECT_TRUE(r->shell.cd_dirs.empty());
  EXPECT_FALSE(r->shell.allow_scp);
  EXPECT_FALSE(r->shell.allow_sftp);
  EXPECT_FALSE(r->shell.allow_rsync);
  EXPECT_FALSE(r->shell.allow_agent_forwarding);
}

TEST(HostConfig, ShellTable) {
  auto r = parse(with_server("https://hoop") +
                 "[shell]\nhoopctl = \"/opt/hoop/bin/hoopctl\"\nlogin_shell = \"/bin/zsh\"\n"
                 "cd_dirs = [\"/srv\", \"/var/log\"]\nallow_scp = true\nallow_sftp = true\n"
                 "allow_rsync = true\nallow_agent_forwarding = true\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->shell.hoopctl, "/opt/hoop/bin/hoopctl");
  EXPECT_EQ(r->shell.login_shell, "/bin/zsh");
  EXPECT_EQ(r->shell.cd_dirs, (std::vector<std::string>{"/srv", "/var/log"}));
  EXPECT_TRUE(r->shell.allow_scp && r->shell.allow_sftp && r->shell.allow_rsync);
  EXPECT_TRUE(r->shell.allow_agent_forwarding);
}

TEST(HostConfig, ShellTableRefusals) {
  const std::string s = with_server("https://hoop");
  EXPECT_ERROR(s + "shell = 1\n", "'shell' must be a table");
  EXPECT_ERROR(s + "[shell]\nallow_scp = \"yes\"\n", "hoop.toml:3:13: 'allow_scp' must be true or false");
  EXPECT_ERROR(s + "[shell]\nhoopctl = \"bin/hoopctl\"\n", "'hoopctl' must be an absolute path");
  EXPECT_ERROR(s + "[shell]\nlogin_shell = \"bash\"\n", "'login_shell' must be an absolute path");
  EXPECT_ERROR(s + "[shell]\ncd_dirs = \"/srv\"\n", "'cd_dirs' must be an array");
  EXPECT_ERROR(s + "[shell]\ncd_dirs = [\"srv\"]\n", "'cd_dirs' entries must be absolute");
  EXPECT_ERROR(s + "[shell]\ncd_dirs = [1]\n", "'cd_dirs' entries must be absolute");
  EXPECT_ERROR(s + "[shell]\nallow_x11 = true\n", "unknown key 'allow_x11' in [shell]");
}

}  // namespace
}  // namespace hoop::config
