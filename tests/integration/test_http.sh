#!/usr/bin/env bash
# The HTTP status surface of a running agent (agent.listen), against the
# private engine: /healthz and /readyz answer, /status lists the test's
# containers without their environment, a real Prometheus scrapes /metrics
# (promtool checks it, and a value comes back through Prometheus' query API),
# headless Chromium renders the page (screenshot kept as an artifact) and
# its DOM shows the containers; 404, 405 and the bearer token.
source "$(dirname "$0")/lib.sh"

for tool in prometheus promtool chromium curl jq; do
  command -v "$tool" >/dev/null ||
    fail "$tool is not installed (contrib/install-deps.sh --test installs it)"
done
ARTIFACTS=${ARTIFACTS:-$(cd "$(dirname "$0")/../artifacts" && pwd)}
mkdir -p "$ARTIFACTS"

PORT=$(free_port)
URL=http://127.0.0.1:$PORT

# Three containers of the test, one with a secret in its environment and
# markup in a label: neither may reach /status or the page.
run web$$ -l tier=web -e SECRET_TOKEN=hunter2-$$ \
  -l "note=<script>alert(1)</script>" reaper-test/sleeper:1
run api$$ -l tier=web reaper-test/sleeper:1
run worker$$ -l tier=worker reaper-test/sleeper:1

simple_config 1h recreate
sed -i "s|^  listen: \"\"|  listen: 127.0.0.1:$PORT|" "$T/config.yaml"
grep -q "listen: 127.0.0.1:$PORT" "$T/config.yaml" || fail "could not set agent.listen"
start_reaper

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
ready() { [ "$(http_code "$URL/readyz")" = 200 ]; }
wait_for 30 "$URL/readyz to answer 200" ready

# /healthz: connected to the engine, the audit log writable.
assert_eq ok "$(curl -fsS --max-time 5 "$URL/healthz")" "/healthz body"

# /status: the containers, as plan shows them, and nothing of their env.
curl -fsS --max-time 5 "$URL/status" >"$T/status.json" || fail "GET /status failed"
jq -e . "$T/status.json" >/dev/null || fail "/status is not JSON"
for n in web$$ api$$ worker$$; do
  jq -e --arg n "$n" '.workloads | any(.name == $n and .policy == "test" and (.deadline | length > 0))' \
    "$T/status.json" >/dev/null || fail "/status does not list $n with its policy and deadline"
done
id=$(cid web$$)
jq -e --arg id "$id" '.workloads | any(.id == $id)' "$T/status.json" >/dev/null ||
  fail "/status does not carry web$$'s id"
! grep -q "hunter2" "$T/status.json" || fail "/status shows a container's environment"
! grep -qi '"env"' "$T/status.json" || fail "/status has an env member"
! grep -q "<script>" "$T/status.json" || fail "/status shows labels"
jq -e '.audit.healthy == true and (.audit.path | endswith("audit.jsonl"))' "$T/status.json" >/dev/null ||
  fail "/status: audit section wrong: $(jq -c .audit "$T/status.json")"
jq -e '.providers | any(.name == "local" and .up == true)' "$T/status.json" >/dev/null ||
  fail "/status: provider local not up: $(jq -c .providers "$T/status.json")"

# Read-only: anything but GET and HEAD is refused; unknown paths are 404.
assert_eq 405 "$(http_code -X POST "$URL/status")" "POST /status"
assert_eq 405 "$(http_code -X DELETE "$URL/")" "DELETE /"
assert_eq 404 "$(http_code "$URL/nope")" "GET /nope"
assert_eq 200 "$(http_code -I "$URL/metrics")" "HEAD /metrics"

# /metrics: valid by promtool.
curl -fsS --max-time 5 "$URL/metrics" >"$T/metrics.txt" || fail "GET /metrics failed"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 || {
  cat "$T/promtool.out"
  fail "promtool check metrics rejected /metrics"
}
grep -q '^reaper_workloads{provider="local",kind="container",policy="test"} 3$' "$T/metrics.txt" ||
  fail "/metrics: reaper_workloads for the test's policy is not 3: $(grep '^reaper_workloads' "$T/metrics.txt")"
cp "$T/metrics.txt" "$ARTIFACTS/status-metrics.txt"

# A real Prometheus scrapes the agent every second; the value comes back
# through its query API.
PPORT=$(free_port)
mkdir -p "$T/prom"
cat >"$T/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: reaper
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
YAML
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom/data" \
  --web.listen-address="127.0.0.1:$PPORT" >"$T/prometheus.log" 2>&1 &
PROM_PID=$!
on_exit "kill $PROM_PID 2>/dev/null; wait $PROM_PID 2>/dev/null"
prom_query() { # PROMQL: prints the first result's value
  curl -fsS --max-time 5 "http://127.0.0.1:$PPORT/api/v1/query" \
    --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // empty'
}
scraped() { [ "$(prom_query 'sum(reaper_workloads{policy="test"})')" = 3 ]; }
wait_for 60 "Prometheus to scrape reaper_workloads{policy=\"test\"} = 3" scraped ||
  { tail -n 20 "$T/prometheus.log"; fail "no value from Prometheus"; }
