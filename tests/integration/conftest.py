# SPDX-License-Identifier: Apache-2.0
"""Shared pytest fixtures: paths to the built binaries, a busybox root
filesystem made offline, and OCI bundles built from it."""
import copy
import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")


def binary(name):
    """Path of a built cloison binary (cloison, cloison-runtime, cloison-vmm)."""
    p = os.path.join(BUILD, "src", "cli", name)
    if not os.path.exists(p):
        pytest.fail("%s is not built: run scripts/build.sh" % p)
    return p


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory):
    """A read-only-by-convention busybox rootfs shared by the session."""
    d = tmp_path_factory.mktemp("busybox") / "rootfs"
    subprocess.run([os.path.join(ROOT, "scripts", "mkrootfs-busybox.sh"), str(d)], check=True)
    return str(d)


DEFAULT_CONFIG = {
    "ociVersion": "1.2.0",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["/bin/true"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"],
        "cwd": "/",
        "capabilities": {
            k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            for k in ("bounding", "effective", "permitted")
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "cloison",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
        "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                        "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
                          "/proc/sys", "/proc/sysrq-trigger"],
    },
}


def make_bundle(path, rootfs, args=None, config_edit=None, copy_rootfs=False):
    """Writes an OCI bundle at `path` whose rootfs is `rootfs` (symlinked,
    or copied when the test writes into it).  Returns the config dict."""
    os.makedirs(path, exist_ok=True)
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    if args is not None:
        cfg["process"]["args"] = list(args)
    if config_edit:
        config_edit(cfg)
    dst = os.path.join(path, "rootfs")
    if copy_rootfs:
        shutil.copytree(rootfs, dst, symlinks=True)
    else:
        cfg["root"]["path"] = rootfs
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return cfg


@pytest.fixture
def bundle(tmp_path, busybox_rootfs):
    """Factory: bundle(args=[...], config_edit=fn, copy_rootfs=False) -> dir."""
    def make(args=None, config_edit=None, copy_rootfs=False, name="bundle"):
        d = str(tmp_path / name)
        make_bundle(d, busybox_rootfs, args, config_edit, copy_rootfs)
        return d
    return make
