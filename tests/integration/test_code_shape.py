# SPDX-License-Identifier: Apache-2.0
"""The shape of the code: within each folder of src/ the files depend on
each other in one direction (scripts/check-file-deps.py, from the built
objects)."""
import os
import subprocess
import sys

from conftest import BUILD, ROOT, binary

CHECK = os.path.join(ROOT, "scripts", "check-file-deps.py")


def run_check(build_dir):
    return subprocess.run([sys.executable, CHECK, build_dir], capture_output=True, text=True,
                          timeout=120)


# Folders whose circles are not taken apart yet, with the reason.  Only
# these may have circles; an entry whose folder has none fails, so that
# it goes with its circles.
PENDING = set()


def test_no_circle_between_the_files_of_a_folder():
    binary("cloison")  # the tree is built
    out = run_check(BUILD)
    circles = {line.split(":")[0][len("src/"):] for line in out.stdout.splitlines()
               if line.startswith("src/")}
    assert circles <= PENDING, out.stdout + out.stderr
    assert circles == PENDING, "no circle left in %s: remove it from PENDING" % (PENDING - circles)
    if not circles:
        assert out.returncode == 0 and "no circle" in out.stdout, out.stdout + out.stderr


def test_every_library_folder_is_read():
    """Not a vacuous pass: each library's objects are found and linked
    into a graph with edges."""
    for lib in ("container", "vmm", "image", "net", "manager"):
        out = subprocess.run([sys.executable, CHECK, "--graph", lib, BUILD], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert len(out.stdout.splitlines()) >= 5, (lib, out.stdout)


def test_the_check_finds_a_circle(tmp_path):
    """Two objects that call each other (built here with cc) are reported
    with the symbols of each direction; one direction alone passes."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.c").write_text("int b_fn (void);\nint a_fn (void) { return b_fn () + 1; }\n")
    (src / "b.c").write_text("int a_fn (void);\nint b_fn (void) { return a_fn () + 2; }\n")
    (src / "c.c").write_text("int a_fn (void);\nint c_fn (void) { return a_fn (); }\n")
    objdir = tmp_path / "build" / "src" / "demo" / "libdemo.a.p"
    objdir.mkdir(parents=True)
    for name in ("a.c", "b.c", "c.c"):
        subprocess.run(["cc", "-c", "-o", str(objdir / (name + ".o")), str(src / name)],
                       check=True)
    out = run_check(str(tmp_path / "build"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "src/demo: circle a.c -> b.c -> a.c" in out.stdout
    assert "a.c -> b.c: b_fn" in out.stdout
    assert "b.c -> a.c: a_fn" in out.stdout
    assert "c.c" not in out.stdout

    os.unlink(objdir / "b.c.o")
    out = run_check(str(tmp_path / "build"))
    assert out.returncode == 0, out.stdout + out.stderr
