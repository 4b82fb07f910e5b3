#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The VM lab: a QEMU TCG "lab host" with a working nested /dev/kvm and a
pure cgroup2 hierarchy, booted from an initramfs built on the fly.

    python3 tests/lab/lab.py run --payload SCRIPT [--file HOST[:LAB]]...

Library use (pytest files under tests/lab, benchmarks under bench/):

    import lab
    res = lab.run(payload_text, files=[("/usr/bin/crun", None)], timeout=300)
    res.status          # the payload's exit status (None if it never ended)
    res.output          # what the payload printed
    res.check("name")   # a Check(name, rc, output) reported by `check` in the payload

Inside the lab the payload runs as root, after a switch_root into a tmpfs,
with /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /run, cgroup2 on
/sys/fs/cgroup (every controller enabled in the root's subtree_control), and
/dev/kvm (irqbypass, kvm, kvm_amd loaded).  /lab/lib.sh offers `check NAME
CMD...`, which brackets a command's output and status with markers that
LabResult.checks parses, so that one boot can serve many tests.

Nested guests: guest_kernel() is the same Debian kernel, and
build_guest_initramfs() makes a busybox initramfs that loads the virtio,
vsock and ext4 modules (insmod, in dependency order) and then runs a guest
script.  Its init prints GUEST_FIRST_LINE before anything else.
"""
import argparse
import contextlib
import ctypes
import fcntl
import gzip
import lzma
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get("CLOISON_LAB_CACHE", os.path.join(HERE, "cache"))
KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX = "/bin/busybox"
QEMU = "qemu-system-x86_64"
LAB_CMDLINE = "console=ttyS0 panic=-1 quiet"
GUEST_FIRST_LINE = "cloison-guest: init"

# Modules the lab host loads, in this order after their dependencies.
LAB_MODULES = ["irqbypass", "kvm", "kvm_amd", "tun", "vhost_net", "vhost_vsock",
               "veth", "bridge", "overlay", "loop"]
# Modules a nested guest loads: virtio over PCI, the devices, vsock, ext4.
GUEST_MODULES = ["virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
                 "virtio_blk", "virtio_net", "virtio_console", "virtio_rng",
                 "vmw_vsock_virtio_transport", "crc32c_generic", "crc32c_intel",
                 "crc16", "mbcache", "jbd2", "ext4"]

# Firmware and option ROMs the inner QEMU needs for -M pc and -M microvm.
QEMU_DATA = ["/usr/share/seabios/bios-256k.bin", "/usr/share/seabios/bios.bin",
             "/usr/share/qemu/linuxboot_dma.bin", "/usr/share/qemu/linuxboot.bin",
             "/usr/share/qemu/kvmvapic.bin", "/usr/share/qemu/qboot.rom",
             "/usr/share/qemu/bios-microvm.bin", "/usr/share/qemu/pvh.bin",
             "/usr/share/qemu/multiboot_dma.bin", "/usr/share/seabios/bios-microvm.bin"]

MARK_READY = "@@LAB-READY@@"
MARK_EXIT = re.compile(r"@@LAB-EXIT=(\d+)@@")
MARK_CHECK_BEGIN = re.compile(r"^@@CHECK-BEGIN ([^@ ]+)@@$")
MARK_CHECK_END = re.compile(r"^@@CHECK-END ([^@ ]+) (\d+)@@$")


class LabError(Exception):
    pass


# ---------------------------------------------------------------- kernel ---

@contextlib.contextmanager
def _locked(name):
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _kernel_package_name():
    out = subprocess.run(["apt-cache", "depends", KERNEL_META], capture_output=True,
                         text=True).stdout
    m = re.search(r"Depends: (linux-image-\S+)", out)
    return m.group(1) if m else None


def kernel_tree():
    """The unpacked Debian cloud kernel package (cached under CACHE/kernel)."""
    dest = os.path.join(CACHE, "kernel")
    if os.path.isdir(os.path.join(dest, "boot")):
        return dest
    with _locked("kernel"):
        if os.path.isdir(os.path.join(dest, "boot")):
            return dest
        pkg = _kernel_package_name()
        if not pkg:
            raise LabError("apt-cache knows no %s: run apt-get update" % KERNEL_META)
        tmp = tempfile.mkdtemp(prefix="kernel-", dir=CACHE)
        os.chmod(tmp, 0o755)  # apt-get download drops to the _apt user
        try:
            subprocess.run(["apt-get", "download", "-q", pkg], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
            deb = [f for f in os.listdir(tmp) if f.endswith(".deb")][0]
            tree = os.path.join(tmp, "tree")
            subprocess.run(["dpkg", "-x", os.path.join(tmp, deb), tree], check=True)
            os.rename(tree, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def kernel_release():
    return os.listdir(os.path.join(kernel_tree(), "lib", "modules"))[0]


def kernel_path():
    """The bzImage of the lab host, also used as the nested guest's kernel."""
    boot = os.path.join(kernel_tree(), "boot")
    return os.path.join(boot, [f for f in os.listdir(boot) if f.startswith("vmlinuz")][0])


guest_kernel = kernel_path


def _modinfo(path):
    """The .modinfo section of a kernel module as a list of (key, value)."""
    data = _module_bytes(path)
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise LabError("%s: not an ELF64 module" % path)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i):
        name, _t, _f, _a, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size
    _n, stroff, _s = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            return [tuple(kv.decode(errors="replace").split("=", 1))
                    for kv in data[off:off + size].split(b"\0") if b"=" in kv]
    return []


