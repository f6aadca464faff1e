// The hoopd HTTP client over libcurl.
// MUST: keep the token out of logs and messages (no CURLOPT_VERBOSE, no URL
//       credentials), and wipe it from memory when the client goes away.
// MUST: pin every transfer: only http(s), no redirects, no proxies (not even
//       from http_proxy/HTTPS_PROXY), TLS verified, answers size-capped.
// MUST NOT: let libcurl read SSLKEYLOGFILE while the process is privileged.

#include "client/client.h"

#include <curl/curl.h>
#include <stdlib.h>  // unsetenv
#include <string.h>  // explicit_bzero

#include <mutex>
#include <nlohmann/json.hpp>

#include "common/escape.h"
#include "sys/privilege.h"

namespace hoop::client {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

// Once per process. libcurl's OpenSSL backend opens $SSLKEYLOGFILE for
// appending at global init: as root that would be a file write chosen by the
// caller, so the variable goes first whenever we still hold privilege.
Status global_init() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] {
    if (sys::is_elevated()) ::unsetenv("SSLKEYLOGFILE");
    rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  });
  if (rc != CURLE_OK)
    return make_error(Errc::internal, std::string("libcurl init failed: ") + curl_easy_strerror(rc));
  return {};
}

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
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  std::string answer;
  bool overflow = false;
  char errbuf[CURL_ERROR_SIZE] = {};

  ~Impl() {
    // The Authorization header and the options hold the secret: wipe both.
    for (curl_slist* h = headers; h != nullptr; h = h->next)
      if (h->data != nullptr) explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(headers);
    if (curl != nullptr) curl_easy_cleanup(curl);
    explicit_bzero(opts.token.data(), opts.token.size());
  }

  static size_t on_data(char* ptr, size_t size, size_t nmemb, void* self_ptr) {
    auto* self = static_cast<Impl*>(self_ptr);
    const size_t n = size * nmemb;
    if (self->answer.size() + n > self->opts.max_response_bytes) {
      self->overflow = true;
      return 0;  // makes libcurl abort with CURLE_WRITE_ERROR
    }
    self->answer.append(ptr, n);
    return n;
  }

  Result<json> call(const char* method, const std::string& path, const json* body, milliseconds timeout);
};

Result<json> Client::Impl::call(const char* method, const std::string& path, const json* body,
                                milliseconds timeout) {
  const std::string url = opts.server + path;
  const std::string payload = body != nullptr ? body->dump() : std::string();
  answer.clear();
  overflow = false;
  errbuf[0] = '\0';

  // Reset drops every option of the previous call but keeps the live
  // connection, so each call states its whole configuration here.
  curl_easy_reset(curl);
  CURLcode bad = CURLE_OK;
  auto set = [&](CURLoption o, auto v) {
    const CURLcode rc = curl_easy_setopt(curl, o, v);
    if (rc != CURLE_OK && bad == CURLE_OK) bad = rc;
  };
  set(CURLOPT_ERRORBUFFER, errbuf);
  set(CURLOPT_URL, url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "https,http");
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_PROXY, "");  // "" = no proxy, and ignore *_proxy variables
  set(CURLOPT_NOPROXY, "*");
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts.connect_timeout.count()));
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (!opts.ca_file.empty()) set(CURLOPT_CAINFO, opts.ca_file.c_str());
  if (!opts.client_cert.empty()) set(CURLOPT_SSLCERT, opts.client_cert.c_str());
  if (!opts.client_key.empty()) set(CURLOPT_SSLKEY, opts.client_key.c_str());
  set(CURLOPT_HTTPHEADER, headers);
  set(CURLOPT_USERAGENT, opts.user_agent.c_str());
  set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(opts.max_response_bytes));
  set(CURLOPT_WRITEFUNCTION, &Impl::on_data);
  set(CURLOPT_WRITEDATA, this);
  if (std::string_view(method) == "POST") {
    set(CURLOPT_POST, 1L);
    set(CURLOPT_POSTFIELDS, payload.c_str());
    set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  } else {
    set(CURLOPT_HTTPGET, 1L);
  }
  // Fail closed: a pinning option libcurl did not accept is not a warning.
  if (bad != CURLE_OK)
    return make_error(Errc::internal, std::string("libcurl refused an option: ") + curl_easy_strerror(bad));

  const CURLcode rc = curl_easy_perform(curl);
  const std::string where = escape_for_terminal(opts.server);
  if (overflow || rc == CURLE_FILESIZE_EXCEEDED)
    return make_error(Errc::too_large, "answer from " + where + " is larger than " +
                                           std::to_string(opts.max_response_bytes) + " bytes");
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
    detail = escape_for_terminal(detail);
    switch (rc) {
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_SSL_CERTPROBLEM:
        return make_error(Errc::unavailable, "TLS with " + where + " failed: " + detail +
                                                 " (check the CA bundle and the server name)");
      case CURLE_OPERATION_TIMEDOUT:
        return make_error(Errc::unavailable, "no answer from " + where + " in time: " + detail);
      default:
        return make_error(Errc::unavailable, "cannot reach " + where + ": " + detail);
    }
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) return error_from_response(status, answer);
  auto j = api::parse_json_text(answer, opts.max_response_bytes);
  if (!j) return make_error(Errc::unavailable, "answer from " + where + " is not JSON (is this a hoopd?)");
  return j;
}

Result<Client> Client::create(ClientOptions opts) {
  while (!opts.server.empty() && opts.server.back() == '/') opts.server.pop_back();
  const std::string_view s = opts.server;
  if (!(s.starts_with("https://") || s.starts_with("http://")) || !is_clean_text(s) ||
      s.find_first_of(" ?#@") != std::string_view::npos)
    return make_error(Errc::invalid_argument,
                      "server URL '" + escape_for_terminal(s) +
                          "' must look like https://host:port (no user, query or spaces)");
  if (s.starts_with("http://") && !is_loopback_url(s))
    return make_error(Errc::invalid_argument,
                      "refusing plain http to " + escape_for_terminal(s) +
                          ": the token would cross the network unencrypted; use https://");
  if (!token_chars_ok(opts.token))
    return make_error(Errc::invalid_argument, "the token contains characters that cannot be sent");
  if (auto st = global_init(); !st) return st.error();

  auto impl = std::make_unique<Impl>();
  impl->curl = curl_easy_init();
  if (impl->curl == nullptr) return make_error(Errc::internal, "libcurl could not create a handle");
  auto add = [&](const std::string& h) {
    curl_slist* n = curl_slist_append(impl->headers, h.c_str());
    if (n != nullptr) impl->headers = n;
    return n != nullptr;
  };
  bool ok = add("Accept: application/json") && add("Content-Type: application/json") && add("Expect:");
  if (!opts.token.empty()) {
    std::string auth = "Authorization: Bearer " + opts.token;
    ok = ok && add(auth);
    explicit_bzero(auth.data(), auth.size());
  }
  if (!ok) return make_error(Errc::internal, "out of memory building request headers");
  impl->opts = std::move(opts);
  return Client(std::move(impl));
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
    char* esc = curl_easy_escape(impl_->curl, value.c_str(), static_cast<int>(value.size()));
    if (esc == nullptr) return;
    q += (q.empty() ? "?" : "&") + std::string(key) + "=" + esc;
    curl_free(esc);
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

}  // namespace hoop::client
