#!/usr/bin/env bash
# Notifications from a running agent, against the private engine: a webhook
# receiver (python3's http.server on loopback, recording every body) gets
# recycle.upcoming notify_before (3 s) ahead of a container's due time
# (max_age 6 s), then its recycle.begin and recycle.done; a receiver whose
# filter is [recycle.failed] gets the failures of a container that cannot
# be recreated and nothing else; a command gets the JSON on its stdin and
# the event in REAPER_EVENT, and nothing else of reaper's (no descriptor
# but 0-2 though the agent holds its engine's sockets, no environment but
# PATH and REAPER_EVENT); a receiver that is down (nothing listens) and
# one that never answers delay no recycle (lateness from the audit log);
# the outcomes are counted in /metrics; recycle.upcoming is never written
# to the audit log.
source "$(dirname "$0")/lib.sh"

for tool in python3 curl jq; do
  command -v "$tool" >/dev/null ||
    fail "$tool is not installed (contrib/install-deps.sh --test installs it)"
done


# The receiver: records {path, at, header, body} per POST, one JSON a line.
# mode "hang" reads the request and never answers in time.
cat >"$T/receiver.py" <<'PY'
import http.server, json, sys, time
port_file, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(n)
        if mode == "hang":
            time.sleep(600)
        rec = {"path": self.path, "at": time.time(),
               "header": self.headers.get("X-Reaper-Event"),
               "type": self.headers.get("Content-Type"),
               "body": json.loads(body)}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
srv = S(("127.0.0.1", 0), H)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
PY
python3 "$T/receiver.py" "$T/ok.port" "$T/received.jsonl" ok >"$T/receiver.log" 2>&1 &
OK_PID=$!
python3 "$T/receiver.py" "$T/hang.port" "$T/hang.jsonl" hang >"$T/hang.log" 2>&1 &
HANG_PID=$!
on_exit "kill $OK_PID $HANG_PID 2>/dev/null"
wait_for 10 "the webhook receivers to listen" test -s "$T/ok.port" -a -s "$T/hang.port"
OK_PORT=$(cat "$T/ok.port")
HANG_PORT=$(cat "$T/hang.port")
DOWN_PORT=$(free_port)
PORT=$(free_port)
touch "$T/received.jsonl" "$T/cmd.out"

