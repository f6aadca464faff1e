// The hoopd HTTP client: HTTP/1.1 over Boost.Beast, TLS through asio::ssl
// (OpenSSL). Synchronous to its callers: each step runs on a private
// io_context with a deadline on the stream. Beast stays in this file (it
// compiles slowly); client.h is a pimpl. Over 600 lines because the
// transport (Impl) and the typed calls share this one translation unit; the
// transport is the part to move out first.
// MUST: keep the token out of logs and messages, and wipe it, and the one
//       buffer that carries the Authorization header, when done with them.
// MUST: pin every transfer: only http(s), no redirects, no proxies, TLS 1.2+
//       verified against the CA and the server's name or IP, answers
//       size-capped, every step under a deadline.
// MUST NOT: replay a POST the server may have received.

#include "client/client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <string.h>  // explicit_bzero

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <exception>
#include <nlohmann/json.hpp>

#include "common/escape.h"

namespace hoop::client {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = asio::steady_timer::clock_type;
using TlsStream = ssl::stream<beast::tcp_stream>;

constexpr uint32_t kHeaderLimit = 16 * 1024;
constexpr size_t kBufferLimit = size_t{2} * kHeaderLimit;  // holds a whole header; body bytes pass through

bool token_chars_ok(std::string_view t) {
  for (char c : t) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
    if (!ok) return false;
  }
  return true;
}

// Plain http is for a hoopd on this machine only (as the host config
// allows); the same rule holds for a --server given by a reviewer.
bool is_loopback_url(std::string_view url) {
  std::string_view rest = url.substr(url.find("://") + 3);
  rest = rest.substr(0, rest.find('/'));
  std::string_view host;
  if (rest.starts_with("[")) {
    host = rest.substr(0, rest.find(']') + 1);
  } else {
    host = rest.substr(0, rest.find(':'));
  }
  if (host == "localhost" || host == "[::1]") return true;
  if (!host.starts_with("127.")) return false;
  return host.find_first_not_of("0123456789.") == std::string_view::npos;
}

/// The parts of a base URL the transport needs.
struct Origin {
  bool tls = false;
  std::string host;  // without IPv6 brackets: what we resolve and verify
  uint16_t port = 0;
  std::string authority;  // host[:port] as written: the Host header
  std::string base_path;  // "" or "/prefix", put in front of every target
  bool host_is_ip = false;
};

std::optional<Origin> parse_origin(std::string_view url) {
  Origin o;
  o.tls = url.starts_with("https://");
  std::string_view rest = url.substr(url.find("://") + 3);
  const size_t slash = rest.find('/');
  o.authority = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) o.base_path = std::string(rest.substr(slash));
  std::string_view a = o.authority, port;
  if (a.starts_with("[")) {
    const size_t close = a.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    o.host = std::string(a.substr(1, close - 1));
    a.remove_prefix(close + 1);
    if (!a.empty() && !a.starts_with(":")) return std::nullopt;
    if (!a.empty()) port = a.substr(1);
  } else {
    const size_t colon = a.find(':');
    o.host = std::string(a.substr(0, colon));
    if (colon != std::string_view::npos) port = a.substr(colon + 1);
  }
  if (o.host.empty()) return std::nullopt;
  if (port.empty()) {
    o.port = o.tls ? 443 : 80;
  } else {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos)
      return std::nullopt;
    const unsigned long n = std::stoul(std::string(port));
    if (n == 0 || n > 65535) return std::nullopt;
    o.port = static_cast<uint16_t>(n);
  }
  error_code ec;
  (void)asio::ip::make_address(o.host, ec);
  o.host_is_ip = !ec;
  return o;
}

// RFC 3986 percent-encoding of everything but the unreserved characters.
std::string url_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Errc errc_from_status(long status) {
  switch (status) {
    case 400:
      return Errc::invalid_argument;
    case 401:
      return Errc::unauthenticated;
    case 403:
      return Errc::permission_denied;
    case 404:
      return Errc::not_found;
    case 409:
      return Errc::conflict;
    case 413:
      return Errc::too_large;
    case 502:
    case 503:
    case 504:
      return Errc::unavailable;
    default:
      return Errc::internal;
  }
}

