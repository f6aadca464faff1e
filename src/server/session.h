#pragma once
// The per-connection HTTP session of hoopd, included by server.cc only
// (Beast's parser and serializer compile slowly: one translation unit).
// See server.h for the contract: bounded reads, the long-poll watch, the
// connection cap. Templated on the stream: tcp::socket or TlsStream.

#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "api/types.h"
#include "server/handlers.h"
#include "server/metrics.h"
#include "server/service.h"
#include "server/tls_stream.h"

namespace hoop::server::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using std::chrono::milliseconds;

constexpr size_t kHeaderLimit = 16 * 1024;
// The read buffer must hold a whole header; body bytes pass through it.
constexpr size_t kBufferLimit = 2 * kHeaderLimit;
constexpr size_t kShrinkAbove = 4 * 1024;    // give big buffers back after a request
constexpr size_t kWatchBytes = 64;           // per read of the long-poll watcher
constexpr size_t kDrainLimit = 2 * api::kMaxBodyBytes;
constexpr milliseconds kLingerMax{5000};
// A TLS handshake in progress holds ~40 KiB (OpenSSL's record buffers and
// handshake state) until the client's Finished arrives. 5,000 clients
// connecting at once would push the heap to 200 MB, and malloc keeps that
// peak. So a handshake starts only when its ClientHello is there (a silent
// client holds no slot), at most kMaxHandshakes run at once (one thread
// gains nothing from more), and one that stalls longer than kSlotHold gives
// its slot up (it may still finish), so stalling clients cannot block the
// queue for a whole read_timeout. Waiting in the queue counts against
// read_timeout.
constexpr size_t kMaxHandshakes = 32;
constexpr std::chrono::milliseconds kSlotHold{1000};

/// A string body that grows with what arrives. Beast's string_body reserves
/// Content-Length up front, which would let idle clients that merely
/// announce 512 KiB pin 512 KiB each.
struct GrowingBody {
  using value_type = std::string;

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(beast::http::header<isRequest, Fields>&, value_type& body) : body_(body) {}
    void init(const boost::optional<std::uint64_t>&, error_code& ec) { ec = {}; }
    template <class ConstBuffers>
    size_t put(const ConstBuffers& buffers, error_code& ec) {
      ec = {};
      size_t n = 0;
      for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
        asio::const_buffer b(*it);
        body_.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      return n;
    }
    void finish(error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

inline tcp::socket& lowest(tcp::socket& s) { return s; }
inline tcp::socket& lowest(TlsStream& s) { return s.socket(); }
inline void shutdown_tls(tcp::socket&) {}
inline void shutdown_tls(TlsStream& s) { s.shutdown_tls(); }

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void abort() = 0;
  /// Starts a TLS handshake that was given a slot; false if the session
  /// closed meanwhile (the slot goes to the next one).
  virtual bool begin_handshake() { return false; }
};

/// What sessions share. Held by shared_ptr from each session, so a session
/// that outlives the Server (its last handler destroyed with the io_context)
/// still finds the registry; `metrics` is cleared when the Server goes.
struct Shared {
  Shared(HandlerContext c, Metrics* m, milliseconds timeout) : ctx(c), metrics(m), read_timeout(timeout) {}

  HandlerContext ctx;
  Metrics* metrics;
  milliseconds read_timeout;
  std::unordered_set<SessionBase*> sessions;
  // TLS handshake admission (see kMaxHandshakes): who holds a slot since
  // when, and who waits for one (owned here: a queued session has no I/O
  // pending that would keep it alive).
  struct Slot {
    SessionBase* session;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<Slot> handshaking;
  std::deque<std::shared_ptr<SessionBase>> handshake_queue;

  void request_slot(std::shared_ptr<SessionBase> s) {
    handshake_queue.push_back(std::move(s));
    admit();
  }
  /// A handshake ended (done, failed or closed); no-op if it had forfeited.
  void release_slot(SessionBase* s) {
    std::erase_if(handshaking, [s](const Slot& slot) { return slot.session == s; });
    admit();
  }
  /// Called every tick: stalled handshakes give their slot to the queue.
  void forfeit_stalled(std::chrono::steady_clock::time_point now) {
    std::erase_if(handshaking, [now](const Slot& slot) { return now - slot.since >= kSlotHold; });
    admit();
  }
  void admit() {
    while (handshaking.size() < kMaxHandshakes && !handshake_queue.empty()) {
      auto next = std::move(handshake_queue.front());
      handshake_queue.pop_front();
      handshaking.push_back({next.get(), std::chrono::steady_clock::now()});
      if (!next->begin_handshake()) handshaking.pop_back();  // closed while queued
    }
  }
};

/// One connection: read a request (bounded), hand it to the router, write
/// the answer, repeat while keep-alive. See server.h for the long-poll watch.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(std::shared_ptr<Shared> shared, Args&&... args)
      : sh_(std::move(shared)), stream_(std::forward<Args>(args)...), timer_(stream_.get_executor()) {
    sh_->sessions.insert(this);
    if (sh_->metrics) sh_->metrics->connection_opened();
  }
  ~Session() override {
    sh_->sessions.erase(this);
    if (sh_->metrics) sh_->metrics->connection_closed();
  }

