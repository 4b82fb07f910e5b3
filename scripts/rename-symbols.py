#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One name per thing: gives every library's global functions its part's
prefix and every source file a name no other part uses.  Re-runnable: it
computes what to rename from the tree and the build as they are when it
runs, and a second run changes nothing.

    scripts/rename-symbols.py [--build DIR] [--no-build] [--dry-run]
                              [--symbols-only | --files-only]

1. Functions.  Builds DIR (default build/, by scripts/build.sh) and reads each static library
   of src/<part> with nm (plus the functions the part's .c files define
   outside this configuration: #if'd code, files another configuration
   builds).  A global function that does not start with its part's prefix
   (scripts/symbol_parts.py: container cl_ctr_, vmm cl_vmm_, image cl_img_,
   net cl_net_, manager cl_mgr_, agent cl_agent_, api cl_api_) gets it:
       cl_<part word>_x -> <prefix>x     cl_container_create -> cl_ctr_create
       cl_x             -> <prefix>x     cl_snapshot_create  -> cl_mgr_snapshot_create
       <part word>_x    -> <prefix>x     net_dir             -> cl_net_dir
       x                -> <prefix>x     vm_create (vmm)     -> cl_vmm_vm_create
   except the names of OVERRIDES below.  src/common keeps its names (a
   common function without cl_ gets cl_).  A new name that would collide
   with another one (or with any identifier already in the tree) keeps the
   part word (cl_ctr_container_x); an internal x that meets a public cl_x
   becomes <prefix>x_internal (the public one is served first); if that
   collides too, nothing is written and the collision is listed (add an
   override).
   Where the names change:
   - C (src/, tests/, bench/): identifier tokens, and words in comments;
     never inside string literals, after `.`/`->` (members),
     `struct`/`union`/`enum` (tags) or a type (`int name;`: a variable or
     a member of that name); and never in a file that declares a
     static function of the same name (that file's own function keeps its
     name: image/store.c's static store_init is not the manager's).
   - Python (tests/, bench/, scripts/): comments; strings that are exactly
     a function name ("net_crash_point", as a test of the symbols of a
     binary writes it); cl_ names inside other strings and docstrings.
     Never Python identifiers.
   - shell: comments.  Markdown (README.md, docs/, tests/, bench/): every
     word, except a "quoted" one (a JSON key).
