#!/usr/bin/env python3
"""Consumer groups against a real eventbusd (issue 5): pull delivery, ack,
nack, retries with backoff, dead letters and redrive, replay, per-key
ordering, pause/resume, restarts and kill -9, stats and metrics.

Each test gets its own server on a free port and a fresh data directory
(see harness.py). Run directly or through meson (suite 'integration').
"""
import threading
import time

from harness import PG, Server, run_tests


def client(srv):
    """A second client of the same server (for other threads)."""
    s = Server.__new__(Server)
    s.port, s.conn, s.token = srv.port, None, srv.token
    return s


def put_group(srv, name, expect=(200, 201), **cfg):
    cfg.setdefault("types", ["order.created"])
    st, _, body = srv.request("PUT", f"/v1/groups/{name}", cfg)
    assert st in expect, (st, body)
    return body


def publish(srv, n, type_="order.created", key=None, start=0):
    seqs = []
    for i in range(start, start + n):
        ev = {"type": type_, "data": {"orderId": f"A-{i}", "amount": i, "currency": "EUR"}}
        if key is not None:
            ev["key"] = key(i) if callable(key) else key
        st, _, body = srv.request("POST", "/v1/events", ev)
        assert st == 201, (st, body)
        seqs.append(body["seq"])
    return seqs


def publish_batch(srv, n, type_="order.created"):
    evs = [{"type": type_, "data": {"orderId": f"B-{i}", "amount": i, "currency": "EUR"}}
           for i in range(n)]
    st, _, body = srv.request("POST", "/v1/events/batch", evs)
    assert st == 201, (st, body)
    return [r["seq"] for r in body["results"]]


def pull(srv, group, consumer="c1", max=100, wait_ms=0, timeout=30):
    st, _, body = srv.request("POST", f"/v1/groups/{group}/pull",
                              {"consumer": consumer, "max": max, "wait_ms": wait_ms},
                              timeout=timeout)
    assert st == 200, (st, body)
    return body["events"]


def ack(srv, group, evs):
    ids = [e["delivery"]["id"] for e in evs]
    st, _, body = srv.request("POST", f"/v1/groups/{group}/ack", {"ids": ids})
    assert st == 200, (st, body)
    assert body["acked"] == len(ids) and body["unknown"] == [], body
    return body


def nack(srv, group, evs, error="boom", delay_ms=None):
    req = {"ids": [e["delivery"]["id"] for e in evs], "error": error}
    if delay_ms is not None:
        req["delay_ms"] = delay_ms
    st, _, body = srv.request("POST", f"/v1/groups/{group}/nack", req)
    assert st == 200, (st, body)
    return body


def group_info(srv, group):
    st, _, body = srv.request("GET", f"/v1/groups/{group}")
    assert st == 200, (st, body)
    return body


def drain(srv, group, consumer="c1", do_ack=True):
    """Pulls (and acks) until nothing is left; returns the seqs seen."""
    seen = []
    while True:
        evs = pull(srv, group, consumer, max=100)
        if not evs:
            return seen
        seen += [e["seq"] for e in evs]
        if do_ack:
            ack(srv, group, evs)


# --- the seed's results ------------------------------------------------------------

def test_inventory_down_then_catches_up(srv):
    put_group(srv, "inventory")
    seqs = publish(srv, 40)
    info = group_info(srv, "inventory")
    assert info["lag"] == 40, info
    assert info["oldest_unacked_age_ms"] >= 0
    evs = pull(srv, "inventory", "inventory-1", max=25)
    assert [e["seq"] for e in evs] == seqs[:25]
    e0 = evs[0]
    assert e0["type"] == "order.created" and e0["data"]["orderId"] == "A-0"
    assert e0["delivery"]["attempt"] == 1 and e0["delivery"]["deadline"].endswith("Z")
    ack(srv, "inventory", evs)
    rest = drain(srv, "inventory", "inventory-1")
    assert rest == seqs[25:], rest
    info = group_info(srv, "inventory")
    assert info["lag"] == 0 and info["in_flight"] == 0, info
    assert info["consumers"][0]["name"] == "inventory-1"


