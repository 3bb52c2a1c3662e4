#!/usr/bin/env python3
"""bench/filtered_group.py - what creating a group with a content filter
costs the other clients (issue 15: no request walks the log on the loop).

On a fresh eventbusd (--fsync interval) holding EVENTS events of ~400
bytes, one client creates a group with a filter (`start: earliest`) while
another sends /healthz in a loop. Reported: the PUT's answer time, the
health checks answered while the PUT was open and while the group's lag
was being counted (lag_counting, off the request path), the slowest of
them, the time until the lag was exact, and the server's CPU for it. With
--base OLD_BIN the same runs on an older eventbusd too, interleaved
(A, B, A, B ...), and the ratios are printed; report the load average
beside the wall-clock figures (printed).

    bench/filtered_group.py [--daemon build/src/eventbusd] [--base OLD_BIN]
                            [--events 1000000] [--runs 2]

Python 3 stdlib only. Not part of make test.
"""
import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scale import ROOT, Daemon, publish  # noqa: E402


def run(exe, events):
    tmp = tempfile.mkdtemp(prefix="eb-filt-")
    d = Daemon(exe, os.path.join(tmp, "data"))
    try:
        d.start()
        publish(d, events)
        lat, phase, stop = [], ["before"], threading.Event()

        def health():
            import http.client
            c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=600)
            while not stop.is_set():
                t = time.monotonic()
                c.request("GET", "/healthz")
                c.getresponse().read()
                lat.append((phase[0], time.monotonic() - t))
        t = threading.Thread(target=health)
        t.start()
        time.sleep(0.2)
        cpu0, t0 = d.cpu(), time.monotonic()
        phase[0] = "put"
        d.req("PUT", "/v1/groups/f", {"types": ["bench.*"], "start": "earliest",
                                      "filter": {"data": {"orderId": ["O-0000000"]}}})
        put_s = time.monotonic() - t0
        phase[0] = "count"
        while d.req("GET", "/v1/groups/f").get("lag_counting"):
            time.sleep(0.005)
        exact_s = time.monotonic() - t0
        cpu = d.cpu() - cpu0
        phase[0] = "after"
        stop.set()
        t.join()
        lag = d.req("GET", "/v1/groups/f")["lag"]
        assert lag == events, (lag, events)
        during = [x for p, x in lat if p in ("put", "count")]
        d.stop()
        return {"put_s": put_s, "exact_s": exact_s, "cpu_s": cpu,
                "health_answers": len(during), "health_max_ms": max(during, default=0) * 1000}
    finally:
        if d.proc and d.proc.poll() is None:
            d.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--daemon", default=os.path.join(ROOT, "build", "src", "eventbusd"))
    ap.add_argument("--base", help="an older eventbusd to compare with (A/B, interleaved)")
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    bins = [("now", a.daemon)] + ([("base", a.base)] if a.base else [])
    for i in range(a.runs):
        for name, exe in bins:
            r = run(exe, a.events)
            print(f"{name:4} run {i + 1}: {a.events} events, load {os.getloadavg()[0]:.1f}: "
                  f"PUT answered in {r['put_s'] * 1000:.1f} ms, lag exact after "
                  f"{r['exact_s'] * 1000:.0f} ms (server CPU {r['cpu_s']:.2f} s); "
                  f"{r['health_answers']} health checks answered meanwhile, the slowest "
                  f"{r['health_max_ms']:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
