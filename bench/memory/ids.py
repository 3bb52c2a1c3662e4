#!/usr/bin/env python3
"""What the id lookups hold (issue 13 item 5, "memory bounded overall"):
eventbusd's RSS (and its anonymous part: RSS counts the mapped segments'
pages too) and /v1/stats' index_ids_in_memory after publishing N small
events (default 1,000,000, generated ids, default 64 MiB segments), so the
ids of sealed, summarized segments leave memory. Run it on two builds for
a before/after (an older build has no index_ids_in_memory: null).

Usage: bench/memory/ids.py [path/to/eventbusd] [N]   (not part of make test)
Prints one JSON line.
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bounds  # noqa: E402  (the daemon wrapper)


def main():
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    d = bounds.D("--dedupe-window", "0s")
    try:
        rss0 = d.rss_mib()
        t0 = time.time()
        for b in range(0, n, 1000):
            evs = [{"type": "t.x", "data": {"i": i}} for i in range(b, min(n, b + 1000))]
            st, body = d.req("POST", "/v1/events/batch", evs)
            assert st == 201, (st, body[:200])
        secs = time.time() - t0
        time.sleep(2)  # the summarizer writes the last sealed segment's summary
        d.req("GET", "/v1/events/none")  # a lookup frees what the summaries cover
        _, body = d.req("GET", "/v1/stats")
        ev = json.loads(body)["events"]
        with open(f"/proc/{d.p.pid}/status") as f:  # RSS less the mapped segments
            anon = int(re.search(r"RssAnon:\s+(\d+)", f.read()).group(1)) / 1024
        print(json.dumps({"events": n, "rss_start_mib": round(rss0, 1),
                          "rss_mib": round(d.rss_mib(), 1), "rss_anon_mib": round(anon, 1), "segments": ev["segments"],
                          "bytes": ev["bytes"],
                          "index_ids_in_memory": ev.get("index_ids_in_memory"),
                          "publish_s": round(secs, 1), "load": os.getloadavg()[0]}))
    finally:
        d.stop()


if __name__ == "__main__":
    main()
