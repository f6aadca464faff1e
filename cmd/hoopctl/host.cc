// Reading the host config and credential for the privileged verbs.

#include "host.h"

#include <string.h>  // explicit_bzero

#include <filesystem>

#include "client/credentials.h"
#include "common/escape.h"
#include "sys/process.h"
#include "sys/secure_file.h"

extern char** environ;

namespace hoop::ctl {
namespace {

constexpr size_t kMaxConfigBytes = size_t{64} * 1024;
constexpr size_t kMaxPemBytes = size_t{1} * 1024 * 1024;

// A secret must not be readable by others either. The directories above it
// were just checked to be root's alone, so the path cannot change under us.
Status check_private(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::perms p = fs::status(path, ec).permissions();
  if (ec) return make_error(Errc::io, "cannot stat " + escape_for_terminal(path) + ": " + ec.message());
  if ((p & (fs::perms::group_read | fs::perms::others_read)) != fs::perms::none)
    return make_error(Errc::io, "refusing " + escape_for_terminal(path) +
                                    ": readable by group or others; run: chmod 600 " +
                                    escape_for_terminal(path));
  return {};
}

}  // namespace

Result<Host> load_host() {
  auto text = sys::read_root_owned_file(kHostConfigPath, kMaxConfigBytes);
  if (!text) {
    if (text.error().code == Errc::not_found)
      return make_error(Errc::io, text.error().message + "; hoop is not set up on this host (ask an admin)");
    return text.error();
  }
  auto cfg = config::parse_host_config(*text, kHostConfigPath);
  if (!cfg) return cfg.error();
  // Whoever can write the CA bundle can impersonate hoopd and approve
  // anything: it must be as trusted as the config.
  for (const std::string* pem : {&cfg->ca, &cfg->client_cert, &cfg->client_key}) {
    if (pem->empty()) continue;
    auto body = sys::read_root_owned_file(*pem, kMaxPemBytes);
    if (!body) return body.error();
    wipe(*body);
  }
  if (!cfg->client_key.empty())
    if (auto st = check_private(cfg->client_key); !st) return st.error();

  auto raw = sys::read_root_owned_file(cfg->credential, client::kMaxTokenFileBytes);
  if (!raw) return raw.error();
  Host h{std::move(*cfg), {}};
  const size_t b = raw->find_first_not_of(" \t\r\n");
  const size_t e = raw->find_last_not_of(" \t\r\n");
  if (b != std::string::npos) h.token.assign(*raw, b, e - b + 1);
  wipe(*raw);
  if (auto st = check_private(h.cfg.credential); !st) return st.error();
  if (!client::is_valid_token_shape(h.token))
    return make_error(Errc::io, escape_for_terminal(h.cfg.credential) +
                                    " does not hold a hoop host token; ask an admin to run: hoopd token "
                                    "create --host NAME");
  return h;
}

Status prepare_privileged(std::vector<std::string>& caller_env) {
  if (auto st = sys::sanitize_fds(); !st) return st;
  if (auto st = sys::harden_process(); !st) return st;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) caller_env.emplace_back(*e);
  if (::clearenv() != 0) return make_error(Errc::internal, "cannot clear the environment");
  return {};
}

void wipe(std::string& s) {
  explicit_bzero(s.data(), s.size());
  s.clear();
}

client::ClientOptions host_client_options(const Host& h, const char* user_agent) {
  client::ClientOptions co;
  co.server = h.cfg.server;
  co.ca_file = h.cfg.ca;
  co.client_cert = h.cfg.client_cert;
  co.client_key = h.cfg.client_key;
  co.token = h.token;
  co.user_agent = user_agent;
  return co;
}

}  // namespace hoop::ctl
