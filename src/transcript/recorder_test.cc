#include "transcript/recorder.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/crypto.h"
#include "transcript/fake_uploader.h"
#include "transcript/spool.h"
#include "transcript/test_text.h"

namespace hoop::transcript {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct TempDir {
  std::string path;
  explicit TempDir(const char* base = "/tmp") {
    std::string t = std::string(base) + "/hoop-rec-XXXXXX";
    path = mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  bool exists(const std::string& name) const { return std::filesystem::exists(path + "/" + name); }
  std::string read(const std::string& name) const {
    std::ifstream f(path + "/" + name);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
};

RecorderOptions options(const TempDir& dir, std::shared_ptr<test::FakeServer> server, bool required) {
  RecorderOptions o;
  o.spool_dir = dir.path;
  o.spool_dir_checked_elsewhere = true;
  o.session_id = "sess-1";
  o.request_id = "req-1";
  o.header.user = "alice";
  o.header.argv = {"cat", "/etc/shadow"};
  o.mask_patterns = {"ghp_[A-Za-z0-9]{8}"};
  if (server) o.uploader = std::make_unique<test::FakeUploader>(server);
  o.required = required;
  o.shipper.backoff_min = 1ms;
  o.shipper.backoff_max = 20ms;
  o.transcript.sync_interval = 50ms;
  return o;
}

// Events of a transcript as (kind, text), concatenated per kind.
std::map<std::string, std::string> events(const std::string& cast, nlohmann::json* header = nullptr) {
  std::map<std::string, std::string> out;
  std::istringstream in(cast);
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (first) {
      if (header) *header = j;
      first = false;
      continue;
    }
    out[j[1].get<std::string>()] += j[2].get<std::string>();
  }
  return out;
}

TEST(Recorder, RecordsMasksAndShips) {
  TempDir dir;
  auto server = std::make_shared<test::FakeServer>();
  auto rec = Recorder::create(options(dir, server, true));
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  ASSERT_TRUE((*rec)->start().ok());
  EXPECT_TRUE(dir.exists("sess-1.cast"));
  pty::Observer o = (*rec)->observer();
  o.begin(100, 30, true);
  o.output("token: ghp_abc");  // a policy secret split across reads
  o.output("defgh ok\r\n");
  o.input("echo hi\r", true);
  o.input("hunter2\r", false);  // a no-echo prompt: never recorded
  o.resize(120, 40);
  o.output("password=s3cret\r\n");
  FinishReport r = (*rec)->finish(3, Clock::now() + 10s);
  EXPECT_TRUE(r.confirmed) << r.detail;
  EXPECT_FALSE(dir.exists("sess-1.cast"));
  EXPECT_FALSE(dir.exists("sess-1.json"));
  EXPECT_EQ(server->exit_status, 3);
  nlohmann::json h;
  auto ev = events(server->snapshot(), &h);
  EXPECT_EQ(h["width"], 100);
  EXPECT_EQ(h["hoop"]["session"], "sess-1");
  EXPECT_EQ(h["hoop"]["request"], "req-1");
  EXPECT_EQ(h["hoop"]["tty"], true);
  EXPECT_EQ(ev["o"], "token: [hoop:masked] ok\r\npassword=[hoop:masked]\r\n");
  EXPECT_EQ(ev["i"], "echo hi\r");
  EXPECT_EQ(ev["r"], "120x40");
  EXPECT_EQ(server->snapshot().find("hunter2"), std::string::npos);
}

TEST(Recorder, RequiredRefusesWithoutServerBestEffortSpools) {
  TempDir dir;
  auto server = std::make_shared<test::FakeServer>();
  server->down = true;
  {
    auto rec = Recorder::create(options(dir, server, true));
    ASSERT_TRUE(rec.ok());
    auto s = (*rec)->start();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, Errc::unavailable);
    EXPECT_NE(s.error().message.find("recording channel unavailable"), std::string::npos);
  }
  std::filesystem::remove(dir.path + "/sess-1.cast");

