#!/usr/bin/env bash
# contrib/prometheus/reaper-rules.yml: valid (`promtool check rules`), each
# alert firing when it should and not otherwise (`promtool test rules` on
# reaper-rules.test.yml beside it), and every reaper_* metric it reads one
# that a real agent's /metrics declares.
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
source "$here/lib.sh"
rules=$top/contrib/prometheus/reaper-rules.yml
command -v promtool >/dev/null || fail "promtool is not installed (contrib/install-deps.sh --test)"

promtool check rules "$rules" >"$T/check.txt" 2>&1 || { cat "$T/check.txt"; fail "promtool check rules"; }
cat "$T/check.txt"
(cd "$top/contrib/prometheus" && promtool test rules reaper-rules.test.yml) >"$T/test.txt" 2>&1 ||
  { cat "$T/test.txt"; fail "promtool test rules"; }
cat "$T/test.txt"
# Each alert has a test case that expects it to fire.
for a in $(grep -oE 'alert: [A-Za-z]+' "$rules" | cut -d' ' -f2); do
  grep -qE "^ +alertname: $a$" "$top/contrib/prometheus/reaper-rules.test.yml" ||
    fail "no test case expects $a to fire"
done

# The names, against a real agent's /metrics.
port=18701
simple_config 1h
sed -i "s/^  listen: \"\"$/  listen: 127.0.0.1:$port/" "$T/config.yaml"
start_reaper
wait_for 20 "/metrics" curl -fsS "http://127.0.0.1:$port/metrics" -o "$T/metrics.txt"
names=$(grep -oE 'reaper_[a-z_]+' "$rules" | grep -v '^reaper_rules' | sort -u)
for n in $names; do
  grep -q "^# TYPE $n " "$T/metrics.txt" || fail "the rules read $n, which /metrics does not declare"
done
stop_reaper
log "ok: $(grep -c 'alert:' "$rules") alerts; metrics read: $(echo $names)"
