#!/usr/bin/env python3
"""Runs every test suite of eventbus and prints one closing line.

Suites are Meson tests (see tests/meson.build). Each test program prints its
own "N passed, N failed[, N skipped]" line; this script sums those lines over
the normal build (all suites), the ASan+UBSan build (all but 'slow', 'node',
'ui' and 'pg': the integration suites again on the PostgreSQL engine run
in the normal build only) and the ThreadSanitizer build (TSAN_TESTS: the
unit suites and the daemon's integration suites, under --fsync always and
interval; the CLI, shop, library, conformance and crash-loop suites
exercise no thread of their own
beyond those and would only add minutes) and ends with "N passed, N
failed". A test program that crashes or prints no such line counts as one
failure; under TSan a reported race makes the program (or the daemon,
whose exit status the harness checks) exit non-zero, so it fails.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = re.compile(r"^(?:\w+: )?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$", re.M)


TSAN_TESTS = ["unit-util", "unit-log", "unit-json", "unit-schema", "unit-bus_event", "unit-store",
              "unit-store-pg", "unit-segsum", "integration-estore",
              "unit-bus_cmd", "unit-api",
              "integration-publish", "integration-http", "integration-groups",
              "integration-publish-interval", "integration-groups-interval",
              "integration-push",  # push: libcurl's resolver threads beside the loop
              "integration-delivery"]
# The plain integration suites run under --fsync always (the -interval ones
# set their own policy); races are reported as failures, never suppressed.
# allocator_may_return_null: a failed malloc returns NULL as in the other
# builds, so test_util sees eb_xmalloc's own abort (TSan would end the
# program itself instead).
TSAN_ENV = {"EB_TEST_FSYNC": "always",
            "TSAN_OPTIONS": "halt_on_error=1 exitcode=66 allocator_may_return_null=1"}


def run_build(builddir, extra, env=None):
    path = os.path.join(ROOT, builddir)
    if not os.path.exists(os.path.join(path, "build.ninja")):
        print(f"{builddir}: not configured, skipped")
        return []
    log = os.path.join(path, "meson-logs", "testlog.json")
    if os.path.exists(log):
        os.remove(log)
    cmd = ["meson", "test", "-C", path, "--no-rebuild", "--print-errorlogs",
           "--num-processes", os.environ.get("EB_TEST_JOBS", "2")] + extra
    print(f"== {builddir}: {' '.join(cmd[2:])}", flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, **(env or {})))
    results = []
    if os.path.exists(log):
        with open(log) as f:
            for ln in f:
                ln = ln.strip()
                if ln:
                    results.append(json.loads(ln))
    if proc.returncode != 0 and not results:
        print(proc.stdout)
    return results


def count(entry):
    out = (entry.get("stdout") or "") + "\n" + (entry.get("stderr") or "")
    found = LINE.findall(out)
    ok = entry.get("result") in ("OK", "EXPECTEDFAIL")
    if entry.get("result") == "SKIP":
        return 0, 0, 1, out
    if found:
        p, f, s = found[-1]
        p, f, s = int(p), int(f), int(s or 0)
        if not ok and f == 0:
            f = 1  # crashed or exited non-zero after its summary
        return p, f, s, out
    return (1, 0, 0, out) if ok else (0, 1, 0, out)


def main():
    total_p = total_f = total_s = 0
    failures = []
    plans = [("build", [], None),
             ("build-asan", ["--no-suite", "slow", "--no-suite", "node",
                            "--no-suite", "ui", "--no-suite", "pg"], None),
             ("build-tsan", TSAN_TESTS, TSAN_ENV)]
    for builddir, extra, env in plans:
        for e in run_build(builddir, extra, env):
            p, f, s, out = count(e)
            total_p += p; total_f += f; total_s += s
            tag = "FAIL" if f else "ok"
            dur = e.get("duration", 0.0)
            print(f"  {tag:4} {builddir}/{e['name']}: {p} passed, {f} failed, {s} skipped ({dur:.1f} s)")
            if f:
                failures.append((builddir, e["name"], out))
    for builddir, name, out in failures:
        print(f"\n---- {builddir}/{name} ----")
        lines = out.strip().splitlines()
        print("\n".join(l for l in lines if not l.startswith("ok "))[-6000:])
    print(f"\n{total_p} passed, {total_f} failed, {total_s} skipped")
    return 1 if total_f or (total_p == 0) else 0


if __name__ == "__main__":
    sys.exit(main())
