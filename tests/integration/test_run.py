"""Issue 3: `hoopctl run`, the setuid path from request to privileged command.
The real setuid hoopctl runs as real unprivileged users against a real hoopd;
each attack from the issue is tried and must be refused or harmless."""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (CANCELLED, DENIED, EXPIRED, HARNESS_ENV, NOT_FOUND, REFUSED, RUN_BIN, TIMED_OUT,
                      UNREACHABLE, USAGE, USERS, Ctl, RunHost, ScriptTerminal, Server, as_user)

RUN_POLICY = f"""
[groups]
sre = ["bob", "carol"]

[[rule]]
name = "forbidden"
users = ["*"]
run_as = "*"
commands = [["{RUN_BIN}/hoop-forbidden", "**"]]
action = "deny"

[[rule]]
name = "needs-review"
users = ["*"]
run_as = "*"
commands = [["{RUN_BIN}/hoop-review-*", "**"]]
action = "review"
reviewers = ["@sre", "alice"]
approvals = 1
ttl = "15m"

[[rule]]
name = "test-tools"
users = ["*"]
run_as = "*"
commands = [["{RUN_BIN}/*", "**"]]
action = "allow"
"""
pytestmark = pytest.mark.policy(RUN_POLICY)

# What the command's environment may contain (exec/command.h).
ALLOWED_ENV = {"TERM", "COLORTERM", "LANG", "LANGUAGE", "TZ", "NO_COLOR", "PATH", "HOME", "SHELL", "USER",
               "LOGNAME", "HOOP_USER", "HOOP_UID", "HOOP_REQUEST_ID"}

ARGS_PY = """#!/usr/bin/python3
import json, os, sys
sys.stdout.write("ARGV=" + json.dumps([os.fsdecode(a) for a in sys.argv[1:]]) + "\\n")
"""


@pytest.fixture
def host(run_host, hoopctl):
    """run_host plus the standard test programs, and a way to run hoopctl."""
    h = run_host
    h.hoopctl = hoopctl
    h.add_program("hoop-env", copy_of="/usr/bin/env")
    h.add_program("hoop-id", "#!/bin/sh\n/usr/bin/id -u\n/usr/bin/id -g\n")
    h.add_program("hoop-exit", '#!/bin/sh\necho "exiting with $1"\nexit "$1"\n')
    h.add_program("hoop-kill", "#!/bin/sh\nkill -9 $$\n")
    h.add_program("hoop-args", ARGS_PY)
    h.add_program("hoop-forbidden", "#!/bin/sh\necho SHOULD-NOT-RUN\n")
    h.add_program("hoop-review-echo", "#!/bin/sh\necho reviewed \"$@\"\n")
    h.add_program("hoop-review-env", copy_of="/usr/bin/env")
    return h


@pytest.fixture
def tokens(server):
    return {u: server.token("user", u) for u in ("alice", "bob", "carol", "dave")}


def caller_env(extra=None):
    e = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TERM": "xterm-256color"}
    e.update(extra or {})
    return e


def run(host, user, *args, env=None, timeout=60):
    """Runs `hoopctl run ARGS...` as `user`; output decoded leniently."""
    return subprocess.run(as_user(user, [str(host.hoopctl), "run", *args], caller_env(env)), capture_output=True,
                          env=HARNESS_ENV, timeout=timeout, cwd="/", encoding="utf-8", errors="replace",
                          stdin=subprocess.DEVNULL)


