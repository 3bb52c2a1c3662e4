"""The PostgreSQL engine's own behaviour, against a real eventbusd on a
throwaway cluster (EB_TEST_STORE=pg; meson suite 'pg'): the database lost
and back (503 storage_unavailable meanwhile, recovery without a restart,
nothing acknowledged lost, nothing refused written), and the --store flag.
Without EB_TEST_STORE=pg every test skips."""
import http.client
import os
import re
import subprocess
import time

from harness import DAEMON, PG, pg_cluster, run_tests, skip_on_pg


def need_pg():
    if not PG:
        skip_on_pg("")  # no-op off PostgreSQL: say why instead
        from harness import Skip
        raise Skip("needs EB_TEST_STORE=pg")


def publish(srv, i, timeout=30):
    return srv.request("POST", "/v1/events", {"type": "t.x", "id": f"ev-{i}", "source": "s",
                                              "data": {"i": i}}, timeout=timeout)


def all_events(srv):
    st, _, js = srv.request("GET", "/v1/events?limit=1000")
    assert st == 200, js
    return js["events"]


def database_down(srv, acked, refused):
    """While the database is down: publishes until a few were refused
    (503 storage_unavailable, Retry-After 1), then /healthz degraded.
    Returns the next id."""
    i, t_down = 20, time.time()
    while time.time() - t_down < 20 and len(refused) < 3:
        st, h, js = publish(srv, i)
        if st == 201:
            acked.append(i)  # committed before the writer noticed
        else:
            assert st == 503 and js["error"]["code"] == "storage_unavailable", (st, js)
            assert h.get("retry-after") == "1", h
            refused.append(i)
        i += 1
        time.sleep(0.05)
    assert refused, "no 503 while the database was down"
    for _ in range(100):  # the health check looks every ~250 ms
        st, _, js = srv.request("GET", "/healthz")
        if st == 503:
            break
        time.sleep(0.05)
    assert st == 503 and js["code"] == "storage_unavailable", (st, js)
    return i


def test_database_lost_then_back(srv):
    """The database crashes (immediate shutdown) under publishes: writes
    answer 503 storage_unavailable with Retry-After and /healthz says so;
    the database restarts and the server takes writes again by itself.
    Every acknowledged publish is there once, in seq order without a gap,
    and no publish answered 503 was written."""
    need_pg()
    st, _, _ = srv.request("PUT", "/v1/groups/g", {"types": ["t.>"], "start": "earliest"})
    assert st == 201
    acked, refused = [], []
    for i in range(20):
        st, _, js = publish(srv, i)
        assert st == 201, js
        acked.append(i)
    c = pg_cluster()
    c.crash()
    try:
        i = database_down(srv, acked, refused)
    finally:
        c.start_server()
    t_up = time.time()
    while True:
        st, _, js = publish(srv, i)
        if st == 201:
            acked.append(i)
            break
        assert st == 503, (st, js)
        refused.append(i)
        i += 1
        assert time.time() - t_up < 30, "not writable 30 s after the database came back"
        time.sleep(0.1)
    print(f"        writable again {time.time() - t_up:.2f} s after the database restarted",
          flush=True)
    for j in range(i + 1, i + 6):
        st, _, js = publish(srv, j)
        assert st == 201, js
        acked.append(j)
    evs = all_events(srv)
    got = [e["data"]["i"] for e in evs]
    assert sorted(got) == sorted(acked), (got, acked)
    assert not set(got) & set(refused), "a publish answered 503 was written"
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1)), "a gap in the seqs"
    for _ in range(100):  # the health check looks every ~250 ms
        st, _, js = srv.request("GET", "/healthz")
        if st == 200:
            break
        time.sleep(0.05)
    assert st == 200, js
    # the group gets every acknowledged event
    seen = []
    for _ in range(20):
        st, _, js = srv.request("POST", "/v1/groups/g/pull", {"consumer": "c", "max": 100})
        assert st == 200, js
        if not js["events"]:
            break
        seen += [e["data"]["i"] for e in js["events"]]
        srv.request("POST", "/v1/groups/g/ack", {"ids": [e["delivery"]["id"] for e in js["events"]]})
    assert sorted(seen) == sorted(acked), (seen, acked)
    # and a restart reads the same
    srv.restart()
    assert [e["data"]["i"] for e in all_events(srv)] == got