std::string short_text(std::string_view s, size_t max) {
  std::string e = escape_for_terminal(s.substr(0, max));
  if (s.size() > max) e += "...";
  return e;
}

// The peer went away: what a server closing an idle keep-alive connection
// looks like from our side.
bool is_connection_loss(const error_code& ec) {
  return ec == asio::error::eof || ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == ssl::error::stream_truncated;
}

std::string describe(const error_code& ec) {
  if (is_connection_loss(ec)) return "the server closed the connection";
  std::string m = ec.message();
  if (!m.empty()) m[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(m[0])));
  return m;
}

std::string ms_text(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<milliseconds>(d).count()) + " ms";
}

// Wipes a string's whole buffer when it goes out of scope.
struct WipeOnExit {
  std::string& s;
  ~WipeOnExit() { explicit_bzero(s.data(), s.capacity()); }
};

}  // namespace

std::optional<Errc> errc_from_name(std::string_view name) {
  for (Errc c : {Errc::invalid_argument, Errc::unauthenticated, Errc::permission_denied, Errc::not_found,
                 Errc::conflict, Errc::too_large, Errc::unavailable, Errc::timeout, Errc::io, Errc::internal})
    if (name == errc_name(c)) return c;
  return std::nullopt;
}

Error error_from_response(long status, std::string_view body) {
  auto j = api::parse_json_text(body, size_t{64} * 1024);
  if (j.ok() && j->is_object()) {
    auto e = j->find("error");
    if (e != j->end() && e->is_object()) {
      std::string code, message;
      if (auto c = e->find("code"); c != e->end() && c->is_string()) code = c->get<std::string>();
      if (auto m = e->find("message"); m != e->end() && m->is_string()) message = m->get<std::string>();
      const Errc errc = errc_from_name(code).value_or(errc_from_status(status));
      if (message.empty()) message = "server answered HTTP " + std::to_string(status);
      return make_error(errc, short_text(message, 1024));
    }
  }
  return make_error(errc_from_status(status), "server answered HTTP " + std::to_string(status) +
                                                  " without a hoop error (is this a hoopd?)");
}

std::string token_label(std::string_view token) {
  if (token.size() >= 21 && token.substr(0, 5) == "hoop_" && token[21] == '_')
    return std::string(token.substr(0, 21));
  return "(malformed token)";
}

struct Client::Impl {
  ClientOptions opts;
  Origin origin;
  std::string where;  // the server URL, escaped for messages
  asio::io_context ioc{1};
  std::optional<ssl::context> tls_ctx;  // built on first use, kept for reconnects
  // One connection at a time: `plain` for http, `tls` for https.
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<TlsStream> tls;
  beast::flat_buffer buffer{kBufferLimit};

  ~Impl() {
    drop();
    explicit_bzero(opts.token.data(), opts.token.size());
  }

  bool connected() const { return plain || tls; }
  beast::tcp_stream& tcp() { return tls ? tls->next_layer() : *plain; }

  void drop() {
    if (connected()) {
      error_code ignored;
      tcp().socket().close(ignored);  // the server treats a vanished client as gone
    }
    plain.reset();
    tls.reset();
    buffer.clear();
  }

  // Runs one asynchronous step to completion; the deadline set on the
  // stream bounds it (Beast closes the socket and reports a timeout).
  template <class Start>
  error_code run(Start&& start) {
    error_code out = asio::error::would_block;
    start([&out](error_code ec, auto&&...) { out = ec; });
    ioc.restart();
    ioc.run();
    return out;
  }

