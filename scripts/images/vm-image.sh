#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds the built-in VM pieces into OUTDIR:
#   vmlinuz            the Debian cloud kernel (linux-image-cloud-amd64)
#   initramfs.cpio.gz  busybox-static, the virtio/ext4/vsock modules, and an
#                      init that mounts the root disk and switch_roots
#                      (and, given AGENT, the guest agent cloison-agent
#                      that `cloison exec` talks to over vsock, and, given
#                      INIT, cloison-init: PID 1 of instances that run a
#                      command)
# The kernel package is fetched once with `apt-get download` + `dpkg -x`
# into $CLOISON_CACHE (default /var/cache/cloison); after that it is offline.
# Usage: scripts/images/vm-image.sh OUTDIR [AGENT [INIT]]
set -euo pipefail
out=${1:?usage: vm-image.sh OUTDIR [AGENT [INIT]]}
agent=${2:-}
init_bin=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
cache=${CLOISON_CACHE:-/var/cache/cloison}
mkdir -p "$cache" "$out"

pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
if [ -z "$pkg" ]; then
  # No package lists yet, or an old cached tree is all we have.
  tree=$(ls -d "$cache"/kernel-linux-image-* 2>/dev/null | sort | tail -1 || true)
  [ -n "$tree" ] || { echo "vm-image: apt-cache knows no linux-image-cloud-amd64 (run apt-get update)" >&2; exit 1; }
else
  tree=$cache/kernel-$pkg
fi
if [ ! -d "$tree" ]; then
  tmp=$(mktemp -d "$cache/kernel-tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp" # apt-get download drops to the _apt user
  (cd "$tmp" && apt-get download -q "$pkg" >/dev/null)
  dpkg -x "$tmp"/*.deb "$tmp/tree"
  rel=$(ls "$tmp/tree/lib/modules")
  depmod -b "$tmp/tree" "$rel"
  mv "$tmp/tree" "$tree"
  rm -rf "$tmp"
  trap - EXIT
fi
rel=$(ls "$tree/lib/modules")
moddir=$tree/lib/modules/$rel

# Modules in load order, dependencies first (modules.dep from depmod).
# button + evdev: the ACPI power button as an input device (cloison-init
# stops the instance's command when it is pressed: `cloison stop`)
# fuse + virtiofs: the rootfs of VM-isolated containers (cloison.ctrfs=), and shared folders (cloison.fs=)
wanted="virtio_pci virtio_blk virtio_net virtio_console virtio-rng ext4 vmw_vsock_virtio_transport button evdev fuse virtiofs"
declare -A seen=()
order=()
add_module() { # path relative to $moddir
  local m=$1 deps d
  [ -n "${seen[$m]:-}" ] && return
  seen[$m]=1
  deps=$(awk -v m="$m:" '$1 == m { $1 = ""; print }' "$moddir/modules.dep")
  for d in $deps; do add_module "$d"; done
  order+=("$m")
}
for name in $wanted; do
  path=$(awk -v n="/$name.ko" 'index($1, n ":") { sub(":", "", $1); print $1; exit }' "$moddir/modules.dep")
  if [ -z "$path" ]; then
    grep -q "/$name.ko$" "$moddir/modules.builtin" && continue
    echo "vm-image: kernel $rel has no module $name" >&2
    exit 1
  fi
  add_module "$path"
done

stage=$(mktemp -d "${TMPDIR:-/tmp}/cloison-vm-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,newroot,etc,lib/modules}
cp "$(dpkg -L busybox-static | grep -m1 '/bin/busybox$')" "$stage/bin/busybox"
for applet in $("$stage/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$stage/bin/$applet"
done
: > "$stage/etc/modules"
for m in "${order[@]}"; do
  base=$(basename "$m")
  case "$base" in
    *.ko.xz) xz -dc "$moddir/$m" > "$stage/lib/modules/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) zstd -qdc "$moddir/$m" > "$stage/lib/modules/${base%.zst}"; base=${base%.zst} ;;
    *) cp "$moddir/$m" "$stage/lib/modules/$base" ;;
  esac
  echo "$base" >> "$stage/etc/modules"
done
install -m 0755 "$here/vm-init.sh" "$stage/init"
[ -z "$agent" ] || install -s -m 0755 "$agent" "$stage/sbin/cloison-agent"
[ -z "$init_bin" ] || install -s -m 0755 "$init_bin" "$stage/sbin/cloison-init"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n > "$out/initramfs.cpio.gz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
cp "$tree/boot/vmlinuz-$rel" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$rel" > "$out/kernel-release"