def test_database_restarted_while_idle(srv):
    """The database restarts between two requests: the server's
    connections are stale, not lost for good; once /healthz says 200 the
    next publish, read and ack succeed at the first try."""
    need_pg()
    st, _, _ = srv.request("PUT", "/v1/groups/g", {"types": ["t.>"], "start": "earliest"})
    assert st == 201
    for i in range(3):
        assert publish(srv, i)[0] == 201
    c = pg_cluster()
    c.crash()
    c.start_server()
    for _ in range(200):
        st, _, js = srv.request("GET", "/healthz")
        if st == 200:
            break
        time.sleep(0.05)
    assert st == 200, js
    st, _, js = publish(srv, 3)
    assert st == 201, js
    assert [e["data"]["i"] for e in all_events(srv)] == [0, 1, 2, 3]
    st, _, js = srv.request("POST", "/v1/groups/g/pull", {"consumer": "c", "max": 10})
    assert st == 200 and len(js["events"]) == 4, js
    st, _, js = srv.request("POST", "/v1/groups/g/ack",
                            {"ids": [e["delivery"]["id"] for e in js["events"]]})
    assert st == 200 and js["acked"] == 4, js

def settle(srv, op, evs, **extra):
    return srv.request("POST", f"/v1/groups/g/{op}",
                       dict(extra, ids=[e["delivery"]["id"] for e in evs]), timeout=60)


META_FULL = """
CREATE FUNCTION eb_test_full() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'out of disk (test)' USING ERRCODE = '53100'; END$$;
CREATE TRIGGER eb_test_full BEFORE INSERT ON eb_meta FOR EACH ROW
  EXECUTE FUNCTION eb_test_full();"""


def test_a_settle_the_database_refuses_changes_nothing(srv):
    """An ack, nack or extension whose records the database refuses (here
    a trigger on eb_meta raising SQLSTATE 53100, out of disk: 507
    storage_full; the database away is the same with 503) leaves the
    delivery as it was: in flight to its holder, so the holder's retry is
    refused the same way, then written and answered 2xx once the database
    takes writes again, and a 2xx ack is never undone by a restart. (Until
    stop 15 the settle was applied in memory before its record failed: the
    retry found nothing in flight and was answered 200 "unknown" with
    nothing written, and after a restart the "acked" event was delivered
    again.) A trigger rather than a crash: a commit under way when the
    database goes away waits until its outcome is known, i.e. the database
    is back, so a crash gives a refusal only by chance."""
    need_pg()
    st, _, js = srv.request("PUT", "/v1/groups/g", {"types": ["t.>"], "start": "earliest",
                                                    "ack_timeout_ms": 60000})
    assert st == 201, js
    for i in range(3):
        assert publish(srv, i)[0] == 201
    st, _, js = srv.request("POST", "/v1/groups/g/pull", {"consumer": "c", "max": 3})
    assert st == 200 and len(js["events"]) == 3, js
    held = js["events"]
    st, _, js = settle(srv, "extend", held)  # a 2xx: the pull's leases are durable
    assert st == 200 and js["extended"] == 3, js
    srv.pg_query(META_FULL)
    ops = [("ack", held[:1], {}), ("nack", held[1:2], {"delay_ms": 0}),
           ("extend", held[2:], {"ms": 120000})]
    try:
        for op, evs, extra in ops:
            for _ in range(3):  # refused, and refused again (not "unknown")
                st, _, js = settle(srv, op, evs, **extra)
                assert st == 507 and js["error"]["code"] == "storage_full", (op, st, js)
                time.sleep(0.2)  # the store probes and takes appends again meanwhile
        st, _, info = srv.request("GET", "/v1/groups/g")
        assert st == 200 and info["in_flight"] == 3 and info["lag"] == 3, info
    finally:
        srv.pg_query("DROP TRIGGER eb_test_full ON eb_meta")
    end = time.time() + 10
    for op, evs, extra in ops:  # the holder's retries: written, 2xx
        while True:
            st, _, js = settle(srv, op, evs, **extra)
            if st != 507 or time.time() > end:
                break
            time.sleep(0.1)
        assert st == 200 and js[op + "ed"] == 1 and js["unknown"] == [], (op, st, js)
    srv.kill9()
    srv.start()
    # the acked event is not delivered again, the extended one is still
    # held, the nacked one comes as its second attempt
    st, _, js = srv.request("POST", "/v1/groups/g/pull", {"consumer": "c2", "max": 10})
    assert st == 200, js
    got = [(e["seq"], e["delivery"]["attempt"]) for e in js["events"]]
    assert got == [(held[1]["seq"], 2)], got