  // A kept-alive connection the server has closed (idle timeout, restart)
  // reads as EOF: find out before sending, so nothing needs replaying.
  bool went_stale() {
    pollfd p{tcp().socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }

  Error unavailable(const std::string& what) const { return make_error(Errc::unavailable, what); }
  Error tls_failure(const std::string& detail) const {
    return unavailable("TLS with " + where + " failed: " + escape_for_terminal(detail) +
                       " (check the CA bundle and the server name)");
  }

  Status make_tls_context();
  Status connect(Clock::time_point deadline);
  /// One answer: status, body, and the session headers of a transcript read.
  struct Answer {
    unsigned status = 0;
    std::string body;
    std::string session_state;   // Hoop-Session-State
    std::string session_length;  // Hoop-Session-Length
  };
  Result<Answer> exchange(std::string_view method, const std::string& wire, Clock::time_point deadline,
                          milliseconds timeout);
  /// Sends one request (`content_type` empty: no body) and returns the
  /// answer, whatever its status.
  Result<Answer> send(const char* method, const std::string& path, std::string_view content_type,
                      std::string_view payload, milliseconds timeout);
  Result<json> call(const char* method, const std::string& path, const json* body, milliseconds timeout);
};

Status Client::Impl::make_tls_context() {
  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX* native = ctx.native_handle();
  // Set here, not left to openssl.cnf: the setuid caller may skip loading
  // that file (OPENSSL_INIT_NO_LOAD_CONFIG), and nothing may get weaker.
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1)
    return tls_failure("cannot require TLS 1.2 or later");
  SSL_CTX_set_security_level(native, 2);  // >= 112-bit keys, no SHA-1 signatures
  // TLS 1.2: forward-secret AEAD suites only, as hoopd offers (1.3 suites are all fine).
  if (SSL_CTX_set_cipher_list(native, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20") != 1)
    return tls_failure("cannot set the TLS 1.2 cipher suites");
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  error_code ec;
  ctx.set_verify_mode(ssl::verify_peer, ec);
  if (ec) return tls_failure(ec.message());
  if (opts.ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
  } else {
    ctx.load_verify_file(opts.ca_file, ec);
  }
  if (ec) return tls_failure("cannot load the CA bundle '" + opts.ca_file + "': " + describe(ec));
  if (!opts.client_cert.empty()) {
    // As with curl, a PEM file may hold both the certificate and its key.
    const std::string& key = opts.client_key.empty() ? opts.client_cert : opts.client_key;
    ctx.use_certificate_chain_file(opts.client_cert, ec);
    if (ec)
      return tls_failure("cannot load the client certificate '" + opts.client_cert + "': " + describe(ec));
    ctx.use_private_key_file(key, ssl::context::pem, ec);
    if (ec) return tls_failure("cannot load the client key '" + key + "': " + describe(ec));
  }
  tls_ctx.emplace(std::move(ctx));
  return {};
}

Status Client::Impl::connect(Clock::time_point deadline) {
  drop();
  // The connect timeout covers the TCP and the TLS handshakes, as curl's did.
  const auto start = Clock::now();
  const auto by = std::min(deadline, start + opts.connect_timeout);

  std::vector<tcp::endpoint> endpoints;
  error_code ec;
  if (origin.host_is_ip) {
    endpoints.emplace_back(asio::ip::make_address(origin.host, ec), origin.port);
  } else {
    // getaddrinfo blocks without our deadline (the resolver's own timeouts
    // apply); the async resolver would need a thread, and one we cannot
    // abandon at exit.
    tcp::resolver resolver(ioc);
    auto found =
        resolver.resolve(origin.host, std::to_string(origin.port), tcp::resolver::numeric_service, ec);
    if (ec)
      return unavailable("cannot reach " + where + ": cannot resolve the host name (" + describe(ec) + ")");
    for (const auto& e : found) endpoints.push_back(e.endpoint());
  }

  if (origin.tls) {
    if (!tls_ctx)
      if (auto st = make_tls_context(); !st) return st;
    tls = std::make_unique<TlsStream>(ioc, *tls_ctx);
  } else {
    plain = std::make_unique<beast::tcp_stream>(ioc);
  }
  tcp().expires_at(by);
  ec = run([&](auto done) { tcp().async_connect(endpoints, done); });
  if (ec == beast::error::timeout) {
    drop();
    return unavailable("no answer from " + where + " in time: could not connect within " +
                       ms_text(by - start));
  }
  if (ec) {
    drop();
    return unavailable("cannot reach " + where + ": " + describe(ec));
  }
  error_code ignored;
  tcp().socket().set_option(tcp::no_delay(true), ignored);
  tcp().socket().set_option(asio::socket_base::keep_alive(true), ignored);
  if (!tls) return {};

  SSL* ssl_handle = tls->native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
  if (origin.host_is_ip) {
    // An IP literal is checked against the certificate's IP SANs; no SNI.
    if (X509_VERIFY_PARAM_set1_ip_asc(param, origin.host.c_str()) != 1) {
      drop();
      return tls_failure("cannot set up verification of the IP address");
    }
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, origin.host.c_str(), origin.host.size()) != 1 ||
        SSL_set_tlsext_host_name(ssl_handle, origin.host.c_str()) != 1) {
      drop();
      return tls_failure("cannot set up verification of the host name");
    }
  }
  ec = run([&](auto done) { tls->async_handshake(ssl::stream_base::client, done); });
  if (ec == beast::error::timeout) {
    drop();
    return unavailable("no answer from " + where + " in time: the TLS handshake did not finish within " +
                       ms_text(by - start));
  }
  if (ec) {
    // Name the certificate problem ("hostname mismatch") rather than
    // OpenSSL's generic "certificate verify failed".
    const long verdict = SSL_get_verify_result(ssl_handle);
    std::string detail = verdict != X509_V_OK
                             ? std::string("certificate: ") + X509_verify_cert_error_string(verdict)
                             : describe(ec);
    drop();
    return tls_failure(detail);
  }
  return {};
}

