// hoopd's config: parsed once at start, every problem reported with its
// position. Plain HTTP only when the file asks for it by name.

#include "config/server_config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "config/toml_util.h"

namespace hoop::config {
namespace {

using detail::Errors;
using detail::quoted;

constexpr std::string_view kKeys[] = {"listen",        "data_dir",        "policy",
                                      "insecure_http", "request_ttl",     "max_wait",
                                      "read_timeout",  "max_connections", "tls"};
constexpr std::string_view kTlsKeys[] = {"cert", "key", "client_ca"};
constexpr int64_t kMaxConnections = 1'000'000;

// "127.0.0.1:8443", "[::1]:8443" or "localhost:8443". Port 0 asks the kernel
// for a free port (tests, the demo); hoopd logs the one it got.
bool parse_listen(std::string_view s, std::string& addr, uint16_t& port, std::string& why) {
  const std::string hint = "; write ADDRESS:PORT, e.g. \"127.0.0.1:8443\" or \"[::1]:8443\"";
  std::string_view host;
  std::string_view port_text;
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      why = "bad listen address " + quoted(s) + hint;
      return false;
    }
    host = s.substr(1, close - 1);
    port_text = s.substr(close + 2);
    in6_addr a6{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1) {
      why = "bad IPv6 address " + quoted(host) + " in listen" + hint;
      return false;
    }
    addr = std::string(host);
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      why = "listen " + quoted(s) + " has no port" + hint;
      return false;
    }
    host = s.substr(0, colon);
    port_text = s.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      why = "IPv6 addresses in listen need brackets, e.g. \"[::1]:8443\"";
      return false;
    }
    in_addr a4{};
    if (host == "localhost") {
      addr = "127.0.0.1";  // an address, not a name: nothing to resolve at start
    } else if (inet_pton(AF_INET, std::string(host).c_str(), &a4) == 1) {
      addr = std::string(host);
    } else {
      why = "listen address " + quoted(host) + " must be an IP address or localhost" + hint;
      return false;
    }
  }
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string_view::npos) {
    why = "bad port " + quoted(port_text) + " in listen" + hint;
    return false;
  }
  const unsigned long v = std::stoul(std::string(port_text));
  if (v > 65535) {
    why = "port " + std::string(port_text) + " is out of range (1-65535, or 0 for any free port)";
    return false;
  }
  port = static_cast<uint16_t>(v);
  return true;
}

// Relative paths are relative to the config file, not to hoopd's cwd.
std::string resolve(std::string_view source, const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  const std::filesystem::path dir = std::filesystem::path(source).parent_path();
  return (dir / p).lexically_normal().string();
}

// A required or optional path key; empty strings are refused.
void get_path(const toml::table& t, std::string_view key, std::string_view source, Errors& errs,
              std::string& out) {
  std::string v;
  if (!detail::get_string(t, key, errs, v)) return;
  if (v.empty()) {
    errs.add(detail::where(t, key), "'" + std::string(key) + "' must not be empty");
    return;
  }
  out = resolve(source, v);
}

void parse_tls(const toml::node& n, std::string_view source, Errors& errs, ServerConfig& cfg) {
  const auto* t = n.as_table();
  if (!t) {
    errs.add(n.source(),
             std::string("'tls' must be a table ([tls] with cert and key), not ") + detail::type_name(n));
    return;
  }
  detail::check_keys(*t, kTlsKeys, " in [tls]", errs);
  TlsConfig tls;
  get_path(*t, "cert", source, errs, tls.cert);
  get_path(*t, "key", source, errs, tls.key);
  get_path(*t, "client_ca", source, errs, tls.client_ca);
  if (!t->get("cert"))
    errs.add(t->source(), "[tls] needs cert = \"FILE\" (the server's PEM certificate chain)");
  if (!t->get("key")) errs.add(t->source(), "[tls] needs key = \"FILE\" (the server's PEM private key)");
  cfg.tls = std::move(tls);
}

}  // namespace

