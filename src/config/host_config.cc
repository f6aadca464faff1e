// The host config. Pure: text in, HostConfig or every error out.
//
// MUST: refuse plain http:// unless the server is this machine (a bearer
// token would otherwise cross the network in clear text).
// MUST: refuse relative paths and relative PATH entries: hoopctl runs setuid
// and its cwd belongs to the user.

#include "config/host_config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "config/toml_util.h"

namespace hoop::config {
namespace {

using detail::Errors;
using detail::quoted;

constexpr std::string_view kKeys[] = {"server",      "ca",          "credential", "spool_dir", "offline",
                                      "secure_path", "client_cert", "client_key", "shell"};
constexpr std::string_view kShellKeys[] = {
    "hoopctl", "login_shell", "cd_dirs", "allow_scp", "allow_sftp", "allow_rsync", "allow_agent_forwarding"};

bool is_host_name(std::string_view s) {
  if (s.empty() || s.size() > 253 || s[0] == '-' || s[0] == '.') return false;
  for (char c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_loopback(std::string_view host, bool bracketed) {
  if (bracketed) {
    in6_addr a6{};
    return inet_pton(AF_INET6, std::string(host).c_str(), &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
  }
  if (host == "localhost") return true;
  unsigned char a4[4] = {};
  return inet_pton(AF_INET, std::string(host).c_str(), a4) == 1 && a4[0] == 127;  // 127.0.0.0/8
}

// "https://host[:port]" (one trailing '/' is dropped). Sets `why` on error.
bool parse_server_url(std::string_view url, std::string& out, std::string& why) {
  const std::string shape =
      "; write https://HOST or https://HOST:PORT, e.g. \"https://hoop.example.org:8443\"";
  bool tls = true;
  std::string_view rest;
  if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    tls = false;
    rest = url.substr(7);
  } else {
    why = "server " + quoted(url) + " must start with https://" + shape;
    return false;
  }
  if (rest.ends_with("/")) rest.remove_suffix(1);
  if (rest.find_first_of("/?#@ ") != std::string_view::npos) {
    why = "server " + quoted(url) + " must have no path, query or user name" + shape;
    return false;
  }
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  bool bracketed = false;
  if (rest.starts_with("[")) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      why = "server " + quoted(url) + ": missing ']' after the IPv6 address";
      return false;
    }
    bracketed = true;
    host = rest.substr(1, close - 1);
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty() && !after.starts_with(":")) {
      why = "server " + quoted(url) + ": unexpected text after ']'" + shape;
      return false;
    }
    has_port = !after.empty();
    if (has_port) port = after.substr(1);
    in6_addr a6{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1) {
      why = "server " + quoted(url) + ": " + quoted(host) + " is not an IPv6 address";
      return false;
    }
  } else {
    const size_t colon = rest.find(':');
    host = rest.substr(0, colon);
    has_port = colon != std::string_view::npos;
    if (has_port) port = rest.substr(colon + 1);
    if (!is_host_name(host)) {
      why = "server " + quoted(url) + ": " + quoted(host) + " is not a valid host name" + shape;
      return false;
    }
  }
  if (has_port) {
    const bool digits =
        !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string_view::npos;
    const unsigned long n = digits ? std::stoul(std::string(port)) : 0;
    if (n < 1 || n > 65535) {
      why = "server " + quoted(url) + ": port must be 1-65535";
      return false;
    }
  }
  if (!tls && !is_loopback(host, bracketed)) {
    why = "server " + quoted(url) +
          ": TLS is required; plain http:// is allowed only for a loopback server "
          "(127.0.0.1, [::1] or localhost): use https://";
    return false;
  }
  out = std::string(url.substr(0, url.size() - (url.ends_with("/") ? 1 : 0)));
  return true;
}

void get_abs_path(const toml::table& t, std::string_view key, Errors& errs, std::string& out) {
  std::string v;
  if (!detail::get_string(t, key, errs, v)) return;
  if (v.empty() || v[0] != '/') {
    errs.add(detail::where(t, key), "'" + std::string(key) + "' must be an absolute path, not " + quoted(v));
    return;
  }
  out = v;
}

// Colon-separated absolute directories. An empty element or "." would
// search the user's cwd for the program run as root.
void get_secure_path(const toml::table& t, Errors& errs, std::string& out) {
  std::string v;
  if (!detail::get_string(t, "secure_path", errs, v)) return;
  const auto at = detail::where(t, "secure_path");
  if (v.empty()) {
    errs.add(at, "'secure_path' must not be empty");
    return;
  }
  bool ok = true;
  size_t start = 0;
  while (start <= v.size()) {
    size_t end = v.find(':', start);
    if (end == std::string::npos) end = v.size();
    const std::string dir = v.substr(start, end - start);
    if (dir.empty()) {
      errs.add(
          at,
          "'secure_path' has an empty element (it would mean the current directory); remove the extra ':'");
      ok = false;
    } else if (dir[0] != '/') {
      errs.add(at, "'secure_path' element " + quoted(dir) + " is not an absolute directory");
      ok = false;
    }
    start = end + 1;
  }
  if (ok) out = v;
}

// [shell], read by hoop-shell. Paths must be absolute: hoop-shell runs as
// the logged-in user, whose cwd and PATH must not choose what runs.
void parse_shell(const toml::node& n, Errors& errs, ShellConfig& out) {
  const auto* t = n.as_table();
  if (!t) {
    errs.add(n.source(), std::string("'shell' must be a table ([shell]), not ") + detail::type_name(n));
    return;
  }
  detail::check_keys(*t, kShellKeys, " in [shell]", errs);
  get_abs_path(*t, "hoopctl", errs, out.hoopctl);
  get_abs_path(*t, "login_shell", errs, out.login_shell);
  detail::get_bool(*t, "allow_scp", errs, out.allow_scp);
  detail::get_bool(*t, "allow_sftp", errs, out.allow_sftp);
  detail::get_bool(*t, "allow_rsync", errs, out.allow_rsync);
  detail::get_bool(*t, "allow_agent_forwarding", errs, out.allow_agent_forwarding);
  const toml::node* dirs = t->get("cd_dirs");
  if (!dirs) return;
  const auto* arr = dirs->as_array();
  if (!arr) {
    errs.add(dirs->source(), std::string("'cd_dirs' must be an array of absolute directories, not ") +
                                 detail::type_name(*dirs));
    return;
  }
  for (const auto& e : *arr) {
    const auto* s = e.as_string();
    if (!s || s->get().empty() || s->get()[0] != '/' || !is_clean_text(s->get())) {
      errs.add(e.source(), "'cd_dirs' entries must be absolute directories such as \"/srv/app\"");
      continue;
    }
    out.cd_dirs.push_back(s->get());
  }
}

}  // namespace

