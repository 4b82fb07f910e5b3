# SPDX-License-Identifier: Apache-2.0
"""cloison image import / list / rm / inspect against real image writers
(umoci, podman save, tar), on a state root of the test's own."""
import hashlib
import io
import json
import os
import pty
import select
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import tempfile
import time
import uuid

import pytest

from conftest import binary
from test_image_helpers import cloison, images, inspect, store_files, umoci_two_layers


def by_name(root, name):
    return [i for i in images(root) if name in i["Names"]]


def tar_rootfs(rootfs, out, compress=""):
    with tarfile.open(out, "w" + (":" + compress if compress else "")) as t:
        t.add(rootfs, arcname=".")
    return out


PODMAN = ["podman", "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
          "--events-backend", "none"]


@pytest.fixture(scope="module")
def writers(tmp_path_factory, busybox_rootfs):
    """The busybox rootfs as each tool writes it: a two-layer umoci OCI
    layout (the second layer removes files), podman's oci-archive and
    docker-archive, and plain tarballs."""
    d = tmp_path_factory.mktemp("image-writers")
    out = {"dir": d}
    out["tar"] = tar_rootfs(busybox_rootfs, str(d / "rootfs.tar"))
    out["tgz"] = tar_rootfs(busybox_rootfs, str(d / "rootfs.tar.gz"), "gz")
    def top(rootfs):
        os.unlink(rootfs + "/bin/ls")
        with open(rootfs + "/etc/motd", "w") as f:
            f.write("hello from layer 2\n")

    lay = umoci_two_layers(d, busybox_rootfs, top)
    subprocess.run(["umoci", "config", "--image", lay + ":v1", "--config.cmd", "/bin/echo",
                    "--config.cmd", "hi", "--config.workingdir", "/tmp",
                    "--config.env", "FOO=bar", "--config.user", "1:2"], check=True)
    out["layout"] = lay
    # podman wants a short runroot path.
    pdir = tempfile.mkdtemp(prefix="/tmp/cl-image-pm-")
    proot = ["--root", pdir + "/root", "--runroot", pdir + "/run"]
    tag = "localhost/cloison-image-test:1"
    subprocess.run(PODMAN + proot + ["import", out["tar"], tag], check=True,
                   stdout=subprocess.DEVNULL)
    for fmt in ("oci-archive", "docker-archive"):
        p = str(d / (fmt + ".tar"))
        subprocess.run(PODMAN + proot + ["save", "-q", "--format", fmt, "-o", p, tag], check=True)
        out[fmt] = p
    out["podman_tag"] = tag
    yield out
    subprocess.run(PODMAN + proot + ["rmi", "-a", "-f"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    shutil.rmtree(pdir, ignore_errors=True)


def test_builtin_busybox_in_every_store(tmp_path):
    root = tmp_path / "root"
    imgs = by_name(root, "busybox:latest")
    assert len(imgs) == 1
    info = inspect(root, "busybox")
    assert info["Config"]["config"]["Cmd"] == ["/bin/sh"]
    assert os.path.isfile(os.path.join(info["Layers"][0], "bin", "busybox"))
    # Removed, it comes back when named (no network needed).
    cloison(root, "rm", "busybox")
    assert by_name(root, "busybox:latest") == []
    assert inspect(root, "busybox:latest")["Id"] == info["Id"]


def test_import_umoci_layout_with_whiteouts(tmp_path, writers):
    root = tmp_path / "root"
    p = cloison(root, "import", writers["layout"])
    image_id = p.stdout.strip().splitlines()[-1]
    assert len(image_id) == 64
    info = inspect(root, "layout:v1")  # named from the directory and ref.name
    assert info["Id"] == image_id
    cfg = info["Config"]["config"]
    assert cfg["Cmd"] == ["/bin/echo", "hi"] and cfg["WorkingDir"] == "/tmp"
    assert "FOO=bar" in cfg["Env"] and cfg["User"] == "1:2"
    assert len(info["Layers"]) == 2
    # The removed file is an overlayfs whiteout in the upper layer.
    wh = os.lstat(os.path.join(info["Layers"][1], "bin", "ls"))
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    merged = overlay_view(tmp_path, info["Layers"])
    try:
        assert not os.path.lexists(os.path.join(merged, "bin", "ls"))
        assert os.path.exists(os.path.join(merged, "bin", "cat"))
        assert open(os.path.join(merged, "etc", "motd")).read() == "hello from layer 2\n"
    finally:
        subprocess.run(["umount", merged], check=True)


def overlay_view(tmp_path, layers):
    """Mounts the layers read-only, as an instance would, and returns the
    mount point (the caller unmounts)."""
    mnt = str(tmp_path / ("mnt-" + uuid.uuid4().hex[:8]))
    os.mkdir(mnt)
    lower = ":".join(reversed(layers))
    if len(layers) == 1:
        empty = str(tmp_path / "empty-lower")
        os.makedirs(empty, exist_ok=True)
        lower += ":" + empty
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir=" + lower, mnt],
                   check=True)
    return mnt


def test_podman_archives_and_tarballs(tmp_path, writers):
    root = tmp_path / "root"
    oci_id = cloison(root, "import", writers["oci-archive"]).stdout.split()[-1]
    docker_id = cloison(root, "import", writers["docker-archive"]).stdout.split()[-1]
    # The same image through both formats: one image, one set of layers.
    assert oci_id == docker_id
    assert writers["podman_tag"] in inspect(root, oci_id)["Names"]
    layers_before = store_files(root)[0]
    tar_id = cloison(root, "import", writers["tar"], "plain:1").stdout.split()[-1]
    tgz_id = cloison(root, "import", writers["tgz"], "plain:gz").stdout.split()[-1]
    assert tar_id == tgz_id  # the config names the uncompressed diff_id
    zst = str(tmp_path / "rootfs.tar.zst")
    subprocess.run(["zstd", "-q", "-o", zst, writers["tar"]], check=True)
    assert cloison(root, "import", zst, "plain:zst").stdout.split()[-1] == tar_id
    info = inspect(root, "plain:gz")
    assert sorted(info["Names"]) == ["plain:1", "plain:gz", "plain:zst"]
    assert info["Config"]["rootfs"]["diff_ids"] == [
        "sha256:" + hashlib.sha256(open(writers["tar"], "rb").read()).hexdigest()]
    # The .tar.gz was unpacked, found to be the image of the .tar, and dropped.
    assert len(store_files(root)[0]) == len(layers_before) + 1
    assert store_files(root)[2] == []
    # Table output names each image.
    table = cloison(root, "list").stdout
    assert "plain:gz" in table and writers["podman_tag"] in table and "busybox:latest" in table


def write_layout(path, layers, config_extra=None, ref="v1"):
    """A hand-made OCI layout: layers are lists of (name, data|None for a
    directory) tar members."""
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, h), "wb") as f:
            f.write(data)
        return "sha256:" + h, len(data)

    descs, diff_ids = [], []
    for members in layers:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for name, data in members:
                ti = tarfile.TarInfo(name)
                if data is None:
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                    t.addfile(ti)
                else:
                    ti.size, ti.mode = len(data), 0o644
                    t.addfile(ti, io.BytesIO(data))
        raw = buf.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        d, n = put(raw)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n})
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config.update(config_extra or {})
    cd, cn = put(json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cd, "size": cn}, "layers": descs}
    md, mn = put(json.dumps(manifest).encode())
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
            "annotations": {"org.opencontainers.image.ref.name": ref}}]}, f)
    return [d["digest"] for d in descs]


