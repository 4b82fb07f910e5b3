# SPDX-License-Identifier: Apache-2.0
"""The parts of cloison and the prefix of each one's global functions,
shared by scripts/check-prefixes.py and scripts/rename-symbols.py.

A part is a folder under src/.  Each static library (src/<part>) gives its
non-static functions one prefix, so that grep, ctags and a linker map give
one answer per name.  src/common keeps `cl_` followed by its own words
(cl_error_, cl_db_, cl_json_, cl_x...), which must not be one of the
other parts' words.
"""
import difflib
import functools
import json
import os
import re
import subprocess

# part (folder under src/) -> prefix of its non-static functions.
PREFIXES = {
    "common": "cl_",
    "container": "cl_ctr_",
    "vmm": "cl_vmm_",
    "image": "cl_img_",
    "net": "cl_net_",
    "manager": "cl_mgr_",
    "agent": "cl_agent_",
    "api": "cl_api_",
    # The front ends share only data (the command tables of cloison.h)
    # today; a function one of them gives the others is a cli_ one.
    "cli": "cli_",
}

# Words of a library's own name that a symbol may already carry after
# cl_ ("cl_container_create"): dropped when the part prefix is added
# ("cl_ctr_create").
PART_WORDS = {
    "container": ("container", "ctr"),
    "vmm": ("vmm",),
    "image": ("image", "img"),
    "net": ("net",),
    "manager": ("manager", "mgr"),
    "agent": ("agent",),
    "api": ("api",),
}

# C tokens, enough to tell code from strings and comments: a string, a
# character, a comment, an identifier, `->`, or one other character.
C_TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*|'
                     r'[A-Za-z_]\w*|->|\S', re.S)

# Function symbol types of nm: text (T), weak (W), indirect (i).
FUNCTION_TYPES = ("T", "W", "i")


def reserved_words():
    """Second words that common must not use: cl_<word>_ of another part."""
    return {p[len("cl_"):-1] for part, p in PREFIXES.items()
            if part != "common" and p.startswith("cl_")}


def symbol_prefix(sym):
    """The words that say whose a function is: the first two of a cl_ name
    (cl_ctr_create -> cl_ctr, cl_error_make -> cl_error), else the first
    (vm_create -> vm)."""
    words = sym.split("_")
    return "_".join(words[:2]) if words[0] == "cl" and len(words) > 1 else words[0]


def part_of(path, root):
    """'container' for <root>/src/container/..., else None."""
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    bits = rel.split(os.sep)
    if len(bits) >= 3 and bits[0] == "src":
        return bits[1]
    return None


def targets(builddir):
    """meson's view of the build: a list of dicts (introspect --targets)."""
    return json.loads(_introspect(os.path.realpath(builddir)))


@functools.lru_cache(maxsize=None)
def _introspect(builddir):
    return subprocess.run(["meson", "introspect", "--targets", builddir],
                          check=True, capture_output=True, text=True).stdout


def nm_functions(path):
    """Defined global function symbols of an archive or object file."""
    out = subprocess.run(["nm", "--defined-only", "-g", path],
                         check=True, capture_output=True, text=True).stdout
    syms = set()
    for line in out.splitlines():
        bits = line.split()
        if len(bits) == 3 and bits[1] in FUNCTION_TYPES:
            syms.add(bits[2])
    return syms


def libraries(builddir, root):
    """{part: (archive path, set of function symbols)} of the static
    libraries built from src/<part>."""
    libs = {}
    for t in targets(builddir):
        if t["type"] != "static library":
            continue
        part = part_of(t["defined_in"], root)
        if part is None:
            continue
        archive = t["filename"][0]
        syms = nm_functions(archive) if os.path.exists(archive) else set()
        prev = libs.get(part, (archive, set()))
        libs[part] = (archive, prev[1] | syms)
    return libs


def executables(builddir, root):
    """[(part, target name, {symbol: object})] for the executables defined
    in src/<part>/meson.build: the functions of their own objects (those
    compiled from src/<part>), not of the libraries they link."""
    exes = []
    for t in targets(builddir):
        if t["type"] != "executable":
            continue
        part = part_of(t["defined_in"], root)
        if part is None:
            continue
        objdir = t["filename"][0] + ".p"
        if not os.path.isdir(objdir):
            continue
        own = {}
        sources = [s for ts in t.get("target_sources", []) for s in ts.get("sources", [])]
        for src in sources:
            if part_of(src, root) != part:
                continue
            obj = os.path.join(objdir, os.path.basename(src) + ".o")
            if os.path.exists(obj):
                for s in nm_functions(obj):
                    own[s] = os.path.relpath(src, root)
        exes.append((part, t["name"], own))
    return exes


# A function definition in GNU style: the name at the start of a line,
# then its parameters, then a body.  The return type is on the line(s)
# before; `static` there (or on any declaration in the file) makes it
# file-local.
_DEF = re.compile(r"^([A-Za-z_]\w*) ?\(", re.M)
_STATIC_DECL = r"^static\b[^;{}()=]*?\b%s\s*\("


def defined_functions(text):
    """(globals, statics): names of the functions a C file defines."""
    glob, stat = set(), set()
    for m in _DEF.finditer(text):
        name = m.group(1)
        depth, i = 0, m.end() - 1
        while i < len(text):
            c = text[i]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        rest = text[i + 1:i + 200].lstrip()
        while rest.startswith("__attribute__"):
            rest = re.sub(r"^__attribute__\s*\(\(.*?\)\)\s*", "", rest, flags=re.S)
        if not rest.startswith("{"):
            continue
        before = text[:m.start()].rstrip().splitlines()
        type_line = before[-1] if before else ""
        if re.search(r"\bstatic\b", type_line) or \
                re.search(_STATIC_DECL % re.escape(name), text, re.M):
            stat.add(name)
        elif name != "main":
            glob.add(name)
    return glob, stat


def static_names(text):
    """Names a C file declares or defines as static functions."""
    return set(re.findall(r"^static\b[^;{}()=]*?\b([A-Za-z_]\w*)\s*\(", text, re.M)) | \
        defined_functions(text)[1]


def format_changed_lines(root, changed):
    """clang-format --lines over the C lines a script changed ({path:
    (text before, text after)}): a call whose name grew keeps its
    arguments aligned and within the column limit; the other lines of the
    file are left as they are."""
    if subprocess.run(["which", "clang-format"], capture_output=True).returncode != 0:
        return
    for f, (before, after) in sorted(changed.items()):
        if not f.endswith((".c", ".h")):
            continue
        sm = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(),
                                     autojunk=False)
        lines = ["--lines=%d:%d" % (j1 + 1, j2) for op, _, _, j1, j2 in sm.get_opcodes()
                 if op in ("replace", "insert") and j2 > j1]
        if lines:
            subprocess.run(["clang-format", "-i", "--style=file"] + lines +
                           [os.path.join(root, f)], cwd=root, check=True)
