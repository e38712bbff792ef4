#!/usr/bin/env bash
# `images` over a large store: 1000 tags over 200 images (40 of them dangling), built
# synthetically (index, image records and config blobs written directly, no layers), then
# `berth images` and `berth images -q -f dangling=true` timed beside `docker images` with 1000
# tags (docker's tags all point at the fixture images it has; tagging is done once and undone
# at the end). Medians of $RUNS runs. Target: ≤ 10 ms each for berth.
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
ROOT=$(mktemp -d /var/tmp/berth-bench-images.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT

python3 - "$ROOT/s" <<'PY'
import hashlib, json, os, sys, random
root = sys.argv[1]
for d in ("blobs/sha256", "layers", "images", "tmp", "locks"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
os.chmod(root, 0o700)
random.seed(1)
tags, summaries = {}, {}
for i in range(200):
    diff_ids = ["sha256:" + hashlib.sha256(f"layer-{i}-{j}".encode()).hexdigest() for j in range(5)]
    created = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"
    labels = {"com.example.version": f"0.{i % 7}"} if i % 3 == 0 else {}
    config = json.dumps({"created": created, "architecture": "amd64", "os": "linux",
                         "config": {"Labels": labels or None, "Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    image_id = "sha256:" + hashlib.sha256(config).hexdigest()
    with open(os.path.join(root, "blobs/sha256", image_id[7:]), "wb") as f:
        f.write(config)
    sizes = [1_000_000 + 1000 * i + j for j in range(5)]
    repo = f"registry.example.com/team{i % 20}/app{i}"
    digests = [] if i < 40 else [f"{repo}@sha256:" + hashlib.sha256(f"m{i}".encode()).hexdigest()]
    record = {"id": image_id, "layers": [{"diff_id": d, "size": s} for d, s in zip(diff_ids, sizes)],
              "created": created, "size": sum(sizes), "repo_digests": digests}
    with open(os.path.join(root, "images", image_id[7:] + ".json"), "w") as f:
        json.dump(record, f)
    summary = {"created": created, "size": sum(sizes), "layers": diff_ids, "layer_sizes": sizes}
    if labels:
        summary["labels"] = labels
    if digests:
        summary["repo_digests"] = digests
    summaries[image_id] = summary
    if i >= 40:  # 40 dangling images, 160 tagged ones with 1000 tags between them
        n = 1000 // 160 + (1 if (i - 40) < 1000 % 160 else 0)
        for t in range(n):
            tags[f"{repo}:v{t}"] = image_id
with open(os.path.join(root, "repositories.json"), "w") as f:
    json.dump({"tags": tags, "images": summaries}, f, indent=2)
print(f"{len(tags)} tags over {len(summaries)} images", file=sys.stderr)
PY

b1=$(median_ms true "$BERTH --root $ROOT/s images")
b2=$(median_ms true "$BERTH --root $ROOT/s images -q -f dangling=true")
rows=$($BERTH --root "$ROOT/s" images | wc -l)
echo "berth images ($((rows - 1)) rows): median ${b1} ms; images -q -f dangling=true: median ${b2} ms over $RUNS runs"
if have_docker; then
  src=$(docker images -q | head -1)
  if [ -n "$src" ]; then
    for i in $(seq 1 1000); do echo "berth-bench/app$((i % 200)):v$i"; done | xargs -P 8 -I{} docker tag "$src" {}
    d1=$(median_ms true "docker images")
    d2=$(median_ms true "docker images -q -f dangling=true")
    docker images --format '{{.Repository}}:{{.Tag}}' 'berth-bench/*' | xargs -r docker rmi >/dev/null
    report "images (1000 tags)" "$b1" docker "$d1"
    report "images -q -f dangling=true" "$b2" docker "$d2"
  fi
fi