2. Files.  A file stem (vm for vm.c and vm.h) found in two or more src/
   folders is renamed in each library folder to <part>_<stem>, with the
   part's prefix word (manager/vm.c -> manager/mgr_vm.c, vmm/vm.h ->
   vmm/vmm_vm.h, image/store.c -> image/img_store.c, container/init.c ->
   container/ctr_init.c); a stem that already starts with the part's word
   (vmm/vmm.c, beside cli/vmm.c) keeps it.  Folders that only build executables (src/agent,
   src/cli) keep their names: once the libraries' copies are renamed,
   theirs is the only one.  `git mv`, then every reference is fixed:
   "<part>/<file>" anywhere (#include lines, meson paths, docs) and the
   bare file name in the files of the same folder (meson.build lists,
   comments).
3. What it renamed is kept in scripts/renamed-symbols.txt (commit it):
   a later run renames those names again in code merged since (a branch
   that still calls store_get or includes "manager/vm.h").
4. The C lines it changed are formatted by clang-format --lines (only
   those: a renamed call keeps its arguments aligned, within 100 columns).
"""
import argparse
import io
import os
import re
import subprocess
import sys
import tokenize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import symbol_parts as sp  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Hand overrides, for readability: old name -> new name.
OVERRIDES = {
    # With the other cgroup helpers of cgroup_hierarchy.c.
    "cl_read_self_cgroup": "cl_ctr_cgroup_read_self",
    # A digest helper (image/digest.c), not a general one.
    "cl_is_hex": "cl_img_digest_is_hex",
    # What cl_instance_start/stop do once they hold the instance's lock
    # (manager/internal.h); the public names take cl_mgr_instance_start.
    "instance_start": "cl_mgr_instance_start_locked",
    "instance_stop": "cl_mgr_instance_stop_locked",
    # The store opener under the public ones (image/builtin.c).
    "cl_store_open": "cl_img_store_open_internal",
}

# Files this pipeline owns: they name old symbols on purpose.
OWN_FILES = {
    "scripts/rename-symbols.py", "scripts/check-prefixes.py", "scripts/symbol_parts.py",
    "scripts/xstrdup.py", "scripts/add-spdx.py", "scripts/renamed-symbols.txt",
    "tests/integration/test_code_prefixes.py",
}

SCAN_DIRS = ("src", "tests", "bench", "scripts", "docs")


# ---------------------------------------------------------------------------
# The mapping


def new_name(part, sym, keep_word=False):
    """The prefixed name of a global function of src/<part>, or None when
    it already has it."""
    if sym in OVERRIDES:
        return OVERRIDES[sym]
    prefix = sp.PREFIXES[part]
    if part == "common":
        return None if sym.startswith("cl_") else "cl_" + sym
    if sym.startswith(prefix):
        return None
    rest = sym[3:] if sym.startswith("cl_") else sym
    if not keep_word:
        for w in sp.PART_WORDS.get(part, ()):
            if rest.startswith(w + "_"):
                rest = rest[len(w) + 1:]
                break
    return prefix + rest


def compute_mapping(symbols, identifiers):
    """symbols: {part: set of global functions}; identifiers: every
    identifier in the tree.  Returns (mapping old -> new, problems)."""
    mapping, problems = {}, []
    owner = {}
    for part, syms in symbols.items():
        for s in syms:
            owner.setdefault(s, part)
    taken = set(owner)
    for part in sorted(symbols):
        if part not in sp.PREFIXES:
            problems.append("src/%s: no prefix in scripts/symbol_parts.py" % part)
            continue
        # The public cl_ names first: they keep the plain new name when an
        # internal one would map to it too (cl_x and x -> <prefix>x).
        for sym in sorted(symbols[part], key=lambda s: (not s.startswith("cl_"), s)):
            if owner[sym] != part:
                problems.append("%s is defined in src/%s and src/%s" % (sym, owner[sym], part))
                continue
            cands = [new_name(part, sym)]
            if cands[0] is None:
                continue
            if sym not in OVERRIDES:
                alt = new_name(part, sym, keep_word=True)
                if alt != cands[0]:
                    cands.append(alt)
                if not sym.startswith("cl_"):
                    cands.append(cands[0] + "_internal")
            for c in cands:
                if c not in taken and c not in identifiers:
                    mapping[sym] = c
                    taken.add(c)
                    break
            else:
                problems.append("%s (src/%s): %s already names something; add an override"
                                % (sym, part, " / ".join(cands)))
    return mapping, problems


# ---------------------------------------------------------------------------
# Rewriting text

_C_TOKEN = sp.C_TOKEN
_WORD = re.compile(r"[A-Za-z_]\w*")


def _sub_words(text, mapping, keep=frozenset(), only=None):
    def repl(m):
        w = m.group(0)
        if w in keep or (only is not None and not only(w)):
            return w
        return mapping.get(w, w)
    return _WORD.sub(repl, text)


_C_KEYWORDS = {"return", "sizeof", "case", "else", "do", "goto", "typeof", "__typeof__",
               "_Alignof", "alignof"}


def _declares(prev, nxt):
    """Whether a name between these tokens is declared as a variable or a
    member (`int name;`, `char *name,`) rather than used as a function
    (called, or taken as a value: `= name`, `(name)`, `, name`)."""
    if nxt == "(":
        return False
    return prev == "*" or (bool(_WORD.fullmatch(prev or "")) and prev not in _C_KEYWORDS)


def rename_c(text, mapping):
    """The C source text with mapping applied (see the module comment)."""
    keep = sp.static_names(text) & set(mapping)
    toks = list(_C_TOKEN.finditer(text))
    code = [i for i, m in enumerate(toks) if not m.group(0).startswith(("/*", "//"))]
    around = {}  # token index -> (previous, next) code token
    for j, i in enumerate(code):
        around[i] = (toks[code[j - 1]].group(0) if j else None,
                     toks[code[j + 1]].group(0) if j + 1 < len(code) else None)
    out, last = [], 0
    for i, m in enumerate(toks):
        tok = m.group(0)
        rep = tok
        if tok.startswith(("/*", "//")):
            rep = _sub_words(tok, mapping, keep)
        elif tok in mapping and tok not in keep:
            prev, nxt = around[i]
            if prev not in (".", "->", "struct", "union", "enum") and not _declares(prev, nxt):
                rep = mapping[tok]
        if rep != tok:
            out.append(text[last:m.start()])
            out.append(rep)
            last = m.end()
    out.append(text[last:])
    return "".join(out)


def rename_py(text, mapping):
    """Python: comments, strings that are exactly a function name, cl_
    names in other strings.  Never identifiers."""
    defined = set(re.findall(r"^\s*def\s+(\w+)", text, re.M))
    lines = text.splitlines(keepends=True)
    starts = [0]
    for ln in lines:
        starts.append(starts[-1] + len(ln))
    edits = []
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return text
    for t in toks:
        if t.type not in (tokenize.COMMENT, tokenize.STRING):
            continue
        a = starts[t.start[0] - 1] + t.start[1]
        b = starts[t.end[0] - 1] + t.end[1]
        s = text[a:b]
        if t.type == tokenize.COMMENT:
            new = _sub_words(s, mapping, defined)
        else:
            m = re.fullmatch(r"([rRbBuUfF]*)(['\"])(\w+)\2", s)
            if m and m.group(3) in mapping and m.group(3) not in defined:
                new = m.group(1) + m.group(2) + mapping[m.group(3)] + m.group(2)
            else:
                new = _sub_words(s, mapping, defined, only=lambda w: w.startswith("cl_"))
        if new != s:
            edits.append((a, b, new))
    for a, b, new in reversed(edits):
        text = text[:a] + new + text[b:]
    return text


def rename_shell(text, mapping):
    """Shell and other scripts: comments only."""
    out = []
    for line in text.splitlines(keepends=True):
        m = re.search(r"(^|\s)#", line)
        if m and not line.startswith("#!"):
            i = m.end() - 1
            line = line[:i] + _sub_words(line[i:], mapping)
        out.append(line)
    return "".join(out)


def rename_md(text, mapping):
    """Markdown: every word but a "quoted" one."""
    def repl(m):
        w = m.group(0)
        a, b = m.start(), m.end()
        if a > 0 and b < len(text) and text[a - 1] == '"' and text[b] == '"':
            return w
        return mapping.get(w, w)
    return _WORD.sub(repl, text)


def kind_of(path, text):
    if path.endswith((".c", ".h")):
        return "c"
    if path.endswith(".md"):
        return "md"
    if path.endswith(".py") or re.match(r"#!.*python", text):
        return "py"
    if path.endswith((".sh", ".bash")) or re.match(r"#!.*\b(ba|da)?sh\b", text):
        return "sh"
    return None


RENAMERS = {"c": rename_c, "py": rename_py, "sh": rename_shell, "md": rename_md}


# ---------------------------------------------------------------------------
# The tree


def tree_files(root):
    """Tracked and new (not ignored) files of the work tree, relative."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root,
                         check=True, capture_output=True, text=True).stdout
    files = []
    for f in sorted(set(out.splitlines())):
        if not os.path.isfile(os.path.join(root, f)) or f in OWN_FILES:
            continue
        if f.split("/")[0] in SCAN_DIRS or ("/" not in f and f.endswith(".md")):
            files.append(f)
    return files


