#!/usr/bin/env bash
# recreate keeps everything: a container with env, labels, two networks
# with aliases and a static IP, a named volume, an anonymous volume (the
# image's VOLUME /data), a bind mount, tmpfs, a published port on a host IP,
# a restart policy, capabilities, memory limit, log options, user, working
# dir and hostname is replaced by a new container with all of them intact,
# its data still there, and the recycle audited and verifiable.
source "$(dirname "$0")/lib.sh"

docker network create --label "$TEST_LABEL" --subnet 172.31.5.0/24 rpt-front$$ >/dev/null
docker network create --label "$TEST_LABEL" rpt-back$$ >/dev/null
docker volume create --label "$TEST_LABEL" rpt-vol$$ >/dev/null
mkdir -p "$T/bind" && echo from-host >"$T/bind/file"

# Podman's CNI publishes a port through route_localnet, which a machine whose
# /proc/sys is read-only (a test bed inside a container) cannot set: there
# the port is left out, and said so; everywhere else it is tested.
publish=(-p "127.0.0.1:$((PORT_BASE + 481)):8080")
if [ "$ENGINE_KIND" = podman ] && ! [ -w /proc/sys/net/ipv4/conf/all/route_localnet ]; then
  log "SKIP the published port: /proc/sys is read-only here, and Podman's CNI needs route_localnet"
  publish=()
fi
run web$$ \
  -e GREETING=hello -e "MULTI=a b c" \
  -l tier=web -l com.docker.compose.project=shop -l com.docker.compose.service=web \
  --network rpt-front$$ --ip 172.31.5.10 --network-alias www --network-alias shop-web \
  -v rpt-vol$$:/named \
  --mount "type=bind,source=$T/bind,target=/bind,readonly" \
  --tmpfs /scratch:size=1m \
  "${publish[@]}" \
  --restart unless-stopped \
  --cap-add NET_ADMIN --cap-drop MKNOD \
  --memory 64m \
  --log-opt max-size=1m --log-opt max-file=2 \
  --user 1000:1000 -w /named --hostname web-host \
  --stop-signal SIGUSR1 \
  reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM USR1; while true; do sleep 0.2; done'
docker network connect --alias api rpt-back$$ web$$
docker exec -u 0 web$$ sh -c 'echo anon-data >/data/keep; echo named-data >/named/keep; chown 1000 /named/keep'

old_id=$(cid web$$)
before=$(docker inspect web$$)
anon_labels=$(docker volume inspect -f '{{json .Labels}}' "$(jq -r '.[0].Mounts[] | select(.Destination == "/data") | .Name' <<<"$before")")
simple_config 1s recreate
sleep 1.5
reaper_once || fail "run --once exited non-zero"

wait_for 5 "a running container named web$$" running web$$
new_id=$(cid web$$)
[ "$new_id" != "$old_id" ] || fail "web$$ was not replaced (same id)"
docker inspect "$old_id" >/dev/null 2>&1 && fail "the old container $old_id is still there"
[ "$(names_matching "web$$" | wc -l)" = 1 ] || fail "more than one container named web$$"
after=$(docker inspect web$$)

same() { # JQ-PATH: the field is equal before and after
  local a b
  a=$(jq -cS ".[0] | $1" <<<"$before")
  b=$(jq -cS ".[0] | $1" <<<"$after")
  [ "$a" = "$b" ] || fail "$1 changed: before $a, after $b"
}
for f in ".Config.Env | sort" .Config.Cmd .Config.Entrypoint .Config.User .Config.WorkingDir \
  .Config.Hostname .Config.StopSignal .Config.Image .Image \
  .HostConfig.Binds '.HostConfig | (.Mounts // []) | map(select(.Target != "/data"))' .HostConfig.Tmpfs .HostConfig.PortBindings \
  .HostConfig.RestartPolicy .HostConfig.CapAdd .HostConfig.CapDrop .HostConfig.Memory \
  .HostConfig.LogConfig .HostConfig.NetworkMode \
  '.NetworkSettings.Networks | keys' \
  ".NetworkSettings.Networks[\"rpt-front$$\"].IPAMConfig" \
  ".NetworkSettings.Networks[\"rpt-front$$\"].IPAddress"; do
  same "$f"
done
# Labels: all kept (compose's among them), plus reaper's mark.
for l in tier com.docker.compose.project com.docker.compose.service reaper-test; do
  same ".Config.Labels[\"$l\"]"
