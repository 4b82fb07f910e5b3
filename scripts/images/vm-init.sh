#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The init of cloison's VM initramfs: loads the virtio and ext4 modules,
# mounts the root disk built from an image (cl_img_build_vm_disk) and
# switch_roots into it.  Kernel command line:
#   cloison.root=/dev/vda   the root disk (default /dev/vda; root= too)
#   cloison.init=PATH       what to run (default: /sbin/init, /bin/init, /bin/sh;
#                           init= too)
#   cloison.ro              mount the root read-only (ro too; rw is the default)
#   cloison.shell           stay in the initramfs with a shell (debugging)
#   cloison.fs=TAG:PATH[:ro]   mount the virtio-fs share TAG at PATH in the root
#                              (shared folders, directory volumes)
#   cloison.ctrfs=TAG          a VM-isolated container: the root is the
#                              virtio-fs share TAG (the bundle's rootfs), and the
#                              guest agent is PID 1 (cloison-agent --pid1): it
#                              mounts the share and runs the container's
#                              processes as the host asks
#   cloison.vol=vdX:PATH[:ro]  mount the ext4 disk /dev/vdX at PATH (volumes)
#   cloison.hostname=NAME      the guest's hostname (the instance's name)
#   cloison.template           a VM instance's warm template (docs/templates.md):
#                              the disk and NIC drivers wait, and so does
#                              everything below, until the clone's "go"
#                              (cloison-agent --go) gives the instance's own
#                              arguments, which replace this command line
# Arguments after `--` on the command line are passed to the init.
# The guest agent (/sbin/cloison-agent, for `cloison exec`) starts before
# switch_root, with a handle on the new root: it serves vsock port 1024 in
# the background and runs each command chrooted into the instance's root.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# ptys for `cloison exec` (the agent opens /dev/ptmx of this /dev), as a
# container finds /dev/pts mounted
mkdir -p /dev/pts
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
cmdline=/proc/cmdline template=
grep -qw cloison.template /proc/cmdline && template=1
load_modules() { # $1: the modules to load (virtio_blk and virtio_net: a template's wait)
  for m in $(cat /etc/modules); do
    case "$m" in virtio_blk.ko | virtio_net.ko) [ "$1" = devices ] || continue ;;
      *) [ "$1" = devices ] && continue ;; esac
    insmod /lib/modules/$m 2>/dev/null || echo "cloison-init: insmod $m failed" > /dev/console
  done
}
load_modules rest
if [ -n "$template" ]; then
  # snapshotted here: no disk or NIC has been read; a clone goes on with
  # its own (re-pointed by the VMM) once the host sends its arguments
  if ! /sbin/cloison-agent --go /cloison.go; then
    echo "cloison-init: no go from the host" > /dev/console
    exec /bin/sh
  fi
  cmdline=/cloison.go
  old_ifs=$IFS
  IFS='
'
  set -f
  # shellcheck disable=SC2046
  set -- $(cat /cloison.go.args 2>/dev/null)
  set +f
  IFS=$old_ifs
fi
load_modules devices
root=/dev/vda init= mode=rw shell= fs=
for arg in $(cat $cmdline); do
  case "$arg" in
    cloison.root=*) root=${arg#cloison.root=} ;;
    root=/dev/*) root=${arg#root=} ;;
    cloison.init=*) init=${arg#cloison.init=} ;;
    init=*) init=${arg#init=} ;;
    cloison.ro|ro) mode=ro ;;
    rw) mode=rw ;;
    cloison.shell) shell=1 ;;
    cloison.ctrfs=*) fs=${arg#cloison.ctrfs=} ;;
    cloison.hostname=*) hostname "${arg#cloison.hostname=}" ;;
  esac
done
[ -n "$shell" ] && exec /bin/sh
if [ -n "$fs" ]; then
  # the agent mounts the share before it says ready: a template is
  # snapshotted with the FUSE session up and every clone's share is its
  # container's rootfs (docs/templates.md)
  exec /sbin/cloison-agent --pid1 --fs "$fs" /newroot
fi
i=0
while [ ! -b "$root" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if ! mount -t ext4 -o "$mode" "$root" /newroot; then
  echo "cloison-init: cannot mount $root" > /dev/console
  exec /bin/sh
fi
# Shared folders and volumes, in the new root before anything runs there.
for arg in $(cat $cmdline); do
  case "$arg" in
    --) break ;;
    cloison.fs=* | cloison.vol=*)
      spec=${arg#cloison.*=} src=${spec%%:*} path=${spec#*:} opt=rw
      case "$path" in *:ro) path=${path%:ro} opt=ro ;; esac
      mkdir -p "/newroot$path"
      if [ "${arg#cloison.fs=}" != "$arg" ]; then
        mount -t virtiofs -o "$opt" "$src" "/newroot$path"
      else
        i=0
        while [ ! -b "/dev/$src" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        mount -t ext4 -o "$opt" "/dev/$src" "/newroot$path"
      fi || echo "cloison-init: cannot mount $src at $path" > /dev/console
      ;;
  esac
done
# A command of the instance's (cloison.init) runs under cloison-init, our
# PID 1: found through PATH, stopped on the power button, and the disk
# written back when it exits.  Without one, the image's own init is PID 1.
supervise=
[ -n "$init" ] && [ -x /sbin/cloison-init ] && supervise=1
if [ -z "$init" ]; then
  for c in /sbin/init /bin/init /bin/sh; do
    if [ -x "/newroot$c" ] || [ -L "/newroot$c" ]; then init=$c; break; fi
  done
fi
mkdir -p /newroot/dev /newroot/proc /newroot/sys
if [ -x /sbin/cloison-agent ]; then
  /sbin/cloison-agent /newroot || echo "cloison-init: the guest agent did not start" > /dev/console
fi
# The image's command may be its init (cloison.init): it finds /proc, /sys
# and /dev mounted, as a container's process does.
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
[ -n "$supervise" ] && exec /sbin/cloison-init /newroot "$init" "$@"
exec switch_root /newroot "$init" "$@"
