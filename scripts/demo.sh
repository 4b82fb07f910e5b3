#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The main job: set up, build, then, offline from the built-in images:
#  1. launch a container instance from the `busybox` image and print from
#     inside it;
#  2. launch a microVM instance from the same image (Debian's cloud kernel,
#     the image's rootfs as an ext4 virtio disk) and print from inside it.
# The host's /dev/kvm on our machines cannot run a stock kernel (it
# emulates every instruction), so step 2 runs inside the VM lab, a QEMU TCG
# host with nested KVM (tests/lab); with CLOISON_DEMO_VM=host it runs on
# this host's KVM instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
ninja -C build vm-image >/dev/null      # kernel + initramfs of the built-in VM image (cached)

root=$(mktemp -d /tmp/cloison-demo.XXXXXX)
cl() { build/src/cli/cloison --root "$root" "$@"; }
cleanup() { cl delete --force demo-ct >/dev/null 2>&1 || true; rm -rf "$root"; }
trap cleanup EXIT

echo "== a container from the built-in busybox image"
cl launch busybox demo-ct --no-network -- sleep 1000000
cl list
cl exec demo-ct -- sh -c 'echo "hello from $(hostname), I am pid $$ among $(ls /proc | grep -c "^[0-9]") processes, network: $(ls /sys/class/net)"'
cl delete --force demo-ct

echo "== a microVM from the same image"
# (The command reaches the guest on the kernel command line: no double quotes.)
say='echo hello from a microVM: $(uname -sr), $(grep -c ^processor /proc/cpuinfo) vCPUs, root $(grep -m1 /dev/vda /proc/mounts); reboot -f'
if [ "${CLOISON_DEMO_VM:-lab}" = host ]; then
  cl launch busybox demo-vm --vm --no-network --cpus 2 --memory 256M -- /bin/sh -c "$say"
  while ! cl list | grep -q '^demo-vm .*stopped'; do sleep 0.2; done
  cat "$root/instances/demo-vm/console.log"
  cl delete demo-vm
  exit 0
fi
payload=$root/payload.sh
cat > "$payload" <<PAYLOAD
#!/bin/sh
export CLOISON_ROOT=/tmp/cl CLOISON_IMAGE_DATA=/lab/image-data CLOISON_MONITOR=/lab/cloison-monitor
export CLOISON_VMMON=/lab/cloison-vmmon
/lab/cloison launch busybox demo-vm --vm --no-network --cpus 2 --memory 256M -- /bin/sh -c '$say'
/lab/cloison list
i=0; while ! /lab/cloison list | grep -q '^demo-vm .*stopped' && [ \$i -lt 900 ]; do sleep 0.2; i=\$((i+1)); done
grep -v -e '^\[' -e '^$' /tmp/cl/instances/demo-vm/console.log
/lab/cloison delete demo-vm
PAYLOAD
img=build/src/image
/usr/bin/python3 tests/lab/lab.py run --payload "$payload" --timeout 600 \
  --file build/src/cli/cloison:/lab/cloison \
  --file build/src/manager/cloison-monitor:/lab/cloison-monitor \
  --file build/src/manager/cloison-vmmon:/lab/cloison-vmmon \
  --file $img/busybox-rootfs.tar:/lab/image-data/busybox-rootfs.tar \
  --file $img/vmlinuz:/lab/image-data/vmlinuz \
  --file $img/initramfs.cpio.gz:/lab/image-data/initramfs.cpio.gz \
  --file /sbin/mkfs.ext4:/usr/sbin/mkfs.ext4 --file /sbin/resize2fs:/usr/sbin/resize2fs
