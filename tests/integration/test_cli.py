#!/usr/bin/env python3
"""The `eventbus` CLI against a real eventbusd (issue 6): every command,
--help everywhere, output modes (JSON when piped, tables on a terminal),
exit codes 0/1/2/3, the progress bar of `publish --file` on a terminal,
`tail` following and stopping on SIGINT, and `top`. Also (issue 14) global
options in any position, and the flags of eventbusd and eventbus-log.

Each test gets its own server (see harness.py). The CLI binary comes from
$EVENTBUS_CLI (set by meson) or bin/eventbus.
"""
import json
import os
import pty
import re
import select
import signal
import subprocess
import tempfile
import time

from harness import DAEMON, ROOT, Server, free_port, run_tests

CLI = os.environ.get("EVENTBUS_CLI") or os.path.join(ROOT, "bin", "eventbus")
EVENTBUS_LOG = os.environ.get("EVENTBUS_LOG") or os.path.join(ROOT, "bin", "eventbus-log")

ORDER_SCHEMA = {
    "type": "object",
    "required": ["orderId", "amount", "currency"],
    "properties": {
        "orderId": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    },
}


def run(srv, *args, stdin=None, env=None, url=None, timeout=30):
    """Runs the CLI with stdout/stderr piped; returns (rc, stdout, stderr)."""
    e = dict(os.environ)
    e.pop("EVENTBUS_OUTPUT", None)
    e["EVENTBUS_URL"] = url or f"http://127.0.0.1:{srv.port}"
    e.update(env or {})
    p = subprocess.run([CLI] + list(args), input=stdin, capture_output=True, text=True,
                       env=e, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def run_tty(srv, *args, tty_stdout=True, tty_stderr=False, timeout=30, on_output=None):
    """Runs the CLI with stdout and/or stderr on a pseudo-terminal; returns
    (rc, what the terminal showed, the other stream). on_output(shown) is
    called with what the terminal showed so far each time more came."""
    master, slave = pty.openpty()
    e = dict(os.environ)
    e.pop("EVENTBUS_OUTPUT", None)
    e["EVENTBUS_URL"] = f"http://127.0.0.1:{srv.port}"
    p = subprocess.Popen([CLI] + list(args), env=e,
                         stdout=slave if tty_stdout else subprocess.PIPE,
                         stderr=slave if tty_stderr else subprocess.PIPE)
    os.close(slave)
    shown = b""
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if on_output:
                on_output(shown)
        elif p.poll() is not None:
            break
    os.close(master)
    other = (p.stderr if tty_stdout else p.stdout).read()
    rc = p.wait(timeout=timeout)
    return rc, shown.decode(errors="replace").replace("\r\n", "\n"), other.decode()


def ok(srv, *args, **kw):
    rc, out, err = run(srv, *args, **kw)
    assert rc == 0, (args, rc, out, err)
    return out


def js(srv, *args, **kw):
    """Runs a command (piped, so JSON) and parses every output line."""
    out = ok(srv, *args, **kw)
    vals = [json.loads(line) for line in out.splitlines() if line.strip()]
    return vals[0] if len(vals) == 1 else vals


def schema_file(schema):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(schema, f)
    f.close()
    return f.name


def order(i, **extra):
    d = {"orderId": f"A-{i}", "amount": i, "currency": "EUR"}
    d.update(extra)
    return json.dumps(d)


# --- help, usage, exit codes -------------------------------------------------

COMMANDS = ["publish", "tail", "schemas", "groups", "dlq", "replay", "stats", "top", "events"]


def test_help_everywhere(srv):
    rc, out, _ = run(srv, "--help")
    assert rc == 0 and out.startswith("Usage: eventbus") and "Exit codes" in out
    for c in COMMANDS:
        rc, out, err = run(srv, c, "--help")
        assert rc == 0 and out.startswith(f"Usage: eventbus {c}"), (c, out, err)
    for args in (["groups", "create", "--help"], ["schemas", "register", "-h"],
                 ["dlq", "list", "g", "--help"], ["publish", "x.y", "--help"]):
        rc, out, _ = run(srv, *args)
        assert rc == 0 and out.startswith("Usage: eventbus"), args
    rc, out, _ = run(srv, "--version")
    assert rc == 0 and out.startswith("eventbus 0.")


def test_usage_errors_exit_2(srv):
    cases = [[], ["nope"], ["--bogus", "stats"], ["publish"], ["publish", "a.b", "{bad"],
             ["publish", "a.b", "1", "--batch", "5"], ["publish", "a.b", "--file", "/nonexistent"],
             ["publish", "a.b", "--nope"], ["tail"], ["tail", "g", "--type", "t"],
             ["groups"], ["groups", "create", "g"], ["groups", "show"], ["groups", "frob", "g"],
             ["groups", "update", "g"], ["schemas", "register", "t"], ["dlq", "list"],
             ["dlq", "purge", "g", "--id", "a", "--id", "b"], ["replay", "g"],
             ["replay", "g", "--since", "1h", "--since-seq", "3"], ["stats", "x"],
             ["top", "--interval", "1ms"], ["--timeout", "soon", "stats"],
             ["--url", "ftp://x:1", "stats"], ["--url", "https://x:1", "--cacert", "/none", "stats"],
             ["--token", "a b", "stats"]]
    for args in cases:
        rc, out, err = run(srv, *args)
        assert rc == 2, (args, rc, out, err)
        assert err.strip(), args
        assert not out.strip(), (args, out)


def test_unreachable_exit_3(srv):
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["stats"], ["publish", "a.b", "1"], ["groups", "list"]):
        rc, out, err = run(srv, *args, url=url)
        assert rc == 3, (args, rc, err)
        assert "cannot connect" in err and url in err, err
    # reachable, but the URL's path prefix is not served: the server says no
    rc, _, err = run(srv, "--url", f"http://127.0.0.1:{srv.port}/nothing", "stats")
    assert rc == 1 and "not_found" in err, err


