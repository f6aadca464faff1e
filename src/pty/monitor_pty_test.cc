// run_monitored with a terminal on the caller's side. The test creates that
// terminal (an "outer" pty whose master plays the terminal emulator) and
// makes it the monitor child's controlling terminal and fds 0-2.

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "pty/monitor.h"
#include "pty/monitor_test_harness.h"

namespace hoop::pty {
namespace {

using testing::Harness;
using testing::mode_of;
using testing::Outcome;
using testing::same_mode;

void type(int master, std::string_view s) {
  ASSERT_EQ(write(master, s.data(), s.size()), ssize_t(s.size()));
}

void expect_finished(const Outcome& o) {
  EXPECT_FALSE(o.timed_out);
  ASSERT_TRUE(o.got_report);
  EXPECT_EQ(o.report.ok, 1) << o.report.error;
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

TEST(MonitorPty, CommandGetsANewTerminalWithTheCallersSize) {
  Harness h;
  h.size = {30, 100, 0, 0};
  h.open_outer();
  const std::string outer_name = ttyname(h.slave);
  h.cmd = "test -t 0 && test -t 1 && test -t 2 && echo TTY; stty size; tty";
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  EXPECT_TRUE(contains(o.out, "TTY\r\n30 100\r\n/dev/pts/")) << o.out;
  EXPECT_FALSE(contains(o.out, outer_name + "\r\n")) << "the command got the caller's terminal";
  EXPECT_EQ(o.report.begin_calls, 1);
  EXPECT_EQ(o.report.begin_cols, 100u);
  EXPECT_EQ(o.report.begin_rows, 30u);
  EXPECT_EQ(o.report.output_bytes, o.out_bytes);
  EXPECT_EQ(o.report.fd_growth, 0);
}

TEST(MonitorPty, ResizeReachesTheCommandAndTheObserver) {
  Harness h;
  h.cmd = "stty size; echo READY; read x; stty size";
  h.steps.push_back({"READY", [&h] {
                       winsize ws{40, 120, 0, 0};
                       ioctl(h.master, TIOCSWINSZ, &ws);  // the kernel sends SIGWINCH to the monitor
                       kill(h.monitor, SIGWINCH);
                       type(h.master, "\r");
                     }});
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_TRUE(contains(o.out, "30 100\r\nREADY")) << o.out;
  EXPECT_TRUE(contains(o.out, "40 120\r\n")) << o.out;
  EXPECT_GE(o.report.resizes, 1u);
  EXPECT_EQ(o.report.resize_cols, 120u);
  EXPECT_EQ(o.report.resize_rows, 40u);
}

TEST(MonitorPty, InputIsFlaggedNoEchoWhileTheCommandTurnedEchoOff) {
  Harness h;
  h.cmd = "stty -echo; echo READY; read x; stty echo; echo READY2; read y; echo \"got:$x:$y\"";
  h.steps.push_back({"READY", [&h] { type(h.master, "secret\r"); }});
  h.steps.push_back({"READY2", [&h] { type(h.master, "visible\r"); }});
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_TRUE(contains(o.out, "got:secret:visible")) << o.out;
  const std::string shown = o.out.substr(0, o.out.find("READY2"));
  EXPECT_FALSE(contains(shown, "secret")) << "echoed while echo was off";
  EXPECT_EQ(std::string(o.report.noecho_input, o.report.noecho_len), "secret\r");
  EXPECT_EQ(std::string(o.report.echo_input, o.report.echo_len), "visible\r");
}

TEST(MonitorPty, CallerTerminalIsRawDuringTheRunAndRestoredAfter) {
  Harness h;
  h.open_outer();
  const termios before = mode_of(h.slave);
  termios during{};
  h.cmd = "echo READY; read x";
  h.steps.push_back({"READY", [&] {
                       during = mode_of(h.slave);
                       type(h.master, "\r");
                     }});
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  EXPECT_EQ(during.c_lflag & (ICANON | ECHO | ISIG), 0u) << "not raw while the command ran";
  EXPECT_TRUE(same_mode(before, mode_of(h.slave)));
}

TEST(MonitorPty, SignalToTheMonitorEndsTheCommandAndRestoresTheTerminal) {
  for (int sig : {SIGTERM, SIGHUP, SIGINT}) {
    Harness h;
    h.open_outer();
    const termios before = mode_of(h.slave);
    h.cmd = "echo PID $$ READY; exec sleep 30";
    h.steps.push_back({"READY", [&h, sig] {
                         ASSERT_TRUE(h.wait_exec("PID"));
                         kill(h.monitor, sig);
                       }});
    Outcome o = h.run();
    expect_finished(o);
    EXPECT_EQ(o.report.status, 128 + sig) << strsignal(sig);
    EXPECT_LT(o.seconds, 10.0);
    EXPECT_TRUE(same_mode(before, mode_of(h.slave))) << strsignal(sig);
  }
}

TEST(MonitorPty, CtrlCTypedReachesTheCommandThroughItsOwnTerminal) {
  Harness h;
  h.cmd = "echo PID $$ READY; exec sleep 30";
  h.steps.push_back({"READY", [&h] {
                       ASSERT_TRUE(h.wait_exec("PID"));
                       type(h.master, "\x03");
                     }});
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 128 + SIGINT);
  EXPECT_EQ(std::string(o.report.echo_input, o.report.echo_len), "\x03");
}

TEST(MonitorPty, LargeOutputIsDrainedCompletelyInBoundedMemory) {
  constexpr uint64_t kBytes = 20'000'000;
  Harness h;
  h.cmd = "head -c 20000000 /dev/zero";
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  EXPECT_EQ(o.out_bytes, kBytes);
  EXPECT_EQ(o.report.output_bytes, kBytes);
  EXPECT_LT(o.report.rss_growth_kb, 16 * 1024);
}

// The relay writes the caller's terminal through a non-blocking file of its
// own (a second open of the same device), never by setting O_NONBLOCK on the
// caller's, which the shell shares. A terminal that stops reading for a while
// still gets every byte in order.
TEST(MonitorPty, SlowTerminalGetsEveryByteAndKeepsItsFlags) {
  Harness h;
  h.open_outer();
  const int flags_before = fcntl(h.slave, F_GETFL);
  const std::string tty = ttyname(h.slave);
  int flags_during = -1;
  int opens_of_tty = 0;
  h.cmd = "echo READY; seq 1 200000";
  h.steps.push_back({"READY", [&] {
                       flags_during = fcntl(h.slave, F_GETFL);
                       const std::string dir = "/proc/" + std::to_string(h.monitor) + "/fd";
                       if (DIR* d = opendir(dir.c_str())) {
                         while (dirent* e = readdir(d)) {
                           char target[256] = {};
                           const std::string link = dir + "/" + e->d_name;
                           const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
                           if (n > 0 && tty == target) ++opens_of_tty;
                         }
                         closedir(d);
                       }
                       usleep(300'000);  // the terminal reads nothing meanwhile
                     }});
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  std::string want = "READY\r\n";
  for (int i = 1; i <= 200000; ++i) want += std::to_string(i) + "\r\n";
  EXPECT_EQ(o.out, want);
  EXPECT_EQ(flags_during, flags_before);
  EXPECT_EQ(fcntl(h.slave, F_GETFL), flags_before);
  EXPECT_EQ(flags_before & O_NONBLOCK, 0);
  EXPECT_EQ(opens_of_tty, 4) << "fds 0-2 and the relay's own non-blocking open";
}

TEST(MonitorPty, TiocstiLandsInTheCommandsOwnTerminal) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/python3";
  Harness h;
  h.cmd =
      "/usr/bin/python3 -c '\n"
      "import fcntl, termios, sys\n"
      "try:\n"
      "    for b in (b\"x\", b\"\\n\"):\n"
      "        fcntl.ioctl(0, termios.TIOCSTI, b)\n"
      "except OSError as e:\n"
      "    print(\"REFUSED\", e.errno, flush=True)\n"
      "else:\n"
      "    print(\"INJECTED\", flush=True)\n"
      "    print(\"got[\" + sys.stdin.readline().strip() + \"]\", flush=True)\n"
      "'";
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0) << o.out;
  int pending = -1;
  ASSERT_EQ(ioctl(h.slave, FIONREAD, &pending), 0);
  EXPECT_EQ(pending, 0) << "bytes were pushed into the caller's terminal";
  EXPECT_EQ(o.report.input_bytes, 0u) << "the monitor read injected bytes from the caller's terminal";
  if (contains(o.out, "INJECTED")) {
    EXPECT_TRUE(contains(o.out, "got[x]")) << o.out;
  } else {  // dev.tty.legacy_tiocsti=0 (Linux 6.2+)
    EXPECT_TRUE(contains(o.out, "REFUSED 5") || contains(o.out, "REFUSED 1")) << o.out;
  }
}

TEST(MonitorPty, CallerHangupNeitherSpinsNorHoldsTheCommand) {
  Harness h;
  h.cmd = "trap '' HUP; echo READY; sleep 2; echo done";
  h.steps.push_back({"READY", [&h] {
                       close(h.master);  // the terminal emulator goes away
                       h.master = -1;
                     }});
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);  // it ignores SIGHUP, so it finishes
  const double cpu = double(o.usage.ru_utime.tv_sec + o.usage.ru_stime.tv_sec) +
                     double(o.usage.ru_utime.tv_usec + o.usage.ru_stime.tv_usec) / 1e6;
  EXPECT_LT(cpu, 0.5) << "the monitor busy-looped on a hung-up terminal";
}

