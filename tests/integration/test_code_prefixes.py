# SPDX-License-Identifier: Apache-2.0
"""One name per thing: the prefixes of the libraries' functions
(scripts/check-prefixes.py over build/), and the scripts that rename them,
check strdup and add the SPDX lines: their rules on small made-up inputs,
and that the tree needs none of them any more."""
import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT

SCRIPTS = os.path.join(ROOT, "scripts")


def load(name):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"),
                                                  os.path.join(SCRIPTS, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, SCRIPTS)
    spec.loader.exec_module(mod)
    return mod


rs = load("rename-symbols")
xs = load("xstrdup")
spdx = load("add-spdx")
sp = load("symbol_parts")


def run(*args):
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


def test_build_has_one_prefix_per_part():
    if not os.path.exists(os.path.join(BUILD, "build.ninja")):
        pytest.fail("build/ is not configured: run scripts/build.sh")
    p = run(os.path.join(SCRIPTS, "check-prefixes.py"), BUILD)
    assert p.returncode == 0, p.stdout + p.stderr
    assert ", 0 findings" in p.stdout


def test_tree_needs_no_rename():
    p = run(os.path.join(SCRIPTS, "rename-symbols.py"), "--no-build", "--dry-run")
    assert p.returncode == 0, p.stderr
    assert "\n0 functions to rename\n" in "\n" + p.stdout, p.stdout
    assert "\n0 files to rename\n" in p.stdout, p.stdout
    # No old name left either (scripts/renamed-symbols.txt): code and docs
    # written against the old names were renamed too.
    assert "\n0 files would change\n" in p.stdout, p.stdout


def test_no_unchecked_strdup_in_src():
    p = run(os.path.join(SCRIPTS, "xstrdup.py"), "--dry-run")
    assert p.returncode == 0 and "0 strdup calls in 0 files" in p.stdout, p.stdout


def test_every_source_file_has_spdx():
    p = run(os.path.join(SCRIPTS, "add-spdx.py"), "--dry-run")
    assert p.returncode == 0 and p.stdout.startswith("0 files"), p.stdout


# --- the rules, on made-up names (foo_*: not cloison's) ---------------------

def test_prefix_of_a_symbol():
    assert sp.symbol_prefix("cl_ctr_create") == "cl_ctr"
    assert sp.symbol_prefix("cl_error_make") == "cl_error"
    assert sp.symbol_prefix("vm_create") == "vm"


def test_mapping_drops_the_part_word_and_falls_back_on_collision():
    symbols = {"container": {"cl_container_foo", "foo_get", "cl_ctr_ok", "cl_foo_put"},
               "manager": {"foo_set", "cl_manager_foo_open"},
               "common": {"cl_foo_common", "bare_common"}}
    mapping, problems = rs.compute_mapping(symbols, identifiers=set())
    assert not problems
    assert mapping == {"cl_container_foo": "cl_ctr_foo", "foo_get": "cl_ctr_foo_get",
                       "cl_foo_put": "cl_ctr_foo_put", "foo_set": "cl_mgr_foo_set",
                       "cl_manager_foo_open": "cl_mgr_foo_open", "bare_common": "cl_bare_common"}
    # cl_ctr_foo is taken (a type, a static...): keep the part word.
    mapping, problems = rs.compute_mapping({"container": {"cl_container_foo"}}, {"cl_ctr_foo"})
    assert mapping == {"cl_container_foo": "cl_ctr_container_foo"} and not problems
    # Both taken: nothing is renamed, the collision is listed.
    mapping, problems = rs.compute_mapping({"container": {"cl_container_foo"}},
                                           {"cl_ctr_foo", "cl_ctr_container_foo"})
    assert mapping == {} and len(problems) == 1
    # An internal x beside the public cl_x: the public one keeps the name.
    mapping, _ = rs.compute_mapping({"manager": {"foo_run", "cl_foo_run"}}, set())
    assert mapping == {"cl_foo_run": "cl_mgr_foo_run", "foo_run": "cl_mgr_foo_run_internal"}
    # One name in two libraries is a problem, not a guess.
    _, problems = rs.compute_mapping({"container": {"foo_x"}, "vmm": {"foo_x"}}, set())
    assert problems


C_SRC = '''#include "manager/foo.h"
/* foo_get returns the row; see foo_put. */
static int foo_put (int x);
struct foo_get { int foo_get; };
int
bar (struct foo_get *s)
{
  const char *name = "foo_get";
  int (*fn) (void) = foo_get;
  return foo_get () + s->foo_get + s[0].foo_get + foo_put (1) + (int) sizeof name + !!fn;
}
'''


def test_c_renames_calls_and_comments_only():
    m = {"foo_get": "cl_mgr_foo_get", "foo_put": "cl_mgr_foo_put"}
    out = rs.rename_c(C_SRC, m)
    assert "/* cl_mgr_foo_get returns the row; see foo_put. */" in out  # static foo_put stays
    assert "static int foo_put (int x);" in out and "foo_put (1)" in out
    assert "struct foo_get { int foo_get; };" in out       # tag and member
    assert '"foo_get"' in out                               # string
    assert "= cl_mgr_foo_get;" in out                       # function as a value
    assert "return cl_mgr_foo_get () + s->foo_get + s[0].foo_get" in out
    assert rs.rename_c(out, m) == out


