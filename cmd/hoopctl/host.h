#pragma once
// The host side of the trust, for the privileged verbs (run, ship): the host
// config and the host credential, read only from HOOP_SYSCONFDIR and only
// when root's alone.
// MUST: be called only by keep_root verbs, after prepare() cleared the
//       environment: nothing the caller sets can name another file.

#include <string>
#include <vector>

#include "client/client.h"
#include "common/error.h"
#include "config/host_config.h"

namespace hoop::ctl {

inline constexpr const char* kHostConfigPath = HOOP_SYSCONFDIR "/hoop.toml";

struct Host {
  config::HostConfig cfg;
  std::string token;
};

/// Steps 1 and 2 of the privileged verbs, run by CLI11 the moment it meets
/// the verb: stray fds closed, not dumpable, core dumps off; then the
/// caller's environment copied into `caller_env` and cleared.
Status prepare_privileged(std::vector<std::string>& caller_env);

/// Reads and checks the config, the PEM files it names and the credential.
/// Errors name the file and what to do.
Result<Host> load_host();

/// Client options for hoopd with the host credential (a copy of the token).
client::ClientOptions host_client_options(const Host& h, const char* user_agent);

/// Overwrites and clears a secret.
void wipe(std::string& s);

}  // namespace hoop::ctl
