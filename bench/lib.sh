# Shared helpers for berth's whole-process benchmarks: run a command N times, report the median
# wall time in milliseconds. Sourced by the bench/*.sh scripts.
BERTH=${BERTH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/release/berth}
RUNS=${RUNS:-5}

now_ns() { date +%s%N; }

# median_ms SETUP_CMD CMD: runs SETUP_CMD (untimed) then CMD (timed) RUNS times.
median_ms() {
  local setup=$1 cmd=$2 i t0 t1 times=()
  for ((i = 0; i < RUNS; i++)); do
    eval "$setup" >/dev/null 2>&1 || true
    t0=$(now_ns)
    eval "$cmd" >/dev/null 2>&1 || { echo "FAILED: $cmd" >&2; return 1; }
    t1=$(now_ns)
    times+=($(( (t1 - t0) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

have_docker() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
have_podman() { command -v podman >/dev/null 2>&1; }
PODMAN="podman --cgroup-manager=cgroupfs"

report() { # name berth_ms peer peer_ms
  if [ -n "${4:-}" ]; then
    awk -v n="$1" -v b="$2" -v p="$3" -v q="$4" 'BEGIN { printf "%-28s berth %6d ms   %-7s %6d ms   %5.1fx faster\n", n, b, p, q, q / (b > 0 ? b : 1) }'
  fi
}