def test_static_definition_in_gnu_style_keeps_its_name():
    src = "__attribute__ ((noreturn)) static void\nfoo_get (int a,\n         int b)\n{\n}\n" \
          "void\nbaz (void)\n{\n  foo_get (1, 2);\n}\n"
    assert rs.rename_c(src, {"foo_get": "cl_mgr_foo_get"}) == src
    glob, stat = sp.defined_functions(src)
    assert glob == {"baz"} and stat == {"foo_get"}


def test_python_renames_comments_and_symbol_strings_only():
    src = ('# foo_get is called by the monitor\n'
           'def foo_get():\n'
           '    return "foo_put"\n'
           'x = ["foo_put", "check foo_put here", "see cl_foo_x"]  # foo_put\n'
           'foo_put = 1\n')
    m = {"foo_get": "cl_mgr_foo_get", "foo_put": "cl_mgr_foo_put", "cl_foo_x": "cl_ctr_foo_x"}
    out = rs.rename_py(src, m)
    assert out == ('# foo_get is called by the monitor\n'   # a Python def of that name
                   'def foo_get():\n'
                   '    return "cl_mgr_foo_put"\n'
                   'x = ["cl_mgr_foo_put", "check foo_put here", "see cl_ctr_foo_x"]'
                   '  # cl_mgr_foo_put\n'
                   'foo_put = 1\n')
    assert rs.rename_py(out, m) == out


def test_markdown_and_shell():
    m = {"foo_get": "cl_mgr_foo_get"}
    assert rs.rename_md('`foo_get()` and "foo_get"', m) == '`cl_mgr_foo_get()` and "foo_get"'
    assert rs.rename_shell("check foo_get x  # foo_get\n", m) == \
        "check foo_get x  # cl_mgr_foo_get\n"


def test_file_renames(tmp_path):
    for f in ("src/manager/vm.c", "src/manager/vm.h", "src/vmm/vm.h", "src/vmm/vmm.c",
              "src/cli/vmm.c", "src/agent/init.c", "src/container/init.c",
              "src/manager/only.c", "src/manager/meson.build"):
        p = tmp_path / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("")
    ren = rs.file_renames(str(tmp_path), {"manager", "vmm", "container"})
    assert sorted(ren) == [("container", "init.c", "ctr_init.c"),
                           ("manager", "vm.c", "mgr_vm.c"), ("manager", "vm.h", "mgr_vm.h"),
                           ("vmm", "vm.h", "vmm_vm.h")]
    meson = "files('vm.c', 'vm_agent.c')\nextract_objects('vm.c')\n"
    out = rs.rename_paths(meson, ren, "manager")
    assert out == "files('mgr_vm.c', 'vm_agent.c')\nextract_objects('mgr_vm.c')\n"
    c = '#include "manager/vm.h"\n#include "vmm/vm.h"\n/* src/manager/vm.c, vm.c */\n'
    out = rs.rename_paths(c, ren, "image")
    assert out == '#include "manager/mgr_vm.h"\n#include "vmm/vmm_vm.h"\n' \
                  '/* src/manager/mgr_vm.c, vm.c */\n'
    assert rs.rename_paths(out, ren, "image") == out


def test_xstrdup_conversion():
    src = ('#include "image/image.h"\n#include <string.h>\n'
           'char *a = strdup (x), *b = cl_strdup_printf ("%s", "strdup (y)");\n'
           '/* strdup (z) */ char *c = o->strdup (w), *d = cl_xstrdup (v), *e = strdup(u);\n')
    out, n = xs.convert(src)
    assert n == 2
    assert out == ('#include "image/image.h"\n#include "common/util.h"\n#include <string.h>\n'
                   'char *a = cl_xstrdup (x), *b = cl_strdup_printf ("%s", "strdup (y)");\n'
                   '/* strdup (z) */ char *c = o->strdup (w), *d = cl_xstrdup (v), '
                   '*e = cl_xstrdup(u);\n')
    assert xs.convert(out) == (out, 0)


def test_spdx_lines():
    assert spdx.add("int x;\n", "c") == "/* SPDX-License-Identifier: Apache-2.0 */\nint x;\n"
    sh = spdx.add("#!/bin/sh\necho\n", "hash")
    assert sh == "#!/bin/sh\n# SPDX-License-Identifier: Apache-2.0\necho\n"
    assert spdx.add(sh, "hash") == sh
    assert spdx.style("src/meson.build", "") == "hash"
    assert spdx.style("bench/x.json", "{}") is None
    assert spdx.style("bench/launch", "#!/usr/bin/python3\n") == "hash"


def test_record_of_earlier_renames(tmp_path):
    (tmp_path / "scripts").mkdir()
    rs.save_record(str(tmp_path), {"foo_get": "cl_mgr_foo_get"},
                   [("manager", "vm.c", "mgr_vm.c"), ("manager", "vm.c", "mgr_vm.c")])
    assert rs.load_record(str(tmp_path)) == ({"foo_get": "cl_mgr_foo_get"},
                                             [("manager", "vm.c", "mgr_vm.c")])
