#!/usr/bin/env bash
# Installs every build and test dependency of hoop from Debian packages,
# then configures and builds the tree. Safe to run again.
#
#   scripts/setup.sh            install packages + release build in build/
#   scripts/setup.sh --deps     install packages only
#   BUILD_DIR=... CMAKE_ARGS=... scripts/setup.sh   other build dirs/options
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$here/build}

packages=(
  build-essential cmake pkg-config ninja-build
  libboost-dev libsqlite3-dev sqlite3 libssl-dev openssl
  libpam0g-dev libpcre2-dev libedit-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev
  libgtest-dev libgmock-dev
  curl python3 python3-pytest procps util-linux passwd
  asciinema openssh-server openssh-client tmux
)

need=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to install: ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

[[ ${1:-} == --deps ]] && exit 0

cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" ${CMAKE_ARGS:-}
cmake --build "$build_dir" -j2
