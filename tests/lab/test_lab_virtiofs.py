# SPDX-License-Identifier: Apache-2.0
"""virtio-fs end to end: a stock Debian guest (virtiofs.ko + fuse.ko) under
cloison-vmm in the lab mounts a lab-host directory with `mount -t virtiofs`,
files and directories go both ways, and the symlinks planted in the share
(absolute to a lab-host file outside it, `../outside/secret`, `../..`)
never reach the lab host's files: the guest resolves them in its own
namespace.  A snapshot taken while the share is mounted, with files and a
directory held open, restores in a new VMM process and the guest goes on
using them; a snapshot is refused while the guest holds a file deleted on
the host.  A read-only share refuses every change.  One lab boot, three
nested VMM runs (docs/virtiofs.md)."""
import os

import pytest

GUEST = r"""#!/bin/sh
phase=$(sed -n 's/.*phase=\([a-z]*\).*/\1/p' /proc/cmdline)
if [ "$phase" = ro ]; then
  mount -t virtiofs labro /mnt && echo "g: ro mounted"
  echo "g: ro reads $(cat /mnt/hello.txt)"
  echo x > /mnt/new 2>/dev/null || echo "g: ro create refused"
  echo x >> /mnt/hello.txt 2>/dev/null || echo "g: ro append refused"
  rm -f /mnt/hello.txt 2>/dev/null || echo "g: ro unlink refused"
  mkdir /mnt/d 2>/dev/null || echo "g: ro mkdir refused"
  umount /mnt
  exit 0
fi
mount -t virtiofs labshare /mnt && echo "g: mounted"
echo "g: host says $(cat /mnt/hello.txt)"
echo "written by the guest" > /mnt/from-guest.txt && echo "g: wrote a file"
mkdir -p /mnt/gdir/sub && echo inner > /mnt/gdir/sub/f && mv /mnt/gdir/sub/f /mnt/gdir/g \
  && rmdir /mnt/gdir/sub && echo "g: dir ops: $(ls /mnt/gdir)"
dd if=/dev/urandom of=/mnt/big bs=64k count=64 2>/dev/null && sync
echo "g: big $(md5sum /mnt/big | cut -d' ' -f1)"
ln -s hello.txt /mnt/glink && echo "g: link $(readlink /mnt/glink) says $(cat /mnt/glink)"
ln /mnt/from-guest.txt /mnt/hard && echo "g: nlink $(stat -c %h /mnt/hard)"
chmod 640 /mnt/from-guest.txt && echo "g: mode $(stat -c %a /mnt/from-guest.txt)"
echo "g: listing $(ls /mnt | tr '\n' ' ')"
for p in esc-abs esc-rel up/outside/secret ../outside/secret; do
  if cat "/mnt/$p" >/dev/null 2>&1; then echo "g: read $p"; else echo "g: cannot read $p"; fi
done
echo pwned > /mnt/esc-abs 2>/dev/null && echo "g: wrote through esc-abs"
echo "g: secret bytes $(cat /mnt/esc-abs /mnt/esc-rel /mnt/up/outside/secret 2>/dev/null | wc -c)"
echo "g: up is the guest root: $(ls /mnt/up/ | grep -c guest-script)"
wait_file() {
  i=0
  while [ ! -e "$1" ] && [ $i -lt 900 ]; do usleep 200000; i=$((i + 1)); done
}
# Held across the snapshot and restore: open files and a working directory.
exec 3</mnt/hello.txt 4>>/mnt/from-guest.txt 5</mnt/victim.txt
cd /mnt/gdir
echo "g: waiting for the host"
wait_file /mnt/go
echo "g: fd3 says $(cat <&3)"
echo "appended after restore" >&4 && echo "g: appended"
echo "g: cwd holds $(ls)"
echo "g: host wrote $(cat /mnt/from-host.txt)"
echo "g: holding the victim"
wait_file /mnt/go2
exec 3<&- 4>&- 5<&-
cd /
umount /mnt && echo "g: unmounted"
sleep 120
"""

CMDLINE = "console=ttyS0 reboot=k panic=-1 pci=conf1 i8042.noaux quiet"
VMM = "/usr/bin/cloison-vmm --kernel /guest/vmlinuz --initrd /guest/initrd --memory 256M"

PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
mkdir -p /srv/share /srv/outside /srv/ro
echo "hello from the lab host" > /srv/share/hello.txt
echo "lab host secret" > /srv/outside/secret
ln -s /srv/outside/secret /srv/share/esc-abs
ln -s ../outside/secret /srv/share/esc-rel
ln -s ../.. /srv/share/up
echo "read only data" > /srv/ro/hello.txt
echo "deleted on the host" > /srv/share/victim.txt

