#!/usr/bin/env python3
"""Publishing and the schema registry against a real eventbusd (issue 4).

Each test gets its own server on a free port and a fresh data directory
(see harness.py). Run directly or through meson (suite 'integration').
"""
import json
import os
import signal
import socket
import threading
import shutil
import time

from harness import ROOT, run_tests, skip_on_pg

ORDER_SCHEMA = {
    "type": "object",
    "required": ["orderId", "amount", "currency"],
    "properties": {
        "orderId": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "status": {"enum": ["new", "paid", "shipped"]},
    },
}


def order(n=1, **extra):
    data = {"orderId": f"A-{n}", "amount": 10.5 + n, "currency": "EUR"}
    data.update(extra)
    return {"type": "order.created", "source": "order-service", "data": data}


def register(srv, typ="order.created", schema=None, mode=None, expect=201):
    body = {"schema": schema or ORDER_SCHEMA}
    if mode:
        body["compatibility"] = mode
    st, _, js = srv.request("PUT", f"/v1/schemas/{typ}", body)
    assert st == expect, (st, js)
    return js


def publish(srv, ev, expect=201, headers=None):
    st, _, js = srv.request("POST", "/v1/events", ev, headers=headers)
    assert st == expect, (st, js)
    return js


# --- publishing -------------------------------------------------------------

def test_publish_answers_id_seq_time(srv):
    a = publish(srv, order(1))
    b = publish(srv, order(2))
    assert a["seq"] >= 1 and b["seq"] == a["seq"] + 1
    assert len(a["id"]) == 26 and a["id"] < b["id"], "generated ids sort by time"
    assert a["time"].endswith("Z") and "T" in a["time"]
    st, _, ev = srv.request("GET", f"/v1/events/{a['id']}")
    assert st == 200, ev
    assert ev["seq"] == a["seq"] and ev["data"]["orderId"] == "A-1"
    assert ev["correlationId"] == a["id"], "correlationId defaults to the id"


def test_seed_missing_field_gets_immediate_error(srv):
    register(srv)
    bad = order(1)
    del bad["data"]["currency"]
    st, _, js = srv.request("POST", "/v1/events", bad)
    assert st == 422, (st, js)
    err = js["error"]
    assert err["code"] == "schema_violation"
    paths = [d["path"] for d in err["details"]]
    assert "/data/currency" in paths or any("currency" in d["message"] for d in err["details"]), err
    assert "currency" in err["message"]
    # nothing was written
    st, _, page = srv.request("GET", "/v1/events?limit=10")
    assert st == 200 and page["events"] == [], page


def test_every_violation_is_listed(srv):
    register(srv)
    bad = order(1, status="lost")
    bad["data"]["amount"] = -1
    bad["data"]["currency"] = "euro"
    st, _, js = srv.request("POST", "/v1/events", bad)
    assert st == 422
    paths = sorted(d["path"] for d in js["error"]["details"])
    assert paths == ["/data/amount", "/data/currency", "/data/status"], paths


def test_version_pinning_and_unknown_version(srv):
    register(srv)
    ev = order(1)
    ev["version"] = 1
    publish(srv, ev)
    ev["version"] = 7
    st, _, js = srv.request("POST", "/v1/events", ev)
    assert st == 422 and js["error"]["code"] == "unknown_schema_version", js
    assert js["error"]["details"][0]["field"] == "/version"


def test_type_without_schema_is_accepted_unless_required(srv):
    publish(srv, {"type": "free.form", "data": {"anything": [1, 2]}})
    srv.restart(extra_args=["--require-schemas"])
    st, _, js = srv.request("POST", "/v1/events", {"type": "free.form", "data": {}})
    assert st == 422 and js["error"]["code"] == "schema_required", js


def test_bad_envelopes_name_the_field(srv):
    cases = [
        ({"data": {}}, "/type"),
        ({"type": "Order Created", "data": {}}, "/type"),
        ({"type": ".order", "data": {}}, "/type"),
        ({"type": "a", "data": {}, "corelationId": "x"}, "/corelationId"),
        ({"type": "a", "key": 5}, "/key"),
        ({"type": "a", "version": "one"}, "/version"),
    ]
    for body, field in cases:
        st, _, js = srv.request("POST", "/v1/events", body)
        assert st == 400, (body, st, js)
        assert js["error"]["code"] == "invalid_request"
        assert js["error"]["details"][0]["field"] == field, (body, js)


