#pragma once
// What the reviewer verbs share (cmd_review.cc, cmd_sessions.cc): the flags
// that say where hoopd is, the connection made with the person's own token,
// and errors turned into a next step.
// MUST: connect() only after main() dropped privilege for good; it checks
//       again and refuses to go on while still elevated.

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "client/client.h"
#include "common/error.h"

namespace hoop::ctl {

/// Flags every verb that talks to hoopd shares.
struct Common {
  std::string server;
  std::string ca;
  std::string client_cert;
  std::string client_key;
  bool json = false;
};

/// --server, --ca, --client-cert, --client-key and, with `with_json`, --json.
void add_common(CLI::App& sub, Common& c, bool with_json);

/// A connected reviewer: the client and who we are locally (for hints).
struct Reviewer {
  client::Client client;
  std::string local_name;
};

/// Reads HOOP_SERVER/HOOP_CA/HOOP_TOKEN/HOOP_CLIENT_* (or the flags, or the
/// host config) and the person's token; does not connect yet.
Result<Reviewer> connect(const Common& c);

/// Adds what to do next to an error from the server. `what` names the kind
/// of object `id` is ("request" or "session").
Error explain(Error e, const Reviewer& s, int64_t id = 0, std::string_view what = "request");

/// Positive decimal ids; anything else is a usage error a person can act on.
extern const CLI::Validator kRequestId;

}  // namespace hoop::ctl
