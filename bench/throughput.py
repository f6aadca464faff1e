#!/usr/bin/env python3
"""Output throughput through a pseudo-terminal (issue 4): `cat` of a 100 MB
text file, side by side in one run, as the same unprivileged user:

  plain                 cat FILE                            (no wrapper)
  script -q -c          script -q -c "cat FILE" /dev/null
  sudo+logsrvd          sudo -n cat FILE, sudoers log_output + use_pty,
                        I/O log sent to a sudo_logsrvd on loopback (plaintext)
  hoopctl run (http)    hoopctl run -- cat FILE, allow rule, record = "required"
  hoopctl run (https)   (default), transcript masked, spooled and streamed to a
                        loopback hoopd, over plain HTTP and over TLS

Each run gets a fresh pty (200x50) as its controlling terminal and stdin,
stdout and stderr; the harness reads the master as fast as it can (non-blocking
1 MiB reads, poll() only when it is empty) until EIO and the wrapper's exit.
MB/s = file bytes (10^6) / wall time from spawn to exit. Peak RSS is GNU
time's %M: ru_maxrss from wait4() on the wrapper, the largest RSS in its
waited process tree (sudo: sudo and its monitor; hoopctl: the monitor and the
command's session leader; cat itself is in every tree). GNU time sits between
the harness and the wrapper because a process forked from this Python harness
would carry the harness's own RSS into ru_maxrss. Also shown: CPU seconds
of the wrapper's tree (GNU time %U + %S) and of its log server (hoopd or
sudo_logsrvd, from /proc) per run: on a small machine they are what the
wrappers compete for. Round 0 warms up and is not counted; each round rotates
the order; `sync` runs before every run, so one run's 100+ MB of logs are not
written back during the next.

After every sudo run the harness checks that sudo_logsrvd stored an I/O log
whose ttyout is byte-identical to what cat wrote (else the comparison would be
fake); after every hoopctl run, that hoopd holds a complete session whose
transcript's output events are byte-identical, with the SHA-256 hoopd checked.
The text is log-like lines that none of hoop's built-in secret patterns match
(checked while it is generated), so the masker rewrites nothing.

Run through bench/run.sh (`bench/run.sh throughput`), which builds, installs
sudo and GNU time from Debian and starts this under `unshare --mount`: the
sudoers, hoop.toml and the bench user live in a private copy of /etc and
vanish afterwards.

Environment: ROUNDS (default 3), SIZE_MB (default 100), SPOOL_TMPFS=1 (hoopctl's
spool on tmpfs, to see what its disk writes cost), RUN_TIMEOUT seconds
per run (default 300), CONTENDERS (comma-separated subset of plain, script,
sudo, hoop-http, hoop-https; default all; also hoop-http-base: hoopctl and
hoopd from BASE_BUILD, another build directory, to compare two builds side
by side in one run). PERF_OUT, PERF_WHO, PERF_MODE: see start_perf()."""

import errno
import fcntl
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
import urllib.request
from pathlib import Path

BUILD = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build-bench")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SIZE = int(os.environ.get("SIZE_MB", "100")) * 1000 * 1000
RUN_TIMEOUT = float(os.environ.get("RUN_TIMEOUT", "300"))
USER, UID = "hoopbench", 61501
ROWS, COLS = 50, 200
AIM_PLAIN, AIM_SUDO, AIM_RSS_MB = 0.90, 1.2, 32.0
# hoop's built-in secret patterns (src/transcript/mask.cc), as far as Python's re
# can say them: the generated text must match none of them.
SECRETS = re.compile(
    rb"-----BEGIN|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"
    rb"|(?i:(?<![a-z0-9])(?:password|passwd|pwd|secret|token|api[_-]?key)[\"']?\s*[=:])")


class Failure(Exception):
    pass


def sh(*args, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=120, **kw)
    if r.returncode != 0:
        raise Failure(f"{' '.join(map(str, args))} failed ({r.returncode}): {r.stderr.strip()}")
    return r


# ---- the text -------------------------------------------------------------

