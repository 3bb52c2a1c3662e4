#!/usr/bin/env python3
"""The event store (issue 16) against a real eventbusd: per-key streams
with versions, optimistic concurrency (expected_version, 409
version_conflict), reading one key's stream in work proportional to what it
returns, lookups by id for the whole retention, the lookups rebuilt after a
SIGKILL, lookups by (source, id) (the same id from several sources), the
schema version on every event read out, unknown query parameters refused.
"""
import json
import os
import threading
import time
import urllib.parse

from harness import PG, Skip, run_tests, skip_on_pg


def publish(srv, ev, expect=201):
    st, _, js = srv.request("POST", "/v1/events", ev)
    assert st == expect, (st, js)
    return js


def batch(srv, evs, expect=201):
    st, _, js = srv.request("POST", "/v1/events/batch", evs)
    assert st == expect, (st, js)
    return js


def stream(srv, key, from_version=None, limit=None):
    q = {"key": key}
    if from_version is not None:
        q["from_version"] = from_version
    if limit is not None:
        q["limit"] = limit
    st, _, js = srv.request("GET", "/v1/events?" + urllib.parse.urlencode(q))
    assert st == 200, (st, js)
    return js


def lookup_reads(srv):
    st, _, js = srv.request("GET", "/v1/stats")
    assert st == 200, js
    return js["events"]["lookup_reads"]


def test_key_versions_in_answers_and_reads(srv):
    a = publish(srv, {"type": "cart.item-added", "key": "cart-1", "data": {"sku": "a"}})
    b = publish(srv, {"type": "cart.item-added", "key": "cart-2", "data": {"sku": "b"}})
    c = publish(srv, {"type": "cart.item-added", "key": "cart-1", "data": {"sku": "c"}})
    n = publish(srv, {"type": "cart.viewed", "data": {}})
    assert a["key_version"] == 1 and b["key_version"] == 1 and c["key_version"] == 2
    assert "key_version" not in n, "unkeyed events have no version"
    page = stream(srv, "cart-1")
    assert [e["data"]["sku"] for e in page["events"]] == ["a", "c"]
    assert [e["key_version"] for e in page["events"]] == [1, 2]
    assert page["key_version"] == 2 and page["next_from_version"] == 3
    st, _, one = srv.request("GET", f"/v1/events/{c['id']}")
    assert st == 200 and one["key_version"] == 2, one
    assert stream(srv, "nobody")["events"] == []
    srv.restart()
    page = stream(srv, "cart-1")
    assert [e["data"]["sku"] for e in page["events"]] == ["a", "c"]
    d = publish(srv, {"type": "cart.item-added", "key": "cart-1", "expected_version": 2,
                      "data": {"sku": "d"}})
    assert d["key_version"] == 3
    st, _, one = srv.request("GET", f"/v1/events/{b['id']}")
    assert st == 200 and one["key"] == "cart-2", one


def test_projector_rebuilds_from_a_key_stream(srv):
    """An aggregate's events appended with expected versions, then a
    projector rebuilds its state by reading the stream page by page."""
    expected = 0
    balance = 0
    for i in range(1, 26):
        amount = i * 3 if i % 4 else -i
        balance += amount
        r = publish(srv, {"type": "account.posted", "key": "acct/42 ü",
                          "expected_version": expected, "data": {"amount": amount}})
        expected = r["key_version"]
        publish(srv, {"type": "account.posted", "key": "acct-other", "data": {"amount": 1000}})
    assert expected == 25
    state, version, pages = 0, 0, 0
    while True:
        page = stream(srv, "acct/42 ü", from_version=version + 1, limit=7)
        pages += 1
        for e in page["events"]:
            assert e["key_version"] == version + 1
            assert e["key"] == "acct/42 ü"
            state += e["data"]["amount"]
            version = e["key_version"]
        if not page["events"]:
            break
    assert (state, version, pages) == (balance, 25, 5)
    tail = stream(srv, "acct/42 ü", from_version=24)
    assert [e["key_version"] for e in tail["events"]] == [24, 25]


