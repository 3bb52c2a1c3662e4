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