def test_group_added_later_with_earliest_gets_history(srv):
    put_group(srv, "inventory")
    seqs = publish(srv, 30)
    put_group(srv, "analytics", start="earliest")
    put_group(srv, "latecomer", start="latest")
    assert drain(srv, "analytics") == seqs
    assert drain(srv, "latecomer") == []
    more = publish(srv, 3, start=100)
    assert drain(srv, "latecomer") == more
    assert drain(srv, "inventory") == seqs + more


def test_start_at_time(srv):
    publish(srv, 5)
    time.sleep(0.05)
    st, _, now = srv.request("GET", "/v1/events?limit=1")
    cut = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 0.02)) + "Z"
    later = publish(srv, 4, start=10)
    put_group(srv, "fromtime", start=cut)
    got = drain(srv, "fromtime")
    assert got == later or set(later) <= set(got), (got, later)


def test_replay_requeues_exactly_the_range(srv):
    put_group(srv, "analytics")
    put_group(srv, "other")
    seqs = publish(srv, 20)
    assert drain(srv, "analytics") == seqs
    assert drain(srv, "other") == seqs
    st, _, body = srv.request("POST", "/v1/groups/analytics/replay",
                              {"since": {"seq": seqs[5]}, "until": {"seq": seqs[15]}})
    assert st == 200 and body == {"requeued": 10, "expired": 0}, (st, body)
    got = drain(srv, "analytics")
    assert got == seqs[5:15], got
    assert drain(srv, "other") == []  # replay does not disturb other groups
    st, _, body = srv.request("POST", "/v1/groups/analytics/replay", {"since": "2h"})
    assert st == 200 and body["requeued"] == 20, body
    new = publish(srv, 2, start=50)  # new events flow beside the replay
    got = drain(srv, "analytics")
    assert sorted(got) == sorted(seqs + new), got
    st, _, body = srv.request("POST", "/v1/groups/analytics/replay",
                              {"since": "2h", "types": ["payment.*"]})
    assert st == 200 and body["requeued"] == 0, body


def test_replay_backlog_shows_in_ready_and_lag(srv):
    """What a replay queued is ready (and lag) before any pull: in the group,
    the list and /metrics (issue 14, item 2); lag = ready + in_flight +
    retry_scheduled + blocked_by_key at every step."""
    put_group(srv, "analytics")
    seqs = publish(srv, 20)
    drain(srv, "analytics")

    def counts():
        g = group_info(srv, "analytics")
        assert g["lag"] == (g["ready"] + g["in_flight"] + g["retry_scheduled"] +
                            g["blocked_by_key"]), g
        st, _, lst = srv.request("GET", "/v1/groups")
        [row] = [x for x in lst["groups"] if x["name"] == "analytics"]
        assert row["lag"] == g["lag"] and row["in_flight"] == g["in_flight"], (row, g)
        st, _, text = srv.request("GET", "/metrics")
        for name, key in (("eventbus_group_ready", "ready"), ("eventbus_group_lag", "lag")):
            line = f'{name}{{group="analytics"}} {g[key]}\n'
            assert line in text, (line, [x for x in text.splitlines() if "analytics" in x])
        return g["lag"], g["ready"], g["in_flight"]

    assert counts() == (0, 0, 0)
    st, _, body = srv.request("POST", "/v1/groups/analytics/replay",
                              {"since": {"seq": seqs[5]}, "until": {"seq": seqs[15]}})
    assert st == 200 and body["requeued"] == 10, body
    assert counts() == (10, 10, 0)  # before any pull
    publish(srv, 3, start=50)  # new events beside the replay: ready too, not examined yet
    assert counts() == (13, 13, 0)
    evs = pull(srv, "analytics", max=4)
    assert counts() == (13, 9, 4)
    ack(srv, "analytics", evs)
    assert counts() == (9, 9, 0)
    assert len(drain(srv, "analytics")) == 9
    assert counts() == (0, 0, 0)


def test_replay_survives_restart(srv):
    put_group(srv, "analytics")
    seqs = publish(srv, 10)
    drain(srv, "analytics")
    st, _, body = srv.request("POST", "/v1/groups/analytics/replay", {"since": {"seq": 0}})
    assert body["requeued"] == 10
    evs = pull(srv, "analytics", max=4)
    ack(srv, "analytics", evs)
    srv.kill9()
    srv.start()
    assert drain(srv, "analytics") == seqs[4:]


