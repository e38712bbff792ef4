#!/usr/bin/env bash
# Scale (issue 22): one store with $CREATED created containers and $RUNNING running ones
# (`run -d … sleep`), then
#   - `ps -a` and `ps` (medians of $RUNS);                          target: `ps -a` ≤ 20 ms
#   - `run -d --rm --network none busybox true` with that store against an empty one,
#     paired in ABBA order (bench/ab.sh, $PAIRS pairs);             target: no slower
#   - each running container's monitor, idle for more than a second: VmRSS (/proc/PID/status)
#     and Pss (/proc/PID/smaps_rollup: its share of pages the monitors have in common);
#                                                                   target: ≤ 1 MB RSS each
# and at the end removes everything (`rm -f`, timed) and checks that no mount, cgroup,
# veth or runtime directory of these containers is left. The running containers use
# `--network none` unless NETWORK=bridge (100 veths on the shared bridge otherwise disturb
# whatever else runs on the machine).
set -euo pipefail
cd "$(dirname "$0")"
# Before lib.sh, which sets its own default.
RUNS=${RUNS:-21}
PAIRS=${PAIRS:-41}
. ./lib.sh
CREATED=${CREATED:-1000}
RUNNING=${RUNNING:-100}
NETWORK=${NETWORK:-none}
IMAGE=${IMAGE:-127.0.0.1:5000/busybox:latest}
ROOT=$(mktemp -d /var/tmp/berth-bench-scale.XXXXXX)
FULL="$BERTH --root $ROOT/full"
EMPTY="$BERTH --root $ROOT/empty"

# Every container of both stores goes, whatever happened: a full store's running
# containers would otherwise outlive the benchmark.
remove_all() { # CLI
  $1 ps -aq --no-trunc 2>/dev/null | xargs -r -n 100 $1 rm -f >/dev/null 2>&1 || true
}
cleanup() {
  remove_all "$FULL"
  remove_all "$EMPTY"
  rm -rf "$ROOT"
}
trap cleanup EXIT

$FULL pull -q "$IMAGE" >/dev/null
$EMPTY pull -q "$IMAGE" >/dev/null

# The store: created containers first, then the running ones (newest, so first in `ps -a`).
t0=$EPOCHREALTIME
for ((i = 0; i < CREATED; i++)); do
  if ((i == 100)); then t100=$EPOCHREALTIME; fi
  if ((i == CREATED - 100)); then tlast=$EPOCHREALTIME; fi
  $FULL create --network none "$IMAGE" true >/dev/null
done
t1=$EPOCHREALTIME
us() { echo $((10#${2/./} - 10#${1/./})); }
echo "create x$CREATED: $(($(us "$t0" "$t1") / 1000)) ms in all;" \
  "first 100 $(($(us "$t0" "$t100") / 100 / 1000)).$(($(us "$t0" "$t100") / 100 % 1000 / 100)) ms each," \
  "last 100 $(($(us "$tlast" "$t1") / 100 / 1000)).$(($(us "$tlast" "$t1") / 100 % 1000 / 100)) ms each"
t0=$EPOCHREALTIME
for ((i = 0; i < RUNNING; i++)); do
  $FULL run -d --network "$NETWORK" "$IMAGE" sleep 2147483647 >/dev/null
done
t1=$EPOCHREALTIME
echo "run -d x$RUNNING: $(($(us "$t0" "$t1") / 1000)) ms in all"
mapfile -t running < <($FULL ps -q --no-trunc)
total=$($FULL ps -aq | wc -l)
echo "store: $total containers, ${#running[@]} running"
((${#running[@]} == RUNNING)) || { echo "expected $RUNNING running containers" >&2; exit 1; }
# Start from a quiet disk: 1100 containers' files may still be being written back.
sync

# The monitors, once the last one has been idle for more than a second (a monitor gives
# memory back after a quiet second: see monitor.rs).
sleep 1.5
rss=()
pss=()
for id in "${running[@]}"; do
  pid=$(sed -n 's/.*"monitor_pid": \([0-9]*\).*/\1/p' "$ROOT/full/containers/$id/state.json")
  rss+=("$(awk '/^VmRSS:/ {print $2}' /proc/"$pid"/status)")
  pss+=("$(awk '/^Pss:/ {print $2}' /proc/"$pid"/smaps_rollup)")
done
stats() { # kB values -> "median X, max Y, total Z"
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1; s+=$1} END {printf "median %d kB, max %d kB, all %d together: %.1f MB", a[int((NR+1)/2)], a[NR], NR, s/1024}'
}
echo "idle monitors' VmRSS: $(stats "${rss[@]}")"
echo "idle monitors' Pss:   $(stats "${pss[@]}")"

b=$(median_ms : "$FULL ps -a")
echo "ps -a ($total rows): median ${b} ms over $RUNS runs"
echo "ps (${#running[@]} rows): median $(median_ms : "$FULL ps") ms"
echo "ps -aq: median $(median_ms : "$FULL ps -aq") ms"
echo "/bin/true through the same harness: median $(median_ms : /bin/true) ms"
# CPU time, which other work on the machine inflates less than wall time.
if command -v perf >/dev/null 2>&1; then
  cpu=$(perf stat -x, -e task-clock -r "$RUNS" $FULL ps -a 2>&1 >/dev/null |
    awk -F, '/task-clock/ {printf "%.1f", $1}')
  [ -n "$cpu" ] && echo "ps -a CPU time (perf stat task-clock, mean of $RUNS): ${cpu} ms"
fi

# `run -d` with the full store (A) against the empty one (B). The --rm containers go in
# their monitors, beside the next samples, on both sides alike.
echo "run -d --rm --network none busybox true, full store (A) vs empty store (B):"
RUNS=$PAIRS bash ab.sh "$FULL run -d --rm --network none $IMAGE true" \
  "$EMPTY run -d --rm --network none $IMAGE true"
# Wait for the --rm containers to be gone.
for ((i = 0; i < 100; i++)); do
  [ "$($FULL ps -aq | wc -l)" -eq "$total" ] && [ -z "$($EMPTY ps -aq)" ] && break
  sleep 0.1
done

# Removal of the whole store, then what must be gone with it.
mapfile -t all < <($FULL ps -aq --no-trunc)
t0=$EPOCHREALTIME
printf '%s\n' "${all[@]}" | xargs -n 100 $FULL rm -f >/dev/null
t1=$EPOCHREALTIME
echo "rm -f of ${#all[@]} containers (100 per command): $(($(us "$t0" "$t1") / 1000)) ms"
left=0
mounts=$(grep -c "$ROOT" /proc/self/mountinfo || true)
if ((mounts > 0)); then
  echo "left: $mounts mounts under $ROOT"
  left=1
fi
cgroups=0
veths=0
rundirs=0
links=$(ip -o link show 2>/dev/null || true)
for id in "${all[@]}"; do
  for d in /sys/fs/cgroup/*/berth/"$id" /sys/fs/cgroup/berth/"$id"; do
    [ -e "$d" ] && cgroups=$((cgroups + 1))
  done
  grep -q "veth${id:0:11}" <<<"$links" && veths=$((veths + 1))
  [ -e "/run/berth/$id" ] && rundirs=$((rundirs + 1))
done
for what in cgroups veths rundirs; do
  if ((${!what} > 0)); then
    echo "left: ${!what} $what of these containers"
    left=1
  fi
done
remaining=$($FULL ps -aq | wc -l)
if ((remaining > 0)); then
  echo "left: $remaining containers in the store"
  left=1
fi
((left == 0)) && echo "after rm -f: no container, mount, cgroup, veth or runtime directory left"
exit $left