class Waiting:
    """`hoopctl run` started in the background, its output collected."""

    def __init__(self, host, user, *args, env=None):
        self.proc = subprocess.Popen(as_user(user, [str(host.hoopctl), "run", *args], caller_env(env)),
                                     env=HARNESS_ENV,
                                     cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out, self.err = [], []
        self.lines = queue.Queue()
        self.threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.out, False)),
                        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err, True))]
        for t in self.threads:
            t.start()

    def _pump(self, stream, sink, is_err):
        for line in iter(stream.readline, b""):
            text = line.decode("utf-8", "replace")
            sink.append(text)
            if is_err:
                self.lines.put(text)
        stream.close()

    def request_id(self, timeout=20):
        """Waits until hoopctl says it waits for approval; returns the id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            m = re.search(r"request (\d+) needs approval", line)
            if m:
                return int(m.group(1))
        self.proc.kill()
        raise AssertionError("hoopctl did not start waiting: " + "".join(self.err))

    def finish(self, timeout=30):
        rc = self.proc.wait(timeout=timeout)
        for t in self.threads:
            t.join(timeout=5)
        return rc, "".join(self.out), "".join(self.err)


def get(server, token, rid):
    st, body = server.api("GET", f"/v1/requests/{rid}", token)
    assert st == 200, body
    return body


def approve(server, token, rid, comment="ok"):
    return server.api("POST", f"/v1/requests/{rid}/approve", token, {"comment": comment})


def env_of(stdout):
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


# ---- the ordinary path -------------------------------------------------------

def test_allow_rule_runs_at_once_as_root(host):
    r = run(host, "alice", "--", "hoop-id")
    assert r.returncode == 0, r
    assert r.stdout.split() == ["0", "0"]
    [req] = host.requests()
    assert req["state"] == "approved" and req["decided_by"] == "policy" and req["uses"] == 1
    assert req["user"] == "alice" and req["run_as"] == "root" and req["host"] == "web1"
    assert req["path"] == f"{RUN_BIN}/hoop-id" and req["argv"] == ["hoop-id"] and req["cwd"] == "/"


def test_allow_rule_runs_as_target_user(host):
    r = run(host, "alice", "-u", "dave", "--", "hoop-id")
    assert r.returncode == 0, r
    assert r.stdout.split() == [str(USERS["dave"])] * 2
    assert host.requests()[0]["run_as"] == "dave"


def test_options_end_at_the_command(host):
    # getopt's "+": after CMD, -u and friends belong to the command.
    r = run(host, "alice", "hoop-args", "-u", "dave", "--", "x")
    assert r.returncode == 0, r
    assert json.loads(r.stdout.split("ARGV=", 1)[1]) == ["-u", "dave", "--", "x"]
    assert host.requests()[0]["run_as"] == "root"


@pytest.mark.parametrize("args,status", [(["hoop-exit", "0"], 0), (["hoop-exit", "3"], 3),
                                         (["hoop-exit", "120"], 120), (["hoop-kill"], 128 + 9)])
def test_exit_status_passes_through(host, args, status):
    r = run(host, "alice", "--", *args)
    assert r.returncode == status, r


def test_denied_by_policy(host):
    r = run(host, "alice", "--", "hoop-forbidden")
    assert r.returncode == DENIED, r
    assert "SHOULD-NOT-RUN" not in r.stdout and "forbidden" in r.stderr
    # Nothing matches /usr/bin/true: denied by default.
    r = run(host, "alice", "--", "true")
    assert r.returncode == DENIED, r
    assert "no policy rule" in r.stderr
    assert [q["state"] for q in host.requests()] == ["denied", "denied"]


def test_review_approved_by_another_person_runs(host, tokens):
    w = Waiting(host, "alice", "-r", "deploy 1.4.2", "--", "hoop-review-echo", "hello")
    rid = w.request_id()
    q = get(host.server, tokens["bob"], rid)
    assert q["state"] == "pending" and q["reason"] == "deploy 1.4.2" and q["rule"] == "needs-review"
    err_so_far = "".join(w.err)
    assert "bob" in err_so_far and "carol" in err_so_far and "1 more approval" in err_so_far
    st, body = approve(host.server, tokens["bob"], rid)
    assert st == 200, body
    rc, out, err = w.finish()
    assert rc == 0, err
    assert out.strip() == "reviewed hello"
    assert f"request {rid} approved by bob" in err
    assert get(host.server, tokens["bob"], rid)["uses"] == 1


def test_denied_by_reviewer(host, tokens):
    w = Waiting(host, "alice", "--", "hoop-review-echo", "x")
    rid = w.request_id()
    st, body = host.server.api("POST", f"/v1/requests/{rid}/deny", tokens["carol"], {"comment": "not now"})
    assert st == 200, body
    rc, out, err = w.finish()
    assert rc == DENIED and out == ""
    assert f"request {rid} denied by carol: not now" in err


def test_grant_is_reused_within_its_ttl(host, tokens):
    w = Waiting(host, "alice", "--", "hoop-review-env")
    rid = w.request_id()
    assert approve(host.server, tokens["bob"], rid)[0] == 200
    rc, out, err = w.finish()
    assert rc == 0, err
    assert env_of(out)["HOOP_REQUEST_ID"] == str(rid)
    # The same command again: no new request, no waiting, one more use.
    r = run(host, "alice", "--", "hoop-review-env", timeout=20)
    assert r.returncode == 0, r
    assert "needs approval" not in r.stderr
    assert env_of(r.stdout)["HOOP_REQUEST_ID"] == str(rid)
    assert [q["id"] for q in host.requests()] == [rid]
    assert get(host.server, tokens["bob"], rid)["uses"] == 2
    # Another user, another run-as user or other arguments do not get it.
    w2 = Waiting(host, "dave", "--", "hoop-review-env")
    rid2 = w2.request_id()
    assert rid2 != rid
    w2.proc.send_signal(signal.SIGINT)
    assert w2.finish()[0] == CANCELLED
    r = run(host, "alice", "--no-wait", "--", "hoop-review-env", "X=1")
    assert r.returncode == 0 and "filed" in r.stdout


def test_no_wait_files_and_a_later_run_uses_the_grant(host, tokens):
    r = run(host, "alice", "--no-wait", "--", "hoop-review-echo", "later")
    assert r.returncode == 0, r
    m = re.search(r"request (\d+) filed; run the same command again once approved", r.stdout)
    assert m, r.stdout
    rid = int(m.group(1))
    assert get(host.server, tokens["bob"], rid)["state"] == "pending"
    assert approve(host.server, tokens["carol"], rid)[0] == 200
    r = run(host, "alice", "--", "hoop-review-echo", "later")
    assert r.returncode == 0, r
    assert r.stdout.strip() == "reviewed later"
    assert get(host.server, tokens["bob"], rid)["uses"] == 1


def test_help_documents_exit_statuses(host):
    r = run(host, "alice", "--help")
    assert r.returncode == 0
    for code in ("119", "120", "121", "122", "123", "124", "125", "127"):
        assert code in r.stdout
    assert host.requests() == []


# ---- waiting: interrupting, timing out, losing the server ----------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_while_waiting_cancels_the_request(host, tokens, sig):
    w = Waiting(host, "alice", "--", "hoop-review-echo", "x")
    rid = w.request_id()
    t0 = time.monotonic()
    w.proc.send_signal(sig)
    rc, out, err = w.finish()
    assert rc == CANCELLED, err
    assert time.monotonic() - t0 < 10
    assert f"request {rid} cancelled" in err
    assert get(host.server, tokens["bob"], rid)["state"] == "cancelled"
    assert [q for q in host.requests() if q["state"] == "pending"] == []
    assert out == ""


def test_timeout_cancels_the_request(host, tokens):
    t0 = time.monotonic()
    r = run(host, "alice", "--timeout", "2s", "--", "hoop-review-echo", "x")
    assert r.returncode == TIMED_OUT, r
    assert 1.5 < time.monotonic() - t0 < 15
    [q] = host.requests()
    assert q["state"] == "cancelled"
    assert f"request {q['id']} cancelled" in r.stderr


def test_cancelled_elsewhere_ends_the_wait(host, tokens):
    w = Waiting(host, "alice", "--", "hoop-review-echo", "x")
    rid = w.request_id()
    st, body = host.server.api("POST", f"/v1/requests/{rid}/cancel", tokens["alice"], {})
    assert st == 200, body
    rc, out, err = w.finish()
    assert rc == CANCELLED and out == ""
    assert f"request {rid} was cancelled by alice" in err


def test_request_that_expires_while_waiting(sandbox, pki, hoopctl):
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="srv-", dir=sandbox))
    os.chmod(root, 0o755)
    s = Server(root, pki, RUN_POLICY, extra='request_ttl = "2s"').start()
    h = RunHost(s).setup()
    h.hoopctl = hoopctl
    h.add_program("hoop-review-echo", "#!/bin/sh\necho SHOULD-NOT-RUN\n")
    try:
        t0 = time.monotonic()
        r = run(h, "alice", "--", "hoop-review-echo", timeout=30)
        assert r.returncode == EXPIRED, r
        assert time.monotonic() - t0 < 15
        assert "expired" in r.stderr and "SHOULD-NOT-RUN" not in r.stdout
        assert [q["state"] for q in h.requests()] == ["expired"]
    finally:
        h.teardown()
        s.stop()


def test_server_down_refuses_to_run(host):
    marker = Path("/etc/hoop-it/ran")
    host.add_program("hoop-touch", f"#!/bin/sh\n/usr/bin/touch {marker}\n")
    url = host.server.url
    host.server.stop()
    r = run(host, "alice", "--", "hoop-touch", timeout=30)
    assert r.returncode == UNREACHABLE, r
    assert f"cannot reach hoopd at {url}" in r.stderr
    assert "refusing to run (offline = deny)" in r.stderr
    assert not marker.exists()


def test_server_that_is_not_trusted_refuses_to_run(host, sandbox):
    # Another CA: TLS fails, so nothing runs (and the token is never sent).
    other = sandbox / "other-ca"
    other.mkdir(exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=other", "-keyout", str(other / "k"), "-out", str(host.ca)],
                   check=True, capture_output=True)
    r = run(host, "alice", "--", "hoop-id")
    assert r.returncode == UNREACHABLE, r
    assert "TLS" in r.stderr
    assert host.requests() == []


# ---- attacks ---------------------------------------------------------------------

def _build_evil_preload(sandbox, marker):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    src = sandbox / "evil.c"
    src.write_text('#include <stdio.h>\n__attribute__((constructor)) static void evil(void) {\n'
                   f'  FILE* f = fopen("{marker}", "a"); if (f) {{ fputs("preloaded\\n", f); fclose(f); }}\n'
                   '}\n')
    so = sandbox / "evil.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(so), str(src)], check=True, capture_output=True)
    os.chmod(so, 0o755)
    return so


def test_caller_environment_does_not_reach_the_command(host, sandbox):
    marker = sandbox / "preload-marker"
    keylog = sandbox / "keylog"
    so = _build_evil_preload(sandbox, marker)
    evil = {
        "LD_PRELOAD": str(so or "/nonexistent/evil.so"), "LD_LIBRARY_PATH": str(sandbox),
        "LD_AUDIT": str(so or "/nonexistent/evil.so"), "BASH_ENV": str(sandbox / "evil.sh"),
        "ENV": str(sandbox / "evil.sh"), "PYTHONPATH": str(sandbox), "PYTHONSTARTUP": str(sandbox / "x.py"),
        "PYTHONINSPECT": "1", "PERL5LIB": str(sandbox), "PERL5OPT": "-Mevil", "RUBYOPT": "-revil",
        "NODE_OPTIONS": "--require=evil", "IFS": "/", "SHELLOPTS": "xtrace", "PS4": "$(touch /tmp/x)",
        "GCONV_PATH": str(sandbox), "LOCPATH": str(sandbox), "HOSTALIASES": str(sandbox / "hosts"),
        "SSLKEYLOGFILE": str(keylog), "CURL_CA_BUNDLE": "/dev/null", "SSL_CERT_FILE": "/dev/null",
        "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
        "HOOP_SERVER": "https://127.0.0.1:9", "HOOP_CA": "/dev/null", "HOOP_SYSCONFDIR": str(sandbox),
        "HOME": str(sandbox), "USER": "root", "LOGNAME": "root", "SHELL": "/tmp/evilshell",
        "TZ": "../../../tmp/evil", "LC_ALL": "C.UTF-8", "COLORTERM": "truecolor", "MALLOC_CHECK_": "3",
        "HOOP_REQUEST_ID": "999", "HOOP_USER": "bob",
    }
    r = run(host, "alice", "--", "hoop-env", env=evil)
    assert r.returncode == 0, r
    env = env_of(r.stdout)
    unexpected = {k for k in env if k not in ALLOWED_ENV and not k.startswith("LC_")}
    assert unexpected == set(), r.stdout
    assert env["PATH"] == host.secure_path
    assert env["HOOP_USER"] == "alice" and env["HOOP_UID"] == str(USERS["alice"])
    [req] = host.requests()
    assert env["HOOP_REQUEST_ID"] == str(req["id"])
    assert env["USER"] == "root" and env["LOGNAME"] == "root" and env["HOME"] == "/root"
    assert env["TERM"] == "xterm-256color" and env["LC_ALL"] == "C.UTF-8" and env["COLORTERM"] == "truecolor"
    assert "TZ" not in env
    assert not marker.exists(), "LD_PRELOAD ran: " + marker.read_text()
    assert not keylog.exists(), "something wrote SSLKEYLOGFILE as root"


def test_path_cannot_choose_the_executable(host, sandbox):
    evil_dir = sandbox / "evil-bin"
    evil_dir.mkdir(exist_ok=True)
    marker = sandbox / "fake-systemctl-ran"
    fake = evil_dir / "systemctl"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\necho FAKE\n")
    os.chmod(fake, 0o755)
    os.chown(evil_dir, USERS["alice"], USERS["alice"])
    os.chown(fake, USERS["alice"], USERS["alice"])
    host.add_program("systemctl", '#!/bin/sh\necho "REAL systemctl $*"\n')
    r = run(host, "alice", "--", "systemctl", "status", "nginx", env={"PATH": f"{evil_dir}:/usr/bin:/bin"})
    assert r.returncode == 0, r
    assert r.stdout.strip() == "REAL systemctl status nginx"
    assert not marker.exists()
    [req] = host.requests()
    assert req["path"] == f"{RUN_BIN}/systemctl"
    # Naming the fake one directly is refused: not root's, in a directory under /tmp.
    r = run(host, "alice", "--", str(fake), "status")
    assert r.returncode == NOT_FOUND, r
    assert not marker.exists()
    assert len(host.requests()) == 1


def test_unsafe_or_missing_commands_are_refused(host):
    host.add_program("hoop-groupwritable", "#!/bin/sh\necho RAN\n", mode=0o775)
    for cmd in ("hoop-groupwritable", "no-such-command-here", "./hoop-id", "../sbin/hoop-id"):
        r = run(host, "alice", "--", cmd)
        assert r.returncode == NOT_FOUND, (cmd, r)
        assert "RAN" not in r.stdout
    assert host.requests() == []


@pytest.mark.parametrize("spec", ["#-1", "#0", "0", "-1", "4294967295", "nosuchuser", "", "root\n", "../root",
                                  "root bob", "-u"])
def test_bad_run_as_user_is_refused_before_filing(host, spec):
    r = run(host, "alice", "-u", spec, "--", "hoop-id")
    assert r.returncode in (USAGE, REFUSED), r
    assert r.stdout == ""
    assert host.requests() == []


def test_usage_errors(host):
    cases = [[], ["--"], ["--server", "https://127.0.0.1:9", "--", "hoop-id"], ["--ca", "/dev/null", "hoop-id"],
             ["-u", "root", "-u", "dave", "--", "hoop-id"], ["--timeout", "soon", "--", "hoop-id"],
             ["--timeout", "5", "--", "hoop-id"], ["-r", "two\nlines", "--", "hoop-id"],
             ["-r", "", "--", "hoop-id"], ["--bogus", "hoop-id"]]
    for args in cases:
        r = run(host, "alice", *args)
        assert r.returncode == USAGE, (args, r)
        assert "usage: hoopctl run" in r.stderr, (args, r)
    assert host.requests() == []


def test_swapping_the_file_in_place_after_approval_is_refused(host, tokens):
    prog = host.add_program("hoop-review-swap", "#!/bin/sh\necho ORIGINAL\n")
    w = Waiting(host, "alice", "--", "hoop-review-swap")
    rid = w.request_id()
    with open(prog, "r+") as f:  # same inode, new content
        f.write("#!/bin/sh\necho PWNED!!\n")
    assert approve(host.server, tokens["bob"], rid)[0] == 200
    rc, out, err = w.finish()
    assert rc == REFUSED, err
    assert "PWNED" not in out and "ORIGINAL" not in out
    assert "changed" in err


def test_renaming_another_file_over_it_runs_the_approved_content(host, tokens):
    prog = host.add_program("hoop-review-swap", "#!/bin/sh\necho ORIGINAL\n")
    w = Waiting(host, "alice", "--", "hoop-review-swap")
    rid = w.request_id()
    evil = host.add_program("hoop-evil-tmp", "#!/bin/sh\necho PWNED\n")
    os.rename(evil, prog)
    assert approve(host.server, tokens["bob"], rid)[0] == 200
    rc, out, err = w.finish()
    # Either the pinned original runs, or hoop refuses; never the new file.
    assert "PWNED" not in out
    assert (rc == 0 and out.strip() == "ORIGINAL") or rc == REFUSED, (rc, out, err)


def test_swapped_binary_is_never_executed(host, tokens):
    prog = host.add_program("hoop-review-bin", copy_of="/usr/bin/id")
    w = Waiting(host, "alice", "--", "hoop-review-bin", "-u")
    rid = w.request_id()
    tmp = host.add_program("hoop-bin-tmp", copy_of="/usr/bin/whoami")
    os.rename(tmp, prog)
    assert approve(host.server, tokens["bob"], rid)[0] == 200
    rc, out, err = w.finish()
    assert out.strip() != "root"  # whoami's answer
    assert (rc == 0 and out.strip() == "0") or rc == REFUSED, (rc, out, err)


@pytest.mark.parametrize("which,how", [("config", 0o666), ("config", 0o664), ("config", "alice"),
                                       ("credential", 0o644), ("credential", 0o660), ("credential", "alice"),
                                       ("ca", 0o666), ("ca", "alice"), ("dir", 0o777), ("config", "symlink")])
def test_unsafe_trusted_files_are_refused(host, sandbox, which, how):
    path = {"config": host.config, "credential": host.credential, "ca": host.ca, "dir": host.etc}[which]
    if how == "symlink":
        real = host.etc / "real.toml"
        os.rename(path, real)
        os.symlink(real, path)
    elif isinstance(how, str):
        os.chown(path, USERS[how], USERS[how])
    else:
        os.chmod(path, how)
    try:
        r = run(host, "alice", "--", "hoop-id")
        assert r.returncode == REFUSED, r
        named = host.etc if which == "dir" else path
        assert str(named) in r.stderr, r.stderr
        assert r.stdout == ""
    finally:
        os.chmod(host.etc, 0o755)
        if how == "symlink":
            path.unlink()
            os.rename(host.etc / "real.toml", path)
    assert host.requests() == []


def test_missing_config_is_refused(host):
    host.config.unlink()
    r = run(host, "alice", "--", "hoop-id")
    assert r.returncode == REFUSED, r
    assert str(host.config) in r.stderr


def test_hostile_arguments_are_filed_intact_and_shown_escaped(host, hoopctl, tokens):
    evil = ["line1\nline2", "\x1b]0;owned\x07\x1b[2J\x1b[H", "\u202eevil\u202c", "tab\there", "", "-u", "--",
            "x" * 100_000]
    r = run(host, "alice", "--", "hoop-args", *evil)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.split("ARGV=", 1)[1]) == evil
    [req] = host.requests()
    assert req["argv"] == ["hoop-args", *evil]
    show = Ctl(hoopctl, host.server)("alice", "show", str(req["id"]), token=tokens["alice"])
    assert show.returncode == 0, show
    assert "\x1b" not in show.stdout and "\x07" not in show.stdout and "\u202e" not in show.stdout
    assert "line1\\nline2" in show.stdout and "\\x1b" in show.stdout


def test_oversized_or_binary_arguments_are_refused_cleanly(host):
    r = run(host, "alice", "--", "hoop-args", *(["y" * 100_000] * 3))
    assert r.returncode == USAGE, r
    assert "longer than" in r.stderr
    r = subprocess.run(as_user("alice", [str(host.hoopctl), "run", "--", "hoop-args", b"\xff\xfe"], caller_env()),
                       capture_output=True, env=HARNESS_ENV, cwd="/", timeout=30)
    assert r.returncode == USAGE, r
    assert b"UTF-8" in r.stderr
    assert host.requests() == []


def test_requester_cannot_approve_own_run(host, hoopctl, tokens):
    # alice is among the rule's reviewers, yet not for her own request.
    w = Waiting(host, "alice", "--", "hoop-review-echo", "self")
    rid = w.request_id()
    st, body = approve(host.server, tokens["alice"], rid)
    assert st == 403, body
    r = Ctl(hoopctl, host.server)("alice", "approve", str(rid), token=tokens["alice"])
    assert r.returncode == 4, r
    time.sleep(0.5)
    assert w.proc.poll() is None
    assert get(host.server, tokens["bob"], rid)["state"] == "pending"
    # The host credential cannot approve either.
    st, body = approve(host.server, host.host_token, rid)
    assert st == 403, body
    assert approve(host.server, tokens["bob"], rid)[0] == 200
    rc, out, err = w.finish()
    assert rc == 0 and out.strip() == "reviewed self", err


PROC_PROBE = """
import os, sys
pid = sys.argv[1]
for what in ("environ", "mem", "fd", "maps", "auxv"):
    p = f"/proc/{pid}/{what}"
    try:
        if what == "fd":
            os.listdir(p)
        else:
            with open(p, "rb") as f:
                f.read(64)
        print(what, "READABLE")
    except PermissionError:
        print(what, "denied")
    except OSError as e:
        print(what, "error", e.errno)
