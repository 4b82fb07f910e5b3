#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Reports circles between the files of one folder of src/.

The code is meant to depend in one direction: between folders (cli ->
manager -> container, vmm, image, net -> common) and between the files of
one folder.  This script derives the file-level call graph of each folder
from the built objects: `nm` lists what each object file defines and what
it leaves undefined; file A depends on file B when A uses a symbol that B
defines.  A strongly connected component with more than one file is a
circle, printed with one path that closes it and every call between its
files.

Usage: check-file-deps.py [BUILD_DIR]   (default: build/ beside scripts/)
       check-file-deps.py --graph LIB    prints LIB's edges, for reading
Exit status: 0 with no circle, 1 with circles, 2 on usage errors.
"""

import json
import os
import subprocess
import sys


def object_files(build_dir, lib):
    """The object files of a folder, keyed by their source file name.

    Every target of the folder (library and programs) is read; a source
    built into two targets is one file.  Where meson's introspection is
    there, only the objects of sources meson builds now count (an object
    left behind by a source that moved away would invent a circle)."""
    objects = {}
    lib_dir = os.path.join(build_dir, "src", lib)
    intro = os.path.join(build_dir, "meson-info", "intro-targets.json")
    if os.path.exists(intro):
        with open(intro) as f:
            targets = json.load(f)
        for t in targets:
            for out in t["filename"]:
                if os.path.dirname(os.path.abspath(out)) != os.path.abspath(lib_dir):
                    continue
                for group in t["target_sources"]:
                    for src in group.get("sources", []):
                        name = os.path.basename(src)
                        obj = os.path.join(out + ".p", name + ".o")
                        if name.endswith(".c") and os.path.exists(obj):
                            objects.setdefault(name, obj)
        return objects
    for target in sorted(os.listdir(lib_dir)):
        target_dir = os.path.join(lib_dir, target)
        if not target.endswith(".p") or not os.path.isdir(target_dir):
            continue
        for name in sorted(os.listdir(target_dir)):
            if name.endswith(".c.o"):
                objects.setdefault(name[: -len(".o")], os.path.join(target_dir, name))
    return objects


def symbols(paths):
    """{path: (defined, undefined)} global symbol names of object files,
    from one run of nm."""
    out = subprocess.run(["nm", "-A", "-P", "--extern-only"] + list(paths),
                         check=True, capture_output=True, text=True).stdout
    syms = {path: (set(), set()) for path in paths}
    for line in out.splitlines():
        # "PATH: NAME TYPE [VALUE SIZE]"
        path, _, rest = line.rpartition(": ")
        fields = rest.split()
        if path not in syms or len(fields) < 2:
            continue
        defined, undefined = syms[path]
        (undefined if fields[1] in ("U", "w", "v") else defined).add(fields[0])
    return syms


def file_graph(build_dir, lib):
    """{file: {file it calls: [symbols]}} for one folder."""
    objects = object_files(build_dir, lib)
    syms = symbols(objects.values()) if objects else {}
    owner = {}
    for src, path in objects.items():
        for sym in syms[path][0]:
            owner.setdefault(sym, src)
    graph = {src: {} for src in objects}
    for src, path in objects.items():
        for sym in sorted(syms[path][1]):
            dst = owner.get(sym)
            if dst is not None and dst != src:
                graph[src].setdefault(dst, []).append(sym)
    return graph


def strongly_connected(graph):
    """Tarjan's algorithm, iterative; returns the components."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                comps.append(sorted(comp))
    return comps


def one_cycle(graph, comp):
    """A shortest path inside comp from its first file back to itself."""
    members = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node]):
            if child not in members:
                continue
            if child == start:
                path = [node]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if child not in prev:
                prev[child] = node
                queue.append(child)
    return comp


def cycles(build_dir):
    """[(lib, component, one closing path, graph)] for every circle."""
    found = []
    for lib in sorted(os.listdir(os.path.join(build_dir, "src"))):
        if not os.path.isdir(os.path.join(build_dir, "src", lib)):
            continue
        graph = file_graph(build_dir, lib)
        for comp in strongly_connected(graph):
            if len(comp) > 1:
                found.append((lib, comp, one_cycle(graph, comp), graph))
    return found


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    args = argv[1:]
    if args and args[0] == "--graph":
        if len(args) not in (2, 3):
            print(__doc__, file=sys.stderr)
            return 2
        build_dir = args[2] if len(args) == 3 else os.path.join(here, "..", "build")
        graph = file_graph(build_dir, args[1])
        for src in sorted(graph):
            for dst, syms in sorted(graph[src].items()):
                print(f"{src} -> {dst}: {' '.join(syms)}")
        return 0
    if len(args) > 1:
        print(__doc__, file=sys.stderr)
        return 2
    build_dir = args[0] if args else os.path.join(here, "..", "build")
    if not os.path.isdir(os.path.join(build_dir, "src")):
        print(f"check-file-deps: no built tree at {build_dir}/src", file=sys.stderr)
        return 2
    found = cycles(build_dir)
    for lib, comp, path, graph in found:
        print(f"src/{lib}: circle {' -> '.join(path)}")
        for a in comp:
            for b in sorted(set(graph[a]) & set(comp)):
                print(f"  {a} -> {b}: {' '.join(graph[a][b])}")
    if not found:
        print("check-file-deps: no circle between the files of any folder")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