# web: recycled every 6 s.  bad: its bind mount's source goes away, so its
# replacement cannot be created and every recycle of it fails.
sleeper=(reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done')

config <<YAML
agent:
  listen: 127.0.0.1:$PORT
  audit_log: $T/audit.jsonl
  resync: 5s
providers:
  - name: local
    type: docker
    endpoint: $REAPER_ENDPOINT
policies:
  - name: test
    match:
      labels: { reaper-test: "$$" }
    max_age: 6s
    grace: 2s
    strategy: recreate
    health_timeout: 20s
    max_unavailable: 5
    notify_before: 3s
notify:
  - webhook: http://127.0.0.1:$OK_PORT/all
  - webhook: http://127.0.0.1:$OK_PORT/failed
    events: [recycle.failed]
  - command: [/bin/sh, -c, 'printf "%s " "\$REAPER_EVENT" >> $T/cmd.out; cat >> $T/cmd.out; echo >> $T/cmd.out']
    events: [recycle.done, recycle.failed]
  - command: [/bin/sh, -c, 'ls /proc/self/fd > $T/cmd.fds.tmp; env | sort > $T/cmd.env; mv $T/cmd.fds.tmp $T/cmd.fds']
    events: [recycle.done]
  - webhook: http://127.0.0.1:$DOWN_PORT/down
    timeout: 2s
    retries: 2
  - webhook: http://127.0.0.1:$HANG_PORT/hang
    timeout: 2s
    retries: 2
YAML
start_reaper
# Both start once the agent is up, so that their first deadlines are ahead
# of it however slowly it starts (under valgrind, say): the notice 3 s
# before can be sent, and no begin is late.
wait_for 30 "the first list" grep -q "workloads" "$T/reaper.log"
run web$$ -l case=web "${sleeper[@]}"
mkdir -p "$T/gone"
run bad$$ -l case=bad --mount "type=bind,source=$T/gone,target=/gone" "${sleeper[@]}"
rmdir "$T/gone"
web_id=$(cid web$$)
bad_id=$(cid bad$$)

# web's first life: upcoming, begin, done at /all.
received() { # PATH EVENT ID: a body of EVENT for ID arrived at PATH
  jq -e -s --arg p "$1" --arg e "$2" --arg id "$3" \
    'any(.[]; .path == $p and .body.event == $e and .body.id == $id)' "$T/received.jsonl"
}
wait_for 40 "recycle.done of web$$ at the receiver" received /all recycle.done "$web_id"
wait_for 40 "a recycle.failed of bad$$ at the failures receiver" received /failed recycle.failed "$bad_id"

at_of() { # PATH EVENT ID: when the first such body arrived (epoch seconds)
  jq -s -r --arg p "$1" --arg e "$2" --arg id "$3" \
    '[.[] | select(.path == $p and .body.event == $e and .body.id == $id)][0].at' "$T/received.jsonl"
}
up_at=$(at_of /all recycle.upcoming "$web_id")
begin_at=$(at_of /all recycle.begin "$web_id")
done_at=$(at_of /all recycle.done "$web_id")
[ "$up_at" != null ] || fail "no recycle.upcoming of web$$ at the receiver"
[ "$begin_at" != null ] || fail "no recycle.begin of web$$ at the receiver"
log "web$$: upcoming at $up_at, begin at $begin_at, done at $done_at"
# notify_before 3s: the notice arrives before the begin, and was sent about
# 3 s before the deadline (its ts against its due: the agent's own clock,
# not the delivery's, which valgrind or a loaded host stretches).
python3 -c "import sys; sys.exit(0 if $up_at <= $begin_at else 1)" || fail "recycle.upcoming arrived after the begin"
python3 -c "import sys; sys.exit(0 if $begin_at <= $done_at else 1)" || fail "begin arrived after done"

# The notice's members.
up=$(jq -c -s --arg id "$web_id" \
  '[.[] | select(.path == "/all" and .body.event == "recycle.upcoming" and .body.id == $id)][0]' \
  "$T/received.jsonl")
log "upcoming: $up"
jq -e --arg n "web$$" '.body | .provider == "local" and .kind == "container" and .name == $n
  and .policy == "test" and .max_age_s == 6 and (.age_s >= 2 and .age_s <= 4)
  and (.due | test("^[0-9-]+T[0-9:.]+Z$")) and (.ts | length > 0)' <<<"$up" >/dev/null ||
  fail "recycle.upcoming lacks a member or has a wrong one: $up"
jq -e '.header == "recycle.upcoming" and .type == "application/json"' <<<"$up" >/dev/null ||
  fail "webhook headers: $up"
ahead=$(jq -r '.body | ((.due | sub("\\.[0-9]+Z$"; "Z") | fromdate) + (.due | capture("(?<f>\\.[0-9]+)Z$").f | tonumber)
  - (.ts | sub("\\.[0-9]+Z$"; "Z") | fromdate) - (.ts | capture("(?<f>\\.[0-9]+)Z$").f | tonumber))' <<<"$up")
python3 -c "import sys; sys.exit(0 if 2.0 <= $ahead <= 3.5 else 1)" ||
  fail "recycle.upcoming was sent ${ahead}s before its due time, not about 3s"
log "recycle.upcoming sent ${ahead}s ahead of the deadline"
# Its due time is the begin's deadline.
deadline=$(audit_events recycle.begin | jq -r --arg id "$web_id" 'select(.id == $id) | .deadline' | head -n1)
assert_eq "$deadline" "$(jq -r .body.due <<<"$up")" "recycle.upcoming's due against recycle.begin's deadline"
# The begin's body carries the audit line's members.
jq -e -s --arg id "$web_id" 'any(.[]; .path == "/all" and .body.event == "recycle.begin"
  and .body.id == $id and .body.strategy == "recreate" and (.body.started_at | length > 0))' \
  "$T/received.jsonl" >/dev/null || fail "recycle.begin's body lacks the audit members"

# Default filter: recycle.* only (no agent.start); the failures receiver:
# failures only, all of bad.
jq -e -s 'all(.[] | select(.path == "/all"); .body.event | startswith("recycle."))' "$T/received.jsonl" >/dev/null ||
  fail "the default filter let through: $(jq -r 'select(.path == "/all") | .body.event' "$T/received.jsonl" | sort -u | tr '\n' ' ')"
