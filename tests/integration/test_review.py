"""Issue 2: the approval server and the reviewer side of hoopctl.
Each separation-of-duties rule gets an attempt that must fail, with a check
that nothing changed."""

import json
import sqlite3
import threading
import time

import pytest

# hoopctl exit codes (man/hoopctl.1)
EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_DENIED, EXIT_NOT_FOUND = 1, 2, 3, 4, 5


@pytest.fixture
def tokens(server):
    t = {"host": server.token("host", "web1"), "host2": server.token("host", "db1")}
    for u in ("alice", "bob", "carol", "dave", "mallory"):
        t[u] = server.token("user", u)
    return t


def state_of(server, tokens, rid):
    st, body = server.api("GET", f"/v1/requests/{rid}", tokens["bob"])
    assert st == 200, body
    return body["state"]


def audit_rows(server, tokens):
    st, body = server.api("GET", "/v1/audit?limit=1000", tokens["bob"])
    assert st == 200, body
    return len(body["rows"])


def new_request(server, tokens, **kw):
    st, body = server.file_request(tokens["host"], **kw)
    assert st == 201, body
    return body["id"]


def test_requester_cannot_approve_own_request(server, ctl, tokens):
    rid = new_request(server, tokens)
    before = audit_rows(server, tokens)
    r = ctl("alice", "approve", str(rid), "-m", "self", token=tokens["alice"])
    assert r.returncode == EXIT_DENIED, r
    assert "another person" in r.stderr
    r = ctl("alice", "deny", str(rid), "-m", "self", token=tokens["alice"])
    assert r.returncode == EXIT_DENIED, r
    assert state_of(server, tokens, rid) == "pending"
    assert audit_rows(server, tokens) == before


def test_host_credential_cannot_approve(server, ctl, tokens):
    rid = new_request(server, tokens)
    st, body = server.api("POST", f"/v1/requests/{rid}/approve", tokens["host"], {"comment": "root says yes"})
    assert st == 403 and body["error"]["code"] == "permission_denied"
    r = ctl("bob", "approve", str(rid), token=tokens["host"])
    assert r.returncode != 0
    assert state_of(server, tokens, rid) == "pending"


def test_reviewer_must_be_in_rule(server, ctl, tokens):
    rid = new_request(server, tokens)  # restart-web: reviewers @sre + alice
    for who in ("dave", "mallory"):
        r = ctl(who, "approve", str(rid), token=tokens[who])
        assert r.returncode in (EXIT_DENIED, EXIT_NOT_FOUND), r
    assert state_of(server, tokens, rid) == "pending"


def test_approvals_need_distinct_people(server, ctl, tokens):
    rid = new_request(server, tokens, argv=["reboot"], path="/usr/sbin/reboot")
    assert ctl("bob", "approve", str(rid), token=tokens["bob"]).returncode == 0
    assert state_of(server, tokens, rid) == "pending"
    again = ctl("bob", "approve", str(rid), token=tokens["bob"])
    assert again.returncode == EXIT_REFUSED and "already" in again.stderr
    assert state_of(server, tokens, rid) == "pending"
    assert ctl("carol", "approve", str(rid), "-m", "second", token=tokens["carol"]).returncode == 0
    assert state_of(server, tokens, rid) == "approved"


def test_one_denial_ends_request(server, ctl, tokens):
    rid = new_request(server, tokens, argv=["reboot"], path="/usr/sbin/reboot")
    assert ctl("bob", "approve", str(rid), token=tokens["bob"]).returncode == 0
    r = ctl("dave", "deny", str(rid), "-m", "not during the sale", token=tokens["dave"])
    assert r.returncode == 0, r
    assert state_of(server, tokens, rid) == "denied"
    r = ctl("carol", "approve", str(rid), token=tokens["carol"])
    assert r.returncode == EXIT_REFUSED and "denied" in r.stderr


