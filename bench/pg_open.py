#!/usr/bin/env python3
"""bench/pg_open.py N NEW_EVENTBUSD OLD_EVENTBUSD: what an open (a restart,
or a follower taking over) costs on PostgreSQL with N retained events. A
throwaway cluster (tests/tools/pgcluster.py), N small events published
through NEW (batches of 1000, generated ids, --fsync never), then opens
alternating NEW, OLD, NEW, OLD on that database. Prints, per open: seconds
from exec to /healthz 200, the "records read" of the startup log line
(what the store left for the bus to read; an engine without summaries
says 0 and the bus reads every event), the RSS once ready (and its anonymous part: the rest is mapped files, evictable), and the id
entries in memory. Not part of `make bench` (minutes for 1M events).
docs/performance.md, "Opening on PostgreSQL"."""
import http.client, json, os, re, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools"))
import pgcluster

if len(sys.argv) != 4:
    sys.exit(__doc__)
N = int(sys.argv[1]); NEW = sys.argv[2]; OLD = sys.argv[3]
c = pgcluster.Cluster()
db, uri = c.create_db()
logp = os.path.join(c.dir, "server.log")
with socket.socket() as so:
    so.bind(("127.0.0.1", 0)); PORT = so.getsockname()[1]

def start(binary):
    log = open(logp, "w")
    t0 = time.time()
    p = subprocess.Popen([binary, "--store", uri, "--listen", f"127.0.0.1:{PORT}", "--fsync", "never",
                          "--dedupe-window", "0s"], stdout=log, stderr=subprocess.STDOUT)
    while True:
        assert p.poll() is None, open(logp).read()
        try:
            h = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
            h.request("GET", "/healthz"); r = h.getresponse(); r.read()
            if r.status == 200:
                break
        except OSError:
            pass
        time.sleep(0.02)
    dt = time.time() - t0
    rss = anon = 0
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS"):
            rss = int(l.split()[1]) // 1024
        if l.startswith("RssAnon"):
            anon = int(l.split()[1]) // 1024
    txt = open(logp).read()
    m = re.findall(r"lookups and counts: (\d+) records read", txt)
    return p, dt, int(m[-1]) if m else -1, f"{rss} MB (anonymous {anon} MB)"

def stop(p):
    p.terminate(); p.wait()

try:
    p, *_ = start(NEW)
    h = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    for b in range(0, N, 1000):
        evs = [{"type": f"order.t{i % 5}", "source": f"svc{i % 3}", "data": {"i": i}} for i in range(b, b + 1000)]
        h.request("POST", "/v1/events/batch", json.dumps(evs), {"Content-Type": "application/json"})
        r = h.getresponse(); r.read(); assert r.status == 201, r.status
    h.request("GET", "/v1/stats"); st = json.loads(h.getresponse().read())
    print("published", N, "ids in memory after publishing:", st["events"]["index_ids_in_memory"])
    time.sleep(3)
    print("summaries:", c.query(db, "SELECT count(*) FROM eb_summaries"),
          "partitions:", c.query(db, "SELECT count(*) FROM pg_inherits"))
    stop(p)
    for name, b in (("new", NEW), ("main", OLD), ("new", NEW), ("main", OLD)):
        p, dt, read, rss = start(b)
        h = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        h.request("GET", "/v1/stats"); st = json.loads(h.getresponse().read())
        print(f"{name}: open {dt:.2f} s, {read} records read, RSS {rss}, ids in memory {st['events']['index_ids_in_memory']}, load {os.getloadavg()[0]:.1f}", flush=True)
        stop(p)
finally:
    c.stop()
