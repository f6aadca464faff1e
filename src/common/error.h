#pragma once
// One error type for the whole decision path, and Result<T> to carry it.
// Third-party exceptions are caught at module edges and turned into Error;
// only main() prints an Error and exits.

#include <string>
#include <utility>
#include <variant>

namespace hoop {

/// What kind of failure; the server maps it to an HTTP status and the CLI to
/// an exit code, so keep the list short and meaningful.
enum class Errc {
  invalid_argument,   // hostile or malformed input (400)
  unauthenticated,    // missing, bad or revoked credential (401)
  permission_denied,  // authenticated but not allowed (403)
  not_found,          // unknown id (404)
  conflict,           // state does not allow the transition (409)
  too_large,          // body or field over a limit (413)
  unavailable,        // server unreachable, storage busy (503)
  timeout,            // wait ran out
  io,                 // local file or system call failed
  internal,           // our bug
};

const char* errc_name(Errc c);

struct Error {
  Errc code = Errc::internal;
  std::string message;
};

inline Error make_error(Errc c, std::string msg) { return Error{c, std::move(msg)}; }

/// A value or an Error. Check with `ok()` (or bool) before `value()`.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}                // NOLINT: implicit by design
  Result(Error e) : v_(std::move(e)) {}            // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : err_(std::move(e)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace hoop