# --- publish ---------------------------------------------------------------------

def test_publish_one(srv):
    r = js(srv, "publish", "order.created", order(1), "--key", "cust-1", "--source", "shop",
           "--id", "ord-1", "--correlation-id", "req-9")
    assert r["id"] == "ord-1" and r["seq"] >= 1 and r["time"].endswith("Z")
    st, _, ev = srv.request("GET", "/v1/events/ord-1")
    assert st == 200 and ev["key"] == "cust-1" and ev["source"] == "shop"
    assert ev["correlationId"] == "req-9" and ev["data"]["orderId"] == "A-1"
    # a repeat is the same source + id (CloudEvents uniqueness)
    again = js(srv, "publish", "order.created", order(1), "--id", "ord-1", "--source", "shop")
    assert again["duplicate"] is True and again["seq"] == r["seq"]
    r2 = js(srv, "publish", "order.created", "-", stdin=order(2))
    assert r2["seq"] == r["seq"] + 1
    r3 = js(srv, "publish", "cache.flushed")  # no data: null
    st, _, ev = srv.request("GET", f"/v1/events/{r3['id']}")
    assert ev["data"] is None
    out = ok(srv, "--table", "publish", "order.created", order(3))
    assert out.startswith("published order.created  seq ") and " id " in out


def test_events_get_and_stream(srv):
    for v in range(4):
        r = js(srv, "publish", "acct.posted", json.dumps({"n": v}), "--key", "acct 1",
               "--expected-version", str(v))
        assert r["key_version"] == v + 1, r
    js(srv, "publish", "acct.posted", "{}", "--key", "acct 2", "--id", "a2-first")
    rc, out, err = run(srv, "publish", "acct.posted", "{}", "--key", "acct 1",
                       "--expected-version", "2")
    assert rc == 1 and "version_conflict" in err and "current version is 4" in err, err
    evs = js(srv, "events", "stream", "acct 1")
    assert [e["key_version"] for e in evs] == [1, 2, 3, 4]
    assert [e["data"]["n"] for e in evs] == [0, 1, 2, 3]
    evs = js(srv, "events", "stream", "acct 1", "--from-version", "2", "--limit", "2")
    assert [e["key_version"] for e in evs] == [2, 3]
    assert ok(srv, "events", "stream", "nobody") == ""
    e = js(srv, "events", "get", "a2-first")
    assert e["key"] == "acct 2" and e["key_version"] == 1
    out = ok(srv, "--table", "events", "stream", "acct 1", "--limit", "1")
    assert "key=acct 1 v1" in out and out.count("\n") == 1, out
    rc, _, err = run(srv, "events", "get", "nope")
    assert rc == 1 and "not_found" in err, err
    # The same id from two sources and from none: --source picks one.
    js(srv, "publish", "acct.posted", '{"s":1}', "--id", "a2-first", "--source", "svc one")
    js(srv, "publish", "acct.posted", '{"s":2}', "--id", "a2-first", "--source", "svc+two")
    assert js(srv, "events", "get", "a2-first", "--source", "svc one")["data"] == {"s": 1}
    assert js(srv, "events", "get", "a2-first", "--source", "svc+two")["data"] == {"s": 2}
    assert js(srv, "events", "get", "a2-first", "--source", "")["key"] == "acct 2"
    assert js(srv, "events", "get", "a2-first")["data"] == {"s": 2}
    rc, _, err = run(srv, "events", "get", "a2-first", "--source", "svc three")
    assert rc == 1 and "not_found" in err, err
    for bad in (["events"], ["events", "get"], ["events", "list"], ["events", "get", "a", "b"],
                ["events", "get", "x", "--limit", "2"], ["events", "stream", "k", "--limit", "0"],
                ["events", "stream", "k", "--source", "s"],
                ["publish", "a.b", "--expected-version", "1"]):
        rc, _, err = run(srv, *bad)
        assert rc == 2, (bad, rc, err)


def test_publish_refused_exit_1(srv):
    ok(srv, "schemas", "register", "order.created", schema_file(ORDER_SCHEMA))
    rc, out, err = run(srv, "publish", "order.created", json.dumps({"orderId": "A", "amount": 1}))
    assert rc == 1, (rc, err)
    assert "schema_violation" in err and "/data/currency" in err, err
    assert out == ""
    st, _, body = srv.request("GET", "/v1/events")
    assert body["events"] == [], "nothing was written"