def test_failing_handler_dead_letters_after_retries_then_redrive(srv):
    put_group(srv, "notify", max_attempts=4,
              backoff={"initial_ms": 50, "multiplier": 2, "max_ms": 200, "jitter": 0})
    [seq] = publish(srv, 1)
    attempts = []
    t0 = time.time()
    while time.time() - t0 < 10:
        evs = pull(srv, "notify", "notify-1", wait_ms=1000)
        if not evs:
            if group_info(srv, "notify")["dead_letters"] == 1:
                break
            continue
        attempts.append(evs[0]["delivery"]["attempt"])
        nack(srv, "notify", evs, error="invalid email: bob@")
    assert attempts == [1, 2, 3, 4], attempts
    st, _, body = srv.request("GET", "/v1/groups/notify/dlq")
    assert st == 200 and len(body["dead_letters"]) == 1 and body["next"] is None, body
    dl = body["dead_letters"][0]
    assert dl["event"]["seq"] == seq and dl["attempts"] == 4, dl
    assert dl["error"] == "invalid email: bob@" and dl["consumer"] == "notify-1", dl
    assert dl["failed_at"].endswith("Z")
    # the bad event no longer blocks anything: later events flow
    [seq2] = publish(srv, 1, start=7)
    assert drain(srv, "notify") == [seq2]
    # fix the handler, redrive: delivered again with fresh attempts
    st, _, body = srv.request("POST", "/v1/groups/notify/dlq/redrive",
                              {"ids": [dl["event"]["id"]]})
    assert st == 200 and body == {"redriven": 1}, body
    evs = pull(srv, "notify", "notify-2")
    assert [e["seq"] for e in evs] == [seq] and evs[0]["delivery"]["attempt"] == 1
    ack(srv, "notify", evs)
    assert group_info(srv, "notify")["dead_letters"] == 0
    st, _, body = srv.request("GET", "/v1/groups/notify/dlq")
    assert body["dead_letters"] == []


def test_backoff_delays_retries(srv):
    put_group(srv, "slow", backoff={"initial_ms": 400, "multiplier": 2, "max_ms": 1000,
                                    "jitter": 0})
    publish(srv, 1)
    evs = pull(srv, "slow")
    nack(srv, "slow", evs)
    assert group_info(srv, "slow")["retry_scheduled"] == 1
    assert pull(srv, "slow") == []  # not before the backoff
    t0 = time.time()
    evs = pull(srv, "slow", wait_ms=3000)
    waited = time.time() - t0
    assert evs and evs[0]["delivery"]["attempt"] == 2, evs
    assert 0.2 < waited < 2.5, waited
    nack(srv, "slow", evs, delay_ms=0)  # the nack's own delay wins
    evs = pull(srv, "slow")
    assert evs and evs[0]["delivery"]["attempt"] == 3, evs


def test_failed_attempts_survive_kill9(srv):
    put_group(srv, "f", max_attempts=3, backoff={"initial_ms": 0, "max_ms": 0})
    [seq] = publish(srv, 1)
    for attempt in (1, 2):
        evs = pull(srv, "f")
        assert evs[0]["delivery"]["attempt"] == attempt, evs
        nack(srv, "f", evs, error=f"fail {attempt}")
    srv.kill9()
    srv.start()
    evs = pull(srv, "f")
    assert [e["seq"] for e in evs] == [seq] and evs[0]["delivery"]["attempt"] == 3, evs
    nack(srv, "f", evs, error="fail 3")
    st, _, body = srv.request("GET", "/v1/groups/f/dlq")
    [dl] = body["dead_letters"]
    assert dl["attempts"] == 3 and dl["error"] == "fail 3", dl


def test_dead_letters_survive_restart_and_purge(srv):
    put_group(srv, "g", max_attempts=1)
    publish(srv, 3)
    evs = pull(srv, "g")
    nack(srv, "g", evs, error="bad")
    srv.kill9()
    srv.start()
    st, _, body = srv.request("GET", "/v1/groups/g/dlq?limit=2")
    assert len(body["dead_letters"]) == 2 and body["next"], body
    st, _, body2 = srv.request("GET", f"/v1/groups/g/dlq?limit=2&after={body['next']}")
    assert len(body2["dead_letters"]) == 1 and body2["next"] is None, body2
    first_id = body["dead_letters"][0]["event"]["id"]
    st, _, body = srv.request("DELETE", f"/v1/groups/g/dlq?id={first_id}")
    assert st == 200 and body == {"purged": 1}
    st, _, body = srv.request("DELETE", "/v1/groups/g/dlq")
    assert body == {"purged": 2}
    srv.restart()
    assert group_info(srv, "g")["dead_letters"] == 0
    assert pull(srv, "g") == []