  Stream& stream() { return stream_; }

  void start() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      arm(sh_->read_timeout);  // covers the wait for a handshake slot too
      // Ask for a slot only once the ClientHello is here: silent clients cost
      // no slot. The readiness wait reads nothing, so OpenSSL sees every byte.
      stream_.socket().async_wait(tcp::socket::wait_read, [self = this->shared_from_this()](error_code ec) {
        if (self->phase_ == Phase::closed) return;
        if (ec) return self->close();
        self->sh_->request_slot(self);
      });
    } else {
      do_read();
    }
  }

  bool begin_handshake() override {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      if (phase_ == Phase::closed) return false;
      handshake();
      return true;
    }
    return false;
  }

  void abort() override { close(); }

 private:
  enum class Phase { reading, handling, writing, resuming, draining, closed };
  using Parser = beast::http::request_parser<GrowingBody>;

  void handshake() {
    stream_.async_handshake([self = this->shared_from_this()](error_code ec, size_t) {
      self->sh_->release_slot(self.get());  // also on failure and close
      if (self->phase_ == Phase::closed) return;
      if (ec) return self->close();
      self->do_read();
    });
  }

  void do_read() {
    phase_ = Phase::reading;
    parser_ = std::make_unique<Parser>();
    parser_->header_limit(static_cast<std::uint32_t>(kHeaderLimit));
    // The largest any route takes; on_header narrows it to the route's.
    body_limit_ = api::kMaxChunkBytes;
    parser_->body_limit(body_limit_);
    arm(sh_->read_timeout);  // the whole request, and idle keep-alive before it
    beast::http::async_read_header(stream_, buffer_, *parser_,
                                   [self = this->shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (phase_ == Phase::closed) return;
    if (ec) return on_read_error(ec);
    const auto& h = parser_->get();
    body_limit_ = body_limit_for(h.method(), h.target());
    if (auto len = parser_->content_length(); len && *len > body_limit_) return on_read_error(beast::http::error::body_limit);
    parser_->body_limit(body_limit_);  // also bounds chunked bodies from here on
    if (h.version() >= 11 && !parser_->is_done() && beast::iequals(h[beast::http::field::expect], "100-continue")) {
      // curl waits a second for this before sending a larger body.
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = this->shared_from_this()](error_code wec, size_t) {
                          if (self->phase_ == Phase::closed) return;
                          if (wec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    // Beast reads at most the buffer's free capacity per recv (and never less
    // than 512 bytes): after a header the buffer is only as large as the
    // header, so a 256 KiB transcript chunk took ~150 recv calls. A full-size
    // buffer for a large body takes ~8; on_read gives it back afterwards.
    if (auto len = parser_->content_length(); len && *len > kShrinkAbove) buffer_.reserve(kBufferLimit);
    beast::http::async_read(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read_error(error_code ec) {
    namespace he = beast::http;
    if (ec == he::error::body_limit)
      return reply_now(beast::http::status::payload_too_large,
                       make_error(Errc::too_large, "body is larger than " +
                                                       std::to_string(body_limit_ / 1024) + " KiB"));
    if (ec == he::error::header_limit || ec == he::error::buffer_overflow)
      return reply_now(beast::http::status::request_header_fields_too_large,
                       make_error(Errc::too_large, "request headers are larger than 16 KiB"));
    const bool http_syntax = ec.category() == make_error_code(he::error::bad_method).category();
    if (http_syntax && ec != he::error::end_of_stream && ec != he::error::partial_message)
      return reply_now(beast::http::status::bad_request,
                       make_error(Errc::invalid_argument, "malformed HTTP request: " + ec.message()));
    close();  // end of stream, timeout, reset: nobody to answer
  }

  void on_read(error_code ec) {
    if (phase_ == Phase::closed) return;
    if (ec) return on_read_error(ec);
    // No read timeout while the server works or a long-poll waits; only a
    // backstop in case an answer never comes (a bug must not leak the
    // connection): the longest wait plus one more read_timeout.
    arm(sh_->ctx.cfg.max_wait + sh_->read_timeout);
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    HttpRequest req(std::move(msg.base()), std::move(msg.body()));
    parser_.reset();
    if (buffer_.capacity() > kShrinkAbove) buffer_.shrink_to_fit();

    phase_ = Phase::handling;
    const uint64_t gen = ++generation_;
    auto handle = handle_request(sh_->ctx, std::move(req), [self = this->shared_from_this(), gen](HttpResponse res) {
      self->on_answer(gen, std::move(res));
    });
    if (phase_ == Phase::handling && handle) {
      wait_ = std::move(handle);
      start_watch();
    }
  }

  void reply_now(beast::http::status st, const Error& e) {
    parser_.reset();
    keep_alive_ = false;  // the stream is out of step with the parser
    version_ = 11;
    phase_ = Phase::handling;
    on_answer(++generation_, error_response(st, e));
  }

  void on_answer(uint64_t gen, HttpResponse res) {
    if (gen != generation_ || phase_ != Phase::handling) return;  // closed meanwhile
    res.version(version_);
    res.keep_alive(keep_alive_);
    if (sh_->metrics) sh_->metrics->count_response(res.result_int());
    res_ = std::make_unique<HttpResponse>(std::move(res));
    phase_ = Phase::writing;
    arm(sh_->read_timeout);  // a client that does not read its answer is cut off too
    beast::http::async_write(stream_, *res_,
                             [self = this->shared_from_this()](error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(error_code ec) {
    res_.reset();
    wait_.reset();  // released only now: never from inside the Service's callback
    if (phase_ == Phase::closed) return;
    if (ec || peer_gone_) return close();
    if (!keep_alive_) return linger();
    if (watching_) {
      // The watch read stays pending and becomes the start of the next request.
      phase_ = Phase::resuming;
      arm(sh_->read_timeout);
      return;
    }
    do_read();
  }

  void start_watch() {
    if (buffer_.size() + kWatchBytes > buffer_.max_size()) return;  // enough pipelined already
    if (buffer_.size() == 0) buffer_.shrink_to_fit();  // a waiting connection keeps ~64 bytes
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(kWatchBytes), [self = this->shared_from_this()](error_code ec, size_t n) {
      self->on_watch(ec, n);
    });
  }

  void on_watch(error_code ec, size_t n) {
    watching_ = false;
    if (phase_ == Phase::closed) return;
    if (ec) {
      // The client left (or half-closed): cancel its wait, there is nobody to answer.
      if (phase_ == Phase::writing) {
        peer_gone_ = true;
        return;
      }
      return close();
    }
    buffer_.commit(n);
    if (phase_ == Phase::handling) return start_watch();
    if (phase_ == Phase::resuming) return do_read();
    // writing: on_write sees watching_ == false and reads the next request.
  }

  /// Half-closes after a final answer and reads what the client still sends
  /// (bounded in bytes and time), so its unread bytes cannot make our kernel
  /// send a reset that destroys the answer before the client read it.
  void linger() {
    phase_ = Phase::draining;
    shutdown_tls(stream_);
    error_code ec;
    lowest(stream_).shutdown(tcp::socket::shutdown_send, ec);
    if (ec || watching_) return close();
    arm(std::min(sh_->read_timeout, kLingerMax));
    drain();
  }

  void drain() {
    buffer_.consume(buffer_.size());
    if (drained_ > kDrainLimit) return close();
    lowest(stream_).async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](error_code ec, size_t n) {
      if (self->phase_ == Phase::closed) return;
      if (ec) return self->close();
      self->drained_ += n;
      self->drain();
    });
  }

  void arm(milliseconds d) {
    timer_.expires_after(d);
    timer_.async_wait([weak = this->weak_from_this()](error_code ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      // A handler that had already fired may run after a re-arm: check.
      if (self->timer_.expiry() > std::chrono::steady_clock::now()) return;
      self->close();
    });
  }
  void disarm() { timer_.expires_at(asio::steady_timer::time_point::max()); }

  void close() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    wait_.reset();  // cancels an open long-poll
    disarm();
    error_code ec;
    lowest(stream_).close(ec);  // pending operations complete with errors
  }

  std::shared_ptr<Shared> sh_;
  Stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_{kBufferLimit};
  // Heap-allocated only while a request is read or an answer written, so an
  // idle or waiting connection does not carry their ~400 bytes.
  std::unique_ptr<Parser> parser_;
  std::unique_ptr<HttpResponse> res_;
  Service::WaitHandle wait_;
  Phase phase_ = Phase::reading;
  uint64_t generation_ = 0;
  size_t drained_ = 0;
  size_t body_limit_ = api::kMaxBodyBytes;  // of the request being read
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool watching_ = false;
  bool peer_gone_ = false;
};

}  // namespace hoop::server::detail