def read(root, f):
    try:
        with open(os.path.join(root, f), encoding="utf-8") as fh:
            return fh.read()
    except (UnicodeDecodeError, OSError):
        return None


def write(root, f, text):
    with open(os.path.join(root, f), "w", encoding="utf-8") as fh:
        fh.write(text)


def c_identifiers(root, files):
    ids = set()
    for f in files:
        if f.endswith((".c", ".h")):
            t = read(root, f)
            if t is not None:
                ids.update(tok for tok in _C_TOKEN.findall(t) if _WORD.fullmatch(tok))
    return ids


def library_symbols(builddir, root):
    """{part: global functions}: nm of each library, plus the global
    functions its folder's .c files define outside this configuration
    (not the sources of executables)."""
    libs = sp.libraries(builddir, root)
    exe_sources = set()
    for t in sp.targets(builddir):
        if t["type"] == "executable":
            for ts in t.get("target_sources", []):
                exe_sources.update(os.path.realpath(s) for s in ts.get("sources", []))
    symbols = {}
    for part, (_, syms) in libs.items():
        found = set(syms)
        d = os.path.join(root, "src", part)
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if name.endswith(".c") and os.path.realpath(p) not in exe_sources:
                found |= sp.defined_functions(read(root, os.path.relpath(p, root)) or "")[0]
        symbols[part] = found
    return symbols


