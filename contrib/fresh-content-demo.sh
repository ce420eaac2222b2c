#!/usr/bin/env bash
# Fresh content, walked through on a private Docker engine and a private
# registry (Debian's docker-registry on 127.0.0.1): two containers run
# app:1; new versions are pushed under that tag, and reaper
#   1. rolls a signed one out to both, one at a time, long before their
#      max age (reason update);
#   2. refuses an unsigned one at its verify gate: nothing is done, the
#      containers keep running untouched (recycle.refused, refused_by
#      verify);
#   3. quarantines a signed but broken one after its first replacement
#      fails its health check: rolled back, and the other container never
#      moves to it (image.quarantined);
# then `reaper report` says how long each new digest took to reach
# production (patch latency), and `reaper verify` checks the audit log.
# Everything is removed at the end.  Needs root (for dockerd).
#   contrib/fresh-content-demo.sh [--use-engine] [--ports FROM-TO] [--keep]
# --use-engine: the engine at $DOCKER_HOST instead of a private one (the
# tests); --ports: where the registry and reaper's listener may listen
# (default 15000-15099).  REAPER=/path/to/reaper uses that binary.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
use_engine=0 keep=0 ports=15000-15099
while [ $# -gt 0 ]; do
  case $1 in
  --use-engine) use_engine=1 ;;
  --keep) keep=1 ;;
  --ports)
    ports=${2:?--ports FROM-TO}
    shift
    ;;
  -h | --help)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "fresh-content-demo: unknown option '$1'" >&2
    exit 2
    ;;
  esac
  shift
done
[[ $ports =~ ^([0-9]+)-([0-9]+)$ ]] || {
  echo "fresh-content-demo: --ports wants FROM-TO" >&2
  exit 2
}
port_from=${BASH_REMATCH[1]} port_to=${BASH_REMATCH[2]}

if [ -t 1 ]; then
  B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else
  B='' G='' R='' N=''
fi
# shellcheck source=lib/demo-output.sh
source "$top/contrib/lib/demo-output.sh"
short() { printf '%.19s' "$1"; }

D=$(mktemp -d /tmp/reaper-fresh-demo.XXXXXX)
LABEL=reaper-fresh-demo=$$
REAPER_PID= REGISTRY_PID=
source "$top/tests/lib/engine.sh"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -z "$REAPER_PID" ] || kill -TERM "$REAPER_PID" 2>/dev/null || true
  [ -z "$REAPER_PID" ] || wait "$REAPER_PID" 2>/dev/null || true
  [ -z "$REGISTRY_PID" ] || kill "$REGISTRY_PID" 2>/dev/null || true
  if [ "$keep" = 1 ] && [ "$rc" = 0 ]; then
    note "kept: $D"
    return
  fi
  if engine_ping 2>/dev/null || [ "$use_engine" = 1 ]; then
    docker ps -aq --filter "label=$LABEL" | xargs -r docker rm -f >/dev/null 2>&1 || true
  fi
  [ "$use_engine" = 1 ] || engine_stop >/dev/null 2>&1 || true
  rm -rf "$D"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- preparing ------------------------------------------------------------------
step "Preparing: reaper, a Docker engine, a registry on 127.0.0.1"
if [ -z "${REAPER:-}" ]; then
  build=${REAPER_BUILD_DIR:-$top/build}
  [ -x "$build/reaper" ] || die "no $build/reaper: build it first (cmake -S . -B build && cmake --build build), or set REAPER"
  REAPER=$build/reaper
fi
command -v docker-registry >/dev/null || die "docker-registry is not installed (apt-get install docker-registry)"
if [ "$use_engine" = 1 ]; then
  [ -n "${DOCKER_HOST:-}" ] || die "--use-engine needs DOCKER_HOST"
else
  [ "$(id -u)" = 0 ] || die "a private dockerd needs root"
  export ENGINE_DIR=$D/engine
  engine_start || die "the private dockerd did not start"
