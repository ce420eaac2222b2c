#!/usr/bin/env bash
# Proves on a real engine that the bodies rp_docker_create_body() builds
# recreate containers faithfully; with --capture, first refreshes the unit
# tests' fixtures (this directory) from the same containers.
#
#   tests/unit/data/docker/check-bodies.sh [--capture] [--keep]
#
# Uses the engine at $DOCKER_HOST when it is set (it must be a PRIVATE one:
# the script creates and removes containers, volumes and networks named
# rpc-*), else starts its own with tests/lib/engine.sh and stops it after.
# SCENARIOS="full anon ..." restricts the run.  onbridge needs the default
# bridge network, which the project's test engine (--bridge=none) lacks: it
# is skipped there (see README.md here for how it was run).
#
# For every scenario container, twice (pass 1 with the old image ID, pass 2
# from the image reference, as a policy with pull: true does, so that the
# image defaults are left out of the body):
#   a marker file goes into each of its volumes; the body is built; the old
#   container is renamed NAME-reaper-old, the new one created as NAME, its
#   extra networks connected, the old one stopped, the new one started; then
#   old and new are compared: Config, HostConfig, effective mounts, networks
#   (static IPs, aliases, links, the configured MAC), with
#   container IDs replaced by names; the new one must run, and the markers
#   are read back from its volumes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
capture=0
keep=0
for a in "$@"; do
  case $a in
  --capture) capture=1 ;;
  --keep) keep=1 ;;
  *) echo "usage: $0 [--capture] [--keep]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
