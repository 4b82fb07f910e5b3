#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Builds a minimal busybox root filesystem in DIR from Debian's
# busybox-static: the offline base of the built-in `busybox` image.
# Usage: scripts/mkrootfs-busybox.sh DIR
set -euo pipefail
dir=${1:?usage: mkrootfs-busybox.sh DIR}
bb=$(dpkg -L busybox-static | grep -m1 '/bin/busybox$')
mkdir -p "$dir"/{bin,sbin,etc,dev,proc,sys,tmp,root,home,var/log,run,usr/bin,usr/sbin}
chmod 1777 "$dir/tmp"
cp "$bb" "$dir/bin/busybox"
for applet in $("$dir/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
done
cat > "$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$dir/etc/group" <<'G'
root:x:0:
daemon:x:1:
nogroup:x:65534:
G
echo "cloison" > "$dir/etc/hostname"
: > "$dir/etc/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$dir/etc/hosts"
