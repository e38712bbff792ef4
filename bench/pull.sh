#!/usr/bin/env bash
# Pull of debian:bookworm (one gzip layer) from the local fixture registry into an empty store:
# berth beside docker and podman when they are installed. Medians of $RUNS runs, one session.
#
# Two berth figures: into a store directory that never existed (old ones deleted only after
# the timing), and into the same directory right after `rm -rf` of the previous store. ext4
# allocating inodes next to thousands freed moments ago (find_inode_bit/recently_deleted) can
# add seconds of system time to whichever command creates files next; docker's runs, with
# their `rmi` before each pull, are always in the second case. The figures vary with that.
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
IMAGE=${IMAGE:-127.0.0.1:5000/debian:bookworm}
ROOT=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT

n=0
b=$(median_ms 'n=$((n+1))' "$BERTH --root $ROOT/s\$n pull -q $IMAGE")
echo "berth pull $IMAGE (fresh store): median ${b} ms over $RUNS runs"
r=$(median_ms "rm -rf $ROOT/again; sync" "$BERTH --root $ROOT/again pull -q $IMAGE")
echo "berth pull $IMAGE (store just deleted): median ${r} ms"
if have_docker; then
  d=$(median_ms "docker rmi -f $IMAGE; docker image prune -f; sync" "docker pull -q $IMAGE")
  report "pull (vs docker)" "$b" docker "$d"
  report "pull after rm (vs docker)" "$r" docker "$d"
fi
if have_podman; then
  if p=$(median_ms "$PODMAN rmi -f $IMAGE; sync" "$PODMAN pull -q --tls-verify=false $IMAGE"); then
    report "pull (vs podman)" "$b" podman "$p"
  else
    echo "podman could not pull here (see bench/README.md)"
  fi
fi