own_engine=0
cleanup() {
  local rc=$?
  if [ "$keep" = 0 ]; then
    # The containers, then their volumes (anonymous ones included) only.
    local cs
    cs=$(docker ps -aq --filter name=rpc- 2>/dev/null || true)
    if [ -n "$cs" ]; then
      docker inspect $cs | jq -r '.[].Mounts[] | select(.Type == "volume") | .Name' |
        sort -u >"$work/volumes" || true
      docker rm -f $cs >/dev/null 2>&1 || true
      xargs -r docker volume rm <"$work/volumes" >/dev/null 2>&1 || true
    fi
    for n in rpc-n1 rpc-n2 rpc-n3; do docker network rm $n >/dev/null 2>&1 || true; done
    if [ "$own_engine" = 1 ]; then engine_stop; fi
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

# shellcheck source=../../../lib/engine.sh
source "$root/tests/lib/engine.sh"
if [ -z "${DOCKER_HOST:-}" ]; then
  ENGINE_DIR=${ENGINE_DIR:-/tmp/rp-check-bodies}
  engine_start
  own_engine=1
fi
case $DOCKER_HOST in
unix:///var/run/docker.sock | "")
  echo "check-bodies: refusing to run on the system engine; start a private one" >&2
  exit 2
  ;;
esac
sock=${DOCKER_HOST#unix://}
engine_build_images
if ! docker image inspect reaper-test/rich:1 >/dev/null 2>&1; then
  # An image with a default for everything a body may leave out.
  mkdir "$work/rich"
  cat >"$work/rich/Dockerfile" <<'DOCKERFILE'
FROM reaper-test/sleeper:1
ENV A=1 B=2
WORKDIR /srv
USER 1000
EXPOSE 8080
LABEL org.example.from=image
VOLUME /cache
HEALTHCHECK --interval=5s CMD ["/bin/true"]
ENTRYPOINT ["/bin/sleep"]
CMD ["3600"]
DOCKERFILE
  DOCKER_BUILDKIT=0 docker build -q -t reaper-test/rich:1 "$work/rich" >/dev/null 2>&1
fi

gcc -std=gnu11 -D_GNU_SOURCE -I"$root/src" -I"$root/providers" -o "$work/emit-body" \
  "$here/emit-body.c" "$root/providers/docker/create_body.c" "$root/src/error.c" \
  "$root/src/util.c" $(pkg-config --cflags --libs jansson)

api() { # METHOD PATH [BODY-FILE] -> body on stdout; fails on HTTP >= 400
  local out code
  out=$(curl -sS --unix-socket "$sock" -X "$1" -H 'Content-Type: application/json' \
    ${3:+--data-binary @"$3"} -w '\n%{http_code}' "http://localhost/v1.41$2")
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  if [ "$code" -ge 400 ]; then
    echo "check-bodies: $1 $2: $code $out" >&2
    return 1
  fi
  printf '%s' "$out"
}

# ID -> the name its container had when created; kept across renames so that
# references to a replaced container resolve to its replacement's name.
ids=$work/ids
: >"$ids"
remember() { # container...
  local c
  for c in "$@"; do
    docker inspect -f '{{.Id}} {{.Name}}' "$c" | sed 's# /# #' >>"$ids"
  done
}
id_names_json() {
  jq -Rn '[inputs | split(" ") | {(.[0]): .[1], (.[0][:12]): .[1]}] | add // {}' <"$ids"
}
# Inspect output with every known container ID (full, then short) replaced
# by its name, so that old and new compare equal where they should.
subst_ids() {
  local script=$work/subst.sed
  : >"$script"
  while read -r id name; do echo "s/$id/$name/g" >>"$script"; done <"$ids"
  while read -r id name; do echo "s/${id:0:12}/$name/g" >>"$script"; done <"$ids"
  sed -f "$script"
}
norm() { # container -> the view that must not change across a recreate
  docker inspect "$1" | jq '.[0]' | subst_ids | jq -S '
    (.HostConfig.NetworkMode) as $mode
    | (.Config.MacAddress // "") as $mac
    | {
        Image: .Image,
        Config: (.Config | del(.Image) | .Labels = ((.Labels // {}) | del(.["reaper.replaces"]))),
        HostConfig: (.HostConfig | del(.Mounts)),
        Mounts: ([.Mounts[] | {Type, Name, Source, Destination, RW}] | sort_by(.Destination)),
        Networks: (.NetworkSettings.Networks | with_entries(.key as $net | .value |= {
          IPAMConfig: ((.IPAMConfig // {}) | with_entries(select(.value != "" and .value != null))),
          Aliases: ((.Aliases // []) | sort),
          Links: (.Links // []),
          IPv4: (if (.IPAMConfig.IPv4Address // "") != "" then .IPAddress else null end),
          IPv6: (if (.IPAMConfig.IPv6Address // "") != "" then .GlobalIPv6Address else null end),
          Mac: (if $net == $mode and $mac != "" then .MacAddress else null end)
        }))
      }'
}

scenario_full() {
  mkdir -p "$work/bind"
  docker run -d --name rpc-full --network rpc-n1 --ip 10.231.1.10 --ip6 fd00:231:1::10 \
    --network-alias web --network-alias www \
    -v rpc-fulldata:/data --mount type=bind,source="$work/bind",target=/bind,readonly \
    --tmpfs /run:rw,size=16m -p 127.0.0.1:18080:8080 -p 127.0.0.1:18081:8081/udp --expose 9000 \
    --restart unless-stopped --cap-add NET_ADMIN --cap-drop MKNOD --memory 64m --cpu-shares 512 \
    --pids-limit 100 --log-driver json-file --log-opt max-size=1m --log-opt max-file=2 \
    --health-cmd /bin/true --health-interval 5s --health-retries 3 \
    -l com.docker.compose.project=demo -l com.docker.compose.service=web -l tier=web \
    -e FOO=bar -e EMPTY= --user 1000:1000 -w /tmp --hostname web01 --domainname example.test \
    --ulimit nofile=1024:2048 --sysctl net.ipv4.ip_unprivileged_port_start=0 \
    --dns 10.231.1.1 --dns-search example.test --add-host db.example.test:10.231.1.99 \
    --security-opt no-new-privileges --stop-signal SIGINT --stop-timeout 7 \
    --device /dev/null:/dev/xnull --shm-size 32m --read-only \
    reaper-test/sleeper:1 /bin/sleep 7200 >/dev/null
  docker network connect --ip 10.231.2.10 --alias web2 rpc-n2 rpc-full
}
scenario_anon() { # the image's VOLUME, a runtime MAC, the short-ID hostname
  docker run -d --name rpc-anon --network rpc-n1 reaper-test/sleeper:1 >/dev/null
}
scenario_mac() { # a configured MAC: the docker CLI sets it only with API 1.44
  jq -n '{Image: "reaper-test/sleeper:1", MacAddress: "02:00:00:aa:bb:cc",
          HostConfig: {NetworkMode: "rpc-n1"},
          NetworkingConfig: {EndpointsConfig: {"rpc-n1": {Aliases: ["macalias"]}}}}' >"$work/mac.json"
  api POST "/containers/create?name=rpc-mac" "$work/mac.json" >/dev/null
  docker network connect rpc-n2 rpc-mac
  docker start rpc-mac >/dev/null
}
scenario_linked() {
  docker run -d --name rpc-linked --network rpc-n1 --link rpc-full:db reaper-test/sleeper:1 >/dev/null
}
scenario_netcont() {
  docker run -d --name rpc-netcont --network container:rpc-full --pid container:rpc-full \
    reaper-test/sleeper:1 >/dev/null
}
scenario_mountvol() { # a named volume where the image declares one; anonymous ones
  docker run -d --name rpc-mountvol --network rpc-n2 \
    --mount type=volume,source=rpc-mvol,target=/data --mount type=volume,target=/scratch \
    -v /extra reaper-test/sleeper:1 >/dev/null
}
scenario_hostnet() {
  docker run -d --name rpc-hostnet --network host reaper-test/sleeper:1 >/dev/null
}
scenario_nonet() {
  docker run -d --name rpc-nonet --network none reaper-test/sleeper:1 >/dev/null
}
scenario_richdef() { # everything from the image's defaults
  docker run -d --name rpc-richdef --network rpc-n2 reaper-test/rich:1 >/dev/null
}
scenario_richover() { # another Entrypoint with the image's own Cmd
  jq -n '{Image: "reaper-test/rich:1", Entrypoint: ["/bin/busybox", "sleep"], Cmd: ["3600"],
          Env: ["A=9"], WorkingDir: "/tmp", User: "0", HostConfig: {NetworkMode: "rpc-n2"}}' \
    >"$work/richover.json"
  api POST "/containers/create?name=rpc-richover" "$work/richover.json" >/dev/null
  docker start rpc-richover >/dev/null
}
scenario_noentry() { # the image's Entrypoint cleared
  docker run -d --name rpc-noentry --network none --entrypoint "" reaper-test/rich:1 \
    /bin/sleep 3600 >/dev/null
}
scenario_onbridge() { # the default bridge: legacy links, no aliases
  docker run -d --name rpc-db reaper-test/sleeper:1 >/dev/null
  remember rpc-db
  docker run -d --name rpc-onbridge --link rpc-db:database -p 127.0.0.1:18090:8080 \
    reaper-test/sleeper:1 >/dev/null
  docker network connect --alias extra rpc-n3 rpc-onbridge
}

has_bridge=0
docker network inspect bridge >/dev/null 2>&1 && has_bridge=1
all="full anon mac linked netcont mountvol hostnet nonet richdef richover noentry onbridge"
scenarios=${SCENARIOS:-$all}
run=""
for s in $scenarios; do
  if [ "$s" = onbridge ] && [ "$has_bridge" = 0 ]; then
    echo "skip onbridge: this engine has no default bridge network"
    continue
  fi
  run="$run $s"
done
case " $run " in *" full "* | *" anon "* | *" mac "* | *" linked "*)
  docker network create --subnet 10.231.1.0/24 --ipv6 --subnet fd00:231:1::/64 rpc-n1 >/dev/null ;;
esac
case " $run " in *" full "* | *" mac "* | *" mountvol "* | *" rich"*)
  docker network create --subnet 10.231.2.0/24 rpc-n2 >/dev/null ;;
esac
case " $run " in *" onbridge "*)
  docker network create --subnet 10.231.3.0/24 rpc-n3 >/dev/null ;;
esac
for s in $run; do
  "scenario_$s"
  remember "rpc-$s"
done
sleep 1

if [ "$capture" = 1 ]; then
  for s in $run; do
    docker inspect "rpc-$s" | jq '.[0]' >"$here/$s.json"
  done
  docker image inspect reaper-test/sleeper:1 | jq '.[0]' >"$here/image-sleeper.json"
  docker image inspect reaper-test/rich:1 | jq '.[0]' >"$here/image-rich.json"
  echo "captured:$run"
fi

fail=0
recreate() { # scenario pass
  local s=$1 pass=$2 name=rpc-$1 old image ref=() dest marker
  old=$(docker inspect -f '{{.Id}}' "$name")
  image=$(docker inspect -f '{{.Image}}' "$name")
  [ "$pass" = 2 ] && ref=("$(docker image inspect -f '{{index .RepoTags 0}}' "$image")")
  docker inspect "$name" | jq -r '.[0].Mounts[] | select(.Type == "volume") | .Destination' >"$work/vols"
  docker image inspect "$image" | jq '.[0]' >"$work/image.json"
  docker inspect "$name" | jq '.[0]' >"$work/old.json"
  id_names_json >"$work/id-names.json"
  "$work/emit-body" "$work/old.json" "$work/image.json" "$work/id-names.json" ${ref[@]+"${ref[@]}"} \
    >"$work/out.json"
  jq '.body' "$work/out.json" >"$work/body.json"
  norm "$name" >"$work/old.norm"

  docker rm "$name-reaper-old" >/dev/null 2>&1 || true # the previous pass's
  docker rename "$name" "$name-reaper-old"
  local new
  new=$(api POST "/containers/create?name=$name" "$work/body.json" | jq -r .Id)
  remember "$new"
  local n=0 net
  while [ "$n" -lt "$(jq '.extra_networks | length' "$work/out.json")" ]; do
    net=$(jq -r ".extra_networks[$n].name" "$work/out.json")
    jq --arg c "$new" "{Container: \$c, EndpointConfig: .extra_networks[$n].config}" \
      "$work/out.json" >"$work/connect.json"
    api POST "/networks/$net/connect" "$work/connect.json" >/dev/null
    n=$((n + 1))
  done
  docker stop -t 1 "$name-reaper-old" >/dev/null
  api POST "/containers/$new/start" >/dev/null
  sleep 0.5
  norm "$new" >"$work/new.norm"

  local ok=1
  if [ "$(docker inspect -f '{{.State.Running}}' "$new")" != true ]; then
    echo "$name: the replacement is not running"
    ok=0
  fi
  if ! diff -u "$work/old.norm" "$work/new.norm" >"$work/diff"; then
    ok=0
    cat "$work/diff"
  fi
  while read -r dest; do
    marker=$(docker exec -u 0 "$new" cat "$dest/.rp-marker" 2>/dev/null || true)
    if [ "$marker" != "$old" ]; then
      echo "$name: $dest lost its data (marker '$marker')"
      ok=0
    fi
  done <"$work/vols"
  if [ "$ok" = 1 ]; then
    echo "ok   pass $pass $name (${ref[*]:-$image}): $(jq -c '.extra_networks | map(.name)' "$work/out.json") extra"
  else
    echo "FAIL pass $pass $name"
    fail=1
  fi
}

mark() { # scenario: a marker in each of its volumes, read back by recreate
  local name=rpc-$1 old dest
  old=$(docker inspect -f '{{.Id}}' "$name")
  docker inspect "$name" | jq -r '.[0].Mounts[] | select(.Type == "volume") | .Destination' |
    while read -r dest; do
      docker exec -u 0 "$name" sh -c "echo $old > $dest/.rp-marker"
    done
}

for pass in 1 2; do
  # All markers first: stopping a container kills those that share its PID
  # namespace (netcont), before their own turn comes.
  for s in $run; do mark "$s"; done
  for s in $run; do recreate "$s" "$pass"; done
done
[ "$fail" = 0 ] && echo "check-bodies: all bodies recreate their containers"
exit $fail