def test_expected_version_conflict_writes_nothing(srv):
    publish(srv, {"type": "order.placed", "key": "o-1", "expected_version": 0})
    st, _, js = srv.request("POST", "/v1/events", {"type": "order.paid", "key": "o-1",
                                                  "expected_version": 0})
    assert st == 409 and js["error"]["code"] == "version_conflict", js
    d = js["error"]["details"][0]
    assert d["field"] == "/expected_version" and d["current_version"] == 1, d
    publish(srv, {"type": "order.paid", "key": "o-1", "expected_version": 1})
    publish(srv, {"type": "order.noted", "key": "o-1", "expected_version": -1})
    # A batch: one key's events are checked in order; one conflict refuses all.
    st, _, js = srv.request("POST", "/v1/events/batch", [
        {"type": "order.shipped", "key": "o-1", "expected_version": 3},
        {"type": "order.x", "key": "o-2", "expected_version": 0},
        {"type": "order.delivered", "key": "o-1", "expected_version": 3}])
    assert st == 409, js
    d = js["error"]["details"]
    assert d[0]["index"] == 2 and d[0]["current_version"] == 4, d
    assert stream(srv, "o-1")["key_version"] == 3
    assert stream(srv, "o-2")["events"] == [], "nothing of the refused batch was written"
    r = batch(srv, [{"type": "order.shipped", "key": "o-1", "expected_version": 3},
                    {"type": "order.x", "key": "o-2", "expected_version": 0},
                    {"type": "order.delivered", "key": "o-1", "expected_version": 4}])
    assert [x["key_version"] for x in r["results"]] == [4, 1, 5]
    # Bad values name the field.
    for bad in ({"type": "t.a", "key": "k", "expected_version": -2},
                {"type": "t.a", "key": "k", "expected_version": "1"},
                {"type": "t.a", "expected_version": 0}):
        st, _, js = srv.request("POST", "/v1/events", bad)
        assert st == 400 and js["error"]["details"][0]["field"] == "/expected_version", js


def test_eight_writers_race_one_winner_per_version(srv):
    wins, conflicts, errors = [], [], []
    lock = threading.Lock()
    goal = 40

    def writer(w):
        while True:
            st, _, page = srv_get(f"/v1/events?key=race")
            cur = page["key_version"]
            if cur >= goal:
                return
            st, js = srv_post({"type": "race.step", "key": "race", "expected_version": cur,
                               "data": {"writer": w, "after": cur}})
            with lock:
                if st == 201:
                    wins.append((js["key_version"], w, cur))
                elif st == 409:
                    conflicts.append(js["error"]["details"][0]["current_version"])
                else:
                    errors.append((st, js))

    import http.client

    def srv_get(path):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        c.request("GET", path)
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        return r.status, None, body

    def srv_post(body):
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        c.request("POST", "/v1/events", json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        js = json.loads(r.read())
        c.close()
        return r.status, js

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    versions = sorted(v for v, _, _ in wins)
    assert versions[:goal] == list(range(1, goal + 1)), versions
    assert all(v == cur + 1 for v, _, cur in wins), "each winner got the version after it read"
    assert len(versions) == len(set(versions)), "one winner per version"
    assert conflicts, "8 writers on one key must have collided at least once"
    page = stream(srv, "race", limit=1000)
    got = [(e["key_version"], e["data"]["writer"]) for e in page["events"]]
    assert got == sorted((v, w) for v, w, _ in wins), "the stream is exactly the winners"


def test_key_read_cost_is_the_events_returned(srv):
    """Reading a key with 10 events costs the same records read in a log of
    100 events as in a log of 5000: a ratio, never a time."""
    def fill(n_other, key):
        evs = [{"type": "noise.e", "key": f"other-{i % 97}", "data": i} for i in range(n_other)]
        for i in range(0, len(evs), 1000):
            batch(srv, evs[i:i + 1000])
        for i in range(10):
            publish(srv, {"type": "mine.e", "key": key, "data": i})

    def cost(key):
        before = lookup_reads(srv)
        page = stream(srv, key, limit=1000)
        assert [e["data"] for e in page["events"]] == list(range(10))
        return lookup_reads(srv) - before

    fill(90, "small")
    small = cost("small")
    fill(4990, "large")
    large = cost("large")
    assert small == large == 10, (small, large)


def test_ids_found_after_the_dedupe_window_and_after_sigkill(srv):
    srv.restart(["--dedupe-window", "1s"])
    ids = [f"client-id-{i}" for i in range(20)]
    for i, cid in enumerate(ids):
        publish(srv, {"type": "doc.saved", "id": cid, "source": "svc", "key": f"doc-{i % 3}",
                      "data": i})
    gen = publish(srv, {"type": "doc.saved", "data": "generated"})["id"]
    time.sleep(1.3)
    before = lookup_reads(srv)
    for i, cid in enumerate(ids):
        st, _, e = srv.request("GET", f"/v1/events/{cid}")
        assert st == 200 and e["data"] == i, (cid, st, e)
    assert lookup_reads(srv) - before == len(ids), "one record read per lookup"
    # The dedupe window has passed: the same id is a new event now; the
    # lookup finds the newest.
    publish(srv, {"type": "doc.saved", "id": ids[0], "source": "svc", "data": "again"})
    # SIGKILL while writers publish: the lookups are rebuilt from the log.
    stop = threading.Event()
    acked = []

    def writer():
        import http.client
        n = 0
        while not stop.is_set():
            try:
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
                body = {"type": "doc.saved", "id": f"w-{n}", "key": "doc-w", "data": n}
                c.request("POST", "/v1/events", json.dumps(body),
                          {"Content-Type": "application/json"})
                r = c.getresponse()
                js = json.loads(r.read())
                c.close()
                if r.status == 201:
                    acked.append((f"w-{n}", js["key_version"], js["seq"]))
                n += 1
            except OSError:
                return

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.5)
    srv.kill9()
    stop.set()
    t.join()
    assert len(acked) > 10, acked
    srv.start(["--dedupe-window", "1s"])
    for cid, kv, seq in acked:
        st, _, e = srv.request("GET", f"/v1/events/{cid}")
        assert st == 200 and e["seq"] == seq and e["key_version"] == kv, (cid, st, e)
    st, _, e = srv.request("GET", f"/v1/events/{ids[0]}")
    assert st == 200 and e["data"] == "again", e
    st, _, e = srv.request("GET", f"/v1/events/{gen}")
    assert st == 200 and e["data"] == "generated", e
    events = []  # the whole stream, page by page (more than 1000 may be acked)
    while True:
        page = stream(srv, "doc-w", from_version=len(events) + 1, limit=1000)["events"]
        if not page:
            break
        events += page
    got = [(e["id"], e["key_version"], e["seq"]) for e in events]
    assert got[:len(acked)] == acked, (got[:5], acked[:5])
    assert [e["key_version"] for e in events] == list(range(1, len(got) + 1))
    # Versions continue after the restart.
    r = publish(srv, {"type": "doc.saved", "key": "doc-w", "expected_version": len(got)})
    assert r["key_version"] == len(got) + 1
    st, _, js = srv.request("GET", "/v1/events/no-such-id")
    assert st == 404, js


