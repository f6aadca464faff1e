#!/usr/bin/env bash
# hoopd throughput and long-poll figures (issue 2), plain HTTP and TLS, on
# loopback, with durable writes (SQLite WAL, synchronous=FULL):
#   - create->approve cycles per second (32 keep-alive clients)
#   - status reads per second (32 keep-alive clients)
#   - 5,000 clients long-polling at once: hoopd RSS, and the delay from sending
#     an approval to its waiter's answer (p50/p99 over 1,000 approvals)
# Usage: bench/server.sh [N_CYCLES] ; prints a table and the raw JSON.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
n=${1:-20000}
scripts/setup.sh --deps >/dev/null
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DHOOP_BENCH=ON >/dev/null
cmake --build build-bench -j2 --target hoopd hoop_bench >/dev/null
bin=$here/build-bench
ulimit -n "$(ulimit -Hn)"  # 5,000 waiters need > 10,000 fds across the two processes

work=$(mktemp -d /tmp/hoop-bench.XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat > "$work/policy.toml" <<'TOML'
[groups]
sre = ["bob"]
[[rule]]
name = "restart"
users = ["alice"]
commands = [["/usr/bin/systemctl", "restart", "*"]]
action = "review"
reviewers = ["@sre"]
TOML

start() {  # $1 = plain|tls
  rm -rf "$work/data"
  {
    echo 'listen = "127.0.0.1:0"'
    echo "data_dir = \"$work/data\""
    echo "policy = \"$work/policy.toml\""
    echo 'request_ttl = "1h"'
    echo 'max_wait = "5m"'
    if [[ $1 == tls ]]; then printf '[tls]\ncert = "%s"\nkey = "%s"\n' "$work/cert.pem" "$work/key.pem"
    else echo 'insecure_http = true'; fi
  } > "$work/hoopd.toml"
  "$bin/cmd/hoopd" serve --config "$work/hoopd.toml" 2> "$work/hoopd.log" &
  pid=$!
  for _ in $(seq 100); do grep -q 'listening on' "$work/hoopd.log" && break; sleep 0.1; done
  port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$work/hoopd.log" | head -n1)
  scheme=http; [[ $1 == tls ]] && scheme=https
  url=$scheme://127.0.0.1:$port
  host=$("$bin/cmd/hoopd" token create --config "$work/hoopd.toml" --host web1)
  bob=$("$bin/cmd/hoopd" token create --config "$work/hoopd.toml" --user bob)
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

declare -A res
for mode in plain tls; do
  start $mode
  ca=(); [[ $mode == tls ]] && ca=(--ca "$work/cert.pem")
  res[$mode.cycles]=$("$bin/bench/hoop_bench" cycles --url "$url" "${ca[@]}" --host-token "$host" \
                        --approver-token "$bob" --n "$n" --concurrency 32)
  res[$mode.reads]=$("$bin/bench/hoop_bench" reads --url "$url" "${ca[@]}" --token "$bob" --id 1 \
                       --n 100000 --concurrency 32)
  stop
  start $mode
  res[$mode.waiters]=$("$bin/bench/hoop_bench" waiters --url "$url" "${ca[@]}" --host-token "$host" \
                         --approver-token "$bob" --pid "$pid" --n 5000 --sample 1000)
  stop
done

get() { python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])[sys.argv[2]], 2))' "$1" "$2"; }
printf '\n%-44s %12s %12s %10s\n' "hoopd on loopback ($(nproc) cores)" plain tls aim
printf '%-44s %12s %12s %10s\n' "create->approve cycles/s (durable)" \
  "$(get "${res[plain.cycles]}" cycles_per_s)" "$(get "${res[tls.cycles]}" cycles_per_s)" ">= 2000"
printf '%-44s %12s %12s %10s\n' "status reads/s" \
  "$(get "${res[plain.reads]}" reads_per_s)" "$(get "${res[tls.reads]}" reads_per_s)" ""
printf '%-44s %12s %12s %10s\n' "RSS with 5,000 waiters (MB)" \
  "$(python3 -c "print(round($(get "${res[plain.waiters]}" rss_kb_with_waiters)/1024,1))")" \
  "$(python3 -c "print(round($(get "${res[tls.waiters]}" rss_kb_with_waiters)/1024,1))")" "< 100"
printf '%-44s %12s %12s %10s\n' "approval -> waiter answer p50 (ms)" \
  "$(get "${res[plain.waiters]}" wake_p50_ms)" "$(get "${res[tls.waiters]}" wake_p50_ms)" ""
printf '%-44s %12s %12s %10s\n' "approval -> waiter answer p99 (ms)" \
  "$(get "${res[plain.waiters]}" wake_p99_ms)" "$(get "${res[tls.waiters]}" wake_p99_ms)" "< 5"
echo
for k in "${!res[@]}"; do echo "$k ${res[$k]}"; done | sort
