# SPDX-License-Identifier: Apache-2.0
"""The cache of VM instances' warm templates (docs/templates.md) through
the real `cloison template` commands: list, remove, and the cap, which
removes the least recently used templates first.  The templates here are
directories of real files made by the test (building one needs a stock
guest, which only the VM lab boots: tests/lab/test_lab_vm_launch_template.py
builds, clones and caps real ones)."""
import json
import os

from cloison_cli import cl  # noqa: F401 (fixture)


def make_template(cl, name, size, used):
    d = os.path.join(cl.root, "manager", "vm-templates", name)
    os.makedirs(d)
    with open(os.path.join(d, "memory"), "wb") as f:
        f.write(os.urandom(size))
    with open(os.path.join(d, "state.json"), "w") as f:
        f.write("{}")
    open(d + ".lock", "w").close()
    os.utime(d, (used, used))
    return d


def names(cl):
    return [t["name"] for t in json.loads(cl("template", "ls", "--format", "json").stdout)]


def test_ls_rm_and_the_cap_removes_the_least_recently_used(cl):
    assert names(cl) == []
    assert cl("template", "cap").stdout.strip() == str(2 << 30)
    old = make_template(cl, "a" * 16, 1 << 20, 1000)
    make_template(cl, "b" * 16, 1 << 20, 3000)
    make_template(cl, "c" * 16, 1 << 20, 2000)
    listed = json.loads(cl("template", "ls", "--format", "json").stdout)
    assert sorted(t["name"] for t in listed) == ["a" * 16, "b" * 16, "c" * 16]
    assert all(t["size"] >= 1 << 20 for t in listed)
    table = cl("template", "ls").stdout
    assert "a" * 16 in table and "cap: %d bytes" % (2 << 30) in table
    # room for two: the oldest used goes, with its lock
    cl("template", "cap", "2500K")
    assert sorted(names(cl)) == ["b" * 16, "c" * 16]
    assert not os.path.exists(old) and not os.path.exists(old + ".lock")
    assert cl("template", "cap").stdout.strip() == str(2500 << 10)
    cl("template", "rm", "c" * 16)
    assert names(cl) == ["b" * 16]
    cl("template", "rm", "--all")
    assert names(cl) == []


def test_bad_input_is_one_line(cl):
    for args, msg in ((("template", "rm", "0" * 16), "template `%s` not found" % ("0" * 16)),
                      (("template", "rm", "../x"), "template `../x` not found"),
                      (("template", "cap", "1X"), "invalid template cap `1X`"),
                      (("template", "ls", "--format", "yaml"), "yaml"),
                      (("template", "frob"), "usage: cloison template")):
        p = cl(*args, check=False)
        assert p.returncode != 0, args
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and msg in lines[0], (args, p.stderr)