# --- delivery mechanics -----------------------------------------------------------------

def test_lag_after_restart_leaves_out_dead_letters_and_acks(srv):
    """Issue 13, item 12: right after a restart, lag counted an event
    dead-lettered (or acked) past the oldest unfinished one."""
    put_group(srv, "lg", max_attempts=1)
    publish(srv, 6)
    evs = pull(srv, "lg", max=6)
    assert len(evs) == 6
    nack(srv, "lg", [evs[2]])  # max_attempts 1: dead-lettered
    ack(srv, "lg", [evs[4]])
    assert group_info(srv, "lg")["lag"] == 4
    for how in ("clean", "kill9"):
        if how == "clean":
            srv.restart()
        else:
            srv.kill9()
            srv.start()
        info = group_info(srv, "lg")
        assert info["lag"] == 4, (how, info)
        assert info["dead_letters"] == 1, (how, info)
        assert info["in_flight"] == 4, (how, info)  # the leases are recorded
    # and the lag then follows the acks (the ids given before the restarts) exactly
    ack(srv, "lg", [evs[i] for i in (0, 1, 3, 5)])
    assert group_info(srv, "lg")["lag"] == 0


def test_ack_timeout_redelivers(srv):
    put_group(srv, "t", ack_timeout_ms=300, backoff={"initial_ms": 0, "max_ms": 0})
    publish(srv, 1)
    first = pull(srv, "t", "a")
    assert len(first) == 1
    assert pull(srv, "t", "b") == []  # in flight to a: not given to b
    evs = pull(srv, "t", "b", wait_ms=3000)
    assert len(evs) == 1 and evs[0]["delivery"]["attempt"] == 2, evs
    st, _, body = srv.request("POST", "/v1/groups/t/ack", {"ids": [first[0]["delivery"]["id"]]})
    assert body["acked"] == 0 and body["unknown"] == [first[0]["delivery"]["id"]], body
    ack(srv, "t", evs)
    info = group_info(srv, "t")
    assert info["counters"]["expired"] == 1 and info["lag"] == 0, info


def test_extend_keeps_the_lease(srv):
    put_group(srv, "t", ack_timeout_ms=400)
    publish(srv, 1)
    evs = pull(srv, "t")
    for _ in range(3):
        time.sleep(0.25)
        st, _, body = srv.request("POST", "/v1/groups/t/extend",
                                  {"ids": [evs[0]["delivery"]["id"]]})
        assert body == {"extended": 1, "unknown": []}, body
    ack(srv, "t", evs)
    assert group_info(srv, "t")["counters"]["expired"] == 0


def test_crash_mid_delivery_redelivers_unacked_only(srv):
    put_group(srv, "g", ack_timeout_ms=1500, backoff={"initial_ms": 0, "max_ms": 0})
    seqs = publish_batch(srv, 100)
    t0 = time.time()
    evs = pull(srv, "g", max=50)
    ack(srv, "g", evs[:25])  # durable once answered
    srv.kill9()
    srv.start()
    got = drain(srv, "g")  # the never leased; the leased stay with their holder
    assert sorted(got) == seqs[50:], (len(got), got[:5])
    time.sleep(max(0.0, 1.7 - (time.time() - t0)))
    got = drain(srv, "g")  # past their deadline: the unacked, never the acked
    assert sorted(got) == seqs[25:50], (len(got), got[:5])


