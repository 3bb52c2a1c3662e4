#!/usr/bin/env python3
"""Memory per group and per delivery, and the cost of the history sampler
(issue 15), measured on a real eventbusd (RSS and CPU from /proc):

  idle      RSS with 10,000 idle groups (each made with PUT), after several
            history intervals (--history-interval 100ms): what a group costs
  sampler   CPU of that idle server over 10 s at --history-interval 100ms
            (100 samplings) against the same at 1h: the sampler's cost per
            round over 10,000 groups
  inflight  RSS of one group holding 100,000 leased deliveries of ~250-byte
            events (100 pulls of 1,000, ack timeout 10 min) over its RSS
            before the pulls: what a delivery costs

Usage: bench/memory/groups.py [path/to/eventbusd] [--idle] [--inflight]   (not part of make test)
EB_ARGS="--delivery-cache-bytes 1MiB": more eventbusd flags for inflight.
Prints one JSON line per measurement.
"""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
DAEMON = ARGS[0] if ARGS else "build/src/eventbusd"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class D:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="eb-groups-")
        self.port = free_port()
        self.p = subprocess.Popen([DAEMON, "--listen", f"127.0.0.1:{self.port}", "--data",
                                   self.dir + "/data", "--fsync", "never", "--log-level",
                                   "warn"] + list(args), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        self.c = None
        for _ in range(400):
            try:
                if self.req("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                self.c = None
            time.sleep(0.05)
        raise RuntimeError("eventbusd did not start")

    def req(self, method, path, body=None):
        if self.c is None:
            self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = json.dumps(body).encode() if body is not None else None
        self.c.request(method, path, body=data,
                       headers={"Content-Type": "application/json"} if data else {})
        r = self.c.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None

    def rss_mb(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0

    def cpu_s(self):
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def stop(self):
        self.p.terminate()
        self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def idle_groups(n=10000):
    out = {}
    for interval in ("100ms", "1h"):
        d = D("--max-groups", str(n), "--history-interval", interval)
        try:
            base = d.rss_mb()
            for i in range(n):
                st, body = d.req("PUT", f"/v1/groups/g{i}", {"types": ["order.created"]})
                assert st in (200, 201), (st, body)
            time.sleep(1)
            c0 = d.cpu_s()
            time.sleep(10)
            cpu = d.cpu_s() - c0
            if interval == "100ms":
                out = {"groups": n, "rss_empty_mb": round(base, 1),
                       "rss_idle_mb": round(d.rss_mb(), 1),
                       "kb_per_idle_group": round((d.rss_mb() - base) * 1024 / n, 2),
                       "cpu_10s_at_100ms": round(cpu, 2)}
            else:
                out["cpu_10s_at_1h"] = round(cpu, 2)
        finally:
            d.stop()
    out["sampler_ms_per_round"] = round((out["cpu_10s_at_100ms"] - out["cpu_10s_at_1h"])
                                        * 1000 / 100, 2)
    print(json.dumps({"measure": "idle", **out}), flush=True)


def inflight(n=100000):
    d = D(*os.environ.get("EB_ARGS", "").split())
    try:
        st, _ = d.req("PUT", "/v1/groups/g", {"types": ["order.created"], "start": "earliest",
                                              "ack_timeout_ms": 600000})
        pad = "p" * 120
        for b in range(n // 1000):
            evs = [{"type": "order.created", "data": {"n": b * 1000 + i, "pad": pad}}
                   for i in range(1000)]
            st, body = d.req("POST", "/v1/events/batch", evs)
            assert st == 201, (st, body)
        st, body = d.req("POST", "/v1/groups/g/pull", {"consumer": "c", "max": 1000})
        got = len(body["events"])
        size = len(json.dumps(body["events"][0]))
        time.sleep(0.5)
        before = d.rss_mb()
        while got < n:
            st, body = d.req("POST", "/v1/groups/g/pull", {"consumer": "c", "max": 1000})
            assert st == 200 and body["events"], (st, body)
            got += len(body["events"])
        time.sleep(0.5)
        after = d.rss_mb()
        print(json.dumps({"measure": "inflight", "deliveries": got, "event_json_bytes": size,
                          "rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1),
                          "bytes_per_delivery": round((after - before) * 2**20 / (got - 1000))}),
              flush=True)
    finally:
        d.stop()


if __name__ == "__main__":
    what = [a[2:] for a in sys.argv[1:] if a.startswith("--")] or ["inflight", "idle"]
    for w in what:
        {"idle": idle_groups, "inflight": inflight}[w]()
