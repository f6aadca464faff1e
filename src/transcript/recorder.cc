// The recorder: glue between the monitor's observer, the masks, the
// asciicast encoder, the transcript and the shipper. The observer callbacks
// run on the relay thread only; finish() runs after the monitor returned.

#include "transcript/recorder.h"

#include <ctime>

#include "transcript/mask.h"
#include "transcript/spool.h"

namespace hoop::transcript {

struct Recorder::Impl {
  RecorderOptions opts;
  std::optional<SpoolDir> spool;
  std::optional<Masker> mask_out, mask_in;
  CastEncoder enc;
  std::unique_ptr<Transcript> transcript;
  std::unique_ptr<Shipper> shipper;
  Clock::time_point t0 = Clock::now();
  bool header_written = false;
  bool finished = false;
  std::string masked, line;

  uint64_t usec() const {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
  }

  void write(std::string& s) {
    if (!s.empty()) (void)transcript->append(s);  // fails only after close
    s.clear();
  }

  void begin(unsigned cols, unsigned rows, bool terminal) {
    if (header_written) return;
    header_written = true;
    t0 = Clock::now();
    SessionHeader h = opts.header;
    h.width = cols;
    h.height = rows;
    h.tty = terminal;
    if (h.timestamp == 0) h.timestamp = static_cast<int64_t>(std::time(nullptr));
    if (h.session.empty()) h.session = opts.session_id;
    if (h.request.empty()) h.request = opts.request_id;
    line = cast_header_line(h);
    write(line);
  }

  void bytes(char kind, std::string_view in, Masker& m) {
    if (!header_written) begin(0, 0, false);
    m.feed(in, masked);
    if (masked.empty()) return;
    enc.event(usec(), kind, masked, line);
    masked.clear();
    write(line);
  }

