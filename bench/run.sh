#!/usr/bin/env bash
# `run --rm busybox true` with --network none, and `exec c true` into a running container:
# berth beside docker and podman when installed. Medians of $RUNS runs in one session.
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
RUNS=${RUNS:-21}
IMAGE=${IMAGE:-127.0.0.1:5000/busybox:latest}
ROOT=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
B="$BERTH --root $ROOT"
cleanup() { $B rm -f bench-exec >/dev/null 2>&1 || true; rm -rf "$ROOT"; }
trap cleanup EXIT
$B pull -q "$IMAGE" >/dev/null
# Start from a quiet disk: the image just pulled may still be being written back.
sync

b=$(median_ms : "$B run --rm --network none $IMAGE true")
echo "berth run --rm --network none busybox true: median ${b} ms over $RUNS runs"
# The harness's own floor (a fork of bash and an exec), which drifts with this VM's speed:
# read the figure above against it, not against another hour's.
echo "/bin/true through the same harness: median $(median_ms : /bin/true) ms"
$B run -d --name bench-exec --network none "$IMAGE" sleep 1000 >/dev/null
state="$ROOT/containers/$($B inspect -f '{{.Id}}' bench-exec)/state.json"
monitor=$(sed -n 's/.*"monitor_pid": \([0-9]*\).*/\1/p' "$state")
echo "berth monitor RSS just after start: $(awk '/VmRSS/ {print $2, $3}' /proc/"$monitor"/status)"
e=$(median_ms : "$B exec bench-exec true")
echo "berth exec c true: median ${e} ms"
# The monitor gives memory back once its container has been quiet (100 ms, then 1 s).
sleep 1.5
echo "berth monitor RSS (idle container): $(awk '/VmRSS/ {print $2, $3}' /proc/"$monitor"/status)"

if have_docker; then
  docker pull -q "$IMAGE" >/dev/null
  d=$(median_ms : "docker run --rm --network none $IMAGE true")
  report "run --rm true (vs docker)" "$b" docker "$d"
  docker rm -f bench-exec >/dev/null 2>&1 || true
  docker run -d --name bench-exec "$IMAGE" sleep 1000 >/dev/null
  de=$(median_ms : "docker exec bench-exec true")
  report "exec true (vs docker)" "$e" docker "$de"
  shim=$(pgrep -f "containerd-shim.*$(docker inspect -f '{{.Id}}' bench-exec)" | head -1 || true)
  [ -n "$shim" ] && echo "docker containerd-shim RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/"$shim"/status)"
  docker rm -f bench-exec >/dev/null
fi
if have_podman; then
  if $PODMAN pull -q --tls-verify=false "$IMAGE" >/dev/null 2>&1 &&
     p=$(median_ms : "$PODMAN run --rm --runtime runc --network none $IMAGE true"); then
    report "run --rm true (vs podman)" "$b" podman "$p"
  else
    echo "podman could not run here (see bench/README.md for the settings it needs)"
  fi
fi
