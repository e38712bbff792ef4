#!/bin/bash
# Interop checks of berth's transfer commands (save/load, push, export, diff) against the real
# tools: docker, skopeo and podman, each only when installed (and, for docker, when dockerd
# answers). Needs root and the fixture registries (tests/fixtures/setup.sh).
#
#   tests/interop.sh            # uses target/debug/berth (cargo build first)
#   BERTH=/path/to/berth tests/interop.sh
#
# KEEP=1 keeps the work directory (archives, stores) for a look afterwards.
# Prints PASS/FAIL/SKIP per check and exits non-zero if any check failed. Everything it creates
# lives in a temp dir and in repositories named interop-<pid>-… on the fixture registry.
set -u
cd "$(dirname "$0")/.."
BERTH=$(realpath "${BERTH:-target/debug/berth}")
REG=127.0.0.1:5000
WORK=$(mktemp -d /var/tmp/berth-interop.XXXXXX)
TAG=interop-$$
PASS=0 FAIL=0 SKIP=0
cleanup() {
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        docker rm -f "$TAG-c" "$TAG-d" >/dev/null 2>&1
        docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "$TAG|^berth-interop" |
            xargs -r docker rmi -f >/dev/null 2>&1
    fi
    if command -v podman >/dev/null; then
        podman rmi -f "localhost/berth-interop:commit" "$REG/busybox:latest" >/dev/null 2>&1
    fi
    if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

b() { "$BERTH" --root "$WORK/store" "$@"; }
b2() { "$BERTH" --root "$WORK/store2" "$@"; }

check() {
    local name=$1
    shift
    if "$@" >"$WORK/out" 2>&1; then
        echo "PASS  $name"
        PASS=$((PASS + 1))
    else
        echo "FAIL  $name"
        sed 's/^/        /' "$WORK/out" | tail -15
        FAIL=$((FAIL + 1))
    fi
}
skip() {
    echo "SKIP  $1 ($2)"
    SKIP=$((SKIP + 1))
}
id_of() { # berth image ID of a tag, from a store root
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]+"/repositories.json"))["tags"][sys.argv[2]])' "$1" "$2"
}
# name type mode owner link, one line per tar entry, sorted (mtimes left out on purpose)
listing() {
    python3 - "$1" <<'EOF'
import sys, tarfile
rows = []
for m in tarfile.open(sys.argv[1]):
    kind = {tarfile.DIRTYPE: 'd', tarfile.SYMTYPE: 'l', tarfile.LNKTYPE: 'h', tarfile.CHRTYPE: 'c',
            tarfile.FIFOTYPE: 'p'}.get(m.type, 'f')
    rows.append(f"{m.name.rstrip('/')} {kind} {m.mode:o} {m.uid}:{m.gid} {m.linkname}")
print("\n".join(sorted(rows)))
EOF
}

bash tests/fixtures/setup.sh || { echo "fixtures failed"; exit 1; }
b pull -q $REG/busybox:latest >/dev/null
b pull -q $REG/multilayer:latest >/dev/null
STEPS='touch /new; rm /etc/group; echo x >> /etc/hostname; mkdir -p /a/b; echo hi > /a/b/c; rm -rf /var; mkdir /var; echo y > /var/x'
b run --name c1 $REG/busybox:latest sh -c "$STEPS"
b commit -m "interop" -a "berth" c1 berth-interop:commit >/dev/null