// Sends `wire` and reads one answer, on the kept-alive connection when
// there is one. Gives back the status and the body.
Result<Client::Impl::Answer> Client::Impl::exchange(std::string_view method, const std::string& wire,
                                                    Clock::time_point deadline, milliseconds timeout) {
  for (int attempt = 0;; ++attempt) {
    if (connected() && went_stale()) drop();
    const bool reused = connected();
    if (!reused)
      if (auto st = connect(deadline); !st) return st.error();

    tcp().expires_at(deadline);
    const auto send = [&](auto& stream) {
      return run([&](auto done) { asio::async_write(stream, asio::buffer(wire), done); });
    };
    error_code ec = tls ? send(*tls) : send(*plain);
    bool sent = !ec;
    http::response_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(opts.max_response_bytes);
    if (sent) {
      // Header first: Beast 1.74 loses the Content-Length vs body_limit
      // error when it reads header and body in one go (eager parsing).
      const auto receive = [&](auto& stream) {
        error_code e = run([&](auto done) { http::async_read_header(stream, buffer, parser, done); });
        if (!e && !parser.is_done())
          e = run([&](auto done) { http::async_read(stream, buffer, parser, done); });
        return e;
      };
      ec = tls ? receive(*tls) : receive(*plain);
    }
    if (!ec) {
      tcp().expires_never();
      auto& res = parser.get();
      if (!res.keep_alive()) drop();
      Answer a{res.result_int(), std::move(res.body()), {}, {}};
      if (auto it = res.find("Hoop-Session-State"); it != res.end()) a.session_state = std::string(it->value());
      if (auto it = res.find("Hoop-Session-Length"); it != res.end()) a.session_length = std::string(it->value());
      return a;
    }
    drop();
    if (ec == beast::error::timeout)
      return unavailable("no answer from " + where + " in time: none within " + ms_text(timeout));
    if (ec == http::error::body_limit || ec == http::error::header_limit ||
        ec == http::error::buffer_overflow)
      return make_error(Errc::too_large, "answer from " + where + " is larger than " +
                                             std::to_string(opts.max_response_bytes) + " bytes");
    // Once, on a reused connection the server closed under us: resend when
    // it cannot have acted on the request (the send failed), or when the
    // request is a GET or a transcript PUT (idempotent at its offset) and
    // not a byte of the answer came back.
    const bool idempotent = method == "GET" || method == "PUT";
    const bool replay = attempt == 0 && reused && is_connection_loss(ec) &&
                        (!sent || (idempotent && !parser.got_some()));
    if (replay) continue;
    return unavailable("cannot reach " + where + ": " + describe(ec));
  }
}

