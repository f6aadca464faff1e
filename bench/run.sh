#!/usr/bin/env bash
# All hoop benchmarks that exist so far, each printing its figures side by
# side with the peers the issues name. Results are recorded by hand in
# bench/RESULTS.md with the date and this machine's description.
#   bench/run.sh            everything
#   bench/run.sh server     hoopd throughput, reads, 5,000 waiters (issue 2)
#   bench/run.sh run        hoopctl run vs sudo and doas (issue 3)
#   bench/run.sh throughput cat of 100 MB through a pty: plain, script, sudo+sudo_logsrvd,
#                           hoopctl run recording to hoopd (issue 4);
#                           ROUNDS (alone) or TPUT_ROUNDS (under all), default 3
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
what=${1:-all}

if [[ $what == all || $what == server ]]; then
  bench/server.sh
fi
# Debian packages the peers come from, then hoopd and hoopctl.
prepare() {
  scripts/setup.sh --deps >/dev/null
  export DEBIAN_FRONTEND=noninteractive
  local need=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  if ((${#need[@]})); then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi
  cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DHOOP_BENCH=ON >/dev/null
  cmake --build build-bench -j2 --target hoopd hoopctl >/dev/null
}

if [[ $what == all || $what == run ]]; then
  prepare sudo opendoas
  unshare --mount --propagation private /usr/bin/python3 bench/run_vs_sudo.py "$here/build-bench" "${ROUNDS:-300}"
fi
if [[ $what == all || $what == throughput ]]; then
  prepare sudo time  # sudo ships sudo_logsrvd; GNU time reports the wrappers' peak RSS
  rounds=${TPUT_ROUNDS:-3}  # ROUNDS means run's 300 under `all`, this one's only when asked alone
  [[ $what == throughput ]] && rounds=${ROUNDS:-$rounds}
  ROUNDS=$rounds unshare --mount --propagation private /usr/bin/python3 bench/throughput.py "$here/build-bench"
fi