def startup_reads(srv, offset):
    """The records the events store read at the last start (its log line
    after offset) and the segment summaries it rebuilt."""
    import re
    with open(srv.log_path, errors="replace") as f:
        f.seek(offset)
        m = re.findall(r"events lookups and counts: (\d+) records read, (\d+) segment "
                       r"summaries rebuilt", f.read())
    assert m, srv.log_tail()
    return int(m[-1][0]), int(m[-1][1])


def test_lookups_and_lag_after_sigkill_come_from_segment_summaries(srv):
    """Segments of 16 KiB, keyed events across dozens of them, groups at
    several positions; SIGKILL; the restart reads the active segment's
    records only (the sealed ones through their summaries: a ratio, not a
    time), and every key stream, id lookup and group lag is as before."""
    skip_on_pg("segment summaries are the log engine's; PostgreSQL reads its tables")
    os.environ["EB_TEST_SEGMENT_BYTES"] = "16384"
    try:
        srv.restart()
        for g, types in (("all", ["*"]), ("saved", ["doc.saved"]), ("mid", ["doc.*"])):
            st, _, js = srv.request("PUT", f"/v1/groups/{g}", {"types": types})
            assert st == 201, js
        ids = []
        for b in range(150):
            evs = [{"type": "doc.saved" if i % 3 else "doc.deleted", "key": f"doc-{i % 10}",
                    "source": f"src-{i % 2}", "data": {"b": b, "i": i}} for i in range(20)]
            ids += [r["id"] for r in batch(srv, evs)["results"]]
            if b == 75:  # one client-chosen id, in a sealed segment by the end
                dup = publish(srv, {"type": "doc.noted", "id": "dup-me", "source": "s",
                                    "data": {}})
            if b == 50:  # "mid" consumes the first part, one event left leased
                st, _, js = srv.request("POST", "/v1/groups/mid/pull",
                                        {"consumer": "c", "max": 900})
                got = js["events"]
                st, _, js = srv.request("POST", "/v1/groups/mid/ack",
                                        {"ids": [e["delivery"]["id"] for e in got[1:]]})
                assert st == 200, js
        before_lag = {}
        for g in ("all", "saved", "mid"):
            st, _, js = srv.request("GET", f"/v1/groups/{g}")
            before_lag[g] = js["lag"]
        before_streams = {k: [(e["id"], e["key_version"]) for e in
                              stream(srv, f"doc-{k}", limit=1000)["events"]] for k in range(10)}
        assert all(len(v) == 300 for v in before_streams.values()), before_streams[0][:3]
        data = os.path.join(srv.data, "events")
        segs = [f for f in os.listdir(data) if f.endswith(".seg")]
        assert len(segs) > 20, segs
        srv.kill9()
        with open(srv.log_path) as f:
            offset = len(f.read())
        srv.start()
        read, rebuilt = startup_reads(srv, offset)
        # The active segment and the sealed ones whose summaries the kill
        # left unwritten (written by a thread as segments seal): a few
        # segments of about 50.
        print(f"restart after SIGKILL: {read} of {len(ids)} records read, "
              f"{rebuilt} of {len(segs)} summaries rebuilt")
        assert read * 10 < len(ids), (read, rebuilt, len(segs))
        assert rebuilt <= 3, rebuilt
        sums = [f for f in os.listdir(data) if f.endswith(".sum")]
        assert len(sums) == len([f for f in os.listdir(data) if f.endswith(".seg")]) - 1
        for g, lag in before_lag.items():
            st, _, js = srv.request("GET", f"/v1/groups/{g}")
            assert js["lag"] == lag, (g, lag, js["lag"])
        for k, want in before_streams.items():
            page = stream(srv, f"doc-{k}", limit=1000)
            assert [(e["id"], e["key_version"]) for e in page["events"]] == want, k
            assert page["key_version"] == 300
        reads = lookup_reads(srv)
        for i in range(0, len(ids), 97):
            st, _, e = srv.request("GET", f"/v1/events/{ids[i]}")
            assert st == 200 and e["data"]["i"] == i % 20, (i, st, e)
        assert lookup_reads(srv) - reads == len(range(0, len(ids), 97)), "one read per lookup"
        r = publish(srv, {"type": "doc.saved", "key": "doc-3", "expected_version": 300})
        assert r["key_version"] == 301
        # The dedupe window came back too (refilled from the segments that
        # may hold client ids: the one with "dup-me", not the others).
        again = publish(srv, {"type": "doc.noted", "id": "dup-me", "source": "s", "data": {}},
                        expect=200)
        assert again.get("duplicate") is True and again["seq"] == dup["seq"], (again, dup)
    finally:
        del os.environ["EB_TEST_SEGMENT_BYTES"]


