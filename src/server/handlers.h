#pragma once
// The router and the HTTP handlers of hoopd: plain functions from a parsed
// request to a response, testable without sockets. They translate between
// HTTP and Service calls and hold no rules of their own (Service does).
//
// MUST: every answer to a /v1 call leaves through Service::on_durable, so a
// client never hears of a change before the commit that makes it durable.
// MUST: a failed call changes nothing (the Service runs each call in its own
// savepoint; the handlers validate everything before calling it).
// MUST NOT: take the host name of a request from anything but the credential.
//
// Choices the API leaves open (documented in man/hoopd.8):
// - an id that is not a positive decimal integer without sign, leading zero
//   or junk ("abc", "-1", "01", "1x") is answered 404, like an unknown id:
//   such a path names no resource;
// - unknown query parameters and repeated ones are 400, so a typo in a
//   filter never silently widens a listing;
// - `state` without `wait` is ignored; `wait` is capped at max_wait.

#include <functional>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "common/error.h"
#include "config/server_config.h"
#include "server/metrics.h"
#include "server/service.h"

namespace hoop::server {

namespace http = boost::beast::http;

using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

/// Receives the one answer to a request. May run later, on the io thread.
using Send = std::function<void(HttpResponse)>;

/// What the handlers work with; outlives every request.
struct HandlerContext {
  Service& service;
  const config::ServerConfig& cfg;
  Metrics& metrics;
};

/// Routes and handles one request. Calls `send` exactly once, now or later,
/// with a complete response (body, Content-Length, headers; the caller sets
/// only version and keep-alive). For a long-poll it returns the wait's
/// handle: releasing that handle before the answer came cancels the wait,
/// and `send` is then never called. For every other request it returns null.
Service::WaitHandle handle_request(HandlerContext& ctx, HttpRequest&& req, Send send);

/// The largest body the route of `target` takes: api::kMaxChunkBytes for a
/// transcript PUT, api::kMaxBodyBytes (JSON) for everything else. The
/// session asks once the header is read, before any body byte is kept.
size_t body_limit_for(http::verb method, std::string_view target);

/// HTTP status for an error code (docs/API.md).
http::status status_for(Errc code);

/// A JSON error answer {"error": {"code", "message"}} with our usual headers;
/// also used by the server for errors found while reading (413, 431, 400).
HttpResponse error_response(http::status status, const Error& e);

/// Whether the target and every header value are free of control
/// characters (HTAB allowed in values). Beast refuses most, not all.
bool is_clean_request(const HttpRequest& req);

}  // namespace hoop::server
