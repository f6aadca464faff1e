"""Issue 5: hoop-shell, the restricted login shell and SSH ForceCommand.
A real sshd (Debian's openssh-server) on a loopback port, started in the
session's private mount namespace; a real ssh client with test keys; users
whose login shell is hoop-shell, or who get it through ForceCommand; the real
setuid hoopctl against a real hoopd. Interactive sessions run in tmux."""

import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import BUILD, CANCELLED, DENIED, RUN_BIN, decode_cast

HOOP_SHELL_BUILT = BUILD / "cmd" / "hoop-shell"

# hoop-shell's own statuses (man/hoop-shell.1); hoopctl run's come from conftest.
SHELL_ERROR, REFUSED_BY_SHELL = 116, 117

# Users made for this file: `shelly` has hoop-shell as login shell, `forcy`
# gets it through ForceCommand (login shell bash), `lsess` gets
# `ForceCommand hoop-shell --login-session`, `both` has hoop-shell as login
# shell AND a ForceCommand (sshd then runs `hoop-shell -c hoop-shell`).
SHELL_USERS = {"shelly": 61101, "forcy": 61102, "lsess": 61103, "both": 61104}

SHELL_POLICY = f"""
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
commands = [["{RUN_BIN}/hoop-review-*", "**"]]
action = "review"
reviewers = ["@sre"]
approvals = 1

[[rule]]
name = "login-session"
users = ["lsess"]
run_as = ["lsess"]
commands = [["/bin/bash", "-l"], ["/usr/bin/bash", "-l"]]
action = "review"
reviewers = ["@sre"]
approvals = 1

[[rule]]
name = "test-tools"
users = ["*"]
run_as = "*"
commands = [["{RUN_BIN}/*", "**"]]
action = "allow"
"""
pytestmark = pytest.mark.policy(SHELL_POLICY)

ARGS_PY = """#!/usr/bin/python3
import json, os, sys
print("ARGV=" + json.dumps(sys.argv[1:]))
print("CWD=" + os.getcwd())
print("ENVKEYS=" + ",".join(sorted(os.environ)))
"""


# ---- fixtures ------------------------------------------------------------------

@pytest.fixture(scope="module")
def shell_bin(sandbox, hoopctl):
    """hoop-shell in the root-owned dir next to the setuid hoopctl."""
    dst = hoopctl.parent / "hoop-shell"
    shutil.copy2(HOOP_SHELL_BUILT, dst)
    os.chown(dst, 0, 0)
    os.chmod(dst, 0o755)
    return dst


@pytest.fixture(scope="module")
def ssh_env(sandbox, shell_bin):
    """The test users, their keys, and a running sshd. Yields a dict."""
    d = sandbox / "ssh"
    d.mkdir(mode=0o755)
    keys = d / "keys"
    keys.mkdir(mode=0o700)
    auth = d / "authorized_keys"
    auth.mkdir(mode=0o755)
    home = sandbox / "home"
    for name, uid in SHELL_USERS.items():
        shell = str(shell_bin) if name in ("shelly", "both") else "/bin/bash"
        subprocess.run(["groupadd", "-g", str(uid), name], check=True)
        subprocess.run(["useradd", "-u", str(uid), "-g", str(uid), "-d", str(home / name), "-m", "-s", shell,
                        name], check=True)
        # Without PAM, sshd refuses accounts whose password field says locked ("!").
        subprocess.run(["usermod", "-p", "*", name], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(keys / name)],
                       check=True)
        shutil.copyfile(keys / f"{name}.pub", auth / name)
        os.chmod(auth / name, 0o644)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = d / "sshd_config"
    config.write_text(f"""
ListenAddress 127.0.0.1:{port}
HostKey {d}/host_key
PidFile {d}/sshd.pid
UsePAM no
StrictModes no
AuthorizedKeysFile {auth}/%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers {" ".join(SHELL_USERS)}
AcceptEnv LANG LC_*
# hoop-shell's own check of SSH_AUTH_SOCK is what is tested here; the
# documented setting for production is AllowAgentForwarding no.
AllowAgentForwarding yes
AllowTcpForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel VERBOSE

Match User forcy
    ForceCommand {shell_bin}
Match User lsess
    ForceCommand {shell_bin} --login-session
Match User both
    ForceCommand {shell_bin}
""")
    made_run_sshd = not os.path.isdir("/run/sshd")
    if made_run_sshd:
        os.makedirs("/run/sshd", mode=0o755)
    t = subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(config)], capture_output=True, text=True)
    assert t.returncode == 0, t.stderr
    log = d / "sshd.log"
    logf = open(log, "ab")
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stdout=logf, stderr=logf)
    deadline = time.monotonic() + 15
    while "Server listening" not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, "sshd did not start: " + log.read_text(errors="replace")
        time.sleep(0.05)
    yield {"port": port, "keys": keys, "dir": d, "log": log, "shell": shell_bin}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    logf.close()
    if made_run_sshd:
        shutil.rmtree("/run/sshd", ignore_errors=True)
    for name in SHELL_USERS:
        subprocess.run(["userdel", "-r", name], check=False, capture_output=True)
        subprocess.run(["groupdel", name], check=False, capture_output=True)