def test_deny_needs_a_comment(server, ctl, tokens):
    rid = new_request(server, tokens)
    r = ctl("bob", "deny", str(rid), token=tokens["bob"])
    assert r.returncode == EXIT_USAGE
    st, body = server.api("POST", f"/v1/requests/{rid}/deny", tokens["bob"], {})
    assert st == 400
    assert state_of(server, tokens, rid) == "pending"


def test_policy_allow_deny_and_default(server, tokens):
    st, body = server.file_request(tokens["host"], argv=["systemctl", "status", "nginx"])
    assert st == 201 and body["state"] == "approved" and body["decided_by"] == "policy"
    st, body = server.file_request(tokens["host"], argv=["bash"], path="/bin/bash")
    assert st == 201 and body["state"] == "denied" and body["rule"] == "no-shells"
    st, body = server.file_request(tokens["host"], argv=["rm", "-rf", "/"], path="/bin/rm")
    assert st == 201 and body["state"] == "denied" and body["rule"] == ""
    st, body = server.file_request(tokens["host"], argv=["apt-get", "upgrade"], path="/usr/bin/apt-get")
    assert st == 400 and "reason" in body["error"]["message"]
    st, body = server.file_request(tokens["host"], argv=["apt-get", "upgrade"], path="/usr/bin/apt-get",
                                   reason="CVE-2026-1234")
    assert st == 201 and body["state"] == "pending"


def test_host_name_comes_from_credential(server, tokens):
    body = {"user": "alice", "run_as": "root", "argv": ["systemctl", "restart", "x"],
            "path": "/usr/bin/systemctl", "digest": "ab" * 32, "host": "web1"}
    st, _ = server.api("POST", "/v1/requests", tokens["host2"], body)
    assert st == 400  # no 'host' field accepted
    del body["host"]
    st, out = server.api("POST", "/v1/requests", tokens["host2"], body)
    assert st == 201 and out["host"] == "db1"
    assert out["state"] == "denied"  # restart-web only matches web* hosts
    st, _ = server.api("POST", "/v1/requests", tokens["alice"], body)
    assert st == 403  # a personal credential cannot file


def test_cancel_rules(server, ctl, tokens):
    rid = new_request(server, tokens)
    st, _ = server.api("POST", f"/v1/requests/{rid}/cancel", tokens["host2"], {"user": "alice"})
    assert st in (403, 404)
    st, _ = server.api("POST", f"/v1/requests/{rid}/cancel", tokens["host"], {"user": "dave"})
    assert st in (403, 404)
    r = ctl("bob", "cancel", str(rid), token=tokens["bob"])
    assert r.returncode != 0
    assert state_of(server, tokens, rid) == "pending"
    assert ctl("alice", "cancel", str(rid), token=tokens["alice"]).returncode == 0
    assert state_of(server, tokens, rid) == "cancelled"
    rid = new_request(server, tokens)
    st, body = server.api("POST", f"/v1/requests/{rid}/cancel", tokens["host"], {"user": "alice"})
    assert st == 200 and body["state"] == "cancelled"


@pytest.mark.policy("""
[groups]
sre = ["bob", "carol"]
[[rule]]
name = "short"
users = ["alice"]
commands = [["/usr/bin/systemctl", "**"]]
action = "review"
reviewers = ["@sre"]
ttl = "1s"
""")
def test_grants_expire(server, tokens):
    rid = new_request(server, tokens)
    st, _ = server.api("POST", f"/v1/requests/{rid}/use", tokens["host"], {})
    assert st == 409  # not approved yet
    st, _ = server.api("POST", f"/v1/requests/{rid}/approve", tokens["bob"], {})
    assert st == 200
    st, body = server.api("POST", f"/v1/requests/{rid}/use", tokens["host2"], {})
    assert st in (403, 404)  # another host cannot use this grant
    st, body = server.api("POST", f"/v1/requests/{rid}/use", tokens["host"], {})
    assert st == 200 and body["uses"] == 1
    time.sleep(1.3)
    st, body = server.api("POST", f"/v1/requests/{rid}/use", tokens["host"], {})
    assert st == 409 and "expired" in body["error"]["message"]


