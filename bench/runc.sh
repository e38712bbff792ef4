#!/usr/bin/env bash
# berth-runc beside runc (Debian's), on one bundle made from the busybox fixture image:
# create + start + delete of `true`, `run` of `true`, and `exec true` into a running
# container; then `ctr run --rm` through containerd with each runtime when containerd is
# installed. Medians of $RUNS runs, both runtimes measured in the same session.
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
RUNS=${RUNS:-21}
IMAGE=${IMAGE:-127.0.0.1:5000/busybox:latest}
WORK=$(mktemp -d /var/tmp/berth-runc-bench.XXXXXX)
BROOT=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
RUNC_BIN=$(command -v runc || true)
BR=$WORK/berth-runc
ln -s "$(readlink -f "$BERTH")" "$BR"
cleanup() {
  for r in "$BR --root $WORK/state-berth" "${RUNC_BIN:-true} --root $WORK/state-runc"; do
    $r delete --force bench-exec >/dev/null 2>&1 || true
  done
  [ -n "${CTRD_PID:-}" ] && kill "$CTRD_PID" 2>/dev/null
  rm -rf "$WORK" "$BROOT"
}
trap cleanup EXIT

# The bundle: the image's root file system (berth export of a created container) and
# `berth-runc spec`'s config running `true`, without a terminal.
$BERTH --root "$BROOT" pull -q "$IMAGE" >/dev/null
cid=$($BERTH --root "$BROOT" create "$IMAGE" true)
mkdir "$WORK/rootfs"
$BERTH --root "$BROOT" export "$cid" | tar -x -C "$WORK/rootfs"
(cd "$WORK" && "$BR" spec)
sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' "$WORK/config.json"
sync

cycle() { # RUNTIME ROOT
  echo "$1 --root $2 create --bundle $WORK c </dev/null && $1 --root $2 start c && while $1 --root $2 state c | grep -q '\"running\"'; do :; done; $1 --root $2 delete c"
}
b=$(median_ms : "$(cycle "$BR" "$WORK/state-berth")")
echo "berth-runc create+start+delete true: median $b ms over $RUNS runs"
br=$(median_ms "$BR --root $WORK/state-berth delete --force r" "$BR --root $WORK/state-berth run --bundle $WORK r </dev/null")
echo "berth-runc run true: median $br ms"
sed -i 's/"true"/"sleep", "1000"/' "$WORK/config.json"
"$BR" --root "$WORK/state-berth" run -d --bundle "$WORK" bench-exec </dev/null >/dev/null 2>&1
be=$(median_ms : "$BR --root $WORK/state-berth exec bench-exec true </dev/null")
echo "berth-runc exec true: median $be ms"
"$BR" --root "$WORK/state-berth" delete --force bench-exec
sed -i 's/"sleep", "1000"/"true"/' "$WORK/config.json"

if [ -n "$RUNC_BIN" ]; then
  r=$(median_ms : "$(cycle "$RUNC_BIN" "$WORK/state-runc")")
  report "create+start+delete (vs runc)" "$b" runc "$r"
  rr=$(median_ms "$RUNC_BIN --root $WORK/state-runc delete --force r" "$RUNC_BIN --root $WORK/state-runc run --bundle $WORK r </dev/null")
  report "run (vs runc)" "$br" runc "$rr"
  sed -i 's/"true"/"sleep", "1000"/' "$WORK/config.json"
  "$RUNC_BIN" --root "$WORK/state-runc" run -d --bundle "$WORK" bench-exec </dev/null >/dev/null 2>&1
  re=$(median_ms : "$RUNC_BIN --root $WORK/state-runc exec bench-exec true </dev/null")
  report "exec true (vs runc)" "$be" runc "$re"
  "$RUNC_BIN" --root "$WORK/state-runc" delete --force bench-exec
fi

if command -v containerd >/dev/null && [ -n "$RUNC_BIN" ]; then
  cat >"$WORK/containerd.toml" <<CONF
version = 2
root = "$WORK/ctrd/root"
state = "$WORK/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$WORK/ctrd/containerd.sock"
CONF
  containerd --config "$WORK/containerd.toml" >"$WORK/containerd.log" 2>&1 &
  CTRD_PID=$!
  CTR="ctr --address $WORK/ctrd/containerd.sock"
  for _ in $(seq 100); do $CTR version >/dev/null 2>&1 && break; sleep 0.1; done
  $CTR image pull --plain-http "$IMAGE" >/dev/null
  cb=$(median_ms : "$CTR run --rm --runc-binary $BR $IMAGE cb true")
  cr=$(median_ms : "$CTR run --rm --runc-binary $RUNC_BIN $IMAGE cr true")
  report "ctr run --rm true (vs runc)" "$cb" runc "$cr"
fi