def file_renames(root, lib_parts):
    """[(part, old name, new name)] for the stems found in two or more
    src/ folders (see the module comment)."""
    stems = {}
    src = os.path.join(root, "src")
    for part in sorted(os.listdir(src)):
        d = os.path.join(src, part)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            stem, ext = os.path.splitext(name)
            if ext in (".c", ".h"):
                stems.setdefault(stem, {}).setdefault(part, []).append(name)
    out = []
    for stem, parts in sorted(stems.items()):
        if len(parts) < 2:
            continue
        for part, names in sorted(parts.items()):
            if part not in lib_parts:
                continue
            word = sp.PREFIXES.get(part, "cl_" + part + "_")[3:-1] or part
            if stem == word or stem.startswith(word + "_") or stem == part:
                continue  # vmm/vmm.c already says whose it is
            for name in sorted(names):
                new = word + "_" + name
                if os.path.exists(os.path.join(src, part, new)):
                    raise SystemExit("src/%s/%s: cannot rename to %s, which exists"
                                     % (part, name, new))
                out.append((part, name, new))
    return out


def rename_paths(text, renames, folder):
    """References to renamed files: "<part>/<old>" anywhere; the bare name
    in a file of src/<part> itself (folder)."""
    for part, old, new in renames:
        text = re.sub(r"(?<![\w.-])%s/%s(?!\w)" % (re.escape(part), re.escape(old)),
                      "%s/%s" % (part, new), text)
        if folder == part:
            text = re.sub(r"(?<![\w./-])%s(?!\w)" % re.escape(old), new, text)
    return text


def folder_of(f):
    bits = f.split("/")
    return bits[1] if len(bits) >= 3 and bits[0] == "src" else None


RECORD = "scripts/renamed-symbols.txt"


def load_record(root):
    """(functions {old: new}, files [(part, old, new)]) renamed by earlier
    runs, from RECORD."""
    fns, files = {}, []
    p = os.path.join(root, RECORD)
    if os.path.exists(p):
        with open(p) as fh:
            for line in fh:
                bits = line.split()
                if len(bits) == 3 and bits[0] == "function":
                    fns[bits[1]] = bits[2]
                elif len(bits) == 4 and bits[0] == "file":
                    files.append((bits[1], bits[2], bits[3]))
    return fns, files


