# SPDX-License-Identifier: Apache-2.0
"""cloison-vmm in the VM lab: a stock Debian kernel under the lab's nested
KVM, booted by cloison-vmm (issue 3).  One lab boot runs every monitor run
below (each with a timeout) and reports one check per feature; each test
asserts on real guest output.

Monitor runs: bzImage with 1 vCPU (+ virtio-rng, date), the ELF vmlinux
extracted from the same bzImage with 2 vCPUs (the guest sees 2 CPUs), ext4
on virtio-blk written (serial=ID) then read back read-only, virtio-net,
virtio-console, virtio-vsock, poweroff, panic, graceful shutdown through
the ACPI power button (PUT /vm/state "shutdown"), and a workload
snapshotted mid-way and restored in a new process.  (This file replaces the former
test_lab_vmm_boot.py, which booted the same things in a second lab run.)

CLOISON_LAB_VMM=qemu runs the same guest scripts under QEMU -M pc instead,
to prove the tests themselves (the snapshot and panic tests need
cloison-vmm and are skipped then).
"""
import os
import re

import pytest

import lab as lab_module
from lab_vmm import extract_vmlinux

VMM_KIND = os.environ.get("CLOISON_LAB_VMM", "cloison")
BUILD_VMM = os.path.join(lab_module.ROOT, "build", "src", "cli", "cloison-vmm")
RUN_TIMEOUT = 40          # seconds per monitor run (a boot takes 4-15 s here, by load)
# cloison-vmm's default command line (CL_VMM_DEFAULT_CMDLINE), plus quiet
CMDLINE = ("console=ttyS0 reboot=k panic=-1 pci=conf1 i8042.noaux i8042.nomux 8250.nr_uarts=1 "
           "no_timer_check cryptomgr.notests quiet")
NET_HOST, NET_GUEST = "10.77.0.1", "10.77.0.2"   # exists only inside the lab
COUNT_TO = 40
DISK_SERIAL = "vmmcore"
NET_MAC = "52:54:00:12:34:56"

GUEST = r"""#!/bin/sh
t=$(sed -n 's/.*cloison\.test=\([a-z0-9_]*\).*/\1/p' /proc/cmdline)
echo "guest: test=$t cpus=$(grep -c ^processor /proc/cpuinfo)"
wait_dev() { i=0; while [ ! -e "$1" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; [ -e "$1" ]; }
case "$t" in
boot)
    echo "guest: date=$(date -u +%%Y-%%m-%%d)";;
disk_write)
    wait_dev /dev/vda && mount -t ext4 /dev/vda /mnt &&
    echo "written-by-first-boot token-$(cat /sys/block/vda/serial)" > /mnt/hello.txt && sync &&
    umount /mnt && echo "guest: disk written";;
disk_read)
    wait_dev /dev/vda && mount -t ext4 -o ro /dev/vda /mnt && echo "guest: found=$(cat /mnt/hello.txt)"
    umount /mnt;;
net)
    wait_dev /sys/class/net/eth0 && echo "guest: mac=$(cat /sys/class/net/eth0/address)" &&
    ip link set eth0 up && ip addr add %(guest)s/24 dev eth0 &&
    # busybox-static's wget crashes resolving even a numeric address: speak HTTP with nc.
    echo "guest: http=$(printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 10 %(host)s 8077 | tail -1)"
    echo "hello-from-guest" | nc -w 5 %(host)s 8078; echo "guest: nc=$?";;
console)
    if wait_dev /dev/hvc0; then echo "guest: hello-on-hvc0" > /dev/hvc0; echo "guest: hvc0 present"
    else echo "guest: no hvc0"; fi;;
poweroff)
    poweroff -f;;
power_button)
    # button (fixed ACPI power button) and evdev are among the guest's modules.
    if /bin/powerkey "guest: waiting for the power button"; then
        echo "guest: power button pressed, sci: $(grep acpi /proc/interrupts | tr -s ' ')"
        poweroff -f
    fi;;
panic)
    echo c > /proc/sysrq-trigger;;
esac
case "$(cat /proc/cmdline)" in *cloison.rng*)
    wait_dev /dev/hwrng
    echo "guest: rng_current=$(cat /sys/class/misc/hw_random/rng_current)"
    echo "guest: rng_bytes=$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | wc -c)";;
esac
case "$t" in
vsock)
    /bin/vsock connect 2 5000 ping-from-guest;;
count)
    wait_dev /dev/vda && mount -t ext4 /dev/vda /mnt && echo "workload: disk mounted"
    s=0; i=1
    while [ $i -le %(count)d ]; do s=$((s+i)); echo "count=$i"; sleep 0.2; i=$((i+1)); done
    echo "workload: done total=$s"
    echo "$s" > /mnt/total.txt && sync && umount /mnt && mount -t ext4 /dev/vda /mnt &&
    echo "workload: disk total=$(cat /mnt/total.txt)"; umount /mnt;;
esac
""" % {"host": NET_HOST, "guest": NET_GUEST, "count": COUNT_TO}


