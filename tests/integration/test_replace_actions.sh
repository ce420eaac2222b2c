#!/usr/bin/env bash
# The replace actions in contrib/replace-actions/ take the node's address
# and host name from reaper's environment, that is from the node's engine:
# a value that is not an IP address or a host name is refused (exit 2)
# before it reaches a cloud API's filter (where a comma adds values and a
# * matches other instances) or ssh.  The cloud CLIs (aws, gcloud) are
# stand-ins here that record how they were called and answer one
# instance: what is checked is that a bad value never reaches them, and
# that a good one does, as written.
source "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
actions=$top/contrib/replace-actions
command -v jq >/dev/null || fail "jq is not installed (contrib/install-deps.sh --test installs it)"

mkdir -p "$T/bin"
# Records its argv, one argument a line, and answers a lookup with one
# instance in an Auto Scaling group (aws) or a managed instance group
# (gcloud).
cat >"$T/bin/aws" <<'SH'
#!/bin/sh
printf '%s\n' "$@" >>"$CALLS"
echo --- >>"$CALLS"
case " $* " in *" describe-instances "*) printf 'i-0abc\tweb-asg\n' ;; esac
SH
cat >"$T/bin/gcloud" <<'SH'
#!/bin/sh
printf '%s\n' "$@" >>"$CALLS"
echo --- >>"$CALLS"
case " $* " in *" list "*) echo '[{"name":"node-1","zone":"z/europe-west1-b","metadata":{"items":[{"key":"created-by","value":"projects/p/zones/europe-west1-b/instanceGroupManagers/web"}]}}]' ;; esac
SH
chmod +x "$T/bin/aws" "$T/bin/gcloud"
export CALLS=$T/calls PATH=$T/bin:$PATH

# ACTION ADDR HOSTNAME EXPECTED-EXIT [ARGS...]: runs the action with the
# node's values, as reaper would (a minimal environment).
try() {
  local action=$1 addr=$2 host=$3 want=$4
  shift 4
  rm -f "$CALLS"
  local rc=0
  env -i PATH="$PATH" CALLS="$CALLS" REAPER_NODE_ID=n1 REAPER_NODE_ADDR="$addr" \
    REAPER_NODE_HOSTNAME="$host" "$actions/$action" --dry-run "$@" >"$T/out" 2>&1 || rc=$?
  [ "$rc" = "$want" ] || fail "$action (addr '$addr', host name '$host'): exit $rc, expected $want: $(cat "$T/out")"
}
never_called() {
  [ ! -s "$CALLS" ] || fail "$1: the CLI was called with a value that was refused: $(tr '\n' ' ' <"$CALLS")"
}

# aws-terminate-instance.sh: a host name with a comma, a wildcard, a space,
# an option's dash or a shell character; an address that is not one.
for bad in 'ip-10-0-1-2,ip-10-0-9-9' '*' 'ip-10-0-1-*' 'ip 10' '-x' 'a..b' 'host;id' '$(id)' 'name.'; do
  try aws-terminate-instance.sh '' "$bad" 2
  grep -q "REAPER_NODE_HOSTNAME '.*' is not a host name" "$T/out" || fail "aws: refusal of '$bad' not said: $(cat "$T/out")"
  never_called "aws, host name '$bad'"
done
for bad in '10.0.0.1,10.0.0.2' '10.0.0.*' '10.0.0.1 ' 'ten'; do
  try aws-terminate-instance.sh "$bad" '' 2
  grep -q "REAPER_NODE_ADDR '.*' is not an IP address" "$T/out" || fail "aws: refusal of '$bad' not said: $(cat "$T/out")"
  never_called "aws, address '$bad'"
done
# Good values reach the filter as they are.
try aws-terminate-instance.sh '' ip-10-0-1-2.eu-central-1.compute.internal 0 --region eu-central-1
grep -qx 'Name=private-dns-name,Values=ip-10-0-1-2.eu-central-1.compute.internal,ip-10-0-1-2.eu-central-1.compute.internal.\*' "$CALLS" ||
  fail "aws: the host name's filter: $(tr '\n' ' ' <"$CALLS")"
grep -q 'would be terminated; Auto Scaling group web-asg' "$T/out" || fail "aws dry run: $(cat "$T/out")"
try aws-terminate-instance.sh 10.0.1.2 ip-10-0-1-2 0
grep -qx 'Name=private-ip-address,Values=10.0.1.2' "$CALLS" || fail "aws: the address's filter: $(tr '\n' ' ' <"$CALLS")"
try aws-terminate-instance.sh fd00::12 '' 0

# gcp-delete-instance.sh and reboot.sh hold the same line.
try gcp-delete-instance.sh '10.0.0.1,10.0.0.2' '' 2
never_called "gcp, a bad address"
try gcp-delete-instance.sh '' 'node-1,other' 2
never_called "gcp, a bad host name"
try gcp-delete-instance.sh '' node-1.c.project.internal 0
grep -qx -- '--filter=name=node-1' "$CALLS" || fail "gcp: the name's filter: $(tr '\n' ' ' <"$CALLS")"
for bad in '-oProxyCommand=id' 'host;id' 'a b'; do
  try reboot.sh '' "$bad" 2
  grep -q "is not a host name or address" "$T/out" || fail "reboot: refusal of '$bad' not said: $(cat "$T/out")"
done
try reboot.sh 10.0.1.2 '' 0
grep -q "ssh .* -- 10.0.1.2 " "$T/out" || fail "reboot dry run: $(cat "$T/out")"
log "replace actions: node addresses and host names checked before any CLI sees them"
