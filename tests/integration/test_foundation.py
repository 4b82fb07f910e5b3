# SPDX-License-Identifier: Apache-2.0
"""The foundation itself: binaries build and answer --version, and the
Markdown docs link only to files and headings that exist."""
import glob
import os
import re
import subprocess

from conftest import binary


def test_binaries_report_version():
    for name in ("cloison", "cloison-runtime", "cloison-vmm"):
        out = subprocess.run([binary(name), "--version"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "0.1.0" in out.stdout


def test_busybox_rootfs_and_runc_bundle(bundle):
    """The shared bundle fixture is a valid OCI bundle: runc runs it."""
    d = bundle(args=["/bin/echo", "hello"])
    out = subprocess.run(["runc", "--root", d + "/.runc", "run", "--bundle", d, "fixture-check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello"


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def markdown_lines(path, inline_code=True):
    """The file's lines outside fenced code blocks; inline code spans
    dropped unless inline_code (headings keep them in their anchors)."""
    out, fence = [], False
    for line in open(path, encoding="utf-8"):
        if line.lstrip().startswith("```"):
            fence = not fence
        elif not fence:
            out.append(line if inline_code else re.sub(r"`[^`]*`", "", line))
    return out


def heading_anchors(path):
    """GitHub's anchors for a Markdown file's headings."""
    anchors, seen = set(), {}
    for line in markdown_lines(path):
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else "%s-%d" % (slug, n))
    return anchors


def test_markdown_links_resolve():
    """Every relative link in README.md, docs/*.md and tests/README.md names
    an existing file, and a #fragment into a Markdown file one of its
    headings."""
    files = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "tests", "README.md")]
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    broken = []
    for md in files:
        for line in markdown_lines(md, inline_code=False):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):
                    continue
                path, _, fragment = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
                where = "%s: %s" % (os.path.relpath(md, ROOT), target)
                if not os.path.exists(dest):
                    broken.append(where + " (no such file)")
                elif fragment and dest.endswith(".md") and fragment not in heading_anchors(dest):
                    broken.append(where + " (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)
