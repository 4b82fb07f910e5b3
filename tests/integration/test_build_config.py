# SPDX-License-Identifier: Apache-2.0
"""The default configuration, the one a user builds and installs: built in
a temporary directory (without the unit tests, to save time), installed
with `meson install --destdir`, its binaries carry none of the test
switches of the test build (fault injection, build-tree paths: see
docs/building.md), and the installed cloison finds its own installed
pieces (cloison-monitor in libexecdir/cloison, the built-in image in
datadir/cloison) and nothing in the build tree."""
import json
import os
import subprocess

import pytest

from cloison_cli import ROOT

# Names that only the test build may contain: the environment switches it
# reads and the functions of the fault-injection code.
FORBIDDEN = [
    b"CLOISON_NET_TEST_",
    b"CLOISON_MOVE_TEST_",
    b"CLOISON_VMM_SECCOMP",
    b"CLOISON_VMM_DEBUG",
    b"CLOISON_MONITOR",
    b"CLOISON_IMAGE_DATA",
    b"CLOISON_SEALED_EXE_MEMFD",
    b"cl_net_crash_point",
    b"cl_crash_point",
]
PREFIX = "/usr/local"


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert p.returncode == 0, "%s: exit %d\n%s%s" % (" ".join(cmd), p.returncode, p.stdout,
                                                     p.stderr)
    return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(build dir, destdir): the default configuration built and installed."""
    top = tmp_path_factory.mktemp("default-build")
    build, dest = str(top / "build"), str(top / "dest")
    # A clean environment: nothing of the caller's build settings leaks in.
    env = {k: v for k, v in os.environ.items()
           if k not in ("CFLAGS", "LDFLAGS", "CPPFLAGS", "MESON_BUILD_ROOT")}
    run(["nice", "-n", "5", "meson", "setup", build, "-Dtests=false", "--prefix", PREFIX],
        cwd=ROOT, env=env)
    run(["nice", "-n", "5", "ninja", "-C", build], env=env)
    run(["meson", "install", "-C", build, "--destdir", dest, "--quiet"], env=env)
    return build, dest


def installed_programs(dest):
    out = []
    for d, _, files in os.walk(dest):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    out.append(p)
    return sorted(out)


def test_default_options_are_off(installed):
    build, _ = installed
    info = subprocess.run(["meson", "introspect", "--buildoptions", build],
                          capture_output=True, text=True, check=True).stdout
    opts = {o["name"]: o["value"] for o in json.loads(info)}
    assert opts["fault_injection"] is False and opts["build_tree_paths"] is False


def test_install_layout(installed):
    _, dest = installed
    root = dest + PREFIX
    programs = [os.path.relpath(p, root) for p in installed_programs(dest)]
    assert programs == ["bin/cloison", "bin/cloison-runtime", "bin/cloison-vmm", "bin/cloisond",
                        "libexec/cloison/cloison-monitor", "libexec/cloison/cloison-project",
                        "libexec/cloison/cloison-vmctr", "libexec/cloison/cloison-vmmon"], programs
    assert os.path.isfile(os.path.join(root, "share/cloison/busybox-rootfs.tar"))
    # the web console's files (docs/ui.md)
    assert os.path.isfile(os.path.join(root, "share/cloison/ui/index.html"))


def test_no_test_switches_in_installed_binaries(installed):
    build, dest = installed
    programs = installed_programs(dest)
    assert programs
    for p in programs:
        # strings(1) and more: every byte of the file, debug info included
        with open(p, "rb") as f:
            data = f.read()
        found = [n.decode() for n in FORBIDDEN if n in data]
        assert not found, "%s contains %s" % (p, found)
        symbols = subprocess.run(["nm", "-a", p], capture_output=True, text=True).stdout
        assert "crash_point" not in symbols, p
        # no path into the build tree among the string constants (the
        # debug info names the build directory, .rodata must not)
        rodata = p + ".rodata"
        run(["objcopy", "-O", "binary", "--only-section=.rodata", p, rodata])
        with open(rodata, "rb") as f:
            assert build.encode() not in f.read(), p
        os.unlink(rodata)


def test_vmm_help_lists_the_debug_flags(installed):
    _, dest = installed
    out = run([dest + PREFIX + "/bin/cloison-vmm", "--help"]).stdout
    for flag in ("--no-seccomp", "--seccomp-log", "--debug"):
        assert flag in out, out


def test_installed_cloison_runs_installed_monitor(installed, tmp_path):
    """A container launched by the installed cloison: its monitor is the
    installed cloison-monitor and its image the installed busybox."""
    build, dest = installed
    cloison = dest + PREFIX + "/bin/cloison"
    state = str(tmp_path / "root")
    name = "installed"
    run([cloison, "--root", state, "launch", "busybox", name, "--no-network", "--",
         "sleep", "30"])
    try:
        info = json.loads(run([cloison, "--root", state, "info", name]).stdout)
        assert info["status"] == "running", info
        exe = os.readlink("/proc/%d/exe" % info["monitor_pid"])
        assert exe == dest + PREFIX + "/libexec/cloison/cloison-monitor", exe
    finally:
        run([cloison, "--root", state, "delete", "--force", name])


def test_uninstalled_default_build_does_not_use_its_build_tree(installed, tmp_path):
    """The same binary run from its build directory finds nothing there:
    it looks only in the install prefix (not installed here)."""
    build, _ = installed
    if os.path.exists(PREFIX + "/share/cloison/busybox-rootfs.tar"):
        pytest.fail("cloison is installed in %s on this machine: this test needs it not to be"
                    % PREFIX)
    p = subprocess.run([os.path.join(build, "src", "cli", "cloison"), "--root",
                        str(tmp_path / "root"), "launch", "busybox", "uninstalled",
                        "--no-network", "--", "true"], capture_output=True, text=True)
    assert p.returncode != 0
    assert PREFIX + "/share/cloison/busybox-rootfs.tar" in p.stderr, p.stderr