  auto rec = Recorder::create(options(dir, server, false));
  ASSERT_TRUE(rec.ok());
  ASSERT_TRUE((*rec)->start().ok());
  EXPECT_FALSE((*rec)->start_notice().empty());
  pty::Observer o = (*rec)->observer();
  o.begin(0, 0, false);  // pipe mode
  const std::string text = test::ordinary_text(300000);
  o.output(text);
  FinishReport r = (*rec)->finish(0, Clock::now() + 200ms);
  EXPECT_FALSE(r.confirmed);
  EXPECT_TRUE(r.in_spool) << r.detail;
  auto meta = parse_spool_meta(dir.read("sess-1.json"));
  ASSERT_TRUE(meta.ok());
  EXPECT_TRUE(meta->finished);
  EXPECT_EQ(meta->exit_status, 0);
  EXPECT_EQ(meta->length, r.length);
  const std::string cast = dir.read("sess-1.cast");
  EXPECT_EQ(sha256_hex(cast), meta->sha256);
  nlohmann::json h;
  EXPECT_EQ(events(cast, &h)["o"], text);
  EXPECT_EQ(h["hoop"]["tty"], false);
  EXPECT_EQ(h["width"], 80);
  rec->reset();  // the recorder is gone (its lock too)

  // `hoopctl ship` later, the server back.
  server->down = false;
  auto res = ship_spool(
      dir.path,
      [&](const std::string&) -> Result<std::unique_ptr<Uploader>> {
        return std::unique_ptr<Uploader>(std::make_unique<test::FakeUploader>(server));
      },
      10s, true);
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->size(), 1u);
  EXPECT_TRUE((*res)[0].confirmed) << (*res)[0].detail;
  EXPECT_EQ(server->snapshot(), cast);
  EXPECT_EQ(server->exit_status, 0);
  EXPECT_FALSE(dir.exists("sess-1.cast"));
  EXPECT_FALSE(dir.exists("sess-1.json"));
}

TEST(ShipSpool, AbandonedShippedLiveSkippedPartialResumed) {
  TempDir dir;
  auto spool = SpoolDir::adopt_checked_elsewhere(dir.path);
  ASSERT_TRUE(spool.ok());
  const std::string body = "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.1, \"o\", \"abandoned\"]\n";
  {
    auto fd = spool->create_cast("dead");
    ASSERT_TRUE(fd.ok());
    ASSERT_EQ(::write(fd->get(), body.data(), body.size()), static_cast<ssize_t>(body.size()));
  }                                        // closed: the recorder died
  auto live = spool->create_cast("live");  // still locked by "a recorder"
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(::write(live->get(), "x", 1), 1);

  std::map<std::string, std::shared_ptr<test::FakeServer>> servers;
  servers["dead"] = std::make_shared<test::FakeServer>();
  servers["dead"]->data = body.substr(0, 10);  // an earlier upload got this far
  servers["dead"]->fail_after_every = 2;
  servers["live"] = std::make_shared<test::FakeServer>();
  auto res = ship_spool(
      dir.path,
      [&](const std::string& id) -> Result<std::unique_ptr<Uploader>> {
        return std::unique_ptr<Uploader>(std::make_unique<test::FakeUploader>(servers.at(id)));
      },
      10s, true);
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->size(), 2u);
  EXPECT_EQ((*res)[0].session, "dead");
  EXPECT_TRUE((*res)[0].confirmed) << (*res)[0].detail;
  EXPECT_EQ(servers["dead"]->snapshot(), body);
  EXPECT_FALSE(servers["dead"]->exit_status.has_value());
  EXPECT_TRUE(servers["dead"]->is_completed());
  EXPECT_FALSE(dir.exists("dead.cast"));
  EXPECT_EQ((*res)[1].session, "live");
  EXPECT_TRUE((*res)[1].skipped);
  EXPECT_FALSE((*res)[1].confirmed);
  EXPECT_TRUE(dir.exists("live.cast"));
  EXPECT_EQ(servers["live"]->probes, 0);
}

TEST(Spool, FilesAreRootOnlyAndLinksRefused) {
  TempDir dir;
  auto spool = SpoolDir::adopt_checked_elsewhere(dir.path);
  ASSERT_TRUE(spool.ok());
  auto fd = spool->create_cast("a");
  ASSERT_TRUE(fd.ok());
  struct stat st {};
  ASSERT_EQ(::fstat(fd->get(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(spool->create_cast("a").error().code, Errc::conflict);
  EXPECT_FALSE(spool->create_cast("../x").ok());
  EXPECT_FALSE(spool->create_cast(".hidden").ok());
  ASSERT_EQ(::symlink("/etc/passwd", (dir.path + "/b.cast").c_str()), 0);
  EXPECT_FALSE(spool->create_cast("b").ok());
  EXPECT_FALSE(spool->open_cast_for_ship("b").ok());
  SpoolMeta m{"a", "r", 5, std::string(64, 'a'), std::nullopt, true};
  ASSERT_TRUE(spool->write_meta(m).ok());
  auto back = spool->read_meta("a");
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->length, 5u);
  EXPECT_FALSE((*back)->exit_status.has_value());
  EXPECT_FALSE(dir.exists("a.json.tmp"));
  auto ids = spool->list();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"a", "b"}));
}

