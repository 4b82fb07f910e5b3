#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the web console's files (ui/ of the sources) into OUT, as
cloisond serves them (src/api/ui_assets.c):

- every asset but index.html gets a content hash in its name
  (app.js -> app.0123456789ab.js) and the references to it are rewritten
  (JS imports, index.html's links), so a browser may cache it for a year;
- the npm packages' files the console uses (xterm.js, from ui/node_modules,
  installed by scripts/setup.sh from ui/package-lock.json) are copied in
  as vendor/...;
- each text file gets a gzip copy beside it (FILE.gz), served to clients
  that accept gzip.

Usage: ui-build.py SRC OUT DEPFILE"""
import gzip
import hashlib
import os
import re
import shutil
import sys

VENDOR = {
    # served name -> path under ui/node_modules
    "vendor/xterm.mjs": "@xterm/xterm/lib/xterm.mjs",
    "vendor/xterm.css": "@xterm/xterm/css/xterm.css",
    "vendor/addon-fit.mjs": "@xterm/addon-fit/lib/addon-fit.mjs",
}
TEXT = (".html", ".js", ".mjs", ".css", ".svg", ".json", ".txt")
IMPORT = re.compile(r"""((?:from|import)\s*\(?\s*["'])(\.{1,2}/[^"']+)(["'])""")


def hashed_name(name, data):
    stem, ext = os.path.splitext(name)
    return "%s.%s%s" % (stem, hashlib.sha256(data).hexdigest()[:12], ext)


def main():
    src, out, depfile = sys.argv[1:4]
    files = {}  # served name -> bytes
    inputs = []
    for dirpath, dirnames, names in os.walk(src):
        dirnames[:] = [d for d in dirnames if d not in ("node_modules",) and not d.startswith(".")]
        inputs.append(dirpath)  # a file added to it rebuilds
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), src)
            if rel in ("package.json", "package-lock.json", "meson.build") or n.startswith("."):
                continue
            inputs.append(os.path.join(dirpath, n))
            with open(os.path.join(dirpath, n), "rb") as f:
                files[rel] = f.read()
    missing = []
    for name, rel in VENDOR.items():
        p = os.path.join(src, "node_modules", rel)
        if os.path.exists(p):
            inputs.append(p)
            with open(p, "rb") as f:
                files[name] = f.read()
        else:
            missing.append(rel)
    if missing:
        print("ui-build: warning: %s missing: the console's terminal needs them "
              "(run `npm ci --prefix ui`, as scripts/setup.sh does)" % ", ".join(missing),
              file=sys.stderr)

    originals = {n: d.decode() for n, d in files.items() if n.endswith((".js", ".mjs"))}
    # hash leaves first: a module's name depends on the names it imports
    renamed = {}

    def resolve(name, ref):
        return os.path.normpath(os.path.join(os.path.dirname(name), ref))

    def deps(name):
        if not name.endswith((".js", ".mjs")):
            return []
        return [resolve(name, m.group(2)) for m in IMPORT.finditer(files[name].decode())]

    def visit(name, stack=()):
        if name in renamed:
            return
        if name in stack:
            sys.exit("ui-build: import cycle through %s" % name)
        for d in deps(name):
            if d in files:
                visit(d, stack + (name,))
        data = files[name]
        if name.endswith((".js", ".mjs")):
            def sub(m):
                target = resolve(name, m.group(2))
                if target not in renamed:
                    return m.group(0)
                rel = os.path.relpath(renamed[target], os.path.dirname(name) or ".")
                if not rel.startswith("."):
                    rel = "./" + rel
                return m.group(1) + rel + m.group(3)
            data = IMPORT.sub(sub, data.decode()).encode()
            files[name] = data
        renamed[name] = name if name == "index.html" else hashed_name(name, data)

    for name in sorted(files):
        if name != "index.html":
            visit(name)
    # index.html: its src="..." and href="..." to the hashed names
    html = files["index.html"].decode()
    for name, new in renamed.items():
        html = html.replace('"%s"' % name, '"%s"' % new)
    # the modules loaded later (the terminal's) are named for the page
    # the modules the first page imports (app.js and its static imports,
    # not the views it loads when shown), asked for at once rather than
    # one import level after the other
    static = re.compile(r"""from\s*["'](\.{1,2}/[^"']+)["']""")
    first, todo = set(), ["js/app.js"]
    while todo:
        n = todo.pop()
        if n in first or n not in originals:
            continue
        first.add(n)
        todo += [resolve(n, m.group(1)) for m in static.finditer(originals[n])]
    first = sorted(renamed[n] for n in first)
    html = html.replace("<!--MODULEPRELOAD-->", "\n".join(
        '<link rel="modulepreload" href="%s">' % n for n in first))
    manifest = {n: renamed[n] for n in renamed if n.startswith("vendor/")}
    html = html.replace("__VENDOR_MANIFEST__", repr(manifest).replace("'", '"'))
    files["index.html"] = html.encode()
    renamed["index.html"] = "index.html"

    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for name, data in files.items():
        dest = os.path.join(tmp, renamed[name])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)
        if name.endswith(TEXT):
            with open(dest + ".gz", "wb") as f:
                f.write(gzip.compress(data, 9, mtime=0))
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    with open(depfile, "w") as f:
        f.write("%s: %s\n" % (out, " ".join(p.replace(" ", "\\ ") for p in sorted(inputs))))


if __name__ == "__main__":
    main()
