#!/usr/bin/env bash
# Runs the integration tests against a private dockerd that this script
# starts and stops (tests/lib/engine.sh): never the user's own engine.
#   tests/integration/run.sh [NAME...]    (NAME: test_recreate, ...)
# Tests with an engine of their own that take minutes (test_package: a
# debootstrap, a .deb, an image build) run beside the others, in the
# background at a lower priority; REAPER_TESTS_BESIDE=0 runs them in turn.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export REAPER=${REAPER:-$top/build-asan/reaper}
[ -x "$REAPER" ] || { echo "integration: $REAPER is not built" >&2; exit 1; }
export ENGINE_DIR=${ENGINE_DIR:-/tmp/rpi.$$}
# What the tests of this run share (tests/lib/debian.sh's Debian 12).
export TEST_RUN_DIR=${TEST_RUN_DIR:-$(mktemp -d /tmp/rprun.XXXXXX)}
# shellcheck source=../lib/engine.sh
source "$top/tests/lib/engine.sh"
beside_pids=()
trap 'for p in "${beside_pids[@]}"; do kill -- -"$p" 2>/dev/null; done; engine_stop; rm -rf "$TEST_RUN_DIR"' EXIT
engine_start || exit 1
engine_build_images || { echo "integration: could not build the test images" >&2; exit 1; }
export ARTIFACTS=${ARTIFACTS:-$top/tests/artifacts}
mkdir -p "$ARTIFACTS"

tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  for t in "$here"/test_*.sh; do tests+=("$(basename "$t" .sh)"); done
fi
pass=0 failed=()
report() { # NAME RC SECONDS
  if [ "$2" -eq 0 ]; then
    pass=$((pass + 1))
    printf 'ok   %s (%ss)\n' "$1" "$3"
  else
    failed+=("$1")
    printf 'FAIL %s (%ss); its output:\n' "$1" "$3"
    tail -n 60 "$ARTIFACTS/$1.log" | sed 's/^/    /'
  fi
}
beside=()
if [ "${REAPER_TESTS_BESIDE:-1}" != 0 ]; then
  for t in "${tests[@]}"; do
    case $t in test_package) beside+=("$t") ;; esac
  done
fi
for t in "${beside[@]}"; do
  printf -- '--- %s (beside the others)\n' "$t"
  setsid bash -c 'start=$(date +%s); nice -n 10 bash "$1" >"$2" 2>&1; echo "$? $(($(date +%s) - start))" >"$3"' \
    _ "$here/$t.sh" "$ARTIFACTS/$t.log" "$TEST_RUN_DIR/$t.rc" &
  beside_pids+=($!)
done
for t in "${tests[@]}"; do
  [[ " ${beside[*]} " == *" $t "* ]] && continue
  start=$(date +%s)
  printf -- '--- %s\n' "$t"
  rc=0
  bash "$here/$t.sh" >"$ARTIFACTS/$t.log" 2>&1 || rc=$?
  report "$t" "$rc" $(($(date +%s) - start))
done
for i in "${!beside[@]}"; do
  wait "${beside_pids[$i]}" 2>/dev/null
  read -r rc secs <"$TEST_RUN_DIR/${beside[$i]}.rc" 2>/dev/null || { rc=1 secs=?; }
  report "${beside[$i]}" "$rc" "$secs"
done
beside_pids=()
printf '\nintegration: %d passed, %d failed%s\n' "$pass" "${#failed[@]}" \
  "${failed[*]:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
