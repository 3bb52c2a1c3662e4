#!/usr/bin/env python3
"""Delivery controls against a real eventbusd (issue 17): subject wildcards
in a group's types, non-retryable failures (nack with dead_letter), flow
control (max_in_flight, rate_limit), dead letters with their history and
the dead-letter stream.

Each test gets its own server on a free port and a fresh data directory
(see harness.py). Run directly or through meson (suite 'integration').
"""
import os
import re
import shutil
import threading
import time

from harness import assert_flag_refused, run_tests, skip_on_pg
from test_groups import ack, client, group_info, nack, publish, pull, put_group


def types_seen(srv, group):
    seen = []
    while True:
        evs = pull(srv, group, max=100)
        if not evs:
            return seen
        seen += [e["type"] for e in evs]
        ack(srv, group, evs)


# --- subject wildcards ----------------------------------------------------------------

def test_wildcards_match_by_segment(srv):
    put_group(srv, "created", types=["*.created"], start="earliest")
    put_group(srv, "v2", types=["order.*.v2"], start="earliest")
    put_group(srv, "tail", types=["order.>"], start="earliest")
    put_group(srv, "old", types=["order.*"], start="earliest")
    for t in ["order.created", "user.created", "order.created.v2", "order.paid.v2",
              "order", "invoice.paid"]:
        publish(srv, 1, type_=t)
    assert types_seen(srv, "created") == ["order.created", "user.created"]
    assert types_seen(srv, "v2") == ["order.created.v2", "order.paid.v2"]
    assert types_seen(srv, "tail") == ["order.created", "order.created.v2", "order.paid.v2"]
    # today's "order.*" keeps its meaning: one or more segments after "order."
    assert types_seen(srv, "old") == ["order.created", "order.created.v2", "order.paid.v2"]


def test_wildcards_survive_restart_and_bad_ones_name_the_index(srv):
    put_group(srv, "g", types=["a.b", "*.created"], start="earliest")
    srv.kill9()
    srv.start()
    assert group_info(srv, "g")["config"]["types"] == ["a.b", "*.created"]
    publish(srv, 1, type_="user.created")
    assert types_seen(srv, "g") == ["user.created"]
    for bad in ["order.>.x", "or*der", "a.b*", "A.*", ""]:
        st, _, body = srv.request("PUT", "/v1/groups/bad", {"types": ["a", bad]})
        assert st == 400 and body["error"]["details"][0]["field"] == "/types/1", (bad, st, body)
    st, _, _ = srv.request("GET", "/v1/groups/bad")
    assert st == 404


# --- filters --------------------------------------------------------------------------

def pub(srv, type_="order.created", **ev):
    st, _, body = srv.request("POST", "/v1/events", dict({"type": type_}, **ev))
    assert st == 201, body
    return body["seq"]


def test_filter_on_data_paths_and_attributes(srv):
    put_group(srv, "big", filter={"data": {"currency": ["EUR", "USD"],
                                           "amount": [{"numeric": [">=", 100]}]}})
    put_group(srv, "shop", filter={"source": ["shop"], "key": [{"prefix": "K-"}],
                                   "extensions": {"tenant": ["acme"]}})
    put_group(srv, "misc", filter={"data": {"coupon": [{"exists": False}],
                                            "tier": [{"anything-but": ["free", "trial"]}],
                                            "tags": ["vip"]}})
    put_group(srv, "plain")
    seqs = [
        pub(srv, data={"currency": "EUR", "amount": 150, "tier": "gold", "tags": ["vip", "x"]}),
        pub(srv, data={"currency": "GBP", "amount": 500}),
        pub(srv, data={"currency": "USD", "amount": 99.5}),
        pub(srv, source="shop", key="K-1", extensions={"tenant": "acme"},
            data={"currency": "USD", "amount": 100, "coupon": "X", "tier": "gold", "tags": ["vip"]}),
        pub(srv, source="shop", key="J-1", extensions={"tenant": "acme"}, data={}),
        pub(srv, data={"tier": "free", "tags": ["vip"]}),
    ]
    # non-matching events count as handled: they never enter the lag
    assert group_info(srv, "big")["lag"] == 2
    assert group_info(srv, "shop")["lag"] == 1
    assert group_info(srv, "misc")["lag"] == 1
    assert group_info(srv, "plain")["lag"] == 6
    assert [e["seq"] for e in pull(srv, "big")] == [seqs[0], seqs[3]]
    assert [e["seq"] for e in pull(srv, "shop")] == [seqs[3]]
    assert [e["seq"] for e in pull(srv, "misc")] == [seqs[0]]
    info = group_info(srv, "big")
    assert info["config"]["filter"] == {"data": {"currency": ["EUR", "USD"],
                                                 "amount": [{"numeric": [">=", 100]}]}}, info
    # the filter is configuration: after kill -9 it still applies, lag included
    pub(srv, data={"currency": "EUR", "amount": 1})
    late = pub(srv, data={"currency": "EUR", "amount": 1000})
    srv.kill9()
    srv.start()
    assert group_info(srv, "big")["lag"] == 3  # two in flight before the crash + one new
    # the two leased stay with their holder, unless their lease record (not
    # waited for) was lost with the crash: then they come again; never the
    # events the filter leaves out
    got = [e["seq"] for e in pull(srv, "big", max=10)]
    assert got[-1:] == [late] and set(got) <= {seqs[0], seqs[3], late}, (got, seqs, late)


