#pragma once
// The host config (/etc/hoop/hoop.toml): how this host reaches hoopd and
// what to do when it cannot. It holds no secret itself; the credential it
// points to does.

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace hoop::config {

enum class Offline { deny };

/// The [shell] table: what hoop-shell (the restricted login shell and
/// ForceCommand) lets through besides `hoopctl run` requests. Everything it
/// can allow defaults to refused.
struct ShellConfig {
  std::string hoopctl;                    // "" = the path fixed when hoop-shell was built
  std::string login_shell = "/bin/bash";  // what --login-session asks to run, with -l
  std::vector<std::string> cd_dirs;       // besides the home directory; absolute
  bool allow_scp = false;                 // scp -t / scp -f, run as the user
  bool allow_sftp = false;                // sftp-server / internal-sftp, run as the user
  bool allow_rsync = false;               // rsync --server, run as the user
  bool allow_agent_forwarding = false;    // a session with SSH_AUTH_SOCK set
};

struct HostConfig {
  std::string source;
  std::string server;         // "https://hoop.example.org:8443"
  std::string ca;             // CA bundle for the server's certificate ("" = system store)
  std::string credential = "/etc/hoop/host.token";
  std::string spool_dir = "/var/spool/hoop";
  Offline offline = Offline::deny;
  std::string secure_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  std::string client_cert;    // optional mutual TLS
  std::string client_key;
  ShellConfig shell;          // [shell]: hoop-shell only; hoopctl ignores it
};

/// Errors are "source:line:col: message". Unknown keys are errors (a typo in
/// a security config must not be silently ignored).
Result<HostConfig> parse_host_config(std::string_view text, std::string_view source);

}  // namespace hoop::config
