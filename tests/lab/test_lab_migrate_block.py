# SPDX-License-Identifier: Apache-2.0
"""Block migration in the VM lab (issue 13, docs/migration.md): the
destination does not share the disk; the source streams it during the
pre-copy and resends what the guest writes meanwhile.  One lab boot, one
source guest that keeps writing files to its ext4 disk (random data, each
file's md5 noted beside it) for 90 s of its own time:

- refused: a destination whose --disk file holds data refuses with one
  line and leaves that file as it was; the source runs on.
- cancel: a block migration cancelled mid-way leaves the source running
  and the destination gone with the disk file it created.
- move: a block migration to a destination with an empty disk file while
  the guest writes; the guest goes on writing at the destination, then
  checks every file's md5 with its caches dropped (what the destination's
  disk holds), and the destination's image equals what the guest reads
  from its disk after unmounting it.
"""
import re

import pytest

from test_lab_migrate import (CMDLINE, FINAL_STATE, lab_line, migrated, prefixed,
                              run_migration_payload, status)

GUEST = r"""#!/bin/sh
wait_dev() { i=0; while [ ! -e "$1" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; [ -e "$1" ]; }
up() { cut -d. -f1 /proc/uptime; }
wait_dev /dev/vda && mount -t ext4 /dev/vda /mnt && echo "workload: disk mounted"
# 4 MiB written once, before any move: what pass 1 carries
dd if=/dev/urandom of=/mnt/base bs=64k count=64 2>/dev/null
echo "$(md5sum /mnt/base)" > /mnt/base.sum; sync
end=$(( $(up) + 90 )); i=1
while [ $(up) -lt $end ]; do
    f=/mnt/f$((i % 24))
    dd if=/dev/urandom of=$f bs=64k count=4 2>/dev/null
    echo "$(md5sum $f)" > $f.sum
    [ $((i % 4)) -eq 0 ] && sync
    echo "wrote $i up=$(cut -d' ' -f1 /proc/uptime)"
    sleep 0.2; i=$((i+1))
done
sync; echo 3 > /proc/sys/vm/drop_caches
cat /mnt/*.sum > /tmp/sums
if md5sum -c /tmp/sums > /tmp/check 2>&1; then echo "verify: ok $(grep -c . /tmp/sums) files"
else echo "verify: FAILED"; cat /tmp/check; fi
umount /mnt; echo 3 > /proc/sys/vm/drop_caches
echo "disk: md5=$(md5sum /dev/vda | cut -d' ' -f1)"
"""

PAYLOAD = r"""#!/bin/sh
. /lab/lib.sh
VMM=/lab/cloison-vmm
show() { { tr -d '\r' < $2; echo; } | sed "s/^/$1: /"; }
%(final_state)sdest() {  # NAME PORT DISK
    rm -f /tmp/$1.log /tmp/$1.err /tmp/$1.sock
    $VMM --incoming tcp:127.0.0.1:$2 --console file=/tmp/$1.log --api-socket /tmp/$1.sock \
        --disk $3 --debug 2>/tmp/$1.err & dest_pid=$!
    wait_for_line /tmp/$1.err 'waiting for a migration' 20 || echo "lab: $1 never listened"
}
wrote() { grep -c '^wrote ' $1; }

dd if=/dev/zero of=/tmp/src.img bs=1M count=0 seek=64 2>/dev/null
mkfs.ext4 -q -F /tmp/src.img || echo "lab: mkfs.ext4 failed"
# (each check runs in a subshell of its own, which cannot `wait` for the
# source: its exit status goes to a file)
( $VMM --kernel /guest/vmlinux --initrd /guest/initrd --memory 256M \
    --cmdline '%(cmdline)s' --disk /tmp/src.img \
    --console file=/tmp/src.log --api-socket /tmp/src.sock 2>/tmp/src.err; echo $? > /tmp/src.rc ) &
wait_for_line /tmp/src.log '^wrote 3 ' 120 || echo "lab: the guest never wrote"

refused() {
    dd if=/dev/urandom of=/tmp/full.img bs=64k count=4 2>/dev/null
    before=$(md5sum < /tmp/full.img)
    dest r-dst 4470 /tmp/full.img
    echo "lab: refused send: $(/lab/uhttp /tmp/src.sock PUT /migration/send '{"uri":"tcp:127.0.0.1:4470","block":true}' | tail -1)"
    echo "lab: refused final: $(final_state /tmp/src.sock)"
    wait $dest_pid; echo "lab: refused dest exit $?"
    [ "$(md5sum < /tmp/full.img)" = "$before" ] && echo "lab: refused file kept"
    sed 's/^/lab: refused dest: /' /tmp/r-dst.err
    n=$(wrote /tmp/src.log); sleep 3
    echo "lab: refused vm: $(/lab/uhttp /tmp/src.sock GET /vm | tail -1 | cut -c1-20) wrote $(( $(wrote /tmp/src.log) - n ))"
}
check refused refused

cancel() {
    rm -f /tmp/c.img
    dest c-dst 4471 /tmp/c.img
    /lab/uhttp /tmp/src.sock PUT /migration/send '{"uri":"tcp:127.0.0.1:4471","block":true,"max_bandwidth":1000000}' >/dev/null
    sleep 3
    echo "lab: cancel mid: $(/lab/uhttp /tmp/src.sock GET /migration | tail -1)"
    echo "lab: cancel file mid: $(ls -l /tmp/c.img 2>&1)"
    /lab/uhttp /tmp/src.sock PUT /migration/cancel >/dev/null
    echo "lab: cancel final: $(final_state /tmp/src.sock)"
    wait $dest_pid; echo "lab: cancel dest exit $? left=$(ls /tmp/c.img /tmp/c-dst.sock 2>/dev/null)"
    n=$(wrote /tmp/src.log); sleep 3
    echo "lab: cancel vm: $(/lab/uhttp /tmp/src.sock GET /vm | tail -1 | cut -c1-20) wrote $(( $(wrote /tmp/src.log) - n ))"
}
check cancel cancel

move() {
    : > /tmp/dst.img
    dest m-dst 4472 /tmp/dst.img
    echo "lab: move send: $(/lab/uhttp /tmp/src.sock PUT /migration/send '{"uri":"tcp:127.0.0.1:4472","block":true}' | tail -1)"
    echo "lab: move final: $(final_state /tmp/src.sock)"
    wait_for_line /tmp/src.rc . 120; echo "lab: move source exit $(cat /tmp/src.rc)"
    wait_for_line /tmp/m-dst.log '^disk: md5=' 240 || echo "lab: the destination never finished"
    wait $dest_pid; echo "lab: move dest exit $?"
    echo "lab: move image md5=$(md5sum /tmp/dst.img | cut -d' ' -f1) size=$(stat -c %%s /tmp/dst.img)"
    show src /tmp/src.log; show srcerr /tmp/src.err
    show dst /tmp/m-dst.log; show dsterr /tmp/m-dst.err
}
check move move
""" % {"cmdline": CMDLINE, "final_state": FINAL_STATE}