def test_bad_filters_name_the_path(srv):
    cases = [
        ({"colour": ["red"]}, "/filter/colour"),
        ({"data": {"amount": [{"numeric": [">>", 1]}]}}, "/filter/data/amount/0/numeric"),
        ({"data": {"amount": []}}, "/filter/data/amount"),
        ({"data": {"a": {"b": [{"prefix": 5}]}}}, "/filter/data/a/b/0/prefix"),
        ({"data": {"a": [1, {"exist": True}]}}, "/filter/data/a/1/exist"),
        ({"data": {"a": [{"anything-but": []}]}}, "/filter/data/a/0/anything-but"),
        ({"extensions": ["x"]}, "/filter/extensions"),
        ([], "/filter"),
        ({"data": {"a": [[1]]}}, "/filter/data/a/0"),
        ({"data": {"a": ["x" * 1025]}}, "/filter/data/a/0"),
        ({"data": {"a": list(range(257))}}, "/filter/data/a"),
    ]
    deep = ["v"]
    for _ in range(10):
        deep = {"n": deep}
    cases.append(({"data": deep}, "/filter/data" + "/n" * 8))
    for flt, path in cases:
        st, _, body = srv.request("PUT", "/v1/groups/g", {"types": ["a"], "filter": flt})
        assert st == 400, (flt, body)
        assert body["error"]["details"][0]["field"] == path, (flt, path, body)
    st, _, _ = srv.request("GET", "/v1/groups/g")
    assert st == 404


# --- non-retryable failures -----------------------------------------------------------

def test_nack_dead_letter_skips_the_remaining_attempts(srv):
    put_group(srv, "g", max_attempts=5, backoff={"initial_ms": 0, "max_ms": 0})
    [seq, seq2] = publish(srv, 2)
    evs = pull(srv, "g", max=1)
    nack(srv, "g", evs, error="timeout")  # a retryable one first
    evs = pull(srv, "g", max=2)
    assert sorted(e["seq"] for e in evs) == [seq, seq2], evs
    bad = [e for e in evs if e["seq"] == seq]
    ack(srv, "g", [e for e in evs if e["seq"] == seq2])
    st, _, body = srv.request("POST", "/v1/groups/g/nack",
                              {"ids": [bad[0]["delivery"]["id"]], "error": "invalid email",
                               "dead_letter": True})
    assert st == 200 and body["nacked"] == 1, body
    info = group_info(srv, "g")
    assert info["dead_letters"] == 1 and info["lag"] == 0, info
    assert pull(srv, "g") == []
    srv.kill9()
    srv.start()
    st, _, body = srv.request("GET", "/v1/groups/g/dlq")
    [dl] = body["dead_letters"]
    assert dl["event"]["seq"] == seq and dl["attempts"] == 2, dl
    assert dl["error"] == "invalid email", dl
    assert pull(srv, "g") == []