share() {
    rm -f /tmp/fs.sock /tmp/fs2.sock
    /lab/stamp -t 300 -- %(vmm)s --cmdline "%(cmdline)s phase=rw" --fs labshare=/srv/share \
        --api-socket /tmp/fs.sock > /tmp/fs.log 2>&1 & run_pid=$!
    if wait_for_line /tmp/fs.log 'g: waiting for the host' 200; then
        echo "lab: mounted snapshot: $(/lab/uhttp /tmp/fs.sock PUT /snapshot/create '{"dir":"/tmp/snap1"}' | tr '\n' ' ')"
    else
        echo "lab: the guest never mounted the share"
    fi
    /lab/uhttp /tmp/fs.sock PUT /vm/state '{"state":"stopped"}' > /dev/null
    wait $run_pid
    /lab/stamp -t 300 -- /usr/bin/cloison-vmm --restore /tmp/snap1 --api-socket /tmp/fs2.sock \
        > /tmp/fs2.log 2>&1 & run_pid=$!
    echo "written by the host" > /srv/share/from-host.txt
    touch /srv/share/go
    if wait_for_line /tmp/fs2.log 'g: holding the victim' 100; then
        rm /srv/share/victim.txt
        echo "lab: deleted-file snapshot: $(/lab/uhttp /tmp/fs2.sock PUT /snapshot/create '{"dir":"/tmp/snap2"}' | tr '\n' ' ')"
        echo "lab: snap2 exists: $(test -e /tmp/snap2/state.json && echo yes || echo no)"
    else
        echo "lab: the restored guest never went on"
    fi
    touch /srv/share/go2
    if wait_for_line /tmp/fs2.log 'g: unmounted' 100; then
        echo "lab: unmounted snapshot: $(/lab/uhttp /tmp/fs2.sock PUT /snapshot/create '{"dir":"/tmp/snap3"}' | tr '\n' ' ')"
    fi
    /lab/uhttp /tmp/fs2.sock PUT /vm/state '{"state":"stopped"}' > /dev/null
    wait $run_pid
    sed 's/^/restored: /' /tmp/fs2.log
    cat /tmp/fs.log
    echo "lab: guest file: $(cat /srv/share/from-guest.txt | tr '\n' '|')"
    echo "lab: big $(md5sum /srv/share/big | cut -d' ' -f1)"
    echo "lab: gdir: $(ls /srv/share/gdir)"
    echo "lab: glink -> $(readlink /srv/share/glink)"
    echo "lab: mode $(stat -c %%a /srv/share/from-guest.txt)"
    echo "lab: secret: $(cat /srv/outside/secret)"
    echo "lab: outside holds: $(ls /srv/outside | tr '\n' ' ')"
}
check share share
check ro /lab/stamp -t 200 -- %(vmm)s --cmdline "%(cmdline)s phase=ro" --fs labro=/srv/ro,ro
check ro_untouched sh -c 'ls /srv/ro | tr "\n" " "; cat /srv/ro/hello.txt'
""" % {"vmm": VMM, "cmdline": CMDLINE}


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    from conftest import ROOT  # tests/lab/conftest.py
    vmm = os.path.join(ROOT, "build", "src", "cli", "cloison-vmm")
    if not os.path.exists(vmm):
        pytest.fail("%s is not built" % vmm)
    initrd = str(tmp_path_factory.mktemp("virtiofs") / "guest.cpio")
    lab.build_guest_initramfs(initrd, GUEST, modules=lab.GUEST_MODULES + ["virtiofs"])
    files = lab.guest_files(initrd) + [
        (vmm, "/usr/bin/cloison-vmm"), (lab.tool("stamp"), "/lab/stamp"),
        (lab.tool("uhttp"), "/lab/uhttp")]
    return lab.run(PAYLOAD, files=files, timeout=700, stream=print)


def out(run, name):
    return run.assert_check(name).output


def lab_line(o, prefix):
    """The first line of the lab's own output starting with `prefix`."""
    lines = [l for l in o.splitlines() if l.startswith(prefix)]
    assert lines, o
    return lines[0]


def test_guest_mounts_and_reads_host_files(run):
    o = out(run, "share")
    assert "g: mounted" in o
    assert "g: host says hello from the lab host" in o
    assert "g: host wrote written by the host" in o  # a file made while mounted


def test_guest_writes_reach_the_host(run):
    o = out(run, "share")
    assert "g: dir ops: g" in o and "lab: gdir: g" in o
    # guest lines carry stamp's time prefix, "[  55.347] g: ..."
    guest_md5 = [l.split()[-1] for l in o.splitlines() if "g: big " in l]
    host_md5 = [l.split()[-1] for l in o.splitlines() if l.startswith("lab: big ")]
    assert guest_md5 and guest_md5 == host_md5, o
    assert "g: link hello.txt says hello from the lab host" in o
    assert "lab: glink -> hello.txt" in o
    assert "g: nlink 2" in o
    assert "g: mode 640" in o and "lab: mode 640" in o


def test_symlink_and_dotdot_escapes_fail(run):
    o = out(run, "share")
    for p in ("esc-abs", "esc-rel", "up/outside/secret", "../outside/secret"):
        assert "g: cannot read %s" % p in o, o
    assert "g: wrote through esc-abs" not in o
    assert "g: secret bytes 0" in o
    assert "g: up is the guest root: 1" in o
    assert "lab: secret: lab host secret" in o
    assert "lab: outside holds: secret " in o


def test_snapshot_while_mounted_restores_held_files(run):
    o = out(run, "share")
    assert "200 OK" in lab_line(o, "lab: mounted snapshot:"), o
    # In the restored VMM: the fd opened before the snapshot, the append
    # fd, the working directory.
    assert "restored: " in o
    assert "g: fd3 says hello from the lab host" in o
    assert "g: appended" in o
    assert "lab: guest file: written by the guest|appended after restore|" in o
    assert "g: cwd holds g" in o


def test_snapshot_refused_while_a_held_file_is_deleted(run):
    o = out(run, "share")
    refused = lab_line(o, "lab: deleted-file snapshot:")
    assert "400" in refused and "cannot be saved" in refused, o
    assert "lab: snap2 exists: no" in o
    assert "200 OK" in lab_line(o, "lab: unmounted snapshot:"), o
    assert "g: unmounted" in o


def test_read_only_share(run):
    o = out(run, "ro")
    assert "g: ro mounted" in o
    assert "g: ro reads read only data" in o
    for what in ("create", "append", "unlink", "mkdir"):
        assert "g: ro %s refused" % what in o, o
    assert out(run, "ro_untouched").split() == ["hello.txt", "read", "only", "data"]
