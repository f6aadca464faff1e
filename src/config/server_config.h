#pragma once
// hoopd's configuration (TOML), validated once at start and immutable after.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace hoop::config {

struct TlsConfig {
  std::string cert;       // PEM certificate chain
  std::string key;        // PEM private key
  std::string client_ca;  // optional: when set, clients MUST present a cert signed by it
};

struct ServerConfig {
  std::string source;               // path the config was read from
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 8443;
  std::string data_dir;             // hoop.db and transcripts/ live here
  std::string policy_path;          // relative paths resolve against the config's folder
  std::optional<TlsConfig> tls;
  bool insecure_http = false;       // plain HTTP: only when the config says so explicitly
  std::chrono::milliseconds request_ttl{30 * 60 * 1000};  // pending requests expire
  std::chrono::milliseconds max_wait{60 * 1000};           // longest long-poll
  std::chrono::milliseconds read_timeout{10 * 1000};       // slow or half-open clients
  uint32_t max_connections = 20000;

  std::string db_path() const { return data_dir + "/hoop.db"; }
};

/// Parses `text` (read from `source`); every error is "source:line:col: message".
Result<ServerConfig> parse_server_config(std::string_view text, std::string_view source);
/// Reads and parses the file.
Result<ServerConfig> load_server_config(const std::string& path);

}  // namespace hoop::config