def get_from(srv, eid, source=None):
    q = "" if source is None else "?" + urllib.parse.urlencode({"source": source})
    return srv.request("GET", f"/v1/events/{urllib.parse.quote(eid, safe='')}{q}")


def crc32c(b):
    crc = 0xFFFFFFFF
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def as_format_1(path):
    """Rewrites a segment summary (format 2) as the format-1 file the
    previous version wrote: no (source, id) hashes, a 72-byte header, a
    valid CRC. The new code must rebuild it from its segment."""
    import struct
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"EBSEGSUM" and struct.unpack_from("<II", b, 8) == (2, 80), b[:16]
    nids = struct.unpack_from("<Q", b, 56)[0]
    body = b[80:80 + 16 * nids] + b[80 + 32 * nids:-4]
    out = b"EBSEGSUM" + struct.pack("<II", 1, 72) + b[16:72] + body
    with open(path, "wb") as f:
        f.write(out + struct.pack("<I", crc32c(out)))


WEIRD = 'we"ird\\src/süd\u0001'  # escaped in the stored JSON


def test_lookup_by_source_and_id(srv):
    """CloudEvents ids are unique per source: the same id from several
    sources, each found by ?source= in one record read (a ratio), the
    newest without it, the one without a source by ?source= (empty);
    after the dedupe window too."""
    srv.restart(["--dedupe-window", "1s"])
    seqs = {}
    for src, data in (("a", 1), ("b", 2), (None, 3), (WEIRD, 4)):
        ev = {"type": "order.placed", "id": "order-1", "data": data}
        if src is not None:
            ev["source"] = src
        seqs[src] = publish(srv, ev)["seq"]
    # filler so the same id is not the only thing in the store
    batch(srv, [{"type": "order.placed", "source": "a", "data": i} for i in range(50)])
    before = lookup_reads(srv)
    for src, data in (("a", 1), ("b", 2), ("", 3), (WEIRD, 4)):
        st, _, e = get_from(srv, "order-1", src)
        assert st == 200 and e["data"] == data, (src, st, e)
        assert e.get("source", "") == src and e["seq"] == seqs[src or None], (src, e)
    assert lookup_reads(srv) - before == 4, "one record read per lookup"
    st, _, e = get_from(srv, "order-1")
    assert st == 200 and e["data"] == 4, e  # the newest, whatever its source
    for src in ("c", "A", "a ", WEIRD[:-1]):
        st, _, js = get_from(srv, "order-1", src)
        assert st == 404 and js["error"]["code"] == "not_found", (src, st, js)
    st, _, js = get_from(srv, "no-such-id", "a")
    assert st == 404, js
    st, _, js = srv.request("GET", "/v1/events/order-1?source=%zz")
    assert st == 400 and js["error"]["details"][0]["field"] == "?source", js
    st, _, js = srv.request("GET", "/v1/events/order-1?sauce=a")
    assert st == 400, js
    # Past the dedupe window the same (source, id) is a new event: the
    # lookup finds the newer one of that source; the others stay found.
    time.sleep(1.3)
    again = publish(srv, {"type": "order.placed", "id": "order-1", "source": "a", "data": 5})
    assert again["seq"] > seqs[WEIRD], again
    for src, data in (("a", 5), ("b", 2), ("", 3), (WEIRD, 4), (None, 5)):
        st, _, e = get_from(srv, "order-1", src)
        assert st == 200 and e["data"] == data, (src, st, e)
    # A restart rebuilds them (the PostgreSQL engine: from its tables).
    srv.restart(["--dedupe-window", "1s"])
    for src, data in (("a", 5), ("b", 2), ("", 3), (WEIRD, 4), (None, 5)):
        st, _, e = get_from(srv, "order-1", src)
        assert st == 200 and e["data"] == data, (src, st, e)


