#include "pty/terminal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <unistd.h>

namespace hoop::pty {
namespace {

struct Outer {
  Fd master;
  Fd slave;
  Outer() {
    int m = -1;
    int s = -1;
    EXPECT_EQ(openpty(&m, &s, nullptr, nullptr, nullptr), 0);
    master.reset(m);
    slave.reset(s);
  }
};

bool is_open(int fd) {
  return fcntl(fd, F_GETFD) >= 0;
}

TEST(Fd, ClosesOnDestructionAndMoves) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  close(p[1]);
  {
    Fd a(p[0]);
    Fd b(std::move(a));
    EXPECT_FALSE(a.valid());  // NOLINT: testing the moved-from state is the point
    EXPECT_EQ(b.get(), p[0]);
    EXPECT_TRUE(is_open(p[0]));
  }
  EXPECT_FALSE(is_open(p[0]));
}

TEST(RawMode, EntersRawAndRestoresExactly) {
  Outer t;
  auto before = get_termios(t.slave.get());
  ASSERT_TRUE(before.ok());
  {
    RawMode raw;
    ASSERT_TRUE(raw.enter(t.slave.get()).ok());
    auto during = get_termios(t.slave.get());
    ASSERT_TRUE(during.ok());
    EXPECT_EQ(during->c_lflag & (ICANON | ECHO | ISIG | IEXTEN), 0u);
    EXPECT_EQ(during->c_oflag & OPOST, 0u);
    EXPECT_EQ(during->c_cc[VMIN], 1);
  }  // destructor restores
  auto after = get_termios(t.slave.get());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->c_lflag, before->c_lflag);
  EXPECT_EQ(after->c_iflag, before->c_iflag);
  EXPECT_EQ(after->c_oflag, before->c_oflag);
}

TEST(RawMode, ReenterSavesWhatTheCallerChangedMeanwhile) {
  Outer t;
  RawMode raw;
  ASSERT_TRUE(raw.enter(t.slave.get()).ok());
  EXPECT_TRUE(raw.restore());
  EXPECT_FALSE(raw.active());
  auto changed = get_termios(t.slave.get());
  ASSERT_TRUE(changed.ok());
  changed->c_lflag &= ~static_cast<tcflag_t>(ECHO);  // as `stty -echo` while we were stopped
  ASSERT_TRUE(set_termios(t.slave.get(), *changed).ok());
  ASSERT_TRUE(raw.reenter().ok());
  EXPECT_TRUE(raw.active());
  EXPECT_TRUE(raw.restore());
  auto after = get_termios(t.slave.get());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->c_lflag, changed->c_lflag);
}

TEST(RawMode, ReapplyUndoesAShellResettingTheMode) {
  Outer t;
  auto cooked = get_termios(t.slave.get());
  ASSERT_TRUE(cooked.ok());
  RawMode raw;
  ASSERT_TRUE(raw.enter(t.slave.get()).ok());
  ASSERT_TRUE(set_termios(t.slave.get(), *cooked).ok());  // the shell put its mode back
  ASSERT_TRUE(raw.reapply().ok());
  EXPECT_EQ(get_termios(t.slave.get())->c_lflag & ICANON, 0u);
  EXPECT_TRUE(raw.restore());
  EXPECT_EQ(get_termios(t.slave.get())->c_lflag, cooked->c_lflag);  // the first saved mode
}

TEST(RawMode, FailsCleanlyOnSomethingThatIsNoTerminal) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Fd r(p[0]);
  Fd w(p[1]);
  RawMode raw;
  EXPECT_FALSE(raw.enter(r.get()).ok());
  EXPECT_FALSE(raw.active());
}

TEST(OpenPty, CopiesModeAndSizeAndIsCloseOnExec) {
  Outer t;
  auto mode = get_termios(t.slave.get());
  ASSERT_TRUE(mode.ok());
  mode->c_lflag &= ~static_cast<tcflag_t>(ECHO);
  const winsize size{51, 173, 0, 0};
  auto p = open_pty(*mode, size);
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto got = get_window_size(p->slave.get());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->ws_row, 51);
  EXPECT_EQ(got->ws_col, 173);
  EXPECT_FALSE(echo_enabled(p->master.get()));  // the master reports the slave's mode
  EXPECT_TRUE(fcntl(p->master.get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(fcntl(p->slave.get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(fcntl(p->master.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_FALSE(fcntl(p->slave.get(), F_GETFL) & O_NONBLOCK);

  mode->c_lflag |= ECHO;
  ASSERT_TRUE(set_termios(p->slave.get(), *mode).ok());
  EXPECT_TRUE(echo_enabled(p->master.get()));

  ASSERT_TRUE(set_window_size(p->master.get(), winsize{10, 20, 0, 0}).ok());
  EXPECT_EQ(get_window_size(p->slave.get())->ws_col, 20);
}

TEST(OpenPipe, OnlyTheMonitorsEndIsNonBlocking) {
  auto p = open_pipe(true);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(fcntl(p->read.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_FALSE(fcntl(p->write.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(p->read.get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(fcntl(p->write.get(), F_GETFD) & FD_CLOEXEC);
  auto q = open_pipe(false);
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(fcntl(q->read.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(fcntl(q->write.get(), F_GETFL) & O_NONBLOCK);
}

TEST(EchoEnabled, UnknownCountsAsNoEcho) {
  EXPECT_FALSE(echo_enabled(-1));
}

}  // namespace
}  // namespace hoop::pty
