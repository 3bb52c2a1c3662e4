#!/usr/bin/env python3
"""What the dashboard (/ui/) stands on, black-box against a real eventbusd:
the per-group history (GET /v1/groups/{g}/history and --history-interval),
the replay preview (dry_run), and the files served at /ui/ (Content-Type,
ETag and 304, gzip). The pages themselves are tested in a browser by
tests/ui."""
import gzip
import json
import os
import re
import subprocess
import time

from harness import ROOT, Server, assert_flag_refused, run_tests

CLI = os.environ.get("EVENTBUS_CLI") or os.path.join(ROOT, "bin", "eventbus")


def cli(srv, *args):
    """The CLI with stdout piped (JSON); returns (rc, stdout, stderr)."""
    e = dict(os.environ, EVENTBUS_URL=f"http://127.0.0.1:{srv.port}")
    e.pop("EVENTBUS_OUTPUT", None)
    p = subprocess.run([CLI] + list(args), capture_output=True, text=True, env=e, timeout=30)
    return p.returncode, p.stdout, p.stderr


def put_group(srv, name, **cfg):
    cfg.setdefault("types", ["order.*"])
    st, _, body = srv.request("PUT", f"/v1/groups/{name}", cfg)
    assert st in (200, 201), (st, body)


def publish(srv, n):
    evs = [{"type": "order.created", "data": {"i": i}} for i in range(n)]
    st, _, body = srv.request("POST", "/v1/events/batch", evs)
    assert st == 201, (st, body)


def history(srv, group):
    st, _, body = srv.request("GET", f"/v1/groups/{group}/history")
    assert st == 200, (st, body)
    return body


def test_history_samples_lag_and_counter_changes(srv):
    srv.restart(["--history-interval", "200ms"])
    put_group(srv, "billing", start="earliest", max_attempts=1)
    publish(srv, 10)
    st, _, body = srv.request("POST", "/v1/groups/billing/pull", {"consumer": "c", "max": 4})
    ids = [e["delivery"]["id"] for e in body["events"]]
    srv.request("POST", "/v1/groups/billing/ack", {"ids": ids[:3]})
    srv.request("POST", "/v1/groups/billing/nack", {"ids": ids[3:], "error": "boom"})
    deadline = time.time() + 10
    while time.time() < deadline:
        h = history(srv, "billing")
        if h["samples"] and h["samples"][-1]["dead_letters"] == 1:
            break
        time.sleep(0.1)
    assert h["interval_ms"] == 200 and h["capacity"] == 720 and h["group"] == "billing", h
    s = h["samples"]
    last = s[-1]
    assert last["lag"] == 6 and last["dead_letters"] == 1, s
    # the counters are changes per interval: summed, they give the totals
    assert sum(x["acked"] for x in s) == 3 and sum(x["nacked"] for x in s) == 1, s
    assert sum(x["dead_lettered"] for x in s) == 1 and sum(x["delivered"] for x in s) == 4, s
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", x["ts"]) for x in s)
    assert [x["ts"] for x in s] == sorted(x["ts"] for x in s), "oldest first"


def test_history_follows_the_group(srv):
    # (the ring's bound, 720 samples, is checked in tests/unit/test_bus_history.c)
    srv.restart(["--history-interval", "100ms"])
    put_group(srv, "g", start="earliest")
    put_group(srv, "idle", types=["nothing.*"])
    publish(srv, 1)  # g has lag 1: activity; idle matches nothing published
    time.sleep(0.5)
    assert len(history(srv, "g")["samples"]) >= 2
    assert history(srv, "idle")["samples"] == [], "an idle group has no ring (no memory)"
    st, _, _ = srv.request("DELETE", "/v1/groups/g")
    assert st == 204
    st, _, body = srv.request("GET", "/v1/groups/g/history")
    assert st == 404 and body["error"]["code"] == "not_found", (st, body)
    put_group(srv, "g")  # a new group of the same name starts a new history
    h = history(srv, "g")
    assert len(h["samples"]) <= 1, h
    st, _, body = srv.request("GET", "/v1/groups/nope/history")
    assert st == 404, (st, body)


def test_history_groups_bound(srv):
    # --history-groups 1: of two active groups one gets a ring, the other
    # answers no samples; the flag's range is checked
    srv.restart(["--history-interval", "100ms", "--history-groups", "1"])
    put_group(srv, "a", start="earliest")
    put_group(srv, "b", start="earliest")
    publish(srv, 1)
    time.sleep(0.5)
    n = sorted(len(history(srv, g)["samples"]) for g in ("a", "b"))
    assert n[0] == 0 and n[1] >= 2, n
    assert_flag_refused(srv, "--history-groups", ["0", "x", "2000000"])


def test_history_interval_flag_is_checked(srv):
    assert_flag_refused(srv, "--history-interval", ["0", "50ms", "2h", "soon"])


def test_replay_dry_run_counts_and_changes_nothing(srv):
    put_group(srv, "a", start="earliest")
    publish(srv, 12)
    st, _, body = srv.request("POST", "/v1/groups/a/replay", {"since": {"seq": 0}, "dry_run": True})
    assert st == 200 and body == {"requeued": 12, "expired": 0}, (st, body)
    st, _, g = srv.request("GET", "/v1/groups/a")
    assert g["counters"]["replayed"] == 0 and g["lag"] == 12, g
    st, _, body = srv.request("POST", "/v1/groups/a/replay",
                              {"since": {"seq": 0}, "types": ["order.shipped"], "dry_run": True})
    assert st == 200 and body["requeued"] == 0, body
    st, _, body = srv.request("POST", "/v1/groups/a/replay", {"since": "1h", "dry_run": "yes"})
    assert st == 400 and body["error"]["details"][0]["field"] == "/dry_run", (st, body)
    st, _, body = srv.request("POST", "/v1/groups/a/replay", {"since": {"seq": 0}, "dry_run": False})
    assert st == 200 and body["requeued"] == 12, body
    st, _, g = srv.request("GET", "/v1/groups/a")
    assert g["counters"]["replayed"] == 12, g