  void flush_input() {
    mask_in->finish(masked);
    if (masked.empty()) return;
    enc.event(usec(), 'i', masked, line);
    masked.clear();
    write(line);
  }
};

Recorder::Recorder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Recorder::~Recorder() = default;

Result<std::unique_ptr<Recorder>> Recorder::create(RecorderOptions opts) {
  if (!valid_session_id(opts.session_id))
    return make_error(Errc::invalid_argument, "bad session id for the recording");
  auto impl = std::make_unique<Impl>();
  auto mo = Masker::create(opts.mask_patterns);
  if (!mo) return mo.error();
  auto mi = Masker::create(opts.mask_patterns);
  if (!mi) return mi.error();
  impl->mask_out.emplace(std::move(*mo));
  impl->mask_in.emplace(std::move(*mi));
  auto dir = opts.spool_dir_checked_elsewhere ? SpoolDir::adopt_checked_elsewhere(opts.spool_dir)
                                              : SpoolDir::open(opts.spool_dir);
  if (!dir) return make_error(dir.error().code, "transcript spool: " + dir.error().message);
  auto fd = dir->create_cast(opts.session_id);
  if (!fd) return make_error(fd.error().code, "transcript spool: " + fd.error().message);
  impl->spool.emplace(std::move(*dir));
  TranscriptOptions topts = opts.transcript;
  if (!topts.on_stall && opts.notice) {
    auto notice = opts.notice;
    topts.on_stall = [notice](bool stalled, const std::string& why) {
      if (stalled) notice("hoop: " + why);
    };
  }
  impl->transcript = std::make_unique<Transcript>(std::move(*fd), std::move(topts));
  impl->opts = std::move(opts);
  return std::unique_ptr<Recorder>(new Recorder(std::move(impl)));
}

Status Recorder::start() {
  Impl& i = *impl_;
  if (!i.opts.uploader) {
    if (i.opts.required)
      return make_error(Errc::unavailable, "recording channel unavailable: no connection to the server");
    start_notice_ = "hoop: recording to the local spool only; run `hoopctl ship` later";
    return {};
  }
  auto len = i.opts.uploader->server_length();
  std::optional<uint64_t> known;
  if (len) {
    known = *len;
  } else if (i.opts.required) {
    return make_error(Errc::unavailable, "recording channel unavailable: " + len.error().message);
  } else {
    start_notice_ = "hoop: the server is unreachable (" + len.error().message +
                    "); recording to the spool, shipping when it is back";
  }
  i.shipper = std::make_unique<Shipper>(*i.transcript, *i.opts.uploader, i.opts.shipper);
  i.shipper->start(known);
  return {};
}

pty::Observer Recorder::observer() {
  Impl* i = impl_.get();
  pty::Observer o;
  o.begin = [i](unsigned short cols, unsigned short rows, bool terminal) { i->begin(cols, rows, terminal); };
  o.output = [i](std::string_view b) { i->bytes('o', b, *i->mask_out); };
  o.input = [i](std::string_view b, bool echo) {
    if (echo) {
      i->bytes('i', b, *i->mask_in);
    } else if (i->mask_in->held() != 0) {
      i->flush_input();  // what was typed with echo before goes out now
    }
  };
  o.resize = [i](unsigned short cols, unsigned short rows) {
    if (!i->header_written) i->begin(cols, rows, true);
    CastEncoder::resize(i->usec(), cols, rows, i->line);
    i->write(i->line);
  };
  return o;
}

FinishReport Recorder::finish(std::optional<int> exit_status, Clock::time_point deadline) {
  Impl& i = *impl_;
  FinishReport rep;
  if (i.finished) {
    rep.detail = "already finished";
    return rep;
  }
  i.finished = true;
  if (!i.header_written) i.begin(0, 0, false);
  i.mask_out->finish(i.masked);
  if (!i.masked.empty()) i.enc.event(i.usec(), 'o', i.masked, i.line);
  i.masked.clear();
  i.flush_input();
  i.enc.finish(i.usec(), i.line);
  i.write(i.line);
  i.transcript->close();
  rep.length = i.transcript->length();
  rep.sha256 = i.transcript->sha256_hex();

  // Shipping first: when the server confirms (the usual case, within a
  // round trip or two), the spool is simply removed and nothing on this host
  // needs an fsync. Only when it does not is the spool made durable, with a
  // .json that tells `hoopctl ship` the length, digest and exit status. (A
  // crash in between leaves the spool without .json: `hoopctl ship` then
  // completes it from the file itself, without the exit status.)
  std::string ship_detail = "no server";
  if (i.shipper) {
    i.shipper->request_finish(exit_status, deadline);
    ShipReport sr = i.shipper->wait_finish();
    rep.confirmed = sr.confirmed;
    ship_detail = sr.detail;
  }
  if (rep.confirmed) {
    // Unlinked while still locked, so `hoopctl ship` never sees it half gone.
    if (auto s = i.spool->remove(i.opts.session_id); !s) ship_detail += "; " + s.error().message;
    i.shipper.reset();
    i.transcript.reset();
    rep.detail = "transcript " + ship_detail;
    return rep;
  }
  // A failing spool gets one retry interval, a healthy one time to catch up.
  const auto spool_wait =
      i.transcript->spool_error().empty() ? std::chrono::seconds(5) : std::chrono::seconds(1);
  const Status drained = i.transcript->drain_spool(Clock::now() + spool_wait);
  SpoolMeta meta{i.opts.session_id, i.opts.request_id, rep.length, rep.sha256, exit_status, true};
  const Status meta_ok = i.spool->write_meta(meta);
  rep.in_spool = drained.ok() && meta_ok.ok();
  if (rep.in_spool) {
    rep.detail = "transcript left in " + i.spool->path() + " for `hoopctl ship` (" + ship_detail + ")";
  } else {
    rep.detail =
        "transcript NOT safely stored: " + (drained ? meta_ok.error().message : drained.error().message) +
        " (" + ship_detail + ")";
  }
  return rep;
}

}  // namespace hoop::transcript
