"""The foundation itself: binaries build and answer --version."""
import subprocess

from conftest import binary


def test_binaries_report_version():
    for name in ("cloison", "cloison-runtime", "cloison-vmm"):
        out = subprocess.run([binary(name), "--version"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "0.1.0" in out.stdout


def test_busybox_rootfs_and_runc_bundle(bundle):
    """The shared bundle fixture is a valid OCI bundle: runc runs it."""
    d = bundle(args=["/bin/echo", "hello"])
    out = subprocess.run(["runc", "--root", d + "/.runc", "run", "--bundle", d, "fixture-check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello"
