#!/usr/bin/env python3
"""The contract check itself (harness.Contract): it must catch every kind of
mismatch with docs/openapi.yaml, and pass a server's real answers. Each test
feeds a fresh Contract crafted answers and runs the batch validator."""
import json

import harness
from harness import run_tests

ERR = lambda code: json.dumps({"error": {"code": code, "message": "m", "details": []}}).encode()
JSON = {"content-type": "application/json"}


def problems(*answers):
    c = harness.Contract(harness.CONTRACT_PATH)
    for method, path, status, headers, body in answers:
        c.check(method, path, status, headers, body)
    return [m for _, m in c.finish()]


def test_real_answers_pass(srv):
    c = harness.Contract(harness.CONTRACT_PATH)
    for args in [("GET", "/healthz", None), ("GET", "/v1/stats", None), ("GET", "/nope", None),
                 ("PATCH", "/v1/stats", None), ("POST", "/v1/events", {"type": "a.b", "data": 1}),
                 ("DELETE", "/v1/groups/none", None), ("GET", "/metrics", None)]:
        st, hdrs, body = srv.request(args[0], args[1], args[2])
        raw = body.encode() if isinstance(body, str) else (json.dumps(body).encode() if body is not None else b"")
        c.check(args[0], args[1], st, hdrs, raw)
    assert c.finish() == [], c.problems
    assert len(c.bodies) == 7


def test_unknown_status_and_route(srv):
    p = problems(("GET", "/v1/stats", 201, JSON, b"{}"),
                 ("GET", "/nope", 200, JSON, b"{}"),
                 ("PATCH", "/v1/stats", 404, JSON, ERR("not_found")))
    assert len(p) == 3, p
    assert "status not in the contract" in p[0]
    assert "unknown-path must answer 404" in p[1]
    assert "unknown-method must answer 405" in p[2]


def test_wrong_bodies(srv):
    p = problems(("GET", "/healthz", 200, JSON, b'{"status":"fine"}'),
                 ("POST", "/v1/events", 201, JSON, b'{"id":"x","seq":0,"time":"t"}'),
                 ("POST", "/v1/events", 422, JSON, ERR("not_found")),
                 ("GET", "/v1/groups", 200, JSON, b'{"groups":[],"extra":1}'),
                 ("DELETE", "/v1/groups/g", 204, {}, b"{}"),
                 ("GET", "/v1/stats", 200, {"content-type": "text/plain"}, b"{}"),
                 ("GET", "/v1/stats", 200, JSON, b"not json"))
    assert len(p) == 7, p
    assert all(("FAIL" in m or "body" in m or "Content-Type" in m) for m in p), p


run_tests(globals())
