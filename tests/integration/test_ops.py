#!/usr/bin/env python3
"""Operator-facing figures against a real eventbusd: /v1/stats totals read
from the log (they survive a restart) beside per-process counters, and
/metrics families that add up (deliveries = outcomes + in flight), per-type
counters with a bounded type label, build info, storage state and the
process_* metrics."""
import json
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
    # the dead-lettering also published one eventbus.dead_letter notice
    assert m['eventbus_events_published_total{type="eventbus.dead_letter"}'] == 1, m
    assert m["eventbus_published_events_total"] == 6 + 1, m
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
    # --max-types sets the bound; after a restart the log is counted again
    # under it (the first types met keep their names).
    srv.restart(["--max-types", "5"])
    m = metrics(srv)
    named = [k for k in m if k.startswith("eventbus_events_published_total{")]
    assert len(named) == 6 and 'eventbus_events_published_total{type="_other"}' in named, named
    assert all(m[k] == 0 for k in named), named  # the counter is per process: none yet
    ev = stats(srv)
    assert len(ev["types"]) == 6 and ev["types"]["_other"]["published"] == 1195, ev["types"]
    st, _, body = srv.request("POST", "/v1/events", {"type": "t0.n0", "data": {}})
    assert st == 201, body  # a named type still counts by name
    st, _, body = srv.request("POST", "/v1/events", {"type": "fresh.type", "data": {}})
    assert st == 201, body  # never refused: folded
    m = metrics(srv)
    assert m['eventbus_events_published_total{type="t0.n0"}'] == 1, m
    assert m['eventbus_events_published_total{type="_other"}'] == 1, m


def access_lines(srv):
    with open(srv.log_path) as f:
        return [line for line in f if "access" in line]


def test_access_log_json(srv):
    srv.restart(["--log-level", "debug", "--log-format", "json"])
    st, _, _ = srv.request("POST", "/v1/events", {"type": "a", "data": 1})
    assert st == 201
    st, _, _ = srv.request("GET", "/v1/nope")
    assert st == 404
    st, _, body = srv.request("POST", "/v1/events", {"type": ""})
    assert st == 400, body
    srv.close_conn()
    recs = [json.loads(line) for line in access_lines(srv)]
    recs = [r for r in recs  # not the harness's readiness probes
            if r["msg"] == "access" and r["path"] not in ("/healthz", "/v1/cluster")]
    assert [(r["method"], r["path"], r["status"]) for r in recs] == [
        ("POST", "/v1/events", 201), ("GET", "/v1/nope", 404), ("POST", "/v1/events", 400)], recs
    for r in recs:
        assert r["level"] == "DEBUG" and r["bytes"] > 0 and r["us"] > 0, r
        assert r["remote"].startswith("127.0.0.1:"), r
    assert "cause" not in recs[0]
    assert json.loads(recs[1]["cause"])["error"]["code"] == "not_found", recs[1]
    assert json.loads(recs[2]["cause"])["error"]["details"][0]["field"] == "/type", recs[2]
    m = metrics(srv)
    assert m['eventbus_http_requests_total{method="POST",route="/v1/events",code="2xx"}'] == 1, m
    assert m['eventbus_http_requests_total{method="POST",route="/v1/events",code="4xx"}'] == 1, m
    assert m['eventbus_http_requests_total{method="",route="none",code="4xx"}'] == 1, m


def test_access_log_text_and_off(srv):
    st, _, _ = srv.request("GET", "/v1/stats")
    assert st == 200
    assert access_lines(srv) == []  # --log-level info: no access log
    srv.restart(["--log-level", "debug"])
    st, _, _ = srv.request("GET", "/v1/stats")
    assert st == 200
    line = [x for x in access_lines(srv) if "path=/v1/stats" in x]
    assert len(line) == 1 and " DEBUG access method=GET path=/v1/stats status=200 " in line[0], line
    assert " remote=127.0.0.1:" in line[0], line


def test_group_patch_is_a_merge_patch(srv):
    st, _, body = srv.request("PATCH", "/v1/groups/g", {"max_attempts": 3})
    assert st == 404 and body["error"]["code"] == "not_found", body  # PATCH never creates
    st, _, body = srv.request("PUT", "/v1/groups/g", {"types": ["a", "b"], "max_attempts": 7,
                                                      "backoff": {"initial_ms": 200}})
    assert st == 201, body
    st, _, body = srv.request("PATCH", "/v1/groups/g", {"ack_timeout_ms": 5000},
                              headers={"Content-Type": "application/merge-patch+json"})
    assert st == 200 and body["created"] is False, body
    cfg = body["config"]
    assert cfg["ack_timeout_ms"] == 5000 and cfg["max_attempts"] == 7, cfg
    assert cfg["backoff"]["initial_ms"] == 200 and cfg["types"] == ["a", "b"], cfg
    # Nested objects merge; null removes a member (back to its default); arrays replace.
    st, _, body = srv.request("PATCH", "/v1/groups/g", {"backoff": {"max_ms": 9000},
                                                        "max_attempts": None, "types": ["c"]})
    assert st == 200, body
    cfg = body["config"]
    assert cfg["backoff"]["initial_ms"] == 200 and cfg["backoff"]["max_ms"] == 9000, cfg
    assert cfg["types"] == ["c"] and cfg["max_attempts"] != 7, cfg
    # A bad result is refused naming the field, and nothing is written.
    for patch, field in [({"bogus": 1}, "/bogus"), ({"ack_timeout_ms": -1}, "/ack_timeout_ms"),
                         ({"backoff": {"initial_ms": "x"}}, "/backoff/initial_ms")]:
        st, _, body = srv.request("PATCH", "/v1/groups/g", patch)
        assert st == 400 and body["error"]["details"][0]["field"] == field, (patch, body)
    st, _, body = srv.request("PATCH", "/v1/groups/g", [1])
    assert st == 400, body
    srv.restart()  # durable like PUT
    st, _, body = srv.request("GET", "/v1/groups/g")
    assert st == 200 and body["config"] == cfg, (body, cfg)


if __name__ == "__main__":
    run_tests(globals())