fi
engine_build_images || die "could not build the test images"
free_port() {
  local p
  for p in $(seq "$port_from" "$port_to"); do
    [ "$p" = "${1:-}" ] && continue
    ss -Htln "sport = :$p" 2>/dev/null | grep -q . || {
      echo "$p"
      return
    }
  done
  return 1
}
rport=$(free_port) || die "no free port in $ports"
lport=$(free_port "$rport") || die "no second free port in $ports"
REG=127.0.0.1:$rport
IMG=$REG/demo/app:1
cat >"$D/registry.yml" <<YAML
version: 0.1
storage: { filesystem: { rootdirectory: $D/registry } }
http: { addr: $REG }
log: { level: error }
YAML
docker-registry serve "$D/registry.yml" >"$D/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 1 50); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
ok "reaper $("$REAPER" version); engine at $DOCKER_HOST; registry at $REG"

# push_version VERSION HEALTH_CMD: builds app VERSION (healthy while
# HEALTH_CMD succeeds), pushes it under demo/app:stage; prints its digest.
push_version() {
  printf 'FROM reaper-test/sleeper:1\nLABEL version=%s\nHEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD ["%s"]\nCMD ["sh", "-c", "trap \\"exit 0\\" TERM; while :; do sleep 1; done"]\n' "$1" "$2" |
    DOCKER_BUILDKIT=0 docker build -q -t "$REG/demo/app:stage" - >/dev/null 2>&1 || return 1
  docker push -q "$REG/demo/app:stage" >/dev/null || return 1
  docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$REG/demo/app:stage" |
    sed -n "s|^$REG/demo/app@||p" | head -n 1
}
# release DIGEST: the tag app:1 moves to DIGEST (as a CI promotion does).
release() {
  local mt=application/vnd.docker.distribution.manifest.v2+json
  curl -fsS -H "Accept: $mt" "http://$REG/v2/demo/app/manifests/$1" >"$D/manifest.json" &&
    curl -fsS -X PUT -H "Content-Type: $mt" --data-binary @"$D/manifest.json" \
      "http://$REG/v2/demo/app/manifests/1" -o /dev/null
}
audit() { jq -c "$@" "$D/audit.jsonl"; }
wait_until() { # SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2
  shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || die "timed out waiting for: $what"
    sleep 0.5
  done
}

# --- the workloads ------------------------------------------------------------
step "Two containers run $IMG (v1); only signed digests may run"
d1=$(push_version 1 /bin/true) || die "push v1"
release "$d1" || die "release v1"
docker pull -q "$IMG" >/dev/null
for n in app-1 app-2; do
  docker run -d --name "$n" -l "$LABEL" -l app=demo "$IMG" >/dev/null
