#!/usr/bin/env python3
"""Several eventbusd nodes on one PostgreSQL database (issue 20; meson
suite 'pg', EB_TEST_STORE=pg): three real daemons on one database of a
throwaway cluster. One leads (its bus is the only one), the others forward
every request to it. Publishes via all three land in one gap-free order; a
long poll on one node is answered by a publish on another; two consumers
on different nodes never share a lease; an id published via two nodes is
stored once; the leader SIGKILLed, a follower takes over (time printed) and
the old one comes back as a follower. And the fault test: publishers and
consumers of two groups spread over the nodes while nodes are SIGKILLed and
restarted for a minute: every acknowledged publish is delivered to every
group, no event whose ack was acknowledged is delivered again, nothing is
lost, and the seqs have no gap (counts printed).
Without EB_TEST_STORE=pg every test skips."""
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import threading
import time

from harness import DAEMON, PG, Server, Skip, free_port, pg_cluster, run_tests
import pgcluster  # noqa: E402 (harness puts tests/tools on the path)


class Node(Server):
    """One eventbusd on a fixed port (its URL outlives restarts)."""

    def __init__(self, uri, port):
        super().__init__()
        self.uri, self.port = uri, port
        self.url = f"http://127.0.0.1:{port}"

    def start(self, extra_args=None):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [DAEMON, "--listen", f"127.0.0.1:{self.port}", "--store", self.uri,
             "--advertise-url", self.url, "--log-level", "info"] + self.extra,
            stdout=log, stderr=log)
        log.close()
        end = time.time() + 20
        while time.time() < end:  # /v1/cluster answers on a follower with no leader too
            assert self.proc.poll() is None, "eventbusd exited:\n" + self.log_tail()
            try:
                if call(self.port, "GET", "/v1/cluster", timeout=1)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("eventbusd did not answer:\n" + self.log_tail())

    def role(self):
        st, _, js = self.request("GET", "/v1/cluster")
        assert st == 200, js
        return js