def write_lines(lines):
    f = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
    f.write("\n".join(lines) + "\n")
    f.close()
    return f.name


def test_publish_file(srv):
    path = write_lines([order(i) for i in range(1200)] + ["", "  "])
    r = js(srv, "publish", "order.created", "--file", path, "--batch", "500", "--key", "k")
    assert r["published"] == 1200 and r["last_seq"] - r["first_seq"] == 1199, r
    st, _, body = srv.request("GET", f"/v1/events?after_seq={r['last_seq'] - 1}")
    assert body["events"][0]["data"]["orderId"] == "A-1199" and body["events"][0]["key"] == "k"
    # whole envelopes, from stdin
    env_lines = [json.dumps({"type": "user.created", "data": {"n": i}, "id": f"u{i}"})
                 for i in range(3)]
    r = js(srv, "publish", "--file", "-", stdin="\n".join(env_lines))
    assert r["published"] == 3
    st, _, ev = srv.request("GET", "/v1/events/u2")
    assert st == 200 and ev["data"] == {"n": 2}
    out = ok(srv, "--table", "publish", "--file", "-", stdin="\n".join(env_lines))
    assert "published 3 events" in out and "3 of them duplicates" in out, out


def test_publish_file_refusals_name_lines(srv):
    ok(srv, "schemas", "register", "order.created", schema_file(ORDER_SCHEMA))
    lines = [order(i) for i in range(4)] + [json.dumps({"orderId": "x", "amount": 1})] + \
            [order(9)]
    rc, out, err = run(srv, "publish", "order.created", "--file", write_lines(lines),
                       "--batch", "3")
    assert rc == 1, (rc, err)
    assert "lines 4-6 were not published (3 events before them were)" in err, err
    assert "line 5: /data/currency" in err, err
    st, _, body = srv.request("GET", "/v1/events")
    assert len(body["events"]) == 3, "the first batch stays, the refused one wrote nothing"
    rc, out, err = run(srv, "publish", "order.created", "--file",
                       write_lines([order(1), "{oops"]))
    assert rc == 2 and "line 2: malformed JSON" in err, (rc, err)


def test_publish_file_progress_bar_on_a_terminal(srv):
    path = write_lines([order(i) for i in range(3000)])
    rc, shown, out = run_tty(srv, "publish", "order.created", "--file", path, "--batch", "100",
                             tty_stdout=False, tty_stderr=True)
    assert rc == 0, (rc, shown)
    assert "\r[" in shown and "100%" in shown and "3000 events" in shown, shown[-300:]
    assert json.loads(out)["published"] == 3000
    # not a terminal: no bar at all
    rc, out, err = run(srv, "publish", "order.created", "--file", path)
    assert rc == 0 and err == "", err


# --- output modes ------------------------------------------------------------------

def test_tables_on_a_terminal_json_when_piped(srv):
    ok(srv, "groups", "create", "inventory", "--types", "order.created")
    rc, shown, _ = run_tty(srv, "groups", "list")
    assert rc == 0
    lines = shown.strip().splitlines()
    assert lines[0].split() == ["GROUP", "PAUSED", "LAG", "READY", "IN-FLIGHT", "RETRYING",
                                "DLQ"], shown
    assert lines[1].split() == ["inventory", "no", "0", "0", "0", "0", "0"], shown
    body = js(srv, "groups", "list")
    assert body["groups"][0]["name"] == "inventory"
    rc, shown, _ = run_tty(srv, "--json", "groups", "list")
    assert json.loads(shown)["groups"][0]["name"] == "inventory"
    out = ok(srv, "groups", "list", env={"EVENTBUS_OUTPUT": "table"})
    assert out.startswith("GROUP")


# --- schemas --------------------------------------------------------------------

def test_schemas(srv):
    path = schema_file(ORDER_SCHEMA)
    out = ok(srv, "--table", "schemas", "register", "order.created", path)
    assert out.strip() == "order.created: registered version 1 (backward)", out
    r = js(srv, "schemas", "register", "order.created", path)
    assert r == {"type": "order.created", "version": 1, "compatibility": "backward",
                 "existing": True}
    breaking = dict(ORDER_SCHEMA, required=ORDER_SCHEMA["required"] + ["customerId"])
    bpath = schema_file(breaking)
    rc, out, err = run(srv, "--table", "schemas", "check", "order.created", bpath)
    assert rc == 1 and "NOT compatible" in out and "customerId" in out, (rc, out)
    rc, out, err = run(srv, "schemas", "register", "order.created", bpath)
    assert rc == 1 and "incompatible_schema" in err and "customerId" in err, err
    rc, out, err = run(srv, "--table", "schemas", "check", "order.created", path)
    assert rc == 0 and "order.created: compatible" in out, out
    r = js(srv, "schemas", "register", "order.created", bpath, "--compat", "none")
    assert r["version"] == 2
    lst = js(srv, "schemas", "list")
    assert lst["schemas"][0]["versions"] == [1, 2]
    out = ok(srv, "--table", "schemas", "list")
    assert out.splitlines()[1].split() == ["order.created", "none", "1,2"], out
    out = ok(srv, "--table", "schemas", "show", "order.created", "--version", "1")
    assert "version:        1" in out and '"currency"' in out and "customerId" not in out
    rc, _, err = run(srv, "schemas", "show", "no.such")
    assert rc == 1 and "not_found" in err


