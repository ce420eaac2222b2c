#!/usr/bin/env bash
# Runs the integration tests against a private dockerd that this script
# starts and stops (tests/lib/engine.sh): never the user's own engine.
#   tests/integration/run.sh [NAME...]    (NAME: test_recreate, ...)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export REAPER=${REAPER:-$top/build-asan/reaper}
[ -x "$REAPER" ] || { echo "integration: $REAPER is not built" >&2; exit 1; }
export ENGINE_DIR=${ENGINE_DIR:-/tmp/rpi.$$}
# shellcheck source=../lib/engine.sh
source "$top/tests/lib/engine.sh"
trap 'engine_stop' EXIT
engine_start || exit 1
engine_build_images || { echo "integration: could not build the test images" >&2; exit 1; }
export ARTIFACTS=${ARTIFACTS:-$top/tests/artifacts}
mkdir -p "$ARTIFACTS"

tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  for t in "$here"/test_*.sh; do tests+=("$(basename "$t" .sh)"); done
fi
pass=0 failed=()
for t in "${tests[@]}"; do
  start=$(date +%s)
  printf -- '--- %s\n' "$t"
  if bash "$here/$t.sh" >"$ARTIFACTS/$t.log" 2>&1; then
    pass=$((pass + 1))
    printf 'ok   %s (%ss)\n' "$t" $(($(date +%s) - start))
  else
    failed+=("$t")
    printf 'FAIL %s (%ss); its output:\n' "$t" $(($(date +%s) - start))
    tail -n 60 "$ARTIFACTS/$t.log" | sed 's/^/    /'
  fi
done
printf '\nintegration: %d passed, %d failed%s\n' "$pass" "${#failed[@]}" \
  "${failed[*]:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
