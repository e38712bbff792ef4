# Shared helpers for berth's whole-process benchmarks: run a command N times, report the median
# wall time in milliseconds. Sourced by the bench/*.sh scripts.
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/toolchain.sh"
BERTH=${BERTH:-$BERTH_BIN}
RUNS=${RUNS:-5}
# $EPOCHREALTIME uses the locale's decimal separator; median_ms expects a dot.
export LC_ALL=C

# median_ms SETUP_CMD CMD: runs SETUP_CMD (untimed) then CMD (timed) RUNS times; prints the
# median in milliseconds with one decimal.
median_ms() {
  local setup=$1 cmd=$2 i t0 t1 times=()
  for ((i = 0; i < RUNS; i++)); do
    eval "$setup" >/dev/null 2>&1 || true
    # bash's own clock, in microseconds: `date` or a $(...) would add a process or a fork
    # (~0.5 ms here) to every sample.
    t0=$EPOCHREALTIME
    eval "$cmd" >/dev/null 2>&1 || { echo "FAILED: $cmd" >&2; return 1; }
    t1=$EPOCHREALTIME
    times+=($((10#${t1/./} - 10#${t0/./})))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f\n", a[int((NR+1)/2)] / 1000}'
}

have_docker() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
have_podman() { command -v podman >/dev/null 2>&1; }
PODMAN="podman --cgroup-manager=cgroupfs"

report() { # name berth_ms peer peer_ms
  if [ -n "${4:-}" ]; then
    awk -v n="$1" -v b="$2" -v p="$3" -v q="$4" 'BEGIN { printf "%-28s berth %8.1f ms   %-7s %8.1f ms   %5.1fx faster\n", n, b, p, q, q / (b > 0 ? b : 1) }'
  fi
}
