#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Runs every test and prints one closing line: N passed, N failed, N skipped.

Unit tests are the cmocka programs meson knows (suite 'unit'), run with TAP
output and counted per test case.  Integration and lab tests are pytest
files under tests/integration and tests/lab, counted from pytest's JUnit
report.  A skip is listed with its reason before the closing line.
"""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
BUILD_ASAN = os.path.join(ROOT, "build-asan")
passed = failed = skipped = 0
skips = []
failures = []


def build_sanitized():
    """The unit tests again under ASan + UBSan, in a test build of their own
    (scripts/build.sh: with the fault injection and build-tree paths)."""
    subprocess.run([os.path.join(ROOT, "scripts", "build.sh"), BUILD_ASAN,
                    "-Db_sanitize=address,undefined", "-Db_lundef=false"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def run_unit(build, label):
    global passed, failed, skipped
    tests = json.loads(subprocess.check_output(
        ["meson", "introspect", "--tests", build]))
    for t in tests:
        if "unit" not in t.get("suite", []) and not any(s.endswith(":unit") for s in t.get("suite", [])):
            continue
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        p = subprocess.run(t["cmd"], cwd=t.get("workdir") or build, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=t.get("timeout") or 300)
        reason = "skipped by the test"
        for line in p.stdout.splitlines():
            if line.startswith("# skip reason: "):
                reason = line[len("# skip reason: "):]
            elif line.startswith("ok "):
                passed += 1
            elif line.startswith("not ok ") and "# SKIP" in line:
                skipped += 1
                skips.append("%s %s %s: %s" % (label, t["name"], line.split("# SKIP")[1].strip(),
                                               reason))
            elif line.startswith("not ok "):
                failed += 1
                failures.append("%s %s: %s" % (label, t["name"], line))
        if p.returncode != 0 and "not ok" not in p.stdout:
            # A crash or a sanitizer report after the last test case.
            failed += 1
            failures.append("%s %s: exit %d" % (label, t["name"], p.returncode))
        if p.returncode != 0:
            sys.stdout.write(p.stdout)
        print("%s %-20s %s" % (label, t["name"], "ok" if p.returncode == 0 else "FAILED"),
              flush=True)


def pytest_cmd(d, targets):
    report = os.path.join(BUILD, "pytest-report-%s.xml" % os.path.basename(d))
    if os.path.exists(report):
        os.unlink(report)
    return report, [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfEs",
                    "--junitxml=" + report, "-o", "junit_family=xunit1"] + targets


def pytest_done(d, report, rc):
    global failed
    if not os.path.exists(report):
        failed += 1
        failures.append("pytest did not run on %s (exit %d)" % (d, rc))
        return
    count_junit(report)


def run_pytest(paths):
    """One pytest run per test folder: each folder has its own conftest.py,
    and test modules import helpers from it by name."""
    by_dir = {}
    for p in paths:
        folder = p if os.path.isdir(p) else os.path.dirname(p.split("::")[0])
        by_dir.setdefault(os.path.normpath(folder), []).append(p)
    for d, targets in by_dir.items():
        report, cmd = pytest_cmd(d, targets)
        pytest_done(d, report, subprocess.run(cmd, cwd=ROOT).returncode)


class Background:
    """The lab tests, run beside the rest: each lab boot is one QEMU TCG
    vCPU (one core), while the unit and integration tests mostly wait on
    processes, so the two together take little more than the longer one.
    Their output goes to a log, printed whole once they end."""

    def __init__(self, d):
        self.d = d
        self.report, cmd = pytest_cmd(d, [d])
        self.log = os.path.join(BUILD, "pytest-%s.log" % os.path.basename(d))
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def finish(self):
        rc = self.proc.wait()
        print("==== %s (run beside the others; its output) ====" % self.d, flush=True)
        with open(self.log) as f:
            sys.stdout.write(f.read())
        pytest_done(self.d, self.report, rc)


def count_junit(report):
    global passed, failed, skipped
    for case in ET.parse(report).getroot().iter("testcase"):
        name = "%s::%s" % (case.get("classname"), case.get("name"))
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            failures.append(name)
        elif case.find("skipped") is not None:
            skipped += 1
            skips.append("%s: %s" % (name, case.find("skipped").get("message")))
        else:
            passed += 1


def main():
    global failed
    args = sys.argv[1:]
    lab = None
    if not args:
        os.makedirs(BUILD, exist_ok=True)
        folders = [d for d in ("tests/integration", "tests/lab")
                   if os.path.isdir(os.path.join(ROOT, d))
                   and any(f.startswith("test_") for f in os.listdir(os.path.join(ROOT, d)))]
        # CLOISON_TEST_SERIAL=1: one folder after the other, as with paths
        if "tests/lab" in folders and not os.environ.get("CLOISON_TEST_SERIAL"):
            folders.remove("tests/lab")
            lab = Background("tests/lab")
        run_unit(BUILD, "unit")
        try:
            build_sanitized()
            run_unit(BUILD_ASAN, "asan+ubsan")
        except subprocess.CalledProcessError as e:
            failed += 1
            failures.append("asan+ubsan build: %s exited %d" % (e.cmd[0], e.returncode))
        args = folders
    run_pytest(args)
    if lab:
        lab.finish()
    for s in skips:
        print("skipped:", s)
    for f in failures:
        print("failed:", f)
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
