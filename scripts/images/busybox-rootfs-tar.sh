#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds the built-in `busybox` image's rootfs tarball, reproducibly (same
# bytes, so the same image id, on every build): scripts/mkrootfs-busybox.sh
# into a temporary directory, then a sorted tar with fixed owners and times.
# Usage: busybox-rootfs-tar.sh OUT.tar
set -euo pipefail
out=${1:?usage: busybox-rootfs-tar.sh OUT.tar}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cloison-image-bb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$here/mkrootfs-busybox.sh" "$tmp/rootfs"
tar -C "$tmp/rootfs" --sort=name --owner=0 --group=0 --numeric-owner \
  --mtime=@0 --format=gnu -cf "$tmp/out.tar" .
mv "$tmp/out.tar" "$out"