def test_cli_history_and_replay_dry_run(srv):
    srv.restart(["--history-interval", "100ms"])
    put_group(srv, "a", start="earliest")
    publish(srv, 4)
    time.sleep(0.35)
    rc, out, err = cli(srv, "groups", "history", "a")
    assert rc == 0, (rc, out, err)
    h = json.loads(out)
    assert h["interval_ms"] == 100 and len(h["samples"]) >= 2 and h["samples"][-1]["lag"] == 4, h
    rc, out, err = cli(srv, "replay", "a", "--since", "1h", "--dry-run")
    assert rc == 0 and json.loads(out) == {"requeued": 4, "expired": 0}, (rc, out, err)
    st, _, g = srv.request("GET", "/v1/groups/a")
    assert g["counters"]["replayed"] == 0, g
    rc, out, err = cli(srv, "groups", "history", "nope")
    assert rc == 1 and "not_found" in err, (rc, out, err)
    rc, out, err = cli(srv, "groups", "history")
    assert rc == 2 and "GROUP" in err, (rc, out, err)


def test_overview_pages_filters_and_totals(srv):
    for name in ["b-2", "a-1", "c-3", "b-1"]:
        put_group(srv, name, start="earliest")
    publish(srv, 3)
    srv.request("POST", "/v1/groups/a-1/pull", {"consumer": "x", "max": 1})
    srv.request("POST", "/v1/groups/c-3/pause")
    st, _, o = srv.request("GET", "/v1/overview")
    assert st == 200, (st, o)
    assert [g["name"] for g in o["groups"]] == ["a-1", "b-1", "b-2", "c-3"], o
    t = o["totals"]
    assert t == {"groups": 4, "matching": 4, "paused": 1, "lag": 12, "dead_letters": 0,
                 "delivered": 1, "acked": 0}, t
    assert o["events"]["published"] == 3 and o["events"]["head_seq"] == 4, o
    a = o["groups"][0]
    assert a["consumers"] == 1 and a["in_flight"] == 1 and a["lag"] == 3, a
    st, _, o = srv.request("GET", "/v1/overview?limit=2&offset=1")
    assert [g["name"] for g in o["groups"]] == ["b-1", "b-2"] and o["offset"] == 1, o
    st, _, o = srv.request("GET", "/v1/overview?q=b-")
    assert [g["name"] for g in o["groups"]] == ["b-1", "b-2"], o
    assert o["totals"]["matching"] == 2 and o["totals"]["groups"] == 4, o
    st, _, o = srv.request("GET", "/v1/overview?offset=9")
    assert st == 200 and o["groups"] == [], o
    for q, field in [("limit=0", "?limit"), ("limit=1001", "?limit"), ("offset=x", "?offset"),
                     ("q=%zz", "?q"), ("q=" + "a" * 129, "?q")]:
        st, _, body = srv.request("GET", "/v1/overview?" + q)
        assert st == 400 and body["error"]["details"][0]["field"] == field, (q, st, body)


def raw_get(srv, path, headers=""):
    out = srv.raw(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode())
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {k.lower(): v for k, v in (l.split(": ", 1) for l in lines[1:])}
    return int(lines[0].split()[1]), hdrs, body


def test_ui_files_types_etag_gzip(srv):
    st, h, body = srv.request("GET", "/ui/")
    assert st == 200 and h["content-type"].startswith("text/html"), (st, h)
    assert "<title>eventbus</title>" in body and 'src="app.js"' in body
    st, h, _ = srv.request("GET", "/ui")
    assert st == 308 and h["location"] == "/ui/", (st, h)
    for name, ctype in [("app.js", "text/javascript"), ("app.css", "text/css"),
                        ("index.html", "text/html")]:
        st, h, plain = raw_get(srv, "/ui/" + name)
        assert st == 200 and h["content-type"].startswith(ctype), (name, st, h)
        assert h["cache-control"] == "no-cache" and h["etag"].startswith('"'), h
        assert h["content-security-policy"].startswith("default-src 'self'"), h
        assert h["x-content-type-options"] == "nosniff", h
        assert int(h["content-length"]) == len(plain) and "content-encoding" not in h
        st, hz, z = raw_get(srv, "/ui/" + name, "Accept-Encoding: br, gzip\r\n")
        assert st == 200 and hz["content-encoding"] == "gzip" and len(z) < len(plain), hz
        assert "content-security-policy" in hz and hz["vary"] == "Accept-Encoding", hz
        assert gzip.decompress(z) == plain
        st, _, z = raw_get(srv, "/ui/" + name, "Accept-Encoding: gzip;q=0\r\n")
        assert z == plain, "gzip;q=0 is a no"
        st, h304, b = raw_get(srv, "/ui/" + name, f"If-None-Match: {h['etag']}\r\n")
        assert st == 304 and b == b"" and h304["etag"] == h["etag"], (st, h304)
        st, _, _ = raw_get(srv, "/ui/" + name, 'If-None-Match: "stale"\r\n')
        assert st == 200
    st, _, body = srv.request("GET", "/ui/nope.js")
    assert st == 404 and body["error"]["code"] == "not_found", (st, body)
    st, _, body = srv.request("GET", "/ui/../v1/stats")
    assert st in (404, 400), st


if __name__ == "__main__":
    run_tests(globals())
