#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""One name per thing: checks the global functions of a build.

    scripts/check-prefixes.py [BUILDDIR]      (default: build)

For each static library built from src/<part> (meson introspect), lists
its defined global functions (nm --defined-only -g, types T/W/i) and fails
(exit 1, one line per finding) when
  - a function does not start with cl_ at all;
  - a function does not start with its part's prefix (container cl_ctr_,
    vmm cl_vmm_, image cl_img_, net cl_net_, manager cl_mgr_, agent
    cl_agent_, api cl_api_; common cl_ followed by a word of its own that
    is not another part's: cl_error_, cl_db_, cl_json_, ...);
  - a prefix (the first two words: cl_ctr, cl_error) is used by two parts.
The executables defined in src/<part> (cloison, cloison-runtime,
cloison-vmm, cloison-monitor, the guest agent) are checked too, on the
functions of their own objects: anything but main must carry the part's
prefix (src/cli: cli_), so that a function shared between the front
ends' files is named as theirs.  scripts/symbol_parts.py holds the table.
"""
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import symbol_parts as sp  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def findings(builddir, root=ROOT):
    """(list of finding lines, number of symbols checked)."""
    out = []
    used = collections.defaultdict(set)  # two-word prefix -> parts
    reserved = sp.reserved_words()
    checked = 0

    def check(part, where, sym):
        nonlocal checked
        checked += 1
        want = sp.PREFIXES.get(part)
        if want is None:
            out.append("%s: %s: part src/%s has no prefix in scripts/symbol_parts.py"
                       % (where, sym, part))
            return
        if not sym.startswith("cl_") and not sym.startswith(want):
            out.append("%s: %s: no cl_ prefix (want %s)" % (where, sym, want))
        elif not sym.startswith(want):
            out.append("%s: %s: not %s" % (where, sym, want))
        elif part == "common" and sym.split("_")[1] in reserved:
            out.append("%s: %s: common uses another part's word %s_"
                       % (where, sym, sym.split("_")[1]))
        used[sp.symbol_prefix(sym)].add(part)

    libs = sp.libraries(builddir, root)
    if not libs:
        out.append("%s: no static library from src/ (not a configured build?)" % builddir)
    for part, (archive, syms) in sorted(libs.items()):
        if not os.path.exists(archive):
            out.append("%s: not built (run ninja -C %s)" % (archive, builddir))
        for sym in sorted(syms):
            check(part, os.path.relpath(archive, builddir), sym)
    for part, name, own in sp.executables(builddir, root):
        for sym, src in sorted(own.items()):
            if sym != "main":
                check(part, "%s (%s)" % (src, name), sym)
    for prefix, parts in sorted(used.items()):
        if len(parts) > 1:
            out.append("prefix %s is shared by %s" % (prefix, ", ".join(sorted(parts))))
    return out, checked


def main():
    builddir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    if not os.path.exists(os.path.join(builddir, "build.ninja")):
        print("%s: not a meson build directory" % builddir, file=sys.stderr)
        return 2
    out, checked = findings(builddir)
    for line in out:
        print(line)
    print("%d functions checked, %d findings" % (checked, len(out)),
          file=sys.stderr if out else sys.stdout)
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