def make_text(path: Path):
    """~SIZE bytes of log-like lines; returns (size, tty bytes, tty sha256):
    what a pty with ONLCR turns it into (\\n -> \\r\\n)."""
    rng = random.Random(20261123)
    hosts = [f"{r}-{n:02d}" for r in ("web", "db", "cache", "batch", "edge") for n in range(1, 13)]
    words = ("request served from upstream pool after retry while the cache was warming up and the "
             "scheduler moved two replicas to another node because disk pressure crossed the soft "
             "limit for longer than the grace period allowed so the queue drained slowly until the "
             "autoscaler added capacity and latency returned to normal levels for every tenant").split()
    paths = ["/", "/index.html", "/api/v2/orders", "/api/v2/orders/{n}", "/static/app.{n}.js",
             "/healthz", "/metrics", "/api/v2/users/{n}/profile", "/search?q=item{n}&page=2"]
    agents = ["curl/7.88.1", "Mozilla/5.0 (X11; Linux x86_64) Firefox/115.0", "Go-http-client/2.0",
              "kube-probe/1.28", "python-requests/2.28.1"]
    tables = ["orders", "users", "invoices", "shipments", "audit_events", "sessions_archive"]
    ts = 1_795_000_000.0

    def line():
        nonlocal ts
        ts += rng.random() * 0.01
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
        host = rng.choice(hosts)
        k = rng.randrange(6)
        if k <= 1:
            p = rng.choice(paths).replace("{n}", str(rng.randrange(1, 99999)))
            return (f'{t} {host} nginx[{rng.randrange(300, 32000)}]: 10.{rng.randrange(256)}.'
                    f'{rng.randrange(256)}.{rng.randrange(1, 255)} - - "{rng.choice(["GET", "POST", "PUT"])} '
                    f'{p} HTTP/1.1" {rng.choice([200, 200, 200, 201, 204, 301, 404, 500])} '
                    f'{rng.randrange(120, 90000)} "-" "{rng.choice(agents)}" rt={rng.random() * 0.4:.3f}')
        if k == 2:
            return (f"{t} {host} postgres[{rng.randrange(300, 32000)}]: LOG:  duration: "
                    f"{rng.random() * 800:.3f} ms  statement: SELECT id, state, updated_at FROM "
                    f"{rng.choice(tables)} WHERE id = {rng.randrange(1, 10**7)} LIMIT {rng.randrange(1, 500)}")
        if k == 3:
            return (f"{t} {host} kubelet[{rng.randrange(300, 32000)}]: I{rng.randrange(10**6):06d} "
                    f"pod=shop/{rng.choice(tables)}-{rng.randrange(16**5):05x} container=main "
                    f"state={rng.choice(['running', 'waiting', 'terminated'])} restarts={rng.randrange(9)}")
        n = rng.randrange(4, 24)
        return (f"{t} {host} worker[{rng.randrange(300, 32000)}]: job {rng.getrandbits(64):016x} "
                + " ".join(rng.choice(words) for _ in range(n)))

    size = tty = 0
    h = hashlib.sha256()
    with open(path, "wb") as f:
        while size < SIZE:
            chunk = ("\n".join(line() for _ in range(2000)) + "\n").encode()[: SIZE - size]
            if not chunk.endswith(b"\n"):
                chunk = chunk[:-1] + b"\n"
            if SECRETS.search(chunk):
                raise Failure("generated text matches a secret pattern; the masker would rewrite it")
            f.write(chunk)
            size += len(chunk)
            c = chunk.replace(b"\n", b"\r\n")
            tty += len(c)
            h.update(c)
    os.chmod(path, 0o644)
    return size, tty, h.hexdigest()


# ---- processes --------------------------------------------------------------

