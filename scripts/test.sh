#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies (Debian
# packages), builds twice (release with hardening, then ASan+UBSan) and runs
# unit and integration tests in each. Needs root (tests create users in
# private mount namespaces and install a setuid hoopctl in a temp dir).
#
#   scripts/test.sh              both builds
#   HOOP_TEST_SANITIZE=0 ...     skip the sanitizer build
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

scripts/setup.sh --deps

run_suite() {
  local dir=$1; shift
  echo "== build $dir ($*)"
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j2
  echo "== test $dir"
  ctest --test-dir "$dir" --output-on-failure
}

run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [[ ${HOOP_TEST_SANITIZE:-1} != 0 ]]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DHOOP_SANITIZE=ON
fi