def test_lookup_by_source_after_sigkill_in_sealed_segments(srv):
    """The same ids from three sources, each source's copies in different
    16 KiB segments; SIGKILL; after the restart (sealed segments through
    their summaries) every (source, id) is found in one read, and a
    summary in the previous format (no source hashes) is rebuilt."""
    pg = PG
    if not pg:
        os.environ["EB_TEST_SEGMENT_BYTES"] = "16384"
    try:
        srv.restart()
        n = 200
        seqs = {}
        for src in ("s0", "s1", "s2"):
            for b in range(0, n, 50):
                evs = [{"type": "item.saved", "id": f"item-{i}", "source": src,
                        "data": {"src": src, "i": i}} for i in range(b, b + 50)]
                for i, r in zip(range(b, b + 50), batch(srv, evs)["results"]):
                    seqs[(src, i)] = r["seq"]
        if not pg:
            data = os.path.join(srv.data, "events")
            segs = sorted(f for f in os.listdir(data) if f.endswith(".seg"))
            assert len(segs) > 6, segs
            # The sealed segments' summaries are written by a thread after
            # the appends are answered: the test is of the restart through
            # them, so the kill waits for them (a slow build lagged).
            for _ in range(200):
                if sum(f.endswith(".sum") for f in os.listdir(data)) >= len(segs) - 1:
                    break
                time.sleep(0.05)
        srv.kill9()
        if not pg:
            sums = sorted(f for f in os.listdir(data) if f.endswith(".sum"))
            assert len(sums) >= 3, sums
            as_format_1(os.path.join(data, sums[1]))
            with open(srv.log_path) as f:
                offset = len(f.read())
        # No dedupe window: a miss in the lookup would not be covered by it.
        srv.start(["--dedupe-window", "0s"])
        if not pg:
            read, rebuilt = startup_reads(srv, offset)
            assert rebuilt >= 1, (read, rebuilt)
            assert read * 3 < len(seqs), (read, rebuilt)
            with open(os.path.join(data, sums[1]), "rb") as f:
                assert f.read(16)[8:16] == b"\x02\x00\x00\x00\x50\x00\x00\x00"
        probes = [(src, i) for src in ("s0", "s1", "s2") for i in range(0, n, 7)]
        before = lookup_reads(srv)
        for src, i in probes:
            st, _, e = get_from(srv, f"item-{i}", src)
            assert st == 200 and e["seq"] == seqs[(src, i)], (src, i, st, e)
            assert e["data"] == {"src": src, "i": i}, e
        assert lookup_reads(srv) - before == len(probes), "one record read per lookup"
        for i in range(0, n, 13):
            st, _, e = get_from(srv, f"item-{i}")
            assert st == 200 and e["seq"] == seqs[("s2", i)], (i, e)
            st, _, js = get_from(srv, f"item-{i}", "s3")
            assert st == 404, js
    finally:
        os.environ.pop("EB_TEST_SEGMENT_BYTES", None)


def test_forced_hash_collisions_still_find_every_event(srv):
    """EB_TEST_ID_HASH_BITS=7 (a test hook: 128 hashes for 300 events) so
    the lookups collide all the time: each (source, id) and each id is
    still found, never another's event, by walking below a wrong hit (a
    few reads, not a scan; at most 16); after a SIGKILL too, with sealed
    segments."""
    pg = PG
    os.environ["EB_TEST_ID_HASH_BITS"] = "7"
    if not pg:
        os.environ["EB_TEST_SEGMENT_BYTES"] = "16384"
    try:
        srv.restart(["--dedupe-window", "0s"])
        seqs = {}
        for src in ("s0", "s1", "s2"):
            evs = [{"type": "item.saved", "id": f"c-{i}", "source": src, "data": i}
                   for i in range(100)]
            for i, r in enumerate(batch(srv, evs)["results"]):
                seqs[(src, i)] = r["seq"]

        def check():
            before = lookup_reads(srv)
            n = 0
            for i in range(0, 100, 3):
                for src in ("s0", "s1", "s2"):
                    st, _, e = get_from(srv, f"c-{i}", src)
                    assert st == 200 and e["seq"] == seqs[(src, i)], (src, i, st, e)
                    n += 1
                st, _, e = get_from(srv, f"c-{i}")
                assert st == 200 and e["seq"] == seqs[("s2", i)], (i, e)
                n += 1
                st, _, js = get_from(srv, f"c-{i}", "s3")
                assert st == 404, js
            reads = lookup_reads(srv) - before
            print(f"{n} lookups with forced collisions: {reads} records read")
            assert n < reads < 4 * n, "the collisions were walked, a few reads each"

        check()
        srv.kill9()
        srv.start(["--dedupe-window", "0s"])
        check()
    finally:
        del os.environ["EB_TEST_ID_HASH_BITS"]
        os.environ.pop("EB_TEST_SEGMENT_BYTES", None)


