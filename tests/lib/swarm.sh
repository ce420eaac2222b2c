#!/usr/bin/env bash
# A Docker Swarm of several nodes on this one machine, for the tests: each
# node is a dockerd of its own (data-root, exec-root, socket and pidfile
# under $SWARM_DIR/nI) in a network namespace of its own, with a hostname of
# its own (a UTS namespace).  The namespaces are joined by veth pairs to a
# bridge that lives in one more namespace (a "switch"), so that nothing of
# the host's own network is touched.  Never the user's own engine.
#
# Source this file, then:
#   swarm_supported          0 when this machine can run it (root, network
#                            namespaces, dockerd, nsenter, unshare); else
#                            prints why
#   swarm_start N            N nodes: node 0 the manager, the others workers;
#                            the test images loaded into each
#   sdocker I ARGS...        the docker CLI against node I
#   swarm_sock I             node I's socket (unix://...)
#   swarm_node_id I          node I's swarm node ID
#   swarm_node_add I [ROLE]  starts node I (a fresh engine) and joins it
#                            (worker by default): also a replacement machine
#   swarm_node_kill I        stops node I's engine (the machine goes away)
#   swarm_stop               everything torn down: engines, namespaces, files
# SWARM_DIR defaults to /tmp/rps.$$; namespaces and links are named rps$$...
# Node I has the address 192.168.213.(10+I) inside the namespaces.
# Kept short: unix socket paths are limited to 108 bytes.

SWARM_DIR=${SWARM_DIR:-/tmp/rps.$$}
SWARM_TAG=${SWARM_TAG:-rps$$}
SWARM_NET=192.168.213
SWARM_IMAGES=${SWARM_IMAGES:-"reaper-test/sleeper:1 reaper-test/health:1"}

_swarm_log() { printf '[%s] swarm: %s\n' "$(date +%T)" "$*" >&2; }

swarm_sock() { echo "unix://$SWARM_DIR/n$1/docker.sock"; }
sdocker() {
  local i=$1
  shift
  docker -H "$(swarm_sock "$i")" "$@"
}
swarm_node_id() { sdocker "$1" info -f '{{.Swarm.NodeID}}'; }

swarm_supported() {
  [ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
  local c
  for c in ip nsenter unshare dockerd docker; do
    command -v "$c" >/dev/null || { echo "$c is not installed"; return 1; }
  done
  local probe=${SWARM_TAG}probe
  if ! ip netns add "$probe" 2>/dev/null; then
    echo "cannot create network namespaces (ip netns add failed)"
    return 1
  fi
  ip netns del "$probe"
  return 0
}

_swarm_ping() {
  curl -fsS --max-time 2 --unix-socket "$SWARM_DIR/n$1/docker.sock" http://localhost/_ping >/dev/null 2>&1
}

# The switch: a bridge in a namespace of its own.
_swarm_switch() {
  ip netns add "${SWARM_TAG}sw" || return 1
  ip -n "${SWARM_TAG}sw" link add br0 type bridge &&
    ip -n "${SWARM_TAG}sw" link set br0 up &&
    ip -n "${SWARM_TAG}sw" link set lo up
}

# Starts node I's engine in fresh namespaces (no swarm yet).
_swarm_engine_start() {
  local i=$1 ns=${SWARM_TAG}n$1 d=$SWARM_DIR/n$1
  # A replacement machine: nothing of the old one survives.
  _swarm_engine_stop "$i"
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$d"
  mkdir -p "$d"
  ip netns add "$ns" || return 1
  ip link add "${SWARM_TAG}a$i" type veth peer name "${SWARM_TAG}b$i" || return 1
  ip link set "${SWARM_TAG}a$i" netns "$ns"
  ip link set "${SWARM_TAG}b$i" netns "${SWARM_TAG}sw"
  ip -n "${SWARM_TAG}sw" link set "${SWARM_TAG}b$i" master br0
  ip -n "${SWARM_TAG}sw" link set "${SWARM_TAG}b$i" up
  ip -n "$ns" link set "${SWARM_TAG}a$i" name eth0
  ip -n "$ns" addr add "$SWARM_NET.$((10 + i))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  # nsenter, not `ip netns exec`: that remounts /sys and dockerd then fails
  # ("Devices cgroup isn't mounted").  unshare --uts gives the node its own
  # hostname.
  nohup nsenter --net="/var/run/netns/$ns" unshare --uts sh -c \
    "hostname node$i && exec dockerd --iptables=false --bridge=none \
      --data-root '$d/data' --exec-root '$d/exec' --pidfile '$d/pid' \
      -H 'unix://$d/docker.sock'" \
    >"$d/dockerd.log" 2>&1 &
  # The same socket by the node's hostname, for bind mounts that name it
  # with a template (source=$SWARM_DIR/socks/{{.Node.Hostname}}.sock).
  mkdir -p "$SWARM_DIR/socks"
  ln -sfn "$d/docker.sock" "$SWARM_DIR/socks/node$i.sock"
}

_swarm_engine_wait() {
  local i=$1 _
  for _ in $(seq 1 160); do
    _swarm_ping "$i" && return 0
    sleep 0.25
  done
  _swarm_log "node $i's dockerd did not answer within 40 s; its log:"
  tail -n 30 "$SWARM_DIR/n$i/dockerd.log" >&2
  return 1
}

# The containerd shims of node I's containers, if its engine could not stop
# them: found by the exec-root in their command line, killed by pid.
_swarm_kill_shims() {
  local d=$1 f p
  for f in $(grep -lsF -- "$d/exec/" /proc/[0-9]*/cmdline || true); do
    p=${f#/proc/}
    p=${p%/cmdline}
    # Shims only: not grep itself, whose command line names the path too.
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == containerd-shim* ]] || continue
    kill -9 "$p" 2>/dev/null || true
  done
  return 0
}