TEST(MonitorPty, RedirectedStdoutGetsAPipeNotThePty) {
  Harness h;
  h.stdout_to_pipe = true;
  h.cmd = "test -t 0 && echo in-tty; test -t 1 || echo out-pipe; printf 'a\\nb\\n'";
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.out, "in-tty\nout-pipe\na\nb\n");  // no CRLF from the pty
}

TEST(MonitorPty, WithoutPtyTheTerminalIsRelayedNeverPassed) {
  Harness h;
  h.use_pty = false;
  h.cmd = "test -t 0 || echo stdin-no-tty; echo READY; cat; echo END";
  h.steps.push_back({"READY", [&h] { type(h.master, "hello\n\x04"); }});
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  EXPECT_TRUE(contains(o.out, "stdin-no-tty")) << o.out;
  EXPECT_TRUE(contains(o.out, "hello\r\nEND")) << o.out;  // cat's copy, then EOF passed on
  EXPECT_EQ(std::string(o.report.echo_input, o.report.echo_len), "hello\n");
}

TEST(MonitorPty, WithoutPtyCtrlCIsForwarded) {
  Harness h;
  h.use_pty = false;
  h.cmd = "echo PID $$ READY; exec sleep 30";
  h.steps.push_back({"READY", [&h] {
                       ASSERT_TRUE(h.wait_exec("PID"));
                       type(h.master, "\x03");
                     }});  // SIGINT to the monitor's group
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 128 + SIGINT);
}