def test_pending_requests_expire(sandbox, pki, tmp_path_factory):
    from conftest import DEFAULT_POLICY, Server
    import os
    import tempfile
    from pathlib import Path
    root = Path(tempfile.mkdtemp(prefix="srv-", dir=sandbox))
    os.chmod(root, 0o755)
    s = Server(root, pki, DEFAULT_POLICY, extra='request_ttl = "1s"').start()
    try:
        host, bob = s.token("host", "web1"), s.token("user", "bob")
        st, body = s.file_request(host)
        rid = body["id"]
        t0 = time.monotonic()
        st, body = s.api("GET", f"/v1/requests/{rid}?wait=10s", bob)
        assert body["state"] == "expired", body
        assert time.monotonic() - t0 < 4
        st, body = s.api("POST", f"/v1/requests/{rid}/approve", bob, {})
        assert st == 409
    finally:
        s.stop()


def test_concurrent_approve_and_deny_leave_one_outcome(server, tokens):
    ids = [new_request(server, tokens) for _ in range(15)]
    results = {}

    def act(rid, who, verb):
        body = {"comment": "race"}
        results[(rid, who)] = server.api("POST", f"/v1/requests/{rid}/{verb}", tokens[who], body)[0]

    threads = []
    for rid in ids:
        threads.append(threading.Thread(target=act, args=(rid, "bob", "approve")))
        threads.append(threading.Thread(target=act, args=(rid, "carol", "deny")))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for rid in ids:
        codes = sorted([results[(rid, "bob")], results[(rid, "carol")]])
        assert codes == [200, 409], (rid, codes)
        st, body = server.api("GET", f"/v1/requests/{rid}", tokens["bob"])
        assert body["state"] in ("approved", "denied")
        assert len(body["decisions"]) == 1
    assert server.hoopd("audit", "verify", "--config", str(server.config)).returncode == 0


def test_long_poll_wakes_on_approval(server, tokens):
    rid = new_request(server, tokens)
    out = {}

    def waiter():
        t0 = time.monotonic()
        out["resp"] = server.api("GET", f"/v1/requests/{rid}?wait=20s", tokens["host"])
        out["took"] = time.monotonic() - t0

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    assert server.api("POST", f"/v1/requests/{rid}/approve", tokens["carol"], {})[0] == 200
    t.join(25)
    assert out["resp"][1]["state"] == "approved"
    assert out["took"] < 3


def tamper(server, sql):
    server.stop()
    db = sqlite3.connect(server.root / "data" / "hoop.db")
    db.executescript(sql)
    db.commit()
    db.close()
    return server.hoopd("audit", "verify", "--config", str(server.config), check=False)


def make_history(server, tokens):
    for i in range(3):  # distinct commands: an identical one would reuse the live grant
        rid = new_request(server, tokens, argv=["systemctl", "restart", f"svc{i}"])
        server.api("POST", f"/v1/requests/{rid}/approve", tokens["bob"], {"comment": "ok"})
    r = server.hoopd("audit", "verify", "--config", str(server.config))
    assert r.returncode == 0 and "intact" in r.stdout


def test_audit_detects_edited_row(server, tokens):
    make_history(server, tokens)
    r = tamper(server, "UPDATE audit SET detail = replace(detail, 'alice', 'eve') WHERE seq = 12;")
    assert r.returncode != 0
    assert "row 12" in (r.stdout + r.stderr)


def test_audit_detects_removed_row(server, tokens):
    make_history(server, tokens)
    r = tamper(server, "DELETE FROM audit WHERE seq = 10;")
    assert r.returncode != 0 and "row 10" in (r.stdout + r.stderr)


def test_audit_detects_reordered_rows(server, tokens):
    make_history(server, tokens)
    r = tamper(server, "UPDATE audit SET seq = -1 WHERE seq = 9; UPDATE audit SET seq = 9 WHERE seq = 10;"
                       "UPDATE audit SET seq = 10 WHERE seq = -1;")
    assert r.returncode != 0 and "row 9" in (r.stdout + r.stderr)