Result<Client::Impl::Answer> Client::Impl::send(const char* method, const std::string& path,
                                                std::string_view content_type, std::string_view payload,
                                                milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string target = origin.base_path + path;

  // The whole request in one buffer: one write (one TLS record), and the
  // only copy of the Authorization header, wiped below.
  std::string wire;
  WipeOnExit wipe{wire};
  wire.reserve(256 + target.size() + origin.authority.size() + opts.user_agent.size() + opts.token.size() +
               payload.size());
  wire.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  wire.append("Host: ").append(origin.authority).append("\r\n");
  wire.append("User-Agent: ").append(opts.user_agent).append("\r\n");
  wire.append("Accept: application/json\r\n");
  if (!opts.token.empty()) wire.append("Authorization: Bearer ").append(opts.token).append("\r\n");
  if (!content_type.empty()) {
    wire.append("Content-Type: ").append(content_type).append("\r\n");
    wire.append("Content-Length: ").append(std::to_string(payload.size())).append("\r\n");
  }
  wire.append("\r\n").append(payload);

  try {
    return exchange(method, wire, deadline, timeout);
  } catch (const std::exception& e) {
    // Asio and OpenSSL throw only when out of resources; fail closed.
    drop();
    return make_error(Errc::internal, "talking to " + where + " failed: " + escape_for_terminal(e.what()));
  }
}

Result<json> Client::Impl::call(const char* method, const std::string& path, const json* body,
                                milliseconds timeout) {
  const std::string payload = body != nullptr ? body->dump() : std::string();
  auto answer = send(method, path, body != nullptr ? "application/json" : "", payload, timeout);
  if (!answer) return answer.error();
  if (answer->status < 200 || answer->status > 299) return error_from_response(answer->status, answer->body);
  auto j = api::parse_json_text(answer->body, opts.max_response_bytes);
  if (!j) return make_error(Errc::unavailable, "answer from " + where + " is not JSON (is this a hoopd?)");
  return j;
}

