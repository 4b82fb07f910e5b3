# SPDX-License-Identifier: Apache-2.0
"""A Cloisonfile's VM in the VM lab (nested KVM, vhost-vsock): a shared
folder (virtio-fs, mounted by the guest's init), a volume with a size (a
raw ext4 image as a second virtio-blk disk) and a directory volume
(virtio-fs), the data of both kept across `down --destroy` and `up`;
and a sized volume loop-mounted into a container on the lab's pure
cgroup2 host.  One lab boot; each test asserts on one check of it."""
import pytest

from lab_cli import PROLOGUE, cli_files

PAYLOAD = PROLOGUE + r"""mkdir -p /tmp/proj/site && echo from-host > /tmp/proj/site/f
cat > /tmp/proj/Cloisonfile <<'EOF2'
volumes:
  disk: {size: 32M}
  shared: {}
machines:
  vm:
    image: busybox
    kind: vm
    memory: 256M
    networks: []
    project_folder: false
    command: ["/bin/sleep", "100000"]
    folders: ["./site:/site"]
    volumes: ["disk:/data", "shared:/shared"]
  box:
    image: busybox
    networks: []
    project_folder: false
    command: ["/bin/sleep", "100000"]
EOF2
cd /tmp/proj
check up $C up
check folder $C exec vm -- cat /site/f
check folder_write sh -c "$C exec vm -- sh -c 'echo from-guest > /site/g' && cat /tmp/proj/site/g"
check disk sh -c "$C exec vm -- sh -c 'echo on-disk > /data/x && sync && grep -E \" /data | /site | /shared \" /proc/mounts'"
check dirvol sh -c "$C exec vm -- sh -c 'echo dirvol > /shared/y' && cat /tmp/cl/volumes/*-shared/data/y"
check again sh -c "$C down --destroy && $C up && $C exec vm -- cat /data/x /shared/y"
check ctr_volume sh -c "$C volume create small --size 8M && $C volume attach small \$($C status --format json | grep -o '\"[^\"]*-box\"' | head -1 | tr -d '\"') /v &&
    $C down && $C up && $C exec box -- sh -c 'echo in-ctr > /v/z && cat /v/z && grep \" /v \" /proc/mounts'"
check down sh -c "$C down --destroy; $C list; $C volume list"
cat /tmp/cl/instances/*-vm/console.log 2>/dev/null | tail -15
"""


@pytest.fixture(scope="module")
def run(lab):
    return lab.run(PAYLOAD, files=cli_files(), timeout=900, stream=print)


def test_up(run):
    c = run.check("up")
    assert c.rc == 0 and "vm: created" in c.output and "box: created" in c.output, c.output


def test_shared_folder_in_the_vm(run):
    c = run.check("folder")
    assert c.rc == 0 and c.output.strip() == "from-host", c.output


def test_shared_folder_written_by_the_guest(run):
    c = run.check("folder_write")
    assert c.rc == 0 and c.output.strip() == "from-guest", c.output


def test_sized_volume_is_a_disk_in_the_vm(run):
    c = run.check("disk")
    assert c.rc == 0, c.output
    assert "/dev/vdb /data ext4" in c.output, c.output
    assert " /site virtiofs" in c.output and " /shared virtiofs" in c.output, c.output


def test_directory_volume_in_the_vm(run):
    c = run.check("dirvol")
    assert c.rc == 0 and c.output.strip() == "dirvol", c.output


def test_volumes_outlive_the_vm(run):
    c = run.check("again")
    assert c.rc == 0 and c.output.split()[-2:] == ["on-disk", "dirvol"], c.output


def test_sized_volume_in_a_container(run):
    c = run.check("ctr_volume")
    assert c.rc == 0 and "in-ctr" in c.output and "/dev/loop" in c.output, c.output


def test_down_destroy(run):
    c = run.check("down")
    assert c.rc == 0 and "vm: deleted" in c.output, c.output
