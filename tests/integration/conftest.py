"""Fixtures for integration tests: real hoopd on loopback, real setuid hoopctl,
real users. The whole session runs in a private mount namespace (ctest starts
pytest under `unshare --mount`); a copy of /etc is bind-mounted over /etc so
that test users and /etc/hoop exist only inside it."""

import json
import os
import shutil
import signal
import threading
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BUILD = Path(os.environ.get("HOOP_BUILD_DIR", Path(__file__).resolve().parents[2] / "build"))
HOOPD = BUILD / "cmd" / "hoopd"
HOOPCTL_BUILT = BUILD / "cmd" / "hoopctl"

# name -> uid; high uids so they never collide with real accounts
USERS = {"alice": 61001, "bob": 61002, "carol": 61003, "dave": 61004, "mallory": 61005}


def _in_private_namespace():
    """True when our mount namespace differs from our parent's (ctest runs
    `unshare --mount ... python3 -m pytest`, so the parent is ctest). Never
    bind-mount over /etc when this cannot be established."""
    try:
        return os.readlink("/proc/self/ns/mnt") != os.readlink(f"/proc/{os.getppid()}/ns/mnt")
    except OSError:
        return False


@pytest.fixture(scope="session")
def sandbox():
    """A world-readable scratch dir plus a private /etc with test users."""
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (they create users and a setuid binary)")
    if not _in_private_namespace():
        pytest.exit("run the integration tests under `unshare --mount --propagation private` (ctest does)", 2)
    root = Path(tempfile.mkdtemp(prefix="hoop-it-"))
    os.chmod(root, 0o755)
    etc = root / "etc"
    subprocess.run(["cp", "-a", "/etc", str(etc)], check=True)
    subprocess.run(["mount", "--bind", str(etc), "/etc"], check=True)
    home = root / "home"
    home.mkdir(mode=0o755)
    for name, uid in USERS.items():
        subprocess.run(["groupadd", "-g", str(uid), name], check=True)
        subprocess.run(["useradd", "-u", str(uid), "-g", str(uid), "-d", str(home / name), "-m",
                        "-s", "/bin/bash", name], check=True)
    yield root
    subprocess.run(["umount", "-l", "/etc"], check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pki(sandbox):
    d = sandbox / "pki"
    d.mkdir(mode=0o755)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=hoop test CA", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(d / "server.pem"))
    os.chmod(d / "ca.pem", 0o644)
    return d


@pytest.fixture(scope="session")
def hoopctl(sandbox):
    """The real hoopctl, installed setuid root in a root-owned directory."""
    d = sandbox / "bin"
    d.mkdir(mode=0o755)
    dst = d / "hoopctl"
    shutil.copy2(HOOPCTL_BUILT, dst)
    os.chown(dst, 0, 0)
    os.chmod(dst, 0o4755)
    return dst


DEFAULT_POLICY = """
[groups]
sre = ["bob", "carol"]
ops = ["alice", "dave"]

[[rule]]
name = "restart-web"
users = ["@ops"]
hosts = ["web*"]
commands = [["/usr/bin/systemctl", "restart", "*"]]
action = "review"
reviewers = ["@sre", "alice"]
approvals = 1
ttl = "15m"

[[rule]]
name = "two-person"
users = ["@ops"]
hosts = ["*"]
commands = [["/usr/sbin/reboot"]]
action = "review"
reviewers = ["@sre", "dave"]
approvals = 2

[[rule]]
name = "status"
users = ["*"]
commands = [["/usr/bin/systemctl", "status", "**"]]
action = "allow"

[[rule]]
name = "no-shells"
users = ["*"]
commands = [["/bin/bash", "**"], ["/usr/bin/bash", "**"]]
action = "deny"

[[rule]]
name = "need-reason"
users = ["@ops"]
commands = [["/usr/bin/apt-get", "**"]]
action = "review"
reviewers = ["@sre"]
reason_required = true
"""


class Server:
    """A real hoopd on 127.0.0.1 with TLS, in its own directory."""

    def __init__(self, root: Path, pki: Path, policy: str, extra: str = "", tls: bool = True):
        self.root = root
        self.root.mkdir(mode=0o755, exist_ok=True)
        self.pki = pki
        (root / "policy.toml").write_text(policy)
        self.config = root / "hoopd.toml"
        self.config.write_text(
            f'listen = "127.0.0.1:0"\n'
            f'data_dir = "{root}/data"\n'
            f'policy = "{root}/policy.toml"\n'
            f'{extra}\n' +
            (f'[tls]\ncert = "{pki}/server.pem"\nkey = "{pki}/server.key"\n' if tls else
             'insecure_http = true\n'))
        self.tls = tls
        self.proc = None
        self.port = None
        self.log = root / "hoopd.log"
        self._fixed_port = None
        self._log_lines = 0

    def start(self):
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen([str(HOOPD), "serve", "--config", str(self.config)],
                                     stdout=self._logf, stderr=self._logf)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            for line in text.splitlines()[self._log_lines:]:
                if "listening on" in line:
                    self.port = int(line.rsplit(":", 1)[1].split()[0])
            if self.port:
                self._log_lines = len(text.splitlines())
                if not self._fixed_port:
                    # Later starts (restart()) listen on the same port: the
                    # host config and clients keep working.
                    self._fixed_port = self.port
                    self.config.write_text(self.config.read_text().replace(
                        'listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{self.port}"', 1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("hoopd exited:\n" + text)
            time.sleep(0.05)
        raise RuntimeError("hoopd did not start:\n" + self.log.read_text(errors="replace"))

    def stop(self, sig=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None
        self.port = None

    def restart(self, sig=signal.SIGKILL, down_for=0.0):
        """Stops hoopd (SIGKILL by default: no goodbye, no flush) and starts it
        again on the same port with the same data."""
        self.stop(sig)
        time.sleep(down_for)
        return self.start()

    @property
    def url(self):
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port or self._fixed_port}"

    def hoopd(self, *args, check=True):
        r = subprocess.run([str(HOOPD), *args], capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError(f"hoopd {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def token(self, kind: str, name: str) -> str:
        return self.hoopd("token", "create", "--config", str(self.config), f"--{kind}", name).stdout.strip()

    def ssl_context(self):
        return ssl.create_default_context(cafile=str(self.pki / "ca.pem"))

    def api(self, method, path, token=None, body=None, raw=None, headers=None, timeout=30):
        """Returns (status, parsed JSON or text)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            ctx = self.ssl_context() if self.tls else None
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def transcript(self, token, sid) -> bytes:
        """The whole transcript of session `sid`, as hoopd stores it."""
        out, offset = b"", 0
        for _ in range(10000):
            req = urllib.request.Request(f"{self.url}/v1/sessions/{sid}/transcript?offset={offset}")
            req.add_header("Authorization", f"Bearer {token}")
            ctx = self.ssl_context() if self.tls else None
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                body = r.read()
                length = int(r.headers["Hoop-Session-Length"])
            out += body
            offset += len(body)
            if offset >= length:
                return out
        raise AssertionError("transcript never ended")

    def file_request(self, host_token, user="alice", argv=None, path=None, reason="", run_as="root"):
        argv = argv or ["systemctl", "restart", "nginx"]
        body = {"user": user, "run_as": run_as, "argv": argv, "path": path or "/usr/bin/systemctl",
                "digest": "ab" * 32, "cwd": "/", "tty": "", "reason": reason}
        return self.api("POST", "/v1/requests", host_token, body)


@pytest.fixture
def server(sandbox, pki, request):
    root = Path(tempfile.mkdtemp(prefix="srv-", dir=sandbox))
    os.chmod(root, 0o755)
    marker = request.node.get_closest_marker("policy")
    policy = marker.args[0] if marker else DEFAULT_POLICY
    s = Server(root, pki, policy).start()
    yield s
    s.stop()


class Ctl:
    """Runs the setuid hoopctl as a given Unix user with a personal token."""

    def __init__(self, path, server):
        self.path, self.server = path, server

    def __call__(self, user, *args, token=None, env=None, timeout=30, input=None):
        e = {"PATH": "/usr/bin:/bin", "HOOP_SERVER": self.server.url,
             "HOOP_CA": str(self.server.pki / "ca.pem"), "LANG": "C.UTF-8"}
        if token:
            e["HOOP_TOKEN"] = token
        e.update(env or {})
        uid = USERS[user] if user in USERS else int(user)
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--init-groups" if user in USERS else "--clear-groups",
               str(self.path), *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout, input=input)


@pytest.fixture
def ctl(hoopctl, server):
    return Ctl(hoopctl, server)


def pytest_configure(config):
    config.addinivalue_line("markers", "policy(text): policy TOML for the server fixture")


# ---- `hoopctl run`: this host set up to use a test server -------------------

def _build_setting(name, default):
    """A cache variable of the build under test (e.g. HOOP_SYSCONFDIR)."""
    try:
        for line in (BUILD / "CMakeCache.txt").read_text().splitlines():
            if line.startswith(name + ":"):
                return line.split("=", 1)[1]
    except OSError:
        pass
    return default


HOOP_SYSCONFDIR = Path(_build_setting("HOOP_SYSCONFDIR", "/etc/hoop"))
# Test programs for `run` live here: secure_path entries and everything above
# them must be root's alone, which the sandbox under /tmp (mode 1777) is not.
# /etc is the session's private copy, so this never touches the host.
RUN_BIN = Path("/etc/hoop-it/sbin")

# hoopctl run's exit statuses (man/hoopctl.1, cmd/hoopctl/commands.h), for
# every test file that runs it (hoop-shell passes them on).
(NO_RECORDING, CANCELLED, REFUSED, USAGE, DENIED, EXPIRED, TIMED_OUT, UNREACHABLE,
 NOT_FOUND) = 118, 119, 120, 121, 122, 123, 124, 125, 127
RUN_HOST = "web1"


class RunHost:
    """The host side of `hoopctl run` against `server`: HOOP_SYSCONFDIR/hoop.toml
    (server, CA, credential, secure_path = RUN_BIN first), the host token for
    RUN_HOST in host.token (root:root 0600), the CA copied next to them, and
    RUN_BIN (root:root 0755) for test programs. Everything is removed again
    by the fixture."""

    def __init__(self, server):
        self.server = server
        self.etc = HOOP_SYSCONFDIR
        self.config = self.etc / "hoop.toml"
        self.credential = self.etc / "host.token"
        self.ca = self.etc / "ca.pem"
        self.bin = RUN_BIN
        self.secure_path = f"{RUN_BIN}:/usr/sbin:/usr/bin:/sbin:/bin"
        # Inside the private /etc, so a test never touches the machine's spool.
        self.spool = RUN_BIN.parent / "spool"
        self.host_token = server.token("host", RUN_HOST)

    def setup(self):
        for d in (self.etc, self.bin.parent, self.bin):
            d.mkdir(mode=0o755, exist_ok=True)
            os.chown(d, 0, 0)
            os.chmod(d, 0o755)
        shutil.copyfile(self.server.pki / "ca.pem", self.ca)
        os.chmod(self.ca, 0o644)
        self.credential.write_text(self.host_token + "\n")
        os.chmod(self.credential, 0o600)
        self.write_config()
        return self

    def write_config(self, server_url=None, extra=""):
        self.config.write_text(
            f'server = "{server_url or self.server.url}"\n'
            f'ca = "{self.ca}"\n'
            f'credential = "{self.credential}"\n'
            f'secure_path = "{self.secure_path}"\n'
            f'spool_dir = "{self.spool}"\n'
            f'offline = "deny"\n{extra}')
        os.chown(self.config, 0, 0)
        os.chmod(self.config, 0o644)

    def add_program(self, name, text=None, copy_of=None, mode=0o755):
        """A root-owned program in RUN_BIN: a script `text`, or a copy of a binary."""
        p = self.bin / name
        if copy_of:
            shutil.copyfile(copy_of, p)
        else:
            p.write_text(text)
        os.chown(p, 0, 0)
        os.chmod(p, mode)
        return p

    def requests(self):
        """Every request this host filed, newest first."""
        st, body = self.server.api("GET", "/v1/requests?limit=1000", self.host_token)
        assert st == 200, body
        return body["requests"]

    def teardown(self):
        for p in (self.config, self.credential, self.ca):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        shutil.rmtree(self.bin.parent, ignore_errors=True)


@pytest.fixture
def run_host(server, hoopctl):
    """This host configured for `hoopctl run` against the `server` fixture."""
    if not str(HOOP_SYSCONFDIR).startswith("/etc/"):
        pytest.skip(f"HOOP_SYSCONFDIR is {HOOP_SYSCONFDIR}: the tests only write below the private /etc")
    h = RunHost(server).setup()
    yield h
    h.teardown()


# ---- a link to hoopd that a test can break -----------------------------------

class FaultyLink:
    """A TCP relay on 127.0.0.1 in front of hoopd, for faults that must hit at
    an exact point of the protocol: `cut_on(pattern)` closes every connection
    and refuses new ones from the moment the client sends `pattern`
    (e.g. the first request to /v1/sessions), until `up()`. TLS hides the
    request lines, so tests that cut on a pattern use the plain-HTTP server."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.down = False
        self.pattern = None
        self.conns = []
        self.lock = threading.Lock()
        self.closing = False
        self.cuts = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def cut_on(self, pattern: bytes):
        self.pattern = pattern

    def up(self):
        with self.lock:
            self.down = False
            self.pattern = None

    def cut(self):
        with self.lock:
            self.down = True
            self.cuts += 1
            conns, self.conns = self.conns, []
        for c in conns:
            for s in c:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self):
        self.closing = True
        self.cut()
        self.thread.join(timeout=5)
        self.sock.close()

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                down = self.down
            if down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src, dst, from_client):
        tail = b""
        try:
            src.settimeout(None)
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and self.pattern is not None:
                    if self.pattern in tail + data:
                        self.cut()
                        return
                    tail = (tail + data)[-len(self.pattern):]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def decode_cast(cast: bytes):
    """(header, output text, input text, events) of an asciicast v2 file."""
    lines = cast.decode("utf-8").splitlines()
    header = json.loads(lines[0])
    events = [json.loads(line) for line in lines[1:] if line.strip()]
    out = "".join(e[2] for e in events if e[1] == "o")
    inp = "".join(e[2] for e in events if e[1] == "i")
    return header, out, inp, events


# ---- running things as a test user ------------------------------------------

HARNESS_ENV = {"PATH": "/usr/bin:/bin"}


def as_user(user, argv, env=None):
    """argv run as `user`. The caller's environment `env` is set by env(1)
    after setpriv switched users, so nothing root runs in the harness sees it
    (setpriv, as root, would itself honour LD_PRELOAD)."""
    uid = USERS[user]
    pairs = [f"{k}={v}" for k, v in (env or {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}).items()]
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--init-groups", "/usr/bin/env", "-i", *pairs, *argv]


class ScriptTerminal:
    """`command` (a shell command line) run as `user` on a terminal of its
    own, made by util-linux script(1); what is sent goes in as typed keys,
    what the terminal shows comes back (CRs dropped)."""

    def __init__(self, user, command, env):
        script = shutil.which("script")
        if not script:
            pytest.skip("util-linux `script` is needed to give hoopctl a terminal")
        self.proc = subprocess.Popen(as_user(user, [script, "-qec", command, "/dev/null"], env), env=HARNESS_ENV,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     cwd="/")
        self.chunks = []
        self.reader = threading.Thread(
            target=lambda: self.chunks.extend(iter(lambda: self.proc.stdout.read1(4096), b"")))
        self.reader.start()

    def text(self):
        return b"".join(self.chunks).decode("utf-8", "replace").replace("\r", "")

    def expect(self, what, after=0, timeout=20):
        """Where `what` ends in the output, looking from `after`; bounded wait."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            i = self.text().find(what, after)
            if i >= 0:
                return i + len(what)
            time.sleep(0.05)
        raise AssertionError(f"{what!r} not seen in {self.text()!r}")

    def send(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close(self, timeout=30):
        """Waits for the end (stdin stays open until then: an EOF would reach
        the command as ^D); kills it when it does not come."""
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.stdin.close()
            self.reader.join(timeout=5)
        return self.proc.returncode