def test_malformed_json_names_line_and_column(srv):
    st, _, js = srv.request("POST", "/v1/events", raw=b'{"type": "a",\n  "data": {,}}')
    assert st == 400 and js["error"]["code"] == "malformed_json", js
    assert "line 2" in js["error"]["message"] and "column" in js["error"]["message"], js


def test_wrong_content_type_is_415(srv):
    st, _, js = srv.request("POST", "/v1/events", raw=b'{"type":"a"}',
                            headers={"Content-Type": "text/plain"})
    assert st == 415 and js["error"]["code"] == "unsupported_media_type", js
    # curl -d's default type, and a body with no Content-Type at all (raw
    # HTTP: http.client would add none either), are refused as docs/api.md says.
    st, _, js = srv.request("POST", "/v1/events", raw=b'{"type":"a"}',
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 415 and "curl: --json" in js["error"]["message"], js
    resp = srv.raw(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n"
                   b"Connection: close\r\n\r\n{\"type\":\"a\"}")
    assert resp.startswith(b"HTTP/1.1 415 "), resp
    for ct in ("application/json; charset=utf-8", "application/merge-patch+json"):
        st, _, js = srv.request("POST", "/v1/events", raw=b'{"type":"a"}',
                                headers={"Content-Type": ct})
        assert st == 201, (ct, js)
    st, _, page = srv.request("GET", "/v1/events")
    assert len(page["events"]) == 2, page  # the refused ones wrote nothing


def test_oversized_event_is_413_and_server_keeps_serving(srv):
    big = {"type": "blob.stored", "data": {"x": "a" * (2 << 20)}}
    st, _, js = srv.request("POST", "/v1/events", big)
    assert st == 413, (st, js)
    publish(srv, order(1))


def test_deep_nesting_does_not_crash(srv):
    deep = b'{"type":"a","data":' + b"[" * 100000 + b"]" * 100000 + b"}"
    st, _, js = srv.request("POST", "/v1/events", raw=deep)
    assert st in (400, 413), st
    publish(srv, order(1))


def test_invalid_utf8_is_rejected(srv):
    st, _, js = srv.request("POST", "/v1/events", raw=b'{"type":"a","data":"\xff\xfe"}')
    assert st == 400 and js["error"]["code"] == "malformed_json", js


def test_duplicate_keys_in_envelope_are_rejected(srv):
    st, _, js = srv.request("POST", "/v1/events", raw=b'{"type":"a","type":"b"}')
    assert st == 400, (st, js)


# --- batches ------------------------------------------------------------------

def test_batch_is_atomic(srv):
    register(srv)
    good = [order(i) for i in range(5)]
    bad = list(good)
    bad[3] = order(3)
    del bad[3]["data"]["amount"]
    st, _, js = srv.request("POST", "/v1/events/batch", bad)
    assert st == 422, js
    assert [d["index"] for d in js["error"]["details"]] == [3], js
    st, _, page = srv.request("GET", "/v1/events")
    assert page["events"] == [], "a refused batch writes nothing"
    st, _, js = srv.request("POST", "/v1/events/batch", good)
    assert st == 201, js
    seqs = [r["seq"] for r in js["results"]]
    assert seqs == list(range(seqs[0], seqs[0] + 5)), seqs


def test_batch_bounds(srv):
    st, _, js = srv.request("POST", "/v1/events/batch", [])
    assert st == 400, js
    st, _, js = srv.request("POST", "/v1/events/batch", [order(i) for i in range(1001)])
    assert st == 400 and "1000" in js["error"]["message"], js


# --- idempotency ----------------------------------------------------------------

def test_dedupe_within_window_survives_restart(srv):
    ev = order(1)
    ev["id"] = "order-A-1"
    first = publish(srv, ev)
    again = publish(srv, ev, expect=200)
    assert again["duplicate"] is True and again["seq"] == first["seq"]
    srv.restart()
    again = publish(srv, ev, expect=200)
    assert again["duplicate"] is True and again["seq"] == first["seq"]
    st, _, page = srv.request("GET", "/v1/events")
    assert len(page["events"]) == 1


def test_dedupe_is_by_source_and_id(srv):
    """CloudEvents uniqueness is source + id (issue 13, item 7): a reused id
    from another source is a new event, also across restarts (clean and
    SIGKILL), where the window is refilled from the log."""
    def ev(source, n):
        e = order(n)
        e["id"] = "shared-1"
        if source is not None:
            e["source"] = source
        return e
    a = publish(srv, ev("/orders", 1))
    b = publish(srv, ev("/billing", 2))          # same id, other source: stored
    c = publish(srv, ev(None, 3))                # no source: its own namespace
    assert len({a["seq"], b["seq"], c["seq"]}) == 3
    for restart in (None, "clean", "kill9"):
        if restart == "clean":
            srv.restart()
        elif restart == "kill9":
            srv.kill9()
            srv.start()
        for src, n, first in (("/orders", 4, a), ("/billing", 5, b), (None, 6, c)):
            again = publish(srv, ev(src, n), expect=200)
            assert again["duplicate"] is True and again["seq"] == first["seq"], (restart, src)
    # a batch holding the same id from two sources stores both
    st, _, js = srv.request("POST", "/v1/events/batch", [ev("/x", 7), ev("/y", 8), ev("/x", 9)])
    assert st == 201, js
    r = js["results"]
    assert not r[0].get("duplicate") and not r[1].get("duplicate"), r
    assert r[2]["duplicate"] and r[2]["seq"] == r[0]["seq"], r
    st, _, page = srv.request("GET", "/v1/events")
    assert len(page["events"]) == 5, page


def test_dedupe_inside_one_batch(srv):
    a, b = order(1), order(2)
    a["id"] = b["id"] = "same"
    st, _, js = srv.request("POST", "/v1/events/batch", [a, b])
    assert st == 201, js
    r = js["results"]
    assert r[1]["duplicate"] and r[1]["seq"] == r[0]["seq"], r


# --- CloudEvents ----------------------------------------------------------------

def test_cloudevents_structured(srv):
    register(srv)
    ce = {"specversion": "1.0", "id": "ce-1", "source": "/orders", "type": "order.created",
          "subject": "A-1", "time": "2026-01-01T00:00:00Z", "partitionkey": "cust-9",
          "tenant": "acme", "data": {"orderId": "A-1", "amount": 3, "currency": "USD"}}
    st, _, js = srv.request("POST", "/v1/events", ce,
                            headers={"Content-Type": "application/cloudevents+json"})
    assert st == 201, js
    st, _, ev = srv.request("GET", "/v1/events?limit=1")
    e = ev["events"][0]
    assert e["id"] == "ce-1" and e["source"] == "/orders" and e["key"] == "cust-9"
    assert e["subject"] == "A-1" and e["extensions"]["tenant"] == "acme"
    assert e["extensions"]["time"] == "2026-01-01T00:00:00Z"
    # schema applies to CloudEvents data too
    ce["id"] = "ce-2"
    del ce["data"]["currency"]
    st, _, js = srv.request("POST", "/v1/events", ce,
                            headers={"Content-Type": "application/cloudevents+json"})
    assert st == 422, js
    # required attributes
    st, _, js = srv.request("POST", "/v1/events", {"specversion": "1.0", "type": "a"},
                            headers={"Content-Type": "application/cloudevents+json"})
    assert st == 400 and js["error"]["details"][0]["field"] == "/id", js


def test_cloudevents_binary(srv):
    hdrs = {"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "b-1",
            "ce-source": "/inventory", "ce-type": "stock.reserved", "ce-traceparent": "00-ab"}
    st, _, js = srv.request("POST", "/v1/events", {"sku": "X", "qty": 2}, headers=hdrs)
    assert st == 201, js
    st, _, page = srv.request("GET", "/v1/events?type=stock.reserved")
    e = page["events"][0]
    assert e["data"] == {"sku": "X", "qty": 2} and e["source"] == "/inventory"
    assert e["extensions"]["traceparent"] == "00-ab"
    hdrs["Content-Type"] = "text/plain"
    st, _, js = srv.request("POST", "/v1/events", raw=b"hello", headers=hdrs)
    assert st in (400, 415), js


def test_cloudevents_attributes_are_bounded(srv):
    # Found by tests/fuzz/envelope_fuzz.c: CloudEvents attributes skipped the
    # native envelope's bounds, and an id over 128 bytes overran the answer's
    # id slot and the stored record's 1-byte id length.
    ce = {"specversion": "1.0", "id": "i" * 300, "source": "/s", "type": "a.b", "data": 1}
    st, _, js = srv.request("POST", "/v1/events", ce,
                            headers={"Content-Type": "application/cloudevents+json"})
    assert st == 400 and js["error"]["details"][0]["field"] == "/id", js
    st, _, js = srv.request("POST", "/v1/events/batch", [dict(ce, id="ok-1"), ce],
                            headers={"Content-Type": "application/cloudevents-batch+json"})
    assert st == 400, js
    hdrs = {"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "b-1",
            "ce-source": "/s", "ce-type": "a.b", "ce-partitionkey": "k" * 2000}
    st, _, js = srv.request("POST", "/v1/events", {"x": 1}, headers=hdrs)
    assert st == 400 and js["error"]["details"][0]["field"] == "/key", js
    # header values are stored in JSON: they must be UTF-8 (0xff is not)
    hdrs.update({"ce-partitionkey": "k", "ce-source": "\xff\xfe"})
    st, _, js = srv.request("POST", "/v1/events", {"x": 1}, headers=hdrs)
    assert st == 400 and js["error"]["details"][0]["field"] == "/source", js
    st, _, page = srv.request("GET", "/v1/events")
    assert st == 200 and page["events"] == [], page
    ce["id"] = "i" * 128  # the bound itself is fine
    st, _, js = srv.request("POST", "/v1/events", ce,
                            headers={"Content-Type": "application/cloudevents+json"})
    assert st == 201 and js["id"] == "i" * 128, js


# --- browsing -------------------------------------------------------------------

def test_browse_since_out_of_range(srv):
    publish(srv, {"type": "a.b", "data": 1})
    st, _, page = srv.request("GET", "/v1/events?since=1e300d")  # before 1970: everything
    assert st == 200 and len(page["events"]) == 1, page
    for bad in ("nand", "infh", "-1h"):
        st, _, js = srv.request("GET", "/v1/events?since=" + bad)
        assert st == 400 and js["error"]["details"][0]["field"] == "?since", (bad, js)


def test_browse_query_values_are_percent_decoded(srv):
    publish(srv, {"type": "a.b", "data": 1})
    # What urllib.parse.quote / curl --data-urlencode send: ':' as %3A.
    for q in ("since=2000-01-01T00%3A00%3A00Z", "since=2000-01-01T00:00:00Z",
              "since=2000-01-01T00%3a00%3a00%2B00%3A00", "type=a%2Eb", "limit=%31"):
        st, _, page = srv.request("GET", "/v1/events?" + q)
        assert st == 200 and len(page["events"]) == 1, (q, page)
    for q, field in (("since=%ZZ", "?since"), ("type=a%00b", "?type"), ("limit=%", "?limit"),
                     ("after_seq=x", "?after_seq"), ("until=soon", "?until")):
        st, _, js = srv.request("GET", "/v1/events?" + q)
        assert st == 400 and js["error"]["details"][0]["field"] == field, (q, js)
    st, _, js = srv.request("GET", "/v1/groups/nope/dlq?limit=%31")
    assert st == 404, js


def test_browse_filters_and_pages(srv):
    for i in range(30):
        publish(srv, order(i) if i % 3 else {"type": "user.signed-up", "data": {"n": i}})
    st, _, page = srv.request("GET", "/v1/events?type=order.created&limit=7")
    assert st == 200 and len(page["events"]) == 7
    assert all(e["type"] == "order.created" for e in page["events"])
    seen = [e["seq"] for e in page["events"]]
    while page["next_after_seq"]:
        st, _, page = srv.request("GET", f"/v1/events?type=order.created&limit=7&after_seq={page['next_after_seq']}")
        seen += [e["seq"] for e in page["events"]]
    assert len(seen) == 20 and seen == sorted(seen)
    st, _, page = srv.request("GET", "/v1/events?since=1h&limit=1000")
    assert len(page["events"]) == 30
    st, _, page = srv.request("GET", "/v1/events?until=2000-01-01T00:00:00Z")
    assert page["events"] == []
    st, _, js = srv.request("GET", "/v1/events?limit=0")
    assert st == 400 and js["error"]["details"][0]["field"] == "?limit"
    st, _, js = srv.request("GET", "/v1/events/does-not-exist")
    assert st == 404


# --- schema registry ------------------------------------------------------------

def test_schema_versions_and_reads(srv):
    js = register(srv)
    assert js["version"] == 1 and js["compatibility"] == "backward"
    js = register(srv, expect=200)  # identical: existing version, nothing written
    assert js["version"] == 1 and js["existing"] is True
    # Backward compatible (Confluent's definition): the new schema accepts
    # everything the old one did. Dropping a bound widens it.
    v2 = json.loads(json.dumps(ORDER_SCHEMA))
    del v2["properties"]["amount"]["minimum"]
    assert register(srv, schema=v2)["version"] == 2
    st, _, lst = srv.request("GET", "/v1/schemas")
    assert [s["type"] for s in lst["schemas"]] == ["order.created"]
    assert lst["schemas"][0]["versions"] == [1, 2]
    st, _, one = srv.request("GET", "/v1/schemas/order.created")
    assert one["latest"]["version"] == 2
    assert "minimum" not in one["latest"]["schema"]["properties"]["amount"]
    st, _, v = srv.request("GET", "/v1/schemas/order.created/versions/1")
    assert st == 200 and v["schema"]["properties"]["amount"]["minimum"] == 0
    # adding a property to an open content model is not backward compatible
    v3 = json.loads(json.dumps(v2))
    v3["properties"]["note"] = {"type": "string"}
    st, _, js = srv.request("PUT", "/v1/schemas/order.created", {"schema": v3})
    assert st == 409 and "note" in js["error"]["message"], js
    st, _, _ = srv.request("GET", "/v1/schemas/order.created/versions/3")
    assert st == 404
    st, _, _ = srv.request("GET", "/v1/schemas/nope")
    assert st == 404


def test_incompatible_schema_is_refused_with_reasons(srv):
    register(srv)
    v2 = json.loads(json.dumps(ORDER_SCHEMA))
    v2["required"].append("customerId")
    v2["properties"]["amount"] = {"type": "string"}
    v2["properties"]["status"] = {"enum": ["new", "paid"]}
    st, _, js = srv.request("PUT", "/v1/schemas/order.created", {"schema": v2})
    assert st == 409 and js["error"]["code"] == "incompatible_schema", js
    msgs = " | ".join(d["message"] for d in js["error"]["details"])
    assert "customerId" in msgs and "required" in msgs, msgs
    assert "amount" in msgs and "string" in msgs, msgs
    assert "shipped" in msgs, msgs
    # check answers the same question without writing
    st, _, chk = srv.request("POST", "/v1/schemas/order.created/check", {"schema": v2})
    assert st == 200 and chk["compatible"] is False and len(chk["changes"]) >= 3, chk
    st, _, one = srv.request("GET", "/v1/schemas/order.created")
    assert one["versions"] == [1]
    # mode none accepts it
    assert register(srv, schema=v2, mode="none")["version"] == 2


def test_hostile_schemas_are_answered(srv):
    # Found by tests/fuzz/schema_fuzz.c: each of these used to hang or crash
    # the server. Self references compared 2^64 ways (compat), a 2000-hop
    # $ref chain overflowed the stack (compile), an anyOf of two self
    # references evaluated an event exponentially often (validate).
    rec = {"properties": {"a": {"$ref": "#"}, "b": {"$ref": "#"}}}
    assert register(srv, "tree.node", schema=rec)["version"] == 1
    st, _, js = srv.request("PUT", "/v1/schemas/tree.node",
                            {"schema": dict(rec, required=["a"])})
    assert st == 409 and "became required" in js["error"]["message"] + str(js), js
    chain = {"$defs": {f"a{i}": {"$ref": f"#/$defs/a{i + 1}"} for i in range(2000)},
             "$ref": "#/$defs/a0"}
    chain["$defs"]["a2000"] = {"type": "integer"}
    st, _, js = srv.request("PUT", "/v1/schemas/chain.type", {"schema": chain})
    assert st == 400 and js["error"]["code"] == "invalid_schema", js
    assert register(srv, "loop.type",
                    schema={"anyOf": [{"$ref": "#"}, {"$ref": "#"}]})["version"] == 1
    st, _, js = srv.request("POST", "/v1/events", {"type": "loop.type", "data": 1})
    assert st == 422 and "too complex" in str(js), js
    assert srv.request("GET", "/healthz")[0] == 200


def test_invalid_schema_is_400(srv):
    st, _, js = srv.request("PUT", "/v1/schemas/order.created", {"schema": {"type": "strang"}})
    assert st == 400 and js["error"]["code"] == "invalid_schema", js
    st, _, js = srv.request("PUT", "/v1/schemas/order.created", {"schema": {}, "compatibility": "sideways"})
    assert st == 400 and js["error"]["details"][0]["field"] == "/compatibility", js
    st, _, js = srv.request("PUT", "/v1/schemas/Bad%20Type", {"schema": {}})
    assert st == 400 and js["error"]["details"][0]["field"] == "/type", js


def test_unsupported_schema_draft_is_422_naming_schema(srv):
    """Issue 13 item 9: a 2019-09 schema was read as 2020-12, its
    $recursiveRef ignored, so invalid events passed."""
    schema = {"$schema": "https://json-schema.org/draft/2019-09/schema",
              "$recursiveAnchor": True, "type": "object",
              "properties": {"child": {"$recursiveRef": "#"}, "n": {"type": "integer"}}}
    for path in ["/v1/schemas/tree.node", "/v1/schemas/tree.node/check"]:
        st, _, js = srv.request("PUT" if not path.endswith("check") else "POST", path,
                                {"schema": schema})
        assert st == 422, (st, js)
        assert js["error"]["code"] == "unsupported_schema", js
        assert "$schema" in js["error"]["message"] and "2019-09" in js["error"]["message"], js
        assert js["error"]["details"][0]["field"] == "/$schema", js
    st, _, _ = srv.request("GET", "/v1/schemas/tree.node")
    assert st == 404
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    st, _, js = srv.request("PUT", "/v1/schemas/tree.node", {"schema": schema})
    assert st == 201, js


def test_version1_fixtures_recover_through_the_daemon(srv):
    """Issue 13 item 15: committed version-1 data directories (written once
    by tests/fixtures/make_v1.py) open, recover and read back: clean, with a
    torn tail, and with a flipped bit in the last record of each log."""
    skip_on_pg("on-disk fixtures of the embedded log")
    fx = os.path.join(ROOT, "tests", "fixtures", "v1")
    with open(os.path.join(fx, "expected.json")) as f:
        expected = json.load(f)["events"]
    for variant, n, group in [("clean", 5, True), ("torn", 4, False), ("flipped", 4, False)]:
        srv.stop()
        shutil.rmtree(srv.data)
        for log in ["events", "meta"]:
            shutil.copytree(os.path.join(fx, variant, log), os.path.join(srv.data, log))
        srv.start()
        st, _, js = srv.request("GET", "/v1/events?limit=100")
        assert st == 200, js
        got = [(e["id"], e["seq"], e["time"], e["key"], e["data"]) for e in js["events"]]
        want = [(e["id"], e["seq"], e["time"], f"k{i + 1}", {"n": i + 1})
                for i, e in enumerate(expected[:n])]
        assert got == want, (variant, got)
        st, _, js = srv.request("GET", "/v1/schemas/order.created")
        assert st == 200, (variant, js)
        st, _, js = srv.request("GET", "/v1/groups/billing")
        assert st == (200 if group else 404), (variant, st, js)
        if variant != "clean":
            assert "torn bytes truncated" in srv.log_tail()
        # the recovered log takes new events after the last good one
        st, _, js = srv.request("POST", "/v1/events", {"type": "order.created", "data": {"n": 9}})
        assert st == 201 and js["seq"] == n + 1, js


def test_schemas_survive_restart(srv):
    register(srv)
    srv.restart()
    st, _, one = srv.request("GET", "/v1/schemas/order.created")
    assert st == 200 and one["versions"] == [1]
    bad = order(1)
    del bad["data"]["currency"]
    st, _, _ = srv.request("POST", "/v1/events", bad)
    assert st == 422, "the registry is in force after a restart"


# --- crash safety ----------------------------------------------------------------

def test_kill9_during_publishing_loses_no_acknowledged_event(srv):
    acked = []
    lock = threading.Lock()
    stop = time.time() + 2.0

    def publisher(k):
        n = 0
        while time.time() < stop:
            n += 1
            ev = order(n)
            ev["id"] = f"p{k}-{n}"
            try:
                st, _, js = srv.request("POST", "/v1/events", ev, timeout=5)
            except OSError:
                return
            if st == 201:
                with lock:
                    acked.append((ev["id"], js["seq"]))

    threads = [threading.Thread(target=publisher, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    srv.kill9()
    for t in threads:
        t.join()
    assert len(acked) > 50, len(acked)
    srv.start()
    have = {}
    after = 0
    while True:
        st, _, page = srv.request("GET", f"/v1/events?limit=1000&after_seq={after}")
        for e in page["events"]:
            have[e["id"]] = e["seq"]
        if not page["next_after_seq"]:
            break
        after = page["next_after_seq"]
    lost = [(i, s) for i, s in acked if have.get(i) != s]
    assert not lost, f"{len(lost)} acknowledged events lost, e.g. {lost[:3]}"


if __name__ == "__main__":
    run_tests(globals())