@pytest.fixture
def host(run_host, hoopctl, ssh_env):
    h = run_host
    h.hoopctl = hoopctl
    h.ssh = ssh_env
    h.write_config(extra=f'[shell]\nhoopctl = "{hoopctl}"\n')
    h.add_program("hoop-echo", "#!/bin/sh\necho \"$@\"\n")
    h.add_program("hoop-args", ARGS_PY)
    h.add_program("hoop-exit", "#!/bin/sh\necho \"exiting with $1\"\nexit \"$1\"\n")
    h.add_program("hoop-forbidden", "#!/bin/sh\necho SHOULD-NOT-RUN\n")
    h.add_program("hoop-review-echo", "#!/bin/sh\necho reviewed \"$@\"\n")
    return h


@pytest.fixture
def tokens(server):
    return {u: server.token("user", u) for u in ("bob", "carol")}


def ssh_argv(host, user, *command, extra=()):
    e = host.ssh
    return ["ssh", "-F", "/dev/null", "-p", str(e["port"]), "-i", str(e["keys"] / user), "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR", *extra, f"{user}@127.0.0.1", *command]


SSH_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def ssh(host, user, *command, extra=(), timeout=60, env=None):
    return subprocess.run(ssh_argv(host, user, *command, extra=extra), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env or SSH_ENV)