# --- groups, tail, dlq, replay ---------------------------------------------------------

def test_groups_lifecycle(srv):
    r = js(srv, "groups", "create", "billing", "--types", "order.created,payment.*",
           "--max-attempts", "5", "--ack-timeout", "10s", "--backoff-initial", "200ms",
           "--jitter", "0", "--ordering", "key")
    assert r["created"] is True
    cfg = r["config"]
    assert cfg["types"] == ["order.created", "payment.*"] and cfg["max_attempts"] == 5
    assert cfg["ack_timeout_ms"] == 10000 and cfg["backoff"]["initial_ms"] == 200
    assert cfg["backoff"]["jitter"] == 0 and cfg["ordering"] == "key"
    rc, _, err = run(srv, "groups", "create", "billing", "--types", "x")
    assert rc == 1 and "exists" in err
    r = js(srv, "groups", "update", "billing", "--max-attempts", "7")
    cfg = r["config"]
    assert r["created"] is False and cfg["max_attempts"] == 7
    assert cfg["types"] == ["order.created", "payment.*"] and cfg["ack_timeout_ms"] == 10000, cfg
    assert cfg["backoff"]["jitter"] == 0 and cfg["ordering"] == "key", cfg
    # set = update: a merge patch, the nested backoff members not given are kept
    r = js(srv, "groups", "set", "billing", "--backoff-max", "9s")
    cfg = r["config"]
    assert cfg["backoff"]["max_ms"] == 9000 and cfg["backoff"]["initial_ms"] == 200, cfg
    assert cfg["max_attempts"] == 7 and cfg["ordering"] == "key", cfg
    rc, _, err = run(srv, "groups", "set", "nope", "--max-attempts", "2")
    assert rc == 1 and "not_found" in err, err
    out = ok(srv, "--table", "groups", "show", "billing")
    assert "types:          order.created,payment.*" in out and "max attempts:   7" in out
    assert js(srv, "groups", "pause", "billing") == {"group": "billing", "paused": True}
    assert js(srv, "groups", "show", "billing")["paused"] is True
    ok(srv, "groups", "resume", "billing")
    assert js(srv, "groups", "show", "billing")["paused"] is False
    out = ok(srv, "--table", "groups", "delete", "billing")
    assert out.strip() == "deleted group billing"
    rc, _, err = run(srv, "groups", "show", "billing")
    assert rc == 1 and "not_found" in err
    rc, _, err = run(srv, "groups", "create", "bad name", "--types", "x")
    assert rc == 1 and "invalid_request" in err, err


def test_tail_group_acks(srv):
    ok(srv, "groups", "create", "g", "--types", "order.created")
    for i in range(3):
        ok(srv, "publish", "order.created", order(i))
    evs = js(srv, "tail", "g", "-n", "3")
    assert [e["data"]["orderId"] for e in evs] == ["A-0", "A-1", "A-2"]
    assert all(e["delivery"]["attempt"] == 1 for e in evs)
    g = js(srv, "groups", "show", "g")
    assert g["lag"] == 0 and g["in_flight"] == 0 and g["counters"]["acked"] == 3, g
    out = ok(srv, "--table", "publish", "order.created", order(7))
    out = ok(srv, "--table", "tail", "g", "-n", "1", "--consumer", "me")
    assert "order.created" in out and '"A-7"' in out and out.startswith("#"), out


def test_tail_no_ack_leaves_them_leased(srv):
    ok(srv, "groups", "create", "g", "--types", "order.created", "--ack-timeout", "60s")
    ok(srv, "publish", "order.created", order(1))
    ev = js(srv, "tail", "g", "--no-ack", "-n", "1")
    assert ev["data"]["orderId"] == "A-1"
    g = js(srv, "groups", "show", "g")
    assert g["in_flight"] == 1 and g["counters"]["acked"] == 0, g
    out = ok(srv, "tail", "g", "--no-ack", "--idle", "300ms")
    assert out == "", "a leased event is not delivered again before its deadline"


def test_tail_stops_on_sigint(srv):
    ok(srv, "groups", "create", "g", "--types", "order.created")
    e = dict(os.environ, EVENTBUS_URL=f"http://127.0.0.1:{srv.port}")
    for args in (["tail", "g"], ["tail", "g", "--no-ack"], ["tail", "--type", "order.created"]):
        p = subprocess.Popen([CLI] + args, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.4)
        t0 = time.time()
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=10)
        assert rc == 0, (args, rc, p.stderr.read())
        assert time.time() - t0 < 2, (args, "the long poll was cut short")