@pytest.fixture(scope="module")
def run(lab, tmp_path_factory):
    return run_migration_payload(lab, tmp_path_factory, PAYLOAD, GUEST)


def still_writing(out, step):
    m = re.search(r"^lab: %s vm: .*\"running\".* wrote (\d+)$" % step, out, re.M)
    assert m and int(m.group(1)) > 0, "the source stopped writing:\n" + out


def test_destination_with_data_refuses(run):
    out = run.check("refused").output
    final = status(out, "refused final")
    assert final["state"] == "failed", final
    assert "destination refused" in final["error"] and "holds data" in final["error"], final
    assert "lab: refused dest exit 1" in out and "lab: refused file kept" in out, out
    still_writing(out, "refused")


def test_cancel_leaves_the_source_and_no_disk(run):
    out = run.check("cancel").output
    mid = status(out, "cancel mid")
    assert mid["state"] == "active" and mid["block"] and mid["disk_bytes_sent"] > 0, mid
    final = status(out, "cancel final")
    assert final["state"] == "cancelled", final
    assert re.search(r"^lab: cancel dest exit 1 left=$", out, re.M), out
    still_writing(out, "cancel")


def test_block_migration_moves_the_disk(run):
    out = run.check("move").output
    final = migrated(out, "srcerr: ")
    print("block migration: %s" % final)
    assert final["state"] == "completed" and final["block"], final
    assert final["disk_bytes_sent"] >= 4 << 20, final
    assert "lab: move source exit 0" in out and "lab: move dest exit 0" in out, out
    src, dst = prefixed(out, "src: "), prefixed(out, "dst: ")
    # the guest wrote during the move and went on at the destination
    writes = [int(x) for x in re.findall(r"^wrote (\d+) ", src + "\n" + dst, re.M)]
    assert writes == list(range(1, len(writes) + 1)), "writes lost or repeated:\n" + out
    assert re.search(r"^wrote \d+ ", dst, re.M), "no write at the destination:\n" + out
    assert "cloison-guest: init" not in dst, "the destination booted afresh:\n" + out
    # every file's content as the destination's disk holds it
    assert re.search(r"^verify: ok \d+ files", dst, re.M), out
    # the image the destination wrote is the disk its guest saw
    seen = re.search(r"^disk: md5=([0-9a-f]{32})", dst, re.M)
    image = re.search(r"^lab: move image md5=([0-9a-f]{32}) size=(\d+)", out, re.M)
    assert seen and image, out
    assert image.group(2) == str(64 << 20), out
    assert seen.group(1) == image.group(1), out
    assert lab_line(out, "move final") == "gone" or status(out, "move final")["state"] == "completed"