def test_reviewer_terminal_cannot_be_repainted(server, ctl, tokens):
    evil = ["systemctl", "restart", "\x1b[2J\x1b]0;owned\x07nginx\nApproved by: ceo"]
    rid = new_request(server, tokens, argv=evil)
    for args in (["show", str(rid)], ["list"]):
        r = ctl("bob", *args, token=tokens["bob"])
        assert r.returncode == 0, r
        assert "\x1b" not in r.stdout and "\x07" not in r.stdout
        assert "\\x1b[2J" in r.stdout
        assert "\nApproved by: ceo" not in r.stdout
    r = ctl("bob", "show", str(rid), "--json", token=tokens["bob"])
    assert json.loads(r.stdout)["argv"] == evil


def test_list_and_show(server, ctl, tokens):
    rid = new_request(server, tokens, reason="deploy 1.4.2")
    r = ctl("bob", "list", "--json", token=tokens["bob"])
    assert r.returncode == 0, r
    ids = [q["id"] for q in json.loads(r.stdout)]
    assert rid in ids
    r = ctl("mallory", "list", "--json", token=tokens["mallory"])
    assert rid not in [q["id"] for q in json.loads(r.stdout)]
    r = ctl("bob", "show", str(rid), token=tokens["bob"])
    assert "deploy 1.4.2" in r.stdout and "restart-web" in r.stdout
    r = ctl("bob", "show", "999999", token=tokens["bob"])
    assert r.returncode == EXIT_NOT_FOUND
    r = ctl("bob", "show", "12abc", token=tokens["bob"])
    assert r.returncode == EXIT_USAGE
    r = ctl("bob", "whoami", "--json", token=tokens["bob"])
    assert json.loads(r.stdout)["name"] == "bob"


def test_token_file_must_be_private(server, ctl, tokens, sandbox):
    home = sandbox / "home" / "carol"
    cfg = home / ".config" / "hoop"
    cfg.mkdir(parents=True, exist_ok=True)
    tok = cfg / "token"
    tok.write_text(tokens["carol"] + "\n")
    import os
    for p in (home / ".config", cfg, tok):
        os.chown(p, 61003, 61003)
    os.chmod(tok, 0o644)
    r = ctl("carol", "whoami")
    assert r.returncode != 0 and "chmod" in r.stderr
    os.chmod(tok, 0o600)
    r = ctl("carol", "whoami")
    assert r.returncode == 0 and "carol" in r.stdout


def test_setuid_hoopctl_drops_privilege_before_reading_user_files(server, ctl, tokens, sandbox):
    secret = sandbox / "root-only.pem"
    secret.write_text("-----BEGIN CERTIFICATE-----\nnot for you\n")
    import os
    os.chmod(secret, 0o600)
    r = ctl("bob", "whoami", token=tokens["bob"], env={"HOOP_CA": str(secret)})
    assert r.returncode != 0
    r = ctl("bob", "whoami", env={"HOOP_TOKEN": "", "HOME": "/root"})
    assert r.returncode != 0


def test_bad_credentials(server, ctl, tokens):
    for bad in ("", "Bearer", "Bearer nope", "Bearer hoop_" + "0" * 16 + "_" + "0" * 64,
                "Basic YWxpY2U6eA==", "Bearer " + tokens["bob"][:-1] + ("1" if tokens["bob"][-1] == "0" else "0")):
        st, body = server.api("GET", "/v1/whoami", headers={"Authorization": bad} if bad else {})
        assert st == 401, bad
        assert body["error"]["code"] == "unauthenticated"
    token_id = tokens["mallory"].split("_")[1]
    server.hoopd("token", "revoke", "--config", str(server.config), token_id)
    st, _ = server.api("GET", "/v1/whoami", tokens["mallory"])
    assert st == 401
    r = ctl("mallory", "list", token=tokens["mallory"])
    assert r.returncode != 0
    r = ctl("bob", "list", token="not-a-token")
    assert r.returncode != 0 and "token" in r.stderr


