// Reviewer verbs for recorded sessions: sessions, replay, watch.
// MUST: run unprivileged (main dropped privilege; connect() checks again).
// MUST: pass a transcript to the terminal only through
//       transcript::TerminalFilter unless the person asked for --raw: the bytes
//       came from a command running as root on a host that may be hostile.
// MUST NOT: leave the reviewer's terminal in a replayed mode: the reset
//       sequence is written at the end and on SIGINT/SIGTERM/SIGHUP.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <ctime>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "api/types.h"
#include "client/client.h"
#include "commands.h"
#include "common/escape.h"
#include "output.h"
#include "transcript/replay.h"
#include "reviewer.h"

namespace hoop::ctl {
namespace {

using std::chrono::milliseconds;

const CLI::Validator kSessionId(
    [](std::string& s) -> std::string {
      const bool digits =
          !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || s.find_first_not_of('0') == std::string::npos)
        return "expected a session id (a positive number; see: hoopctl sessions), got '" +
               escape_for_terminal(s) + "'";
      return {};
    },
    "ID");

// ---- terminal output --------------------------------------------------------

bool g_reset_on_signal = false;  // set before the handlers are installed

extern "C" void on_fatal_signal(int sig) {
  if (g_reset_on_signal) {
    const std::string_view r = transcript::TerminalFilter::reset_sequence();
    (void)!::write(1, r.data(), r.size());
    (void)!::write(1, "\r\n", 2);
  }
  ::_exit(128 + sig);
}

void install_reset_handlers(bool reset) {
  g_reset_on_signal = reset;
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) (void)::sigaction(sig, &sa, nullptr);
}

