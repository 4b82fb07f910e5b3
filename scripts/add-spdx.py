#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Adds the SPDX line of the project's license (Apache-2.0, as meson.build
declares) as the first line of every source file that lacks it:

    /* SPDX-License-Identifier: Apache-2.0 */   C, headers, .S, linker scripts
    # SPDX-License-Identifier: Apache-2.0       Python, shell, meson
                                                (after a #! line)

    scripts/add-spdx.py [--dry-run]

Files: src/, tests/, scripts/, bench/ (C, assembly, linker scripts,
Python, shell, meson files, and scripts without an extension that start
with #!), plus every meson.build and meson_options.txt.  Data files (JSON,
package lists, Markdown) are left alone.  Idempotent: a file that names an
SPDX-License-Identifier in its first lines is not touched.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LICENSE = "Apache-2.0"
DIRS = ("src", "tests", "scripts", "bench")
C_LINE = "/* SPDX-License-Identifier: %s */\n" % LICENSE
HASH_LINE = "# SPDX-License-Identifier: %s\n" % LICENSE


def style(path, text):
    """'c', 'hash' or None (not a source file)."""
    name = os.path.basename(path)
    if name.endswith((".c", ".h", ".S", ".ld")):
        return "c"
    if name in ("meson.build", "meson_options.txt", "meson.options") or \
            name.endswith((".py", ".sh", ".bash")):
        return "hash"
    if "." not in name and re.match(r"#!.*\b(python3?|ba|da)?sh\b|#!.*python", text):
        return "hash"
    return None


def add(text, kind):
    head = "\n".join(text.split("\n")[:3])
    if "SPDX-License-Identifier" in head:
        return text
    if kind == "c":
        return C_LINE + text
    if text.startswith("#!"):
        nl = text.find("\n")
        if nl < 0:
            return text + "\n" + HASH_LINE
        return text[:nl + 1] + HASH_LINE + text[nl + 1:]
    return HASH_LINE + text


def main():
    dry = "--dry-run" in sys.argv[1:]
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split()
    n = 0
    for f in sorted(set(files)):
        top = f.split("/")[0]
        if top not in DIRS and f not in ("meson.build", "meson_options.txt", "meson.options"):
            continue
        p = os.path.join(ROOT, f)
        if not os.path.isfile(p) or os.path.islink(p):
            continue
        try:
            with open(p, encoding="utf-8") as fh:
                text = fh.read()
        except UnicodeDecodeError:
            continue
        kind = style(f, text)
        if kind is None:
            continue
        new = add(text, kind)
        if new != text:
            n += 1
            if not dry:
                mode = os.stat(p).st_mode
                with open(p, "w", encoding="utf-8") as fh:
                    fh.write(new)
                os.chmod(p, mode)
    print("%d files %s an SPDX line" % (n, "lack" if dry else "given"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
