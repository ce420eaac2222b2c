#!/usr/bin/env bash
# DOCKER_HOST=tcp://... with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the
# docker CLI reads them: a second private dockerd that listens only on TCP
# with mutual TLS (certificates made here with openssl), tracked and
# recycled through it; a client without the CA is refused; a client key that
# other users can read (or a CA they can replace) is refused by reaper
# itself, naming the file and the rule.
source "$(dirname "$0")/lib.sh"
E=$(mktemp -d /tmp/rptls.XXXXXX)
docker save reaper-test/sleeper:1 -o "$E/img.tar" || fail "docker save"
port=$((23000 + $$ % 1000))
c=$E/certs; mkdir -p "$c"
ossl() { openssl "$@" >/dev/null 2>&1 || fail "openssl $1 failed"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=reaper-test-ca -keyout "$c/ca-key.pem" -out "$c/ca.pem"
ossl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$c/server-key.pem" -out "$E/server.csr"
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$E/server.ext"
ossl x509 -req -in "$E/server.csr" -CA "$c/ca.pem" -CAkey "$c/ca-key.pem" -CAcreateserial -days 2 -extfile "$E/server.ext" -out "$c/server-cert.pem"
ossl req -newkey rsa:2048 -nodes -subj /CN=reaper -keyout "$c/key.pem" -out "$E/client.csr"
printf 'extendedKeyUsage=clientAuth\n' >"$E/client.ext"
ossl x509 -req -in "$E/client.csr" -CA "$c/ca.pem" -CAkey "$c/ca-key.pem" -CAcreateserial -days 2 -extfile "$E/client.ext" -out "$c/cert.pem"

dockerd --iptables=false --bridge=none --data-root "$E/data" --exec-root "$E/exec" \
  --pidfile "$E/pid" -H "tcp://127.0.0.1:$port" --tlsverify --tlscacert "$c/ca.pem" \
  --tlscert "$c/server-cert.pem" --tlskey "$c/server-key.pem" >"$E/dockerd.log" 2>&1 &
stop_tls_engine() {
  DOCKER_HOST=tcp://127.0.0.1:$port DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$c docker ps -aq 2>/dev/null |
    DOCKER_HOST=tcp://127.0.0.1:$port DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$c xargs -r docker rm -f >/dev/null 2>&1
  kill "$(cat "$E/pid" 2>/dev/null)" 2>/dev/null
  for _ in $(seq 1 40); do [ -e "$E/pid" ] || break; sleep 0.25; done
  grep -o " $E[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$E"
}
on_exit stop_tls_engine
export DOCKER_HOST=tcp://127.0.0.1:$port DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$c
wait_for 30 "the TLS engine" docker version
docker load -q -i "$E/img.tar" >/dev/null || fail "docker load"
run tls$$ reaper-test/sleeper:1 sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done'
old_id=$(cid tls$$)
# The provider's endpoint comes from DOCKER_HOST (no endpoint in the file).
config <<YAML
agent: { listen: "", audit_log: $T/audit.jsonl }
providers: [ { name: remote, type: docker } ]
policies:
  - { name: test, match: { labels: { reaper-test: "$$" } }, max_age: 1s, grace: 2s }
YAML
sleep 1.2
"$REAPER" plan -c "$T/config.yaml" >"$T/plan.txt" 2>&1 || { cat "$T/plan.txt"; fail "plan over TLS failed"; }
grep -q "tls$$" "$T/plan.txt" || fail "plan over TLS does not list tls$$"
reaper_once || fail "run --once over TLS failed"
[ "$(cid tls$$)" != "$old_id" ] && running tls$$ || fail "tls$$ was not recreated over TLS"
assert_eq 1 "$(audit_count recycle.done)" "recycle.done over TLS"
# Without the client certificate, the engine refuses and reaper says so.
mkdir -p "$E/noclient" && cp "$c/ca.pem" "$E/noclient/"
rc=0
DOCKER_CERT_PATH=$E/noclient "$REAPER" plan -c "$T/config.yaml" >"$T/refused.txt" 2>&1 || rc=$?
cat "$T/refused.txt"
assert_eq 1 "$rc" "plan without a client certificate"
# Without TLS the engine answers garbage to plain HTTP: reaper says so too.
rc=0
DOCKER_TLS_VERIFY= "$REAPER" plan -c "$T/config.yaml" >"$T/plain.txt" 2>&1 || rc=$?
cat "$T/plain.txt"
assert_eq 1 "$rc" "plan over plain HTTP to a TLS engine"
# A client key others can read, a CA others can write: refused before any
# connection, in words.
for bad in "key.pem 644 a secret readable by its group or others" \
  "ca.pem 666 writable by its group or others"; do
  read -r f mode rule <<<"$bad"
  mkdir -p "$E/loose" && cp -p "$c/ca.pem" "$c/cert.pem" "$c/key.pem" "$E/loose/"
  chmod "$mode" "$E/loose/$f"
  rc=0
  DOCKER_CERT_PATH=$E/loose "$REAPER" plan -c "$T/config.yaml" >"$T/loose.txt" 2>&1 || rc=$?
  cat "$T/loose.txt"
  assert_eq 1 "$rc" "plan with $f mode $mode"
  grep -q "$E/loose/$f: $rule" "$T/loose.txt" || fail "the refusal does not name $f and the rule: $(cat "$T/loose.txt")"
  rm -rf "$E/loose"
done
verify_audit
log "tracked and recycled over tcp:// with mutual TLS"
