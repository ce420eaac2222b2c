#!/usr/bin/env bash
# A private containerd for the tests: its own socket, root and state under
# $CTRD_DIR, never the system's /run/containerd/containerd.sock.  Its test
# image comes from the private dockerd of tests/lib/engine.sh (docker save,
# then ctr image import).  Source this file, then:
#   ctrd_start             starts containerd (idempotent); its snapshotter
#                          is overlayfs, or native where overlay cannot be
#                          mounted (CONTAINERD_SNAPSHOTTER, which ctr reads)
#   ctrd_stop_daemon       stops containerd alone (tasks keep running in
#                          their shims), for restart tests
#   ctrd_import            imports reaper-test/sleeper:1 into $CTRD_NS
#   ctrd_run NAME [ctr run options...] [-- CMD...]
#                          runs a task of the image, labelled reaper-test=$$
#   ctrd_pid NAME          the task's pid ("" when it has none)
#   ctrd_status NAME       RUNNING, STOPPED, ... ("" when no task)
#   ctrd_exec NAME CMD...  runs CMD inside the task, prints its output
#   ctrd_stop              removes every task and container, stops
#                          containerd, unmounts and removes $CTRD_DIR
# CTRD_DIR defaults to /tmp/rpc.$$ (short: a socket path has 108 bytes).

CTRD_DIR=${CTRD_DIR:-/tmp/rpc.$$}
CTRD_NS=${CTRD_NS:-reaper-test}
CTRD_SOCK=$CTRD_DIR/containerd.sock
CTRD_IMAGE=docker.io/reaper-test/sleeper:1

ctr_() { ctr -a "$CTRD_SOCK" -n "$CTRD_NS" "$@"; }

ctrd_ping() { ctr -a "$CTRD_SOCK" version >/dev/null 2>&1; }

# overlayfs where the kernel lets us mount it there (not on an overlay, as
# inside a container), else containerd's native snapshotter (plain copies).
# ctr reads CONTAINERD_SNAPSHOTTER.
ctrd_pick_snapshotter() {
  [ -n "${CONTAINERD_SNAPSHOTTER:-}" ] && return 0
  local d=$CTRD_DIR/ovl-probe
  mkdir -p "$d/l" "$d/u" "$d/w" "$d/m"
  if mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/m" 2>/dev/null; then
    umount "$d/m"
    export CONTAINERD_SNAPSHOTTER=overlayfs
  else
    export CONTAINERD_SNAPSHOTTER=native
  fi
  rm -rf "$d"
}

ctrd_start() {
  mkdir -p "$CTRD_DIR"
  ctrd_pick_snapshotter
  if ctrd_ping; then return 0; fi
  command -v containerd >/dev/null || {
    echo "containerd: not installed (apt-get install containerd, or docker.io)" >&2
    return 1
  }
  # CRI is the kubelet's plugin: not wanted here, and it would want ports.
  cat >"$CTRD_DIR/config.toml" <<TOML
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
TOML
  nohup containerd -c "$CTRD_DIR/config.toml" >>"$CTRD_DIR/containerd.log" 2>&1 &
  echo $! >"$CTRD_DIR/pid"
  for _ in $(seq 1 80); do
    ctrd_ping && return 0
    sleep 0.25
  done
  echo "containerd: did not answer within 20 s; its log:" >&2
  tail -n 30 "$CTRD_DIR/containerd.log" >&2
  return 1
}

ctrd_stop_daemon() {
  local pid
  pid=$(cat "$CTRD_DIR/pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$CTRD_DIR/pid"
}

ctrd_import() {
  ctr_ image inspect "$CTRD_IMAGE" >/dev/null 2>&1 && return 0
  local tar=${CTRD_IMAGE_TAR:-$CTRD_DIR/sleeper.tar}
  if [ ! -s "$tar" ]; then
    docker save reaper-test/sleeper:1 -o "$tar" || return 1
  fi
  ctr_ image import "$tar" >/dev/null || return 1
}

ctrd_run() { # NAME [ctr run options...] [-- CMD...]
  local name=$1
  shift
  local opts=() cmd=()
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then
      shift
      cmd=("$@")
      break
    fi
    opts+=("$1")
    shift
  done
  ctr_ run -d --null-io --label "reaper-test=$$" "${opts[@]}" "$CTRD_IMAGE" "$name" "${cmd[@]}" >/dev/null
}

ctrd_pid() { ctr_ task ls 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'; }
ctrd_status() { ctr_ task ls 2>/dev/null | awk -v n="$1" '$1 == n { print $3 }'; }
ctrd_running() { [ "$(ctrd_status "$1")" = RUNNING ]; }

ctrd_exec_n=0
ctrd_exec() { # NAME CMD...
  local name=$1
  shift
  ctrd_exec_n=$((ctrd_exec_n + 1))
  ctr_ task exec --exec-id "t$$-$ctrd_exec_n" "$name" "$@"
}

ctrd_stop() {
  if ctrd_ping; then
    local t c
    for t in $(ctr_ task ls -q 2>/dev/null); do
      ctr_ task kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    for t in $(ctr_ task ls -q 2>/dev/null); do
      for _ in $(seq 1 20); do
        ctr_ task rm -f "$t" >/dev/null 2>&1 && break
        sleep 0.25
      done
    done
    for c in $(ctr_ containers ls -q 2>/dev/null); do
      ctr_ containers rm "$c" >/dev/null 2>&1 || true
    done
  fi
  ctrd_stop_daemon
  grep -o " $CTRD_DIR[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$CTRD_DIR"
}