Result<ServerConfig> parse_server_config(std::string_view text, std::string_view source) {
  Errors errs(source);
  auto root = detail::parse_toml(text, source, errs);
  if (!root) return errs.error();
  const toml::table& t = *root;
  detail::check_keys(t, kKeys, "", errs);

  ServerConfig cfg;
  cfg.source = std::string(source);
  std::string listen;
  if (detail::get_string(t, "listen", errs, listen)) {
    std::string why;
    if (!parse_listen(listen, cfg.listen_address, cfg.listen_port, why))
      errs.add(detail::where(t, "listen"), why);
  }
  get_path(t, "data_dir", source, errs, cfg.data_dir);
  if (!t.get("data_dir"))
    errs.add(1, 1, "missing required key 'data_dir' (where hoop.db and transcripts live)");
  get_path(t, "policy", source, errs, cfg.policy_path);
  if (!t.get("policy")) errs.add(1, 1, "missing required key 'policy' (path of the policy file)");

  detail::get_bool(t, "insecure_http", errs, cfg.insecure_http);
  detail::get_duration(t, "request_ttl", errs, cfg.request_ttl);
  detail::get_duration(t, "max_wait", errs, cfg.max_wait);
  detail::get_duration(t, "read_timeout", errs, cfg.read_timeout);
  if (const auto* n = t.get("max_connections")) {
    const auto* i = n->as_integer();
    if (!i) {
      errs.add(n->source(),
               std::string("'max_connections' must be an integer, not ") + detail::type_name(*n));
    } else if (i->get() < 1 || i->get() > kMaxConnections) {
      errs.add(n->source(), "'max_connections' must be between 1 and " + std::to_string(kMaxConnections));
    } else {
      cfg.max_connections = static_cast<uint32_t>(i->get());
    }
  }
  if (const auto* n = t.get("tls")) parse_tls(*n, source, errs, cfg);

  // Bearer tokens travel in every request: plain HTTP only on explicit request.
  if (cfg.tls && cfg.insecure_http) {
    errs.add(detail::where(t, "insecure_http"),
             "both [tls] and insecure_http = true are set; remove insecure_http to serve HTTPS, "
             "or remove [tls] to serve plain HTTP");
  } else if (!t.get("tls") && !cfg.insecure_http) {
    errs.add(1, 1,
             "no TLS configured: add a [tls] table with cert = \"FILE\" and key = \"FILE\", "
             "or set insecure_http = true to serve plain HTTP on purpose (tokens then travel unencrypted)");
  }
  if (!errs.empty()) return errs.error();
  return cfg;
}

Result<ServerConfig> load_server_config(const std::string& path) {
  // hoopd is not setuid, so a plain read is enough; O_NONBLOCK keeps a FIFO
  // from hanging the start.
  auto fail = [&](Errc code, const std::string& why) {
    return make_error(code, "cannot read " + escape_for_terminal(path) + ": " + why);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return fail(errno == ENOENT ? Errc::not_found : Errc::io, std::strerror(errno));
  std::string text;
  struct stat st {};
  Errc code = Errc::io;
  std::string why;
  if (::fstat(fd, &st) != 0) {
    why = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    why = "not a regular file";
  } else {
    text.resize(detail::kMaxConfigBytes + 1);
    size_t got = 0;
    while (got < text.size()) {
      const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        why = std::strerror(errno);
        break;
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    text.resize(got);
    if (why.empty() && got > detail::kMaxConfigBytes) {
      code = Errc::too_large;
      why = "larger than " + std::to_string(detail::kMaxConfigBytes) + " bytes";
    }
  }
  ::close(fd);
  if (!why.empty()) return fail(code, why);

  auto cfg = parse_server_config(text, path);
  if (!cfg) return cfg;
  // Pin relative results to today's cwd, so a later chdir cannot move them.
  auto pin = [](std::string& p) {
    if (p.empty() || p[0] == '/') return;
    std::error_code ec;
    const auto abs = std::filesystem::absolute(p, ec);
    if (!ec) p = abs.lexically_normal().string();
  };
  pin(cfg->data_dir);
  pin(cfg->policy_path);
  if (cfg->tls) {
    pin(cfg->tls->cert);
    pin(cfg->tls->key);
    pin(cfg->tls->client_ca);
  }
  return cfg;
}

}  // namespace hoop::config
