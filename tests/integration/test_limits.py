#!/usr/bin/env python3
"""Memory bounds (issue 13, item 5) against a real eventbusd: each table a
client can grow has a flag, and a test here pushes past it. The dedupe
window forgets its oldest ids past --dedupe-max-bytes (counted in
/metrics); schema versions past --max-schemas and groups past --max-groups
are refused with 409 limit_exceeded and write nothing; pulls lease nothing
more once --max-in-flight-total leases are out, across groups.
"""
import re

from harness import run_tests


def metric(srv, name):
    st, _, text = srv.request("GET", "/metrics")
    assert st == 200
    m = re.search(rf"^{name} (\d+)$", text if isinstance(text, str) else text.decode(), re.M)
    assert m, name
    return int(m.group(1))


def ev(i, id_=None):
    e = {"type": "thing.done", "data": {"i": i}}
    if id_:
        e["id"] = id_
    return e


def test_dedupe_window_forgets_oldest_past_its_bytes(srv):
    srv.restart(["--dedupe-max-bytes", "4KiB"])
    ids = [f"client-id-{i:04d}-" + "x" * 100 for i in range(50)]
    for i, id_ in enumerate(ids):
        st, _, body = srv.request("POST", "/v1/events", ev(i, id_))
        assert st == 201, (st, body)
    assert metric(srv, "eventbus_dedupe_bytes") <= 4096
    kept = metric(srv, "eventbus_dedupe_ids")
    assert 1 <= kept < 50, kept
    assert metric(srv, "eventbus_dedupe_evicted_total") == 50 - kept
    st, _, body = srv.request("POST", "/v1/events", ev(0, ids[-1]))  # still remembered
    assert st == 200 and body["duplicate"] is True, body
    st, _, body = srv.request("POST", "/v1/events", ev(0, ids[0]))  # forgotten: stored again
    assert st == 201, body


def test_schema_versions_past_the_bound_are_refused(srv):
    srv.restart(["--max-schemas", "3"])
    schema = {"schema": {"type": "object"}}
    for t in ("a.one", "a.two", "a.three"):
        st, _, body = srv.request("PUT", f"/v1/schemas/{t}", schema)
        assert st == 201, (t, st, body)
    st, _, body = srv.request("PUT", "/v1/schemas/a.four", schema)
    assert st == 409 and body["error"]["code"] == "limit_exceeded", (st, body)
    assert "--max-schemas" in body["error"]["message"], body
    st, _, body = srv.request("PUT", "/v1/schemas/a.one", {"schema": {"type": "object",
                                                                      "required": []}})
    assert st == 409 and body["error"]["code"] == "limit_exceeded", (st, body)
    st, _, body = srv.request("PUT", "/v1/schemas/a.one", schema)  # the same: no new version
    assert st == 200 and body.get("existing") is True, (st, body)
    srv.restart(["--max-schemas", "3"])
    st, _, body = srv.request("GET", "/v1/schemas")
    assert sorted(s["type"] for s in body["schemas"]) == ["a.one", "a.three", "a.two"], body


def test_groups_past_the_bound_are_refused(srv):
    srv.restart(["--max-groups", "2"])
    cfg = {"types": ["thing.done"]}
    for g in ("g1", "g2"):
        st, _, body = srv.request("PUT", f"/v1/groups/{g}", cfg)
        assert st == 201, (st, body)
    st, _, body = srv.request("PUT", "/v1/groups/g3", cfg)
    assert st == 409 and body["error"]["code"] == "limit_exceeded", (st, body)
    assert "--max-groups" in body["error"]["message"], body
    st, _, body = srv.request("PUT", "/v1/groups/g1", {"types": ["thing.done"], "max_attempts": 3})
    assert st == 200, (st, body)  # an update is not a new group
    st, _, body = srv.request("DELETE", "/v1/groups/g2")
    assert st == 204, body
    st, _, body = srv.request("PUT", "/v1/groups/g3", cfg)
    assert st == 201, (st, body)
    st, _, body = srv.request("GET", "/v1/groups")
    assert sorted(g["name"] for g in body["groups"]) == ["g1", "g3"], body


def test_leases_past_the_global_budget_wait(srv):
    srv.restart(["--max-in-flight-total", "5"])
    for g in ("a", "b"):
        st, _, body = srv.request("PUT", f"/v1/groups/{g}", {"types": ["thing.done"],
                                                             "start": "earliest"})
        assert st == 201, body
    st, _, body = srv.request("POST", "/v1/events/batch", [ev(i) for i in range(10)])
    assert st == 201, body

    def pull(g, n):
        st, _, body = srv.request("POST", f"/v1/groups/{g}/pull", {"consumer": "c", "max": n})
        assert st == 200, body
        return body["events"]

    a = pull("a", 4)
    assert len(a) == 4
    assert len(pull("b", 4)) == 1  # 5 leases in all
    assert pull("a", 4) == [] and pull("b", 4) == []
    assert metric(srv, "eventbus_in_flight_total") == 5
    st, _, body = srv.request("POST", "/v1/groups/a/ack",
                              {"ids": [e["delivery"]["id"] for e in a[:2]]})
    assert st == 200, body
    assert len(pull("b", 4)) == 2
    st, _, body = srv.request("DELETE", "/v1/groups/a")  # its leases go with it
    assert st == 204
    assert metric(srv, "eventbus_in_flight_total") == 3
    assert len(pull("b", 10)) == 2


if __name__ == "__main__":
    run_tests(globals())
