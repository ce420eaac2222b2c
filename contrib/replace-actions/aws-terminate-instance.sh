#!/usr/bin/env bash
# A replace action (policy `replace:`, strategy drain-replace): terminates the
# EC2 instance behind a drained node so that its Auto Scaling group launches
# a fresh one, which joins as a new node.
#
#   replace: [/usr/local/lib/reaper/aws-terminate-instance.sh, --region, eu-central-1]
#
# reaper runs it as an argv (no shell) with the node in its environment:
#   REAPER_NODE_ID, REAPER_NODE_HOSTNAME, REAPER_NODE_ADDR
# The instance is found by its private IP (REAPER_NODE_ADDR), else by its
# private DNS name (REAPER_NODE_HOSTNAME); exactly one instance must match.
# An instance in an Auto Scaling group is terminated through the group
# without lowering its desired capacity, so a replacement is launched.  One
# outside any group would simply be gone: that is refused unless
# --allow-standalone is given.
#
# Needs the aws CLI with credentials allowed ec2:DescribeInstances and
# autoscaling:TerminateInstanceInAutoScalingGroup (ec2:TerminateInstances
# with --allow-standalone).  --dry-run does the (read-only) lookup and says
# what would be terminated.  Exit status: 0 done, 1 failed, 2 usage.
set -euo pipefail

me=${0##*/}
dry_run=0 standalone=0 aws=(aws)
usage() {
  echo "usage: $me [--dry-run] [--region REGION] [--allow-standalone]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
  --dry-run) dry_run=1 ;;
  --allow-standalone) standalone=1 ;;
  --region)
    [ $# -ge 2 ] || usage
    aws+=(--region "$2")
    shift
    ;;
  *) usage ;;
  esac
  shift
done
command -v aws >/dev/null || {
  echo "$me: the aws CLI is not installed" >&2
  exit 1
}

addr=${REAPER_NODE_ADDR:-}
hostname=${REAPER_NODE_HOSTNAME:-}
# Both come from the node (its engine's word): checked before they reach a
# filter, where a comma would add values and a * would match other
# instances.
if [ -n "$addr" ]; then
  [[ $addr =~ ^[0-9a-fA-F.:]+$ ]] || {
    echo "$me: REAPER_NODE_ADDR '$addr' is not an IP address" >&2
    exit 2
  }
  filter=("Name=private-ip-address,Values=$addr")
  what="private IP $addr"
elif [ -n "$hostname" ]; then
  # ip-10-0-1-2, or ip-10-0-1-2.eu-central-1.compute.internal
  [[ $hostname =~ ^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$ ]] || {
    echo "$me: REAPER_NODE_HOSTNAME '$hostname' is not a host name" >&2
    exit 2
  }
  filter=("Name=private-dns-name,Values=$hostname,$hostname.*")
  what="private DNS name $hostname"
else
  echo "$me: neither REAPER_NODE_ADDR nor REAPER_NODE_HOSTNAME is set: which node?" >&2
  exit 2
fi

# The backquotes are JMESPath literals, not shell.
# shellcheck disable=SC2016
found=$("${aws[@]}" ec2 describe-instances --output text \
  --filters "${filter[@]}" "Name=instance-state-name,Values=pending,running,stopping,stopped" \
  --query 'Reservations[].Instances[].[InstanceId, Tags[?Key==`aws:autoscaling:groupName`] | [0].Value]') || {
  echo "$me: describe-instances failed for $what" >&2
  exit 1
}
n=$(grep -c . <<<"$found" || true)
if [ "$n" -ne 1 ]; then
  echo "$me: $n instances have the $what, expected exactly one: refusing" >&2
  while IFS= read -r line; do [ -z "$line" ] || printf '  %s\n' "$line"; done <<<"$found" >&2
  exit 1
fi
read -r id group <<<"$found"
[ "$group" != None ] || group=

if [ -n "$group" ]; then
  cmd=("${aws[@]}" autoscaling terminate-instance-in-auto-scaling-group
    --instance-id "$id" --no-should-decrement-desired-capacity)
  outcome="terminated; Auto Scaling group $group launches its replacement"
elif [ "$standalone" = 1 ]; then
  cmd=("${aws[@]}" ec2 terminate-instances --instance-ids "$id")
  outcome="terminated (in no Auto Scaling group: nothing replaces it)"
else
  echo "$me: $id ($what) is in no Auto Scaling group, so nothing would replace it: refusing (--allow-standalone to terminate it anyway)" >&2
  exit 1
fi
if [ "$dry_run" = 1 ]; then
  echo "$me: dry run: $id (${REAPER_NODE_ID:-no node id}) would be $outcome: ${cmd[*]}"
  exit 0
fi
"${cmd[@]}" >/dev/null || {
  echo "$me: could not terminate $id" >&2
  exit 1
}
echo "$me: $id (${REAPER_NODE_ID:-no node id}) $outcome"