def test_acks_survive_restart_with_snapshots(srv):
    srv.restart(["--meta-snapshot-bytes", "4KiB"])
    put_group(srv, "g", max_attempts=1)
    seqs = publish_batch(srv, 300)
    # many small ack records, out of order, to grow the meta log past snapshots
    evs = pull(srv, "g", max=300)
    for i in range(0, 290, 2):
        ack(srv, "g", [evs[i]])
    nack(srv, "g", [evs[291]], error="dead")
    time.sleep(1.5)  # let a snapshot happen (checked every second)
    for i in range(1, 290, 2):
        ack(srv, "g", [evs[i]])
    time.sleep(1.2)
    srv.kill9()
    srv.start()
    # the leases are recorded (snapshots restate them): every id given is
    # still known but those acked or dead-lettered before the crash
    st, _, body = srv.request("POST", "/v1/groups/g/ack",
                              {"ids": [e["delivery"]["id"] for e in evs]})
    got = [e["seq"] for e in evs if e["delivery"]["id"] not in body["unknown"]]
    assert st == 200 and sorted(got) == sorted(set(seqs[290:]) - {seqs[291]}), body
    st, _, body = srv.request("GET", "/v1/groups/g/dlq")
    assert [d["event"]["seq"] for d in body["dead_letters"]] == [seqs[291]], body
    if PG:  # compaction deletes the rows before the last snapshot, on the writer thread
        end = time.time() + 10
        while int(srv.pg_query("SELECT min(seq) FROM eb_meta")) <= 1 and time.time() < end:
            time.sleep(0.05)
        assert int(srv.pg_query("SELECT min(seq) FROM eb_meta")) > 1
    else:
        meta_segments = [f for f in __import__("os").listdir(srv.data + "/meta")
                         if f.endswith(".seg")]
        assert meta_segments, "meta log missing"


def test_key_ordering_under_retries(srv):
    put_group(srv, "o", ordering="key", backoff={"initial_ms": 0, "max_ms": 0})
    publish(srv, 6, key=lambda i: f"k{i % 2}")  # k0: 0,2,4  k1: 1,3,5
    evs = pull(srv, "o", max=10)
    assert [e["data"]["orderId"] for e in evs] == ["A-0", "A-1"], evs
    nack(srv, "o", [evs[0]], delay_ms=0)
    ack(srv, "o", [evs[1]])
    evs = pull(srv, "o", max=10)
    names = [(e["data"]["orderId"], e["delivery"]["attempt"]) for e in evs]
    assert names == [("A-0", 2), ("A-3", 1)], names
    ack(srv, "o", evs)
    order = []
    while True:
        evs = pull(srv, "o", max=10)
        if not evs:
            break
        order += [e["data"]["orderId"] for e in evs]
        ack(srv, "o", evs)
    assert order == ["A-2", "A-5", "A-4"], order


def test_two_consumers_never_share_an_event(srv):
    put_group(srv, "w", ack_timeout_ms=30000)
    seqs = publish_batch(srv, 300)
    seen = {"a": [], "b": []}
    errors = []

    def worker(name):
        try:
            s = client(srv)
            while True:
                evs = pull(s, "w", name, max=7)
                if not evs:
                    return
                seen[name] += [e["seq"] for e in evs]
                ack(s, "w", evs)
        except Exception as e:  # reported by the main thread
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    both = seen["a"] + seen["b"]
    assert len(both) == len(set(both)) == 300 and sorted(both) == seqs


def test_three_groups_each_get_every_event(srv):
    for g in ("inventory", "notify", "analytics"):
        put_group(srv, g)
    put_group(srv, "payments", types=["payment.*"])
    seqs = publish_batch(srv, 50)
    pay = publish(srv, 2, type_="payment.captured")
    for g in ("inventory", "notify", "analytics"):
        assert drain(srv, g) == seqs, g
    assert drain(srv, "payments") == pay


def test_long_poll_answers_when_an_event_arrives(srv):
    put_group(srv, "lp")
    result = {}

    def waiter():
        s = client(srv)
        t0 = time.time()
        result["evs"] = pull(s, "lp", wait_ms=5000)
        result["t"] = time.time() - t0

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    [seq] = publish(srv, 1)
    t.join()
    assert [e["seq"] for e in result["evs"]] == [seq]
    assert 0.25 < result["t"] < 3, result["t"]
    t0 = time.time()
    assert pull(srv, "lp", wait_ms=300) == []
    assert time.time() - t0 >= 0.28


def test_pause_and_resume(srv):
    put_group(srv, "p")
    st, _, body = srv.request("POST", "/v1/groups/p/pause")
    assert st == 200 and body == {"group": "p", "paused": True}, body
    seqs = publish(srv, 3)
    assert pull(srv, "p") == []
    srv.restart()
    assert group_info(srv, "p")["paused"] is True
    assert pull(srv, "p") == []
    st, _, body = srv.request("POST", "/v1/groups/p/resume")
    assert body == {"group": "p", "paused": False}
    assert drain(srv, "p") == seqs