def test_nack_dead_letter_must_be_a_boolean(srv):
    put_group(srv, "g")
    publish(srv, 1)
    evs = pull(srv, "g")
    st, _, body = srv.request("POST", "/v1/groups/g/nack",
                              {"ids": [evs[0]["delivery"]["id"]], "dead_letter": "yes"})
    assert st == 400 and body["error"]["details"][0]["field"] == "/dead_letter", body
    assert group_info(srv, "g")["in_flight"] == 1  # nothing written
    st, _, body = srv.request("POST", "/v1/groups/g/nack",
                              {"ids": [evs[0]["delivery"]["id"]], "dead_letter": False})
    assert st == 200 and group_info(srv, "g")["dead_letters"] == 0, body


# --- dead letters with their history --------------------------------------------------

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def dlq(srv, group):
    st, _, body = srv.request("GET", f"/v1/groups/{group}/dlq")
    assert st == 200, body
    return body["dead_letters"]


def brief(dl):
    return [(e["attempt"], e["consumer"], e["error"]) for e in dl["errors"]]


def fail_as(srv, group, consumer, error, **extra):
    evs = pull(srv, group, consumer=consumer, wait_ms=2000)
    assert len(evs) == 1, evs
    st, _, body = srv.request("POST", f"/v1/groups/{group}/nack",
                              dict({"ids": [evs[0]["delivery"]["id"]], "error": error}, **extra))
    assert st == 200 and body["nacked"] == 1, body


def test_dead_letter_keeps_its_last_failures(srv):
    put_group(srv, "g", max_attempts=7, backoff={"initial_ms": 0, "max_ms": 0})
    publish(srv, 1)
    fail_as(srv, "g", "a", "e1")
    fail_as(srv, "g", "b", "e2")
    srv.kill9()  # failures so far come back from the FAIL records
    srv.start()
    for i in range(3, 7):
        fail_as(srv, "g", "c" if i % 2 else "d", f"e{i}")
    fail_as(srv, "g", "z", "e7")
    [dl] = dlq(srv, "g")
    assert dl["attempts"] == 7 and dl["error"] == "e7" and dl["consumer"] == "z", dl
    # the last five, oldest first, with attempt and consumer
    assert brief(dl) == [(3, "c", "e3"), (4, "d", "e4"), (5, "c", "e5"), (6, "d", "e6"),
                         (7, "z", "e7")], dl
    assert dl["last_failed_at"] == dl["failed_at"] == dl["errors"][-1]["at"], dl
    assert dl["first_failed_at"] < dl["errors"][0]["at"], dl  # e1's time, before e3's
    first = dl["first_failed_at"]
    srv.kill9()
    srv.start()
    [again] = dlq(srv, "g")
    assert brief(again) == brief(dl) and again["first_failed_at"] == first, again
    # a redriven dead letter that dies again adds to its history
    st, _, _ = srv.request("POST", "/v1/groups/g/dlq/redrive", {})
    fail_as(srv, "g", "r", "after redrive", dead_letter=True)
    [dl] = dlq(srv, "g")
    assert brief(dl)[-1] == (1, "r", "after redrive") and len(dl["errors"]) == 5, dl
    assert dl["first_failed_at"] == first, dl


def test_histories_survive_snapshots(srv):
    srv.restart(["--meta-snapshot-bytes", "4KiB"])
    put_group(srv, "g", max_attempts=3, backoff={"initial_ms": 0, "max_ms": 0})
    put_group(srv, "h", types=["other"], max_attempts=3, backoff={"initial_ms": 0, "max_ms": 0})
    publish(srv, 1)
    publish(srv, 1, type_="other")
    for i in range(3):
        fail_as(srv, "g", f"c{i}", f"g{i}")
    fail_as(srv, "h", "x", "h0")  # pending: one failure in its history
    put_group(srv, "bulk", types=["bulk"])
    publish(srv, 150, type_="bulk")
    for e in pull(srv, "bulk", max=150):  # one ack record each: the meta log grows
        ack(srv, "bulk", [e])
    time.sleep(1.5)  # a snapshot (checked every second)
    srv.kill9()
    srv.start()
    [dl] = dlq(srv, "g")
    assert brief(dl) == [(1, "c0", "g0"), (2, "c1", "g1"), (3, "c2", "g2")], dl
    fail_as(srv, "h", "y", "h1")
    fail_as(srv, "h", "z", "h2")
    [dl] = dlq(srv, "h")
    assert brief(dl) == [(1, "x", "h0"), (2, "y", "h1"), (3, "z", "h2")], dl


