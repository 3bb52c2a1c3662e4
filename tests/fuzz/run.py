#!/usr/bin/env python3
"""Runs every libFuzzer target of eventbus for a while, one after another.

Usage: tests/fuzz/run.py BUILD_DIR SECONDS [TARGET...]

BUILD_DIR is a build configured with -Dfuzz=true (clang; `make fuzz` does
it). Each target (json, schema, http, envelope, text, auth, tls, tlshs, groupcfg,
client, push, segsum, meta; or those named) runs alone
(one process: the machine is shared) for SECONDS with -max_total_time, on a
working corpus kept in BUILD_DIR/fuzz-corpus/<target> and seeded from
tests/fuzz/corpus/<target>; a dictionary tests/fuzz/<target>.dict is used
when present. Crash, leak, timeout and out-of-memory inputs are written to
BUILD_DIR/fuzz-artifacts/<target>/. Prints executions, rate and crashes
per target and exits non-zero if any target crashed (or was stopped by a
signal before its time was up). Extra libFuzzer
flags can be given in EB_FUZZ_FLAGS (e.g. "-max_len=16384").

tlshs runs with lighter ASan options unless ASAN_OPTIONS is set (see
ASAN_LIGHT): most of its time is OpenSSL's allocations going through ASan's
allocator. No allocation stack is recorded (a report still names the
bad access; rerun the artifact without them for the stacks), new blocks are
not filled, and freed memory stays in quarantine for 16 MB rather than 256
MB (a use after free within an input, or the next few dozen, is still
caught).
"""
import os
import re
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ["json", "schema", "http", "envelope", "text", "auth", "tls", "tlshs", "groupcfg",
           "client", "push", "segsum", "meta"]
SEEDS = {"tlshs": "tls"}  # targets that share another's seeds
ASAN_LIGHT = {"tlshs": "malloc_context_size=0:max_malloc_fill_size=0:quarantine_size_mb=16"}
INTERRUPTED = 72  # libFuzzer's -interrupted_exitcode: SIGINT/SIGTERM, not a finding
ARTIFACT = re.compile(r"(?:crash|leak|timeout|oom|slow-unit)-[0-9a-f]+")


def run_target(build, name, seconds):
    exe = os.path.join(build, "tests", "fuzz", name + "_fuzz")
    if not os.access(exe, os.X_OK):
        print(f"{name}: {exe} not built (configure with -Dfuzz=true)")
        return None
    corpus = os.path.join(build, "fuzz-corpus", name)
    artifacts = os.path.join(build, "fuzz-artifacts", name)
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    seeds = os.path.join(HERE, "corpus", SEEDS.get(name, name))
    cmd = [exe, f"-max_total_time={seconds}", "-timeout=10", "-print_final_stats=1",
           f"-artifact_prefix={artifacts}/", corpus]
    if os.path.isdir(seeds):
        cmd.append(seeds)
    dic = os.path.join(HERE, name + ".dict")
    if os.path.exists(dic):
        cmd.insert(1, f"-dict={dic}")
    cmd[1:1] = shlex.split(os.environ.get("EB_FUZZ_FLAGS", ""))
    log = os.path.join(build, "fuzz-artifacts", name + ".log")
    print(f"== {name}: {seconds} s (log {log})", flush=True)
    start = time.monotonic()
    env = dict(os.environ)
    if name in ASAN_LIGHT and "ASAN_OPTIONS" not in env:
        env["ASAN_OPTIONS"] = ASAN_LIGHT[name]
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    took = time.monotonic() - start
    with open(log, errors="replace") as f:
        out = f.read()
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    execs = int(m.group(1)) if m else 0
    m = re.search(r"stat::new_units_added:\s*(\d+)", out)
    new_units = int(m.group(1)) if m else 0
    found = sorted(set(ARTIFACT.findall(out)))
    interrupted = proc.returncode == INTERRUPTED and not found
    crashed = proc.returncode != 0 and not interrupted
    rate = execs / took if took > 0 else 0
    print(f"  {name}: {execs} execs in {took:.0f} s ({rate:.0f}/s), "
          f"{new_units} new corpus inputs, {1 if crashed else 0} crash(es)"
          + (f": {', '.join(found)}" if found else "")
          + (" (interrupted by a signal)" if interrupted else ""))
    if crashed:
        tail = [l for l in out.splitlines() if l.strip()][-40:]
        print("\n".join("    " + l for l in tail))
    return {"name": name, "execs": execs, "seconds": took, "crashed": crashed,
            "interrupted": interrupted, "artifacts": found}


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip())
        return 2
    build, seconds = sys.argv[1], int(sys.argv[2])
    names = sys.argv[3:] or TARGETS
    results = [r for r in (run_target(build, n, seconds) for n in names) if r]
    bad = [r for r in results if r["crashed"]]
    stopped = [r for r in results if r["interrupted"]]
    missing = len(names) - len(results)
    print(f"\nfuzz: {len(results)} target(s) run, {sum(r['execs'] for r in results)} execs, "
          f"{len(bad)} crashed" + (f", {len(stopped)} interrupted" if stopped else "")
          + (f", {missing} not built" if missing else ""))
    return 1 if bad or stopped or missing or not results else 0


if __name__ == "__main__":
    sys.exit(main())