def _module_bytes(path):
    if path.endswith(".xz"):
        return lzma.open(path).read()
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout
    with open(path, "rb") as f:
        return f.read()


_module_index = None


def _module_paths():
    global _module_index
    if _module_index is None:
        _module_index = {}
        base = os.path.join(kernel_tree(), "lib", "modules", kernel_release())
        for d, _dirs, files in os.walk(base):
            for f in files:
                m = re.match(r"(.+)\.ko(\.xz|\.zst|\.gz)?$", f)
                if m:
                    _module_index[m.group(1).replace("-", "_")] = os.path.join(d, f)
    return _module_index


def _builtin_modules():
    p = os.path.join(kernel_tree(), "lib", "modules", kernel_release(), "modules.builtin")
    with open(p) as f:
        return {os.path.basename(l.strip()).split(".ko")[0].replace("-", "_") for l in f}


def resolve_modules(names):
    """Module files for `names` and their dependencies, dependencies first.
    Built-in modules are skipped; an unknown name is an error."""
    paths, builtin, order, seen = _module_paths(), _builtin_modules(), [], set()

    def visit(name):
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in paths:
            if name in builtin:
                return
            raise LabError("kernel %s has no module %s" % (kernel_release(), name))
        for k, v in _modinfo(paths[name]):
            if k == "depends":
                for dep in filter(None, v.split(",")):
                    visit(dep)
        order.append(paths[name])
    for n in names:
        visit(n)
    return order


# ------------------------------------------------------------- initramfs ---

_USR_MERGED = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}


def _canon(path):
    """Lab paths follow merged /usr, as on the host: /bin/x -> usr/bin/x."""
    p = os.path.normpath("/" + path).lstrip("/")
    first, _, rest = p.partition("/")
    if first in _USR_MERGED and rest:
        return _USR_MERGED[first] + "/" + rest
    return p


