"""hoopd against slow, half-open and abusive clients: it must time them out,
keep serving others, and never crash."""

import os
import socket
import ssl
import tempfile
import time
from pathlib import Path

import pytest

from conftest import DEFAULT_POLICY, Server


@pytest.fixture
def fast_timeout_server(sandbox, pki):
    root = Path(tempfile.mkdtemp(prefix="srv-", dir=sandbox))
    os.chmod(root, 0o755)
    s = Server(root, pki, DEFAULT_POLICY, extra='read_timeout = "1s"').start()
    yield s
    s.stop()


def tls_socket(server):
    ctx = server.ssl_context()
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def closed_within(sock, seconds):
    """True when the peer closes the connection within `seconds`."""
    sock.settimeout(seconds)
    t0 = time.monotonic()
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return time.monotonic() - t0 <= seconds
    except (ConnectionResetError, ssl.SSLError, OSError):
        return time.monotonic() - t0 <= seconds


def test_half_sent_header_is_cut_off(fast_timeout_server):
    s = tls_socket(fast_timeout_server)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert closed_within(s, 5)
    st, _ = fast_timeout_server.api("GET", "/healthz")
    assert st == 200


def test_silent_tcp_client_before_tls_is_cut_off(fast_timeout_server):
    raw = socket.create_connection(("127.0.0.1", fast_timeout_server.port), timeout=10)
    assert closed_within(raw, 5)


def test_slow_body_is_cut_off(fast_timeout_server):
    s = tls_socket(fast_timeout_server)
    s.sendall(b"POST /v1/requests HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    assert closed_within(s, 5)


def test_garbage_and_many_connections_do_not_hurt(fast_timeout_server):
    socks = []
    for _ in range(200):
        raw = socket.create_connection(("127.0.0.1", fast_timeout_server.port), timeout=10)
        raw.sendall(b"\x16\x03\x01garbage\r\n\r\n")
        socks.append(raw)
    st, _ = fast_timeout_server.api("GET", "/healthz")
    assert st == 200
    for raw in socks:
        raw.close()
    assert fast_timeout_server.proc.poll() is None


def test_plain_http_to_tls_port_is_refused(fast_timeout_server):
    raw = socket.create_connection(("127.0.0.1", fast_timeout_server.port), timeout=10)
    raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert closed_within(raw, 5)
    assert fast_timeout_server.proc.poll() is None


def test_config_without_tls_or_explicit_plaintext_is_refused(sandbox, pki):
    root = Path(tempfile.mkdtemp(prefix="srv-", dir=sandbox))
    cfg = root / "hoopd.toml"
    (root / "policy.toml").write_text(DEFAULT_POLICY)
    cfg.write_text(f'listen = "127.0.0.1:0"\ndata_dir = "{root}/data"\npolicy = "policy.toml"\n')
    import subprocess
    from conftest import HOOPD
    r = subprocess.run([str(HOOPD), "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "insecure_http" in r.stderr or "tls" in r.stderr.lower()
