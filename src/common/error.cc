#include "common/error.h"

namespace hoop {

const char* errc_name(Errc c) {
  switch (c) {
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::unauthenticated: return "unauthenticated";
    case Errc::permission_denied: return "permission_denied";
    case Errc::not_found: return "not_found";
    case Errc::conflict: return "conflict";
    case Errc::too_large: return "too_large";
    case Errc::unavailable: return "unavailable";
    case Errc::timeout: return "timeout";
    case Errc::io: return "io";
    case Errc::internal: return "internal";
  }
  return "internal";
}

}  // namespace hoop
