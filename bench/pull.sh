#!/usr/bin/env bash
# Pull of debian:bookworm (one gzip layer) from the local fixture registry into an empty store:
# berth beside docker and podman when they are installed. Medians of $RUNS runs, one session.
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
IMAGE=${IMAGE:-127.0.0.1:5000/debian:bookworm}
ROOT=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT

b=$(median_ms "rm -rf $ROOT/s" "$BERTH --root $ROOT/s pull -q $IMAGE")
echo "berth pull $IMAGE: median ${b} ms over $RUNS runs"
if have_docker; then
  d=$(median_ms "docker rmi -f $IMAGE; docker image prune -f" "docker pull -q $IMAGE")
  report "pull (vs docker)" "$b" docker "$d"
fi
if have_podman; then
  p=$(median_ms "$PODMAN rmi -f $IMAGE" "$PODMAN pull -q --tls-verify=false $IMAGE")
  report "pull (vs podman)" "$b" podman "$p"
fi