"""


def probe_proc(user, pid):
    r = subprocess.run(as_user(user, ["/usr/bin/python3", "-c", PROC_PROBE, str(pid)]), capture_output=True,
                       text=True, timeout=30, cwd="/", env=HARNESS_ENV)
    assert r.returncode == 0, r
    return dict(line.split(" ", 1) for line in r.stdout.splitlines())


def test_caller_cannot_read_the_privileged_process(host, tokens, sandbox):
    host.add_program("hoop-review-sleep", "#!/bin/sh\necho started\nexec /usr/bin/sleep 3\n")
    w = Waiting(host, "alice", "--", "hoop-review-sleep", env={"SECRET_PROBE": "caller-secret"})
    rid = w.request_id()
    # While waiting: the host credential is in this process's memory.
    seen = probe_proc("alice", w.proc.pid)
    assert all(v in ("denied", "error 13") for v in seen.values()), seen
    assert approve(host.server, tokens["bob"], rid)[0] == 200
    deadline = time.monotonic() + 10
    while "started\n" not in w.out and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "started\n" in w.out, w.err
    # While the command runs: the monitor is still privileged.
    seen = probe_proc("alice", w.proc.pid)
    assert all(v in ("denied", "error 13") for v in seen.values()), seen
    rc, out, err = w.finish()
    assert rc == 0, err


TTY_PROBE = """#!/usr/bin/python3
import fcntl, os, select, sys, termios
print("CHILD_TTY=" + os.ttyname(0), flush=True)
payload = b"echo INJECTED\\n"
for name, fd in (("fd0", 0), ("fd1", 1), ("fd2", 2), ("devtty", None)):
    try:
        if fd is None:
            fd = os.open("/dev/tty", os.O_RDWR)
        for ch in payload:
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch]))
        print("TIOCSTI", name, "ok", flush=True)
    except OSError as e:
        print("TIOCSTI", name, "failed", e.errno, flush=True)
