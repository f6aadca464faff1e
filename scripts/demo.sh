#!/usr/bin/env bash
# The main job end to end on one machine, in a throw-away directory:
# installs dependencies, builds, starts hoopd on loopback (TLS, embedded
# SQLite), files a request as host "demo-host" for user alice, shows that
# alice cannot approve her own request, approves it as bob, and shows the
# result and the verified audit trail. Stops hoopd and removes its files.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

scripts/setup.sh
bin=$here/build/cmd
work=$(mktemp -d /tmp/hoop-demo.XXXXXX)
chmod 755 "$work"
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "a throw-away CA and server certificate for 127.0.0.1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=hoop demo CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') \
  -out "$work/server.pem" 2>/dev/null
chmod 644 "$work/ca.pem"

cat > "$work/policy.toml" <<'TOML'
[groups]
sre = ["bob", "carol"]

[[rule]]
name = "restart-web"
users = ["alice"]
hosts = ["demo-*"]
commands = [["/usr/bin/systemctl", "restart", "*"]]
action = "review"
reviewers = ["@sre", "alice"]
approvals = 1
ttl = "15m"
reason_required = true
TOML
cat > "$work/hoopd.toml" <<TOML
listen = "127.0.0.1:0"
data_dir = "$work/data"
policy = "policy.toml"
[tls]
cert = "server.pem"
key = "server.key"
TOML

step "the policy"
show "$bin/hoopd" policy check "$work/policy.toml"

step "start hoopd"
"$bin/hoopd" serve --config "$work/hoopd.toml" 2> "$work/hoopd.log" &
pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/hoopd.log" 2>/dev/null && break; sleep 0.1; done
cat "$work/hoopd.log"
port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$work/hoopd.log" | head -n1)
url=https://127.0.0.1:$port

step "credentials (only their SHA-256 is stored)"
host_token=$("$bin/hoopd" token create --config "$work/hoopd.toml" --host demo-host)
alice=$("$bin/hoopd" token create --config "$work/hoopd.toml" --user alice)
bob=$("$bin/hoopd" token create --config "$work/hoopd.toml" --user bob)
show "$bin/hoopd" token list --config "$work/hoopd.toml"

step "demo-host files a request for alice (what 'hoopctl run' sends)"
digest=$(sha256sum /usr/bin/env | cut -d' ' -f1)
curl -sS --cacert "$work/ca.pem" -H "Authorization: Bearer $host_token" \
  -d '{"user":"alice","run_as":"root","argv":["systemctl","restart","nginx"],
       "path":"/usr/bin/systemctl","digest":"'"$digest"'","cwd":"/home/alice","tty":"/dev/pts/0",
       "reason":"deploy 1.4.2"}' "$url/v1/requests" |
  python3 -c 'import json,sys; r=json.load(sys.stdin); print({k: r[k] for k in ("id","host","user","argv","state","rule","reviewers","approvals_required")})' 

export HOOP_SERVER=$url HOOP_CA=$work/ca.pem
step "alice tries to approve her own request: refused by the server"
HOOP_TOKEN=$alice "$bin/hoopctl" approve 1 -m "self-service" || echo "(exit status $?)"

step "bob's queue, then bob approves"
HOOP_TOKEN=$bob show "$bin/hoopctl" list
HOOP_TOKEN=$bob show "$bin/hoopctl" approve 1 -m "looks right"
HOOP_TOKEN=$bob show "$bin/hoopctl" show 1

step "the audit trail is a hash chain"
show "$bin/hoopd" audit verify --config "$work/hoopd.toml"
