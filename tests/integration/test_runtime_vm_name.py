# SPDX-License-Identifier: Apache-2.0
"""cloison-runtime under its `-vm` name (a containerd runtime handler for
VM-isolated pods, docs/vm-isolation.md): a CRI pod's sandbox ("pause")
container, as containerd and CRI-O mark it, stays an ordinary container,
so this runs without /dev/kvm.  VM-isolated containers themselves run in
the VM lab (tests/lab/test_lab_vm_isolation.py, test_lab_cri_vm.py)."""
import os

import pytest

from test_runtime_util import Runtime, assert_nothing_left, unique_id


@pytest.mark.parametrize("key", ["io.kubernetes.cri.container-type",
                                 "io.kubernetes.cri-o.ContainerType"])
def test_cri_sandbox_stays_a_container_under_the_vm_name(tmp_path, bundle, key):
    rt = Runtime(tmp_path / "state")
    vm_name = str(tmp_path / "cloison-runtime-vm")
    os.symlink(rt.bin, vm_name)
    rt.bin = vm_name

    def annotate(cfg):
        cfg.setdefault("annotations", {})[key] = "sandbox"
    b = bundle(args=["sh", "-c", "echo pause-here; grep -c . /proc/meminfo >/dev/null"],
               config_edit=annotate)
    cid = unique_id()
    p = rt("run", "--bundle", b, cid)
    assert p.stdout == "pause-here\n", p
    state_files = os.listdir(rt.root)
    assert state_files == [], state_files
    assert_nothing_left(rt, cid, b)
