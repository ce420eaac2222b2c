#!/usr/bin/env bash
# Runs the integration tests against engines that this script starts and
# stops itself (never the user's own engine), as suites:
#
#   dockerd        every test, against a private dockerd 20.10 (API 1.41)
#   standin-29.0   the docker provider's tests (and swarm services) with
#                  reaper behind a stand-in of Engine 29.0 (API 1.44-1.52:
#                  reaper speaks 1.52) in front of a private dockerd
#                  (tests/lib/standin.py)
#   standin-28.0   recreate, rollback and start-first at API 1.48
#   standin-25.0   recreate, rollback and start-first at API 1.44
#   podman         the docker provider's tests that podman can run, against
#                  a private Podman 4.3 service (its Docker-compatible API)
#   package        test_package: the .deb and the container image, built and
#                  run on a debootstrapped Debian 12 (engines of its own)
#   storm          test_storm: reaper killed at random moments for 90 s
#                  while 24 containers recycle, and its engine restarted
#                  once (a private dockerd of its own)
#
#   tests/integration/run.sh [--suite NAME] [TEST...]   one suite (default
#                  dockerd), all of its tests or those named
#   tests/integration/run.sh --all                      every suite, in two
#                  lanes side by side: dockerd, package | the others one
#                  after another (they use engines of their own, so they do
#                  not meet)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export REAPER=${REAPER:-$top/build-asan/reaper}
[ -x "$REAPER" ] || { echo "integration: $REAPER is not built" >&2; exit 1; }
export ARTIFACTS=${ARTIFACTS:-$top/tests/artifacts}

suite=dockerd
if [ "${1:-}" = --all ]; then
  # Lane B's suites each start their own engine; lane A is the longest.
  mkdir -p "$ARTIFACTS"
  unset ENGINE_DIR # each suite makes its own
  start=$(date +%s)
  (
    PORT_BASE=18000 "$0" --suite dockerd 2>&1 | sed -u 's/^/[dockerd] /'
    PORT_BASE=18000 "$0" --suite package 2>&1 | sed -u 's/^/[package] /'
  ) &
  a=$!
  (
    rc=0
    for s in standin-29.0 standin-28.0 standin-25.0 podman storm; do
      PORT_BASE=19000 "$0" --suite "$s" 2>&1 | sed -u "s/^/[$s] /"
      [ "${PIPESTATUS[0]}" = 0 ] || rc=1
    done
    exit $rc
  ) &
  b=$!
  rc=0
  wait $a
  wait $b || rc=1
  # Lane A's status is sed's: look at its suites' own summaries instead.
  for s in dockerd package; do
    grep -q "^integration $s: .* 0 failed" "$ARTIFACTS/$s/summary" 2>/dev/null || rc=1
  done
  for s in dockerd package standin-29.0 standin-28.0 standin-25.0 podman storm; do
    cat "$ARTIFACTS/$s/summary" 2>/dev/null || echo "integration $s: no summary (it did not run to the end)"
  done
  echo "integration: all suites in $(($(date +%s) - start))s"
  exit $rc
fi
if [ "${1:-}" = --suite ]; then
  suite=${2:?--suite NAME}
  shift 2
fi

# The docker provider's tests: everything but other providers', the TLS
# test (its tcp:// endpoint is the engine's own, not a stand-in's) and those
# that talk to no engine through reaper's provider (or bring their own
# stand-in).
docker_tests() {
  for t in "$here"/test_*.sh; do
    t=$(basename "$t" .sh)
    case $t in
    test_swarm_* | test_containerd_* | test_host* | test_tls | test_podman | \
      test_package | test_install | test_alert_rules | test_replace_actions | \
      test_version_refused | test_storm) ;;
    *) echo "$t" ;;
    esac
  done
}

export ENGINE_DIR=${ENGINE_DIR:-/tmp/rpi.$$}
# What the tests of this run share (tests/lib/debian.sh's Debian 12).
export TEST_RUN_DIR=${TEST_RUN_DIR:-$(mktemp -d /tmp/rprun.XXXXXX)}
case $suite in
dockerd)
  default_tests=$(for t in "$here"/test_*.sh; do basename "$t" .sh; done |
    grep -vxE 'test_podman|test_package|test_storm')
  ;;
storm)
  # Its own engine, which it restarts in the middle: beside the others.
  default_tests=test_storm
  ;;