def vmm_command(test, cpus=1, disk=None, net=None, console=None, rng=False, api=None, vsock=None,
                kernel="/guest/vmlinuz", serial=None, readonly=False, mac=None, debug=False):
    """The monitor command line, for cloison-vmm or (validation) QEMU."""
    cmdline = "%s cloison.test=%s" % (CMDLINE, test) + (" cloison.rng" if rng else "")
    if VMM_KIND == "qemu":
        c = ("qemu-system-x86_64 -enable-kvm -M pc -cpu host -m 256 -nographic -no-reboot "
             "-monitor none -vga none -nic none -kernel %s -initrd /guest/initrd "
             "-smp %d -append '%s'" % (kernel, cpus, cmdline))
        if disk:
            c += " -drive file=%s,format=raw,if=virtio%s%s" % (
                disk, ",serial=" + serial if serial else "", ",readonly=on" if readonly else "")
        if net:
            c += (" -netdev tap,id=n0,ifname=%s,script=no,downscript=no"
                  " -device virtio-net-pci,netdev=n0,romfile=%s" % (net, ",mac=" + mac if mac else ""))
        if console == "virtio":
            c += (" -device virtio-serial-pci -chardev file,id=vc0,path=/tmp/hvc0.out"
                  " -device virtconsole,chardev=vc0")
        if rng:
            c += " -device virtio-rng-pci"
        if vsock:
            c += " -device vhost-vsock-pci,guest-cid=%d" % vsock
        return c
    c = ("/lab/cloison-vmm --kernel %s --initrd /guest/initrd --memory 256M "
         "--cpus %d --cmdline '%s'" % (kernel, cpus, cmdline))
    if disk:
        c += " --disk " + disk + (",ro" if readonly else "") + (",serial=" + serial if serial else "")
    if net:
        c += " --net tap=" + net + (",mac=" + mac if mac else "")
    if console:
        c += " --console " + console
    if rng:
        c += " --rng"
    if api:
        c += " --api-socket " + api
    if vsock:
        c += " --vsock %d" % vsock
    if debug:
        c += " --debug"
    return c


