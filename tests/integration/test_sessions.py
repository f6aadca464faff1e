"""Issue 4: every command `hoopctl run` executes is recorded (asciicast v2),
masked, spooled and streamed to hoopd while it runs; faults on the way
(hoopd killed and restarted, unreachable at the start, spool disk full) lose
nothing. The real setuid hoopctl runs as real users against a real hoopd."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (HARNESS_ENV, NO_RECORDING, RUN_BIN, FaultyLink, RunHost, ScriptTerminal, Server, as_user,
                      decode_cast)

SESSIONS_POLICY = f"""
[groups]
sre = ["bob", "carol"]

[recording]
mask = ["TOPSECRET-[0-9]+"]

[[rule]]
name = "best-effort"
users = ["*"]
run_as = "*"
commands = [["{RUN_BIN}/hoop-be-*", "**"]]
action = "allow"
record = "best-effort"
reviewers = ["@sre"]

[[rule]]
name = "recorded"
users = ["*"]
run_as = "*"
commands = [["{RUN_BIN}/*", "**"]]
action = "allow"
reviewers = ["@sre"]
"""
pytestmark = pytest.mark.policy(SESSIONS_POLICY)

# Prints `count` numbered lines, `interval` seconds apart: a reference output
# that does not depend on timing.
SLOW_PRINT = """#!/usr/bin/python3
import sys, time
count, interval = int(sys.argv[1]), float(sys.argv[2])
for i in range(count):
    print(f"line {i:06d} " + "x" * (i % 50), flush=True)
    time.sleep(interval)
"""

# About `mb` MiB of varied text as fast as it can.
BULK_PRINT = """#!/usr/bin/python3
import sys
mb = int(sys.argv[1])
out = sys.stdout.buffer
n = 0
i = 0
while n < mb * 1024 * 1024:
    line = f"{i:08d} the quick brown fox {i * 7919 % 100003} jumps over {'=' * (i % 40)}\\n".encode()
    out.write(line)
    n += len(line)
    i += 1