def test_bad_input_changes_nothing(server, tokens):
    rid = new_request(server, tokens)
    before = audit_rows(server, tokens)
    host = tokens["host"]
    cases = [
        ("POST", "/v1/requests", b"{not json", 400),
        ("POST", "/v1/requests", b'{"user": 5, "argv": "x"}', 400),
        ("POST", "/v1/requests", json.dumps({"user": "al\x1bice", "argv": ["x"], "path": "/x",
                                              "digest": "ab" * 32}).encode(), 400),
        ("POST", "/v1/requests", b"[" * 5000, 400),
        ("POST", "/v1/requests", b'{"a":"' + b"x" * (600 * 1024) + b'"}', 413),
        ("POST", "/v1/requests/999999/approve", b"{}", 404),
        ("POST", f"/v1/requests/{rid}/approve", b'{"comment": 7}', 400),
        ("POST", f"/v1/requests/{rid}/approve", b'{"comment": "ok\\u001b[2J"}', 400),
        ("GET", "/v1/requests/-1", None, 404),
        ("GET", "/v1/requests/abc", None, 404),
    ]
    for method, path, raw, want in cases:
        tok = tokens["bob"] if "approve" in path or method == "GET" else host
        st, body = server.api(method, path, tok, raw=raw)
        assert st == want, (path, raw[:60] if raw else None, st, body)
        assert "error" in body
    assert state_of(server, tokens, rid) == "pending"
    assert audit_rows(server, tokens) == before


def test_health_and_metrics(server, tokens):
    st, body = server.api("GET", "/healthz")
    assert st == 200 and body["status"] == "ok"
    new_request(server, tokens)
    st, text = server.api("GET", "/metrics")
    assert st == 200 and "hoopd_requests_created_total 1" in text


def test_reviewer_with_client_certificate(sandbox, pki, hoopctl):
    """A hoopd that requires client certificates ([tls] client_ca): a reviewer
    presents their own certificate (read after privilege is dropped)."""
    import os
    import subprocess
    import tempfile
    from pathlib import Path
    from conftest import DEFAULT_POLICY, Ctl, Server
    root = Path(tempfile.mkdtemp(prefix="srv-", dir=sandbox))
    os.chmod(root, 0o755)
    s = Server(root, pki, DEFAULT_POLICY)
    with open(s.config, "a") as f:
        f.write(f'client_ca = "{pki}/ca.pem"\n')
    d = Path(tempfile.mkdtemp(prefix="bobcert-", dir=sandbox))
    os.chmod(d, 0o755)
    for args in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=bob",
                  "-keyout", str(d / "bob.key"), "-out", str(d / "bob.csr")],
                 ["x509", "-req", "-in", str(d / "bob.csr"), "-CA", str(pki / "ca.pem"), "-CAkey",
                  str(pki / "ca.key"), "-CAcreateserial", "-days", "1", "-out", str(d / "bob.pem")]):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    for f in ("bob.key", "bob.pem"):
        os.chown(d / f, 61002, 61002)
        os.chmod(d / f, 0o600)
    s.start()
    try:
        ctl = Ctl(hoopctl, s)
        bob = s.token("user", "bob")
        r = ctl("bob", "whoami", token=bob)
        assert r.returncode == EXIT_UNREACHABLE, r  # no certificate: the handshake fails
        r = ctl("bob", "whoami", token=bob, env={"HOOP_CLIENT_CERT": str(d / "bob.pem"),
                                                 "HOOP_CLIENT_KEY": str(d / "bob.key")})
        assert r.returncode == 0 and "bob" in r.stdout, r
        r = ctl("carol", "whoami", token=bob, env={"HOOP_CLIENT_CERT": str(d / "bob.pem"),
                                                   "HOOP_CLIENT_KEY": str(d / "bob.key")})
        assert r.returncode != 0  # carol cannot read bob's key: privilege was dropped first
    finally:
        s.stop()