def test_records_from_before_histories_still_load(srv):
    """fixtures/meta-v1 was written by main's eventbusd before this change
    (fixtures/meta-v1-gen.py): a dead letter and a pending failed attempt."""
    skip_on_pg("on-disk fixtures of the embedded log")
    srv.stop()
    shutil.rmtree(srv.data)
    shutil.copytree(os.path.join(FIXTURES, "meta-v1"), srv.data)
    srv.start()
    info = group_info(srv, "notify")
    # the pending attempt was nacked with a 1 h delay when the fixture was
    # written: scheduled until then, ready after (the fixture ages)
    assert info["dead_letters"] == 1, info
    assert info["retry_scheduled"] + info["ready"] == 1, info
    assert info["config"]["max_in_flight"] == 0 and info["config"]["rate_limit"] == 0, info
    [dl] = dlq(srv, "notify")
    assert dl["event"]["id"] == "fx-0" and dl["attempts"] == 2, dl
    assert brief(dl) == [(2, "old-2", "second failure")], dl
    assert dl["first_failed_at"] == dl["failed_at"] == dl["last_failed_at"], dl
    if info["ready"]:  # the fixture is over an hour old: its delayed attempt is due
        due = pull(srv, "notify", consumer="drain")
        assert [e["id"] for e in due] == ["fx-1"], due
        ack(srv, "notify", due)
    # its history grows from there across a redrive
    srv.request("POST", "/v1/groups/notify/dlq/redrive", {})
    fail_as(srv, "notify", "new-1", "third failure", dead_letter=True)
    [dl] = dlq(srv, "notify")
    assert brief(dl) == [(2, "old-2", "second failure"), (1, "new-1", "third failure")], dl
    srv.kill9()
    srv.start()
    [again] = dlq(srv, "notify")
    assert brief(again) == brief(dl), again


# --- the dead-letter stream -----------------------------------------------------------

def test_dead_letters_are_published_as_events_without_a_loop(srv):
    put_group(srv, "pager", types=["eventbus.dead_letter"], max_attempts=1)
    put_group(srv, "all", types=[">"])
    put_group(srv, "g", max_attempts=2, backoff={"initial_ms": 0, "max_ms": 0})
    [seq] = publish(srv, 1)
    for attempt in (1, 2):
        evs = pull(srv, "g", consumer="worker-7")
        nack(srv, "g", evs, error=f"smtp {attempt}")
    evs = pull(srv, "pager", wait_ms=3000)
    assert len(evs) == 1, evs
    ev = evs[0]
    assert ev["type"] == "eventbus.dead_letter" and ev["source"] == "eventbusd", ev
    assert ev["key"] == "g", ev
    d = ev["data"]
    assert d["group"] == "g" and d["event_seq"] == seq and d["type"] == "order.created", d
    assert d["error"] == "smtp 2" and d["attempts"] == 2 and d["consumer"] == "worker-7", d
    assert d["failed_at"].endswith("Z") and d["event_id"], d
    # a pattern starting with a wildcard does not match the server's own events
    assert [e["type"] for e in pull(srv, "all", max=100)] == ["order.created"]
    # the pager's own dead letter makes no new notice: no loop
    nack(srv, "pager", evs, error="pager down")
    assert group_info(srv, "pager")["dead_letters"] == 1
    st, _, body = srv.request("GET", "/v1/events?type=eventbus.dead_letter")
    assert st == 200 and len(body["events"]) == 1, body
    # a nack with dead_letter makes a notice too, and it survives kill -9
    publish(srv, 1)
    evs = pull(srv, "g")
    srv.request("POST", "/v1/groups/g/nack", {"ids": [evs[0]["delivery"]["id"]],
                                             "error": "bad input", "dead_letter": True})
    # the notice is its own publish, made durable just after the DEAD record
    for _ in range(100):
        st, _, body = srv.request("GET", "/v1/events?type=eventbus.dead_letter")
        if len(body["events"]) == 2:
            break
        time.sleep(0.02)
    srv.kill9()
    srv.start()
    st, _, body = srv.request("GET", "/v1/events?type=eventbus.dead_letter")
    assert [e["data"]["error"] for e in body["events"]] == ["smtp 2", "bad input"], body
    # published like any event: the group is their key, with its versions, and
    # each can be found by its id
    assert [e["key_version"] for e in body["events"]] == [1, 2], body
    for e in body["events"]:
        st, _, one = srv.request("GET", f"/v1/events/{e['id']}")
        assert st == 200 and one["seq"] == e["seq"] and one["key_version"] == e["key_version"], one