/// All of `s` to stdout; false once stdout is gone (EPIPE, closed pager).
bool write_out(std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(1, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void sleep_seconds(double s) {
  if (!(s > 0)) return;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(s);
  ts.tv_nsec = static_cast<long>((s - static_cast<double>(ts.tv_sec)) * 1e9);
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/// Plays output events; input events are not replayed (what the terminal
/// echoed is in the output already) and a replay cannot resize the
/// reviewer's terminal.
class Player {
 public:
  Player(bool raw, bool timed, double speed, double idle_limit)
      : raw_(raw), timed_(timed), speed_(speed), idle_limit_(idle_limit) {}

  bool event(const transcript::CastEvent& e) {
    if (e.kind != 'o') return true;
    if (timed_) {
      double dt = std::max(0.0, e.time - last_);
      if (idle_limit_ > 0) dt = std::min(dt, idle_limit_);
      sleep_seconds(dt / speed_);
    }
    last_ = e.time;
    if (raw_) return write_out(e.data);
    buf_.clear();
    filter_.feed(e.data, buf_);
    return write_out(buf_);
  }

  void end() const {
    if (!raw_) (void)write_out(transcript::TerminalFilter::reset_sequence());
  }

 private:
  bool raw_, timed_;
  double speed_, idle_limit_;
  double last_ = 0;
  transcript::TerminalFilter filter_;
  std::string buf_;
};

struct PlayOpts {
  Common c;
  int64_t id = 0;
  double speed = 1.0;
  double idle_limit = 2.0;
  bool raw = false;
};

void note(const std::string& line) {
  std::cerr << "hoopctl: " << line << "\n";
}

// Streams the transcript through `player` from offset 0; with `follow`,
// waits for new bytes until the session completes.
Result<api::Session> stream(Reviewer& r, const PlayOpts& o, Player& player, bool follow) {
  bool stdout_gone = false;
  transcript::CastReader reader([](const transcript::CastHeader&) {},
                            [&](const transcript::CastEvent& e) {
                              if (!stdout_gone && !player.event(e)) stdout_gone = true;
                            });
  uint64_t offset = 0;
  for (;;) {
    auto chunk = r.client.read_transcript(o.id, offset,
                                          follow ? std::optional<milliseconds>(milliseconds(25000)) : std::nullopt);
    if (!chunk) return explain(chunk.error(), r, o.id, "session");
    offset += chunk->bytes.size();
    if (auto st = reader.feed(chunk->bytes); !st) return st.error();
    if (stdout_gone) return make_error(Errc::io, "standard output closed");
    if (chunk->complete && offset >= chunk->length) break;
    if (!follow && chunk->bytes.empty()) break;  // nothing more now
  }
  if (auto st = reader.finish(); !st) return st.error();
  auto s = r.client.get_session(o.id);
  if (!s) return explain(s.error(), r, o.id, "session");
  return *s;
}

Result<int> run_play(const PlayOpts& o, bool live) {
  if (!(o.speed >= 0.01 && o.speed <= 1000))
    return make_error(Errc::invalid_argument, "--speed must be from 0.01 to 1000");
  if (!(o.idle_limit >= 0)) return make_error(Errc::invalid_argument, "--idle-limit must be 0 (none) or more");
  auto r = connect(o.c);
  if (!r) return r.error();
  auto s = r->client.get_session(o.id);
  if (!s) return explain(s.error(), *r, o.id, "session");
  if (!live && s->state == api::SessionState::open)
    return make_error(Errc::conflict, "session " + std::to_string(o.id) +
                                          " is still running; follow it live with: hoopctl watch " +
                                          std::to_string(o.id));
  const bool tty = ::isatty(1) == 1;
  note(format_session_summary(*s, now_ms()));
  if (live && s->state == api::SessionState::complete)
    note("the session has ended; showing it whole (for its timing: hoopctl replay " + std::to_string(o.id) + ")");
  install_reset_handlers(!o.raw && tty);
  Player player(o.raw, !live, o.speed, o.idle_limit);
  auto done = stream(*r, o, player, live);
  player.end();
  if (tty && !o.raw) (void)write_out("\r\n");
  if (!done) return done.error();
  note("end of " + format_session_summary(*done, now_ms()));
  return kExitOk;
}

Runner setup_play(CLI::App& sub, bool live) {
  auto o = std::make_shared<PlayOpts>();
  add_common(sub, o->c, false);
  sub.add_option("id", o->id, "session id (see: hoopctl sessions)")->required()->check(kSessionId);
  if (!live) {
    sub.add_option("--speed", o->speed, "play X times as fast, 0.01 to 1000 (default 1)");
    sub.add_option("--idle-limit", o->idle_limit,
                   "cut pauses longer than S seconds down to S (default 2; 0 keeps every pause)");
  }
  sub.add_flag("--raw", o->raw,
               "write the recorded bytes unfiltered (for a file or another player); by default "
               "window titles, clipboard writes and sequences that make the terminal answer are dropped");
  return [o, live] { return run_play(*o, live); };
}

// ---- sessions ---------------------------------------------------------------

struct ListOpts {
  Common c;
  std::string state;
  std::string user;
  std::string host;
  int limit = 0;
};

Result<int> run_sessions(const ListOpts& o) {
  auto r = connect(o.c);
  if (!r) return r.error();
  client::SessionFilter f;
  if (!o.state.empty()) f.state = api::parse_session_state(o.state);
  f.user = o.user;
  f.host = o.host;
  f.limit = o.limit;
  nlohmann::json raw;
  auto list = r->client.list_sessions(f, &raw);
  if (!list) return explain(list.error(), *r);
  if (o.c.json)
    std::cout << format_json(raw["sessions"]);
  else if (list->empty())
    std::cout << "No sessions you may see.\n";
  else
    std::cout << format_session_table(*list, now_ms());
  return kExitOk;
}

}  // namespace

Runner setup_sessions(CLI::App& sub) {
  auto o = std::make_shared<ListOpts>();
  add_common(sub, o->c, true);
  sub.add_option("-s,--state", o->state, "only open (running) or complete sessions")
      ->check(CLI::IsMember({"open", "complete"}));
  sub.add_option("--user", o->user, "only sessions of this requester");
  sub.add_option("--host", o->host, "only sessions on this host");
  sub.add_option("-n,--limit", o->limit, "at most N sessions, newest first (server default 100)")
      ->check(CLI::Range(1, 1000));
  return [o] { return run_sessions(*o); };
}

Runner setup_replay(CLI::App& sub) {
  return setup_play(sub, false);
}

Runner setup_watch(CLI::App& sub) {
  return setup_play(sub, true);
}

}  // namespace hoop::ctl
