// The recorder: glue between the monitor's observer, the masks, the
// asciicast encoder, the transcript and the shipper. The observer callbacks
// run on the relay thread and only copy what they see into a bounded queue,
// stamped with its time; the recorder thread masks, encodes and appends, so
// the relay goes back to the command's pty at once. A full queue makes the
// relay wait (back-pressure, as the transcript's own). finish() runs after
// the monitor returned, once the recorder thread has drained the queue.

#include "transcript/recorder.h"

#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>

#include "sys/process.h"
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
  bool header_written = false;  // relay thread only (begin)
  bool finished = false;
  std::string masked, line;  // recorder thread, then finish()

  // What the relay thread saw, for the recorder thread.
  struct Item {
    char kind = 'o';  // 'o' output, 'i' echoed input, 'n' input without echo, 'r' resize
    uint64_t usec = 0;
    unsigned short cols = 0, rows = 0;
    std::string bytes;
  };
  static constexpr size_t kMaxQueued = size_t{1} << 20;
  // The relay wakes an idle recorder thread only once this much is queued or
  // the oldest queued item is this old: not a futex wake and a context
  // switch per pty read (~25,000 per 100 MB), and the recorder, once awake,
  // works through a batch instead of taking the CPU from the relay for every
  // 4 KiB. The monitor polls no longer than the age allows (flush_in_ms).
  static constexpr size_t kWakeBytes = size_t{256} << 10;
  static constexpr uint64_t kWakeAfterUsec = 5000;
  std::mutex qmu;
  std::condition_variable q_work, q_space;
  std::deque<Item> queue;
  size_t queued = 0;
  bool worker_idle = false, relay_waiting = false, q_stop = false;
  bool wake_owed = false;   // relay thread only: queued items the idle worker was not told of
  uint64_t owed_since = 0;  // relay thread only: usec of the oldest of them
  std::thread worker;

  ~Impl() { stop_worker(); }

  void start_worker() {
    worker = std::thread([this] {
      sys::lower_thread_priority();
      work();
    });
  }

  // Drains the queue and ends the recorder thread; idempotent.
  void stop_worker() {
    {
      std::lock_guard lk(qmu);
      q_stop = true;
    }
    q_work.notify_one();
    if (worker.joinable()) worker.join();
  }

  void push(Item it) {  // relay thread
    std::unique_lock lk(qmu);
    if (queued >= kMaxQueued) {
      if (worker_idle) q_work.notify_one();
      relay_waiting = true;
      q_space.wait(lk, [&] { return queued < kMaxQueued || q_stop; });
      relay_waiting = false;
    }
    const uint64_t at = it.usec;
    queued += it.bytes.size();
    queue.push_back(std::move(it));
    if (!worker_idle) {
      wake_owed = false;  // a busy worker looks at the queue again before it sleeps
      return;
    }
    if (!wake_owed) {
      wake_owed = true;
      owed_since = at;
    }
    if (queued >= kWakeBytes || at - owed_since >= kWakeAfterUsec) {
      wake_owed = false;
      q_work.notify_one();
    }
  }

  // Relay thread, between polls (Observer::flush_in_ms / flush).
  int flush_in_ms() const {
    if (!wake_owed) return -1;
    const uint64_t age = usec() - owed_since;
    return age >= kWakeAfterUsec ? 0 : static_cast<int>((kWakeAfterUsec - age + 999) / 1000);
  }
  void flush() {
    if (!wake_owed || usec() - owed_since < kWakeAfterUsec) return;
    std::lock_guard lk(qmu);
    wake_owed = false;
    if (worker_idle) q_work.notify_one();
  }

  void work() {  // recorder thread
    std::unique_lock lk(qmu);
    for (;;) {
      if (queue.empty()) {
        if (q_stop) return;
        worker_idle = true;
        q_work.wait(lk, [&] { return !queue.empty() || q_stop; });
        worker_idle = false;
        continue;
      }
      Item it = std::move(queue.front());
      queue.pop_front();
      lk.unlock();
      handle(it);
      lk.lock();
      queued -= it.bytes.size();
      if (relay_waiting && queued < kMaxQueued) q_space.notify_one();
    }
  }

  void handle(const Item& it) {
    switch (it.kind) {
      case 'o':
        bytes(it.usec, 'o', it.bytes, *mask_out);
        break;
      case 'i':
        bytes(it.usec, 'i', it.bytes, *mask_in);
        break;
      case 'n':
        // Typed without echo: not recorded; what was typed with echo
        // before it goes out now.
        if (mask_in->held() != 0) flush_input(it.usec);
        break;
      case 'r':
        CastEncoder::resize(it.usec, it.cols, it.rows, line);
        write(line);
        break;
      default:
        break;
    }
  }

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
    std::string header = cast_header_line(h);  // relay thread: not `line`
    write(header);
  }

  void bytes(uint64_t at, char kind, std::string_view in, Masker& m) {
    m.feed(in, masked);
    if (masked.empty()) return;
    enc.event(at, kind, masked, line);
    masked.clear();
    write(line);
  }

  void flush_input(uint64_t at) {
    mask_in->finish(masked);
    if (masked.empty()) return;
    enc.event(at, 'i', masked, line);
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
  impl->start_worker();
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
  o.output = [i](std::string_view b) {
    if (!i->header_written) i->begin(0, 0, false);
    i->push({'o', i->usec(), 0, 0, std::string(b)});
  };
  o.input = [i](std::string_view b, bool echo) {
    if (!i->header_written) i->begin(0, 0, false);
    i->push({echo ? 'i' : 'n', i->usec(), 0, 0, echo ? std::string(b) : std::string()});
  };
  o.resize = [i](unsigned short cols, unsigned short rows) {
    if (!i->header_written) i->begin(cols, rows, true);
    i->push({'r', i->usec(), cols, rows, {}});
  };
  o.flush_in_ms = [i] { return i->flush_in_ms(); };
  o.flush = [i] { i->flush(); };
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
  i.stop_worker();  // everything observed is in the transcript after this
  i.mask_out->finish(i.masked);
  if (!i.masked.empty()) i.enc.event(i.usec(), 'o', i.masked, i.line);
  i.masked.clear();
  i.flush_input(i.usec());
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