done
echo "$d1" >"$D/signed"
# The gate: a stand-in for cosign/notation (see README, Fresh content): a
# digest runs only if it was signed (listed in $D/signed).
cat >"$D/verify-image" <<SH
#!/bin/sh
grep -qx "\$REAPER_IMAGE_DIGEST" "$D/signed" && exit 0
echo "no valid signature for \$REAPER_IMAGE_NAME@\$REAPER_IMAGE_DIGEST"
exit 1
SH
chmod +x "$D/verify-image"
cat >"$D/config.yaml" <<YAML
agent: { listen: "127.0.0.1:$lport", audit_log: $D/audit.jsonl, resync: 5s }
providers: [ { name: demo, type: docker, endpoint: "$DOCKER_HOST" } ]
policies:
  - name: app
    match: { labels: { app: demo, $(echo "$LABEL" | sed 's/=/: "/')" } }
    max_age: 1h                  # the rollouts below come long before it
    order: start-first           # the old container serves until the new one is healthy
    health_timeout: 15s
    max_unavailable: 1
    update: { check: 2s, settle: 0s, max_failures: 1 }
    verify: [$D/verify-image]
YAML
sed 's/^/   /' "$D/config.yaml"
"$REAPER" run -c "$D/config.yaml" >"$D/reaper.log" 2>&1 &
REAPER_PID=$!
wait_until 30 "reaper's first check" grep -q '"image.seen"' "$D/audit.jsonl"
ok "reaper runs; v1 = $(short "$d1") first seen"

# --- 1. a signed release ----------------------------------------------------------
step "v2, signed, is released under app:1"
d2=$(push_version 2 /bin/true) || die "push v2"
echo "$d2" >>"$D/signed"
pushed=$(date +%s)
release "$d2" || die "release v2"
n_done() { [ "$(jq -s --arg d "$1" '[.[] | select(.event == "recycle.done" and .image_digest == $d)] | length' "$D/audit.jsonl")" -ge 2 ]; }
wait_until 90 "both containers on v2" n_done "$d2"
ok "both containers run v2 ($(short "$d2")) $(($(date +%s) - pushed)) s after the release, one after the other:"
audit 'select(.event == "recycle.done") | "\(.ts[11:19]) \(.name): \(.reason), \(.previous_image_digest[0:19]) -> \(.image_digest[0:19]), age \(.age_s)s of max \(.max_age_s)s"' -r | indent
docker ps --filter "label=$LABEL" --format '{{.Names}}  {{.Image}}  {{.Status}}' | indent

# --- 2. an unsigned release -------------------------------------------------------------
step "v3, not signed, is released: the gate refuses it"
before=$(docker ps -q --filter "label=$LABEL" | sort | tr '\n' ' ')
d3=$(push_version 3 /bin/true) || die "push v3"
release "$d3" || die "release v3"
wait_until 60 "the gate's refusal" grep -q '"refused_by":"verify"' "$D/audit.jsonl"
sleep 3
[ "$before" = "$(docker ps -q --filter "label=$LABEL" | sort | tr '\n' ' ')" ] || die "a container changed"
audit 'select(.event == "recycle.refused") | "\(.name): refused_by \(.refused_by), exit \(.exit_status): \(.output | rtrimstr("\n"))"' -r | indent
ok "nothing was done: the same two containers run v2"

# --- 3. a broken release ----------------------------------------------------------
step "v4, signed but broken (its health check fails), is released"
d4=$(push_version 4 /bin/false) || die "push v4"
echo "$d4" >>"$D/signed"
release "$d4" || die "release v4"
wait_until 90 "the quarantine" grep -q '"image.quarantined"' "$D/audit.jsonl"
sleep 3
audit 'select(.event == "recycle.failed") | "\(.name): \(.error) (rolled back: \(.rolled_back))"' -r | indent
audit 'select(.event == "image.quarantined") | "quarantined: \(.digest[0:19]) after \(.failures) failure(s)"' -r | indent
audit 'select(.event == "recycle.refused" and .refused_by == "quarantine") | "\(.name): keeps its content (\(.refused_by))"' -r | indent
for n in app-1 app-2; do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$n")" = healthy ] || die "$n is not healthy"
done
ok "both containers still run v2, healthy"
"$REAPER" plan -c "$D/config.yaml" 2>/dev/null | sed -n '/^PROVIDER *KIND/,/^$/p' | cut -c1-220 | indent
curl -fsS "http://127.0.0.1:$lport/metrics" | grep -E '^reaper_(quarantined_images|outdated_workloads|registry_resolves_total\{outcome="ok"\})' | indent

# --- the report ----------------------------------------------------------------
step "What the audit log proves"
kill -TERM "$REAPER_PID"
wait "$REAPER_PID" || true
REAPER_PID=
"$REAPER" verify "$D/audit.jsonl" | indent
"$REAPER" report --json "$D/audit.jsonl" >"$D/report.json" || die "reaper report"
if jq -e '.patch_latency' "$D/report.json" >/dev/null 2>&1; then
  jq '.patch_latency' "$D/report.json" | indent
  ok "patch latency: from each new digest's first sighting to the last container running it"
else
  jq '{overall: .overall}' "$D/report.json" | head -n 30 | indent
  note "(this reaper's report has no patch_latency yet)"
fi
ok "done: $(jq -s '[.[] | select(.event == "recycle.done")] | length' "$D/audit.jsonl") rollouts, 1 refusal, 1 quarantine"