def test_tail_type_follows_the_log(srv):
    ok(srv, "publish", "order.created", order(1))
    ok(srv, "publish", "user.created", "{}")
    evs = js(srv, "tail", "--type", "order.created", "--since", "1h", "-n", "1")
    assert evs["data"]["orderId"] == "A-1"
    # from now on: the old event is not printed, a new one is
    e = dict(os.environ, EVENTBUS_URL=f"http://127.0.0.1:{srv.port}")
    p = subprocess.Popen([CLI, "tail", "--type", "order.created", "-n", "1"], env=e,
                         stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    ok(srv, "publish", "order.created", order(2))
    out, _ = p.communicate(timeout=10)
    assert p.returncode == 0 and json.loads(out)["data"]["orderId"] == "A-2", out


def nack_all(srv, group):
    st, _, body = srv.request("POST", f"/v1/groups/{group}/pull",
                              {"consumer": "c", "max": 100, "wait_ms": 2000})
    ids = [e["delivery"]["id"] for e in body["events"]]
    st, _, body = srv.request("POST", f"/v1/groups/{group}/nack",
                              {"ids": ids, "error": "smtp: bad address"})
    assert st == 200 and body["nacked"] == len(ids), body
    return len(ids)


def test_dlq(srv):
    ok(srv, "groups", "create", "notify", "--types", "order.created", "--max-attempts", "1")
    for i in range(3):
        ok(srv, "publish", "order.created", order(i), "--id", f"o{i}")
    assert nack_all(srv, "notify") == 3
    page = js(srv, "dlq", "list", "notify")
    assert [d["event"]["id"] for d in page["dead_letters"]] == ["o0", "o1", "o2"]
    pages = js(srv, "dlq", "list", "notify", "--limit", "2", "--all")
    assert len(pages) == 2 and len(pages[0]["dead_letters"]) == 2, pages
    out = ok(srv, "--table", "dlq", "list", "notify")
    rows = out.splitlines()
    assert rows[0].split()[:4] == ["EVENT-ID", "TYPE", "ATTEMPTS", "FAILED-AT"], out
    assert rows[1].startswith("o0") and rows[1].endswith("smtp: bad address"), out
    assert js(srv, "dlq", "redrive", "notify", "--id", "o1") == {"redriven": 1}
    ev = js(srv, "tail", "notify", "-n", "1")
    assert ev["id"] == "o1"
    out = ok(srv, "--table", "dlq", "purge", "notify", "--id", "o0")
    assert out.strip() == "purged 1 dead letter of notify"
    assert js(srv, "dlq", "purge", "notify") == {"purged": 1}
    out = ok(srv, "--table", "dlq", "list", "notify")
    assert out.strip() == "no dead letters in notify"


def test_replay(srv):
    for i in range(4):
        ok(srv, "publish", "order.created", order(i))
    ok(srv, "groups", "create", "analytics", "--types", "order.created")
    assert js(srv, "replay", "analytics", "--since", "2h") == {"requeued": 4, "expired": 0}
    evs = js(srv, "tail", "analytics", "-n", "4")
    assert [e["data"]["orderId"] for e in evs] == ["A-0", "A-1", "A-2", "A-3"]
    out = ok(srv, "--table", "replay", "analytics", "--since-seq", "3")
    assert out.strip() == "requeued 2 events for analytics", out
    rc, _, err = run(srv, "replay", "analytics", "--since", "soon")
    assert rc == 1 and "since" in err, err


def test_stats_and_top(srv):
    ok(srv, "groups", "create", "g", "--types", "order.created")
    for i in range(5):
        ok(srv, "publish", "order.created", order(i))
    st = js(srv, "stats")
    assert st["events"]["published"] == 5 and st["groups"][0]["lag"] == 5
    out = ok(srv, "--table", "stats")
    assert out.startswith("events:  5 published; log holds seq 1..5"), out
    assert out.splitlines()[3].split()[:6] == ["g", "no", "5", "0", "0", "0"], out
    snaps = js(srv, "top", "-n", "2", "--interval", "300ms")
    assert len(snaps) == 2 and snaps[0]["published_per_s"] is None
    assert snaps[1]["published_per_s"] == 0 and snaps[1]["head_seq"] == 6
    g = snaps[1]["groups"][0]
    assert g["name"] == "g" and g["lag"] == 5 and g["delivered_per_s"] == 0, g
    rc, shown, _ = run_tty(srv, "top", "-n", "2", "--interval", "200ms")
    assert rc == 0 and "\x1b[2J" in shown and "eventbus top" in shown, shown
    assert "GROUP" in shown and "DELIV/S" in shown and "\ng " in shown, shown



def human_bytes(b):
    """The size as `eventbus stats` and `top` write it (cli/stats.c)."""
    v, u = float(b), 0
    while v >= 1024 and u < 4:
        v /= 1024
        u += 1
    return ("%.1f %s" if u else "%.0f %s") % (v, ["B", "KiB", "MiB", "GiB", "TiB"][u])


def test_top_puts_each_value_in_its_place(srv):
    """Issue 14.1: after the first screen the log size showed the publish
    rate. Two screens, with 40 events published between them, so that the
    rate, the head seq and the log size all differ; each is checked where
    it belongs."""
    ok(srv, "groups", "create", "g", "--types", "order.created")
    for i in range(3):
        ok(srv, "publish", "order.created", order(i))
    published = []

    def publish_after_first_screen(shown):
        if not published and b"GROUP" in shown:
            batch = [{"type": "order.created", "data": json.loads(order(i))}
                     for i in range(10, 50)]
            published.append(srv.request("POST", "/v1/events/batch", batch)[0])

    rc, shown, err = run_tty(srv, "top", "-n", "2", "--interval", "3s",
                             on_output=publish_after_first_screen)
    assert rc == 0 and published == [201], (rc, published, shown, err)
    screens = shown.split("\x1b[2J")[1:]
    assert len(screens) == 2, screens
    st = srv.request("GET", "/v1/stats")[2]["events"]
    line = re.compile(r"published/s: (\S+)   head seq: (\d+)   log: (.+)")
    first = [m for m in map(line.fullmatch, screens[0].splitlines()) if m][0]
    assert first.group(1) == "-" and first.group(2) == "4", screens[0]
    second = [m for m in map(line.fullmatch, screens[1].splitlines()) if m][0]
    assert second.group(2) == "44" and st["head_seq"] == 44, screens[1]
    assert second.group(3) == human_bytes(st["bytes"]), (screens[1], st["bytes"])
    rate = float(second.group(1))
    assert 40 / 30 < rate <= 40 / 2.9, screens[1]  # 40 events in one 3 s interval
    row = [ln.split() for ln in screens[1].splitlines() if ln.startswith("g ")][0]
    assert row[:6] == ["g", "43", "43", "0", "0", "0"], screens[1]  # lag, ready (all of it)


# --- global options anywhere (issue 14.4) -------------------------------------

def test_global_options_after_the_command(srv):
    ok(srv, "groups", "create", "g", "--types", "order.created")
    ok(srv, "publish", "order.created", order(1))
    # --json after the command, after its arguments, with = forms
    for args in (["stats", "--json"], ["groups", "list", "--json"],
                 ["groups", "show", "g", "--json"], ["top", "--json", "-n", "1"],
                 ["top", "-n", "1", "--json"]):
        rc, out, err = run_tty_json(srv, *args)
        assert rc == 0, (args, err)
        json.loads(out.strip().splitlines()[-1])
    # --table after the command, in a pipe
    out = ok(srv, "stats", "--table")
    assert out.startswith("events:  1 published"), out
    out = ok(srv, "groups", "list", "--table")
    assert out.startswith("NAME") or out.startswith("GROUP"), out
    # --url and --timeout after the command win over $EVENTBUS_URL
    dead = f"http://127.0.0.1:{free_port()}"
    good = f"http://127.0.0.1:{srv.port}"
    st = js(srv, "stats", "--url", good, "--timeout", "5s", url=dead)
    assert st["events"]["published"] == 1
    st = js(srv, "groups", "show", "--url=" + good, "g", "--timeout=5s", url=dead)
    assert st["name"] == "g"
    rc, _, err = run(srv, "stats", url=dead)
    assert rc == 3, err
    # the last of --json/--table wins, wherever they are
    out = ok(srv, "--json", "stats", "--table")
    assert out.startswith("events:"), out
    # "--" ends the options: after it --json is an argument of the command
    rc, out, err = run(srv, "stats", "--", "--json")
    assert rc == 2 and "no arguments" in err, (rc, out, err)
    rc, out, err = run(srv, "--", "stats")
    assert rc == 0 and json.loads(out)["events"]["published"] == 1, (rc, out, err)
    # a command option's value that looks like a global one: the = form
    out = ok(srv, "publish", "order.created", order(2), "--key=--json")
    assert json.loads(out)["seq"] == 2
    # options valid before the command only stay so: --version after a
    # command is the command's (publish --version N), unknown ones are named
    rc, _, err = run(srv, "--bogus", "stats")
    assert rc == 2 and "unknown option '--bogus'" in err, err
    rc, _, err = run(srv, "stats", "--bogus")
    assert rc == 2 and "--bogus" in err, err
    rc, _, err = run(srv, "stats", "--url")
    assert rc == 2 and "--url needs a value" in err, err
    rc, _, err = run(srv, "stats", "--timeout", "soon")
    assert rc == 2 and "--timeout" in err, err


def run_tty_json(srv, *args):
    """On a terminal (where tables are the default), so --json must be what
    makes it JSON; returns (rc, what the terminal showed, stderr)."""
    rc, shown, err = run_tty(srv, *args)
    return rc, shown.replace("\x1b[H\x1b[2J", ""), err


def test_output_env(srv):
    rc, out, err = run(srv, "stats", env={"EVENTBUS_OUTPUT": "table"})
    assert rc == 0 and out.startswith("events:"), (out, err)
    rc, out, err = run(srv, "stats", env={"EVENTBUS_OUTPUT": "json"})
    assert rc == 0 and json.loads(out)["events"]["published"] == 0, (out, err)
    for bad in ("yaml", "JSON", "tables"):
        for args in (["stats"], ["stats", "--json"]):
            rc, out, err = run(srv, *args, env={"EVENTBUS_OUTPUT": bad})
            assert rc == 2 and not out, (bad, args, rc, out)
            assert f"EVENTBUS_OUTPUT must be 'json' or 'table' (got '{bad}')" in err, err


def test_help_is_whole_and_tells_about_options(srv):
    rc, out, _ = run(srv, "--help")
    assert rc == 0 and out.endswith(".\n"), out[-200:]
    assert "'eventbus COMMAND --help' for a command's own" in out, out
    assert "anywhere on the line" in out and "--              ends the options" in out, out
    assert "EVENTBUS_OUTPUT" in out and "EVENTBUS_URL" in out, out
    for c in COMMANDS:
        _, text, _ = run(srv, c, "--help")
        assert text.endswith("\n") and not text.rstrip().endswith((",", "'s", "a", "the")), c
    _, text, _ = run(srv, "top", "--help")
    assert "--json" in text
    rc, shown, _ = run_tty_json(srv, "top", "--json", "-n", "1")
    assert rc == 0 and "published_per_s" in shown, shown


def test_cannot_read_says_why(srv):
    d = tempfile.mkdtemp()
    cases = [(["schemas", "register", "t.x", "/nonexistent.json"],
              "cannot read /nonexistent.json: No such file or directory"),
             (["schemas", "check", "t.x", d], f"cannot read {d}: Is a directory"),
             (["publish", "a.b", "--file", "/nonexistent.json"],
              "cannot read /nonexistent.json: No such file or directory"),
             (["publish", "a.b", "--file", d], f"cannot read {d}: Is a directory")]
    for args, want in cases:
        rc, out, err = run(srv, *args)
        assert rc == 2 and want in err, (args, rc, err)
    os.rmdir(d)


# --- eventbusd's and eventbus-log's flags (issue 14.6) -----------------------

def daemon(*args, env=None):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("EVENTBUS_"):
            del e[k]
    e.update(env or {})
    return subprocess.run([DAEMON] + list(args), capture_output=True, text=True, timeout=10,
                          env=e)


def test_daemon_scale_flags_are_checked(srv):
    d = tempfile.mkdtemp()
    for flag, bad, want in (("--max-delay", "0", "expected a duration from 1s to 3650d"),
                            ("--max-delay", "soon", "expected a duration from 1s to 3650d"),
                            ("--max-delayed", "0", "expected 1 to 100000000"),
                            ("--max-in-flight-total", "0", "expected 1 to 1000000000"),
                            ("--max-in-flight-total", "1000000001", "expected 1 to 1000000000"),
                            ("--max-in-flight-total", "-5", "expected 1 to 1000000000"),
                            ("--metrics-groups", "-1", "expected 0 to 1000000"),
                            ("--metrics-groups", "12x", "expected 0 to 1000000"),
                            ("--max-types", "0", "expected 1 to 1000000"),
                            ("--max-types", "many", "expected 1 to 1000000")):
        p = daemon(flag, bad, "--data", d)
        assert p.returncode == 2 and flag in p.stderr and want in p.stderr, (flag, bad, p.stderr)
    p = daemon("--data", d, env={"EVENTBUS_MAX_IN_FLIGHT_TOTAL": "0"})
    assert p.returncode == 2 and "EVENTBUS_MAX_IN_FLIGHT_TOTAL" in p.stderr, p.stderr
    assert not os.listdir(d)


def test_daemon_listen_port_is_checked(srv):
    d = tempfile.mkdtemp()
    for bad in ("127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:80x",
                "127.0.0.1:-1", "127.0.0.1:123456", "[::1]:70000"):
        p = daemon("--listen", bad, "--data", d)
        assert p.returncode == 2, (bad, p)
        assert "--listen: the port must be a number from 1 to 65535" in p.stderr, p.stderr
        assert f'(got "{bad}")' in p.stderr, p.stderr
    for bad in ("localhost:8470", ":8470", "::1:8470", "[::1:8470", "1.2.3:8470"):
        p = daemon("--listen", bad, "--data", d)
        assert p.returncode == 2, (bad, p)
        assert "--listen: the host must be an IP address" in p.stderr, p.stderr
    p = daemon("--data", d, env={"EVENTBUS_LISTEN": "127.0.0.1:99999"})
    assert p.returncode == 2 and "EVENTBUS_LISTEN" in p.stderr, p.stderr
    assert not os.listdir(d), "nothing is created before the flags are all good"
    os.rmdir(d)


def test_daemon_unknown_option_is_named_wherever_it_is(srv):
    for args in (["--bogus"], ["--data", "/tmp/x", "--bogus"], ["--bogus", "1"],
                 ["--bogus=1"], ["--require-schemas", "--bogus"]):
        p = daemon(*args)
        assert p.returncode == 2, (args, p)
        assert "unknown option --bogus" in p.stderr, (args, p.stderr)
    p = daemon("--data")
    assert p.returncode == 2 and "--data needs a value" in p.stderr, p.stderr
    for bad in ("maybe", "2", "on"):
        p = daemon("--require-schemas=" + bad)
        assert p.returncode == 2 and "--require-schemas: expected 1, true" in p.stderr, p
        p = daemon(env={"EVENTBUS_REQUIRE_SCHEMAS": bad})
        assert p.returncode == 2 and "EVENTBUS_REQUIRE_SCHEMAS" in p.stderr, p
    p = daemon("stray")
    assert p.returncode == 2 and 'unexpected argument "stray"' in p.stderr, p.stderr


def test_daemon_help_states_every_default(srv):
    p = daemon("--help")
    assert p.returncode == 0, p
    opts, cur = {}, None
    for line in p.stdout.splitlines():
        m = re.match(r"  (--[a-z-]+)", line) or re.match(r"  -h, (--help)", line)
        if m:
            cur = m.group(1)
            opts[cur] = line
        elif cur and line.startswith("      "):
            opts[cur] += " " + line.strip()
    for flag in ("--listen", "--data", "--fsync", "--fsync-interval-ms", "--retention",
                 "--retention-bytes", "--max-event-bytes", "--dedupe-window",
                 "--require-schemas", "--meta-snapshot-bytes", "--max-in-flight-total",
                 "--metrics-groups", "--log-level", "--log-format", "--max-delay",
                 "--max-delayed", "--max-types"):
        assert flag in opts, (flag, p.stdout)
        assert "(default " in opts[flag], (flag, opts[flag])
    assert "default 0: kept forever" in opts["--retention"], opts["--retention"]
    assert "default 0: unlimited" in opts["--retention-bytes"], opts["--retention-bytes"]
    assert "1-65535" in opts["--listen"], opts["--listen"]


def test_eventbus_log_flags(srv):
    for args in (["--help"], ["-h"], ["verify", "--help"], ["dump", "d", "--help"]):
        p = subprocess.run([EVENTBUS_LOG] + args, capture_output=True, text=True, timeout=10)
        assert p.returncode == 0 and p.stdout.startswith("usage: eventbus-log"), (args, p)
    p = subprocess.run([EVENTBUS_LOG, "verify", "/nonexistent"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1, p
    assert "cannot open /nonexistent: No such file or directory" in p.stderr, p.stderr
    empty = tempfile.mkdtemp()
    for cmd in ("verify", "dump"):
        p = subprocess.run([EVENTBUS_LOG, cmd, empty], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 1 and f"no segments in {empty}" in p.stderr, (cmd, p)
    os.rmdir(empty)
    for args, want in ((["frob", "x"], "unknown command 'frob'"),
                       (["--bogus"], "unknown option '--bogus'"),
                       (["verify"], "which log directory?"),
                       (["verify", "a", "b"], "unexpected argument 'b'"),
                       (["dump", "a", "--from"], "a value is missing after '--from'"),
                       (["dump", "a", "--limit", "ten"], "--limit needs a number (got 'ten')"),
                       (["dump", "a", "--from", "-1"], "--from needs a number (got '-1')"),
                       (["dump", "a", "--nope"], "unknown option '--nope'"), ([], "usage:")):
        p = subprocess.run([EVENTBUS_LOG] + args, capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and want in p.stderr, (args, p)


def test_url_list_fails_over(srv):
    """--url and EVENTBUS_URL take a list: the first node SIGKILLed, the CLI
    publishes on the second; with every node down, exit 3 naming them."""
    first = Server().start()
    try:
        urls = f"http://127.0.0.1:{first.port},http://127.0.0.1:{srv.port}"
        r = js(srv, "publish", "order.created", order(1), url=urls)
        assert first.request("GET", f"/v1/events/{r['id']}")[0] == 200
        assert srv.request("GET", f"/v1/events/{r['id']}")[0] == 404
        first.kill9()
        for args in (["publish", "order.created", order(2)], ["--url", urls, "publish",
                                                              "order.created", order(3)]):
            rc, out, err = run(srv, *args, url=urls)
            assert rc == 0, (args, rc, err)
            got = json.loads(out)
            assert len(got["id"]) == 26 and not got.get("duplicate"), got  # the CLI's own id
            status, _, ev = srv.request("GET", f"/v1/events/{got['id']}")
            assert status == 200 and ev["data"]["orderId"] in ("A-2", "A-3"), (status, ev)
        rc, out, _ = run(srv, "stats", url=urls)
        assert rc == 0 and json.loads(out)["events"]["published_since_start"] == 2, out
        down = f"http://127.0.0.1:{free_port()}, http://127.0.0.1:{first.port}"
        rc, _, err = run(srv, "stats", url=down)
        assert rc == 3 and "(2 of 2 servers tried)" in err, (rc, err)
        assert f"servers: {down}" in err, err
        rc, _, err = run(srv, "stats", url="127.0.0.1:1,,127.0.0.1:2")
        assert rc == 2 and "cannot use URL" in err, (rc, err)
    finally:
        first.cleanup()


if __name__ == "__main__":
    run_tests(globals())
