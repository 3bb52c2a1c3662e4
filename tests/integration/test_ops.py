#!/usr/bin/env python3
"""Operator-facing figures against a real eventbusd: /v1/stats totals read
from the log (they survive a restart) beside per-process counters, and
/metrics families that add up (deliveries = outcomes + in flight), per-type
counters with a bounded type label, build info, storage state and the
process_* metrics."""
import time

from harness import run_tests


def publish(srv, type_, n, id_prefix=None, expect=201):
    for i in range(n):
        ev = {"type": type_, "data": {"i": i}}
        if id_prefix:
            ev["id"] = f"{id_prefix}-{i}"
        st, _, body = srv.request("POST", "/v1/events", ev)
        assert st == expect, (st, body)


def metrics(srv):
    st, hdrs, text = srv.request("GET", "/metrics")
    assert st == 200 and hdrs["content-type"].startswith("text/plain"), (st, hdrs)
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, v = line.rpartition(" ")
            vals[name] = float(v)
    return vals


def stats(srv):
    st, _, body = srv.request("GET", "/v1/stats")
    assert st == 200, (st, body)
    return body["events"]


def test_stats_totals_survive_restart(srv):
    publish(srv, "a.one", 3, id_prefix="x")
    publish(srv, "b.two", 2)
    publish(srv, "a.one", 1, id_prefix="x", expect=200)  # a duplicate: not counted as published
    ev = stats(srv)
    assert ev["published"] == 5 and ev["published_since_start"] == 5, ev
    assert ev["duplicates_since_start"] == 1, ev
    assert ev["types"] == {"a.one": {"published": 3, "published_since_start": 3},
                           "b.two": {"published": 2, "published_since_start": 2}}, ev
    srv.restart()
    ev = stats(srv)
    assert ev["published"] == 5 and ev["published_since_start"] == 0, ev
    assert ev["types"]["a.one"] == {"published": 3, "published_since_start": 0}, ev
    publish(srv, "b.two", 1)
    ev = stats(srv)
    assert ev["published"] == 6 and ev["published_since_start"] == 1, ev
    assert ev["types"]["b.two"] == {"published": 3, "published_since_start": 1}, ev
    m = metrics(srv)
    assert m["eventbus_published_events_total"] == 1, m
    assert m['eventbus_events_published_total{type="b.two"}'] == 1, m


def test_metrics_add_up(srv):
    st, _, body = srv.request("PUT", "/v1/groups/g", {"types": ["t"], "max_attempts": 1})
    assert st in (200, 201), body
    schema = {"type": "object", "required": ["i"]}
    st, _, body = srv.request("PUT", "/v1/schemas/t", {"schema": schema})
    assert st == 201, body
    publish(srv, "t", 6, id_prefix="e")
    publish(srv, "t", 2, id_prefix="e", expect=200)  # duplicates
    st, _, body = srv.request("POST", "/v1/events", {"type": "t", "data": {"j": 1}})
    assert st == 422 and body["error"]["code"] == "schema_violation", body
    st, _, body = srv.request("POST", "/v1/groups/g/pull", {"consumer": "c", "max": 6})
    evs = body["events"]
    assert st == 200 and len(evs) == 6, body
    ids = [e["delivery"]["id"] for e in evs]
    st, _, body = srv.request("POST", "/v1/groups/g/ack", {"ids": ids[:3]})
    assert st == 200, body
    st, _, body = srv.request("POST", "/v1/groups/g/nack", {"ids": ids[3:4]})
    assert st == 200, body
    m = metrics(srv)
    out = {o: m[f'eventbus_delivery_outcomes_total{{group="g",outcome="{o}"}}']
           for o in ("acked", "nacked", "expired")}
    assert out == {"acked": 3, "nacked": 1, "expired": 0}, out
    inflight = m['eventbus_group_in_flight{group="g"}']
    assert m['eventbus_deliveries_total{group="g"}'] == sum(out.values()) + inflight == 6, m
    assert m['eventbus_dead_lettered_total{group="g"}'] == 1, m
    assert m["eventbus_published_events_total"] == 6, m
    assert m['eventbus_events_published_total{type="t"}'] == 6, m
    assert m['eventbus_duplicates_total{type="t"}'] == 2, m
    assert m['eventbus_schema_rejections_total{type="t"}'] == 1, m
    assert m["eventbus_publish_duration_seconds_count"] >= 6, m
    assert m["eventbus_storage_degraded"] == 0, m
    assert any(k.startswith("eventbus_build_info{version=") and v == 1 for k, v in m.items()), m
    assert m["process_resident_memory_bytes"] > 1 << 20, m
    assert 3 <= m["process_open_fds"] <= m["process_max_fds"], m
    assert m["process_cpu_seconds_total"] >= 0, m
    # The server started for this test: its start time is within minutes of now.
    assert abs(m["process_start_time_seconds"] - time.time()) < 300, m


def test_type_label_is_bounded(srv):
    # 1000 types by name, then the rest fold into type="_other" (counted).
    for b in range(2):
        evs = [{"type": f"t{b}.n{i}", "data": {}} for i in range(600)]
        st, _, body = srv.request("POST", "/v1/events/batch", evs)
        assert st == 201, (st, body)
    m = metrics(srv)
    named = [k for k in m if k.startswith("eventbus_events_published_total{")]
    assert len(named) == 1001, len(named)
    assert m['eventbus_events_published_total{type="_other"}'] == 200, m
    assert m["eventbus_type_label_folded_total"] == 200, m
    ev = stats(srv)
    assert ev["published"] == 1200 and len(ev["types"]) == 1001, len(ev["types"])
    assert ev["types"]["_other"]["published"] == 200


if __name__ == "__main__":
    run_tests(globals())
