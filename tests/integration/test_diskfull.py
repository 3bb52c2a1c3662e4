#!/usr/bin/env python3
"""Storage full (issue 13, item 8) against a real eventbusd whose data
directory is a small tmpfs: publishing answers 507 storage_full with
Retry-After (not 500), /healthz answers 503 with the reason, the change of
state is logged once each way, the log clears its error by itself once space
is freed (no restart), and nothing acknowledged is lost.

Needs to mount a tmpfs (root, or CAP_SYS_ADMIN): skipped with a message
(exit 77) where mount is not permitted.
"""
import os
import sys
import time

from harness import run_tests
from tmpfs import TmpfsServer, can_mount, fill


def event(i, size=32 * 1024):
    return {"type": "blob.stored", "id": f"blob-{i}", "data": {"i": i, "pad": "x" * size}}


def log_count(srv, text):
    with open(srv.log_path, errors="replace") as f:
        return f.read().count(text)


def wait_log(srv, text, timeout=5):
    end = time.time() + timeout
    while log_count(srv, text) == 0 and time.time() < end:
        time.sleep(0.05)
    return log_count(srv, text)


def wait_health(srv, status, timeout=15):
    end = time.time() + timeout
    while True:
        st, hdrs, body = srv.request("GET", "/healthz")
        if st == status or time.time() > end:
            return st, hdrs, body
        time.sleep(0.05)


def degraded_gauge(srv):
    st, _, text = srv.request("GET", "/metrics")
    assert st == 200, st
    for line in text.splitlines():
        if line.startswith("eventbus_storage_degraded "):
            return float(line.split()[1])
    raise AssertionError("no eventbus_storage_degraded in /metrics")


def test_disk_full_answers_507_then_recovers_without_restart(srv):
    srv.start()
    acked = {}
    for i in range(10):
        st, _, body = srv.request("POST", "/v1/events", event(i))
        assert st == 201, (st, body)
        acked[f"blob-{i}"] = body["seq"]
    st, _, body = srv.request("PUT", "/v1/groups/g", {"types": ["blob.stored"],
                                                       "start": "earliest"})
    assert st in (200, 201), body
    filler = fill(srv.data)
    # publishing now fails: 507 storage_full with Retry-After, nothing written
    refused = 0
    for i in range(10, 20):
        st, hdrs, body = srv.request("POST", "/v1/events", event(i))
        if st == 201:  # a page the filler could not take may still fit one
            acked[f"blob-{i}"] = body["seq"]
            continue
        assert st == 507, (st, body)
        assert body["error"]["code"] == "storage_full", body
        assert int(hdrs.get("retry-after", hdrs.get("Retry-After", "0"))) > 0, hdrs
        refused += 1
    assert refused >= 5, refused
    # a delayed publish refused for space leaves nothing waiting (256 KiB:
    # no page's slack takes it)
    st, _, body = srv.request("POST", "/v1/events", dict(event(99, 256 * 1024), delay="1h"))
    assert st == 507, (st, body)
    _, _, stats = srv.request("GET", "/v1/stats")
    assert stats["events"]["delayed"]["waiting"] == 0, stats["events"]
    # a token (a meta-log write) is refused the same way, once the page's slack is used
    answers = []
    for i in range(100):
        st, hdrs, body = srv.request("POST", "/v1/tokens", {"name": f"t{i}", "scopes": ["read"]})
        answers.append(st)
        if st != 201:
            assert st == 507 and body["error"]["code"] == "storage_full", (st, body)
            assert int(hdrs.get("retry-after", "0")) > 0, hdrs
            break
    assert answers[-1] == 507, answers
    st, hdrs, body = wait_health(srv, 503)
    assert st == 503 and body["status"] == "degraded", (st, body)
    assert "storage full" in body["reason"] and body["code"] == "storage_full", body
    assert degraded_gauge(srv) == 1  # the metric reads the state /healthz does
    # reads keep working meanwhile
    st, _, page = srv.request("GET", "/v1/events?limit=1000")
    assert st == 200 and len(page["events"]) == len(acked), page
    time.sleep(1.0)  # several probes fail meanwhile: logged once all the same
    assert wait_log(srv, "storage full") == 1, srv.log_tail()
    # free the space: the log finds it by itself, no restart
    os.unlink(filler)
    st, _, body = wait_health(srv, 200)
    assert st == 200 and body == {"status": "ok"}, (st, body)
    assert degraded_gauge(srv) == 0
    assert wait_log(srv, "storage writable again") == 1, srv.log_tail()
    for i in range(20, 25):
        st, _, body = srv.request("POST", "/v1/events", event(i))
        assert st == 201, (st, body)
        acked[f"blob-{i}"] = body["seq"]
    # a refused event sent again is stored (its id was not kept as a duplicate)
    st, _, body = srv.request("POST", "/v1/events", event(19))
    assert st in (200, 201), (st, body)
    if st == 201:
        acked["blob-19"] = body["seq"]
    # seqs stay contiguous: the failed appends' seqs were handed out again
    seqs = sorted(acked.values())
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    st, _, info = srv.request("GET", "/v1/groups/g")
    assert info["lag"] == len(acked), info
    # nothing acknowledged is lost, across a SIGKILL
    srv.kill9()
    srv.start()
    st, _, page = srv.request("GET", "/v1/events?limit=1000")
    got = {e["id"]: e["seq"] for e in page["events"]}
    assert got == acked, (sorted(got.items()), sorted(acked.items()))
    st, _, info = srv.request("GET", "/v1/groups/g")
    assert info["lag"] == len(acked), info


