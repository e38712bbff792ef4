#!/usr/bin/env bash
# Bridge networking: the nginx cycle (`run -d -p`, first HTTP 200 on the published port,
# `rm -f`) and `run --rm busybox true` on the default bridge, berth beside docker when it
# runs. Medians of $RUNS runs in one session.
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
RUNS=${RUNS:-11}
NGINX=${NGINX:-127.0.0.1:5000/nginx:latest}
BUSYBOX=${BUSYBOX:-127.0.0.1:5000/busybox:latest}
PORT=${PORT:-18480}
ROOT=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
B="$BERTH --root $ROOT"
cleanup() { $B rm -f bench-web >/dev/null 2>&1 || true; rm -rf "$ROOT"; }
trap cleanup EXIT
$B pull -q "$NGINX" >/dev/null
$B pull -q "$BUSYBOX" >/dev/null
$B run --rm "$BUSYBOX" true >/dev/null # the bridge exists from the first container on

# Polls the published port until nginx answers 200 (1 ms apart).
first_200() {
  local i
  for ((i = 0; i < 5000; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/" 2>/dev/null)" = 200 ] && return 0
    sleep 0.001
  done
  return 1
}

cycle() { # CLI
  "$@" run -d --name bench-web -p "$PORT:80" "$NGINX" >/dev/null && first_200 && "$@" rm -f bench-web >/dev/null
}

b=$(median_ms "$B rm -f bench-web" "cycle $B")
echo "berth nginx cycle (run -d -p, first 200, rm -f): median ${b} ms over $RUNS runs"
r=$(median_ms : "$B run --rm $BUSYBOX true")
echo "berth run --rm busybox true (bridge): median ${r} ms"
n=$(median_ms : "$B run --rm --network none $BUSYBOX true")
echo "berth run --rm --network none busybox true (baseline, same session): median ${n} ms"

if have_docker; then
  docker pull -q "$NGINX" >/dev/null
  docker pull -q "$BUSYBOX" >/dev/null
  d=$(median_ms "docker rm -f bench-web" "cycle docker")
  report "nginx cycle (vs docker)" "$b" docker "$d"
  dr=$(median_ms : "docker run --rm $BUSYBOX true")
  report "run --rm true bridge (vs docker)" "$r" docker "$dr"
fi
