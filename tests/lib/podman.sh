#!/usr/bin/env bash
# A private Podman engine for the tests: `podman system service` on a socket
# of its own, with its own storage (--root, --runroot), network definitions
# and configuration under $ENGINE_DIR: never the machine's own containers.
# Its Docker-compatible API is what reaper's docker provider and the tests'
# docker CLI talk to.  Source tests/lib/engine.sh, then this file, then:
#   podman_start   starts it (idempotent), exports DOCKER_HOST and
#                  REAPER_ENDPOINT; engine_build_images then builds the test
#                  images through it
#   podman_stop    stops it and removes its state
# Containers get nofile and nproc limits of 4096: podman's defaults fail
# here ("error setting rlimit type 7").

podman_cmd() {
  CONTAINERS_CONF=$ENGINE_DIR/containers.conf \
    CONTAINERS_REGISTRIES_CONF=$ENGINE_DIR/registries.conf podman --root "$ENGINE_DIR/root" \
    --runroot "$ENGINE_DIR/run" --cgroup-manager cgroupfs --events-backend file "$@"
}

podman_start() {
  mkdir -p "$ENGINE_DIR/cni"
  export DOCKER_HOST="unix://$ENGINE_DIR/podman.sock"
  export REAPER_ENDPOINT=$DOCKER_HOST
  if curl -fsS --max-time 2 --unix-socket "$ENGINE_DIR/podman.sock" http://localhost/_ping >/dev/null 2>&1; then
    return 0
  fi
  command -v podman >/dev/null || { echo "podman: not installed (apt-get install podman)" >&2; return 1; }
  cat >"$ENGINE_DIR/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[network]
network_config_dir = "$ENGINE_DIR/cni"
[engine]
events_logfile_path = "$ENGINE_DIR/events.log"
CONF
  # The tests' registries (docker-registry on 127.0.0.1, ports 15000-19999)
  # speak plain HTTP, as the engine's default insecure registries do for
  # dockerd; podman wants each named.
  for p in $(seq 15000 19999); do
    printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$p"
  done >"$ENGINE_DIR/registries.conf"
  # Not through podman_cmd: $! must be podman itself (a function run in the
  # background is a subshell, whose death leaves the service running).
  CONTAINERS_CONF=$ENGINE_DIR/containers.conf \
    CONTAINERS_REGISTRIES_CONF=$ENGINE_DIR/registries.conf podman --root "$ENGINE_DIR/root" \
    --runroot "$ENGINE_DIR/run" --cgroup-manager cgroupfs --events-backend file \
    system service --time=0 "$DOCKER_HOST" >"$ENGINE_DIR/podman.log" 2>&1 &
  echo $! >"$ENGINE_DIR/podman.pid"
  for _ in $(seq 1 100); do
    curl -fsS --max-time 2 --unix-socket "$ENGINE_DIR/podman.sock" http://localhost/_ping >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "podman: the service did not answer within 20 s; its log:" >&2
  tail -n 30 "$ENGINE_DIR/podman.log" >&2
  return 1
}

podman_stop() {
  local pid
  pid=$(cat "$ENGINE_DIR/podman.pid" 2>/dev/null) || true
  podman_cmd rm -af -t 0 >/dev/null 2>&1
  podman_cmd volume prune -f >/dev/null 2>&1
  podman_cmd network prune -f >/dev/null 2>&1
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  for _ in $(seq 1 40); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  # Containers' mounts under the private storage, then the storage itself.
  grep -o " $ENGINE_DIR/[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$ENGINE_DIR"
}