def test_an_ack_refused_for_space_changes_nothing(srv):
    """An ack whose meta record the full disk refuses (507 storage_full)
    leaves the delivery as it was: in flight to its holder, so its retry is
    refused again (not answered "unknown" with nothing written, as until
    stop 15, when the ack was applied in memory before its record failed),
    then written and answered 2xx once space is freed; after a SIGKILL no
    acknowledged event is delivered again."""
    srv.start()
    st, _, body = srv.request("PUT", "/v1/groups/g", {"types": ["blob.stored"],
                                                       "start": "earliest",
                                                       "ack_timeout_ms": 60000})
    assert st == 201, body
    st, _, body = srv.request("POST", "/v1/events/batch", [event(i, 64) for i in range(200)])
    assert st == 201, body
    st, _, body = srv.request("POST", "/v1/groups/g/pull", {"consumer": "c", "max": 200})
    assert st == 200 and len(body["events"]) == 200, body
    held = body["events"]
    ids = [e["delivery"]["id"] for e in held]
    st, _, body = srv.request("POST", "/v1/groups/g/extend", {"ids": ids})
    assert st == 200 and body["extended"] == 200, body  # the leases are durable
    filler = fill(srv.data)
    acked, refused = [], None
    try:
        for e in held:  # one ack at a time until the disk refuses one
            st, _, body = srv.request("POST", "/v1/groups/g/ack",
                                      {"ids": [e["delivery"]["id"]]})
            if st == 200:
                assert body["acked"] == 1, body
                acked.append(e["seq"])
                continue
            assert st == 507 and body["error"]["code"] == "storage_full", (st, body)
            refused = e
            break
        assert refused, "no ack refused on a full disk"
        for _ in range(3):  # the holder's retry: refused again, not "unknown"
            st, _, body = srv.request("POST", "/v1/groups/g/ack",
                                      {"ids": [refused["delivery"]["id"]]})
            assert st == 507 and body["error"]["code"] == "storage_full", (st, body)
            time.sleep(0.2)
        st, _, info = srv.request("GET", "/v1/groups/g")
        assert info["in_flight"] == 200 - len(acked), info
    finally:
        os.unlink(filler)
    st, _, body = wait_health(srv, 200)
    assert st == 200, body
    st, _, body = srv.request("POST", "/v1/groups/g/ack", {"ids": [refused["delivery"]["id"]]})
    assert st == 200 and body["acked"] == 1 and body["unknown"] == [], body
    acked.append(refused["seq"])
    srv.kill9()
    srv.start()
    st, _, info = srv.request("GET", "/v1/groups/g")
    assert info["lag"] == 200 - len(acked), info
    st, _, body = srv.request("POST", "/v1/groups/g/ack",
                              {"ids": [e["delivery"]["id"] for e in held
                                       if e["seq"] not in acked]})
    assert st == 200 and body["acked"] == 200 - len(acked), body  # still the holder's
    st, _, body = srv.request("POST", "/v1/groups/g/pull", {"consumer": "c2", "max": 200})
    assert st == 200 and body["events"] == [], body  # nothing acknowledged comes again


if __name__ == "__main__":
    ok, why = can_mount()
    if not ok:
        print(f"skip: cannot mount a tmpfs here ({why}); this test needs root or CAP_SYS_ADMIN")
        sys.exit(77)
    run_tests(globals(), fixture=TmpfsServer)