# Whatever was injected landed in our own terminal: read it back.
got = b""
while select.select([0], [], [], 0.5)[0]:
    chunk = os.read(0, 4096)
    if not chunk:
        break
    got += chunk
print("READBACK=" + repr(got), flush=True)
"""


def test_child_cannot_push_keystrokes_into_the_callers_terminal(host):
    script = shutil.which("script")
    bash = shutil.which("bash")
    if not script or not bash:
        pytest.skip("util-linux `script` and bash are needed to give hoopctl a terminal")
    host.add_program("hoop-tty", TTY_PROBE)
    # `script` gives the caller a terminal; after hoopctl exits, the shell on
    # that terminal reads whatever is waiting in its input: injected text
    # would show up there (and, in real life, be executed).
    inner = (f"echo CALLER_TTY=$(tty); {host.hoopctl} run -- hoop-tty; echo STATUS=$?; "
             "if read -r -t 2 line; then echo \"LEFTOVER=<$line>\"; else echo NOTHING-LEFT; fi")
    p = subprocess.Popen(as_user("alice", [script, "-qec", inner, "/dev/null"], caller_env({"SHELL": bash})),
                         env=HARNESS_ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, cwd="/")
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: p.stdout.read1(4096), b"")))
    reader.start()
    try:
        p.wait(timeout=60)  # stdin stays open: an EOF would reach the command as ^D
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    finally:
        p.stdin.close()
        reader.join(timeout=5)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r", "")
    caller_tty = re.search(r"CALLER_TTY=(\S+)", text).group(1)
    child_tty = re.search(r"CHILD_TTY=(\S+)", text).group(1)
    assert caller_tty.startswith("/dev/pts/"), text
    assert child_tty.startswith("/dev/pts/") and child_tty != caller_tty, text
    assert "STATUS=0" in text, text
    assert "LEFTOVER=<echo INJECTED>" not in text and "NOTHING-LEFT" in text, text
    # The command injected (as root it may) but only into its own terminal.
    assert "TIOCSTI fd0 ok" in text and "READBACK=b'echo INJECTED" in text, text
    [req] = host.requests()
    assert req["tty"] == caller_tty


def test_without_a_terminal_the_command_gets_pipes(host):
    host.add_program("hoop-isatty", "#!/usr/bin/python3\nimport os\nprint([os.isatty(i) for i in (0, 1, 2)])\n")
    r = run(host, "alice", "--", "hoop-isatty")
    assert r.returncode == 0, r
    assert r.stdout.strip() == "[False, False, False]"
    assert host.requests()[0]["tty"] == ""


FD_PROBE = """#!/usr/bin/python3
import json, os
fds = {}
for f in os.listdir("/proc/self/fd"):
    try:
        fds[int(f)] = os.readlink("/proc/self/fd/" + f)
    except OSError:
        pass
