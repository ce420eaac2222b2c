#!/usr/bin/env bash
# The trail that cannot be quietly rewritten, with the real agent: a signing
# key made with openssl, a few recycles, rotation by a tiny size, then
# - reaper verify --key accepts the parts in order (and --rotated finds
#   them), and openssl alone checks the stop checkpoint's signature;
# - a truncated copy and a re-chained copy (hashes recomputed, so the
#   chain alone still holds) are refused;
# - report and verify see one log across the parts;
# - every line also went to syslog, exactly as written: reaper runs in its
#   own mount namespace whose /dev/log is a socket this test reads.
source "$(dirname "$0")/lib.sh"

openssl genpkey -algorithm ed25519 -out "$T/audit.key" 2>/dev/null
chmod 600 "$T/audit.key"
openssl pkey -in "$T/audit.key" -pubout -out "$T/audit.pub"
LOG=$T/log/audit.jsonl

# A syslog socket of our own, and a mount namespace where /dev/log is it
# (the rest of /dev bound back in).  Skipped where namespaces are not
# allowed; the unit tests cover the copy with a socket path of their own.
cat >"$T/syslogd.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(1 << 20) + b"\n")
PY
python3 "$T/syslogd.py" "$T/log.sock" "$T/syslog.txt" &
SYSLOGD=$!
on_exit "kill $SYSLOGD"
wait_for 10 "the test's syslog socket" test -S "$T/log.sock"
ns_dev() { # [--exec] COMMAND...: runs COMMAND with /dev/log -> $T/log.sock
  # --exec: in this (background) shell's own process, so that $! is the
  # COMMAND's PID (unshare and bash exec, they do not fork).
  local ex=
  if [ "$1" = --exec ]; then ex=exec; shift; fi
  $ex unshare -m bash -c '
    set -e
    mkdir -p "$1/olddev"
    mount --bind /dev "$1/olddev"
    mount -t tmpfs -o mode=755 tmpfs /dev
    for n in null zero full random urandom tty; do
      [ -e "$1/olddev/$n" ] || continue
      touch "/dev/$n"
      mount --bind "$1/olddev/$n" "/dev/$n"
    done
    ln -s /proc/self/fd /dev/fd
    ln -s "$1/log.sock" /dev/log
    shift
    exec "$@"' ns "$T" "$@"
}
SYSLOG=true
ns_dev true 2>"$T/unshare.err" || {
  log "no mount namespace here ($(cat "$T/unshare.err")): syslog copy not checked"
  SYSLOG=false
}

config <<YAML
agent:
  listen: ""
  audit_log: $LOG
  audit_signing_key: $T/audit.key
  audit_checkpoint_every: 5
  audit_rotate_size: 2KiB
  audit_syslog: $SYSLOG
  resync: 1s
providers: [ { name: local, type: docker, endpoint: "$REAPER_ENDPOINT" } ]
policies:
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 4s, jitter: 0, grace: 1s, health_timeout: 20s }
YAML
run trail-a$$ reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
run trail-b$$ reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'

if $SYSLOG; then
  ns_dev --exec "$REAPER" run -c "$T/config.yaml" >>"$T/reaper.log" 2>&1 &
else
  "$REAPER" run -c "$T/config.yaml" >>"$T/reaper.log" 2>&1 &
fi
REAPER_PID=$!
dones() { cat "$LOG".* "$LOG" 2>/dev/null | jq -c 'select(.event == "recycle.done")' | wc -l; }
four_done() { [ "$(dones)" -ge 4 ]; }
wait_for 90 "4 recycles" four_done
stop_reaper

