#!/usr/bin/env python3
"""bench/relay.py: what a follower's relay costs, in CPU per forwarded request.

Two eventbusd nodes on one PostgreSQL database (a throwaway cluster,
tests/tools/pgcluster.py; a fresh database per run): the first leads, the
second follows; the bench/peers driver sends every request to the
follower, which stays there (EB_BENCH_STAY=1) and relays it. Printed per
workload: the follower's CPU (utime + stime from /proc) per forwarded
request (its `forwarded` count in GET /v1/cluster), in microseconds, and
per 100,000 forwarded requests in seconds. Workloads:

  singles   --events single events (POST /v1/events) from 8 publishers
  batches   10 x --events events in batches of 100 from 4 publishers

--base OLD_EVENTBUSD runs another binary too, interleaved round by round
with this tree's bin/eventbusd (so both see the same load): the A/B of a
relay change. CPU per request holds on a loaded machine; the load
average is printed beside it.

Usage: bench/relay.py [--rounds 3] [--events 20000] [--base PATH]
Needs the bench build (meson configure build -Dbench=true).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import pgcluster  # noqa: E402

DRIVER = os.path.join(ROOT, "build", "bench", "peers", "bench_peer_eventbus")
TICKS = os.sysconf("SC_CLK_TCK")
WORKLOADS = {"singles": ["publish", "--publishers", "8", "--batch", "1"],
             "batches": ["publish", "--publishers", "4", "--batch", "100"]}


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def get(url, path):
    with urllib.request.urlopen(url + path, timeout=5) as r:
        return r.status, r.read()


def start_node(exe, uri, logdir, name):
    port = pgcluster.free_port()
    log = open(os.path.join(logdir, name + ".log"), "w")
    p = subprocess.Popen([exe, "--listen", f"127.0.0.1:{port}", "--store", uri,
                          "--log-level", "warn"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            if get(url, "/healthz")[0] == 200:
                return p, url
        except OSError:
            pass
        if p.poll() is not None:
            break
        time.sleep(0.025)
    p.kill()
    raise RuntimeError(f"{exe} did not start (log {log.name})")


def one_run(exe, pg, workload, events, logdir):
    name, uri = pg.create_db()
    leader, _ = start_node(exe, uri, logdir, "leader")
    follower, url = start_node(exe, uri, logdir, "follower")
    try:
        cl = json.loads(get(url, "/v1/cluster")[1])
        assert cl["role"] == "follower", cl
        f0, c0 = cl["forwarded"], cpu_s(follower.pid)
        target = url[len("http://"):]
        n = events * 10 if workload == "batches" else events
        out = subprocess.run([DRIVER] + WORKLOADS[workload] +
                             ["--events", str(n), "--target", target, "--run", workload],
                             env=dict(os.environ, EB_BENCH_STAY="1"), capture_output=True,
                             text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"driver failed: {out.stdout[-500:]} {out.stderr[-500:]}")
        c1 = cpu_s(follower.pid)
        f1 = json.loads(get(url, "/v1/cluster")[1])["forwarded"]
        return (c1 - c0) / max(1, f1 - f0) * 1e6, f1 - f0
    finally:
        for p in (follower, leader):
            p.terminate()
            p.wait(timeout=30)
        pg.drop_db(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--base", help="another eventbusd binary, interleaved with this tree's")
    ap.add_argument("--workloads", default="singles,batches")
    o = ap.parse_args()
    exes = [("this", os.environ.get("EB_BENCH_EVENTBUSD") or
             os.path.join(ROOT, "bin", "eventbusd"))]
    if o.base:
        exes.append(("base", o.base))
    pg = pgcluster.Cluster()
    res = {}
    try:
        print(f"start: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        for r in range(o.rounds):
            for wl in o.workloads.split(","):
                for label, exe in exes:
                    us, n = one_run(exe, pg, wl, o.events, pg.dir)
                    res.setdefault((wl, label), []).append(us)
                    print(f"  round {r + 1} {wl:8} {label}: {us:6.1f} us per forwarded request "
                          f"({n} forwarded; load {os.getloadavg()[0]:.2f})", flush=True)
        print(f"end: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("\nfollower CPU per forwarded request, median [min - max] of "
              f"{o.rounds} rounds:")
        for (wl, label), v in sorted(res.items()):
            m = statistics.median(v)
            print(f"  {wl:8} {label}: {m:6.1f} us [{min(v):.1f} - {max(v):.1f}]  "
                  f"= {m / 10:.2f} s per 100k forwarded")
        if o.base:
            for wl in o.workloads.split(","):
                a, b = res.get((wl, "this")), res.get((wl, "base"))
                if a and b:
                    ratios = [x / y for x, y in zip(a, b)]
                    print(f"  {wl:8} this/base per round: "
                          f"{', '.join(f'{x:.2f}' for x in ratios)} "
                          f"(median {statistics.median(ratios):.2f})")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