def payload():
    t = RUN_TIMEOUT
    p = ["#!/bin/sh", ". /lab/lib.sh", "STAMP='/lab/stamp -t %d --'" % t,
         "[ -x /lab/cloison-vmm ] || echo 'lab: cloison-vmm is not built'"]
    p.append("check boot_1cpu $STAMP %s" % vmm_command("boot", cpus=1, rng=True))
    # The 2-vCPU boot also proves the ELF vmlinux path (same kernel build).
    p.append("check boot_2cpu $STAMP %s" % vmm_command("boot", cpus=2, kernel="/guest/vmlinux"))
    # ext4 disk made in the lab with the host's mkfs.ext4.
    p.append("dd if=/dev/zero of=/tmp/disk.img bs=1M count=0 seek=64 2>/dev/null; "
             "mkfs.ext4 -q -F /tmp/disk.img || echo 'lab: mkfs.ext4 failed'")
    p.append("check disk_write $STAMP %s" % vmm_command("disk_write", disk="/tmp/disk.img",
                                                         serial=DISK_SERIAL))
    p.append("check disk_read $STAMP %s" % vmm_command("disk_read", disk="/tmp/disk.img",
                                                        serial=DISK_SERIAL, readonly=True))
    # virtio-net: a tap in the lab, busybox httpd and nc listening on it.
    p.append(r"""
tunctl -t labtap0 >/dev/null && ip addr add %(host)s/24 dev labtap0 && ip link set labtap0 up
mkdir -p /srv/www && echo lab-httpd-says-hi > /srv/www/index.html
httpd -f -p %(host)s:8077 -h /srv/www & httpd_pid=$!
nc -l -p 8078 > /tmp/from-guest.txt & nc_pid=$!
check net sh -c "$STAMP %(cmd)s; echo lab: received=\$(cat /tmp/from-guest.txt)"
kill $httpd_pid $nc_pid 2>/dev/null
""" % {"host": NET_HOST, "cmd": vmm_command("net", net="labtap0", mac=NET_MAC)})
    p.append("check console sh -c \"$STAMP %s; cat /tmp/hvc0.out 2>/dev/null; true\""
             % vmm_command("console", console="virtio"))
    p.append("check poweroff $STAMP %s" % vmm_command("poweroff"))
    p.append("check panic $STAMP %s" % vmm_command("panic"))
    # Graceful shutdown: the API presses the ACPI power button, the guest
    # sees KEY_POWER and powers off (--debug: the exit reason and metrics
    # on stderr).
    p.append(r"""
power_button() {
    rm -f /tmp/pb.sock
    $STAMP %(cmd)s > /tmp/pb.log 2>&1 & run_pid=$!
    if wait_for_line /tmp/pb.log 'guest: waiting for the power button' %(t)d; then
        echo "lab: bad: $(/lab/uhttp /tmp/pb.sock PUT /vm/state '{"state":"off"}' | tr '\n' ' ')"
        echo "lab: shutdown: $(/lab/uhttp /tmp/pb.sock PUT /vm/state '{"state":"shutdown"}' | tr '\n' ' ')"
    else
        echo "lab: the guest never waited for the power button"
    fi
    wait $run_pid
    cat /tmp/pb.log
}
check power_button power_button
""" % {"cmd": vmm_command("power_button", api="/tmp/pb.sock", debug=True), "t": RUN_TIMEOUT})
    # virtio-vsock through the lab host's vhost-vsock: the guest (CID 3)
    # connects to the lab host (CID 2).
    p.append("/lab/vsock listen 5000 > /tmp/vsock-host.txt 2>&1 & vsock_pid=$!")
    p.append("check vsock sh -c \"$STAMP %s; sed 's/^/lab: /' /tmp/vsock-host.txt\"" % vmm_command("vsock", vsock=3))
    p.append("kill $vsock_pid 2>/dev/null")
    # Snapshot in the middle of a workload, restore in a new process.
    p.append(r"""
snapshot() {
    rm -rf /tmp/snap /tmp/api.sock; mkdir -p /tmp/snap
    dd if=/dev/zero of=/tmp/snapdisk.img bs=1M count=0 seek=32 2>/dev/null
    mkfs.ext4 -q -F /tmp/snapdisk.img || echo "lab: mkfs.ext4 failed"
    $STAMP %(cmd)s > /tmp/snap-run.log 2>&1 & run_pid=$!
    if wait_for_line /tmp/snap-run.log 'count=10$' %(t)d; then
        echo "lab: pause: $(/lab/uhttp /tmp/api.sock PUT /vm/state '{"state":"paused"}' | tr '\n' ' ')"
        echo "lab: create: $(/lab/uhttp /tmp/api.sock PUT /snapshot/create '{"dir":"/tmp/snap"}' | tr '\n' ' ')"
    else
        echo "lab: the workload never reached count=10"
    fi
    kill $run_pid 2>/dev/null; wait $run_pid
    sed 's/^/first: /' /tmp/snap-run.log
    echo "lab: snapshot files: $(ls /tmp/snap | tr '\n' ' ')"
    $STAMP /lab/cloison-vmm --restore /tmp/snap 2>&1 | sed 's/^/restored: /'
}
check snapshot snapshot
""" % {"cmd": vmm_command("count", api="/tmp/api.sock", disk="/tmp/snapdisk.img"), "t": RUN_TIMEOUT})
    return "\n".join(p) + "\n"


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    initrd = str(tmp_path_factory.mktemp("vmm") / "guest.cpio")
    lab.build_guest_initramfs(initrd, GUEST, modules=lab_module.GUEST_MODULES + ["button", "evdev"],
                              files=[(lab.tool("vsock", static=True), "/bin/vsock"),
                                     (lab.tool("powerkey", static=True), "/bin/powerkey")])
    vmlinux = str(tmp_path_factory.mktemp("vmlinux") / "vmlinux")
    extract_vmlinux(lab.guest_kernel(), vmlinux)
    files = lab.guest_files(initrd) + [(vmlinux, "/guest/vmlinux"),
        (lab.tool("stamp"), "/lab/stamp"), (lab.tool("uhttp"), "/lab/uhttp"),
        (lab.tool("vsock"), "/lab/vsock"),
        ("/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4")]
    if VMM_KIND == "qemu":
        files += lab.qemu_files()
    elif os.path.exists(BUILD_VMM):
        files.append((BUILD_VMM, "/lab/cloison-vmm"))
    return lab.run(payload(), files=files, timeout=60 + 13 * (RUN_TIMEOUT + 5), stream=print)