Result<HostConfig> parse_host_config(std::string_view text, std::string_view source) {
  Errors errs(source);
  auto root = detail::parse_toml(text, source, errs);
  if (!root) return errs.error();
  const toml::table& t = *root;
  detail::check_keys(t, kKeys, "", errs);

  HostConfig cfg;
  cfg.source = std::string(source);
  std::string server;
  if (detail::get_string(t, "server", errs, server)) {
    std::string why;
    if (!parse_server_url(server, cfg.server, why)) errs.add(detail::where(t, "server"), why);
  } else if (!t.get("server")) {
    errs.add(1, 1, "missing required key 'server', e.g. server = \"https://hoop.example.org:8443\"");
  }
  get_abs_path(t, "ca", errs, cfg.ca);
  get_abs_path(t, "credential", errs, cfg.credential);
  get_abs_path(t, "spool_dir", errs, cfg.spool_dir);
  get_abs_path(t, "client_cert", errs, cfg.client_cert);
  get_abs_path(t, "client_key", errs, cfg.client_key);
  get_secure_path(t, errs, cfg.secure_path);

  std::string offline;
  if (detail::get_string(t, "offline", errs, offline)) {
    if (offline == "deny")
      cfg.offline = Offline::deny;
    else
      errs.add(detail::where(t, "offline"),
               "offline = " + quoted(offline) + " is not supported; allowed values: \"deny\"");
  }

  if (const toml::node* shell = t.get("shell")) parse_shell(*shell, errs, cfg.shell);

  const bool has_cert = t.get("client_cert") != nullptr;
  const bool has_key = t.get("client_key") != nullptr;
  if (has_cert != has_key) {
    errs.add(detail::where(t, has_cert ? "client_cert" : "client_key"),
             "client_cert and client_key go together: set both for mutual TLS, or neither");
  }
  if (!errs.empty()) return errs.error();
  return cfg;
}

}  // namespace hoop::config
