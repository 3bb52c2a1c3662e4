#!/usr/bin/env python3
"""Delivery controls against a real eventbusd (issue 17): subject wildcards
in a group's types, non-retryable failures (nack with dead_letter).

Each test gets its own server on a free port and a fresh data directory
(see harness.py). Run directly or through meson (suite 'integration').
"""
from harness import run_tests
from test_groups import ack, group_info, nack, publish, pull, put_group


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


if __name__ == "__main__":
    run_tests(globals())
