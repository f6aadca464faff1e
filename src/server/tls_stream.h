#pragma once
// A lean server-side TLS stream for Beast: OpenSSL reads and writes the
// non-blocking socket itself (SSL_set_fd) and Asio only says when the socket
// is ready again.
//
// Why not boost::asio::ssl::stream: it allocates two 17 KiB buffers per
// connection and a BIO pair of two more, ~70 KiB that 5,000 idle long-poll
// connections turn into 350 MB. Here, with SSL_MODE_RELEASE_BUFFERS, an idle
// connection costs only OpenSSL's per-connection state (a few KiB).
//
// Contract: at most one read and one write outstanding at a time (a
// long-poll watches for the client leaving while its answer is written);
// everything runs on one io thread. Closing the socket cancels every pending
// operation. Operations never complete inside the call that starts them.

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <array>
#include <cstddef>
#include <memory>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

namespace hoop::server {

class TlsStream {
 public:
  using socket_type = boost::asio::ip::tcp::socket;
  using executor_type = socket_type::executor_type;
  using error_code = boost::system::error_code;

  /// Takes the accepted socket. Check ok(): SSL_new can fail (memory).
  TlsStream(socket_type socket, SSL_CTX* ctx) : socket_(std::move(socket)), ssl_(SSL_new(ctx)) {
    error_code ec;
    socket_.non_blocking(true, ec);
    if (ssl_ && (ec || SSL_set_fd(ssl_.get(), static_cast<int>(socket_.native_handle())) != 1)) ssl_.reset();
    if (ssl_) SSL_set_accept_state(ssl_.get());
  }

  bool ok() const { return ssl_ != nullptr; }
  executor_type get_executor() { return socket_.get_executor(); }
  socket_type& socket() { return socket_; }

  /// Completion: void(error_code, size_t) with size 0.
  template <class Handler>
  auto async_handshake(Handler&& handler) {
    return start([](SSL* ssl, size_t& n) {
      n = 0;
      return SSL_do_handshake(ssl);
    }, std::forward<Handler>(handler));
  }

  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    boost::asio::mutable_buffer b = first_nonempty(buffers);
    return start([b](SSL* ssl, size_t& n) {
      if (b.size() == 0) return (n = 0), 1;
      return SSL_read_ex(ssl, b.data(), b.size(), &n);
    }, std::forward<Handler>(handler));
  }

  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    // The caller keeps `buffers` alive and unchanged until completion, so a
    // retry after WANT_WRITE gathers exactly the same bytes again, as
    // OpenSSL requires. Gathering avoids one TLS record per Beast buffer.
    return start([buffers](SSL* ssl, size_t& n) {
      static thread_local std::array<char, 16 * 1024> scratch;
      size_t len = 0;
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers) && len < scratch.size(); ++it) {
        boost::asio::const_buffer cb(*it);
        len += boost::asio::buffer_copy(boost::asio::buffer(scratch.data() + len, scratch.size() - len), cb);
      }
      if (len == 0) return (n = 0), 1;
      return SSL_write_ex(ssl, scratch.data(), len, &n);
    }, std::forward<Handler>(handler));
  }

  /// Sends close_notify if that can be done without waiting; best effort.
  /// Call only when no write is outstanding.
  void shutdown_tls() {
    if (!ssl_ || !SSL_is_init_finished(ssl_.get())) return;
    ERR_clear_error();
    (void)SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }

 private:
  struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
  };

  template <class MutableBuffers>
  static boost::asio::mutable_buffer first_nonempty(const MutableBuffers& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer b(*it);
      if (b.size() != 0) return b;
    }
    return {};
  }

  /// One OpenSSL call retried until it stops asking for socket readiness.
  /// `Io` is int(SSL*, size_t& n) returning 1 on success.
  template <class Io>
  class Op {
   public:
    Op(TlsStream& s, Io io) : s_(s), io_(std::move(io)) {}

    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      if (state_ == State::posted) return self.complete(ec_, n_);
      if (ec) return self.complete(ec, 0);  // socket closed: timeout, shutdown
      const bool first = state_ == State::starting;
      if (!s_.ssl_) return finish(self, first, boost::asio::error::bad_descriptor, 0);
      ERR_clear_error();
      size_t n = 0;
      const int ret = io_(s_.ssl_.get(), n);
      if (ret == 1) return finish(self, first, {}, n);
      switch (SSL_get_error(s_.ssl_.get(), ret)) {
        case SSL_ERROR_WANT_READ:
          state_ = State::waiting;
          return s_.socket_.async_wait(socket_type::wait_read, std::move(self));
        case SSL_ERROR_WANT_WRITE:
          state_ = State::waiting;
          return s_.socket_.async_wait(socket_type::wait_write, std::move(self));
        case SSL_ERROR_ZERO_RETURN:
          return finish(self, first, boost::asio::error::eof, 0);
        default:
          // Protocol errors, failed client certificates, resets: the
          // connection is unusable; the reason is of no use to the peer.
          ERR_clear_error();
          return finish(self, first, boost::asio::error::connection_aborted, 0);
      }
    }

   private:
    enum class State { starting, waiting, posted };

    template <class Self>
    void finish(Self& self, bool first, error_code ec, size_t n) {
      if (!first) return self.complete(ec, n);
      // Asio's rule, which Beast's composed operations rely on: a handler
      // never runs inside the initiating call.
      state_ = State::posted;
      ec_ = ec;
      n_ = n;
      boost::asio::post(s_.socket_.get_executor(), std::move(self));
    }

    TlsStream& s_;
    Io io_;
    State state_ = State::starting;
    error_code ec_;
    size_t n_ = 0;
  };

  template <class Io, class Handler>
  auto start(Io io, Handler&& handler) {
    return boost::asio::async_compose<Handler, void(error_code, size_t)>(
        Op<Io>(*this, std::move(io)), handler, socket_);
  }

  socket_type socket_;  // declared first: destroyed after SSL_free (SSL_set_fd never closes it)
  std::unique_ptr<SSL, SslFree> ssl_;
};

}  // namespace hoop::server
