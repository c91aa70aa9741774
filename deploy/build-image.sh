#!/usr/bin/env bash
# Builds the loadgen image without pulling anything: static binaries on the
# host (cargo, glibc crt-static), then deploy/Dockerfile.prebuilt (FROM
# scratch) with buildah, podman or docker — whichever is installed
# (Debian: `apt-get install buildah`).
#
#   deploy/build-image.sh [TAG]        # default loadgen:<workspace version>
#
# Prints the image tag as its last line. Then push it where your cluster
# pulls from, e.g. `buildah push loadgen:0.1.0 docker://registry.example/loadgen:0.1.0`.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
tag="${1:-loadgen:${version}}"
target="$(uname -m)-unknown-linux-gnu"
. scripts/env.sh
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" -p agent -p coordinator >&2
out="${CARGO_TARGET_DIR:-target}/$target/release"
for b in agent coordinator; do
    if ldd "$out/$b" 2>&1 | grep -q '=>'; then
        echo "$out/$b is not statically linked" >&2
        exit 1
    fi
done
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$out/agent" "$out/coordinator" "$ctx/"
# Debug line tables stay in the host build; the image gets stripped copies.
if command -v strip >/dev/null; then
    strip "$ctx/agent" "$ctx/coordinator"
fi
bash deploy/rootfs.sh "$ctx/rootfs"
if command -v buildah >/dev/null; then
    # vfs storage and chroot isolation work without privileges or fuse.
    buildah --storage-driver "${STORAGE_DRIVER:-vfs}" bud --isolation chroot -f deploy/Dockerfile.prebuilt -t "$tag" "$ctx" >&2
elif command -v podman >/dev/null; then
    podman build -f deploy/Dockerfile.prebuilt -t "$tag" "$ctx" >&2
elif docker info >/dev/null 2>&1; then
    docker build -f deploy/Dockerfile.prebuilt -t "$tag" "$ctx" >&2
else
    echo "no image builder: install buildah or podman (docker needs a daemon)" >&2
    exit 3
fi
echo "$tag"