class Tree:
    """An initramfs under construction: lab path -> entry.  Later entries
    replace earlier ones; parents are created as needed."""

    def __init__(self, merged_usr=True):
        self.entries = {}
        self.merged_usr = merged_usr
        if merged_usr:
            for top, target in _USR_MERGED.items():
                self.mkdir(target)
                self.entries[top] = ("link", target)

    def _path(self, path):
        return _canon(path) if self.merged_usr else os.path.normpath("/" + path).lstrip("/")

    def _parents(self, p):
        parent = os.path.dirname(p)
        if parent and parent not in self.entries:
            self._parents(parent)
            self.entries[parent] = ("dir", 0o755)

    def mkdir(self, path, mode=0o755):
        p = self._path(path)
        self._parents(p)
        self.entries[p] = ("dir", mode)

    def add_bytes(self, path, data, mode=0o644):
        p = self._path(path)
        self._parents(p)
        self.entries[p] = ("file", data if isinstance(data, bytes) else data.encode(), mode)

    def add_file(self, path, host, mode=None):
        p = self._path(path)
        self._parents(p)
        self.entries[p] = ("hostfile", host, mode if mode is not None else os.stat(host).st_mode & 0o7777)

    def symlink(self, path, target):
        p = self._path(path)
        self._parents(p)
        self.entries[p] = ("link", target)

    def chardev(self, path, major, minor, mode=0o600):
        p = self._path(path)
        self._parents(p)
        self.entries[p] = ("chr", major, minor, mode)

    def add_busybox(self):
        self.add_file("/usr/bin/busybox", BUSYBOX, 0o755)
        out = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True).stdout
        for applet in out.split():
            p = self._path(applet)
            if p not in self.entries:
                self.symlink(p, "/usr/bin/busybox")

    def add_host(self, host, path=None, with_libs=True):
        """A host file (following symlinks) or directory tree, plus the
        shared libraries of each ELF executable found through ldd."""
        path = path or host
        if os.path.isdir(host):
            for d, dirs, files in os.walk(host):
                rel = os.path.relpath(d, host)
                dest = os.path.normpath(os.path.join(path, rel))
                self.mkdir(dest, os.stat(d).st_mode & 0o7777)
                for n in dirs + files:
                    h = os.path.join(d, n)
                    if os.path.islink(h):
                        self.symlink(os.path.join(dest, n), os.readlink(h))
                    elif n in files and os.path.isfile(h):
                        self.add_file(os.path.join(dest, n), h)
            return
        if not os.path.exists(host):
            raise LabError("no such host file: %s" % host)
        self.add_file(path, host)
        if with_libs:
            for lib in shared_libraries(host):
                if self._path(lib) not in self.entries:
                    self.add_file(lib, lib)

    def add_modules(self, names, listing):
        """Module files (decompressed) under /lib/modules/REL/ and a file
        `listing` naming them in load order."""
        rel = kernel_release()
        base = os.path.join(kernel_tree(), "lib", "modules", rel)
        order = []
        for m in resolve_modules(names):
            dest = "/lib/modules/%s/%s" % (rel, os.path.relpath(m, base))
            dest = re.sub(r"\.ko\.(xz|zst|gz)$", ".ko", dest)
            if m.endswith(".ko"):
                self.add_file(dest, m, 0o644)
            else:
                self.add_bytes(dest, _module_bytes(m))
            order.append(dest)
        self.add_bytes(listing, "".join(o + "\n" for o in order))

    def write(self, out):
        """Writes a newc cpio archive (uncompressed: the lab kernel unpacks
        it faster than it inflates gzip under emulation)."""
        ino = 1000
        with open(out, "wb") as f:
            def header(name, mode, size, nlink=1, rdev=(0, 0)):
                nonlocal ino
                ino += 1
                name_b = name.encode() + b"\0"
                h = b"070701" + b"".join(b"%08X" % v for v in (
                    ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], len(name_b), 0))
                f.write(h + name_b)
                f.write(b"\0" * (-(len(h) + len(name_b)) % 4))

            def body(data):
                f.write(data)
                f.write(b"\0" * (-len(data) % 4))
            for p in sorted(self.entries):
                e = self.entries[p]
                if e[0] == "dir":
                    header(p, 0o040000 | e[1], 0, 2)
                elif e[0] == "link":
                    t = e[1].encode()
                    header(p, 0o120777, len(t))
                    body(t)
                elif e[0] == "chr":
                    header(p, 0o020000 | e[3], 0, 1, (e[1], e[2]))
                else:
                    data = e[1]
                    if e[0] == "hostfile":
                        with open(e[1], "rb") as h:
                            data = h.read()
                    header(p, 0o100000 | e[2], len(data))
                    body(data)
            header("TRAILER!!!", 0, 0)
            f.write(b"\0" * (-f.tell() % 512))


def shared_libraries(path):
    """Absolute paths of the shared libraries (and interpreter) an ELF file
    needs, as ldd resolves them on this host; [] for anything else."""
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return []
    p = subprocess.run(["ldd", path], capture_output=True, text=True)
    if p.returncode != 0:
        return []
    libs = []
    for line in p.stdout.splitlines():
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