def descendants(pid):
    """Every live process below `pid` (by /proc ppid links), deepest last."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_tree(pid):
    for p in [pid, *descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop(proc: subprocess.Popen):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the measured run ---------------------------------------------------------

def drain(name, argv, env, scratch: Path, expect: int):
    """Runs argv (as the bench user) on a fresh pty and reads its master until
    EIO and exit. Returns (seconds, bytes read, peak RSS KiB, CPU seconds of
    the wrapper's process tree, seconds from the arrival of the `expect`th byte
    to the wrapper's exit)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    rss_file = scratch / "rss.txt"
    rss_file.unlink(missing_ok=True)
    # setsid --ctty: a new session whose controlling terminal is the pty (the
    # harness's child is no group leader, so setsid does not fork).
    full = ["setsid", "--ctty", "/usr/bin/time", "-f", "%M %U %S", "-o", str(rss_file),
            "setpriv", f"--reuid={UID}", f"--regid={UID}", "--init-groups", *argv]
    buf = bytearray(1 << 20)
    head = b""
    n = last = total = 0
    whole = None  # when the last of the `expect` bytes arrived
    t0 = time.perf_counter()
    deadline = t0 + RUN_TIMEOUT
    try:
        proc = subprocess.Popen(full, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    try:
        os.set_blocking(master, False)
        poller = select.poll()
        poller.register(master, select.POLLIN)
        while True:
            try:
                n = os.readv(master, [buf])
            except BlockingIOError:
                if time.perf_counter() > deadline:
                    raise Failure(f"{name}: no EOF after {RUN_TIMEOUT:g} s ({total} bytes read)")
                poller.poll(100)
                continue
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                n = 0
                break  # every slave fd is closed
            if n == 0:
                break
            last = n
            if time.perf_counter() > deadline:
                raise Failure(f"{name}: still writing after {RUN_TIMEOUT:g} s ({total} bytes read)")
            if total < 4096:
                head += bytes(buf[: min(n, 4096)])
            total += n
            if whole is None and total >= expect:
                whole = time.perf_counter()
        while True:  # bounded: the wrapper has closed the pty; give it until the deadline
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                raise Failure(f"{name}: closed its terminal but did not exit within {RUN_TIMEOUT:g} s")
            time.sleep(0.001)
        secs = time.perf_counter() - t0
        after_last = time.perf_counter() - (whole or t0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    except BaseException:
        kill_tree(proc.pid)
        proc.wait(10)
        raise
    finally:
        os.close(master)
    tail = bytes(buf[max(0, last - 2048): last])
    if proc.returncode != 0:
        raise Failure(f"{name} exited {proc.returncode}; output began {head[:2048]!r} ... ended {tail!r}")
    try:
        rss, user, system = rss_file.read_text().splitlines()[-1].split()
        rss, cpu = int(rss), float(user) + float(system)
    except (OSError, ValueError, IndexError):
        raise Failure(f"{name}: no peak RSS from GNU time ({rss_file})")
    return secs, total, rss, cpu, after_last


# ---- analysis: perf around the measured runs ---------------------------------

PERF_MODES = {
    "record": ["perf", "record", "-a", "-g", "-e", "cpu-clock", "-F", "1999"],  # where CPU time goes
    "sched": ["perf", "sched", "record", "-a"],  # wake-ups, run and wait times per thread
    "trace": ["perf", "trace", "-s", "-a"],  # system calls per thread: counts and time
}


def start_perf(name):
    """With PERF_OUT=FILE, runs perf system-wide around each counted run of
    the contenders whose name starts with PERF_WHO (default "hoopctl"); the
    last such run's data stays in FILE. PERF_MODE: record (default), sched or
    trace. Analysis only: perf costs throughput itself."""
    out = os.environ.get("PERF_OUT")
    if not out or not name.startswith(os.environ.get("PERF_WHO", "hoopctl")):
        return None
    mode = os.environ.get("PERF_MODE", "record")
    if mode not in PERF_MODES:
        raise Failure(f"PERF_MODE must be one of {', '.join(PERF_MODES)}")
    p = subprocess.Popen(PERF_MODES[mode] + ["-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # perf is recording before the run starts
    return p


def stop_perf(p):
    if p:
        p.send_signal(signal.SIGINT)
        p.wait(60)


def cpu_secs(pid):
    """utime + stime of a live process (a server), in seconds."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


# ---- sudo + sudo_logsrvd ------------------------------------------------------

class Logsrvd:
    def __init__(self, root: Path):
        self.dir = root / "logsrvd"
        self.dir.mkdir(mode=0o700)
        self.io = self.dir / "io"
        self.proc = None
        for _ in range(5):  # the free port may be taken between probe and bind
            self.port = free_port()
            conf = self.dir / "sudo_logsrvd.conf"
            conf.write_text(
                "[server]\n"
                f"listen_address = 127.0.0.1:{self.port}\n"
                f"server_log = {self.dir}/server.log\n"
                "pid_file =\n"
                "[iolog]\n"
                f"iolog_dir = {self.io}\n"
                "iolog_file = %{seq}\n"
                "iolog_compress = false\n"
                "[eventlog]\n"
                "log_type = logfile\n"
                "log_format = json\n"
                "[logfile]\n"
                f"path = {self.dir}/events.log\n")
            log = open(self.dir / "stderr.log", "w")
            self.proc = subprocess.Popen(["/usr/sbin/sudo_logsrvd", "-n", "-f", str(conf)],
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            for _ in range(100):
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.05)
            stop(self.proc)
        raise Failure("sudo_logsrvd did not start: " + (self.dir / "stderr.log").read_text()
                      + self.read(self.dir / "server.log"))

    @staticmethod
    def read(p: Path):
        return p.read_text() if p.exists() else ""

    def sessions(self):
        return {p.parent for p in self.io.rglob("ttyout")} if self.io.exists() else set()

    def check(self, before, want_len, want_sha):
        """The I/O log of the run just finished: one new session whose ttyout
        is what cat wrote. Returns its size on disk."""
        new = self.sessions() - before
        if len(new) != 1:
            raise Failure(f"sudo_logsrvd holds {len(new)} new I/O logs, expected 1: sudo did not log "
                          "remotely; server log: " + self.read(self.dir / "server.log"))
        d = new.pop()
        ttyout = d / "ttyout"
        for _ in range(100):  # sudo waits for the final commit point, so this is at once
            if ttyout.stat().st_size >= want_len:
                break
            time.sleep(0.1)
        size = ttyout.stat().st_size
        h = hashlib.sha256()
        with open(ttyout, "rb") as f:
            while b := f.read(1 << 20):
                h.update(b)
        if size != want_len or h.hexdigest() != want_sha:
            raise Failure(f"sudo_logsrvd's ttyout in {d} has {size} bytes (want {want_len}) and "
                          f"{'the same' if h.hexdigest() == want_sha else 'different'} content")
        total = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
        shutil.rmtree(d)  # 100 MB a run; checked, not needed any more
        return total


def sudo_etc(port, text: Path):
    Path("/etc/sudoers.d/hoopbench").write_text(
        f"Defaults log_output, use_pty, log_servers=127.0.0.1:{port}, log_server_timeout=30, "
        "!log_server_verify\n"
        f"{USER} ALL=(root) NOPASSWD: /usr/bin/cat {text}\n")
    os.chmod("/etc/sudoers.d/hoopbench", 0o440)
    sh("visudo", "-c", "-q")


# ---- hoopctl + hoopd --------------------------------------------------------

class Hoopd:
    def __init__(self, root: Path, tls: bool, text: Path, build: Path = BUILD, tag: str = ""):
        self.tls = tls
        d = self.dir = root / (("hoopd-tls" if tls else "hoopd-plain") + tag)
        d.mkdir()
        (d / "policy.toml").write_text(
            '[[rule]]\nname = "bench-cat"\nusers = ["%s"]\ncommands = [["/usr/bin/cat", "%s"]]\n'
            'action = "allow"\n' % (USER, text))
        cfg = f'listen = "127.0.0.1:0"\ndata_dir = "{d}/data"\npolicy = "{d}/policy.toml"\n'
        self.ca = None
        if tls:
            sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
               "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"))
            cfg += f'[tls]\ncert = "{d}/cert.pem"\nkey = "{d}/key.pem"\n'
            self.ca = d / "cert.pem"
        else:
            cfg += "insecure_http = true\n"
        (d / "hoopd.toml").write_text(cfg)
        log = open(d / "hoopd.log", "w")
        self.proc = subprocess.Popen([str(build / "cmd/hoopd"), "serve", "--config", str(d / "hoopd.toml")],
                                     stderr=log, stdout=log, stdin=subprocess.DEVNULL)
        for _ in range(200):
            text_ = (d / "hoopd.log").read_text()
            if "listening on" in text_:
                port = int(text_.split("listening on", 1)[1].split()[0].rsplit(":", 1)[1])
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        else:
            port = None
        if not port:
            raise Failure("hoopd did not start: " + (d / "hoopd.log").read_text())
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        token = [str(build / "cmd/hoopd"), "token", "create", "--config", str(d / "hoopd.toml")]
        self.host_token = sh(*token, "--host", "bench").stdout.strip()
        self.user_token = sh(*token, "--user", USER).stdout.strip()

    def install(self, spool: Path):
        etc = Path("/etc/hoop")
        etc.mkdir(mode=0o755, exist_ok=True)
        (etc / "host.token").write_text(self.host_token + "\n")
        os.chmod(etc / "host.token", 0o600)
        cfg = f'server = "{self.url}"\ncredential = "/etc/hoop/host.token"\nspool_dir = "{spool}"\n'
        if self.ca:
            shutil.copyfile(self.ca, etc / "ca.pem")
            os.chmod(etc / "ca.pem", 0o644)
            cfg += 'ca = "/etc/hoop/ca.pem"\n'
        (etc / "hoop.toml").write_text(cfg)
        os.chmod(etc / "hoop.toml", 0o644)

    def last_session(self):
        req = urllib.request.Request(f"{self.url}/v1/sessions?user={USER}&limit=5",
                                     headers={"Authorization": f"Bearer {self.user_token}"})
        ctx = ssl.create_default_context(cafile=str(self.ca)) if self.ca else None
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            sessions = json.load(r)["sessions"]
        return max(sessions, key=lambda s: s["id"]) if sessions else None

    def check(self, before_id, want_len, want_sha):
        """The session of the run just finished: complete when hoopctl exited,
        exit status 0, its transcript's SHA-256 the one hoopd checked and its
        output events byte-identical to what cat wrote. Returns its size."""
        s = self.last_session()
        if not s or s["id"] <= before_id:
            raise Failure(f"hoopd ({self.url}) has no new session for the run")
        if s["state"] != "complete" or s["exit_status"] != 0:
            raise Failure(f"hoopd session {s['id']} is {s['state']} (exit {s['exit_status']}) after hoopctl "
                          "exited: its transcript did not arrive complete")
        cast = self.dir / "data" / "transcripts" / f"{s['id']}.cast"
        size = cast.stat().st_size
        fh, oh, out_len = hashlib.sha256(), hashlib.sha256(), 0
        with open(cast, "rb") as f:
            header = f.readline()
            fh.update(header)
            json.loads(header)
            for ln in f:
                fh.update(ln)
                ev = json.loads(ln)
                if ev[1] == "o":
                    b = ev[2].encode()
                    oh.update(b)
                    out_len += len(b)
        if size != s["length"] or fh.hexdigest() != s["sha256"]:
            raise Failure(f"session {s['id']}: {cast} ({size} bytes) does not match hoopd's length "
                          f"{s['length']} and SHA-256")
        if out_len != want_len or oh.hexdigest() != want_sha:
            raise Failure(f"session {s['id']}: the transcript's output is {out_len} bytes (want {want_len}) "
                          f"and {'the same' if oh.hexdigest() == want_sha else 'different'} content")
        return size


# ---- main -------------------------------------------------------------------

def private_etc(root: Path):
    if os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{os.getppid()}/ns/mnt"):
        sys.exit("throughput.py must run in a private mount namespace (bench/run.sh does this)")
    sh("cp", "-a", "/etc", str(root / "etc"))
    sh("mount", "--bind", str(root / "etc"), "/etc")
    sh("useradd", "-u", str(UID), "-M", "-d", "/nonexistent", "-s", "/bin/sh", USER)


def report(results, size, load):
    med = {k: size / 1e6 / statistics.median(v["secs"]) for k, v in results.items()}
    plain, sudo = med.get("plain"), med.get("sudo+logsrvd")
    print(f"\n{ROUNDS} interleaved rounds, {os.cpu_count()} cores, {size / 1e6:.0f} MB file, "
          f"pty {COLS}x{ROWS}, as an unprivileged user via setpriv; load average {load[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    print(f"{'contender':22} {'median MB/s':>11} {'vs plain':>8} {'vs sudo':>8} {'peak RSS MB':>11} "
          f"{'wrapper CPU s':>13} {'server CPU s':>12} {'log on server MB':>16}")
    out = {}
    for k, v in results.items():
        rss = max(v["rss"]) / 1024
        vp = med[k] / plain if plain else None
        vs = med[k] / sudo if sudo else None
        cpu = statistics.median(v["cpu"])
        srv = statistics.median(v["server_cpu"]) if v["server_cpu"] else None
        log = v["log"][-1] if v["log"] else None
        print(f"{k:22} {med[k]:11.1f} {(f'{vp:.2f}' if vp else '-'):>8} {(f'{vs:.2f}' if vs else '-'):>8} "
              f"{rss:11.1f} {cpu:13.2f} {(f'{srv:.2f}' if srv is not None else '-'):>12} "
              f"{(f'{log / 1e6:.1f}' if log else '-'):>16}")
        out[k] = {"median_mb_s": round(med[k], 1), "runs_mb_s": [round(size / 1e6 / t, 1) for t in v["secs"]],
                  "vs_plain": round(vp, 3) if vp else None, "vs_sudo_logsrvd": round(vs, 3) if vs else None,
                  "peak_rss_mb": round(rss, 1), "wrapper_cpu_s": round(cpu, 2),
                  "server_cpu_s": round(srv, 2) if srv is not None else None, "server_log_bytes": log}
    for k in results:
        if not k.startswith("hoopctl"):
            continue
        o = out[k]
        aims = []
        if o["vs_plain"] is not None:
            aims.append(f"{o['vs_plain'] * 100:.0f}% of plain (aim >= {AIM_PLAIN * 100:.0f}%: "
                        f"{'ok' if o['vs_plain'] >= AIM_PLAIN else 'MISSED'})")
        if o["vs_sudo_logsrvd"] is not None:
            aims.append(f"{o['vs_sudo_logsrvd']:.2f}x sudo+logsrvd (aim >= {AIM_SUDO}x: "
                        f"{'ok' if o['vs_sudo_logsrvd'] >= AIM_SUDO else 'MISSED'})")
        aims.append(f"peak RSS {o['peak_rss_mb']:.1f} MB (aim < {AIM_RSS_MB:.0f} MB: "
                    f"{'ok' if o['peak_rss_mb'] < AIM_RSS_MB else 'MISSED'})")
        print(f"{k}: " + "; ".join(aims))
    print(json.dumps(out))


class Contender:
    def __init__(self, argv, server=None, before=None, check=None):
        self.argv = argv
        self.server = server  # the Popen of its log server, whose CPU time is charged to it
        self.before = before  # () -> state, run before each run
        self.check = check    # (state) -> bytes the server stored for the run; raises Failure


def main():
    wanted = os.environ.get("CONTENDERS", "plain,script,sudo,hoop-http,hoop-https").split(",")
    load = os.getloadavg()
    if load[0] > 0.5 * (os.cpu_count() or 1):
        print(f"WARNING: load average {load[0]:.2f} on {os.cpu_count()} cores: other work will skew the figures",
              flush=True)
    root = Path(tempfile.mkdtemp(prefix="hoop-tput-"))
    os.chmod(root, 0o755)
    servers, mounted = [], False
    try:
        private_etc(root)
        mounted = True
        scratch = root / "scratch"
        scratch.mkdir(mode=0o700)
        text = root / "text.log"
        t = time.perf_counter()
        size, tty_len, tty_sha = make_text(text)
        print(f"text: {size} bytes of log-like lines ({tty_len} through a pty) in "
              f"{time.perf_counter() - t:.1f} s; none matches a built-in secret pattern", flush=True)

        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TERM": "xterm-256color", "SHELL": "/bin/sh"}
        contenders = {}
        if "plain" in wanted:
            contenders["plain"] = Contender(["cat", str(text)])
        if "script" in wanted:
            contenders["script -q -c"] = Contender(["script", "-q", "-c", f"cat {text}", "/dev/null"])
        if "sudo" in wanted:
            lsd = Logsrvd(root)
            servers.append(lsd.proc)
            sudo_etc(lsd.port, text)
            contenders["sudo+logsrvd"] = Contender(["sudo", "-n", "/usr/bin/cat", str(text)], lsd.proc,
                                                   lsd.sessions, lambda b: lsd.check(b, tty_len, tty_sha))
        hoop = [w for w in ("hoop-http", "hoop-https", "hoop-http-base") if w in wanted]
        base = Path(os.environ.get("BASE_BUILD", ""))
        if "hoop-http-base" in hoop and not (base / "cmd/hoopctl").exists():
            raise Failure("hoop-http-base needs BASE_BUILD=<a build dir with cmd/hoopctl and cmd/hoopd>")
        if hoop:
            bindir = Path("/etc/hoop-bench-bin")
            bindir.mkdir(mode=0o755)
            shutil.copy2(BUILD / "cmd/hoopctl", bindir / "hoopctl")
            os.chmod(bindir / "hoopctl", 0o4755)
            if "hoop-http-base" in hoop:
                shutil.copy2(base / "cmd/hoopctl", bindir / "hoopctl-base")
                os.chmod(bindir / "hoopctl-base", 0o4755)
            # hoopctl trusts a spool only under root-only directories: /tmp is
            # not, the private /etc is (and vanishes with it).
            spool = Path("/etc/hoop-bench-spool")
            spool.mkdir(mode=0o700)
            if os.environ.get("SPOOL_TMPFS") == "1":
                # Analysis only: the spool in memory shows what its disk
                # writes (fdatasync at least once a second) cost.
                sh("mount", "-t", "tmpfs", "-o", "size=512m,mode=0700", "tmpfs", str(spool))
        for w in hoop:
            is_base = w == "hoop-http-base"
            hd = Hoopd(root, w == "hoop-https", text, base if is_base else BUILD, "-base" if is_base else "")
            servers.append(hd.proc)

            def before(hd=hd):
                hd.install(spool)
                s = hd.last_session()
                return s["id"] if s else 0

            label = f"hoopctl run ({'https' if hd.tls else 'http'}{', base' if is_base else ''})"
            contenders[label] = Contender(
                [str(bindir / ("hoopctl-base" if is_base else "hoopctl")), "run", "--", "/usr/bin/cat", str(text)],
                hd.proc, before,
                lambda b, hd=hd: hd.check(b, tty_len, tty_sha))

        results = {k: {"secs": [], "rss": [], "cpu": [], "server_cpu": [], "log": []} for k in contenders}
        names = list(contenders)
        for rnd in range(ROUNDS + 1):  # round 0 warms up (page cache, first TLS context, ...)
            order = names[rnd % len(names):] + names[: rnd % len(names)]  # rotate: no fixed neighbours
            for name in order:
                c = contenders[name]
                os.sync()  # the previous run's 100+ MB of logs are written back now, not during this one
                state = c.before() if c.before else None
                srv0 = cpu_secs(c.server.pid) if c.server else None
                perf = start_perf(name) if rnd else None
                secs, got, rss, cpu, after_last = drain(name, c.argv, env, scratch, tty_len)
                stop_perf(perf)
                srv = cpu_secs(c.server.pid) - srv0 if c.server else None
                if got < tty_len:
                    raise Failure(f"{name}: read {got} bytes from the pty, expected at least {tty_len}")
                log = c.check(state) if c.check else None
                print(f"round {rnd}{' (warm-up)' if rnd == 0 else ''}: {name:20} {size / 1e6 / secs:6.1f} MB/s "
                      f"{secs:7.3f} s (exit {after_last:5.3f} s after cat's last byte)  {got} bytes  "
                      f"peak RSS {rss / 1024:5.1f} MB  CPU {cpu:5.2f} s"
                      + (f" + server {srv:5.2f} s" if srv is not None else ""), flush=True)
                if rnd:
                    r = results[name]
                    r["secs"].append(secs)
                    r["rss"].append(rss)
                    r["cpu"].append(cpu)
                    if srv is not None:
                        r["server_cpu"].append(srv)
                    if log:
                        r["log"].append(log)
        report(results, size, load)
    except Failure as e:
        sys.exit(f"throughput.py: FAILED: {e}")
    finally:
        for p in servers:
            stop(p)
        if mounted:
            subprocess.run(["umount", "-l", "/etc"])
        shutil.rmtree(root, ignore_errors=True)

if __name__ == "__main__":
    main()
