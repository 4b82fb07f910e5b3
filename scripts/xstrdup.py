#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Checked string copies: every strdup (x) call in src/ becomes
cl_xstrdup (x) (src/common/util.h: aborts on ENOMEM, as crun's xstrdup),
and the file gets #include "common/util.h" when it lacks it; the
changed lines are formatted (clang-format --lines).

    scripts/xstrdup.py [--dry-run]

Only calls in code (not strings or comments, not cl_strdup_printf, not a
member ->strdup), and not in src/agent (the guest programs are static
and do not link src/common).  Idempotent: a second run finds no strdup.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import symbol_parts as sp  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_DIRS = ("src/agent/",)
INCLUDE = '#include "common/util.h"'
_TOKEN = sp.C_TOKEN


def convert(text):
    """(new text, number of calls replaced)."""
    toks = list(_TOKEN.finditer(text))
    out, last, n = [], 0, 0
    for i, m in enumerate(toks):
        if m.group(0) != "strdup":
            continue
        nxt = toks[i + 1].group(0) if i + 1 < len(toks) else ""
        prev = toks[i - 1].group(0) if i > 0 else ""
        if nxt != "(" or prev in (".", "->"):
            continue
        out.append(text[last:m.start()])
        out.append("cl_xstrdup")
        last = m.end()
        n += 1
    out.append(text[last:])
    text = "".join(out)
    if n and INCLUDE not in text:
        incs = list(re.finditer(r'^#include "[^"]+"[^\n]*\n', text, re.M)) or \
            list(re.finditer(r"^#include <[^>]+>[^\n]*\n", text, re.M))
        at = incs[0].end() if incs else 0
        # After the file's own header when it has one, else first.
        text = text[:at] + INCLUDE + "\n" + text[at:]
    return text, n


def main():
    dry = "--dry-run" in sys.argv[1:]
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "src"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split()
    total, changed = 0, {}
    for f in sorted(set(files)):
        if not f.endswith((".c", ".h")) or f.startswith(SKIP_DIRS):
            continue
        p = os.path.join(ROOT, f)
        if not os.path.isfile(p):
            continue
        with open(p) as fh:
            text = fh.read()
        new, n = convert(text)
        if n:
            total += n
            changed[f] = (text, new)
            print("%s: %d" % (f, n))
            if not dry:
                with open(p, "w") as fh:
                    fh.write(new)
    if not dry:
        sp.format_changed_lines(ROOT, changed)
    print("%d strdup calls in %d files %s" % (total, len(changed),
                                             "to convert" if dry else "converted"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
