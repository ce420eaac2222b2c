#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz and runs each for a
# bounded time, starting from the seed corpora (corpus/<target>/) and what
# earlier runs found (build-fuzz/corpus/<target>/, kept between runs).
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]     default 60
#   FUZZ_TARGETS="config time" tests/fuzz/run.sh 300
#   FUZZ_SEED=1 tests/fuzz/run.sh 10   the same mutations on every run from
#                                      the same corpus (tests/run.sh: a brief
#                                      run that fails only on a regression,
#                                      not on what a lucky draw finds; long
#                                      runs without a seed explore)
# A crash, leak, sanitizer report, timeout or violated property is saved as
# tests/fuzz/crashes/<target>-<kind>-<sha1> (git-ignored) and makes the
# script exit 1.  Keep a fixed one as a regression: copy it to
# regressions/<target>/ under a name that says what it was (ctest runs
# those through test_fuzz_regressions).  Reproduce one with
#   build-fuzz/tests/fuzz/fuzz_<target> tests/fuzz/crashes/FILE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${1:-60}
targets=${FUZZ_TARGETS:-config audit_verify docker_inspect event_lines json_scan time image_ref registry_answers}
build=$top/build-fuzz
crashes=$here/crashes

# The longest input worth trying, per target: configuration files are a few
# KiB, inspect output up to ~10 KiB, an event stream of a few dozen events,
# a timestamp a few dozen bytes, an image reference at most ~400 (255 of name,
# 128 of tag, a digest), a registry's answer or config.json a few KiB.
max_len() {
  case $1 in
  config) echo 8192 ;;
  audit_verify) echo 16384 ;;
  docker_inspect) echo 16384 ;;
  event_lines) echo 32768 ;;
  json_scan) echo 16384 ;;
  time) echo 64 ;;
  image_ref) echo 512 ;;
  registry_answers) echo 8192 ;;
  *) echo 4096 ;;
  esac
}

command -v clang >/dev/null || {
  echo "fuzz: clang is not installed (contrib/install-deps.sh --test)" >&2
  exit 2
}
mkdir -p "$build"
cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER=clang \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREAPER_FUZZ=ON -DREAPER_SANITIZE=ON \
  -DREAPER_TESTS=OFF >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 2; }
# shellcheck disable=SC2046
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" \
  $(for t in $targets; do printf -- '--target fuzz_%s ' "$t"; done) \
  >"$build/build.log" 2>&1 || { tail -n 40 "$build/build.log" >&2; exit 2; }

mkdir -p "$crashes" "$build/logs"
failed=()
printf '%-15s %10s %9s %6s %7s  %s\n' target runs exec/s cov corpus result
for t in $targets; do
  work=$build/corpus/$t
  log=$build/logs/$t.log
  mkdir -p "$work"
  dict=()
  seed=()
  [ -n "${FUZZ_SEED:-}" ] && seed=(-seed="$FUZZ_SEED")
  [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
  rc=0
  # ASan's leak check runs after every input; UBSan findings abort.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" \
    -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crashes/$t-" "${dict[@]}" "${seed[@]}" \
    "$work" "$here/corpus/$t" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  corpus=$(find "$work" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $rc): $(grep -m1 -oE 'ERROR: [A-Za-z]+: [^ ]+|property violated: .*|ERROR: libFuzzer: [a-z-]+' "$log" || echo see log) $(grep -o "Test unit written to .*" "$log" | tail -n 1 | sed 's/Test unit written to //')"
    failed+=("$t")
    # The input itself, so that a run on a machine thrown away afterwards
    # (CI) still tells what to reproduce.
    unit=$(grep -o "Test unit written to .*" "$log" | tail -n 1 | sed 's/Test unit written to //')
    [ -n "$unit" ] && [ -f "$unit" ] && { echo "input (hex):"; od -An -tx1 -v "$unit" | head -n 40; } >&2
  fi
  printf '%-15s %10s %9s %6s %7s  %s\n' "$t" "${runs:-?}" "${speed:-?}" \
    "${cov:-?}" "$corpus" "$result"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${failed[*]} crashed; logs in $build/logs, inputs in $crashes" >&2
  exit 1
fi