def test_opaque_directories_and_whiteouts(tmp_path):
    root = tmp_path / "root"
    lay = str(tmp_path / "wh")
    write_layout(lay, [
        [("data", None), ("data/a", b"a"), ("data/sub", None), ("data/sub/b", b"b"),
         ("etc", None), ("etc/x", b"x"), ("keep", b"k")],
        [("data", None), ("data/.wh..wh..opq", b""), ("data/c", b"c"), ("etc", None),
         ("etc/.wh.x", b"")],
    ])
    cloison(root, "import", lay, "wh:1")
    info = inspect(root, "wh:1")
    top = info["Layers"][1]
    assert os.getxattr(os.path.join(top, "data"), "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(os.path.join(top, "data", ".wh..wh..opq"))
    x = os.lstat(os.path.join(top, "etc", "x"))
    assert stat.S_ISCHR(x.st_mode) and x.st_rdev == 0
    merged = overlay_view(tmp_path, info["Layers"])
    try:
        assert sorted(os.listdir(os.path.join(merged, "data"))) == ["c"]
        assert os.listdir(os.path.join(merged, "etc")) == []
        assert open(os.path.join(merged, "keep")).read() == "k"
    finally:
        subprocess.run(["umount", merged], check=True)


def test_zstd_layer_in_oci_layout(tmp_path):
    root = tmp_path / "root"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        ti = tarfile.TarInfo("hello")
        ti.size = 3
        t.addfile(ti, io.BytesIO(b"zst"))
    zst = subprocess.run(["zstd", "-q", "-c"], input=raw.getvalue(), stdout=subprocess.PIPE,
                         check=True).stdout
    lay = str(tmp_path / "zst")
    _write_single_layer_layout(lay, zst, "application/vnd.oci.image.layer.v1.tar+zstd")
    cloison(root, "import", lay, "zst:1")
    layer = inspect(root, "zst:1")["Layers"][0]
    assert open(os.path.join(layer, "hello")).read() == "zst"


def test_layer_cannot_escape_through_symlink(tmp_path):
    """A whiteout under a symlink that points outside must not touch the host."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("safe")
    # A symlink to the outside, then a whiteout through it.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo("link")
        ti.type, ti.linkname = tarfile.SYMTYPE, str(outside)
        t.addfile(ti)
        t.addfile(tarfile.TarInfo("link/.wh.victim"), io.BytesIO(b""))
    lay = str(tmp_path / "evil")
    _write_single_layer_layout(lay, buf.getvalue())
    p = cloison(root, "import", lay, "evil:1", check=False)
    assert p.returncode == 1 and "link" in p.stderr, p.stderr
    assert (outside / "victim").read_text() == "safe"
    assert by_name(root, "evil:1") == []
    assert store_files(root)[2] == []


def _write_single_layer_layout(lay, raw, media_type="application/vnd.oci.image.layer.v1.tar"):
    blobs = os.path.join(lay, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, h), "wb") as f:
            f.write(data)
        return "sha256:" + h, len(data)

    ld, ln = put(raw)
    cd, cn = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [ld]}}).encode())
    md, mn = put(json.dumps({"schemaVersion": 2, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
        "layers": [{"mediaType": media_type, "digest": ld, "size": ln}]}).encode())
    with open(os.path.join(lay, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(lay, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
            "size": mn}]}, f)


def test_corrupted_blob_refused_with_its_digest(tmp_path, writers):
    root = tmp_path / "root"
    before = store_files(root)
    lay = str(tmp_path / "corrupt")
    shutil.copytree(writers["layout"], lay)
    manifest_digest = json.load(open(os.path.join(lay, "index.json")))["manifests"][0]["digest"]
    manifest = json.load(open(os.path.join(lay, "blobs", "sha256", manifest_digest[7:])))
    victim = manifest["layers"][-1]["digest"][7:]
    path = os.path.join(lay, "blobs", "sha256", victim)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    p = cloison(root, "import", lay, "corrupt:1", check=False)
    assert p.returncode == 1
    assert len(p.stderr.strip().splitlines()) == 1
    assert "sha256:" + victim in p.stderr and "mismatch" in p.stderr, p.stderr
    assert by_name(root, "corrupt:1") == []
    assert store_files(root) == before  # not even the good first layer stays


def test_corrupted_and_bad_archives(tmp_path, writers):
    root = tmp_path / "root"
    before = store_files(root)
    trunc = str(tmp_path / "trunc.tar")
    data = open(writers["oci-archive"], "rb").read()
    open(trunc, "wb").write(data[: len(data) // 2])
    p = cloison(root, "import", trunc, "trunc:1", check=False)
    assert p.returncode == 1 and "trunc.tar" in p.stderr, p.stderr
    junk = str(tmp_path / "junk.tar")
    open(junk, "wb").write(os.urandom(5000))
    p = cloison(root, "import", junk, "junk:1", check=False)
    assert p.returncode == 1 and "junk.tar" in p.stderr, p.stderr
    p = cloison(root, "import", str(tmp_path / "missing.tar"), check=False)
    assert p.returncode == 1 and "missing.tar" in p.stderr and "No such file" in p.stderr
    assert store_files(root) == before
    assert len(images(root)) == 1  # only the built-in busybox


@pytest.mark.parametrize("name", ["Bad", "a b", "x:", "x:-bad", "../x", "x@sha256:12", ""])
def test_invalid_names(tmp_path, writers, name):
    root = tmp_path / "root"
    p = cloison(root, "import", writers["tar"], name, check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("cloison: ") and "invalid image" in p.stderr, p.stderr
    assert len(images(root)) == 1


def test_unknown_image(tmp_path):
    root = tmp_path / "root"
    for cmd in (["inspect", "nope"], ["rm", "nope:2"], ["inspect", "abcdef12"]):
        p = cloison(root, *cmd, check=False)
        assert p.returncode == 1
        assert "image `%s` not found" % cmd[1] in p.stderr, p.stderr


def test_rm_refused_while_used_and_shared_layers(tmp_path, writers):
    root = tmp_path / "root"
    a = cloison(root, "import", writers["tar"], "a:1").stdout.split()[-1]
    cloison(root, "import", writers["tar"], "b:1")
    info = inspect(root, a)
    # An instance records its use (what src/manager does through cl_img_use).
    db = sqlite3.connect(os.path.join(str(root), "cloison.db"))
    db.execute("INSERT INTO image_uses VALUES (?, ?)", (a, "web1"))
    db.commit()
    assert inspect(root, "a:1")["UsedBy"] == ["web1"]
    cloison(root, "rm", "b:1")  # another name of the same image: untag only
    p = cloison(root, "rm", "a:1", check=False)
    assert p.returncode == 1
    assert "image `a:1` is used by instance `web1`" in p.stderr, p.stderr
    assert os.path.isdir(info["Layers"][0])
    db.execute("DELETE FROM image_uses")
    db.commit()
    db.close()
    cloison(root, "rm", a[:12])
    assert not os.path.exists(info["Layers"][0])
    assert by_name(root, "a:1") == []
    # Shared layer: removing one image keeps the layer for the other.
    x = cloison(root, "import", writers["oci-archive"], "x:1").stdout.split()[-1]
    lay = str(tmp_path / "lay2")
    shutil.copytree(writers["layout"], lay)
    y_layers = inspect(root, cloison(root, "import", writers["layout"], "y:1").stdout.split()[-1])
    cloison(root, "rm", "y:1")
    for layer in y_layers["Layers"]:
        assert not os.path.exists(layer)
    assert os.path.isdir(inspect(root, x)["Layers"][0])


def test_full_disk_is_an_error_not_a_half_store(tmp_path, busybox_rootfs):
    root = tmp_path / "small"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(root)], check=True)
    try:
        before = store_files(root)  # the built-in busybox fits
        big = tmp_path / "big"
        shutil.copytree(busybox_rootfs, str(big), symlinks=True)
        with open(str(big / "blob"), "wb") as f:
            f.write(os.urandom(5 << 20))
        tar = tar_rootfs(str(big), str(tmp_path / "big.tar"))
        p = cloison(root, "import", tar, "big:1", check=False)
        assert p.returncode == 1
        assert "No space left on device" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
        assert store_files(root) == before
        assert by_name(root, "big:1") == []
        # The store still works once space is there again.
        assert by_name(root, "busybox:latest")
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_progress_bar_on_terminal_plain_lines_otherwise(tmp_path, writers):
    root = tmp_path / "root"
    p = cloison(root, "import", writers["tgz"], "plain:1")
    assert "\r" not in p.stdout and "done" in p.stdout
    master, slave = pty.openpty()
    proc = subprocess.Popen([binary("cloison"), "--root", str(root), "image", "import",
                             writers["tar"], "tty:1"], stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=30) == 0
    assert b"\r" in out and b"[#" in out and b"100%" in out, out


def test_concurrent_imports_and_removal(tmp_path, writers):
    """Imports sharing a layer, run at once with a removal of an image that
    uses the same layer: every image listed afterwards has all its layers."""
    root = tmp_path / "root"
    cloison(root, "import", writers["layout"], "victim:1")
    procs = [subprocess.Popen([binary("cloison"), "--root", str(root), "image", "import",
                               writers["layout"], "c%d:1" % i], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for i in range(4)]
    procs.append(subprocess.Popen([binary("cloison"), "--root", str(root), "image", "rm",
                                   "victim:1"], stderr=subprocess.PIPE))
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read()
    for i in range(4):
        for layer in inspect(root, "c%d:1" % i)["Layers"]:
            assert os.path.isdir(layer)
    assert store_files(root)[2] == []


def test_killed_import_leaves_nothing(tmp_path, busybox_rootfs):
    root = tmp_path / "root"
    before = store_files(root)
    big = tmp_path / "big"
    shutil.copytree(busybox_rootfs, str(big), symlinks=True)
    for i in range(40):
        with open(str(big / ("blob%d" % i)), "wb") as f:
            f.write(os.urandom(1 << 20))
    tar = tar_rootfs(str(big), str(tmp_path / "big.tar"))
    p = subprocess.Popen([binary("cloison"), "--root", str(root), "image", "import", tar,
                          "big:1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = os.path.join(str(root), "images", "tmp")
    for _ in range(2000):  # until the import is under way
        if os.listdir(tmp):
            break
        time.sleep(0.001)
    p.kill()
    p.wait()
    # The next command sweeps what the dead import left.
    assert by_name(root, "big:1") == []
    assert store_files(root) == before