standin-*)
  export STANDIN=${suite#standin-}
  case $STANDIN in
  29.0) export API_PREFIX=/v1.52
    default_tests="$(docker_tests) test_swarm_services" ;;
  28.0) export API_PREFIX=/v1.48
    default_tests="test_recreate test_rollback test_start_first" ;;
  25.0) export API_PREFIX=/v1.44
    default_tests="test_recreate test_rollback test_start_first" ;;
  *) echo "integration: no stand-in for Engine $STANDIN" >&2; exit 2 ;;
  esac
  ;;
package)
  default_tests=test_package
  ;;
podman)
  export ENGINE_KIND=podman
  # test_start_first waits for a health check: podman runs them from
  # systemd timers, and there is no systemd here (test_podman checks
  # start-first on podman without one).
  # Fresh content too, but for what needs a health check (quarantine, the
  # demo) or podman's compat login (token auth).
  default_tests="test_podman test_recreate test_rollback test_strategies
    test_drain test_crash test_crash_stop_lands test_lifecycle test_events
    test_exclusions test_dry_run test_budget test_fresh_update test_fresh_gate
    test_fresh_platforms test_reload_labels"
  ;;
*) echo "integration: unknown suite $suite" >&2; exit 2 ;;
esac

ARTIFACTS=$ARTIFACTS/$suite
mkdir -p "$ARTIFACTS"
# shellcheck source=../lib/engine.sh
source "$top/tests/lib/engine.sh"
# shellcheck source=../lib/standin.sh
source "$top/tests/lib/standin.sh"
if [ "$suite" = podman ]; then
  # shellcheck source=../lib/podman.sh
  source "$top/tests/lib/podman.sh"
  trap 'podman_stop; rm -rf "$TEST_RUN_DIR"' EXIT
  podman_start || exit 1
  engine_build_images || { echo "integration: could not build the test images on podman" >&2; exit 1; }
else
  trap 'standin_stop; engine_stop; rm -rf "$TEST_RUN_DIR"' EXIT
  engine_start || exit 1
  engine_build_images || { echo "integration: could not build the test images" >&2; exit 1; }
  if [ -n "${STANDIN:-}" ]; then
    standin_start "$STANDIN" || exit 1
  fi
fi

tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  read -r -a tests <<<"$(echo $default_tests)"
fi
pass=0 failed=()
suite_start=$(date +%s)
for t in "${tests[@]}"; do
  start=$(date +%s)
  printf -- '--- %s\n' "$t"
  # A test that hangs (an engine's attach that never ends, say) fails after
  # TEST_TIMEOUT seconds rather than holding the whole run until CI's limit.
  limit=${TEST_TIMEOUT:-900}
  [ "$t" != test_storm ] || limit=$((limit + ${STORM_SECONDS:-90}))
  rc=0
  timeout --kill-after=30 "$limit" bash "$here/$t.sh" >"$ARTIFACTS/$t.log" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then
    pass=$((pass + 1))
    printf 'ok   %s (%ss)\n' "$t" $(($(date +%s) - start))
  else
    failed+=("$t")
    [ "$rc" != 124 ] && [ "$rc" != 137 ] ||
      echo "TIMEOUT: $t ran over $limit s and was stopped (TEST_TIMEOUT)" >>"$ARTIFACTS/$t.log"
    printf 'FAIL %s (%ss); its output:\n' "$t" $(($(date +%s) - start))
    tail -n 60 "$ARTIFACTS/$t.log" | sed 's/^/    /'
  fi
done
# A stand-in suite proves something only if reaper spoke the version there.
spoke=
if [ -n "${STANDIN:-}" ]; then
  n=$(grep -c " $API_PREFIX/" "$ENGINE_DIR/standin.sock.log" 2>/dev/null || true)
  spoke=", ${n:-0} requests at $API_PREFIX"
  [ "${n:-0}" -gt 0 ] || failed+=("(no request at $API_PREFIX)")
fi
summary=$(printf 'integration %s: %d passed, %d failed%s in %ss%s\n' "$suite" "$pass" \
  "${#failed[@]}" "${failed[*]:+ (${failed[*]})}" $(($(date +%s) - suite_start)) "$spoke")
echo "$summary" | tee "$ARTIFACTS/summary"
[ ${#failed[@]} -eq 0 ]