def test_refused_notices_are_counted(srv):
    srv.restart(["--require-schemas"])
    st, _, body = srv.request("PUT", "/v1/schemas/order.created", {"schema": {"type": "object"}})
    assert st in (200, 201), body
    put_group(srv, "g", max_attempts=1)
    publish(srv, 1)
    nack(srv, "g", pull(srv, "g"), error="x")
    assert group_info(srv, "g")["dead_letters"] == 1
    st, _, text = srv.request("GET", "/metrics")
    assert "eventbus_dead_letter_notices_dropped_total 1" in text, text
    st, _, body = srv.request("GET", "/v1/events?type=eventbus.dead_letter")
    assert body["events"] == [], body


# --- flow control ---------------------------------------------------------------------

def pull_in_background(srv, group, **kw):
    """A pull (a long poll) on its own connection and thread: (thread, got),
    got["evs"] set when it is answered."""
    got = {}
    other = client(srv)
    t = threading.Thread(target=lambda: got.setdefault("evs", pull(other, group, **kw)))
    t.start()
    return t, got


def test_max_in_flight_caps_leases_across_consumers(srv):
    put_group(srv, "g", max_in_flight=3)
    publish(srv, 10)
    a = pull(srv, "g", consumer="a", max=10)
    assert len(a) == 3, a
    assert pull(srv, "g", consumer="b", max=10) == []
    info = group_info(srv, "g")
    assert info["in_flight"] == 3 and info["counters"]["throttled"] >= 1, info
    assert info["config"]["max_in_flight"] == 3
    # a long poll waits for room, an ack makes it
    t, got = pull_in_background(srv, "g", consumer="b", max=10, wait_ms=5000)
    time.sleep(0.3)
    assert "evs" not in got
    ack(srv, "g", a[:2])
    t.join()
    assert len(got["evs"]) == 2, got
    # the cap is configuration and the leases are recorded: both survive kill -9
    srv.kill9()
    srv.start()
    info = group_info(srv, "g")
    # a's lease went to disk with its ack; b's (the long poll's, not waited
    # for) may have been lost with the crash
    held = info["in_flight"]
    assert info["config"]["max_in_flight"] == 3 and held in (1, 3), info
    assert len(pull(srv, "g", max=10)) == 3 - held
    assert pull(srv, "g", max=10) == []
    st, _, text = srv.request("GET", "/metrics")
    assert 'eventbus_group_max_in_flight{group="g"} 3' in text, text
    m = re.search(r'^eventbus_group_throttled_total\{group="g"\} (\d+)$', text, re.M)
    assert m and int(m.group(1)) >= 1, text


def test_group_cap_and_global_lease_budget_both_hold(srv):
    # max_in_flight is per group, --max-in-flight-total is for all groups:
    # a pull gets the smaller room, a long poll waits while either is spent
    srv.restart(["--max-in-flight-total", "4"])
    put_group(srv, "capped", max_in_flight=2)
    put_group(srv, "free")
    publish(srv, 10)
    c = pull(srv, "capped", max=10)
    assert len(c) == 2, c  # its own cap
    f = pull(srv, "free", max=10)
    assert len(f) == 2, f  # the rest of the global budget
    assert pull(srv, "free", max=10) == [] and pull(srv, "capped", max=10) == []
    ack(srv, "capped", c[:1])  # room in both for "capped", in the budget for "free"
    assert len(pull(srv, "free", max=10)) == 1
    assert pull(srv, "capped", max=10) == []  # its cap has room, the budget not
    t, got = pull_in_background(srv, "capped", consumer="b", max=10, wait_ms=5000)
    time.sleep(0.3)
    assert "evs" not in got  # waits: the global budget is spent
    ack(srv, "free", f)
    t.join()
    assert len(got["evs"]) == 1, got  # the group's cap, not the freed budget