def ids_in_memory(srv, bound):
    """/v1/stats' index_ids_in_memory once the summaries of the sealed
    segments are installed (written by a thread: waits up to 20 s for the
    figure to come under bound; a lookup frees what they cover)."""
    for _ in range(200):
        get_from(srv, "none")
        st, _, js = srv.request("GET", "/v1/stats")
        assert st == 200, js
        n, segs = js["events"]["index_ids_in_memory"], js["events"]["segments"]
        if n <= bound:
            break
        time.sleep(0.1)
    return n, segs


PG_PART = 256  # EB_TEST_PG_PART_SEQS: seqs a partition in the tests that set it


def small_segments():
    """The test knob of small segments (16 KiB) or, on PostgreSQL, small
    partitions (PG_PART seqs), for a server started after this."""
    os.environ["EB_TEST_SEGMENT_BYTES"] = "16384"
    os.environ["EB_TEST_PG_PART_SEQS"] = str(PG_PART)


def default_segments():
    os.environ.pop("EB_TEST_SEGMENT_BYTES", None)
    os.environ.pop("EB_TEST_PG_PART_SEQS", None)


def pg_partitions(srv):
    """PostgreSQL: the partitions of eb_events."""
    return int(srv.pg_query("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                            "'eb_events'::regclass"))


def test_ids_in_memory_stay_about_two_segments_as_events_grow(srv):
    """16 KiB segments (PostgreSQL: partitions of 256 seqs): publishing 10x
    more events (about 3 segments, then about 20) leaves the id entries in
    memory at about two segments' worth (the sealed segments' ids are in
    their summaries; a ratio against the events per segment, not a time),
    and every event is still found by id and by (source, id) in sealed,
    summarized and active segments, after a restart too; the restart reads
    about one segment's events (PostgreSQL: the partitions after the last
    summarized one), not every event."""
    small_segments()
    try:
        srv.restart(["--dedupe-window", "0s"])  # (nothing published yet: no partition)
        seqs = {}

        def publish_range(lo, hi):
            for b in range(lo, hi, 100):
                evs = [{"type": "item.saved", "id": f"m-{i}", "source": f"s{i % 3}",
                        "data": {"i": i}} for i in range(b, b + 100)]
                for i, r in zip(range(b, b + 100), batch(srv, evs)["results"]):
                    seqs[i] = r["seq"]

        def check(n):
            for i in range(0, n, 37):
                st, _, e = get_from(srv, f"m-{i}")
                assert st == 200 and e["seq"] == seqs[i], (i, st, e)
                st, _, e = get_from(srv, f"m-{i}", f"s{i % 3}")
                assert st == 200 and e["seq"] == seqs[i] and e["data"] == {"i": i}, (i, e)
                st, _, js = get_from(srv, f"m-{i}", f"s{(i + 1) % 3}")
                assert st == 404, (i, js)

        publish_range(0, 300)
        st, _, js = srv.request("GET", "/v1/stats")
        per_seg = PG_PART if PG else 300 // max(1, js["events"]["segments"] - 1)
        bound = 2 * 3 * per_seg + 128  # two entries an event; 128 pending puts
        small, segs = ids_in_memory(srv, bound)
        segs = pg_partitions(srv) if PG else segs
        assert segs >= (2 if PG else 3) and small <= bound, (small, segs, bound)
        publish_range(300, 3000)
        large, segs = ids_in_memory(srv, bound)
        segs = pg_partitions(srv) if PG else segs
        print(f"{per_seg} events a segment; ids in memory: {small} at 300 events "
              f"({segs} segments at the end), {large} at 3000")
        assert segs >= (11 if PG else 15) and large <= bound, (large, segs, bound)
        assert large * 4 < 2 * 3000, "far below an entry per id and per source id"
        check(3000)
        if PG:  # every complete partition summarized before the restart
            for _ in range(200):
                n = int(srv.pg_query("SELECT count(*) FROM eb_summaries"))
                if n >= 3000 // PG_PART:
                    break
                time.sleep(0.1)
            assert n == 3000 // PG_PART, n
        srv.restart(["--dedupe-window", "0s"])
        read = startup_reads(srv, 0)[0]
        print(f"restart: {read} of 3000 events read at open")
        assert read <= per_seg + 100, (read, per_seg)
        after, _ = ids_in_memory(srv, bound)
        assert after <= bound, (after, bound)
        check(3000)
    finally:
        default_segments()


def published_by_type(srv):
    st, _, js = srv.request("GET", "/v1/stats")
    assert st == 200, js
    return {t: c["published"] for t, c in js["events"]["types"].items()}


def test_pg_partition_summaries_missing_are_written_and_dropped_with_retention(srv):
    """PostgreSQL: a database whose summaries are missing (an older
    version's, or a crash before they were written) is read whole at the
    next open and its summaries are written then, so the open after reads
    only the last partition; every id is found throughout, and the type
    counts agree. Retention dropping partitions drops their summaries."""
    if not PG:
        raise Skip("PostgreSQL's partition summaries (the log engine's: tests/unit/test_segsum.c)")
    small_segments()
    try:
        srv.restart(["--dedupe-window", "0s"])
        ids = {}
        for b in range(0, 2000, 100):
            evs = [{"type": f"t.{i % 4}", "id": f"x-{i}", "key": f"k{i % 7}", "data": {}}
                   for i in range(b, b + 100)]
            for i, r in zip(range(b, b + 100), batch(srv, evs)["results"]):
                ids[i] = r["seq"]
        srv.stop()
        srv.pg_query("DELETE FROM eb_summaries")  # as an older version left it
        srv.start(["--dedupe-window", "0s"])
        assert startup_reads(srv, 0)[0] >= 1999, srv.log_tail()
        for _ in range(200):
            if int(srv.pg_query("SELECT count(*) FROM eb_summaries")) == 2000 // PG_PART:
                break
            time.sleep(0.1)
        assert int(srv.pg_query("SELECT count(*) FROM eb_summaries")) == 2000 // PG_PART
        before = published_by_type(srv)
        assert before == {f"t.{k}": 500 for k in range(4)}, before
        srv.restart(["--dedupe-window", "0s"])
        assert startup_reads(srv, 0)[0] <= PG_PART, srv.log_tail()
        for i in range(0, 2000, 13):
            st, _, e = get_from(srv, f"x-{i}")
            assert st == 200 and e["seq"] == ids[i], (i, st, e)
        e = stream(srv, "k3")
        versions = [x["key_version"] for x in e["events"]]
        assert versions[:3] == [1, 2, 3] and len(set(versions)) == len(versions), versions[:5]
        assert published_by_type(srv) == before
        # retention: the oldest partitions go, and their summaries with them
        srv.restart(["--dedupe-window", "0s", "--retention-bytes", "1"])
        for _ in range(100):
            parts = srv.pg_query("SELECT min(substring(c.relname from '_p([0-9]+)$')::bigint) "
                                 "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                 "WHERE i.inhparent = 'eb_events'::regclass")
            if int(parts) >= 2000 // PG_PART - 1:
                break
            time.sleep(0.1)
        lo = int(parts)
        assert lo >= 2000 // PG_PART - 1, lo
        sums = srv.pg_query("SELECT coalesce(min(part), -1) FROM eb_summaries")
        assert int(sums) == -1 or int(sums) >= lo, (sums, lo)
        st, _, e = get_from(srv, "x-1999")
        assert st == 200 and e["seq"] == ids[1999], e
        st, _, e = get_from(srv, "x-3")
        assert st == 404, e
    finally:
        default_segments()


def test_dedupe_window_after_restart_over_summarized_segments(srv):
    """Small segments (PostgreSQL: partitions of 256 seqs), the default
    dedupe window: client ids published across several summarized
    segments are still duplicates after a restart that read only the
    last one (the window is refilled from where the summaries count client
    ids), and events with generated ids in between do not hide them."""
    small_segments()
    try:
        srv.restart()
        firsts = {}
        for b in range(0, 1200, 100):
            evs = [{"type": "pay.done", "data": {"i": i}} if i % 2 else
                   {"type": "pay.done", "id": f"pay-{i}", "source": "billing", "data": {"i": i}}
                   for i in range(b, b + 100)]
            for i, r in zip(range(b, b + 100), batch(srv, evs)["results"]):
                if i % 2 == 0:
                    firsts[i] = r["seq"]
        if PG:
            for _ in range(200):
                if int(srv.pg_query("SELECT count(*) FROM eb_summaries")) == 1200 // PG_PART:
                    break
                time.sleep(0.1)
        srv.restart()
        if PG:
            assert startup_reads(srv, 0)[0] <= PG_PART, srv.log_tail()
        for i in range(0, 1200, 50):
            again = publish(srv, {"type": "pay.done", "id": f"pay-{i}", "source": "billing",
                                  "data": {"i": i}}, expect=200)
            assert again["duplicate"] is True and again["seq"] == firsts[i], (i, again)
    finally:
        default_segments()


def test_schema_version_on_every_event_read(srv):
    schema = {"type": "object"}
    st, _, js = srv.request("PUT", "/v1/schemas/pay.done", {"schema": schema})
    assert st == 201, js
    st, _, js = srv.request("PUT", "/v1/schemas/pay.done",
                            {"schema": {"type": "object", "properties": {"x": {}}}})
    assert st == 201, js
    a = publish(srv, {"type": "pay.done", "data": {}})  # latest: 2
    b = publish(srv, {"type": "pay.done", "version": 1, "data": {}})
    c = publish(srv, {"type": "free.form", "data": {}})
    st, _, e = srv.request("GET", f"/v1/events/{a['id']}")
    assert e["version"] == 2, e
    st, _, e = srv.request("GET", f"/v1/events/{b['id']}")
    assert e["version"] == 1, e
    st, _, e = srv.request("GET", f"/v1/events/{c['id']}")
    assert "version" not in e, e
    st, _, page = srv.request("GET", "/v1/events?type=pay.done")
    assert [e["version"] for e in page["events"]] == [2, 1]
    st, _, js = srv.request("PUT", "/v1/groups/g", {"types": ["pay.done"], "start": "earliest",
                                                     "max_attempts": 1})
    assert st in (200, 201), js
    st, _, js = srv.request("POST", "/v1/groups/g/pull", {"consumer": "c", "max": 10})
    assert st == 200 and [e["version"] for e in js["events"]] == [2, 1], js
    ids = [e["delivery"]["id"] for e in js["events"]]
    st, _, js = srv.request("POST", "/v1/groups/g/nack", {"ids": ids, "error": "no"})
    assert st == 200, js
    st, _, js = srv.request("GET", "/v1/groups/g/dlq")
    assert st == 200 and [d["event"]["version"] for d in js["dead_letters"]] == [2, 1], js


def test_unknown_query_parameters_refused(srv):
    for path in ("/v1/events?kee=a", "/v1/events?key=a&type=x", "/v1/stats?verbose=1",
                 "/v1/groups?x=1", "/healthz?probe", "/v1/events?from_version=2"):
        st, _, js = srv.request("GET", path)
        assert st == 400 and js["error"]["code"] == "invalid_request", (path, st, js)
        assert js["error"]["details"][0]["field"] in ("?kee", "?type", "?verbose", "?x", "?probe",
                                                      "?from_version"), js
    st, _, js = srv.request("GET", "/v1/events?limit=5&type=a.b")
    assert st == 200, js


def test_cloudevents_out(srv):
    """CloudEvents answers (the SDK round trip is tests/cloudevents); here
    the HTTP side, checked against the contract like every answer."""
    st, _, js = srv.request("POST", "/v1/events", {
        "specversion": "1.0", "id": "ce-1", "source": "/s", "type": "com.example.OrderCreated",
        "time": "2026-01-02T03:04:05Z", "partitionkey": "k", "n": 3, "flag": False,
        "data": {"x": 1}}, headers={"Content-Type": "application/cloudevents+json"})
    assert st == 201 and js["key_version"] == 1, js
    publish(srv, {"type": "com.example.OrderCreated", "key": "k", "extensions": {"deep": {"a": 1}},
                  "data": None})
    st, h, ce = srv.request("GET", "/v1/events/ce-1",
                            headers={"Accept": "application/cloudevents+json"})
    assert st == 200 and h["content-type"].startswith("application/cloudevents+json"), h
    assert ce["time"] == "2026-01-02T03:04:05Z" and ce["ebappendtime"] != ce["time"], ce
    assert (ce["n"], ce["flag"], ce["partitionkey"], ce["ebkeyversion"]) == (3, False, "k", 1)
    st, h, batch_ = srv.request("GET", "/v1/events?key=k",
                                headers={"Accept": "application/cloudevents-batch+json"})
    assert st == 200 and h["eventbus-next-from-version"] == "3", h
    assert [e["ebkeyversion"] for e in batch_] == [1, 2]
    assert batch_[1]["source"] == "/eventbus" and batch_[1]["deep"] == '{"a":1}', batch_[1]
    assert "data" not in batch_[1]
    st, h, page = srv.request("GET", "/v1/events?limit=1",
                              headers={"Accept": "application/cloudevents-batch+json"})
    assert st == 200 and len(page) == 1 and h["eventbus-next-after-seq"] == "1", (h, page)
    # Type names as CloudEvents producers spell them: accepted, case-sensitive.
    st, _, page = srv.request("GET", "/v1/events?type=com.example.ordercreated")
    assert st == 200 and page["events"] == [], page
    st, _, page = srv.request("GET", "/v1/events?type=com.example.OrderCreated")
    assert len(page["events"]) == 2, page


def test_large_batch_key_versions_and_duplicates(srv):
    """A batch of 1,000: each key's versions count up in batch order, the
    same (source, id) twice is one event (the first), and a duplicate does
    not take a key version (the batch's own indexes, publish.c)."""
    publish(srv, {"type": "order.created", "key": "bk-0"})  # bk-0 starts at 1
    evs = []
    for i in range(1000):
        ev = {"type": "order.created", "key": f"bk-{i % 7}", "id": f"bid-{i}"}
        if i % 100 == 99:  # the same id as 50 events before: a duplicate
            ev = dict(evs[i - 50])
        evs.append(ev)
    r = batch(srv, evs)["results"]
    want, first_of = {"bk-0": 1}, {}
    for i, (ev, res) in enumerate(zip(evs, r)):
        if ev["id"] in first_of:
            j = first_of[ev["id"]]
            assert res.get("duplicate") and res["seq"] == r[j]["seq"], (i, res, r[j])
            continue
        first_of[ev["id"]] = i
        want[ev["key"]] = want.get(ev["key"], 0) + 1
        assert res["key_version"] == want[ev["key"]], (i, res, want)
    for k, v in want.items():
        assert stream(srv, k)["key_version"] == v, k


if __name__ == "__main__":
    run_tests(globals())