def ssh_start(host, user, *command):
    return subprocess.Popen(ssh_argv(host, user, *command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL, env=SSH_ENV)


def requests_of(host, user):
    return [r for r in host.requests() if r["user"] == user]


def wait_pending(host, user, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pend = [r for r in requests_of(host, user) if r["state"] == "pending"]
        if pend:
            return pend[0]
        time.sleep(0.1)
    raise AssertionError(f"no pending request from {user}: {host.requests()}")




def stored_session(host, rid):
    """(session, header, output text, input text) of request rid, once complete."""
    deadline = time.monotonic() + 30
    body = None
    while time.monotonic() < deadline:
        st, body = host.server.api("GET", "/v1/sessions?limit=1000", host.host_token)
        assert st == 200, body
        mine = [s for s in body["sessions"] if s["request_id"] == rid]
        if mine and mine[0]["state"] == "complete":
            s = mine[0]
            cast = host.server.transcript(host.host_token, s["id"])
            assert s["sha256"] == hashlib.sha256(cast).hexdigest()
            header, out, inp, _ = decode_cast(cast)
            return s, header, out, inp
        time.sleep(0.1)
    raise AssertionError(f"no complete session for request {rid}: {body}")


# ---- commands passed on the ssh command line -----------------------------------

@pytest.mark.parametrize("user", ["shelly", "forcy", "both"])
def test_allowed_command_runs_recorded_with_its_exact_argv(host, user):
    r = ssh(host, user, "hoop-args hello 'a;b' \"c | d\" e\\&f ''")
    assert r.returncode == 0, r.stderr
    assert 'ARGV=["hello", "a;b", "c | d", "e&f", ""]' in r.stdout
    # hoopctl ran the command: its environment is hoopctl's, not the session's.
    env_keys = r.stdout.split("ENVKEYS=")[1].split()[0].split(",")
    assert "SSH_CONNECTION" not in env_keys and "HOOP_REQUEST_ID" in env_keys
    [req] = requests_of(host, user)
    assert req["argv"] == ["hoop-args", "hello", "a;b", "c | d", "e&f", ""]
    assert req["path"] == f"{RUN_BIN}/hoop-args" and req["run_as"] == "root"
    assert req["cwd"] == str(host.server.root.parent / "home" / user)
    s, header, out, _ = stored_session(host, req["id"])
    assert header["hoop"]["user"] == user and s["exit_status"] == 0
    assert 'ARGV=["hello", "a;b", "c | d", "e&f", ""]' in out


@pytest.mark.parametrize("user", ["shelly", "forcy"])
def test_exit_status_passes_through_ssh(host, user):
    r = ssh(host, user, "hoop-exit 7")
    assert r.returncode == 7, r.stderr
    assert r.stdout == "exiting with 7\n"


def test_command_approved_by_another_user_while_ssh_waits(host, tokens):
    p = ssh_start(host, "shelly", "hoop-review-echo", "deploy")
    try:
        req = wait_pending(host, "shelly")
        assert req["argv"] == ["hoop-review-echo", "deploy"]
        # The requester cannot approve; another person can.
        st, body = host.server.api("POST", f"/v1/requests/{req['id']}/approve", tokens["bob"], {"comment": "ok"})
        assert st == 200, body
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert out == "reviewed deploy\n"
    assert f"request {req['id']} needs approval" in err and "approved by bob" in err
    _, _, stored, _ = stored_session(host, req["id"])
    assert "reviewed deploy" in stored


def test_command_denied_by_a_reviewer(host, tokens):
    p = ssh_start(host, "forcy", "hoop-review-echo", "now")
    try:
        req = wait_pending(host, "forcy")
        st, body = host.server.api("POST", f"/v1/requests/{req['id']}/deny", tokens["carol"],
                                   {"comment": "not during the freeze"})
        assert st == 200, body
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == DENIED, err
    assert out == "" and "denied by carol: not during the freeze" in err


@pytest.mark.parametrize("user", ["shelly", "forcy"])
def test_command_denied_by_policy(host, user):
    r = ssh(host, user, "hoop-forbidden")
    assert r.returncode == DENIED, r.stderr
    assert "SHOULD-NOT-RUN" not in r.stdout
    assert "denied by policy rule forbidden" in r.stderr


REFUSED_LINES = [
    ("hoop-echo a; hoop-echo b", "';' (a list of commands)"),
    ("hoop-echo a | hoop-echo b", "'|' (pipe)"),
    ("hoop-echo a && hoop-echo b", "'&&' (and-list)"),
    ("hoop-echo a || hoop-echo b", "'||' (or-list)"),
    ("hoop-echo a &", "'&' (background job)"),
    ("hoop-echo a > /tmp/x", "redirection '>'"),
    ("hoop-echo a >> /tmp/x", "redirection '>>'"),
    ("hoop-echo a 2> /tmp/x", "redirection '2>'"),
    ("hoop-echo < /etc/passwd", "redirection '<'"),
    ("hoop-echo <<EOF", "redirection '<<'"),
    ("hoop-echo $(id)", "command substitution '$(...)'"),
    ("hoop-echo `id`", "command substitution '`...`'"),
    ("hoop-echo $HOME", "variable expansion '$HOME'"),
    ("hoop-echo ${HOME}", "parameter expansion '${...}'"),
    ("hoop-echo \"$HOME\"", "variable expansion '$HOME'"),
    ("hoop-echo *", "glob '*'"),
    ("hoop-echo ?", "glob '?'"),
    ("hoop-echo [ab]", "glob '['"),
    ("hoop-echo ~", "tilde expansion '~'"),
    ("hoop-echo a\nhoop-echo b", "a newline in the command"),
    ("hoop-echo 'unterminated", "unterminated single quote"),
    ("X=1 hoop-echo", "variable assignment 'X='"),
    ("cd /etc", "cd to /etc is not allowed"),
    ("scp -t /tmp", "scp (file copy over the scp protocol) is not allowed"),
    ("/usr/lib/openssh/sftp-server", "sftp (file transfer) is not allowed"),
    ("internal-sftp", "sftp (file transfer) is not allowed"),
    ("rsync --server -vlogDtpre.iLsfxC . /tmp", "rsync (file transfer) is not allowed"),
]


@pytest.mark.parametrize("user", ["shelly", "forcy"])
def test_shell_rules_refuse_each_construct_and_file_nothing(host, user):
    for line, construct in REFUSED_LINES:
        r = ssh(host, user, line)
        assert r.returncode == REFUSED_BY_SHELL, (line, r.returncode, r.stderr)
        assert r.stderr.startswith("hoop-shell: refused: "), (line, r.stderr)
        assert construct in r.stderr, (line, r.stderr)
        assert r.stderr.count("\n") == 1, (line, r.stderr)
        assert r.stdout == "", line
    assert requests_of(host, user) == [], "nothing refused by the shell reaches hoopd"


def test_real_scp_and_sftp_clients_are_refused(host, sandbox):
    e = host.ssh
    src = sandbox / "ssh" / "payload.txt"
    src.write_text("payload\n")

    def common(user):
        return ["-F", "/dev/null", "-P", str(e["port"]), "-i", str(e["keys"] / user), "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "LogLevel=ERROR"]

    # The old scp protocol runs `scp -t` through the shell, whose message
    # the client shows; scp over sftp asks for the sftp subsystem, which
    # sshd runs as `hoop-shell -c /usr/lib/openssh/sftp-server` (the client
    # does not show the remote stderr then).
    for proto, shown in ((["-O"], "scp (file copy over the scp protocol) is not allowed"), (["-s"], "")):
        r = subprocess.run(["scp", *proto, *common("shelly"), str(src), "shelly@127.0.0.1:copied.txt"], capture_output=True,
                           text=True, timeout=60, env=SSH_ENV, stdin=subprocess.DEVNULL)
        assert r.returncode != 0, r
        assert shown in r.stderr, r.stderr
    batch = sandbox / "ssh" / "batch"
    batch.write_text("ls\n")
    r = subprocess.run(["sftp", "-b", str(batch), *common("forcy"), "forcy@127.0.0.1"], capture_output=True, text=True,
                       timeout=60, env=SSH_ENV, stdin=subprocess.DEVNULL)
    # sftp shows no remote stderr either; test_sftp_allowed_by_the_host_config
    # shows the same client succeeding once the config allows it.
    assert r.returncode != 0 and r.stdout == "", r
    assert not (sandbox / "home" / "shelly" / "copied.txt").exists()
    assert host.requests() == []


def test_sftp_allowed_by_the_host_config(host, sandbox):
    host.write_config(extra=f'[shell]\nhoopctl = "{host.hoopctl}"\nallow_sftp = true\n')
    e = host.ssh
    (sandbox / "home" / "forcy" / "visible.txt").write_text("x\n")
    batch = sandbox / "ssh" / "batch-ls"
    batch.write_text("ls\n")
    r = subprocess.run(["sftp", "-b", str(batch), "-F", "/dev/null", "-P", str(e["port"]), "-i", str(e["keys"] / "forcy"),
                        "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "forcy@127.0.0.1"],
                       capture_output=True, text=True, timeout=60, env=SSH_ENV, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "visible.txt" in r.stdout
    # Still only sftp: scp stays refused.
    r = ssh(host, "forcy", "scp -t /tmp")
    assert r.returncode == REFUSED_BY_SHELL and "allow_scp" in r.stderr


def test_agent_forwarding_is_refused(host, sandbox):
    agent_dir = sandbox / "ssh" / "agent"
    agent_dir.mkdir(mode=0o700, exist_ok=True)
    sock = agent_dir / "sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.05)
        env = dict(SSH_ENV, SSH_AUTH_SOCK=str(sock))
        for user in ("shelly", "forcy"):
            r = ssh(host, user, "hoop-echo hi", extra=("-A",), env=env)
            assert r.returncode == REFUSED_BY_SHELL, r.stderr
            assert "ssh agent forwarding is not allowed on this account" in r.stderr
            assert r.stdout == ""
        # Without -A the same command runs.
        r = ssh(host, "shelly", "hoop-echo hi", env=env)
        assert r.returncode == 0 and r.stdout == "hi\n", r.stderr
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_hoopctl_path_comes_from_root_owned_config_not_the_environment(host, sandbox):
    # The [shell] hoopctl key points at a missing file: hoop-shell says so.
    host.write_config(extra='[shell]\nhoopctl = "/nonexistent/hoopctl"\n')
    r = ssh(host, "shelly", "hoop-echo hi")
    assert r.returncode == SHELL_ERROR, r.stderr
    assert "cannot run /nonexistent/hoopctl" in r.stderr
    # A config that is not root's alone is refused outright.
    os.chmod(host.config, 0o666)
    try:
        r = ssh(host, "shelly", "hoop-echo hi")
        assert r.returncode == SHELL_ERROR
        assert "hoop.toml" in r.stderr and "writable" in r.stderr, r.stderr
    finally:
        os.chmod(host.config, 0o644)


# ---- interactive sessions, through a terminal (tmux) ---------------------------

class Tmux:
    """One tmux session on a private server socket, running `argv`."""

    def __init__(self, name, argv):
        self.sock = f"hoop-shell-test-{os.getpid()}"
        self.name = name
        cmd = " ".join(shlex_quote(a) for a in argv) + "; echo SSH-EXIT=$?; sleep 60"
        subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "160",
                        "-y", "50", cmd], check=True, env={"PATH": "/usr/bin:/bin", "TERM": "xterm"})

    def screen(self):
        return subprocess.run(["tmux", "-L", self.sock, "capture-pane", "-p", "-J", "-S", "-200", "-t", self.name],
                              capture_output=True, text=True).stdout

    def send(self, *keys):
        subprocess.run(["tmux", "-L", self.sock, "send-keys", "-t", self.name, *keys], check=True)

    def line(self, text):
        self.send("-l", text)
        self.send("Enter")

    def wait_for(self, text, timeout=30, count=1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.screen().count(text) >= count:
                return self.screen()
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared:\n{self.screen()}")

    def close(self):
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)


def shlex_quote(s):
    import shlex
    return shlex.quote(s)


@pytest.fixture
def tmux():
    sessions = []

    def start(name, argv):
        t = Tmux(name, argv)
        sessions.append(t)
        return t

    yield start
    for t in sessions:
        t.close()


def test_interactive_prompt(host, tokens, tmux):
    t = tmux("shelly", ssh_argv(host, "shelly", extra=("-tt",)))
    t.wait_for("hoop shelly@")
    assert "type help for the rules" in t.screen()

    t.line("hoop-echo 'one;two' three")
    t.wait_for("one;two three")
    rid = requests_of(host, "shelly")[0]["id"]

    t.line("hoop-echo a | hoop-echo b")
    t.wait_for("hoop-shell: refused: '|' (pipe) is not allowed")

    # Ctrl-C drops a half-typed line.
    t.send("-l", "hoop-echo never-run")
    t.send("C-c")
    t.wait_for("hoop shelly@", count=4)

    # Ctrl-C while waiting for approval cancels the request.
    t.line("hoop-review-echo waiting")
    t.wait_for("needs approval")
    pending = wait_pending(host, "shelly")
    t.send("C-c")
    t.wait_for("cancelled")
    t.wait_for("hoop shelly@", count=5)
    st, body = host.server.api("GET", f"/v1/requests/{pending['id']}", tokens["bob"])
    assert st == 200 and body["state"] == "cancelled", body

    t.line("history")
    screen = t.wait_for("4  history")
    assert "1  hoop-echo 'one;two' three" in screen and "never-run" not in screen.split("history")[-1]

    t.line("requests")
    t.wait_for("you have no personal hoop token")

    t.line("cd /etc")
    t.wait_for("refused: cd to /etc is not allowed")

    t.line("exit 3")
    screen = t.wait_for("SSH-EXIT=")
    assert "SSH-EXIT=3" in screen, screen

    assert [r["argv"] for r in requests_of(host, "shelly")] == [["hoop-review-echo", "waiting"],
                                                                  ["hoop-echo", "one;two", "three"]]
    s, header, out, _ = stored_session(host, rid)
    assert header["hoop"]["tty"] is True and "one;two three" in out


@pytest.mark.parametrize("user", ["forcy", "both"])  # both: sshd runs `hoop-shell -c hoop-shell`
def test_interactive_ctrl_d_leaves_with_the_last_status(host, tmux, user):
    t = tmux(user, ssh_argv(host, user, extra=("-tt",)))
    t.wait_for(f"hoop {user}@")
    t.line("hoop-exit 4")
    t.wait_for("exiting with 4")
    t.wait_for(f"hoop {user}@", count=2)
    t.send("C-d")
    screen = t.wait_for("SSH-EXIT=")
    assert "SSH-EXIT=4" in screen, screen


def test_login_session_is_one_approved_recorded_request(host, tokens, tmux):
    t = tmux("lsess", ssh_argv(host, "lsess", extra=("-tt",)))
    t.wait_for("needs approval")
    req = wait_pending(host, "lsess")
    assert req["argv"] == ["/bin/bash", "-l"] and req["run_as"] == "lsess"
    assert req["rule"] == "login-session"
    st, body = host.server.api("POST", f"/v1/requests/{req['id']}/approve", tokens["bob"], {"comment": "ok"})
    assert st == 200, body
    t.wait_for("approved by bob")
    time.sleep(0.5)
    t.line("echo LOGIN-$((6*7)) as $(id -un)")
    t.wait_for("LOGIN-42 as lsess")
    t.line("exit 5")
    screen = t.wait_for("SSH-EXIT=")
    assert "SSH-EXIT=5" in screen, screen
    s, header, out, inp = stored_session(host, req["id"])
    assert header["hoop"]["argv"] == ["/bin/bash", "-l"] and header["hoop"]["run_as"] == "lsess"
    assert "LOGIN-42 as lsess" in out and s["exit_status"] == 5


def test_login_session_with_a_command_is_a_request_of_its_own(host):
    r = ssh(host, "lsess", "hoop-echo via force")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "via force\n"
    assert [x["argv"] for x in requests_of(host, "lsess")] == [["hoop-echo", "via", "force"]]


def test_requests_builtin_lists_pending_requests_with_a_personal_token(host, server):
    # Without a token it says so (covered in the interactive test); with one,
    # hoopctl list shows the user's pending request.
    tok_dir = Path(host.server.root.parent / "home" / "shelly" / ".config" / "hoop")
    tok_dir.mkdir(parents=True, exist_ok=True)
    tok = tok_dir / "token"
    tok.write_text(server.token("user", "shelly") + "\n")
    uid = SHELL_USERS["shelly"]
    for p in (tok_dir.parent, tok_dir, tok):
        os.chown(p, uid, uid)
    os.chmod(tok, 0o600)
    p = ssh_start(host, "shelly", "hoop-review-echo", "listed")
    try:
        req = wait_pending(host, "shelly")
        r = ssh(host, "shelly", "requests")
        assert r.returncode == 0, r.stderr
        row = [line for line in r.stdout.splitlines() if line.split()[:1] == [str(req["id"])]]
        assert row and "pending" in row[0] and "hoop-review-echo listed" in row[0], r.stdout
    finally:
        p.kill()
        p.wait(timeout=30)
        shutil.rmtree(tok_dir.parent, ignore_errors=True)


def test_documented_sshd_config_example_is_valid(sandbox):
    """The sshd_config excerpt in man/hoop-shell.1 passes `sshd -t`."""
    src = Path(os.environ.get("HOOP_SOURCE_DIR", Path(__file__).resolve().parents[2]))
    man = (src / "man" / "hoop-shell.1").read_text()
    start = man.index("Subsystem sftp")
    example = man[start:man.index(".EE", start)]
    example = example.replace("\\-", "-")
    assert "ForceCommand /usr/local/bin/hoop-shell --login-session" in example
    d = sandbox / "ssh-doc"
    d.mkdir(mode=0o755, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    for group in ("hoop-shell", "hoop-force", "hoop-recorded"):
        subprocess.run(["groupadd", "-f", group], check=True)
    (d / "sshd_config").write_text(f"HostKey {d}/host_key\nUsePAM no\n" + example)
    made = not os.path.isdir("/run/sshd")
    if made:
        os.makedirs("/run/sshd", mode=0o755)
    try:
        r = subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(d / "sshd_config")], capture_output=True, text=True)
    finally:
        if made:
            shutil.rmtree("/run/sshd", ignore_errors=True)
        for group in ("hoop-shell", "hoop-force", "hoop-recorded"):
            subprocess.run(["groupdel", group], check=False, capture_output=True)
    assert r.returncode == 0, r.stderr
