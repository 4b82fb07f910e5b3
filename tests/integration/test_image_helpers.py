# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the test_image_*.py files (no tests here): running
`cloison image ...` on a state root, and building a two-layer OCI layout
with umoci."""
import json
import os
import shutil
import subprocess

from conftest import binary


def cloison(root, *args, check=True):
    """Runs `cloison --root ROOT image ARGS...`."""
    p = subprocess.run([binary("cloison"), "--root", str(root), "image"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError("cloison image %s failed (%d): %s" % (args, p.returncode, p.stderr))
    return p


def images(root):
    return json.loads(cloison(root, "list", "--format", "json").stdout)


def inspect(root, ref):
    return json.loads(cloison(root, "inspect", ref).stdout)


def store_files(root):
    """Every layer and blob in the store, and what is left in tmp/."""
    images(root)  # opens (creates) the store
    d = os.path.join(str(root), "images")
    return (sorted(os.listdir(os.path.join(d, "layers"))),
            sorted(os.listdir(os.path.join(d, "blobs", "sha256"))),
            sorted(os.listdir(os.path.join(d, "tmp"))))


def umoci_two_layers(workdir, rootfs, change_top):
    """An OCI layout WORKDIR/layout:v1 made by umoci: rootfs as the first
    layer, then change_top(rootfs_dir) edits a second one."""
    lay = os.path.join(str(workdir), "layout")
    subprocess.run(["umoci", "init", "--layout", lay], check=True)
    subprocess.run(["umoci", "new", "--image", lay + ":v1"], check=True)
    for i, step in enumerate(("base", "top")):
        b = os.path.join(str(workdir), "bundle-" + step)
        subprocess.run(["umoci", "unpack", "--image", lay + ":v1", b], check=True,
                       stdout=subprocess.DEVNULL)
        if i == 0:
            shutil.rmtree(b + "/rootfs")
            shutil.copytree(rootfs, b + "/rootfs", symlinks=True)
        else:
            change_top(b + "/rootfs")
        subprocess.run(["umoci", "repack", "--image", lay + ":v1", b], check=True)
    return lay
