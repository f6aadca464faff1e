#pragma once
// Records one privileged session (issue 4): monitor bytes -> masking ->
// asciicast -> spool + ring -> shipper -> hoopd. Also `ship_spool` for
// `hoopctl ship`.
//
// MUST: with `required`, refuse to start when the recording channel (the
//       server) is unavailable; the caller then does not run the command.
// MUST: mask before bytes reach the spool or the server.
// MUST: record input only while the pty echoes.
// MUST NOT: do network I/O on the relay thread (observer callbacks only
//       mask, encode and append; they block only for back-pressure).
// Threads (spool, shipper) are started by start(), before the command is
// forked; the child only makes async-signal-safe calls after fork.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "pty/monitor.h"
#include "transcript/asciicast.h"
#include "transcript/shipper.h"
#include "transcript/transcript.h"

namespace hoop::transcript {

struct RecorderOptions {
  std::string spool_dir = "/var/spool/hoop";
  std::string session_id;
  std::string request_id;
  SessionHeader header;                    // width/height/tty are filled in by observer().begin
  std::vector<std::string> mask_patterns;  // from the policy
  std::unique_ptr<Uploader> uploader;      // null: spool only
  bool required = true;
  /// One-line notices for the person at the terminal (stalls), called on
  /// the relay thread.
  std::function<void(const std::string&)> notice;
  TranscriptOptions transcript;
  ShipperOptions shipper;
  /// Tests only: use this directory without the trusted-directory walk.
  bool spool_dir_checked_elsewhere = false;
};

struct FinishReport {
  bool confirmed = false;  // the server checked the digest and completed
  bool in_spool = false;   // left in the spool for `hoopctl ship`
  uint64_t length = 0;
  std::string sha256;
  std::string detail;  // one line for the user
};

class Recorder {
 public:
  using Clock = std::chrono::steady_clock;
  /// Compiles the mask patterns and creates the spool file (locked).
  static Result<std::unique_ptr<Recorder>> create(RecorderOptions opts);
  ~Recorder();

  /// Probes the server (server_length) and starts the threads. With
  /// `required` and no answer: Errc::unavailable, "recording channel
  /// unavailable: ...". Best effort: goes on, spooling.
  Status start();
  /// A notice to print when start() went on without the server; else empty.
  const std::string& start_notice() const { return start_notice_; }
  /// Callbacks for the monitor; valid while the Recorder lives.
  pty::Observer observer();
  /// Flushes, writes the .json, ships the rest and completes; on
  /// confirmation removes the spool files.
  FinishReport finish(std::optional<int> exit_status, Clock::time_point deadline);

  struct Impl;

 private:
  explicit Recorder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string start_notice_;
};

/// One spooled session handled by ship_spool.
struct SpoolShipResult {
  std::string session;
  bool confirmed = false;  // shipped, confirmed, removed from the spool
  bool skipped = false;    // still recording (locked) or too fresh
  std::string detail;
};

using UploaderFactory = std::function<Result<std::unique_ptr<Uploader>>(const std::string& session)>;

/// For `hoopctl ship`: ships every finished or abandoned session in the
/// spool (one not locked by a live recorder), resuming at the server's
/// length, and removes those the server confirms. An abandoned session
/// without .json is completed with its file's length and digest and no exit
/// status. Fails only when the spool itself cannot be opened or listed.
Result<std::vector<SpoolShipResult>> ship_spool(const std::string& spool_dir, const UploaderFactory& factory,
                                                std::chrono::seconds per_session = std::chrono::seconds(30),
                                                bool spool_dir_checked_elsewhere = false);

}  // namespace hoop::transcript
