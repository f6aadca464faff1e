// run_monitored without a terminal on the caller's side (pipe mode), and
// what both modes share: exit status, fds, signals, draining.

#include "pty/monitor.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "pty/monitor_test_harness.h"

namespace hoop::pty {
namespace {

using testing::Harness;
using testing::Outcome;

Outcome run_pipe(const std::string& cmd) {
  Harness h;
  h.outer_pty = false;
  h.cmd = cmd;
  return h.run();
}

void expect_finished(const Outcome& o) {
  EXPECT_FALSE(o.timed_out);
  ASSERT_TRUE(o.got_report);
  EXPECT_EQ(o.report.ok, 1) << o.report.error;
}

TEST(MonitorPipe, ExitStatusIsTheCommands) {
  for (auto [cmd, want] : {std::pair{"exit 0", 0}, {"exit 3", 3}, {"kill -9 $$", 128 + 9}}) {
    Outcome o = run_pipe(cmd);
    expect_finished(o);
    EXPECT_EQ(o.report.status, want) << cmd;
  }
}

TEST(MonitorPipe, StdoutAndStderrStaySeparateAndByteExact) {
  Outcome o = run_pipe(
      "if test -t 0 || test -t 1 || test -t 2; then echo tty; fi;"
      "printf 'out\\000\\001\\377\\r\\nline\\n'; printf 'err\\n' >&2; printf more");
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  constexpr char kOut[] = "out\0\1\377\r\nline\nmore";
  EXPECT_EQ(o.out, std::string(kOut, sizeof kOut - 1));
  EXPECT_EQ(o.err, "err\n");
  EXPECT_EQ(o.report.output_bytes, o.out.size() + o.err.size());
  EXPECT_EQ(o.report.begin_calls, 1);
  EXPECT_EQ(o.report.begin_cols, 0u);
  EXPECT_EQ(o.report.fd_growth, 0);
}

TEST(MonitorPipe, LargeOutputRelaysCompletelyInBoundedMemory) {
  constexpr uint64_t kBytes = 50'000'000;
  Outcome o = run_pipe("head -c 50000000 /dev/zero; echo end >&2");
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  EXPECT_EQ(o.out_bytes, kBytes);
  EXPECT_EQ(o.report.output_bytes, kBytes + 4);  // stdout plus "end\n" on stderr
  EXPECT_EQ(o.err, "end\n");
  EXPECT_LT(o.report.rss_growth_kb, 16 * 1024) << "the monitor buffered the output";
}

TEST(MonitorPipe, StdinThatIsNoTerminalIsPassedDirectly) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(write(p[1], "hello\n", 6), 6);
  close(p[1]);
  struct stat st {};
  ASSERT_EQ(fstat(p[0], &st), 0);
  Harness h;
  h.outer_pty = false;
  h.stdin_fd = p[0];
  h.cmd = "stat -L -c %i /proc/self/fd/0; cat";
  Outcome o = h.run();
  close(p[0]);
  expect_finished(o);
  EXPECT_EQ(o.out, std::to_string(st.st_ino) + "\nhello\n");
  EXPECT_EQ(o.report.input_bytes, 0u);  // not relayed, so not observed
}

TEST(MonitorPipe, ClosedCallerStdoutGivesTheCommandSigpipe) {
  Harness h;
  h.outer_pty = false;
  h.close_stdout_reader = true;
  h.cmd = "yes";
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 128 + SIGPIPE);
}

TEST(MonitorPipe, DescendantHoldingTheOutputDoesNotHoldTheMonitor) {
  Outcome o = run_pipe("sleep 6 & echo done");
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  EXPECT_EQ(o.out, "done\n");
  EXPECT_LT(o.seconds, 4.0);
}

TEST(MonitorPipe, TerminatingSignalsAreForwarded) {
  for (int sig : {SIGTERM, SIGHUP, SIGINT}) {
    Harness h;
    h.outer_pty = false;
    h.cmd = "echo PID $$ READY; exec sleep 30";
    h.steps.push_back({"READY", [&h, sig] {
                         ASSERT_TRUE(h.wait_exec("PID"));
                         kill(h.monitor, sig);
                       }});
    Outcome o = h.run();
    expect_finished(o);
    EXPECT_EQ(o.report.status, 128 + sig) << strsignal(sig);
    EXPECT_LT(o.seconds, 10.0);
  }
}

TEST(MonitorPipe, StoppedCommandIsContinued) {
  // The harness's monitor heads an orphaned process group, so its own stop
  // is dropped by the kernel; what matters is that the command goes on.
  Outcome o = run_pipe("kill -STOP $$; echo resumed");
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  EXPECT_EQ(o.out, "resumed\n");
}

TEST(MonitorPipe, SigtstpToTheMonitorDoesNotLeaveTheCommandStopped) {
  Harness h;
  h.outer_pty = false;
  h.cmd = "echo READY; sleep 1; echo after";
  h.steps.push_back({"READY", [&h] { kill(h.monitor, SIGTSTP); }});
  Outcome o = h.run();
  expect_finished(o);
  EXPECT_EQ(o.report.status, 0);
  EXPECT_EQ(o.out, "READY\nafter\n");
}

TEST(MonitorPipe, FailedStartIsReportedAndClosesEveryFd) {
  Harness h;
  h.outer_pty = false;
  h.fail_start = true;
  h.cmd = "true";
  Outcome o = h.run();
  ASSERT_TRUE(o.got_report);
  EXPECT_EQ(o.report.ok, 0);
  EXPECT_STREQ(o.report.error, "start refused");
  EXPECT_EQ(o.report.fd_growth, 0);
}

TEST(MonitorPipe, SecondMonitorInOneProcessIsRefused) {
  // The signal relay is process-wide; a nested call must fail, not corrupt it.
  MonitorOptions mo;
  mo.use_pty = false;
  Result<int> outer = run_monitored(mo, [&](const ChildFds&) -> Result<pid_t> {
    Result<int> inner = run_monitored(mo, [](const ChildFds&) -> Result<pid_t> { return pid_t{1}; });
    EXPECT_FALSE(inner.ok());
    return make_error(Errc::io, "stop here");
  });
  EXPECT_FALSE(outer.ok());
}

}  // namespace
}  // namespace hoop::pty