"""


def slow_reference(count):
    return "".join(f"line {i:06d} " + "x" * (i % 50) + "\n" for i in range(count))


def bulk_reference(mb):
    parts, n, i = [], 0, 0
    while n < mb * 1024 * 1024:
        line = f"{i:08d} the quick brown fox {i * 7919 % 100003} jumps over {'=' * (i % 40)}\n"
        parts.append(line)
        n += len(line)
        i += 1
    return "".join(parts)


def run(host, user, *args, timeout=90, stdin=subprocess.DEVNULL):
    return subprocess.run(as_user(user, [str(host.hoopctl), "run", *args]), capture_output=True, text=True,
                          env=HARNESS_ENV, timeout=timeout, cwd="/", stdin=stdin)


def start(host, user, *args):
    return subprocess.Popen(as_user(user, [str(host.hoopctl), "run", *args]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=HARNESS_ENV, cwd="/",
                            stdin=subprocess.DEVNULL)


@pytest.fixture
def host(run_host, hoopctl):
    h = run_host
    h.hoopctl = hoopctl
    h.add_program("hoop-slow-print", SLOW_PRINT)
    h.add_program("hoop-be-slow-print", SLOW_PRINT)
    h.add_program("hoop-bulk-print", BULK_PRINT)
    return h


@pytest.fixture
def tokens(server):
    return {u: server.token("user", u) for u in ("alice", "bob", "dave")}






def session_of(host, rid, token=None):
    """The session of request `rid`, once complete (bounded wait)."""
    token = token or host.host_token
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st, body = host.server.api("GET", "/v1/sessions?limit=1000", token)
        assert st == 200, body
        mine = [s for s in body["sessions"] if s["request_id"] == rid]
        if mine and mine[0]["state"] == "complete":
            return mine[0]
        time.sleep(0.1)
    raise AssertionError(f"no complete session for request {rid}: {body}")


def newest_request(host):
    return host.requests()[0]["id"]


def spool_files(host):
    return sorted(p.name for p in host.spool.iterdir()) if host.spool.exists() else []


def check_stored(host, rid, reference, token=None):
    """The server's transcript: complete, digest right, output == reference,
    and nothing left in the spool."""
    s = session_of(host, rid, token)
    cast = host.server.transcript(token or host.host_token, s["id"])
    assert s["length"] == len(cast)
    assert s["sha256"] == hashlib.sha256(cast).hexdigest()
    header, out, _, _ = decode_cast(cast)
    assert header["version"] == 2
    assert out.replace("\r\n", "\n") == reference
    assert spool_files(host) == [], spool_files(host)
    return s, cast


def test_allowed_command_is_recorded_with_its_metadata(host, tokens):
    r = run(host, "alice", "--", "hoop-slow-print", "5", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout == slow_reference(5)
    rid = newest_request(host)
    s, cast = check_stored(host, rid, slow_reference(5))
    assert s["exit_status"] == 0 and s["user"] == "alice" and s["run_as"] == "root"
    header, _, _, events = decode_cast(cast)
    meta = header["hoop"]
    req = host.requests()[0]
    assert str(meta["request"]) == str(rid) and str(meta["session"]) == str(s["id"])
    assert meta["user"] == "alice" and meta["run_as"] == "root" and meta["host"] == "web1"
    assert meta["argv"] == ["hoop-slow-print", "5", "0"] and meta["digest"] == req["digest"]
    assert meta["tty"] is False
    assert all(e[0] >= 0 for e in events) and [e[0] for e in events] == sorted(e[0] for e in events)
    assert req["uses"] == 1  # filed and used in one call


def test_exit_status_and_signal_reach_the_session(host):
    host.add_program("hoop-exit7", "#!/bin/sh\necho bye\nexit 7\n")
    r = run(host, "alice", "--", "hoop-exit7")
    assert r.returncode == 7
    s, _ = check_stored(host, newest_request(host), "bye\n")
    assert s["exit_status"] == 7


def test_asciinema_plays_the_stored_transcript(host, sandbox):
    if not shutil.which("asciinema") or not shutil.which("script"):
        pytest.skip("Debian's asciinema and script are needed")
    r = run(host, "alice", "--", "hoop-slow-print", "3", "0")
    assert r.returncode == 0, r.stderr
    _, cast = check_stored(host, newest_request(host), slow_reference(3))
    f = sandbox / "played.cast"
    f.write_bytes(cast)
    os.chmod(f, 0o644)
    # asciinema cat opens /dev/tty: give it one with script.
    p = subprocess.run(["script", "-qec", f"asciinema cat {f}", "/dev/null"], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p
    assert p.stdout.decode().replace("\r\n", "\n").endswith(slow_reference(3))


def test_secrets_are_masked_in_the_transcript_but_not_on_the_terminal(host):
    secrets = ("AKIAIOSFODNN7EXAMPLE", "hunter2", "TOPSECRET-12345")
    host.add_program("hoop-leak", "#!/bin/sh\necho key AKIAIOSFODNN7EXAMPLE\necho password=hunter2\n"
                                  "echo id TOPSECRET-12345\necho done\n")
    r = run(host, "alice", "--", "hoop-leak")
    assert r.returncode == 0, r.stderr
    assert all(x in r.stdout for x in secrets)  # the person at the terminal sees them
    s = session_of(host, newest_request(host))
    cast = host.server.transcript(host.host_token, s["id"])
    text = cast.decode()
    for x in secrets:
        assert x not in text, text
    _, out, _, _ = decode_cast(cast)
    assert "password=" in out and "done" in out


GETPASS = """#!/usr/bin/python3
import getpass, sys
pw = getpass.getpass("Password: ")
name = input("Name: ")
print(f"hello {name}, {len(pw)} chars")
"""


def test_input_is_recorded_only_while_the_terminal_echoes(host):
    host.add_program("hoop-getpass", GETPASS)
    t = ScriptTerminal("alice", f"{host.hoopctl} run -- hoop-getpass",
                       {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TERM": "xterm"})
    try:
        at = t.expect("Password: ")
        time.sleep(0.2)
        t.send(b"s3cr3t-pw\r")
        at = t.expect("Name: ", at)
        time.sleep(0.2)
        t.send(b"zelda\r")
        t.expect("hello zelda, 9 chars", at)
    finally:
        t.close()
    s = session_of(host, newest_request(host))
    cast = host.server.transcript(host.host_token, s["id"])
    header, out, inp, _ = decode_cast(cast)
    assert header["hoop"]["tty"] is True and header["width"] > 0
    assert "s3cr3t-pw" not in cast.decode()
    assert "zelda" in inp
    assert "hello zelda, 9 chars" in out


def test_hoopd_killed_mid_session_and_restarted_loses_nothing(host):
    p = start(host, "alice", "--", "hoop-slow-print", "40", "0.1")
    time.sleep(1.2)
    host.server.restart(signal.SIGKILL, down_for=1.0)
    out, err = p.communicate(timeout=90)
    assert p.returncode == 0, err
    assert out == slow_reference(40)
    check_stored(host, newest_request(host), slow_reference(40))


def test_hoopd_restarted_several_times_during_one_session(host):
    p = start(host, "alice", "--", "hoop-slow-print", "60", "0.1")
    for _ in range(3):
        time.sleep(1.0)
        host.server.restart(signal.SIGKILL, down_for=0.3)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    check_stored(host, newest_request(host), slow_reference(60))


def test_spool_disk_full_still_ships_everything(host):
    host.spool.mkdir(mode=0o700, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(host.spool)], check=True)
    try:
        fd = os.open(host.spool / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for _ in range(1000):  # 64 KiB fill up long before
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        r = run(host, "alice", "--", "hoop-bulk-print", "2")
        assert r.returncode == 0, r.stderr
        assert r.stdout == bulk_reference(2)
        s = session_of(host, newest_request(host))
        cast = host.server.transcript(host.host_token, s["id"])
        assert s["sha256"] == hashlib.sha256(cast).hexdigest()
        _, out, _, _ = decode_cast(cast)
        assert out == bulk_reference(2)
        assert spool_files(host) == ["filler"], spool_files(host)
    finally:
        subprocess.run(["umount", "-l", str(host.spool)], check=False)


# ---- the recording channel is unavailable at the start -----------------------

@pytest.fixture
def plain_link(sandbox, pki, hoopctl):
    """A plain-HTTP hoopd behind a FaultyLink, and this host set up to use it."""
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="plain-", dir=sandbox))
    os.chmod(root, 0o755)
    srv = Server(root, pki, SESSIONS_POLICY, tls=False).start()
    link = FaultyLink(srv.port)
    h = RunHost(srv).setup()
    h.write_config(server_url=f"http://127.0.0.1:{link.port}")
    h.hoopctl = hoopctl
    h.add_program("hoop-touch", "#!/bin/sh\necho ran > /etc/hoop-it/ran\necho touched\n")
    h.add_program("hoop-be-touch", "#!/bin/sh\necho ran > /etc/hoop-it/ran\necho touched\n")
    yield h, link
    link.close()
    h.teardown()
    srv.stop()


def test_required_recording_unavailable_at_start_runs_nothing(plain_link):
    host, link = plain_link
    link.cut_on(b"/v1/sessions/")  # the request is filed; the recording channel then fails
    r = run(host, "alice", "--", "hoop-touch")
    assert r.returncode == NO_RECORDING, (r.returncode, r.stderr)
    assert "requires a recording" in r.stderr and "not run" in r.stderr
    assert r.stdout == ""
    assert not Path("/etc/hoop-it/ran").exists()


def test_best_effort_recording_unavailable_runs_spools_and_ships_later(plain_link):
    host, link = plain_link
    link.cut_on(b"/v1/sessions/")
    r = run(host, "alice", "--", "hoop-be-touch")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "touched\n"
    assert Path("/etc/hoop-it/ran").exists()
    left = spool_files(host)
    assert any(n.endswith(".cast") for n in left), left
    link.up()
    ship = subprocess.run([str(host.hoopctl), "ship"], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert ship.returncode == 0, ship.stdout + ship.stderr
    assert "shipped" in ship.stdout
    # Now through the link, which is up again.
    host.write_config()
    s, _ = check_stored(host, newest_request(host), "touched\n")
    assert s["exit_status"] == 0


# ---- reviewers ---------------------------------------------------------------

def test_sessions_replay_and_visibility(host, ctl, tokens):
    r = run(host, "alice", "--", "hoop-slow-print", "4", "0")
    assert r.returncode == 0, r.stderr
    s = session_of(host, newest_request(host))
    sid = str(s["id"])
    for who in ("alice", "bob"):  # the requester, a reviewer of the rule
        lst = ctl(who, "sessions", "--json", token=tokens[who])
        assert lst.returncode == 0, lst.stderr
        assert [x["id"] for x in json.loads(lst.stdout)] == [s["id"]]
        rp = ctl(who, "replay", sid, "--speed", "50", token=tokens[who])
        assert rp.returncode == 0, rp.stderr
        assert rp.stdout.replace("\r\n", "\n").startswith(slow_reference(4))
        assert "session " + sid in rp.stderr
    lst = ctl("dave", "sessions", "--json", token=tokens["dave"])
    assert lst.returncode == 0 and json.loads(lst.stdout) == []
    rp = ctl("dave", "replay", sid, token=tokens["dave"])
    assert rp.returncode == 5 and rp.stdout == "", rp
    table = ctl("bob", "sessions", token=tokens["bob"])
    assert "hoop-slow-print 4 0" in table.stdout and "complete" in table.stdout


def test_replay_filters_what_would_act_on_the_reviewers_terminal(host, ctl, tokens):
    host.add_program("hoop-evil-output", "#!/bin/sh\nprintf 'A\\033]0;pwned\\007B\\033[6nC\\033[31mD\\n'\n")
    r = run(host, "alice", "--", "hoop-evil-output")
    assert r.returncode == 0, r.stderr
    s = session_of(host, newest_request(host))
    rp = ctl("bob", "replay", str(s["id"]), token=tokens["bob"])
    assert rp.returncode == 0, rp.stderr
    assert "AB" in rp.stdout and "C\x1b[31mD" in rp.stdout and "pwned" not in rp.stdout and "\x1b[6n" not in rp.stdout
    raw = ctl("bob", "replay", str(s["id"]), "--raw", token=tokens["bob"])
    assert "\x1b]0;pwned\x07" in raw.stdout


def test_watch_follows_a_running_session_to_its_end(host, ctl, tokens):
    p = start(host, "alice", "--", "hoop-slow-print", "30", "0.1")
    deadline = time.monotonic() + 20
    sid = None
    while sid is None and time.monotonic() < deadline:
        st, body = host.server.api("GET", "/v1/sessions?state=open", tokens["bob"])
        if st == 200 and body["sessions"]:
            sid = body["sessions"][0]["id"]
        time.sleep(0.05)
    assert sid is not None
    w = ctl("bob", "watch", str(sid), token=tokens["bob"], timeout=60)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert w.returncode == 0, w.stderr
    assert w.stdout.replace("\r\n", "\n").startswith(slow_reference(30))
    assert "end of session" in w.stderr


@pytest.mark.parametrize("args", [["replay", "abc"], ["replay", "0"], ["replay", "1", "--speed", "-1"],
                                  ["replay", "1", "--speed", "nan"], ["replay", "1", "--speed", "1e-300"],
                                  ["replay", "1", "--idle-limit", "-2"], ["watch", "99999999999999999999"],
                                  ["sessions", "--state", "bogus"], ["sessions", "--limit", "0"]])
def test_session_verbs_refuse_bad_arguments_before_any_request(host, ctl, tokens, args):
    r = ctl("bob", *args, token=tokens["bob"])
    assert r.returncode == 2, r
    assert r.stderr.startswith("hoopctl: ") and r.stderr.count("\n") == 1, r.stderr


def test_ship_is_for_root_only(host):
    r = subprocess.run(as_user("alice", [str(host.hoopctl), "ship"]), capture_output=True, text=True,
                       env=HARNESS_ENV, timeout=30)
    assert r.returncode == 4 and "run it as root" in r.stderr, r


def test_the_next_run_ships_what_an_earlier_one_left_in_the_spool(plain_link):
    host, link = plain_link
    link.cut_on(b"/v1/sessions/")
    first = run(host, "alice", "--", "hoop-be-touch")
    assert first.returncode == 0, first.stderr
    rid = newest_request(host)
    assert any(n.endswith(".cast") for n in spool_files(host))
    link.up()
    second = run(host, "alice", "--", "hoop-touch")
    assert second.returncode == 0, second.stderr
    assert "also shipped 1 earlier transcript" in second.stderr, second.stderr
    host.write_config()
    s, _ = check_stored(host, rid, "touched\n")
    assert s["exit_status"] == 0
