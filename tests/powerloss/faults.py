#!/usr/bin/env python3
"""The power-loss test must be able to fail: run it against builds that
each miss one sync of the log (meson -Dfault=skip_datasync|skip_dir_fsync,
see src/log/log.c) and require that it catches every one.

Builds (or reuses) ROOT/build-fault-datasync and ROOT/build-fault-dirfsync
(only eventbusd is built; `make test` builds them beforehand), then runs
powerloss.py --expect-fail against each. Prints "N passed, N failed", one
per (fault, policy) pair.

Each run explores random crash states (a seed of its own), so a planted
fault is found with high but not certain probability per run: under
--fsync interval one CI run in many explored 240 states without meeting
the one the missing sync spoils. A fault counts as caught when one of
ATTEMPTS runs (each with a fresh seed) catches it; a checker that cannot
fail still fails here, ATTEMPTS times in a row.
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FAULTS = [("datasync", "skip_datasync", ["always", "interval"]),
          ("dirfsync", "skip_dir_fsync", ["always"])]
ATTEMPTS = 3


def build(root, name, fault):
    d = os.path.join(root, f"build-fault-{name}")
    if not os.path.exists(os.path.join(d, "build.ninja")):
        subprocess.run(["meson", "setup", d, root, "--buildtype=debugoptimized",
                        f"-Dfault={fault}"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", d, "src/eventbusd"], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(d, "src", "eventbusd")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--root", required=True)
    p.add_argument("--eventbus-log", required=True)
    p.add_argument("--shim", required=True)
    args = p.parse_args()
    passed = failed = 0
    for name, fault, policies in FAULTS:
        daemon = build(args.root, name, fault)
        for policy in policies:
            for attempt in range(1, ATTEMPTS + 1):
                r = subprocess.run([sys.executable, os.path.join(HERE, "powerloss.py"),
                                    "--eventbusd", daemon, "--eventbus-log", args.eventbus_log,
                                    "--shim", args.shim, "--fsync", policy, "--expect-fail"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                ok = r.returncode == 0
                if ok:
                    break
                print(f"  -Dfault={fault} --fsync {policy}: not caught by run {attempt} of "
                      f"{ATTEMPTS}", flush=True)
            print(f"{'ok' if ok else 'FAIL'} -Dfault={fault} --fsync {policy}: "
                  f"{'caught' if ok else 'NOT caught'} (run {attempt} of {ATTEMPTS})", flush=True)
            if not ok:
                print(r.stdout[-3000:])
            else:
                caught = [ln for ln in r.stdout.splitlines() if ln.startswith("FAIL cut")]
                print("  " + (caught[0] if caught else "")[:300])
            passed += ok
            failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
