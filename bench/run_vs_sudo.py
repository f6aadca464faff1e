#!/usr/bin/env python3
"""`hoopctl run -- /bin/true` (allow rule, loopback hoopd, plain HTTP and TLS)
against `sudo -n /bin/true` and `doas /bin/true`, as whole processes, side by
side in one run, all started by the same unprivileged user.

Run through bench/run.sh, which builds, installs sudo and doas from Debian and
starts this under `unshare --mount`: the sudoers/doas.conf/hoop.toml and the
bench user live in a private copy of /etc and vanish afterwards."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUILD = Path(sys.argv[1])
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 300
USER, UID = "hoopbench", 61500


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


def private_etc(root: Path):
    if os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{os.getppid()}/ns/mnt"):
        sys.exit("run_vs_sudo.py must run in a private mount namespace (bench/run.sh does this)")
    sh("cp", "-a", "/etc", str(root / "etc"))
    sh("mount", "--bind", str(root / "etc"), "/etc")
    sh("useradd", "-u", str(UID), "-M", "-d", "/nonexistent", "-s", "/bin/sh", USER)
    Path("/etc/sudoers.d/hoopbench").write_text(f"{USER} ALL=(root) NOPASSWD: /bin/true\n")
    os.chmod("/etc/sudoers.d/hoopbench", 0o440)
    Path("/etc/doas.conf").write_text(f"permit nopass {USER} as root cmd /bin/true\n")
    os.chmod("/etc/doas.conf", 0o600)


def start_hoopd(root: Path, tls: bool):
    d = root / ("tls" if tls else "plain")
    d.mkdir()
    (d / "policy.toml").write_text(
        '[[rule]]\nname = "true"\nusers = ["%s"]\ncommands = [["/usr/bin/true"]]\naction = "allow"\n' % USER)
    cfg = f'listen = "127.0.0.1:0"\ndata_dir = "{d}/data"\npolicy = "{d}/policy.toml"\n'
    if tls:
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
           "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"))
        cfg += f'[tls]\ncert = "{d}/cert.pem"\nkey = "{d}/key.pem"\n'
    else:
        cfg += "insecure_http = true\n"
    (d / "hoopd.toml").write_text(cfg)
    log = open(d / "hoopd.log", "w")
    proc = subprocess.Popen([str(BUILD / "cmd/hoopd"), "serve", "--config", str(d / "hoopd.toml")],
                            stderr=log, stdout=log)
    for _ in range(200):
        text = (d / "hoopd.log").read_text()
        if "listening on" in text:
            port = int(text.split("listening on", 1)[1].split()[0].rsplit(":", 1)[1])
            break
        time.sleep(0.05)
    else:
        sys.exit("hoopd did not start: " + (d / "hoopd.log").read_text())
    token = sh(str(BUILD / "cmd/hoopd"), "token", "create", "--config", str(d / "hoopd.toml"),
               "--host", "bench").stdout.strip()
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    return proc, url, token, (d / "cert.pem" if tls else None)


def hoop_etc(url, token, ca):
    etc = Path("/etc/hoop")
    etc.mkdir(mode=0o755, exist_ok=True)
    (etc / "host.token").write_text(token + "\n")
    os.chmod(etc / "host.token", 0o600)
    # The spool inside the private /etc: never the machine's /var/spool/hoop.
    cfg = f'server = "{url}"\ncredential = "/etc/hoop/host.token"\nspool_dir = "/etc/hoop-bench-spool"\n'
    if ca:
        shutil.copyfile(ca, etc / "ca.pem")
        os.chmod(etc / "ca.pem", 0o644)
        cfg += 'ca = "/etc/hoop/ca.pem"\n'
    (etc / "hoop.toml").write_text(cfg)
    os.chmod(etc / "hoop.toml", 0o644)


def main():
    root = Path(tempfile.mkdtemp(prefix="hoop-bench-"))
    os.chmod(root, 0o755)
    private_etc(root)
    bindir = Path("/etc/hoop-bench-bin")
    bindir.mkdir(mode=0o755)
    shutil.copy2(BUILD / "cmd/hoopctl", bindir / "hoopctl")
    os.chmod(bindir / "hoopctl", 0o4755)

    servers = {"plain": start_hoopd(root, False), "tls": start_hoopd(root, True)}
    as_user = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--init-groups"]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    cmds = {
        "sudo -n /bin/true": [*as_user, "sudo", "-n", "/bin/true"],
        "doas /bin/true": [*as_user, "doas", "/bin/true"],
        "hoopctl run (http)": [*as_user, str(bindir / "hoopctl"), "run", "--", "/bin/true"],
        "hoopctl run (https)": [*as_user, str(bindir / "hoopctl"), "run", "--", "/bin/true"],
        "/bin/true (no wrapper)": [*as_user, "/bin/true"],
    }
    times = {k: [] for k in cmds}
    try:
        for name, cmd in cmds.items():  # warm-up and correctness check
            if "hoopctl" in name:
                hoop_etc(*servers["tls" if "https" in name else "plain"][1:])
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                sys.exit(f"{name} failed ({r.returncode}): {r.stderr.strip()}")
        for _ in range(ROUNDS):  # interleaved, so drift hits every command alike
            for name, cmd in cmds.items():
                if "hoopctl" in name:
                    hoop_etc(*servers["tls" if "https" in name else "plain"][1:])
                t0 = time.perf_counter()
                subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=True)
                times[name].append((time.perf_counter() - t0) * 1000)
    finally:
        for proc, *_ in servers.values():
            proc.terminate()
            proc.wait()
        subprocess.run(["umount", "-l", "/etc"])
        shutil.rmtree(root, ignore_errors=True)

    sudo_med = statistics.median(times["sudo -n /bin/true"])
    print(f"\n{ROUNDS} interleaved rounds, {os.cpu_count()} cores, as an unprivileged user via setpriv")
    print(f"{'command':28} {'median ms':>10} {'p90 ms':>8} {'vs sudo':>8}")
    out = {}
    for name, t in times.items():
        med = statistics.median(t)
        p90 = statistics.quantiles(t, n=10)[-1]
        out[name] = {"median_ms": round(med, 3), "p90_ms": round(p90, 3), "ratio_to_sudo": round(med / sudo_med, 3)}
        print(f"{name:28} {med:10.2f} {p90:8.2f} {med / sudo_med:8.2f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