Result<Client> Client::create(ClientOptions opts) {
  while (!opts.server.empty() && opts.server.back() == '/') opts.server.pop_back();
  const std::string_view s = opts.server;
  std::optional<Origin> origin;
  if ((s.starts_with("https://") || s.starts_with("http://")) && is_clean_text(s) &&
      s.find_first_of(" ?#@") == std::string_view::npos)
    origin = parse_origin(s);
  if (!origin)
    return make_error(Errc::invalid_argument,
                      "server URL '" + escape_for_terminal(s) +
                          "' must look like https://host:port (no user, query or spaces)");
  if (s.starts_with("http://") && !is_loopback_url(s))
    return make_error(Errc::invalid_argument,
                      "refusing plain http to " + escape_for_terminal(s) +
                          ": the token would cross the network unencrypted; use https://");
  if (!token_chars_ok(opts.token))
    return make_error(Errc::invalid_argument, "the token contains characters that cannot be sent");
  if (!is_clean_text(opts.user_agent))
    return make_error(Errc::invalid_argument, "the user agent contains characters that cannot be sent");

  try {
    auto impl = std::make_unique<Impl>();
    impl->origin = std::move(*origin);
    impl->where = escape_for_terminal(opts.server);
    impl->opts = std::move(opts);
    return Client(std::move(impl));
  } catch (const std::exception& e) {
    return make_error(Errc::internal, std::string("cannot set up the HTTP client: ") + e.what());
  }
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

const std::string& Client::server() const {
  return impl_->opts.server;
}

namespace {

// Typed answers: the raw JSON goes to `raw` when asked, the parsed value back.
Result<api::Request> as_request(Result<json> j, json* raw) {
  if (!j) return j.error();
  if (raw != nullptr) *raw = *j;
  return api::parse_request(*j);
}

std::string id_path(int64_t id, const char* verb = nullptr) {
  std::string p = "/v1/requests/" + std::to_string(id);
  if (verb != nullptr) p += std::string("/") + verb;
  return p;
}

}  // namespace

Result<Identity> Client::whoami(json* raw) {
  auto j = impl_->call("GET", "/v1/whoami", nullptr, impl_->opts.request_timeout);
  if (!j) return j.error();
  if (raw != nullptr) *raw = *j;
  try {
    return Identity{j->at("kind").get<std::string>(), j->at("name").get<std::string>(),
                    j->value("token", std::string())};
  } catch (const json::exception&) {
    return make_error(Errc::unavailable,
                      "malformed answer to /v1/whoami from " + escape_for_terminal(server()));
  }
}

Result<api::Request> Client::create_request(const api::NewRequest& req, json* raw) {
  const json body = api::to_json(req);
  return as_request(impl_->call("POST", "/v1/requests", &body, impl_->opts.request_timeout), raw);
}

Result<api::Request> Client::get_request(int64_t id, std::optional<milliseconds> wait, api::State while_state,
                                         json* raw) {
  std::string path = id_path(id);
  milliseconds timeout = impl_->opts.request_timeout;
  if (wait) {
    path += "?wait=" + std::to_string(wait->count()) + "ms&state=" + api::state_name(while_state);
    // The server holds the answer up to `wait`; give up a little later.
    timeout = *wait + impl_->opts.wait_slack;
  }
  return as_request(impl_->call("GET", path, nullptr, timeout), raw);
}

Result<std::vector<api::Request>> Client::list_requests(const ListFilter& f, json* raw) {
  std::string q;
  auto param = [&](const char* key, const std::string& value) {
    q += (q.empty() ? "?" : "&") + std::string(key) + "=" + url_escape(value);
  };
  if (f.state) param("state", api::state_name(*f.state));
  if (!f.user.empty()) param("user", f.user);
  if (!f.host.empty()) param("host", f.host);
  if (f.before > 0) param("before", std::to_string(f.before));
  if (f.limit > 0) param("limit", std::to_string(f.limit));
  auto j = impl_->call("GET", "/v1/requests" + q, nullptr, impl_->opts.request_timeout);
  if (!j) return j.error();
  if (raw != nullptr) *raw = *j;
  auto arr = j->find("requests");
  if (!j->is_object() || arr == j->end() || !arr->is_array())
    return make_error(Errc::unavailable, "malformed request list from " + escape_for_terminal(server()));
  std::vector<api::Request> out;
  out.reserve(arr->size());
  for (const auto& e : *arr) {
    auto r = api::parse_request(e);
    if (!r) return r.error();
    out.push_back(std::move(*r));
  }
  return out;
}

Result<api::Request> Client::approve(int64_t id, const std::string& comment, json* raw) {
  const json body = {{"comment", comment}};
  return as_request(impl_->call("POST", id_path(id, "approve"), &body, impl_->opts.request_timeout), raw);
}

Result<api::Request> Client::deny(int64_t id, const std::string& comment, json* raw) {
  const json body = {{"comment", comment}};
  return as_request(impl_->call("POST", id_path(id, "deny"), &body, impl_->opts.request_timeout), raw);
}

Result<api::Request> Client::cancel(int64_t id, const std::string& user, json* raw) {
  json body = json::object();
  if (!user.empty()) body["user"] = user;
  return as_request(impl_->call("POST", id_path(id, "cancel"), &body, impl_->opts.request_timeout), raw);
}

Result<api::Request> Client::record_use(int64_t id, json* raw) {
  const json body = json::object();
  return as_request(impl_->call("POST", id_path(id, "use"), &body, impl_->opts.request_timeout), raw);
}

Result<std::vector<AuditRow>> Client::read_audit(int64_t after, int limit, json* raw) {
  std::string path = "/v1/audit?after=" + std::to_string(after);
  if (limit > 0) path += "&limit=" + std::to_string(limit);
  auto j = impl_->call("GET", path, nullptr, impl_->opts.request_timeout);
  if (!j) return j.error();
  if (raw != nullptr) *raw = *j;
  std::vector<AuditRow> out;
  try {
    for (const auto& e : j->at("rows")) {
      AuditRow r;
      r.seq = e.at("seq").get<int64_t>();
      r.at_ms = e.value("at", int64_t{0});
      r.actor = e.value("actor", std::string());
      r.action = e.value("action", std::string());
      r.request_id = e.value("request_id", int64_t{0});
      const auto d = e.find("detail");
      if (d != e.end()) r.detail = d->is_string() ? d->get<std::string>() : d->dump();
      r.prev_hash = e.value("prev_hash", std::string());
      r.hash = e.value("hash", std::string());
      out.push_back(std::move(r));
    }
  } catch (const json::exception&) {
    return make_error(Errc::unavailable, "malformed audit rows from " + escape_for_terminal(server()));
  }
  return out;
}

Result<api::Session> Client::get_session(int64_t id, json* raw) {
  auto j = impl_->call("GET", "/v1/sessions/" + std::to_string(id), nullptr, impl_->opts.request_timeout);
  if (!j) return j.error();
  if (raw != nullptr) *raw = *j;
  return api::parse_session(*j);
}

Result<uint64_t> Client::append_transcript(int64_t id, uint64_t offset, std::string_view bytes) {
  const std::string path = "/v1/sessions/" + std::to_string(id) + "/transcript?offset=" + std::to_string(offset);
  auto a = impl_->send("PUT", path, "application/octet-stream", bytes, impl_->opts.request_timeout);
  if (!a) return a.error();
  if (a->status < 200 || a->status > 299) return error_from_response(a->status, a->body);
  auto j = api::parse_json_text(a->body, size_t{64} * 1024);
  if (!j || !j->is_object() || !j->contains("length") || !(*j)["length"].is_number_unsigned())
    return make_error(Errc::unavailable, "malformed answer to a transcript write from " + escape_for_terminal(server()));
  return (*j)["length"].get<uint64_t>();
}

Result<api::Session> Client::complete_session(int64_t id, uint64_t length, const std::string& sha256_hex,
                                              std::optional<int> exit_status) {
  const json body = {{"length", length},
                     {"sha256", sha256_hex},
                     {"exit_status", exit_status ? json(*exit_status) : json(nullptr)}};
  auto j = impl_->call("POST", "/v1/sessions/" + std::to_string(id) + "/complete", &body,
                       impl_->opts.request_timeout);
  if (!j) return j.error();
  return api::parse_session(*j);
}

Result<std::vector<api::Session>> Client::list_sessions(const SessionFilter& f, json* raw) {
  std::string q;
  auto param = [&](const char* key, const std::string& value) {
    q += (q.empty() ? "?" : "&") + std::string(key) + "=" + url_escape(value);
  };
  if (f.state) param("state", api::session_state_name(*f.state));
  if (!f.user.empty()) param("user", f.user);
  if (!f.host.empty()) param("host", f.host);
  if (f.before > 0) param("before", std::to_string(f.before));
  if (f.limit > 0) param("limit", std::to_string(f.limit));
  auto j = impl_->call("GET", "/v1/sessions" + q, nullptr, impl_->opts.request_timeout);
  if (!j) return j.error();
  if (raw != nullptr) *raw = *j;
  auto arr = j->find("sessions");
  if (!j->is_object() || arr == j->end() || !arr->is_array())
    return make_error(Errc::unavailable, "malformed session list from " + escape_for_terminal(server()));
  std::vector<api::Session> out;
  out.reserve(arr->size());
  for (const auto& e : *arr) {
    auto s = api::parse_session(e);
    if (!s) return s.error();
    out.push_back(std::move(*s));
  }
  return out;
}

Result<TranscriptChunk> Client::read_transcript(int64_t id, uint64_t offset, std::optional<milliseconds> wait) {
  std::string path = "/v1/sessions/" + std::to_string(id) + "/transcript?offset=" + std::to_string(offset);
  milliseconds timeout = impl_->opts.request_timeout;
  if (wait) {
    path += "&wait=" + std::to_string(wait->count()) + "ms";
    timeout = *wait + impl_->opts.wait_slack;
  }
  auto a = impl_->send("GET", path, "", "", timeout);
  if (!a) return a.error();
  if (a->status < 200 || a->status > 299) return error_from_response(a->status, a->body);
  TranscriptChunk c;
  const std::string& len = a->session_length;
  if ((a->session_state != "open" && a->session_state != "complete") || len.empty() || len.size() > 19 ||
      len.find_first_not_of("0123456789") != std::string::npos)
    return make_error(Errc::unavailable,
                      "answer from " + escape_for_terminal(server()) + " lacks the Hoop-Session-* headers");
  c.length = std::stoull(len);
  c.complete = a->session_state == "complete";
  c.bytes = std::move(a->body);
  if (c.bytes.size() > c.length - std::min(c.length, offset) || offset > c.length)
    return make_error(Errc::unavailable, "answer from " + escape_for_terminal(server()) +
                                             " holds more transcript bytes than the session has");
  return c;
}

}  // namespace hoop::client