LAB_INIT = r"""#!/bin/sh
# Stage 1: pivot_root refuses the initramfs as root, so move into a tmpfs.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /newroot
mount -t tmpfs -o size=85%,mode=0755 labroot /newroot
cd /
for e in * ; do [ "$e" = newroot ] || cp -a "$e" /newroot/ ; done
exec switch_root /newroot /lab/init2
"""

LAB_INIT2 = r"""#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LAB=1
mkdir -p /proc /sys /dev /run /tmp /root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=0755 run /run
chmod 1777 /tmp
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || echo "lab: cannot enable $c"
done
[ -e /lab/kernel-log ] || dmesg -n 1
while read -r m; do insmod "$m" || echo "lab: insmod $m failed"; done < /lab/modules.order
hostname lab
ip link set lo up
echo "@@LAB-READY@@"
cd /
/lab/payload </dev/null
echo "@@LAB-EXIT=$?@@"
sync
reboot -f
"""

LAB_LIB = r"""# Sourced by payloads: `. /lab/lib.sh`
# check NAME CMD...: runs CMD in a subshell, its output and status bracketed
# by markers that lab.py turns into LabResult.checks[NAME].
check() {
    _n=$1; shift
    echo "@@CHECK-BEGIN $_n@@"
    ( "$@" ) 2>&1 </dev/null
    _rc=$?
    echo "@@CHECK-END $_n $_rc@@"
    return 0
}
# wait_for_line FILE PATTERN SECONDS: waits until FILE has a line matching PATTERN.
wait_for_line() {
    _i=0
    while [ $_i -lt $(($3 * 10)) ]; do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        usleep 100000; _i=$((_i + 1))
    done
    return 1
}
"""


def build_lab_initramfs(out, payload, files=(), modules=LAB_MODULES, kernel_log=False):
    """Writes the lab initramfs to `out`.  `files` are (host path, lab path
    or None for the same path) pairs; ELF files bring their libraries."""
    t = Tree()
    t.add_busybox()
    for d in ("dev", "proc", "sys", "run", "tmp", "root", "etc", "newroot", "lab",
              "sys/fs/cgroup"):
        t.mkdir(d)
    t.chardev("dev/console", 5, 1)
    t.chardev("dev/null", 1, 3, 0o666)
    t.add_bytes("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    t.add_bytes("etc/group", "root:x:0:\nnogroup:x:65534:\n")
    t.add_bytes("etc/hosts", "127.0.0.1 localhost lab\n")
    t.add_modules(modules, "lab/modules.order")
    for host, dest in files:
        t.add_host(host, dest)
    t.add_bytes("init", LAB_INIT, 0o755)
    t.add_bytes("lab/init2", LAB_INIT2, 0o755)
    t.add_bytes("lab/lib.sh", LAB_LIB, 0o644)
    t.add_bytes("lab/payload", payload, 0o755)
    if kernel_log:
        t.add_bytes("lab/kernel-log", "")
    t.write(out)


GUEST_INIT = r"""#!/bin/sh
echo "%s"
export PATH=/bin:/sbin HOME=/
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "$m" 2>/dev/null; done < /modules.order
/guest-script
echo "cloison-guest: exit $?"
sync
reboot -f
""" % GUEST_FIRST_LINE


def build_guest_initramfs(out, script, modules=GUEST_MODULES, files=()):
    """Writes a nested guest's initramfs to `out`: busybox, `modules` (with
    their dependencies, insmod in order), `files` ((host, guest path) pairs,
    copied as they are: give static binaries) and `script`, run as root by
    an init whose first line is GUEST_FIRST_LINE.  When the script returns
    the guest prints "cloison-guest: exit N" and reboots."""
    t = Tree(merged_usr=False)
    t.add_file("bin/busybox", BUSYBOX, 0o755)
    out_list = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True).stdout
    for applet in out_list.split():
        if applet != "busybox":
            t.symlink("bin/" + applet, "busybox")
    t.symlink("sbin", "bin")
    for d in ("dev", "proc", "sys", "tmp", "mnt", "etc", "root"):
        t.mkdir(d)
    t.chardev("dev/console", 5, 1)
    t.chardev("dev/null", 1, 3, 0o666)
    t.add_modules(modules, "modules.order")
    for host, dest in files:
        t.add_host(host, dest, with_libs=False)
    t.add_bytes("init", GUEST_INIT, 0o755)
    t.add_bytes("guest-script", script if script.startswith("#!") else "#!/bin/sh\n" + script, 0o755)
    t.write(out)