def test_rate_limit_spreads_deliveries(srv):
    put_group(srv, "g", rate_limit=10)
    publish(srv, 40)
    first = pull(srv, "g", max=40)
    assert len(first) == 10, len(first)  # the bucket holds one second's worth
    t0 = time.time()
    got = len(first)
    while time.time() - t0 < 1.0:
        got += len(pull(srv, "g", max=40, wait_ms=1000))
    elapsed = time.time() - t0
    # about 10 more a second; generous bounds on a loaded machine
    assert 10 + 3 <= got <= 10 + 10 * elapsed + 2, (got, elapsed)
    info = group_info(srv, "g")
    assert info["config"]["rate_limit"] == 10 and info["counters"]["throttled"] >= 1, info
    st, _, body = srv.request("PUT", "/v1/groups/g", {"types": ["order.created"],
                                                     "rate_limit": -1})
    assert st == 400 and body["error"]["details"][0]["field"] == "/rate_limit", body
    st, _, body = srv.request("PUT", "/v1/groups/g", {"types": ["order.created"],
                                                     "max_in_flight": 1.5})
    assert st == 400 and body["error"]["details"][0]["field"] == "/max_in_flight", body


def drained_in(srv, group, seconds):
    """Events a greedy consumer gets from group in `seconds` (long polls)."""
    got, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        evs = pull(srv, group, max=100, wait_ms=max(1, int((seconds - (time.time() - t0)) * 1000)))
        got += len(evs)
        if evs:
            ack(srv, group, evs)
    return got


def test_rate_limit_bucket_survives_sigkill(srv):
    # The bucket is memory only; a restart (crash or not) starts it empty and
    # refills it from then, so the second after a restart delivers about
    # rate x 1 s -- not a full bucket on top (which would be ~20 here).
    put_group(srv, "g", rate_limit=10)
    publish(srv, 200)
    assert len(pull(srv, "g", max=100)) == 10  # drains the bucket
    for stop in (srv.kill9, None):
        if stop:
            stop()
            srv.start()
        else:
            srv.restart()
        got = drained_in(srv, "g", 1.0)
        assert 3 <= got <= 12, got
    assert group_info(srv, "g")["config"]["rate_limit"] == 10


def test_cli_sets_flow_control_and_wildcards(srv):
    from test_cli import run
    rc, out, err = run(srv, "groups", "create", "g", "--types", "*.created,order.>",
                       "--max-in-flight", "5", "--rate-limit", "2.5")
    assert rc == 0, (out, err)
    cfg = group_info(srv, "g")["config"]
    assert cfg["types"] == ["*.created", "order.>"], cfg
    assert cfg["max_in_flight"] == 5 and cfg["rate_limit"] == 2.5, cfg
    rc, out, err = run(srv, "groups", "update", "g", "--max-attempts", "3")
    assert rc == 0, (out, err)
    cfg = group_info(srv, "g")["config"]
    assert cfg["max_in_flight"] == 5 and cfg["rate_limit"] == 2.5, cfg  # kept
    rc, out, err = run(srv, "groups", "update", "g", "--max-in-flight", "0")
    assert rc == 0 and group_info(srv, "g")["config"]["max_in_flight"] == 0, (out, err)
    rc, out, err = run(srv, "groups", "show", "g", env={"EVENTBUS_OUTPUT": "table"})
    assert rc == 0 and "max in flight:  0" in out and "rate limit:     2.5/s" in out, out
    rc, out, err = run(srv, "groups", "update", "g", "--filter", '{"data": {"n": [{"numeric": [">", 1]}]}}')
    assert rc == 0, (out, err)
    rc, out, err = run(srv, "groups", "update", "g", "--max-attempts", "2")
    assert group_info(srv, "g")["config"]["filter"] == {"data": {"n": [{"numeric": [">", 1]}]}}
    rc, out, err = run(srv, "groups", "update", "g", "--filter", '{"data": {"n": []}}')
    assert rc != 0 and "/filter/data/n" in err, (rc, err)
    rc, out, err = run(srv, "groups", "update", "g", "--filter", '{}')
    assert rc == 0 and "filter" not in group_info(srv, "g")["config"], (out, err)
    rc, out, err = run(srv, "groups", "update", "g", "--rate-limit", "fast")
    assert rc == 2 and "--rate-limit" in err, (rc, err)