def test_update_list_and_delete(srv):
    body = put_group(srv, "g", expect=(201,))
    assert body["created"] is True and body["config"]["max_attempts"] == 4, body
    assert body["config"]["backoff"] == {"initial_ms": 1000, "multiplier": 2, "max_ms": 300000,
                                         "jitter": 0.2}, body
    body = put_group(srv, "g", expect=(200,), types=["order.*"], max_attempts=2)
    assert body["created"] is False and body["config"]["types"] == ["order.*"]
    st, _, body = srv.request("GET", "/v1/groups")
    assert [g["name"] for g in body["groups"]] == ["g"], body
    srv.restart()
    assert group_info(srv, "g")["config"]["max_attempts"] == 2
    st, _, _ = srv.request("DELETE", "/v1/groups/g")
    assert st == 204
    st, _, body = srv.request("GET", "/v1/groups/g")
    assert st == 404 and body["error"]["code"] == "not_found"
    srv.restart()
    st, _, body = srv.request("GET", "/v1/groups")
    assert body["groups"] == []


def test_bad_group_configs_name_the_field(srv):
    cases = [
        ({}, "/types"),
        ({"types": []}, "/types"),
        ({"types": ["Order Created"]}, "/types/0"),
        ({"types": ["a"], "max_attempts": 0}, "/max_attempts"),
        ({"types": ["a"], "start": "yesterday"}, "/start"),
        ({"types": ["a"], "ordering": "fifo"}, "/ordering"),
        ({"types": ["a"], "backoff": {"initial_ms": -1}}, "/backoff/initial_ms"),
        ({"types": ["a"], "backoff": {"jitter": 2}}, "/backoff/jitter"),
        ({"types": ["a"], "ack_timeout_ms": "fast"}, "/ack_timeout_ms"),
        ({"types": ["a"], "colour": "red"}, "/colour"),
    ]
    for cfg, field in cases:
        st, _, body = srv.request("PUT", "/v1/groups/g", cfg)
        assert st == 400, (cfg, st, body)
        assert body["error"]["details"][0]["field"] == field, (cfg, body)
    st, _, body = srv.request("PUT", "/v1/groups/bad%20name", {"types": ["a"]})
    assert st == 400, body
    for name in (".", ".."):  # a URL cannot address them (issue 13, item 11)
        st, _, body = srv.request("PUT", f"/v1/groups/{name}", {"types": ["a"]})
        assert st == 400, (name, st, body)
        assert body["error"]["details"][0]["field"] == "/group", (name, body)
    put_group(srv, "...")  # three dots is a plain name
    st, _, body = srv.request("DELETE", "/v1/groups/...")
    assert st == 204, body
    st, _, body = srv.request("GET", "/v1/groups")
    assert body["groups"] == []  # nothing was written
    put_group(srv, "g")
    for path, req, field in [("pull", {"max": 5}, "/consumer"),
                             ("pull", {"consumer": "c", "max": 0}, "/max"),
                             ("pull", {"consumer": "c", "wait_ms": 600000}, "/wait_ms"),
                             ("ack", {"ids": []}, "/ids"),
                             ("ack", {"ids": [1]}, "/ids/0"),
                             ("nack", {"ids": ["m1.1"], "delay_ms": -5}, "/delay_ms"),
                             ("replay", {}, "/since"),
                             ("replay", {"since": "soon"}, "/since")]:
        st, _, body = srv.request("POST", f"/v1/groups/g/{path}", req)
        assert st == 400 and body["error"]["details"][0]["field"] == field, (path, req, body)
    st, _, body = srv.request("POST", "/v1/groups/nope/pull", {"consumer": "c"})
    assert st == 404