print(json.dumps(fds))
"""


def test_only_stdio_reaches_the_command(host, sandbox):
    host.add_program("hoop-fds", FD_PROBE)
    # The caller leaves an extra descriptor open across the setuid exec.
    secret = sandbox / "fd-leak"
    secret.write_text("x")
    fd = os.open(secret, os.O_RDONLY)
    try:
        r = subprocess.run(as_user("alice", [str(host.hoopctl), "run", "--", "hoop-fds"], caller_env()),
                           capture_output=True, text=True, env=HARNESS_ENV, cwd="/", pass_fds=(fd,), timeout=30,
                           stdin=subprocess.DEVNULL)
    finally:
        os.close(fd)
    assert r.returncode == 0, r
    fds = {int(k): v for k, v in json.loads(r.stdout).items()}
    assert {0, 1, 2} <= set(fds), fds
    # Beyond stdio only python's own listdir descriptor (on /proc/.../fd) and,
    # for a script, the pinned script itself (the kernel runs the interpreter
    # on /dev/fd/N, so that descriptor must stay open).
    others = {k: v for k, v in fds.items()
              if k > 2 and not v.startswith("/proc/") and v != f"{RUN_BIN}/hoop-fds"}
    assert others == {}, fds
    assert str(secret) not in fds.values()


def test_ctrl_z_suspends_the_command_and_fg_resumes_it(host):
    """Ctrl-Z at the caller's terminal stops the command (not only a shell)
    and gives the terminal back to the caller's shell; `fg` resumes it with
    the terminal in hoopctl's hands again, as under sudo."""
    bash = shutil.which("bash")
    if not bash:
        pytest.skip("bash is needed for a shell with job control")
    host.add_program("hoop-readline", "#!/bin/sh\necho READY\nread x\necho \"GOT-$x\"\nexit 3\n")
    t = ScriptTerminal("alice", f"{bash} --norc --noprofile -i", caller_env({"SHELL": bash}))
    try:
        at = t.expect("$ ")
        t.send(b"PS1='PROMPT$ '; bind 'set enable-bracketed-paste off'\n")
        at = t.expect("PROMPT$ ", at)
        t.send(f"{host.hoopctl} run -- hoop-readline\n".encode())
        at = t.expect("READY", at)
        t.send(b"\x1a")  # Ctrl-Z
        at = t.expect("Stopped", at)
        at = t.expect("PROMPT$ ", at)  # the caller's shell has its terminal back
        t.send(b"echo SHELL-HAS-IT\n")
        at = t.expect("SHELL-HAS-IT\nPROMPT$ ", at)
        t.send(b"fg\n")
        time.sleep(0.5)
        t.send(b"resumed\n")  # read by the command, through hoopctl's pty
        at = t.expect("GOT-resumed", at)
        at = t.expect("PROMPT$ ", at)
        t.send(b"echo STATUS=$?\n")
        t.expect("STATUS=3", at)
        t.send(b"exit\n")
    finally:
        t.close()