# --- the parts, in order -----------------------------------------------------
mapfile -t parts < <(ls "$LOG".* | while read -r f; do echo "$(head -n1 "$f" | jq .seq) $f"; done | sort -n | cut -d' ' -f2-)
[ ${#parts[@]} -ge 2 ] || fail "expected at least 2 rotated parts, got ${#parts[@]}"
for f in "${parts[@]}"; do
  [[ $(basename "$f") =~ ^audit\.jsonl\.[0-9]{8}T[0-9]{6}Z(\.[0-9]+)?$ ]] || fail "part name $f"
  tail -n1 "$f" | jq -e '.event == "audit.checkpoint" and .reason == "rotate"' >/dev/null ||
    fail "$f does not end with its rotate checkpoint"
  [ "$(stat -c %a "$f")" = 600 ] || fail "$f is not mode 600"
done
files=("${parts[@]}" "$LOG")
all_lines() { cat "${files[@]}"; }
# The first prev of each file is the last hash of the one before.
for ((i = 1; i < ${#files[@]}; i++)); do
  assert_eq "$(tail -n1 "${files[i - 1]}" | jq -r .hash)" "$(head -n1 "${files[i]}" | jq -r .prev)" \
    "prev of ${files[i]}'s first line"
done
tail -n1 "$LOG" | jq -e '.event == "audit.checkpoint" and .reason == "stop"' >/dev/null || fail "the log does not end with the stop checkpoint"
tail -n2 "$LOG" | head -n1 | jq -e '.event == "agent.stop"' >/dev/null || fail "the stop checkpoint does not follow agent.stop"

out=$("$REAPER" verify --key "$T/audit.pub" "${files[@]}") || fail "verify --key rejected the parts in order"
log "$out"
[[ $out == *"the last written at stop"* ]] || fail "verify: $out"
out2=$("$REAPER" verify --key "$T/audit.pub" --rotated "$LOG") || fail "verify --rotated rejected the log"
assert_eq "$out" "$out2" "verify --rotated"
n_lines=$(all_lines | wc -l)
[[ $out == "ok: $n_lines lines,"* ]] || fail "verify counted other than $n_lines lines: $out"

# openssl alone: the stop checkpoint's signature over the bytes audit.h
# describes, and its key id.
cp_line=$(tail -n1 "$LOG")
jq -j '"reaper audit.checkpoint v1\nseq=\(.seq)\nprev=\(.prev)\nts=\(.ts)\nreason=\(.reason)\nfile=\(.file)\nkey_id=\(.key_id)\n"' <<<"$cp_line" >"$T/msg"
jq -r .sig <<<"$cp_line" | base64 -d >"$T/sig"
openssl pkeyutl -verify -pubin -inkey "$T/audit.pub" -rawin -in "$T/msg" -sigfile "$T/sig" >/dev/null ||
  fail "openssl does not accept the stop checkpoint's signature"
assert_eq "$(openssl pkey -pubin -in "$T/audit.pub" -outform DER | tail -c 32 | sha256sum | cut -c1-16)" \
  "$(jq -r .key_id <<<"$cp_line")" "key_id"

# --- a truncated copy ----------------------------------------------------------
mkdir "$T/cut"
cp "${files[@]}" "$T/cut/"
cut_files=()
for f in "${files[@]}"; do cut_files+=("$T/cut/$(basename "$f")"); done
live_cut=${cut_files[-1]}
head -n -3 "$LOG" >"$live_cut"
if "$REAPER" verify --key "$T/audit.pub" "${cut_files[@]}" 2>"$T/verify.err"; then
  fail "verify --key accepted a truncated log"
fi
grep -qE "after the last signed checkpoint|ends at a checkpoint written while the agent ran" "$T/verify.err" ||
  fail "verify did not say the log was cut: $(cat "$T/verify.err")"
log "truncated: $(cat "$T/verify.err")"
"$REAPER" verify "${cut_files[@]}" >/dev/null || fail "the chain alone of the truncated copy should hold"
# A live log may end so: --allow-unsigned-tail says how many lines.
"$REAPER" verify --key "$T/audit.pub" --allow-unsigned-tail "${cut_files[@]}" >"$T/verify.out" 2>&1 ||
  fail "--allow-unsigned-tail refused the truncated copy: $(cat "$T/verify.out")"
# Leaving out the live file (the log ends at a rotate checkpoint) is refused too.
if "$REAPER" verify --key "$T/audit.pub" "${parts[@]}" 2>"$T/verify.err"; then
  fail "verify --key accepted the log without its last file"
fi
grep -q "reason rotate" "$T/verify.err" || fail "verify: $(cat "$T/verify.err")"

# --- a re-chained copy: one recycle rewritten, every hash after it redone --------
cat >"$T/rechain.py" <<'PY'
import hashlib, re, sys
# argv: FILE... ; rewrites the first recycle.done's name and re-chains all.
prev, seq, done = "0" * 64, 0, False
for path in sys.argv[1:]:
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        body = line[: line.rindex(',"hash":"')] + "}"
        if not done and '"event":"recycle.done"' in body:
            body = re.sub(r'"name":"[^"]*"', '"name":"someone-else"', body, count=1)
            done = True
        seq += 1
        body = re.sub(r'"seq":\d+', '"seq":%d' % seq, body, count=1)
        body = body[: body.rindex(',"prev":"')] + ',"prev":"%s"}' % prev
        h = hashlib.sha256(body.encode()).hexdigest()
        out.append(body[:-1] + ',"hash":"%s"}' % h)
        prev = h
    open(path, "w", encoding="utf-8").write("\n".join(out) + "\n")
PY
mkdir "$T/rechained"
cp "${files[@]}" "$T/rechained/"
re_files=()
for f in "${files[@]}"; do re_files+=("$T/rechained/$(basename "$f")"); done
python3 "$T/rechain.py" "${re_files[@]}"
grep -q '"name":"someone-else"' "${re_files[@]}" || fail "the rewrite did not happen"
"$REAPER" verify "${re_files[@]}" >/dev/null || fail "the re-chained copy's chain should hold without a key"
if "$REAPER" verify --key "$T/audit.pub" "${re_files[@]}" 2>"$T/verify.err"; then
  fail "verify --key accepted a re-chained log"
fi
grep -q "audit.checkpoint signature does not verify" "$T/verify.err" || fail "verify: $(cat "$T/verify.err")"
log "re-chained: $(cat "$T/verify.err")"

# --- one log across the parts: report ---------------------------------------------
recycled=$(dones)
[ "$recycled" -ge 4 ] || fail "recycle.done lines: $recycled"
report=$("$REAPER" report --json "${files[@]}" 2>"$T/report.err") || fail "report: $(cat "$T/report.err")"
[ -s "$T/report.err" ] && fail "report warned: $(cat "$T/report.err")"
assert_eq "$recycled" "$(jq .overall.recycles <<<"$report")" "report's recycles across parts"
assert_eq true "$(jq .chain.intact <<<"$report")" "report: chain intact across parts"

# --- the syslog copy ----------------------------------------------------------------
if $SYSLOG; then
  wait_for 5 "the syslog copy of the stop checkpoint" grep -qF "$(tail -n1 "$LOG" | cut -c1-200)" "$T/syslog.txt"
  grep -qE '^<86>[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} reaper\[[0-9]+\]: \{' "$T/syslog.txt" ||
    fail "syslog lines are not <86>DATE reaper[PID]: LINE: $(head -n2 "$T/syslog.txt")"
  sed -E 's/^<86>[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} reaper\[[0-9]+\]: //' "$T/syslog.txt" >"$T/syslog.lines"
  all_lines >"$T/all.lines"
  cmp -s "$T/all.lines" "$T/syslog.lines" || {
    diff "$T/all.lines" "$T/syslog.lines" | head -n 10
    fail "the syslog copy differs from the audit log"
  }
  log "syslog: $(wc -l <"$T/syslog.lines") lines, the same as the audit log"
fi
log "signed, rotated into ${#parts[@]} parts and copied to syslog; truncation and a re-chain refused"