def test_stats_and_metrics(srv):
    put_group(srv, "m", max_attempts=1)
    publish(srv, 4)
    evs = pull(srv, "m", max=4)
    ack(srv, "m", evs[:3])
    nack(srv, "m", evs[3:])
    st, _, body = srv.request("GET", "/v1/stats")
    # 4 + the eventbus.dead_letter notice of the dead letter
    assert st == 200 and body["events"]["published"] == 5, body
    g = body["groups"][0]
    assert g["name"] == "m" and g["dead_letters"] == 1 and g["lag"] == 0, g
    assert g["counters"]["acked"] == 3 and g["counters"]["dead_lettered"] == 1, g
    st, hdrs, text = srv.request("GET", "/metrics")
    assert st == 200 and hdrs["content-type"].startswith("text/plain"), hdrs
    for line in ['eventbus_events_published_total{type="order.created"} 4',
                 'eventbus_delivery_outcomes_total{group="m",outcome="acked"} 3',
                 'eventbus_dead_lettered_total{group="m"} 1',
                 'eventbus_group_lag{group="m"} 0',
                 'eventbus_dlq_depth{group="m"} 1',
                 'eventbus_group_oldest_unacked_seconds{group="m"} 0',
                 'eventbus_publish_duration_seconds_count 4',
                 'eventbus_delivery_latency_seconds_count 3']:
        assert line in text, (line, text)


def test_sigterm_answers_waiting_pulls(srv):
    put_group(srv, "lp")
    result = {}

    def waiter():
        s = client(srv)
        st, _, body = s.request("POST", "/v1/groups/lp/pull",
                                {"consumer": "c", "wait_ms": 30000}, timeout=20)
        result["st"] = st

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    t0 = time.time()
    srv.stop()  # asserts exit 0
    t.join()
    assert time.time() - t0 < 5
    assert result.get("st") in (200, 503), result
    srv.start()


