#!/usr/bin/env bash
# A replace action (policy `replace:`, strategy drain-replace): reboots the
# node that reaper has drained.  For a host, whose age is its boot time, a
# reboot makes it young again.  (A swarm node keeps its node ID and join time
# across a reboot: to renew a swarm node, replace the machine instead, e.g.
# aws-terminate-instance.sh.)
#
#   replace: [/usr/local/lib/reaper/reboot.sh, --ssh-user, admin]
#
# reaper runs it as an argv (no shell) with the node in its environment:
#   REAPER_NODE_ID, REAPER_NODE_HOSTNAME, REAPER_NODE_ADDR
# By default it reboots the node over ssh (to REAPER_NODE_ADDR, else
# REAPER_NODE_HOSTNAME), never prompting; --local reboots this machine, and
# only when REAPER_NODE_HOSTNAME (if set) names it.  The reboot is scheduled
# with `shutdown -r +MINUTES` so that this program returns, and reaper audits
# the outcome, before the machine goes down.
#
# Options: --dry-run (say what would be done, do nothing), --local,
# --ssh-user USER (default root; others use sudo -n), --delay MINUTES
# (default 1).  Exit status: 0 done, 1 failed, 2 usage.
set -euo pipefail

me=${0##*/}
dry_run=0 here=0 user=root delay=1
usage() {
  echo "usage: $me [--dry-run] [--local] [--ssh-user USER] [--delay MINUTES]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
  --dry-run) dry_run=1 ;;
  --local) here=1 ;;
  --ssh-user)
    [ $# -ge 2 ] || usage
    user=$2
    shift
    ;;
  --delay)
    [ $# -ge 2 ] || usage
    delay=$2
    shift
    ;;
  *) usage ;;
  esac
  shift
done
[[ $delay =~ ^[0-9]+$ ]] || {
  echo "$me: --delay wants whole minutes, not '$delay'" >&2
  exit 2
}
[[ $user =~ ^[a-z_][a-z0-9_-]*$ ]] || {
  echo "$me: --ssh-user '$user' is not a user name" >&2
  exit 2
}

node_id=${REAPER_NODE_ID:-}
hostname=${REAPER_NODE_HOSTNAME:-}
addr=${REAPER_NODE_ADDR:-}
reason="reaper: node ${node_id:-$hostname} is past its maximum age"
cmd=(shutdown -r "+$delay" "$reason")

if [ "$here" = 1 ]; then
  # Never reboot this machine for another node's sake.
  if [ -n "$hostname" ] && [ "$hostname" != "$(hostname)" ] &&
    [ "$hostname" != "$(hostname -f 2>/dev/null || hostname)" ]; then
    echo "$me: --local, but the node is '$hostname' and this machine is '$(hostname)': refusing" >&2
    exit 1
  fi
  if [ "$dry_run" = 1 ]; then
    echo "$me: dry run: would run: ${cmd[*]}"
    exit 0
  fi
  "${cmd[@]}"
  echo "$me: this machine reboots in $delay min"
  exit 0
fi

target=${addr:-$hostname}
[ -n "$target" ] || {
  echo "$me: neither REAPER_NODE_ADDR nor REAPER_NODE_HOSTNAME is set: which node?" >&2
  exit 2
}
# An address or a host name, never something ssh would read as an option.
[[ $target =~ ^[A-Za-z0-9][A-Za-z0-9.:_-]*$ ]] || {
  echo "$me: '$target' is not a host name or address" >&2
  exit 2
}
[ "$user" = root ] || cmd=(sudo -n "${cmd[@]}")
remote=$(printf '%q ' "${cmd[@]}")
ssh_cmd=(ssh -o BatchMode=yes -o ConnectTimeout=10 -l "$user" -- "$target" "$remote")
if [ "$dry_run" = 1 ]; then
  echo "$me: dry run: would run: ${ssh_cmd[*]}"
  exit 0
fi
if ! "${ssh_cmd[@]}"; then
  echo "$me: could not schedule the reboot of $target over ssh as $user" >&2
  exit 1
fi
echo "$me: $target (${node_id:-no node id}) reboots in $delay min"
