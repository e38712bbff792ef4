#!/usr/bin/env bash
# A/B comparison of two commands on this machine, for deciding whether a change made berth
# faster: bench/ab.sh "OLD/berth --root R run --rm --network none IMG true" "NEW/berth ...".
#
# Samples are taken in ABBA order (A B, then B A, ...), so neither command always runs
# right after the other's asynchronous teardown, and each pair is close in time: this VM's
# speed drifts by up to 1.5x within minutes, which swamps the differences worth measuring
# when two builds are timed one after the other. Reports both medians, the median of the
# paired differences and how many pairs favoured each side.
set -euo pipefail
# Commands are run from the caller's directory, so relative paths work.
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-61}
[ $# -eq 2 ] || { echo "usage: RUNS=N bench/ab.sh CMD_A CMD_B" >&2; exit 2; }
A=$1
B=$2

sample() { # CMD -> microseconds
  local t0 t1
  t0=$EPOCHREALTIME
  eval "$1" >/dev/null 2>&1 || { echo "FAILED: $1" >&2; return 1; }
  t1=$EPOCHREALTIME
  echo $((10#${t1/./} - 10#${t0/./}))
}

ta=()
tb=()
for ((i = 0; i < RUNS; i++)); do
  if ((i % 2 == 0)); then
    ta+=("$(sample "$A")")
    tb+=("$(sample "$B")")
  else
    tb+=("$(sample "$B")")
    ta+=("$(sample "$A")")
  fi
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] / 1000}'; }
diffs=()
a_faster=0
b_faster=0
for ((i = 0; i < RUNS; i++)); do
  d=$((ta[i] - tb[i]))
  diffs+=("$d")
  if ((d < 0)); then a_faster=$((a_faster + 1)); elif ((d > 0)); then b_faster=$((b_faster + 1)); fi
done
echo "A median $(median "${ta[@]}") ms   B median $(median "${tb[@]}") ms   over $RUNS pairs"
echo "median of A-B: $(median "${diffs[@]}") ms   (A faster in $a_faster pairs, B in $b_faster)"