def test_long_poll_of_a_closed_connection_leases_nothing(srv):
    """A consumer that goes away in the middle of a long poll (killed, or
    stopped by its own signal handler) must not be handed events: they
    would stay leased to nobody until the ack timeout."""
    import json as _json
    import socket
    put_group(srv, "g", ack_timeout_ms=60000)
    s = socket.create_connection(("127.0.0.1", srv.port))
    body = _json.dumps({"consumer": "gone", "max": 10, "wait_ms": 20000}).encode()
    s.sendall(b"POST /v1/groups/g/pull HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(0.3)
    s.close()
    time.sleep(0.3)
    publish(srv, 1)
    evs = pull(srv, "g", consumer="live", wait_ms=3000)
    assert len(evs) == 1 and evs[0]["delivery"]["attempt"] == 1, evs



def test_leases_outlive_a_sigkill_and_restart(srv):
    """A lease is recorded (a LEASE meta record, written with the group's
    next records), so after a crash and restart -- or a leader change on
    PostgreSQL -- the event stays with its holder until the lease's
    deadline: no other consumer gets it meanwhile, the holder's ack (same
    delivery id) is taken, an extension counts, and past the deadline it is
    delivered again as the next attempt."""
    put_group(srv, "g", ack_timeout_ms=4000)
    seqs = publish(srv, 10)
    t0 = time.time()
    held = pull(srv, "g", consumer="c1", max=4)
    assert [e["seq"] for e in held] == seqs[:4]
    st, _, body = srv.request("POST", "/v1/groups/g/extend",
                              {"ids": [held[2]["delivery"]["id"]], "ms": 60000})
    assert st == 200 and body["extended"] == 1, body
    ack(srv, "g", held[:1])  # a 2xx: durable, with the lease records before it
    srv.kill9()
    srv.start()
    info = group_info(srv, "g")
    assert info["in_flight"] == 3 and info["lag"] == 9, info
    other = pull(srv, "g", consumer="c2", max=100)
    assert [e["seq"] for e in other] == seqs[4:], [e["seq"] for e in other]  # not 2, 3, 4
    ack(srv, "g", held[1:2] + other)  # the holder's ack with the id given before the crash
    while time.time() - t0 < 4.5:
        assert pull(srv, "g", consumer="c2", max=100) == []
        time.sleep(0.2)
    again = []
    end = time.time() + 5
    while not again and time.time() < end:
        again = pull(srv, "g", consumer="c2", max=100, wait_ms=500)
    assert [(e["seq"], e["delivery"]["attempt"]) for e in again] == [(seqs[3], 2)], again
    info = group_info(srv, "g")
    assert info["in_flight"] == 2 and info["lag"] == 2, info  # seq 3 still held (extended)
    ack(srv, "g", held[2:3] + again)
    assert group_info(srv, "g")["lag"] == 0


def hold_each_class(srv, group):
    """Leases one delivery of each class to c1 in `group`: an event's second
    attempt (m, attempt 2), a replayed event (r) and a redriven dead letter
    (d); then publishes one more event, left waiting in front of the replay
    (so no read of the group reaches the replay flow before a pull does).
    Returns the three deliveries and the waiting event's seq."""
    put_group(srv, group, types=[f"{group}.x"], ack_timeout_ms=60000, max_attempts=5,
              backoff={"initial_ms": 0, "max_ms": 0})
    s1, s2, s3, s4 = publish(srv, 4, type_=f"{group}.x")
    first = {e["seq"]: e for e in pull(srv, group, max=3)}
    assert sorted(first) == [s1, s2, s3], first
    nack(srv, group, [first[s1]], delay_ms=0)
    ack(srv, group, [first[s2]])
    st, _, body = srv.request("POST", f"/v1/groups/{group}/nack",
                              {"ids": [first[s3]["delivery"]["id"]], "dead_letter": True})
    assert st == 200 and body["nacked"] == 1, body
    st, _, body = srv.request("POST", f"/v1/groups/{group}/replay",
                              {"since": {"seq": s2}, "until": {"seq": s2 + 1}})
    assert st == 200 and body["requeued"] == 1, body
    st, _, body = srv.request("POST", f"/v1/groups/{group}/dlq/redrive",
                              {"ids": [first[s3]["id"]]})
    assert st == 200 and body == {"redriven": 1}, body
    held = {e["seq"]: e for e in pull(srv, group, max=10)}
    ids = sorted(e["delivery"]["id"] for e in held.values())
    assert ids == sorted([f"m{s1}.2", f"r{s2}.1", f"d{s3}.1", f"m{s4}.1"]), ids
    ack(srv, group, [held[s4]])  # a 2xx: durable, with the pull's lease record before it
    [waiting] = publish(srv, 1, type_=f"{group}.x")
    return [held[s1], held[s2], held[s3]], waiting


def test_leases_of_every_class_outlive_a_sigkill_and_restart(srv):
    """The holder's ack, nack and extension with the delivery ids given
    before a crash are taken at once after the restart -- before any pull
    or read has made the group examine its flows -- for an event's second
    attempt, a replayed event and a redriven dead letter alike (until stop
    15 the replayed and redriven ones were "unknown" until their flow, or
    the redrive, had made the delivery again)."""
    held = {op: hold_each_class(srv, op) for op in ("ack", "nack", "extend")}
    srv.kill9()
    srv.start()
    wrong = {}
    for op, (evs, _) in held.items():  # the first requests after the restart
        body = {"ids": [e["delivery"]["id"] for e in evs]}
        if op == "nack":
            body.update(error="later", delay_ms=60000)
        if op == "extend":
            body["ms"] = 60000
        st, _, got = srv.request("POST", f"/v1/groups/{op}/{op}", body)
        assert st == 200, (op, st, got)
        wrong.update({op: got} if got[op + "ed"] != 3 or got["unknown"] else {})
    assert not wrong, wrong
    for op, (_, waiting) in held.items():  # nothing held is delivered to anyone else
        assert [e["seq"] for e in pull(srv, op, consumer="c2")] == [waiting], op
        info = group_info(srv, op)
        want = {"ack": (1, 0, 1), "nack": (1, 3, 4), "extend": (4, 0, 4)}[op]
        assert (info["in_flight"], info["retry_scheduled"], info["lag"]) == want, (op, info)
    ack(srv, "extend", held["extend"][0])  # the extended leases are still the holder's
    assert group_info(srv, "extend")["lag"] == 1


def test_leases_of_every_class_outlive_a_snapshot(srv):
    """The same through a snapshot: a clean stop writes one (it restates
    the live leases, the dead letters and the replays), the next start
    reads it, and the holder's ids are taken at once."""
    evs, waiting = hold_each_class(srv, "g")
    srv.restart()
    st, _, got = srv.request("POST", "/v1/groups/g/ack",
                             {"ids": [e["delivery"]["id"] for e in evs]})
    assert st == 200 and got["acked"] == 3 and got["unknown"] == [], got
    assert [e["seq"] for e in pull(srv, "g", consumer="c2")] == [waiting]

if __name__ == "__main__":
    run_tests(globals())
