#!/usr/bin/env python3
"""Measures what the memory bounds of issue 13 (item 5) hold, the way the
issue measured the faults: eventbusd's RSS after 1M client ids of 128 bytes
in the dedupe window, and after registering 10,000 trivial schemas. Also
the real cost of one dedupe id (RSS growth over ids, unbounded run) against
the estimate the bound counts (eventbus_dedupe_bytes).

Usage: bench/memory/bounds.py [path/to/eventbusd]   (not part of make test)
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import http.client

DAEMON = sys.argv[1] if len(sys.argv) > 1 else "build/src/eventbusd"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class D:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="eb-mem-")
        self.port = free_port()
        self.p = subprocess.Popen([DAEMON, "--listen", f"127.0.0.1:{self.port}", "--data",
                                   self.dir + "/data", "--fsync", "never", "--log-level",
                                   "warn"] + list(args), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.req("GET", "/healthz")
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("eventbusd did not start")

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.c.request(method, path, body=data,
                       headers={"Content-Type": "application/json"} if data else {})
        r = self.c.getresponse()
        return r.status, r.read()

    def rss_mib(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        return kb / 1024

    def metric(self, name):
        _, text = self.req("GET", "/metrics")
        return int(re.search(rf"^{name} (\d+)$", text.decode(), re.M).group(1))

    def stop(self):
        self.p.terminate()
        self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def publish_ids(d, n, start=0, batch=1000):
    for b in range(start, start + n, batch):
        evs = [{"type": "t.x", "id": f"{i:012d}" + "k" * 116} for i in range(b, b + batch)]
        st, body = d.req("POST", "/v1/events/batch", evs)
        assert st == 201, (st, body[:200])


def main():
    # 1M client ids of 128 bytes, default bound
    d = D()
    r0 = d.rss_mib()
    t0 = time.time()
    publish_ids(d, 1000000)
    print(flush=True, *[f"dedupe, default --dedupe-max-bytes (64MiB): 1M ids of 128 B in {time.time() - t0:.0f} s: "
          f"RSS {r0:.1f} -> {d.rss_mib():.1f} MiB; ids kept {d.metric('eventbus_dedupe_ids')}, "
          f"counted {d.metric('eventbus_dedupe_bytes') / 1048576:.1f} MiB, "
          f"evicted {d.metric('eventbus_dedupe_evicted_total')}"])
    d.stop()
    # the real cost of one id: unbounded, 200k ids
    d = D("--dedupe-max-bytes", "4GiB")
    publish_ids(d, 20000)
    r1 = d.rss_mib()
    b1 = d.metric("eventbus_dedupe_bytes")
    publish_ids(d, 200000, start=20000)
    r2 = d.rss_mib()
    b2 = d.metric("eventbus_dedupe_bytes")
    n = 200000
    print(flush=True, *[f"dedupe id of 128 B: RSS {(r2 - r1) * 1048576 / n:.0f} B per id measured, "
          f"{(b2 - b1) / n:.0f} B per id counted"])
    d.stop()
    # 10,000 trivial schemas, default bound
    d = D()
    r0 = d.rss_mib()
    ok = refused = 0
    for i in range(10000):
        st, _ = d.req("PUT", f"/v1/schemas/type.n{i}", {"schema": {"type": "object"}})
        ok += st == 201
        refused += st == 409
    r1 = d.rss_mib()
    print(f"schemas, default --max-schemas (1000): 10,000 PUTs: {ok} registered, {refused} "
          f"refused (409); RSS {r0:.1f} -> {r1:.1f} MiB ({(r1 - r0) * 1024 / max(ok, 1):.1f} KiB "
          f"per schema)")
    d.stop()


if __name__ == "__main__":
    main()