def monitor_output(run, name):
    """The stamped output of a check: assert it ran, return its text."""
    c = run.check(name)
    assert c.rc is not None, c.output
    if VMM_KIND != "qemu" and not os.path.exists(BUILD_VMM):
        pytest.fail("cloison-vmm is not built (%s)" % BUILD_VMM)
    return c.output


def booted(out):
    assert lab_module.GUEST_FIRST_LINE in out, "the guest init never ran:\n" + out
    assert "cloison-guest: exit 0" in out, "the guest script did not finish:\n" + out


def stamp_exit(out):
    m = re.search(r"^stamp: (exit|signal|timeout) ?(\d*) after ([\d.]+)$", out, re.M)
    assert m, out
    return m.group(1), m.group(2), float(m.group(3))


def line_time(out, text):
    for line in out.splitlines():
        m = re.match(r"^\[\s*([\d.]+)\] (.*)$", line)
        if m and text in m.group(2):
            return float(m.group(1))
    return None


def test_boot_to_init_1_vcpu(run):
    out = monitor_output(run, "boot_1cpu")
    booted(out)
    assert "guest: test=boot cpus=1" in out, out


def test_boot_uncompressed_elf_vmlinux_2_vcpus(run):
    out = monitor_output(run, "boot_2cpu")
    booted(out)
    assert "guest: test=boot cpus=2" in out, out
    assert stamp_exit(out)[:2] == ("exit", "0"), out


def test_reboot_exits_0_within_1s(run):
    out = monitor_output(run, "boot_1cpu")
    booted(out)
    kind, status, end = stamp_exit(out)
    assert (kind, status) == ("exit", "0"), out
    last = line_time(out, "reboot: Restarting system") or line_time(out, "cloison-guest: exit")
    assert end - last < 1.0, "exit %.2f s after the guest's reboot:\n%s" % (end - last, out)


def test_guest_date(run):
    out = monitor_output(run, "boot_1cpu")
    assert re.search(r"guest: date=20\d\d-\d\d-\d\d", out), out


def test_ext4_disk_survives_reboot_read_only_with_serial(run):
    out = monitor_output(run, "disk_write")
    booted(out)
    assert "guest: disk written" in out, out
    out = monitor_output(run, "disk_read")
    booted(out)
    assert "guest: found=written-by-first-boot token-%s" % DISK_SERIAL in out, out
    assert stamp_exit(out)[:2] == ("exit", "0"), out


def test_virtio_net_tcp_with_lab_host(run):
    out = monitor_output(run, "net")
    booted(out)
    assert "guest: mac=%s" % NET_MAC in out, out
    assert "guest: http=lab-httpd-says-hi" in out, out
    assert "guest: nc=0" in out and "lab: received=hello-from-guest" in out, out