class Trio:
    """Three nodes on a fresh database: the fixture of each test."""

    def __init__(self):
        self.db, self.nodes = None, []
        if PG:
            self.db, self.uri = pg_cluster().create_db()
            self.nodes = [Node(self.uri, free_port()) for _ in range(3)]

    def start(self):
        for n in self.nodes:
            n.start()
        return self.nodes

    def leader(self, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            for n in self.nodes:
                if n.proc and n.proc.poll() is None:
                    try:
                        if call(n.port, "GET", "/v1/cluster", timeout=2)[2]["role"] == "leader":
                            return n
                    except (OSError, TypeError, KeyError):
                        pass
            time.sleep(0.01)
        raise AssertionError("no leader")

    def sanitizer_reports(self):
        """Lines of the nodes' logs where ASan, UBSan or TSan spoke (a
        node that died of one may have gone unnoticed behind failover)."""
        out = []
        for n in self.nodes:
            try:
                with open(n.log_path, errors="replace") as f:
                    out += [ln for ln in f if re.search(r"Sanitizer|runtime error:", ln)]
            except OSError:
                pass
        return out

    def log_tail(self):
        return "\n".join(f"--- node {n.url} ---\n{n.log_tail(15)}" for n in self.nodes)

    def cleanup(self):
        for n in self.nodes:
            n.kill9()
            shutil.rmtree(n.dir, ignore_errors=True)
        if self.db:
            pg_cluster().drop_db(self.db)


def checked(fn):
    """The test, then: no sanitizer report in any node's log."""
    def run(trio):
        fn(trio)
        bad = trio.sanitizer_reports()
        assert not bad, "".join(bad[:20])
    run.__name__ = fn.__name__
    return run


def call(port, method, path, body=None, timeout=30):
    """One request without the contract check (the fault test's load):
    (status, headers, parsed body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        text = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), \
            (json.loads(text) if text else None)
    finally:
        c.close()


def failover(ports, method, path, body=None, timeout=30, start=0, deadline=60):
    """As the clients given several URLs: the next node on a connection
    failure, a timeout or a 503, until deadline seconds pass. The answer, or
    None."""
    end, i = time.time() + deadline, start
    while time.time() < end:
        try:
            st, h, js = call(ports[i % len(ports)], method, path, body, timeout)
            if st != 503:
                return st, h, js
        except (OSError, http.client.HTTPException, ValueError):
            pass
        i += 1
        if i % len(ports) == start % len(ports):
            time.sleep(0.05)
    return None


def need_pg():
    if not PG:
        raise Skip("needs EB_TEST_STORE=pg")


def all_events(node):
    out, after = [], 0
    while True:
        st, _, js = node.request("GET", f"/v1/events?limit=1000&after_seq={after}")
        assert st == 200, js
        out += js["events"]
        if not js["events"]:
            return out
        after = js["events"][-1]["seq"]


@checked
def test_one_leader_two_followers(trio):
    need_pg()
    a, b, c = trio.start()
    roles = [n.role() for n in (a, b, c)]
    assert [r["role"] for r in roles] == ["leader", "follower", "follower"], roles
    assert {r["leader"] for r in roles} == {a.url} and len({r["epoch"] for r in roles}) == 1
    st, _, js = b.request("GET", "/healthz")
    assert st == 200 and js == {"status": "ok"}, js
    st, _, js = b.request("POST", "/v1/events", {"type": "t.x", "data": {}})
    assert st == 201, js
    assert b.role()["forwarded"] >= 1
    # SIGTERM: a follower (relaying a long poll) and then the leader stop
    # cleanly (exit 0; under ASan, no leak); c takes over.
    st, _, js = a.request("PUT", "/v1/groups/g", {"types": ["t.y"]})
    assert st in (200, 201), js
    got = []
    t = threading.Thread(target=lambda: got.append(call(b.port, "POST", "/v1/groups/g/pull",
                                                        {"consumer": "c", "wait_ms": 20000})))
    t.start()
    time.sleep(0.3)
    t0 = time.time()
    b.stop()
    t.join()
    assert got and got[0][0] == 503 and got[0][2]["error"]["code"] == "shutting_down", got
    assert time.time() - t0 < 10
    a.stop()
    assert trio.leader() is c
    st, _, js = c.request("GET", "/v1/events")
    assert st == 200 and len(js["events"]) == 1, js


@checked
def test_relayed_answers_name_the_leader(trio):
    """A follower's relayed answers carry Eventbus-Leader: the leader's
    --advertise-url (any status: a 404 of the leader's too); the follower's
    own answers and the leader's do not. GET /v1/cluster/leader: 200 on the
    leader only, 503 naming it elsewhere; after a takeover, the new one."""
    need_pg()
    a, b, c = trio.start()
    st, h, js = b.request("POST", "/v1/events", {"type": "t.x", "data": {}})
    assert st == 201 and h.get("eventbus-leader") == a.url, (st, h)
    st, h, _ = b.request("GET", "/v1/groups/nope")
    assert st == 404 and h.get("eventbus-leader") == a.url, (st, h)
    for node, path in ((b, "/v1/cluster"), (b, "/healthz"), (a, "/v1/stats"), (a, "/v1/cluster")):
        st, h, _ = node.request("GET", path)
        assert st == 200 and "eventbus-leader" not in h, (node.url, path, h)
    st, h, js = a.request("GET", "/v1/cluster/leader")
    assert (st, js) == (200, {"role": "leader", "leader": a.url}), (st, js)
    for n in (b, c):
        st, h, js = n.request("GET", "/v1/cluster/leader")
        assert (st, js) == (503, {"role": "follower", "leader": a.url}), (st, js)
        assert "eventbus-leader" not in h
    a.kill9()
    new = trio.leader()
    other = c if new is b else b
    end = time.time() + 10
    while other.role()["leader"] != new.url and time.time() < end:
        time.sleep(0.02)
    st, _, js = new.request("GET", "/v1/cluster/leader")
    assert (st, js) == (200, {"role": "leader", "leader": new.url}), (st, js)
    st, h, _ = other.request("POST", "/v1/events", {"type": "t.x", "data": {}})
    assert st == 201 and h.get("eventbus-leader") == new.url, (st, h)


@checked
def test_cli_given_follower_and_leader_consumes_from_the_leader(trio):
    """The CLI (libeventbus) given --url FOLLOWER,LEADER: of the requests
    `tail GROUP -n 200` makes (pulls of 100 and their acks, at least 4),
    only its first goes through the follower, which names the leader;
    given the follower alone, every one does."""
    need_pg()
    a, b, _ = trio.start()
    st, _, js = a.request("PUT", "/v1/groups/cli-g", {"types": ["t.cli"], "start": "earliest"})
    assert st == 201, js
    st, _, js = a.request("POST", "/v1/events/batch",
                          [{"type": "t.cli", "data": {"n": i}} for i in range(400)])
    assert st == 201, js
    cli = os.environ.get("EVENTBUS_CLI", "eventbus")

    def tail(urls):
        f0 = b.role()["forwarded"]
        p = subprocess.run([cli, "--url", urls, "--json", "tail", "cli-g", "-n", "200"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert len(p.stdout.splitlines()) == 200, p.stdout[-300:]
        return b.role()["forwarded"] - f0

    via_follower_only = tail(b.url)
    following = tail(f"{b.url},{a.url}")
    assert via_follower_only >= 4, via_follower_only  # pulls of 100 and their acks
    assert following == 1, (following, via_follower_only)


@checked
def test_advertise_url_flag(trio):
    """--advertise-url takes an http:// or https:// URL (a trailing / is
    dropped: the path is appended to it); bad values are refused, naming
    the flag; a node advertises what it was given."""
    for bad in ("node1:8470", "ftp://x", "http://" + "x" * 300):
        p = subprocess.run([DAEMON, "--advertise-url", bad], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 2 and "--advertise-url" in p.stderr, (bad, p.stderr)
    need_pg()
    a = trio.nodes[0]
    a.extra = ["--advertise-url", a.url + "/"]  # the Node's own comes first: this one wins
    a.start()
    assert a.role()["node"] == a.url, a.role()


@checked
def test_publishes_via_all_three_in_one_gap_free_order(trio):
    need_pg()
    nodes = trio.start()
    errors = []

    def publisher(k, node):
        for i in range(60):
            st, _, js = node.request("POST", "/v1/events", {"type": "t.x", "id": f"n{k}-{i}",
                                                            "key": f"k{k}", "data": {"i": i}})
            if st != 201:
                errors.append((k, i, st, js))

    ts = [threading.Thread(target=publisher, args=(k, n)) for k, n in enumerate(nodes)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    for n in nodes:  # every node reads the same log
        evs = all_events(n)
        assert [e["seq"] for e in evs] == list(range(1, 181)), [e["seq"] for e in evs][:20]
        assert sorted(e["id"] for e in evs) == sorted(f"n{k}-{i}" for k in range(3)
                                                      for i in range(60))
        for k in range(3):  # per key, in the order published
            assert [e["data"]["i"] for e in evs if e["key"] == f"k{k}"] == list(range(60))


@checked
def test_long_poll_on_one_node_woken_by_publish_on_another(trio):
    need_pg()
    a, b, c = trio.start()
    st, _, js = a.request("PUT", "/v1/groups/g", {"types": ["t.x"], "start": "latest"})
    assert st in (200, 201), js
    got = {}

    def poll():
        t0 = time.time()
        got["answer"] = b.request("POST", "/v1/groups/g/pull",
                                  {"consumer": "c1", "max": 10, "wait_ms": 20000})
        got["s"] = time.time() - t0

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    st, _, js = c.request("POST", "/v1/events", {"type": "t.x", "id": "wake", "data": {}})
    assert st == 201, js
    t.join()
    st, _, js = got["answer"]
    assert st == 200 and [e["id"] for e in js["events"]] == ["wake"], js
    assert got["s"] < 10, got["s"]
    print(f"        long poll on B answered {got['s']:.2f} s after it began (publish on C at 0.5 s)")


@checked
def test_consumers_on_two_nodes_never_share_a_lease(trio):
    need_pg()
    a, b, c = trio.start()
    st, _, js = a.request("PUT", "/v1/groups/g", {"types": ["t.x"], "start": "earliest"})
    assert st in (200, 201), js
    st, _, js = a.request("POST", "/v1/events/batch",
                          {"events": [{"type": "t.x", "id": f"e{i}", "data": {}}
                                      for i in range(300)]})
    assert st == 201, js
    seen = {"b": [], "c": []}

    def consume(name, node):
        while True:
            st, _, js = node.request("POST", "/v1/groups/g/pull", {"consumer": name, "max": 7})
            assert st == 200, js
            if not js["events"]:
                return
            seen[name] += [e["id"] for e in js["events"]]
            st, _, js = node.request("POST", "/v1/groups/g/ack",
                                     {"ids": [e["delivery"]["id"] for e in js["events"]]})
            assert st == 200 and not js["unknown"], js

    ts = [threading.Thread(target=consume, args=(k, n)) for k, n in (("b", b), ("c", c))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not set(seen["b"]) & set(seen["c"]), set(seen["b"]) & set(seen["c"])
    assert sorted(seen["b"] + seen["c"]) == sorted(f"e{i}" for i in range(300))
    assert seen["b"] and seen["c"], {k: len(v) for k, v in seen.items()}


@checked
def test_same_id_via_two_nodes_stored_once(trio):
    need_pg()
    a, b, c = trio.start()
    ev = {"type": "t.x", "id": "once", "data": {"n": 1}}
    st1, _, js1 = b.request("POST", "/v1/events", ev)
    st2, _, js2 = c.request("POST", "/v1/events", ev)
    assert st1 == 201 and st2 == 200 and js2.get("duplicate") is True, (js1, js2)
    assert js1["seq"] == js2["seq"]
    assert [e["id"] for e in all_events(a)] == ["once"]


@checked
def test_leader_killed_a_follower_takes_over(trio):
    need_pg()
    a, b, c = trio.start()
    assert a.role()["role"] == "leader"
    st, _, js = b.request("POST", "/v1/events", {"type": "t.x", "id": "before", "data": {}})
    assert st == 201, js
    epoch = b.role()["epoch"]
    t0 = time.time()
    a.kill9()
    new = trio.leader()
    took = time.time() - t0
    # A publish via the other follower succeeds (forwarded to the new leader).
    other = c if new is b else b
    r = failover([other.port], "POST", "/v1/events", {"type": "t.x", "id": "after", "data": {}})
    served = time.time() - t0
    assert r and r[0] == 201, r
    print(f"        leader SIGKILLed: a follower led after {took * 1000:.0f} ms, a publish via the "
          f"other follower succeeded after {served * 1000:.0f} ms")
    assert new.role()["epoch"] > epoch
    a.start()
    ra = a.role()
    assert ra["role"] == "follower" and ra["leader"] == new.url, ra
    assert [e["id"] for e in all_events(a)] == ["before", "after"]


def test_lone_node_over_a_lingering_session_follows_then_leads(trio):
    """A node restarted at once after SIGKILL can find its old session still
    holding the leader lock (the database has not seen the death yet). It
    follows meanwhile (503 no_leader: it knows no live leader), names the
    session holding the lock once it has waited 5 s, and leads as soon as
    that session ends. Here a psql session stands in for the dying one."""
    need_pg()
    a = trio.nodes[0]
    host = pg_cluster()
    holder = subprocess.Popen(
        [pgcluster.pg_bin("psql")] + host.where() + ["-U", pgcluster.USER, "-d", trio.db, "-X",
         "-qAt", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    holder.stdin.write("SET application_name = 'stand-in';\n"
                       "SELECT pg_advisory_lock(25954, 256);\n\\echo locked\n")
    holder.stdin.flush()
    for line in holder.stdout:  # psql prints the SELECT's row first
        if line.strip() == "locked":
            break
    try:
        a.start()
        assert a.role()["role"] == "follower"
        st, _, js = a.request("POST", "/v1/events", {"type": "t.x", "data": {}})
        assert st == 503 and js["error"]["code"] == "no_leader", (st, js)
        end = time.time() + 15
        while "the leader lock is held by the session of pid" not in open(a.log_path).read():
            assert time.time() < end, a.log_tail()
            time.sleep(0.1)
        assert '"stand-in"' in open(a.log_path).read(), a.log_tail()
    finally:
        holder.stdin.close()  # the session ends: its lock goes
        holder.wait()
    t0 = time.time()
    while a.role()["role"] != "leader":
        assert time.time() - t0 < 10, a.log_tail()
        time.sleep(0.02)
    print(f"        the holder's session ended: the lone node led after "
          f"{(time.time() - t0) * 1000:.0f} ms")
    st, _, js = a.request("POST", "/v1/events", {"type": "t.x", "data": {}})
    assert st == 201, (st, js)


def test_a_killed_followers_sessions_end_though_one_waits_for_a_lock(trio):
    """A follower's gate session waits in pg_advisory_lock; PostgreSQL reads
    nothing from a session while it waits, so without
    client_connection_check_interval a SIGKILLed follower's session stayed
    queued until the leader changed (a connection slot per follower crash,
    and a dead queue the next leader election went through)."""
    need_pg()
    a, b, _ = trio.start()
    name = f"eventbusd {b.url}"

    def sessions():
        return int(pg_cluster().query(trio.db, "SELECT count(*) FROM pg_stat_activity WHERE "
                                      f"application_name = '{name}'"))
    assert sessions() >= 1  # the gate (waiting) and the LISTEN session
    b.kill9()
    end = time.time() + 5
    while sessions():
        assert time.time() < end, pg_cluster().query(
            trio.db, "SELECT pid, state, wait_event_type, query FROM pg_stat_activity WHERE "
            f"application_name = '{name}'")
        time.sleep(0.05)
    assert a.role()["role"] == "leader"


def test_leases_outlive_a_leader_change(trio):
    """Leases are recorded in the database: after the leader's SIGKILL the
    new leader keeps each leased event with its holder until the deadline
    (no other consumer gets it) and takes the holder's ack with the id the
    old leader gave."""
    need_pg()
    a, b, c = trio.start()
    assert a.role()["role"] == "leader"
    st, _, js = b.request("PUT", "/v1/groups/g", {"types": ["t.x"], "ack_timeout_ms": 30000})
    assert st in (200, 201), js
    st, _, js = b.request("POST", "/v1/events/batch",
                          [{"type": "t.x", "data": {"n": i}} for i in range(6)])
    assert st == 201, js
    st, _, js = b.request("POST", "/v1/groups/g/pull", {"consumer": "c1", "max": 3})
    held = js["events"]
    assert st == 200 and [e["seq"] for e in held] == [1, 2, 3], js
    st, _, js = b.request("POST", "/v1/groups/g/ack", {"ids": [held[0]["delivery"]["id"]]})
    assert st == 200 and js["acked"] == 1, js  # durable, with the leases before it
    a.kill9()
    new = trio.leader()
    other = c if new is b else b
    r = failover([other.port], "POST", "/v1/groups/g/pull", {"consumer": "c2", "max": 10})
    assert r and r[0] == 200 and [e["seq"] for e in r[2]["events"]] == [4, 5, 6], r
    r = failover([other.port], "POST", "/v1/groups/g/ack",
                 {"ids": [e["delivery"]["id"] for e in held[1:]]})
    assert r and r[0] == 200 and r[2]["acked"] == 2 and r[2]["unknown"] == [], r


@checked
def test_leader_that_lost_its_lock_steps_down(trio):
    """The leader's lock session ends (pg_terminate_backend): a follower
    takes the lock and a new epoch at once, so the old leader, finding the
    lock held when it tries to take it back, is fenced: it re-executes
    itself and comes back as a follower; the new leader's bus opens once
    the old one's writers are gone. Nothing acknowledged is lost."""
    need_pg()
    a, b, c = trio.start()
    st, _, js = b.request("POST", "/v1/events", {"type": "t.x", "id": "before", "data": {}})
    assert st == 201, js
    pid = pg_cluster().query(trio.db, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
                             "AND classid = 25954 AND objid = 256 AND granted")
    assert pid.strip(), pid
    t0 = time.time()
    pg_cluster().query(trio.db, f"SELECT pg_terminate_backend({int(pid)})")
    end = time.time() + 20
    while time.time() < end and "stepping down" not in a.log_tail(50):
        time.sleep(0.02)
    assert "another node holds the leader lock" in a.log_tail(50), a.log_tail()
    new = trio.leader()
    took = time.time() - t0
    assert new is not a
    r = failover([a.port, b.port, c.port], "POST", "/v1/events",
                 {"type": "t.x", "id": "after", "data": {}})
    assert r and r[0] == 201, r
    print(f"        the leader lock's session terminated: the old leader stepped down and "
          f"{new.url} led after {took * 1000:.0f} ms")
    end = time.time() + 20  # the old leader, re-executed, follows
    while time.time() < end:
        try:
            if call(a.port, "GET", "/v1/cluster", timeout=2)[2]["role"] == "follower":
                break
        except OSError:
            pass
        time.sleep(0.05)
    assert a.proc.poll() is None and a.role()["role"] == "follower", a.log_tail()
    assert [e["id"] for e in all_events(a)] == ["before", "after"]


# --- the fault test ---------------------------------------------------------

FAULT_SECONDS = float(os.environ.get("EB_HA_FAULT_SECONDS", "60"))


class Book:
    """What the clients of the fault test saw."""

    def __init__(self):
        self.mu = threading.Lock()
        self.acked = set()           # publishes answered 2xx
        self.publishes = 0
        self.delivered = {"g1": {}, "g2": {}}  # group -> id -> deliveries
        # id -> when its ack was answered 2xx (not in "unknown")
        self.confirmed = {"g1": {}, "g2": {}}
        self.after_ack = []          # (group, id): pulled after its ack was confirmed
        self.overlap = 0             # answered after its ack's 2xx to a pull begun before
        self.stop = threading.Event()
        self.kills = self.leader_kills = 0


def publisher(book, ports, k):
    i = 0
    while not book.stop.is_set():
        eid = f"p{k}-{i}"
        r = failover(ports, "POST", "/v1/events", {"type": "t.x", "id": eid, "data": {"i": i}},
                     timeout=10, start=k + i)
        with book.mu:
            book.publishes += 1
            if r and r[0] in (200, 201):
                book.acked.add(eid)
        i += 1


def consumer(book, ports, group, name, start, drain):
    while not (book.stop.is_set() and drain.is_set()):
        t_pull = time.time()  # a pull begun after an ack's 2xx must not bring its event
        r = failover(ports, "POST", f"/v1/groups/{group}/pull",
                     {"consumer": name, "max": 20, "wait_ms": 500}, timeout=10, start=start)
        if not r or r[0] != 200:
            continue
        evs = r[2]["events"]
        with book.mu:
            for e in evs:
                d = book.delivered[group]
                d[e["id"]] = d.get(e["id"], 0) + 1
                if book.confirmed[group].get(e["id"], t_pull) < t_pull:
                    book.after_ack.append((group, e["id"]))
                elif e["id"] in book.confirmed[group]:
                    # A lease given in the old leader's last moments (its
                    # record not committed yet) is lost with it; the new
                    # leader hands the event out again with the same
                    # delivery id: the old holder's ack of it can land
                    # while the new holder's pull is being answered.
                    book.overlap += 1
        if not evs:
            continue
        ids = {e["delivery"]["id"]: e["id"] for e in evs}
        r = failover(ports, "POST", f"/v1/groups/{group}/ack", {"ids": list(ids)}, timeout=10,
                     start=start, deadline=5)
        if r and r[0] == 200:
            now = time.time()
            with book.mu:
                for did, eid in ids.items():
                    if did not in r[2]["unknown"]:
                        book.confirmed[group].setdefault(eid, now)


def follower_of(trio, bounds, events=100):
    """Starts node 0 (the leader) and node 1 as a follower with the
    forwarding bounds given as flags; the leader holds `events` events of
    about 4 KiB each. (a, b)."""
    a, b = trio.nodes[0], trio.nodes[1]
    b.extra = bounds
    a.start()
    b.start()
    assert b.role()["role"] == "follower", b.role()
    for k in range(0, events, 250):
        evs = [{"type": "t.big", "data": {"i": i, "pad": "x" * 4000}}
               for i in range(k, min(events, k + 250))]
        st, _, js = a.request("POST", "/v1/events/batch", evs)
        assert st == 201, js
    return a, b


def vm_hwm_kib(node):
    with open(f"/proc/{node.proc.pid}/status") as f:
        return int(next(ln for ln in f if ln.startswith("VmHWM:")).split()[1])


@checked
def test_forwarding_bounds_answer_and_timeout(trio):
    """--forward-max-answer: an answer of the leader larger than it is not
    relayed (502 answer_too_large naming the flag) and the follower goes on
    serving; --forward-timeout: a request the leader holds longer (a long
    poll) gets 503 no_leader naming the flag; and the flags refuse bad
    values, naming themselves."""
    for flag, bad in (("--forward-max-answer", "1KiB"), ("--forward-max-buffered", "lots"),
                      ("--forward-timeout", "10ms")):
        p = subprocess.run([DAEMON, flag, bad], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and flag in p.stderr, (flag, bad, p.stderr)
    need_pg()
    a, b = follower_of(trio, ["--forward-max-answer", "64KiB", "--forward-timeout", "1s"])
    st, _, js = call(b.port, "GET", "/v1/events?limit=100")  # about 400 KiB
    assert st == 502 and js["error"]["code"] == "answer_too_large", (st, js)
    assert "--forward-max-answer" in js["error"]["message"], js
    st, _, js = b.request("GET", "/v1/events?limit=10")  # about 40 KiB: relayed
    assert st == 200 and len(js["events"]) == 10, (st, js)
    st, _, js = a.request("PUT", "/v1/groups/g", {"types": ["t.none"]})
    assert st in (200, 201), js
    t0 = time.time()
    st, h, js = call(b.port, "POST", "/v1/groups/g/pull", {"consumer": "c", "wait_ms": 20000})
    assert st == 503 and js["error"]["code"] == "no_leader", (st, js)
    assert "--forward-timeout" in js["error"]["message"] and h.get("retry-after") == "1", js
    assert time.time() - t0 < 15, "the long poll was not cut by --forward-timeout"
    st, _, js = b.request("GET", "/v1/events?limit=1")
    assert st == 200 and len(js["events"]) == 1, (st, js)
    role = b.role()
    assert role["relay_bytes"] == 0 and 30000 < role["relay_bytes_peak"] <= 65536, role


@checked
def test_forwarding_budget_overloaded_others_complete(trio):
    """--forward-max-buffered: many large answers relayed at once hold at
    most the budget; the requests past it get 503 overloaded naming the
    flag while the others complete whole, and the follower serves on.
    (Answers of 4 MiB, larger than a socket holds, so they arrive in
    pieces and several are being received at once; two fit the budget.)"""
    need_pg()
    budget = 10 << 20
    a, b = follower_of(trio, ["--forward-max-answer", "8MiB",
                              "--forward-max-buffered", str(budget)], events=1000)
    path = "/v1/events?limit=1000"
    one = len(json.dumps(a.request("GET", path)[2]))  # about 4.2 MB
    assert 2 * one <= budget < 3 * one, one
    hwm0 = vm_hwm_kib(b)
    seen = {200: 0, 503: 0}
    for _ in range(10):
        got = []

        def get():
            got.append(call(b.port, "GET", path, timeout=120))
        threads = [threading.Thread(target=get) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for st, h, js in got:
            assert st in (200, 503), (st, js)
            if st == 200:
                assert len(js["events"]) == 1000, len(js["events"])
            else:
                assert js["error"]["code"] == "overloaded", js
                assert "--forward-max-buffered" in js["error"]["message"], js
                assert h.get("retry-after") == "1", h
            seen[st] += 1
        if seen[200] and seen[503]:
            break
    assert seen[200] and seen[503], seen
    role = b.role()
    peak = role["relay_bytes_peak"]
    assert role["relay_bytes"] == 0 and one <= peak <= budget, (one, role)
    st, _, js = b.request("GET", "/v1/events?limit=100")
    assert st == 200 and len(js["events"]) == 100, (st, js)
    print(f"        {seen[200]} relayed whole, {seen[503]} refused overloaded; the most held at "
          f"once {peak} of {budget} bytes ({one} an answer); the follower's peak RSS grew "
          f"{vm_hwm_kib(b) - hwm0} KiB")


@checked
def test_fault_nodes_killed_and_restarted_for_a_minute(trio):
    need_pg()
    nodes = trio.start()
    ports = [n.port for n in nodes]
    for g in ("g1", "g2"):
        st, _, js = nodes[0].request("PUT", f"/v1/groups/{g}",
                                     {"types": ["t.x"], "start": "earliest",
                                      "ack_timeout_ms": 3000})
        assert st in (200, 201), js
    book, drain = Book(), threading.Event()
    threads = [threading.Thread(target=publisher, args=(book, ports, k)) for k in range(3)]
    threads += [threading.Thread(target=consumer, args=(book, ports, g, f"{g}-c{k}", k, drain))
                for g in ("g1", "g2") for k in range(2)]
    for t in threads:
        t.start()
    rnd = random.Random(20)
    leaders, t_end = set(), time.time() + FAULT_SECONDS
    try:
        while time.time() < t_end:
            time.sleep(rnd.uniform(1.5, 3.0))
            lead = trio.leader()
            leaders.add((lead.url, lead.role()["epoch"]))
            victim = lead if rnd.random() < 0.5 else rnd.choice([n for n in nodes if n is not lead])
            book.kills += 1
            book.leader_kills += victim is lead
            victim.kill9()
            time.sleep(rnd.uniform(0.2, 1.5))
            victim.start()
    finally:
        book.stop.set()
    for t in threads[:3]:
        t.join()
    lead = trio.leader()
    # Drain: every acknowledged publish reaches both groups.
    end = time.time() + 40
    while time.time() < end:
        with book.mu:
            missing = {g: book.acked - set(book.delivered[g]) for g in ("g1", "g2")}
        if not any(missing.values()):
            break
        time.sleep(0.2)
    drain.set()
    for t in threads[3:]:
        t.join()
    epochs = lead.role()["epoch"]
    evs = all_events(lead)
    ids = [e["id"] for e in evs]
    redelivered = {g: sum(n - 1 for n in book.delivered[g].values()) for g in ("g1", "g2")}
    print(f"        {FAULT_SECONDS:.0f} s: {book.publishes} publishes, {len(book.acked)} "
          f"acknowledged, {len(evs)} stored; {book.kills} kills ({book.leader_kills} of the "
          f"leader), {epochs - 1} leader changes; deliveries g1 {sum(book.delivered['g1'].values())}"
          f", g2 {sum(book.delivered['g2'].values())}; redeliveries (leases not acknowledged) "
          f"g1 {redelivered['g1']}, g2 {redelivered['g2']}; acks confirmed g1 "
          f"{len(book.confirmed['g1'])}, g2 {len(book.confirmed['g2'])}; delivered to a pull begun "
          f"before its ack's 2xx (concurrent) {book.overlap}")
    least = max(2, int(FAULT_SECONDS / 12))  # a kill every 2-4.5 s
    assert book.kills >= least and book.leader_kills >= least // 3, \
        (book.kills, book.leader_kills)
    assert epochs > least // 3, epochs
    assert len(book.acked) > 100, len(book.acked)
    assert not book.acked - set(ids), sorted(book.acked - set(ids))[:10]     # nothing lost
    assert len(ids) == len(set(ids)), "an id stored twice"
    assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1)), "a gap in the seqs"
    assert not any(missing.values()), {g: sorted(m)[:5] for g, m in missing.items()}
    assert not book.after_ack, book.after_ack[:10]


def test_takeover_reads_the_old_leaders_partition_summaries(trio):
    """Partitions of 256 seqs (EB_TEST_PG_PART_SEQS): the leader summarizes
    each complete partition; when it is SIGKILLed the follower that takes
    over loads those summaries and reads only the events after them (its
    startup line's "records read": about a partition, not all 1,500), and
    finds every event by id and by (source, id)."""
    need_pg()
    os.environ["EB_TEST_PG_PART_SEQS"] = "256"
    try:
        a, b, c = trio.start()
        assert a.role()["role"] == "leader"
        seqs = {}
        for k in range(0, 1500, 100):
            evs = [{"type": "t.x", "id": f"tk-{i}", "source": f"s{i % 2}", "data": {}}
                   for i in range(k, k + 100)]
            st, _, js = a.request("POST", "/v1/events/batch", evs)
            assert st == 201, js
            for i, r in zip(range(k, k + 100), js["results"]):
                seqs[i] = r["seq"]
        for _ in range(200):
            n = int(pg_cluster().query(trio.db, "SELECT count(*) FROM eb_summaries"))
            if n == 1500 // 256:
                break
            time.sleep(0.1)
        assert n == 1500 // 256, n
        a.kill9()
        new = trio.leader()
        with open(new.log_path, errors="replace") as f:
            reads = re.findall(r"events lookups and counts: (\d+) records read", f.read())
        assert reads and int(reads[-1]) <= 256, (reads, new.log_tail())
        for i in range(0, 1500, 7):
            r = failover([new.port], "GET", f"/v1/events/tk-{i}?source=s{i % 2}")
            assert r and r[0] == 200 and r[2]["seq"] == seqs[i], (i, r)
        print(f"        takeover read {reads[-1]} of 1500 events at open")
    finally:
        os.environ.pop("EB_TEST_PG_PART_SEQS", None)


if __name__ == "__main__":
    run_tests(globals(), fixture=Trio)