assert_eq 1 "$(prom_query 'up{job="reaper"}')" "Prometheus' up for the agent"
assert_eq 1 "$(prom_query 'reaper_provider_up{provider="local"}')" "reaper_provider_up via Prometheus"
log "Prometheus scraped the agent"

# The page, rendered by headless Chromium: screenshot kept, DOM checked.
chrome() {
  local profile
  profile=$(mktemp -d "$T/chrome.XXXXXX")
  timeout 90 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --hide-scrollbars --user-data-dir="$profile" "$@" 2>>"$T/chromium.log"
}
chrome --window-size=1280,900 --screenshot="$ARTIFACTS/status.png" "$URL/" >/dev/null ||
  fail "chromium could not take a screenshot: $(tail -n 5 "$T/chromium.log")"
[ -s "$ARTIFACTS/status.png" ] || fail "no screenshot"
chrome --dump-dom "$URL/" >"$T/page.html" || fail "chromium could not load the page"
cp "$T/page.html" "$ARTIFACTS/status-page.html"
for n in web$$ api$$ worker$$; do
  grep -q ">$n<" "$T/page.html" || fail "the page does not show $n"
done
grep -q "Workloads" "$T/page.html" || fail "the page has no workloads section"
! grep -q "hunter2" "$T/page.html" || fail "the page shows a container's environment"
! grep -q "<script" "$T/page.html" || fail "the page has a script"
log "page rendered: $ARTIFACTS/status.png"

# The SIGTERM path closes the listener with everything else.
stop_reaper
[ "$(http_code "$URL/healthz")" = 000 ] || fail "the listener outlived the agent"

# With a bearer token: everything but /healthz needs it; a token file that
# others can read is refused at start.
printf 'tok-%s\n' "$$" >"$T/token"
chmod 644 "$T/token"
printf '  listen_token_file: %s\n' "$T/token" >"$T/token.line"
sed -i "/^  listen: /r $T/token.line" "$T/config.yaml"
rc=0
"$REAPER" run -c "$T/config.yaml" --once >"$T/refused.log" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "reaper started with a world-readable token file"
grep -q "$T/token" "$T/refused.log" || fail "the refusal does not name the token file: $(cat "$T/refused.log")"
chmod 600 "$T/token"
# This time one container is due within seconds: its recycle shows up in
# /status' recent recycles and in the metrics.
run quick$$ -l reaper.max-age=2s reaper-test/sleeper:1 \
  sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
start_reaper
wait_for 30 "$URL/healthz to answer without a token" \
  bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $URL/healthz)\" = 200 ]"
assert_eq 401 "$(http_code "$URL/status")" "/status without the token"
assert_eq 401 "$(http_code -H "Authorization: Bearer nope" "$URL/metrics")" "/metrics with a wrong token"
assert_eq 200 "$(http_code -H "Authorization: Bearer tok-$$" "$URL/status")" "/status with the token"
curl -s -D - -o /dev/null "$URL/" | grep -ci >/dev/null '^WWW-Authenticate: Bearer' ||
  fail "401 without WWW-Authenticate"
auth=(-H "Authorization: Bearer tok-$$")
recycled() {
  curl -fsS --max-time 5 "${auth[@]}" "$URL/status" |
    jq -e --arg n "quick$$" '.recent | any(.name == $n and .outcome == "done" and .policy == "test")'
}
wait_for 60 "a done recycle of quick$$ in /status' recent recycles" recycled
curl -fsS --max-time 5 "${auth[@]}" "$URL/metrics" >"$T/metrics2.txt"
grep -Eq '^reaper_recycles_total\{policy="test",outcome="done"\} [1-9]' "$T/metrics2.txt" ||
  fail "/metrics does not count the recycle: $(grep reaper_recycles_total "$T/metrics2.txt")"
grep -Eq '^reaper_recycle_duration_seconds_count\{policy="test"\} [1-9]' "$T/metrics2.txt" ||
  fail "/metrics has no recycle duration"
grep -Eq '^reaper_recycle_lateness_seconds_count\{policy="test"\} [1-9]' "$T/metrics2.txt" ||
  fail "/metrics has no recycle lateness"
promtool check metrics <"$T/metrics2.txt" >/dev/null 2>&1 || fail "promtool rejected /metrics after a recycle"
curl -fsS --max-time 5 "${auth[@]}" "$URL/" >"$T/page2.html"
grep -q ">quick$$<" "$T/page2.html" || fail "the page does not show quick$$"
stop_reaper
verify_audit
log "status surface: health, readiness, JSON, metrics through Prometheus, page, token"