jq -e -s --arg id "$bad_id" 'all(.[] | select(.path == "/failed"); .body.event == "recycle.failed" and .body.id == $id)' \
  "$T/received.jsonl" >/dev/null ||
  fail "the failures receiver got more than failures: $(jq -c 'select(.path == "/failed") | .body | [.event, .name]' "$T/received.jsonl")"
jq -e -s 'any(.[]; .path == "/all" and .body.event == "recycle.failed")' "$T/received.jsonl" >/dev/null ||
  fail "the default filter did not let recycle.failed through"

# The command: "EVENT JSON" lines, the JSON from its stdin.
wait_for 10 "the command to record web$$'s recycle.done" grep -q "^recycle.done {.*\"$web_id\"" "$T/cmd.out"
while read -r ev json; do
  [ -n "$ev" ] || continue
  assert_eq "$ev" "$(jq -r .event <<<"$json")" "REAPER_EVENT against the JSON on stdin"
  case $ev in recycle.done | recycle.failed) ;; *) fail "the command got $ev (filter: done, failed)" ;; esac
done <"$T/cmd.out"

# What a command gets of reaper's: descriptors 0-2 and nothing else (ls's
# own directory handle takes the lowest free number, 3: a descriptor left
# open would take it and show as well), and an environment of PATH and
# REAPER_EVENT (sh adds PWD).
wait_for 10 "the second command to run" test -s "$T/cmd.fds"
assert_eq "0 1 2 3" "$(tr '\n' ' ' <"$T/cmd.fds" | sed 's/ $//')" "descriptors open in a notify command"
assert_eq "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin REAPER_EVENT=recycle.done" \
  "$(grep -v '^PWD=' "$T/cmd.env" | tr '\n' ' ' | sed 's/ $//')" "a notify command's environment"

# Receivers down or hanging delay nothing: every recycle began on time
# (first attempts: a retry of bad is late by its back-off, on purpose).
late=$(audit_events recycle.begin | jq -s 'map(select(.attempt == null) | .lateness_s) | max')
log "largest lateness of $(audit_events recycle.begin | jq -s 'map(select(.attempt == null)) | length') first begins: ${late}s"
python3 -c "import sys; sys.exit(0 if $late < 1.5 else 1)" ||
  fail "a recycle began ${late}s late with receivers down"
[ "$(audit_count recycle.begin)" -ge 2 ] || fail "expected at least two begins (web and bad)"

# Counted: sent to the receiver, retried and failed at the dead ones.
metric() { curl -fsS --max-time 5 "http://127.0.0.1:$PORT/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
metric_at_least() { local v; v=$(metric "$1"); [ -n "$v" ] && [ "${v%.*}" -ge "$2" ]; }
wait_for 20 "a notification given up at the receiver that is down" \
  metric_at_least 'reaper_notifications_total{sink="webhook[4]",outcome="failed"}' 1
metric_at_least 'reaper_notifications_total{sink="webhook[4]",outcome="retried"}' 2 ||
  fail "the down receiver's retries are not counted: $(metric 'reaper_notifications_total{sink="webhook[4]",outcome="retried"}')"
metric_at_least 'reaper_notifications_total{sink="webhook[0]",outcome="sent"}' 3 ||
  fail "sent notifications not counted: $(metric 'reaper_notifications_total{sink="webhook[0]",outcome="sent"}')"
wait_for 20 "a notification given up at the receiver that never answers" \
  metric_at_least 'reaper_notifications_total{sink="webhook[5]",outcome="failed"}' 1
assert_eq 0 "$(metric 'reaper_notifications_total{sink="webhook[0]",outcome="failed"}')" "failures at the good receiver"
# No secret of a URL in a log: the path of a webhook is never shown.
! grep -q "/down\|/hang" "$T/reaper.log" || fail "a webhook's path (its secret, often) is in the log"
grep -q "notify webhook\[4\] (http://127.0.0.1:$DOWN_PORT/…)" "$T/reaper.log" ||
  fail "the log does not name the failing sink"

# A stop with notifications still queued at dead receivers is bounded.
t0=$(date +%s)
stop_reaper
took=$(($(date +%s) - t0))
log "stopped in ${took}s"
[ "$took" -le 20 ] || fail "the stop took ${took}s"

# An advance notice is a notification, never an audit line.
[ "$(audit_count recycle.upcoming)" -eq 0 ] || fail "recycle.upcoming was written to the audit log"
verify_audit
log "ok"