# Every helper here is safe under `set -e` (tests/integration/lib.sh sets it):
# what may fail in a teardown is allowed to.
_swarm_engine_stop() {
  local i=$1 d=$SWARM_DIR/n$1 pid _
  pid=$(cat "$d/pid" 2>/dev/null) || return 0
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$d/pid"
  _swarm_kill_shims "$d"
  grep -o " $d/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  return 0
}

# The test images, from the engine at $DOCKER_HOST (tests/integration/run.sh
# builds them there), else built on node 0.
_swarm_images() {
  local tar=$SWARM_DIR/images.tar
  [ -f "$tar" ] && return 0
  # shellcheck disable=SC2086
  if docker image inspect $SWARM_IMAGES >/dev/null 2>&1; then
    docker save -o "$tar" $SWARM_IMAGES && return 0
  fi
  (
    export DOCKER_HOST
    DOCKER_HOST=$(swarm_sock 0)
    # shellcheck source=engine.sh
    source "$(dirname "${BASH_SOURCE[0]}")/engine.sh"
    # shellcheck disable=SC2086 # a list of images
    engine_build_images && docker save -o "$tar" $SWARM_IMAGES
  )
}

_swarm_load() { sdocker "$1" load -q -i "$SWARM_DIR/images.tar" >/dev/null; }

swarm_node_add() {
  local i=$1 role=${2:-worker} token
  _swarm_engine_start "$i" && _swarm_engine_wait "$i" || return 1
  _swarm_images && _swarm_load "$i" || return 1
  token=$(sdocker 0 swarm join-token -q "$role") || return 1
  sdocker "$i" swarm join --token "$token" --advertise-addr "$SWARM_NET.$((10 + i))" \
    --listen-addr "$SWARM_NET.$((10 + i)):2377" "$SWARM_NET.10:2377" >/dev/null
}

swarm_node_kill() { _swarm_engine_stop "$1"; }

swarm_start() {
  local n=${1:-3} i start=$SECONDS
  mkdir -p "$SWARM_DIR"
  echo "$n" >"$SWARM_DIR/count"
  _swarm_switch || return 1
  for i in $(seq 0 $((n - 1))); do _swarm_engine_start "$i" || return 1; done
  for i in $(seq 0 $((n - 1))); do _swarm_engine_wait "$i" || return 1; done
  # A short heartbeat: a node whose engine stops is down in seconds.
  sdocker 0 swarm init --advertise-addr "$SWARM_NET.10" --listen-addr "$SWARM_NET.10:2377" \
    --dispatcher-heartbeat 1s --task-history-limit 2 >/dev/null || return 1
  _swarm_images || return 1
  local pids=()
  for i in $(seq 0 $((n - 1))); do
    _swarm_load "$i" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || return 1; done
  local token
  token=$(sdocker 0 swarm join-token -q worker) || return 1
  for i in $(seq 1 $((n - 1))); do
    sdocker "$i" swarm join --token "$token" --advertise-addr "$SWARM_NET.$((10 + i))" \
      --listen-addr "$SWARM_NET.$((10 + i)):2377" "$SWARM_NET.10:2377" >/dev/null || return 1
  done
  _swarm_log "$n nodes up in $((SECONDS - start))s ($SWARM_DIR)"
}

swarm_stop() {
  local i d pids=()
  [ -d "$SWARM_DIR" ] || return 0
  # Services first, so that no engine has to stop tasks as it shuts down.
  sdocker 0 service ls -q 2>/dev/null | xargs -r docker -H "$(swarm_sock 0)" service rm >/dev/null 2>&1 || true
  for d in "$SWARM_DIR"/n*; do
    [ -d "$d" ] || continue
    i=${d##*/n}
    sdocker "$i" ps -aq 2>/dev/null | xargs -r docker -H "$(swarm_sock "$i")" rm -f >/dev/null 2>&1 || true
  done
  for d in "$SWARM_DIR"/n*; do
    [ -d "$d" ] || continue
    _swarm_engine_stop "${d##*/n}" &
    pids+=($!)
  done
  # Only these: the test may have other children (reaper) still running.
  for i in "${pids[@]}"; do wait "$i" || true; done
  for d in "$SWARM_DIR"/n*; do
    [ -d "$d" ] || continue
    ip netns del "${SWARM_TAG}n${d##*/n}" 2>/dev/null || true
  done
  ip netns del "${SWARM_TAG}sw" 2>/dev/null || true
  grep -o " $SWARM_DIR/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$SWARM_DIR"
}