def tool(name, static=False):
    """A helper program built from tests/lab/NAME.c into the cache (rebuilt
    when the source changes), e.g. tool("stamp") to time lines in the lab;
    static=True for nested guests, which carry no shared libraries."""
    src = os.path.join(HERE, name + ".c")
    out = os.path.join(CACHE, "tools", name + ("-static" if static else ""))
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        with _locked("tools"):
            os.makedirs(os.path.dirname(out), exist_ok=True)
            tmp = out + ".%d" % os.getpid()
            subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror"] + (["-static"] if static else [])
                           + ["-o", tmp, src], check=True)
            os.rename(tmp, out)
    return out


def qemu_files():
    """(host, lab) pairs that make qemu-system-x86_64 work inside the lab
    (binary, libraries through ldd, BIOS and option ROMs for pc/microvm)."""
    q = shutil.which(QEMU)
    if q is None:
        raise LabError("%s is not installed" % QEMU)
    return [(q, "/usr/bin/" + QEMU)] + [(f, None) for f in QEMU_DATA if os.path.exists(f)]


def guest_files(initrd, kernel_dest="/guest/vmlinuz", initrd_dest="/guest/initrd"):
    """(host, lab) pairs that put the guest kernel and `initrd` in the lab."""
    return [(guest_kernel(), kernel_dest), (initrd, initrd_dest)]


# ------------------------------------------------------------------- run ---

class Check:
    def __init__(self, name, rc, output):
        self.name, self.rc, self.output = name, rc, output

    @property
    def ok(self):
        return self.rc == 0

    def __repr__(self):
        return "Check(%r, rc=%r)" % (self.name, self.rc)


class LabResult:
    def __init__(self, status, output, console, duration, timed_out, pid=None, tmpdir=None):
        self.pid = pid                # QEMU's pid (reaped: it no longer runs)
        self.tmpdir = tmpdir          # the removed build directory
        self.status = status          # payload exit status, None if it never finished
        self.output = output          # payload output (after the ready marker)
        self.console = console        # the whole serial console
        self.duration = duration
        self.timed_out = timed_out
        self.checks = _parse_checks(output)

    def check(self, name):
        """The named check; a missing one (the payload died before it) has
        rc None and the payload's tail as output, so assertions explain."""
        c = self.checks.get(name)
        if c is None:
            tail = "\n".join(self.console.splitlines()[-40:])
            return Check(name, None, "check %s never reported (lab status %s, timed out %s); "
                         "console tail:\n%s" % (name, self.status, self.timed_out, tail))
        return c

    def assert_check(self, name):
        c = self.check(name)
        assert c.rc == 0, "lab check %s failed (rc %s):\n%s" % (name, c.rc, c.output)
        return c


def _parse_checks(output):
    checks, cur, buf = {}, None, []
    for line in output.splitlines():
        m = MARK_CHECK_BEGIN.match(line)
        if m:
            cur, buf = m.group(1), []
            continue
        m = MARK_CHECK_END.match(line)
        if m and m.group(1) == cur:
            checks[cur] = Check(cur, int(m.group(2)), "\n".join(buf))
            cur = None
            continue
        if cur is not None:
            buf.append(line)
    if cur is not None:
        checks[cur] = Check(cur, None, "\n".join(buf) + "\n(check never ended)")
    return checks


