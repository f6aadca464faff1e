#include "transcript/transcript.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "common/crypto.h"
#include "transcript/fake_uploader.h"
#include "transcript/shipper.h"
#include "transcript/test_text.h"

namespace hoop::transcript {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/hoop-rec-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  sys::Fd file(const std::string& name) const {
    return sys::Fd(::open((path + "/" + name).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  }
};

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Appends `data` in uneven pieces, as relay reads would come.
void write_pieces(Transcript& t, const std::string& data, unsigned seed) {
  std::mt19937 rng(seed);
  for (size_t off = 0; off < data.size();) {
    const size_t n = std::min<size_t>(data.size() - off, 1 + rng() % 70000);
    ASSERT_TRUE(t.append(std::string_view(data).substr(off, n)).ok());
    off += n;
  }
}

std::string read_all(Transcript& t) {
  std::string all, chunk;
  while (all.size() < t.length()) {
    auto s = t.read(all.size(), 100000, chunk);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    if (!s.ok()) break;
    all += chunk;
  }
  return all;
}

TranscriptOptions small_ring() {
  TranscriptOptions o;
  o.ring_bytes = 64 * 1024;
  o.sync_interval = 50ms;
  o.retry_interval = 50ms;
  o.spool_batch = 16 * 1024;
  return o;
}

TEST(Transcript, RingSpillsToSpoolAndReadsBackEverything) {
  TempDir dir;
  const std::string data = random_bytes(3 << 20, 1);
  Transcript t(dir.file("s.cast"), small_ring());
  write_pieces(t, data, 2);
  t.close();
  EXPECT_EQ(t.sha256_hex(), sha256_hex(data));
  ASSERT_TRUE(t.drain_spool(Clock::now() + 5s).ok());
  EXPECT_EQ(t.spooled(), data.size());
  EXPECT_EQ(read_all(t), data);  // early bytes from the file, late ones from the ring
  std::string file;
  {
    auto fd = sys::Fd(::open((dir.path + "/s.cast").c_str(), O_RDONLY));
    file.resize(data.size() + 1);
    EXPECT_EQ(::read(fd.get(), file.data(), file.size()), static_cast<ssize_t>(data.size()));
    file.resize(data.size());
  }
  EXPECT_EQ(file, data);
}

TEST(Transcript, SyncsWithinTheIntervalWhileIdle) {
  TempDir dir;
  Transcript t(dir.file("s.cast"), small_ring());
  ASSERT_TRUE(t.append("a few bytes").ok());
  for (int i = 0; i < 100 && t.spooled() < 11; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(t.spooled(), 11u);  // written without a close and below the batch size
}

// No spool and no acknowledgement: the writer must wait, never drop.
TEST(Transcript, BackPressureWithoutSpoolUntilAcknowledged) {
  TranscriptOptions o = small_ring();
  std::atomic<int> stalls{0}, resumes{0};
  o.on_stall = [&](bool stalled, const std::string& why) {
    (stalled ? stalls : resumes)++;
    EXPECT_TRUE(!stalled || why.find("no spool") != std::string::npos) << why;
  };
  Transcript t(sys::Fd(), o);
  const std::string data = random_bytes(5 * 64 * 1024, 3);
  std::thread writer([&] { write_pieces(t, data, 4); });
  for (int i = 0; i < 500 && !t.stalled(); ++i) std::this_thread::sleep_for(2ms);
  ASSERT_TRUE(t.stalled());
  EXPECT_EQ(t.length(), 64u * 1024);  // exactly the ring, not a byte more
  std::string got, chunk;
  for (int i = 0; i < 10000 && got.size() < data.size(); ++i) {
    t.wait_for_data(got.size(), Clock::now() + 100ms);
    ASSERT_TRUE(t.read(got.size(), 10000, chunk).ok());
    got += chunk;
    t.acknowledge(got.size());
  }
  writer.join();
  EXPECT_EQ(got, data);
  EXPECT_GE(stalls.load(), 1);
  EXPECT_EQ(stalls.load(), resumes.load());
}

// A spool that cannot be written (as on a full disk): acknowledged bytes
// may leave the ring, others may not.
TEST(Transcript, FullDiskSpoolFallsBackToAcknowledgements) {
  TranscriptOptions o = small_ring();
  Transcript t(sys::Fd(::open("/dev/full", O_WRONLY | O_CLOEXEC)), o);
  const std::string data = random_bytes(400 * 1024, 5);
  std::thread writer([&] { write_pieces(t, data, 6); });
  for (int i = 0; i < 500 && !t.stalled(); ++i) std::this_thread::sleep_for(2ms);
  ASSERT_TRUE(t.stalled());
  EXPECT_NE(t.spool_error().find("No space left"), std::string::npos) << t.spool_error();
  std::string got, chunk;
  for (int i = 0; i < 10000 && got.size() < data.size(); ++i) {
    t.wait_for_data(got.size(), Clock::now() + 100ms);
    ASSERT_TRUE(t.read(got.size(), 30000, chunk).ok());
    got += chunk;
    t.acknowledge(got.size());
  }
  writer.join();
  EXPECT_EQ(got, data);
  t.close();
  EXPECT_FALSE(t.drain_spool(Clock::now() + 100ms).ok());
}

struct Shipping {
  TempDir dir;
  std::shared_ptr<test::FakeServer> server = std::make_shared<test::FakeServer>();
  test::FakeUploader up{server};
  ShipperOptions fast() {
    ShipperOptions o;
    o.max_chunk = 100 * 1024;
    o.backoff_min = 1ms;
    o.backoff_max = 20ms;
    return o;
  }
};

TEST(Shipper, FlakyLyingServerEndsByteIdentical) {
  Shipping s;
  s.server->fail_before_every = 5;
  s.server->fail_after_every = 3;
  s.server->lie_longer = 2;
  Transcript t(s.dir.file("s.cast"), small_ring());
  Shipper sh(t, s.up, s.fast());
  sh.start();
  const std::string data = random_bytes(2 << 20, 7);
  write_pieces(t, data, 8);
  {
    std::lock_guard lk(s.server->mu);
    s.server->lose_tail_once = true;  // the server loses bytes it had acknowledged
  }
  ShipReport r = sh.finish(7, Clock::now() + 20s);
  EXPECT_TRUE(r.confirmed) << r.detail;
  EXPECT_EQ(s.server->snapshot(), data);
  EXPECT_EQ(s.server->exit_status, 7);
  EXPECT_EQ(r.sha256, sha256_hex(data));
  EXPECT_GT(s.server->probes, 3);
}

TEST(Shipper, ServerAwayLeavesItUnconfirmedByTheDeadline) {
  Shipping s;
  s.server->down = true;
  Transcript t(s.dir.file("s.cast"), small_ring());
  Shipper sh(t, s.up, s.fast());
  sh.start();
  ASSERT_TRUE(t.append("hello").ok());
  const auto t0 = Clock::now();
  ShipReport r = sh.finish(0, Clock::now() + 300ms);
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_FALSE(r.confirmed);
  EXPECT_NE(r.detail.find("connection refused"), std::string::npos) << r.detail;
  EXPECT_TRUE(t.drain_spool(Clock::now() + 2s).ok());  // all of it is in the spool
}

TEST(Shipper, FullDiskAndServerBackLater) {
  Shipping s;
  s.server->down = true;
  std::atomic<int> stalls{0};
  TranscriptOptions o = small_ring();
  o.on_stall = [&](bool stalled, const std::string&) { stalls += stalled ? 1 : 0; };
  Transcript t(sys::Fd(::open("/dev/full", O_WRONLY | O_CLOEXEC)), o);
  Shipper sh(t, s.up, s.fast());
  sh.start();
  const std::string data = test::ordinary_text(1 << 20);
  std::thread writer([&] { write_pieces(t, data, 9); });
  for (int i = 0; i < 500 && !t.stalled(); ++i) std::this_thread::sleep_for(2ms);
  EXPECT_TRUE(t.stalled());
  {
    std::lock_guard lk(s.server->mu);
    s.server->down = false;
  }
  writer.join();
  ShipReport r = sh.finish(std::nullopt, Clock::now() + 20s);
  EXPECT_TRUE(r.confirmed) << r.detail;
  EXPECT_EQ(s.server->snapshot(), data);
  EXPECT_GE(stalls.load(), 1);
}

}  // namespace
}  // namespace hoop::transcript
