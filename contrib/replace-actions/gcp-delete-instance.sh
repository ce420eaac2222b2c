#!/usr/bin/env bash
# A replace action (policy `replace:`, strategy drain-replace): replaces the
# Compute Engine instance behind a drained node.  In a managed instance
# group the instance is recreated by the group (deleted and created again
# from the group's template, under the same name), which keeps the group's
# size; the new machine joins as a new node.  An instance in no group would
# simply be deleted: that is refused unless --allow-standalone is given.
#
#   replace: [/usr/local/lib/reaper/gcp-delete-instance.sh, --project, my-project]
#
# reaper runs it as an argv (no shell) with the node in its environment:
#   REAPER_NODE_ID, REAPER_NODE_HOSTNAME, REAPER_NODE_ADDR
# The instance is found by its internal IP (REAPER_NODE_ADDR), else by its
# name (the first label of REAPER_NODE_HOSTNAME, which is how Compute Engine
# names hosts); exactly one instance must match.
#
# Needs gcloud (with credentials allowed compute.instances.list/get and
# compute.instanceGroupManagers.update) and jq.  Under the systemd unit's
# sandbox gcloud needs a writable configuration directory: set
# CLOUDSDK_CONFIG=/var/lib/reaper/gcloud.  --dry-run does the (read-only)
# lookup and says what would be done.  Exit status: 0 done, 1 failed, 2 usage.
set -euo pipefail

me=${0##*/}
dry_run=0 standalone=0 zone='' gcloud=(gcloud --quiet)
usage() {
  echo "usage: $me [--dry-run] [--project PROJECT] [--zone ZONE] [--allow-standalone]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
  --dry-run) dry_run=1 ;;
  --allow-standalone) standalone=1 ;;
  --project)
    [ $# -ge 2 ] || usage
    gcloud+=(--project "$2")
    shift
    ;;
  --zone)
    [ $# -ge 2 ] || usage
    zone=$2
    shift
    ;;
  *) usage ;;
  esac
  shift
done
for c in gcloud jq; do
  command -v "$c" >/dev/null || {
    echo "$me: $c is not installed" >&2
    exit 1
  }
done

addr=${REAPER_NODE_ADDR:-}
hostname=${REAPER_NODE_HOSTNAME:-}
if [ -n "$addr" ]; then
  [[ $addr =~ ^[0-9a-fA-F.:]+$ ]] || {
    echo "$me: REAPER_NODE_ADDR '$addr' is not an IP address" >&2
    exit 2
  }
  filter="networkInterfaces.networkIP=$addr"
  what="internal IP $addr"
elif [ -n "$hostname" ]; then
  name=${hostname%%.*}
  [[ $name =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] || {
    echo "$me: '$name' (from REAPER_NODE_HOSTNAME) is not an instance name" >&2
    exit 2
  }
  filter="name=$name"
  what="name $name"
else
  echo "$me: neither REAPER_NODE_ADDR nor REAPER_NODE_HOSTNAME is set: which node?" >&2
  exit 2
fi

found=$("${gcloud[@]}" compute instances list --filter="$filter" \
  ${zone:+--zones="$zone"} --format=json) || {
  echo "$me: instances list failed for $what" >&2
  exit 1
}
n=$(jq length <<<"$found")
if [ "$n" -ne 1 ]; then
  echo "$me: $n instances have the $what, expected exactly one: refusing" >&2
  jq -r '.[] | "  \(.name) in \(.zone | split("/") | last)"' <<<"$found" >&2
  exit 1
fi
name=$(jq -r '.[0].name' <<<"$found")
zone=$(jq -r '.[0].zone | split("/") | last' <<<"$found")
# A managed instance group marks its instances with this metadata item:
# projects/P/zones/Z/instanceGroupManagers/G or .../regions/R/...
created_by=$(jq -r '.[0].metadata.items // [] | map(select(.key == "created-by")) | .[0].value // ""' <<<"$found")

if [[ $created_by =~ /(zones|regions)/([^/]+)/instanceGroupManagers/([^/]+)$ ]]; then
  scope=--zone
  [ "${BASH_REMATCH[1]}" = zones ] || scope=--region
  group=${BASH_REMATCH[3]}
  cmd=("${gcloud[@]}" compute instance-groups managed recreate-instances "$group"
    --instances="$name" "$scope=${BASH_REMATCH[2]}")
  outcome="recreated by its managed instance group $group"
elif [ "$standalone" = 1 ]; then
  cmd=("${gcloud[@]}" compute instances delete "$name" --zone="$zone")
  outcome="deleted (in no managed instance group: nothing replaces it)"
else
  echo "$me: $name ($what, zone $zone) is in no managed instance group, so nothing would replace it: refusing (--allow-standalone to delete it anyway)" >&2
  exit 1
fi
if [ "$dry_run" = 1 ]; then
  echo "$me: dry run: $name (${REAPER_NODE_ID:-no node id}) would be $outcome: ${cmd[*]}"
  exit 0
fi
"${cmd[@]}" >/dev/null || {
  echo "$me: could not replace $name" >&2
  exit 1
}
echo "$me: $name (${REAPER_NODE_ID:-no node id}) $outcome"