def _remove_stale_tmpdirs():
    """Removes build dirs of lab runs whose process died without its
    finally block (SIGKILL): their names carry the owner's pid."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        m = re.match(r"cloison-lab-(\d+)-", name)
        if m and not os.path.exists("/proc/" + m.group(1)):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no QEMU outlives us
    os.setpgrp()


def qemu_command(kernel, initrd, memory=2048, cpus=1, cmdline=LAB_CMDLINE):
    return [QEMU, "-accel", "tcg", "-cpu", "max", "-m", str(memory), "-smp", str(cpus),
            "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
            "-nographic", "-no-reboot", "-monitor", "none", "-nic", "none"]


def run(payload, files=(), timeout=300, memory=2048, cpus=1, modules=LAB_MODULES,
        stream=None, kernel_log=False):
    """Boots the lab, runs `payload` (a script text) as root, returns a
    LabResult.  `files`: (host path, lab path or None) pairs.  `stream`: a
    callable given each console line as it arrives (or a file object).
    QEMU is killed at the deadline or on any error; the temp dir is removed."""
    if shutil.which(QEMU) is None:
        raise LabError("%s is not installed" % QEMU)
    if stream is not None and not callable(stream):
        f = stream
        stream = lambda line: (f.write(line + "\n"), f.flush())
    files = [tuple(x) if isinstance(x, (tuple, list)) else (x, None) for x in files]
    kernel = kernel_path()
    _remove_stale_tmpdirs()
    tmp = tempfile.mkdtemp(prefix="cloison-lab-%d-" % os.getpid())
    proc = None
    lines, status, timed_out = [], None, False
    start = time.monotonic()
    try:
        initrd = os.path.join(tmp, "lab.cpio")
        build_lab_initramfs(initrd, payload, files, modules, kernel_log)
        proc = subprocess.Popen(qemu_command(kernel, initrd, memory, cpus),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = start + timeout
        pending = b""
        fd = proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            r, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            *done, pending = pending.split(b"\n")
            for raw in done:
                line = raw.decode(errors="replace").rstrip("\r")
                lines.append(line)
                if stream:
                    stream(line)
        if pending:
            lines.append(pending.decode(errors="replace").rstrip("\r"))
    finally:
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        shutil.rmtree(tmp, ignore_errors=True)
    console = "\n".join(lines)
    out_lines, ready = [], False
    for line in lines:
        if not ready:
            ready = MARK_READY in line
            continue
        m = MARK_EXIT.search(line)
        if m:
            status = int(m.group(1))
            break
        out_lines.append(line)
    return LabResult(status, "\n".join(out_lines), console, time.monotonic() - start, timed_out,
                     proc.pid if proc else None, tmp)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="lab.py", description="The cloison VM lab")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="boot the lab and run a payload script as root")
    r.add_argument("--payload", required=True, help="script to run inside the lab")
    r.add_argument("--file", action="append", default=[], metavar="HOST[:LAB]",
                   help="host file or directory to copy in (ELF files bring their libraries)")
    r.add_argument("--timeout", type=float, default=600)
    r.add_argument("--memory", type=int, default=2048, help="lab memory in MiB")
    r.add_argument("--cpus", type=int, default=1)
    r.add_argument("--kernel-log", action="store_true", help="keep kernel messages on the console")
    r.add_argument("--console", action="store_true", help="stream the whole console, not just the payload")
    g = sub.add_parser("guest-initramfs", help="build a nested guest initramfs")
    g.add_argument("--script", required=True)
    g.add_argument("--out", required=True)
    sub.add_parser("kernel", help="print the cached lab/guest kernel path")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "kernel":
            print(kernel_path())
            return 0
        if a.cmd == "guest-initramfs":
            with open(a.script) as f:
                build_guest_initramfs(a.out, f.read())
            return 0
        with open(a.payload) as f:
            payload = f.read()
        files = []
        for spec in a.file:
            host, _, dest = spec.partition(":")
            files.append((host, dest or None))
        started = [a.console]

        def show(line):
            if MARK_EXIT.search(line):
                started[0] = False
            elif started[0]:
                print(line, flush=True)
            elif MARK_READY in line:
                started[0] = True
        res = run(payload, files, a.timeout, a.memory, a.cpus, stream=show,
                  kernel_log=a.kernel_log)
    except OSError as e:
        print("lab.py: %s: %s" % (e.filename or "", e.strerror), file=sys.stderr)
        return 2
    except (LabError, subprocess.CalledProcessError) as e:
        print("lab.py: %s" % e, file=sys.stderr)
        return 2
    if res.timed_out:
        print("lab.py: timed out after %.0f s" % a.timeout, file=sys.stderr)
        return 124
    if res.status is None:
        print("lab.py: the payload never finished (lab crashed?); console tail:\n%s"
              % "\n".join(res.console.splitlines()[-30:]), file=sys.stderr)
        return 125
    print("lab.py: payload exit %d after %.1f s" % (res.status, res.duration), file=sys.stderr)
    return res.status


if __name__ == "__main__":
    sys.exit(main())