TEST(MonitorPty, FailedStartRestoresTheTerminalAndClosesEveryFd) {
  Harness h;
  h.open_outer();
  const termios before = mode_of(h.slave);
  h.fail_start = true;
  h.cmd = "true";
  Outcome o = h.run();
  ASSERT_TRUE(o.got_report);
  EXPECT_EQ(o.report.ok, 0);
  EXPECT_EQ(o.report.fd_growth, 0);
  EXPECT_TRUE(same_mode(before, mode_of(h.slave)));
}

TEST(MonitorPty, StoppedCommandIsContinuedAndTheTerminalRestored) {
  Harness h;
  h.open_outer();
  const termios before = mode_of(h.slave);
  h.cmd = "kill -STOP $$; echo resumed";
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  EXPECT_TRUE(contains(o.out, "resumed")) << o.out;
  EXPECT_TRUE(same_mode(before, mode_of(h.slave)));
}

TEST(MonitorPty, DescendantHoldingThePtyDoesNotHoldTheMonitor) {
  Harness h;
  // The pipe into `read` makes the shell wait until the background job
  // ignores the SIGHUP that the shell's exit sends its process group.
  h.cmd = "{ (trap '' HUP; echo ok; exec sleep 6 >/dev/tty) & } | read x; echo done";
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  EXPECT_TRUE(contains(o.out, "done")) << o.out;
  EXPECT_LT(o.seconds, 4.0);
}

}  // namespace
}  // namespace hoop::pty
