// `hoopctl ship`: ships what earlier recorders left in the spool. A session
// whose .cast is locked is live and left alone; one without .json was
// abandoned (the recorder died): its file is all there is.

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/crypto.h"
#include "transcript/recorder.h"
#include "transcript/spool.h"

namespace hoop::transcript {
namespace {

// An abandoned empty file may be a recorder between create and its first
// write; give it this long.
constexpr time_t kFreshSeconds = 10;


SpoolShipResult ship_one(const SpoolDir& dir, const std::string& id, const UploaderFactory& factory,
                         std::chrono::seconds per_session) {
  SpoolShipResult res;
  res.session = id;
  auto fd = dir.open_cast_for_ship(id);
  if (!fd) {
    res.skipped = fd.error().code == Errc::conflict;
    res.detail = fd.error().message;
    return res;
  }
  auto meta = dir.read_meta(id);
  if (!meta) {
    res.detail = meta.error().message;
    return res;
  }
  uint64_t length = 0;
  std::string sha;
  std::optional<int> status;
  if (*meta && (*meta)->finished) {
    length = (*meta)->length;
    sha = (*meta)->sha256;
    status = (*meta)->exit_status;
  } else {
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) {
      res.detail = std::string("cannot stat the spool file: ") + std::strerror(errno);
      return res;
    }
    if (st.st_size == 0 && std::time(nullptr) - st.st_mtime < kFreshSeconds) {
      res.skipped = true;
      res.detail = "empty and new: a recorder may be starting";
      return res;
    }
    length = static_cast<uint64_t>(st.st_size);
    auto h = sha256_fd(fd->get(), "the spool file of session " + id, length);
    if (!h) {
      res.detail = h.error().message;
      return res;
    }
    sha = *h;
  }
  auto up = factory(id);
  if (!up) {
    res.detail = up.error().message;
    return res;
  }
  auto t = Transcript::from_file(std::move(*fd), length, sha);
  ShipReport rep;
  {
    Shipper sh(*t, **up);
    sh.start();
    rep = sh.finish(status, std::chrono::steady_clock::now() + per_session);
  }
  if (!rep.confirmed) {
    res.detail = rep.detail;
    return res;
  }
  if (auto s = dir.remove(id); !s) {  // still locked through t's fd
    res.detail = "confirmed, but " + s.error().message;
    return res;
  }
  res.confirmed = true;
  res.detail = rep.detail + (status ? "" : " (abandoned: no exit status)");
  return res;
}

}  // namespace

Result<std::vector<SpoolShipResult>> ship_spool(const std::string& spool_dir, const UploaderFactory& factory,
                                                std::chrono::seconds per_session,
                                                bool spool_dir_checked_elsewhere) {
  auto dir =
      spool_dir_checked_elsewhere ? SpoolDir::adopt_checked_elsewhere(spool_dir) : SpoolDir::open(spool_dir);
  if (!dir) return dir.error();
  auto ids = dir->list();
  if (!ids) return ids.error();
  std::vector<SpoolShipResult> out;
  for (const auto& id : *ids) out.push_back(ship_one(*dir, id, factory, per_session));
  return out;
}

}  // namespace hoop::transcript
