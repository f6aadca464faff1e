// hoopctl ship: send hoopd the transcripts left in the spool. Run by root,
// typically from a systemd timer (dist/hoop-ship.timer); `hoopctl run` also
// makes a quick pass after its own command.
// MUST: keep root only for reading the spool and the host credential: the
//       environment is cleared first (prepare_privileged) and no flag names
//       another server, CA or credential.

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "client/client.h"
#include "commands.h"
#include "common/escape.h"
#include "output.h"
#include "ship.h"
#include "sys/privilege.h"
#include "sys/process.h"
#include "uploader.h"

namespace hoop::ctl {

Result<std::vector<transcript::SpoolShipResult>> ship_spooled(const Host& h, std::chrono::seconds per_session) {
  const transcript::UploaderFactory factory =
      [&h](const std::string& session) -> Result<std::unique_ptr<transcript::Uploader>> {
    int64_t id = 0;
    try {
      size_t used = 0;
      id = std::stoll(session, &used);
      if (used != session.size() || id <= 0) throw std::invalid_argument(session);
    } catch (const std::exception&) {
      return make_error(Errc::invalid_argument, "not a session id: " + escape_for_terminal(session));
    }
    auto cl = client::Client::create(host_client_options(h, "hoopctl-ship"));
    if (!cl) return cl.error();
    return std::unique_ptr<transcript::Uploader>(std::make_unique<HttpUploader>(std::move(*cl), id));
  };
  return transcript::ship_spool(h.cfg.spool_dir, factory, per_session);
}

void ship_leftovers(const Host& h) {
  auto results = ship_spooled(h, std::chrono::seconds(5));
  if (!results) return;
  int shipped = 0, left = 0;
  for (const auto& r : *results) {
    if (r.confirmed) ++shipped;
    else if (!r.skipped) ++left;
  }
  if (shipped > 0)
    std::fprintf(stderr, "hoopctl: also shipped %d earlier transcript%s from the spool\n", shipped,
                 shipped == 1 ? "" : "s");
  if (left > 0)
    std::fprintf(stderr, "hoopctl: %d transcript%s still in %s; see: hoopctl ship\n", left, left == 1 ? "" : "s",
                 escape_for_terminal(h.cfg.spool_dir).c_str());
}

namespace {

struct ShipOpts {
  bool json = false;
  int timeout_s = 30;
  Status prepared = make_error(Errc::internal, "the ship path was not prepared (this is a bug)");
};

Result<int> run_ship(const ShipOpts& o) {
  if (!o.prepared) return o.prepared.error();
  if (::geteuid() != 0)
    return make_error(Errc::permission_denied,
                      "hoopctl ship reads the root-only spool and host credential: run it as root");
  auto caller = sys::current_caller();
  if (!caller) return caller.error();
  if (caller->uid != 0)
    return make_error(Errc::permission_denied, "only root ships the spool (it holds other people's sessions)");
  auto host = load_host();
  if (!host) return host.error();
  auto results = ship_spooled(*host, std::chrono::seconds(o.timeout_s));
  wipe(host->token);
  if (!results) return results.error();
  int failed = 0;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : *results) {
    const char* state = r.confirmed ? "shipped" : r.skipped ? "skipped" : "failed";
    if (!r.confirmed && !r.skipped) ++failed;
    out.push_back({{"session", r.session}, {"result", state}, {"detail", r.detail}});
    if (!o.json)
      std::cout << "session " << escape_for_terminal(r.session) << ": " << state
                << (r.detail.empty() ? "" : " (" + escape_for_terminal(r.detail) + ")") << "\n";
  }
  if (o.json) std::cout << format_json({{"sessions", out}});
  else if (results->empty()) std::cout << "The spool is empty: hoopd has every transcript.\n";
  return failed == 0 ? kExitOk : kExitError;
}

}  // namespace

Runner setup_ship(CLI::App& sub) {
  auto o = std::make_shared<ShipOpts>();
  // As for run: fds and dumpability first, then the environment is cleared.
  sub.preparse_callback([o](size_t) {
    std::vector<std::string> ignored;
    o->prepared = prepare_privileged(ignored);
  });
  sub.add_flag("--json", o->json, "print the outcome per session as JSON");
  sub.add_option("--timeout", o->timeout_s, "seconds to spend on each session before leaving it (default 30)")
      ->check(CLI::Range(1, 3600));
  sub.footer("Exit status: 0 when the spool is empty afterwards (or holds only sessions still being\n"
             "recorded); 1 when some transcript could not be shipped. Config: " HOOP_SYSCONFDIR "/hoop.toml.");
  return [o] { return run_ship(*o); };
}

}  // namespace hoop::ctl