# ---------------------------------------------------------------- docker
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    docker pull -q $REG/busybox:latest >/dev/null
    docker run --name "$TAG-c" $REG/busybox:latest sh -c "$STEPS"

    docker_loads_berth_save() {
        b save -o "$WORK/berth.tar" berth-interop:commit $REG/multilayer:latest &&
            docker load -i "$WORK/berth.tar" &&
            [ "$(docker inspect -f '{{.Id}}' berth-interop:commit)" = "$(id_of "$WORK/store" docker.io/library/berth-interop:commit)" ] &&
            [ "$(docker inspect -f '{{.Id}}' $REG/multilayer:latest)" = "$(id_of "$WORK/store" $REG/multilayer:latest)" ] &&
            [ "$(docker run --rm berth-interop:commit cat /a/b/c)" = hi ] &&
            ! docker run --rm berth-interop:commit test -e /etc/group
    }
    check "docker load reads berth save (IDs equal, runs, deletion hidden)" docker_loads_berth_save

    berth_loads_docker_save() {
        docker save -o "$WORK/docker.tar" $REG/busybox:latest "$REG/multilayer:latest" &&
            b2 load -i "$WORK/docker.tar" &&
            [ "$(docker inspect -f '{{.Id}}' $REG/busybox:latest)" = "$(id_of "$WORK/store2" $REG/busybox:latest)" ] &&
            [ "$(docker inspect -f '{{.Id}}' $REG/multilayer:latest)" = "$(id_of "$WORK/store2" $REG/multilayer:latest)" ] &&
            [ "$(b2 run --rm $REG/multilayer:latest ls /ml | wc -l)" -gt 3 ]
    }
    check "berth load reads docker save (legacy layout, IDs equal)" berth_loads_docker_save

    docker_pulls_berth_push() {
        local name=$REG/$TAG/pushed:v1
        b commit c1 "$name" >/dev/null && b push "$name" &&
            docker pull -q "$name" &&
            [ "$(docker inspect -f '{{.Id}}' "$name")" = "$(id_of "$WORK/store" "$name")" ] &&
            [ "$(docker run --rm "$name" cat /var/x)" = y ]
    }
    check "docker pull of what berth pushed (same image ID, runs)" docker_pulls_berth_push

    berth_pulls_docker_push() {
        local name=$REG/$TAG/from-docker:v1
        docker commit "$TAG-c" "$name" >/dev/null && docker push -q "$name" >/dev/null &&
            b2 pull -q "$name" &&
            [ "$(docker inspect -f '{{.Id}}' "$name")" = "$(id_of "$WORK/store2" "$name")" ] &&
            [ "$(b2 run --rm "$name" cat /a/b/c)" = hi ]
    }
    check "berth pull of a docker commit+push (whiteouts, opaque dir)" berth_pulls_docker_push

    same_diff() {
        diff <(docker diff "$TAG-c" | sort) <(b diff c1 | sort)
    }
    check "diff: same changes as docker diff after the same steps" same_diff

    same_diff_debian() {
        local steps='echo a > /root/f; ln /root/f /root/g; rm -rf /usr/share/doc; mkdir -p /usr/share/doc/x; rm /etc/issue; mkfifo /tmp/ff; chown 1000:1000 /tmp/ff; chmod 700 /srv'
        docker pull -q $REG/debian:bookworm >/dev/null && b pull -q $REG/debian:bookworm >/dev/null &&
            docker run --name "$TAG-d" $REG/debian:bookworm bash -c "$steps" &&
            b run --name d1 $REG/debian:bookworm bash -c "$steps" &&
            diff <(docker diff "$TAG-d" | sort) <(b diff d1 | sort) &&
            docker export -o "$WORK/dd.tar" "$TAG-d" && b export -o "$WORK/bd.tar" d1 &&
            diff <(listing "$WORK/dd.tar") <(listing "$WORK/bd.tar")
    }
    check "diff and export of nested changes in debian equal docker's" same_diff_debian

    export_import_both_ways() {
        b export c1 | docker import - berth-interop:imported >/dev/null &&
            [ "$(docker run --rm berth-interop:imported cat /a/b/c)" = hi ] &&
            docker export "$TAG-c" | b import -m "from docker" - from-docker:1 >/dev/null &&
            [ "$(b run --rm from-docker:1 cat /a/b/c)" = hi ] &&
            b save berth-interop:commit | docker load -q | grep -q "Loaded image: berth-interop:commit"
    }
    check "docker import of berth export, berth import of docker export, save | docker load" export_import_both_ways

    same_export() {
        docker export -o "$WORK/d-export.tar" "$TAG-c" && b export -o "$WORK/b-export.tar" c1 &&
            diff <(listing "$WORK/d-export.tar") <(listing "$WORK/b-export.tar")
    }
    check "export: same entries/types/modes/owners/links as docker export" same_export
else
    skip "docker checks" "docker not installed or dockerd not running"
fi

# ---------------------------------------------------------------- skopeo
if command -v skopeo >/dev/null; then
    b save -o "$WORK/berth.tar" berth-interop:commit $REG/multilayer:latest >/dev/null
    check "skopeo inspect docker-archive: of berth save" \
        skopeo inspect "docker-archive:$WORK/berth.tar:berth-interop:commit"
    check "skopeo copy docker-archive: (berth save) -> oci: layout" \
        skopeo copy -q "docker-archive:$WORK/berth.tar:$REG/multilayer:latest" "oci:$WORK/oci-layout:x"
    skopeo_to_berth() {
        local kind=$1 src=$2
        rm -rf "$WORK/store3"
        skopeo copy -q --src-tls-verify=false "docker://$REG/$src" "$kind:$WORK/sk.tar:multilayer:x" &&
            "$BERTH" --root "$WORK/store3" load -i "$WORK/sk.tar" &&
            [ "$(id_of "$WORK/store3" docker.io/library/multilayer:x)" = "sha256:$(skopeo inspect --tls-verify=false --raw --config "docker://$REG/$src" | sha256sum | cut -d' ' -f1)" ]
        local rc=$?
        rm -f "$WORK/sk.tar"
        return $rc
    }
    check "berth load of skopeo docker-archive:" skopeo_to_berth docker-archive multilayer:latest
    check "berth load of skopeo oci-archive:" skopeo_to_berth oci-archive multilayer:oci
    check "skopeo inspect of what berth pushed" \
        skopeo inspect --tls-verify=false "docker://$REG/$TAG/pushed:v1"
else
    skip "skopeo checks" "skopeo not installed"
fi

# ---------------------------------------------------------------- podman
if command -v podman >/dev/null; then
    podman_loads_berth_save() {
        podman load -i "$WORK/berth.tar" &&
            [ "sha256:$(podman inspect -f '{{.Id}}' localhost/berth-interop:commit 2>/dev/null || podman inspect -f '{{.Id}}' berth-interop:commit)" = "$(id_of "$WORK/store" docker.io/library/berth-interop:commit)" ]
    }
    check "podman load reads berth save (same ID)" podman_loads_berth_save
    berth_loads_podman_save() {
        local fmt=$1
        rm -rf "$WORK/store4" "$WORK/podman.tar"
        podman pull -q --tls-verify=false $REG/busybox:latest >/dev/null &&
            podman save --format "$fmt" -o "$WORK/podman.tar" $REG/busybox:latest &&
            "$BERTH" --root "$WORK/store4" load -i "$WORK/podman.tar" &&
            [ "$(ls "$WORK/store4/images" | wc -l)" = 1 ] &&
            [ "$("$BERTH" --root "$WORK/store4" run --rm "$(ls "$WORK/store4/images" | sed 's/.json//')" echo ok)" = ok ]
    }
    check "berth load of podman save (docker-archive)" berth_loads_podman_save docker-archive
    check "berth load of podman save (oci-archive)" berth_loads_podman_save oci-archive
else
    skip "podman checks" "podman not installed"
fi

echo "interop: $PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" = 0 ]
