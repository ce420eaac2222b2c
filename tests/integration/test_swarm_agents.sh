#!/usr/bin/env bash
# A fleet set-up on a real three-node swarm (contrib/docs/swarm.md): reaper
# runs as a global service, one agent per node with the docker provider and
# that node's socket mounted, beside one cluster agent with the swarm
# provider.  Each node agent recycles the plain containers of its own node;
# none touches a swarm task container (not even those that match its
# policy's labels) nor its own container: tasks are renewed through their
# service, by the cluster agent.
source "$(dirname "$0")/lib.sh"
# shellcheck source=../lib/swarm.sh
source "$(dirname "$0")/../lib/swarm.sh"

if ! why=$(swarm_supported); then
  log "SKIP: this machine cannot run a swarm of network namespaces: $why"
  exit 0
fi
on_exit swarm_stop
swarm_start 3 || fail "could not start the swarm"
M=$(swarm_sock 0)

# An image of reaper itself: the binary and the libraries it links, FROM
# scratch.
ctx=$T/image
mkdir -p "$ctx/root"
cp "$REAPER" "$ctx/root/reaper"
for lib in $(ldd "$REAPER" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
  mkdir -p "$ctx/root$(dirname "$lib")"
  cp -L "$lib" "$ctx/root$lib"
done
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY root/ /
ENTRYPOINT ["/reaper"]
DOCKERFILE
DOCKER_BUILDKIT=0 sdocker 0 build -q -t reaper-test/reaper:1 "$ctx" >/dev/null 2>&1 || fail "could not build reaper's image"
sdocker 0 save reaper-test/reaper:1 -o "$T/reaper-image.tar"
for i in 1 2; do sdocker "$i" load -q -i "$T/reaper-image.tar" >/dev/null || fail "load on node $i"; done

CMD=(sh -c 'trap "exit 0" TERM; while sleep 1; do :; done')
# Plain containers, one per node, that the node agents' policy matches...
for i in 0 1 2; do
  sdocker "$i" run -d --name "plain$i" -l plain=yes reaper-test/sleeper:1 "${CMD[@]}" >/dev/null ||
    fail "could not run plain$i"
done
# ...and a service whose task containers carry the same label.
sdocker 0 service create -d -q --name tasks --replicas 3 --container-label plain=yes \
  -l reaper.max-age=8s --stop-grace-period 1s --update-monitor 1s \
  reaper-test/sleeper:1 "${CMD[@]}" >/dev/null 2>&1
task_containers() { # NODE: the ids of that node's task containers of "tasks"
  sdocker "$1" ps -q --no-trunc --filter label=com.docker.swarm.service.name=tasks | sort
}
tasks_up() { [ -n "$(task_containers 0)$(task_containers 1)$(task_containers 2)" ]; }
wait_for 60 "the tasks service running" tasks_up

# The node agents: a global service, each with its node's own socket (by
# hostname, tests/lib/swarm.sh) and a directory of its own for its config
# and audit log; labelled so that the cluster agent leaves it alone.
for i in 0 1 2; do
  mkdir -p "$T/agents/node$i"
  cat >"$T/agents/node$i/config.yaml" <<YAML
agent:
  listen: ""
  audit_log: /state/audit.jsonl
  resync: 3s
providers:
  - name: local
    type: docker
policies:
  - name: plain
    match: { labels: { plain: "yes" } }
    max_age: 6s
    grace: 1s
    strategy: recreate
    health_timeout: 20s
YAML
done
sdocker 0 service create -d -q --name reaper-node --mode global -l reaper.exclude=true \
  --mount "type=bind,source=$SWARM_DIR/socks/{{.Node.Hostname}}.sock,target=/var/run/docker.sock" \
  --mount "type=bind,source=$T/agents/{{.Node.Hostname}},target=/state" \
  -e ASAN_OPTIONS=detect_leaks=0 \
  reaper-test/reaper:1 run -c /state/config.yaml >/dev/null 2>&1 ||
  fail "could not create the reaper-node service"

# The cluster agent, on this host.
config <<YAML
agent:
  listen: ""
  audit_log: $T/audit.jsonl
  resync: 3s
providers:
  - name: cluster
    type: swarm
    endpoint: $M
policies:
  - name: services
    match: { provider: cluster, kind: service }
    max_age: 1h
    health_timeout: 20s
YAML
start_reaper

declare -A before_tasks
for i in 0 1 2; do before_tasks[$i]=$(task_containers "$i"); done
plain_recycled() { # NODE
  [ -f "$T/agents/node$1/audit.jsonl" ] &&
    jq -e -s --arg n "plain$1" 'any(.[]; .event == "recycle.done" and .name == $n)' \
      "$T/agents/node$1/audit.jsonl" >/dev/null
}
for i in 0 1 2; do
  wait_for 90 "node$i's agent to recycle plain$i" plain_recycled "$i"
done
cluster_done() { audit_any recycle.done '.kind == "service" and .name == "tasks"'; }
wait_for 60 "the cluster agent to renew the tasks service" cluster_done

for i in 0 1 2; do
  a=$T/agents/node$i/audit.jsonl
  # Only plain containers, never a task container nor the agent's own.
  others=$(jq -r 'select(.event | startswith("recycle.")) | .name | select(test("^plain[0-9]$") | not)' "$a")
  [ -z "$others" ] || fail "node$i's agent recycled $others"
  sdocker "$i" inspect "plain$i" >/dev/null || fail "plain$i is gone from node$i"
  # What the node agent sees, asked inside its own container.
  self=$(sdocker "$i" ps -q --no-trunc --filter label=com.docker.swarm.service.name=reaper-node)
  [ -n "$self" ] || fail "no reaper-node task on node$i"
  sdocker "$i" exec "$self" /reaper plan -c /state/config.yaml --json >"$T/plan$i.json" 2>/dev/null ||
    fail "plan inside node$i's agent failed"
  jq -e --arg id "$self" '.[] | select(.id == $id) | .excluded and (.reason | test("own container"))' "$T/plan$i.json" >/dev/null ||
    fail "node$i's agent does not exclude its own container: $(cat "$T/plan$i.json")"
  for c in $(task_containers "$i"); do
    jq -e --arg id "$c" '.[] | select(.id == $id) | .excluded and (.reason | test("swarm task"))' "$T/plan$i.json" >/dev/null ||
      fail "node$i's agent does not protect task container $c"
  done
done
# The task containers that ran before were renewed through their service
# (new tasks), never recreated as plain containers: no node agent's line
# names them, and the cluster agent's line is about the service.
audit_any recycle.begin '.kind != "service"' && fail "the cluster agent recycled something other than a service"
audit_any recycle.begin '.name == "reaper-node"' && fail "the cluster agent touched the agents' own service"
for i in 0 1 2; do
  for c in ${before_tasks[$i]}; do
    grep -q "$c" "$T/agents/node$i/audit.jsonl" && fail "node$i's agent touched task container $c"
  done
done
stop_reaper
verify_audit
for i in 0 1 2; do
  "$REAPER" verify "$T/agents/node$i/audit.jsonl" >/dev/null || fail "node$i's audit log does not verify"
done
log "ok: node agents recycle plain containers only; the cluster agent renews services"