done
assert_eq "$old_id" "$(jq -r '.[0].Config.Labels["reaper.replaces"]' <<<"$after")" "reaper.replaces label"
# Aliases: the user's, without the old short id.
for net in rpt-front$$ rpt-back$$; do
  al=$(jq -c --arg n "$net" '.[0].NetworkSettings.Networks[$n].Aliases // [] | map(select(. != "'"${old_id:0:12}"'" and . != "'"${new_id:0:12}"'")) | sort' <<<"$after")
  want=$(jq -c --arg n "$net" '.[0].NetworkSettings.Networks[$n].Aliases // [] | map(select(. != "'"${old_id:0:12}"'")) | sort' <<<"$before")
  assert_eq "$want" "$al" "aliases on $net"
done
jq -e '.[0].NetworkSettings.Networks["rpt-back'$$'"].Aliases | index("api")' <<<"$after" >/dev/null || fail "alias api lost"
# Data: the named volume, the anonymous volume and the bind mount.
assert_eq named-data "$(docker exec web$$ cat /named/keep)" "named volume content"
assert_eq anon-data "$(docker exec web$$ cat /data/keep)" "anonymous volume content"
assert_eq from-host "$(docker exec web$$ cat /bind/file)" "bind mount content"
# The anonymous volume is the same one, not a new empty one.
old_anon=$(jq -r '.[0].Mounts[] | select(.Destination == "/data") | .Name' <<<"$before")
new_anon=$(jq -r '.[0].Mounts[] | select(.Destination == "/data") | .Name' <<<"$after")
assert_eq "$old_anon" "$new_anon" "anonymous volume re-attached"
# The published port answers on the host IP (through docker-proxy).
[ ${#publish[@]} = 0 ] || jq -e '.[0].NetworkSettings.Ports["8080/tcp"][0].HostIp == "127.0.0.1"' <<<"$after" >/dev/null ||
  fail "host IP binding lost"

# The audit log: begin then done, with the replacement, and an intact chain.
assert_eq 1 "$(audit_count recycle.begin)" "recycle.begin lines"
assert_eq 1 "$(audit_count recycle.done)" "recycle.done lines"
assert_eq "$new_id" "$(audit_events recycle.done | jq -r .replacement_id)" "replacement_id"
# The time to a running replacement is told apart from the whole recycle,
# which also holds the survival window after it.
[ "$(audit_events recycle.done | jq '.ready_s > 0 and .ready_s < .duration_s')" = true ] ||
  fail "recycle.done: ready_s must be under duration_s: $(audit_events recycle.done)"
audit_any recycle.begin '.id == $id and .name == "web'$$'" and .kind == "container" and .provider == "local" and .policy == "test" and .max_age_s == 1 and (.age_s | type == "number") and (.started_at | test("Z$"))' --arg id "$old_id" || fail "recycle.begin fields"
[ "$(jq -s '[.[].event] | index("recycle.begin") < index("recycle.done")' "$T/audit.jsonl")" = true ] || fail "begin must precede done"
verify_audit
log "recreated $old_id -> $new_id with its configuration intact"

# The anonymous volume after the recycle (README, "Anonymous volumes").
# Docker: re-attached by name (as compose's recreate does), so `docker rm -v`
# of the replacement leaves it, where it removed it before: Docker decides
# from how the mount was asked for, and no create request can ask for an
# existing volume anonymously but --volumes-from a container that the
# recycle removes.  It is still the engine's anonymous volume, labelled as
# the engine labelled it (Engine 23+: com.docker.volume.anonymous), so
# `docker volume prune`, which takes unused anonymous volumes, removes it.
# Podman: the volume itself says it is anonymous, and rm -v removes it as
# before the recycle.
docker rm -f -v web$$ >/dev/null
if [ "$ENGINE_KIND" = podman ]; then
  docker volume inspect "$old_anon" >/dev/null 2>&1 && fail "podman rm -v left the anonymous volume $old_anon after the recycle"
  log "anonymous volume: removed by rm -v after the recycle, as before it"
else
  docker volume inspect "$old_anon" >/dev/null 2>&1 || fail "docker rm -v removed the re-attached anonymous volume: the README says it stays"
  assert_eq "$anon_labels" "$(docker volume inspect -f '{{json .Labels}}' "$old_anon")" "the anonymous volume's labels after the recycle"
  docker volume prune -f >/dev/null
  docker volume inspect "$old_anon" >/dev/null 2>&1 && fail "docker volume prune left the unused anonymous volume $old_anon"
  log "anonymous volume: kept by rm -v after the recycle, removed by volume prune"
fi
