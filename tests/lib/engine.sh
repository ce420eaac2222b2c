#!/usr/bin/env bash
# A private Docker engine for the tests: its own socket, data-root and
# exec-root under $ENGINE_DIR, never the user's own engine and never
# /var/run/docker.sock.  Source this file, then:
#   engine_start            starts dockerd (idempotent), exports DOCKER_HOST
#   engine_build_images     builds reaper-test/sleeper:1 (and :health) FROM scratch
#   engine_stop             stops it and removes its state
# ENGINE_DIR defaults to /tmp/reaper-engine.$$ .

ENGINE_DIR=${ENGINE_DIR:-/tmp/reaper-engine.$$}

engine_ping() {
  curl -fsS --max-time 2 --unix-socket "$ENGINE_DIR/docker.sock" http://localhost/_ping >/dev/null 2>&1
}

engine_start() {
  mkdir -p "$ENGINE_DIR"
  export DOCKER_HOST="unix://$ENGINE_DIR/docker.sock"
  if engine_ping; then return 0; fi
  command -v dockerd >/dev/null || { echo "engine: dockerd is not installed (apt-get install docker.io)" >&2; return 1; }
  # Short paths: unix socket paths are limited to 108 bytes.
  nohup dockerd --iptables=false --bridge=none \
    --data-root "$ENGINE_DIR/data" --exec-root "$ENGINE_DIR/exec" \
    --pidfile "$ENGINE_DIR/pid" -H "$DOCKER_HOST" \
    >"$ENGINE_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do
    engine_ping && return 0
    sleep 0.25
  done
  echo "engine: dockerd did not answer within 30 s; its log:" >&2
  tail -n 30 "$ENGINE_DIR/dockerd.log" >&2
  return 1
}

engine_build_images() {
  docker image inspect reaper-test/sleeper:1 >/dev/null 2>&1 &&
    docker image inspect reaper-test/health:1 >/dev/null 2>&1 && return 0
  local bb ctx
  bb=$(command -v busybox || true)
  [ -n "$bb" ] && file -L "$bb" 2>/dev/null | grep -c >/dev/null 'statically' || bb=/bin/busybox
  [ -x "$bb" ] || { echo "engine: static busybox missing (apt-get install busybox-static)" >&2; return 1; }
  ctx=$(mktemp -d)
  cp "$bb" "$ctx/busybox"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
VOLUME /data
CMD ["/bin/sleep", "3600"]
DOCKERFILE
  DOCKER_BUILDKIT=0 docker build -q -t reaper-test/sleeper:1 "$ctx" >/dev/null 2>&1 || return 1
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM reaper-test/sleeper:1
HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD ["/bin/true"]
DOCKERFILE
  DOCKER_BUILDKIT=0 docker build -q -t reaper-test/health:1 "$ctx" >/dev/null 2>&1 || return 1
  rm -rf "$ctx"
}

# Stops dockerd (not its state) and starts it again: the engine restart
# that reaper must survive.  Containers without a restart policy stay
# stopped, as after any dockerd restart.
engine_restart() {
  local pid
  pid=$(cat "$ENGINE_DIR/pid" 2>/dev/null) || return 1
  kill "$pid"
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  engine_start
}

engine_stop() {
  local pid
  pid=$(cat "$ENGINE_DIR/pid" 2>/dev/null) || true
  if [ -n "$pid" ]; then
    # Containers first, so their shims do not outlive the engine.
    docker ps -aq 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null
  fi
  # dockerd leaves mounts under its roots; unmount before removing.
  grep -o " $ENGINE_DIR[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$ENGINE_DIR"
}