def test_virtio_console(run):
    out = monitor_output(run, "console")
    assert "guest: hello-on-hvc0" in out, out
    assert stamp_exit(out)[:2] == ("exit", "0"), out


def test_virtio_rng(run):
    out = monitor_output(run, "boot_1cpu")
    booted(out)
    assert "guest: rng_current=virtio_rng.0" in out, out
    assert "guest: rng_bytes=16" in out, out


def test_virtio_vsock_with_lab_host(run):
    out = monitor_output(run, "vsock")
    booted(out)
    assert "vsock: answer pong:ping-from-guest" in out, out
    assert "lab: vsock: received ping-from-guest" in out, out


def test_poweroff_exits_0(run):
    out = monitor_output(run, "poweroff")
    assert "guest: test=poweroff" in out, out
    assert stamp_exit(out)[:2] == ("exit", "0"), out


def test_shutdown_through_acpi_power_button(run):
    if VMM_KIND == "qemu":
        pytest.skip("the power button is pressed through cloison-vmm's API")
    out = monitor_output(run, "power_button")
    assert lab_module.GUEST_FIRST_LINE in out, "the guest init never ran:\n" + out
    assert "powerkey: /dev/input/event" in out, "no Power Button input device:\n" + out
    assert re.search(r"lab: bad: HTTP/1.1 400 .*shutdown", out), out
    assert re.search(r"lab: shutdown: HTTP/1.1 20[04]", out), out
    assert "powerkey: KEY_POWER pressed" in out, out
    # the SCI counted on a level-triggered (fasteoi) IOAPIC line
    m = re.search(r"guest: power button pressed, sci: +9: ([\d ]+)IO-APIC +9-fasteoi +acpi", out)
    assert m and sum(int(n) for n in m.group(1).split()) >= 1, "no level SCI counted:\n" + out
    # the guest powered itself off (not the init's reboot after a failure)
    assert "cloison-guest: exit" not in out, out
    assert "cloison-vmm: guest powered off (ACPI S5)" in out, out
    assert '"power_button_presses":1' in out, out
    assert stamp_exit(out)[:2] == ("exit", "0"), out


def test_panic_is_reported(run):
    if VMM_KIND == "qemu":
        pytest.skip("QEMU does not report a guest panic (panic=-1 reboots)")
    out = monitor_output(run, "panic")
    assert "guest: test=panic" in out, out
    kind, status, _ = stamp_exit(out)
    assert kind == "exit" and status not in ("", "0"), out
    assert "cloison-vmm: guest kernel panic" in out, out


def test_snapshot_restore_mid_workload(run):
    if VMM_KIND == "qemu":
        pytest.skip("the snapshot test drives cloison-vmm's API")
    out = monitor_output(run, "snapshot")
    first = "\n".join(l[len("first: "):] for l in out.splitlines() if l.startswith("first: "))
    restored = "\n".join(l[len("restored: "):] for l in out.splitlines() if l.startswith("restored: "))
    assert "workload: disk mounted" in first and "count=10" in first, out
    assert re.search(r"^stamp: exit 0 after", first, re.M), "SIGTERM did not stop the VMM cleanly:\n" + out
    assert "workload: done" not in first, "the workload ended before the snapshot:\n" + out
    assert lab_module.GUEST_FIRST_LINE not in restored, "the restored guest booted afresh:\n" + out
    assert '"dir":"/tmp/snap"' in out, "PUT /snapshot/create did not answer its dir:\n" + out
    done = [int(x) for x in re.findall(r"count=(\d+)", first)]
    counts = [int(x) for x in re.findall(r"count=(\d+)", restored)]
    # the restored workload goes on from where it stopped
    assert counts and counts[0] > 10 and counts[0] <= max(done) + 1, out
    assert counts[-1] == COUNT_TO, out
    total = COUNT_TO * (COUNT_TO + 1) // 2
    assert "workload: done total=%d" % total in restored, out
    assert "workload: disk total=%d" % total in restored, "the disk failed after restore:\n" + out
    assert stamp_exit(restored)[:2] == ("exit", "0"), out