def test_compaction_survives_a_kill_right_after_the_snapshot(srv):
    """A meta snapshot makes the rows before it obsolete, and the writer
    thread deletes them after the snapshot committed. The node is killed
    (SIGKILL) as soon as the snapshot's first row is in the table, before
    or after that DELETE: once it is back the rows are gone all the same
    (the open drops what is before the newest snapshot), and the acks
    hold. (Once the DELETE waited for a housekeeping tick up to a second
    later, and a restart never did it: the meta table kept every row.)"""
    need_pg()
    srv.restart(["--meta-snapshot-bytes", "4KiB"])
    st, _, js = srv.request("PUT", "/v1/groups/g", {"types": ["t.>"], "start": "earliest",
                                                    "max_attempts": 1})
    assert st == 201, js
    st, _, js = srv.request("POST", "/v1/events/batch",
                            [{"type": "t.x", "data": {"i": i}} for i in range(300)])
    assert st == 201, js
    st, _, js = srv.request("POST", "/v1/groups/g/pull", {"consumer": "c", "max": 300})
    assert st == 200 and len(js["events"]) == 300, js
    evs, acked, snap = js["events"], set(), 0
    first_snap = int(srv.pg_query("SELECT coalesce(max(seq), 0) FROM eb_meta WHERE type = 42"))
    for i, e in enumerate(evs):  # one ack record each, until a snapshot follows them
        st, _, js = srv.request("POST", "/v1/groups/g/ack", {"ids": [e["delivery"]["id"]]})
        assert st == 200 and js["acked"] == 1, js
        acked.add(e["seq"])
        if i % 5 == 4 and i >= 100:
            snap = int(srv.pg_query("SELECT coalesce(max(seq), 0) FROM eb_meta "
                                    "WHERE type = 42"))  # EB_META_SNAP
            if snap > first_snap:
                break
        if i >= 100:
            time.sleep(0.02)  # the snapshot is looked for once a second
    assert snap > first_snap, "no snapshot after 300 acks"
    srv.kill9()
    srv.start()
    end = time.time() + 10
    while int(srv.pg_query("SELECT min(seq) FROM eb_meta")) < snap and time.time() < end:
        time.sleep(0.05)
    assert int(srv.pg_query("SELECT min(seq) FROM eb_meta")) >= snap
    # the acks survived the compaction, and so did the leases (the snapshot
    # restates them): every id given is known but those acked
    st, _, js = srv.request("POST", "/v1/groups/g/ack",
                            {"ids": [e["delivery"]["id"] for e in evs]})
    got = [e["seq"] for e in evs if e["delivery"]["id"] not in js["unknown"]]
    assert st == 200 and sorted(got) == sorted({e["seq"] for e in evs} - acked), \
        (len(got), len(acked))
    st, _, js = srv.request("POST", "/v1/groups/g/pull", {"consumer": "c", "max": 100})
    assert st == 200 and js["events"] == [], js


def test_store_flag(srv):
    """--store takes a PostgreSQL URI, not with --data; an unreachable
    database fails the start, saying so."""
    need_pg()

    def daemon(*args):
        return subprocess.run([DAEMON, "--listen", "127.0.0.1:0"] + list(args),
                              capture_output=True, text=True, timeout=30)
    p = daemon("--data", os.path.join(srv.dir, "d"), "--store", srv.store_uri)
    assert p.returncode == 2 and "--data" in p.stderr and "--store" in p.stderr, p.stderr
    p = daemon("--store", "mysql://x/y")
    assert p.returncode == 2 and "--store" in p.stderr and "postgresql://" in p.stderr, p.stderr
    p = daemon("--store", "postgresql://eb@/none?host=/nonexistent-eb-dir")
    assert p.returncode == 1 and "cannot connect" in p.stderr, p.stderr
    # the environment variables too; a flag wins over the environment
    env = dict(os.environ, EVENTBUS_STORE=srv.store_uri, EVENTBUS_DATA=srv.dir)
    p = subprocess.run([DAEMON, "--listen", "127.0.0.1:0"], capture_output=True, text=True,
                       timeout=30, env=env)
    assert p.returncode == 2 and "EVENTBUS_STORE" in p.stderr, p.stderr
    db, uri = pg_cluster().create_db()
    try:  # the systemd unit's EVENTBUS_DATA and --store in EVENTBUSD_ARGS: the database
        env = dict(os.environ, EVENTBUS_DATA=os.path.join(srv.dir, "unused"))
        d = subprocess.Popen([DAEMON, "--listen", "127.0.0.1:0", "--store", uri],
                             stderr=subprocess.PIPE, text=True, env=env)
        line = ""
        while "listening on" not in line:
            line = d.stderr.readline()
            assert line, "eventbusd exited"
        port = int(re.search(r"\(port (\d+)\)", line).group(1))
        for _ in range(200):  # serving (its signal handlers are set) once it answers
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        d.terminate()
        assert d.wait(timeout=20) == 0
        assert not os.path.exists(os.path.join(srv.dir, "unused"))
        assert int(pg_cluster().query(db, "SELECT count(*) FROM pg_tables "
                                          "WHERE tablename = 'eb_events'")) == 1
    finally:
        pg_cluster().drop_db(db)


if __name__ == "__main__":
    run_tests(globals())