TEST(Spool, OpenChecksTrustAndCreates0700) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (root-owned directories)";
  // /tmp is sticky and world-writable: never trusted.
  TempDir tmp;
  auto bad = SpoolDir::open(tmp.path + "/spool");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("writable by others"), std::string::npos) << bad.error().message;
  // A root-only parent of our own under /run (or /var/lib).
  const char* base = std::filesystem::exists("/run") ? "/run" : "/var/lib";
  TempDir parent(base);
  ASSERT_EQ(::chmod(parent.path.c_str(), 0755), 0);
  auto ok = SpoolDir::open(parent.path + "/spool");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  struct stat st {};
  ASSERT_EQ(::stat((parent.path + "/spool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::chmod((parent.path + "/spool").c_str(), 0770), 0);
  auto gw = SpoolDir::open(parent.path + "/spool");
  ASSERT_FALSE(gw.ok());
  EXPECT_NE(gw.error().message.find("chmod go-w"), std::string::npos) << gw.error().message;
}

// A real full disk: a 64 KiB tmpfs in a private mount namespace (root
// only). The recording goes on through the server; nothing is lost.
TEST(Recorder, DiskFullSpoolStillShipsEverything) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount)";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto fail = [](const std::string& why) {
      std::fprintf(stderr, "child: %s\n", why.c_str());
      std::_Exit(1);
    };
    if (::unshare(CLONE_NEWNS) != 0) std::_Exit(77);
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) std::_Exit(77);
    TempDir dir;
    if (::mount("tmpfs", dir.path.c_str(), "tmpfs", 0, "size=64k,mode=0700") != 0) std::_Exit(77);
    auto server = std::make_shared<test::FakeServer>();
    auto o = options(dir, server, true);
    o.transcript.ring_bytes = 128 * 1024;
    int stalls = 0;
    o.notice = [&](const std::string&) { ++stalls; };
    auto rec = Recorder::create(std::move(o));
    if (!rec.ok()) fail(rec.error().message);
    if (!(*rec)->start().ok()) fail("start");
    pty::Observer ob = (*rec)->observer();
    ob.begin(80, 24, true);
    const std::string text = test::ordinary_text(2 << 20);
    for (size_t off = 0; off < text.size(); off += 4096) ob.output(std::string_view(text).substr(off, 4096));
    FinishReport r = (*rec)->finish(0, Clock::now() + 20s);
    if (!r.confirmed) fail("not confirmed: " + r.detail);
    if (events(server->snapshot())["o"] != text) fail("server copy differs");
    if (dir.exists("sess-1.cast")) fail("spool file left behind");
    ::umount(dir.path.c_str());
    std::_Exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no mount namespace here";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace hoop::transcript

namespace hoop::transcript {
namespace {

// What the relay thread pays per byte: mask, encode, hash, ring (the spool
// thread writes the file meanwhile). Printed, not asserted.
TEST(RecorderBench, RelayPathHundredMegabytes) {
  TempDir dir;
  auto o = options(dir, nullptr, false);
  auto rec = Recorder::create(std::move(o));
  ASSERT_TRUE(rec.ok());
  ASSERT_TRUE((*rec)->start().ok());
  pty::Observer ob = (*rec)->observer();
  ob.begin(80, 24, true);
  const std::string chunk = test::ordinary_text(4096);  // a pty read
  const size_t total = size_t{100} << 20;
  const auto t0 = Clock::now();
  for (size_t done = 0; done < total; done += chunk.size()) ob.output(chunk);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("[bench] recorder relay path: %.0f MB/s (4 KiB reads, spool on %s)\n",
              static_cast<double>(total) / 1e6 / s, dir.path.c_str());
  FinishReport r = (*rec)->finish(0, Clock::now() + 30s);
  EXPECT_TRUE(r.in_spool) << r.detail;
  EXPECT_GT(r.length, total);
}

}  // namespace
}  // namespace hoop::transcript
