#!/usr/bin/env bash
# Writes the few files the image has besides the binaries into DIR: a
# non-root user (65532), name-service order, and the CA bundle of the build
# host (for pulsar+ssl:// brokers with public certificates).
set -euo pipefail
dir="${1:?usage: rootfs.sh DIR}"
mkdir -p "$dir/etc/ssl/certs" "$dir/tmp"
chmod 1777 "$dir/tmp"
echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > "$dir/etc/passwd"
echo 'nonroot:x:65532:' > "$dir/etc/group"
echo 'hosts: files dns' > "$dir/etc/nsswitch.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
fi
