# SPDX-License-Identifier: Apache-2.0
"""OCI bundles and runtimes for lab tests and bench/runtime-start-lab: the
same busybox bundle that tests/integration uses, placed in the lab at
/rootfs (shared) and /bundles/NAME/config.json (one per container)."""
import copy
import importlib.util
import json
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build")


def _integration_conftest():
    spec = importlib.util.spec_from_file_location(
        "cloison_integration_conftest", os.path.join(ROOT, "tests", "integration", "conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


DEFAULT_CONFIG = _integration_conftest().DEFAULT_CONFIG
# crun 1.8.1 refuses ociVersion 1.2.0 ("unknown version specified").
OCI_VERSION = "1.1.0"

# Runtime name -> the command line that drives it inside the lab.
RUNTIMES = {
    "cloison": "/lab/cloison-runtime --root /run/rt-cloison",
    "crun": "/usr/bin/crun --root /run/rt-crun",
    "runc": "/usr/sbin/runc --root /run/rt-runc",
}


def runtime_files(names):
    """(host, lab) pairs for the runtimes in `names`; cloison-runtime comes
    from build/ and is absent from the list if it is not built."""
    files = []
    for n in names:
        if n == "cloison":
            p = os.path.join(BUILD, "src", "cli", "cloison-runtime")
            if os.path.exists(p):
                files.append((p, "/lab/cloison-runtime"))
        else:
            p = shutil.which(n)
            if p:
                files.append((p, RUNTIMES[n].split()[0]))
    return files


def config(args, memory=None, swap=None, pids=None, cpu_quota=None, cgroups_path=None):
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    cfg["ociVersion"] = OCI_VERSION
    cfg["process"]["args"] = list(args)
    cfg["root"]["path"] = "/rootfs"
    res = cfg["linux"]["resources"]
    if memory is not None:
        res["memory"] = {"limit": memory}
        if swap is not None:
            res["memory"]["swap"] = swap
    if pids is not None:
        res["pids"] = {"limit": pids}
    if cpu_quota is not None:
        res["cpu"] = {"quota": cpu_quota, "period": 100000}
    if cgroups_path:
        cfg["linux"]["cgroupsPath"] = cgroups_path
    return cfg


def write_bundles(dest, configs):
    """Writes dest/NAME/config.json for each NAME -> config dict, plus a
    busybox rootfs at dest-rootfs; returns the (host, lab) file pairs."""
    rootfs = dest + "-rootfs"
    subprocess.run([os.path.join(ROOT, "scripts", "mkrootfs-busybox.sh"), rootfs], check=True)
    for name, cfg in configs.items():
        os.makedirs(os.path.join(dest, name), exist_ok=True)
        with open(os.path.join(dest, name, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
    return [(rootfs, "/rootfs"), (dest, "/bundles")]