def save_record(root, fns, files):
    with open(os.path.join(root, RECORD), "w") as fh:
        fh.write("# What scripts/rename-symbols.py renamed: later runs rename these\n"
                 "# names again where code merged afterwards still uses them.\n"
                 "# function OLD NEW | file PART OLD NEW\n")
        for old in sorted(fns):
            fh.write("function %s %s\n" % (old, fns[old]))
        for part, old, new in sorted(set(files)):
            fh.write("file %s %s %s\n" % (part, old, new))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--no-build", action="store_true", help="use the build as it is")
    ap.add_argument("--dry-run", action="store_true", help="print, write nothing")
    ap.add_argument("--symbols-only", action="store_true")
    ap.add_argument("--files-only", action="store_true")
    args = ap.parse_args()
    root = ROOT

    if not args.files_only and not args.no_build:
        build_sh = os.path.join(root, "scripts", "build.sh")
        if os.path.realpath(args.build) == os.path.join(root, "build") and \
                os.path.exists(build_sh):
            subprocess.run([build_sh], cwd=root, check=True)  # the tree's own way
        else:
            if not os.path.exists(os.path.join(args.build, "build.ninja")):
                subprocess.run(["meson", "setup", args.build], cwd=root, check=True)
            subprocess.run(["ninja", "-C", args.build], cwd=root, check=True,
                           stdout=subprocess.DEVNULL)
    files = tree_files(root)
    originals = {}  # path now -> text before this run

    def update(f, new, old):
        if new != old:
            originals.setdefault(f, old)
            if not args.dry_run:
                write(root, f, new)

    record_fns, record_files = load_record(root)
    if not args.files_only:
        symbols = library_symbols(args.build, root)
        mapping, problems = compute_mapping(symbols, c_identifiers(root, files))
        if problems:
            for p in problems:
                print("rename-symbols: " + p, file=sys.stderr)
            return 1
        for old in sorted(mapping):
            print("%-40s -> %s" % (old, mapping[old]))
        print("%d functions to rename" % len(mapping))
        # Names renamed by an earlier run, for code merged since: unless a
        # library defines that name again (then it is renamed as above).
        defined = set().union(*symbols.values()) if symbols else set()
        record_fns = {o: n for o, n in record_fns.items() if o not in defined}
        record_fns.update(mapping)
        mapping = record_fns
        for f in files if mapping else ():
            text = read(root, f)
            kind = text is not None and kind_of(f, text)
            if kind:
                update(f, RENAMERS[kind](text, mapping), text)

    if not args.symbols_only:
        lib_parts = set(sp.libraries(args.build, root)) if \
            os.path.exists(os.path.join(args.build, "build.ninja")) else set()
        renames = file_renames(root, lib_parts or set(sp.PREFIXES) - {"cli", "agent"})
        for part, old, new in renames:
            print("src/%s/%s -> src/%s/%s" % (part, old, part, new))
        print("%d files to rename" % len(renames))
        if not args.dry_run:
            for part, old, new in renames:
                a, b = "src/%s/%s" % (part, old), "src/%s/%s" % (part, new)
                if subprocess.run(["git", "mv", a, b], cwd=root).returncode != 0:
                    os.rename(os.path.join(root, a), os.path.join(root, b))
                if a in originals:
                    originals[b] = originals.pop(a)
        # References to files renamed now or by an earlier run.
        done = [r for r in record_files
                if not os.path.exists(os.path.join(root, "src", r[0], r[1]))]
        record_files = sorted(set(done + renames))
        for f in tree_files(root) if record_files else ():
            text = read(root, f)
            if text is not None:
                update(f, rename_paths(text, record_files, folder_of(f)), text)

    if not args.dry_run and (record_fns or record_files):
        save_record(root, record_fns, record_files)
    if not args.dry_run and originals:
        sp.format_changed_lines(root, {f: (old, read(root, f)) for f, old in originals.items()
                                       if os.path.exists(os.path.join(root, f))})
    print("%d files %s" % (len(originals), "would change" if args.dry_run else "changed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
