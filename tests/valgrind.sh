#!/usr/bin/env bash
# valgrind's memcheck over the unit tests and over the agent in a few
# integration tests: no invalid read or write, no use of uninitialised
# memory, no leak (definite or indirect), and no file descriptor left open
# by the unit tests.  A script of its own (memcheck makes everything 20 to
# 50 times slower); tests/run.sh runs the sanitizers instead.
#   tests/valgrind.sh                 unit tests, then the integration tests below
#   tests/valgrind.sh unit            unit tests only
#   tests/valgrind.sh integration [NAME...]
# Reports: tests/artifacts/valgrind/*.log (one per process).  Exits 1 when
# any of them holds an error.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
what=${1:-all}
[ $# -gt 0 ] && shift
# The agent's paths that see the most memory traffic, and that valgrind's
# slowness does not turn into a timeout: a recreate with its rollback, the
# HTTP surface, signals and reload, the audit trail, notifications.
default_tests=(test_recreate test_rollback test_http test_signals test_audit_trail test_notify test_cli)

contrib/install-deps.sh --test
command -v valgrind >/dev/null || {
  echo "valgrind: not installed (contrib/install-deps.sh --test installs it)" >&2
  exit 2
}
build=$top/build-valgrind
mkdir -p "$build"
# No sanitizer (valgrind and ASan do not mix); -O1 keeps stack traces
# readable and the run bearable.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=-O1 \
  -DREAPER_WERROR=ON -DREAPER_CRASHPOINTS=ON >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" >"$build/build.log" 2>&1 ||
  { tail -n 40 "$build/build.log"; exit 1; }

out=$top/tests/artifacts/valgrind
rm -rf "$out"
mkdir -p "$out"
# --errors-for-leak-kinds: "still reachable" at exit is what libcurl,
# OpenSSL and libyaml keep for the process's lifetime; what was lost is an
# error.
vg=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
  --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
  --track-origins=yes --num-callers=30 --suppressions="$top/tests/valgrind.supp")

failed=()
if [ "$what" = all ] || [ "$what" = unit ]; then
  printf '\n=== unit tests under memcheck\n'
  for t in "$build"/test_*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    name=$(basename "$t")
    rc=0
    # --track-fds: a test that leaves a descriptor open says so (the
    # three standard ones and valgrind's own log are expected).
    (cd "$build" && "${vg[@]}" --track-fds=yes --log-file="$out/$name.log" "$t" \
      >"$out/$name.out" 2>&1) || rc=$?
    if [ $rc -ne 0 ]; then
      failed+=("$name")
      printf 'FAIL %s (exit %d)\n' "$name" "$rc"
      grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|[0-9,]+ bytes in)' "$out/$name.log" | head -n 10 || true
      tail -n 5 "$out/$name.out"
    else
      printf 'ok   %s: %s\n' "$name" "$(grep -o 'ERROR SUMMARY: [0-9]* errors' "$out/$name.log" | tail -n 1)"
    fi
  done
fi

if [ "$what" = all ] || [ "$what" = integration ]; then
  printf '\n=== the agent under memcheck, in integration tests\n'
  # Every reaper the tests start runs under memcheck, its report in a log
  # named by its PID; the test itself is unchanged.
  cat >"$build/reaper-memcheck" <<EOF
#!/bin/sh
exec $(printf '%q ' "${vg[@]}") --log-file="$out/reaper.%p.log" "$build/reaper" "\$@"
EOF
  chmod +x "$build/reaper-memcheck"
  tests=("$@")
  [ ${#tests[@]} -gt 0 ] || tests=("${default_tests[@]}")
  rc=0
  REAPER=$build/reaper-memcheck TEST_TIME_SCALE=${TEST_TIME_SCALE:-5} \
    tests/integration/run.sh "${tests[@]}" || rc=$?
  [ $rc -eq 0 ] || failed+=("integration tests (their output above)")
  n=0
  for log in "$out"/reaper.*.log; do
    [ -f "$log" ] || continue
    n=$((n + 1))
    # The summary line is written when the process ends; a reaper the test
    # killed with SIGKILL (a crash point) has none and is not judged.
    grep -q 'ERROR SUMMARY' "$log" || continue
    if ! grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
      failed+=("$(basename "$log")")
      printf 'FAIL %s: %s\n' "$(basename "$log")" "$(head -n 12 "$log" | grep -o 'Command: .*' || true)"
      grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|[0-9,]+ bytes in)' -A 6 "$log" | head -n 30 || true
    fi
  done
  printf 'memcheck: %d reaper processes checked\n' "$n"
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf '\nvalgrind: errors in: %s (reports in %s)\n' "${failed[*]}" "$out"
  exit 1
fi
printf '\nvalgrind: clean (reports in %s)\n' "$out"
