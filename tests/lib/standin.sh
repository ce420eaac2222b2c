#!/usr/bin/env bash
# A stand-in of a newer Docker Engine (tests/lib/standin.py, through the
# fault proxy) in front of a private dockerd.  Source this file, then:
#   standin_start ENGINE [UPSTREAM LISTEN]   e.g. 29.0: serves its API range
#                 at LISTEN (default $ENGINE_DIR/standin.sock) in front of
#                 UPSTREAM (default $DOCKER_HOST), exports REAPER_ENDPOINT
#                 (where reaper goes; the tests' docker CLI stays on the
#                 real engine, whose API its client version fits)
#   standin_stop  stops every stand-in this shell started
STANDIN_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/faultproxy.py"
STANDIN_PIDS=()

standin_start() {
  local engine=$1 upstream=${2:-${DOCKER_HOST#unix://}} listen=${3:-$ENGINE_DIR/standin.sock}
  local py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  rm -f "$listen"
  "$py" "$STANDIN_PY" serve --listen "$listen" --upstream "$upstream" \
    --control "$listen.faults" --log "$listen.log" --standin "$engine" \
    2>>"$listen.err" &
  STANDIN_PIDS+=($!)
  for _ in $(seq 1 50); do
    if curl -fsS --max-time 2 --unix-socket "$listen" http://localhost/_ping >/dev/null 2>&1; then
      export REAPER_ENDPOINT="unix://$listen"
      return 0
    fi
    sleep 0.1
  done
  echo "standin: Engine $engine's stand-in did not answer at $listen" >&2
  cat "$listen.err" >&2 2>/dev/null
  return 1
}

standin_stop() {
  local p
  for p in "${STANDIN_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  STANDIN_PIDS=()
}