# --- deliveries hold no copy of their event -------------------------------------------

def publish_padded(srv, batches, pad, last_pad=None):
    """batches x 100 events {"n": 0.., "pad": pad}; the very last one's pad
    is last_pad if given."""
    for b in range(batches):
        evs = [{"type": "order.created", "data": {"n": b * 100 + i, "pad": pad}}
               for i in range(100)]
        if last_pad and b == batches - 1:
            evs[-1]["data"]["pad"] = last_pad
        st, _, body = srv.request("POST", "/v1/events/batch", evs)
        assert st == 201, (st, body)


def test_events_read_back_past_the_delivery_cache(srv):
    # a 64 KiB cache, ~600 KiB of events: most are read back from the log at
    # pull time, every one right; a redelivery and a dead letter too
    srv.restart(["--delivery-cache-bytes", "64KiB"])
    put_group(srv, "g", start="earliest", max_attempts=5)
    publish_padded(srv, 6, "x" * 1000, last_pad="y" * 20000)  # (over 1/8 of it: not cached)
    got = []
    for _ in range(6):
        got += pull(srv, "g", max=100)
    assert [e["data"]["n"] for e in got] == list(range(600))
    assert got[-1]["data"]["pad"] == "y" * 20000
    nack(srv, "g", got, delay_ms=0)
    again = []
    for _ in range(6):
        again += pull(srv, "g", max=100)
    assert sorted(e["data"]["n"] for e in again) == list(range(600))
    assert all(e["delivery"]["attempt"] == 2 for e in again)
    first = sorted(again, key=lambda e: e["data"]["n"])[:3]
    st, _, body = srv.request("POST", "/v1/groups/g/nack", {
        "ids": [e["delivery"]["id"] for e in first], "error": "bad", "dead_letter": True})
    assert st == 200 and body["nacked"] == 3, body
    assert [d["event"]["data"]["n"] for d in dlq(srv, "g")] == [0, 1, 2]
    st, _, _ = srv.request("GET", "/v1/groups/g")  # the server is fine
    assert st == 200
    assert_flag_refused(srv, "--delivery-cache-bytes", ["1KiB", "x", "1TiB"])


def test_leased_deliveries_hold_no_copy_of_their_event(srv):
    # 10,000 leased deliveries of 4 KiB events (40 MiB): the server grows by
    # a small fraction of that (a copy per delivery grew it by all of it)
    srv.restart(["--delivery-cache-bytes", "1MiB"])
    put_group(srv, "g", start="earliest", ack_timeout_ms=600000)
    publish_padded(srv, 100, "z" * 4000)
    pull(srv, "g", max=100)  # the answer buffers grown once
    before = srv.rss_mb()
    n = 100
    while n < 10000:
        n += len(pull(srv, "g", max=100))
    grown = srv.rss_mb() - before
    leased = 9900 * 4000 / 2**20
    with open(f"/proc/{srv.proc.pid}/maps") as f:
        maps = f.read()  # once: a second read() of the file is empty
    sanitized = any(lib in maps for lib in ("libasan", "libtsan"))
    # (a sanitizer's memory is no measure: ASan keeps freed memory in
    # quarantine, TSan grows its shadow and its history of each access with
    # the memory touched -- 13 MiB here, against 37.8 MiB leased, where the
    # normal build grows by about 3 MiB. The ratio holds in the normal
    # build; the old code grew by more than all it leased there. Until stop
    # 15 the maps were read once per name, so TSan was never recognised.)
    assert sanitized or grown < 0.25 * leased, (grown, leased)
    assert n == 10000


if __name__ == "__main__":
    run_tests(globals())
