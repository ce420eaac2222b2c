#!/usr/bin/env bash
# The one test command: installs what is missing (apt-get), builds with
# warnings as errors, runs the unit tests plainly and under ASan+UBSan, checks
# the formatting, then runs the integration tests against a private dockerd
# that it starts and stops itself (never the user's own engine).
#   tests/run.sh                 everything
#   tests/run.sh unit            unit tests only (no engine)
#   tests/run.sh integration [NAME...]   integration tests only (every suite
#                                        side by side, or the named tests on
#                                        the private dockerd; see
#                                        tests/integration/run.sh for suites)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
what=${1:-all}
[ $# -gt 0 ] && shift

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
contrib/install-deps.sh --test

jobs=$(nproc 2>/dev/null || echo 2)
build() { # DIR [cmake options]
  local dir=$1; shift
  mkdir -p "$dir"
  cmake -S . -B "$dir" -DREAPER_WERROR=ON "$@" >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log"; return 1; }
  local rc=0
  cmake --build "$dir" -j"$jobs" >"$dir/build.log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    grep -E 'error|warning' "$dir/build.log" | head -40
    tail -n 20 "$dir/build.log"
    return 1
  fi
}

if [ "$what" = all ] || [ "$what" = unit ]; then
  step "format (clang-format)"
  files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src providers tests -name '*.[ch]')
  bad=$(for f in $files; do clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
  if [ -n "$bad" ]; then
    echo "not formatted (run clang-format -i): $bad"
    [ "${CI:-}" = true ] && exit 1
  fi

  step "build (-Werror)"
  build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
  step "unit tests"
  (cd build && ctest --output-on-failure -j"$jobs")

  step "build (ASan+UBSan)"
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DREAPER_SANITIZE=ON -DREAPER_CRASHPOINTS=ON
  step "unit tests under ASan+UBSan"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs")

  step "fuzz (10 s per target, seeded)"
  FUZZ_SEED=1 tests/fuzz/run.sh 10
fi

if [ "$what" = all ] || [ "$what" = integration ]; then
  [ -x build/reaper ] || { step "build (-Werror)"; build build -DCMAKE_BUILD_TYPE=RelWithDebInfo; }
  [ -x build-asan/reaper ] || { step "build (ASan+UBSan)"; build build-asan -DCMAKE_BUILD_TYPE=Debug -DREAPER_SANITIZE=ON -DREAPER_CRASHPOINTS=ON; }
  if [ $# -eq 0 ]; then
    step "integration tests (every suite: dockerd, stand-ins of newer engines, podman, package)"
    exec tests/integration/run.sh --all
  fi
  step "integration tests (private dockerd)"
  exec tests/integration/run.sh "$@"
fi
