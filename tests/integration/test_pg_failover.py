#!/usr/bin/env python3
"""PostgreSQL failover under load (issue 20), against real eventbusd nodes
and a real PostgreSQL primary with a synchronous standby, both in
temporary directories (tests/tools/pgcluster.py: initdb, pg_basebackup -R,
synchronous_standby_names, synchronous_commit on), as the unprivileged
user that tool uses.

The nodes take a multi-host URI (both servers, target_session_attrs=
read-write). Publishers (client ids, retried with the same id on a 503, as
the clients do) and a consumer that acks run against them; the primary is
killed with `pg_ctl stop -m immediate` and the standby promoted with
`pg_ctl promote`. Meanwhile the nodes answer 503 storage_unavailable
(counted); they reconnect by themselves. Afterwards: every acknowledged
publish is in the log once, with consecutive seqs (a commit the dead
primary may have flushed but the standby never confirmed was never
acknowledged, and its seqs are handed out again: neither a duplicate nor a
gap), and delivered; no event whose ack was acknowledged is delivered
again, also after a SIGKILL of the nodes. The time to recover (kill ->
first 2xx publish) is printed.

EB_FAILOVER_NODES (default 1) eventbusd nodes on the one database, the
publishers and the consumer's requests spread over them. Meson suite 'pg'
(EB_TEST_STORE=pg); skipped elsewhere, or without PostgreSQL."""
import os
import re
import sys
import threading
import time

from harness import PG, Server, Skip, run_tests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import pgcluster  # noqa: E402

NODES = int(os.environ.get("EB_FAILOVER_NODES", "1"))
PUBLISHERS = 4
BATCH = 20
PROMOTE_AFTER_S = 0.5  # what a failover manager takes to decide, at the least


class Node(Server):
    """An eventbusd on a given store URI (no database of its own to drop)."""

    def __init__(self, uri, extra_args=None):
        super().__init__(extra_args)
        self.uri = uri

    def store_args(self):
        return ["--store", self.uri]

    def current_port(self):
        """The port of the newest "listening on" line of its log: a leader
        that finds another node took over re-executes itself and, started
        on port 0, listens on a new one."""
        with open(self.log_path, errors="replace") as f:
            ports = re.findall(r"listening on \S+ \(port (\d+)\)(?! with TLS)", f.read())
        if ports:
            self.port = int(ports[-1])
        return self.port


def need_pg():
    """Skips a test that makes clusters of its own where it cannot run."""
    if not PG:
        raise Skip("needs EB_TEST_STORE=pg (meson suite 'pg')")
    if not pgcluster.available():
        raise Skip("PostgreSQL is not installed (run scripts/deps.sh)")


class Failover:
    """The test's world: a primary, its synchronous standby, the nodes."""

    def __init__(self):
        self.primary = self.standby = None
        self.nodes = []

    def start(self):
        need_pg()
        self.primary = pgcluster.Cluster(tcp=True)
        self.standby = self.primary.add_sync_standby()
        db, _ = self.primary.create_db()
        self.uri = self.primary.multi_host_uri(db, self.standby)
        for _ in range(NODES):
            self.nodes.append(Node(self.uri).start())

    def log_tail(self):
        out = [f"--- node {i} ---\n{n.log_tail()}" for i, n in enumerate(self.nodes)]
        for name, c in (("primary", self.primary), ("standby", self.standby)):
            if c:
                out.append(f"--- {name} ---\n{c.log_tail(10)}")
        return "\n".join(out)

    def cleanup(self):
        for n in self.nodes:
            n.cleanup()
        for c in (self.standby, self.primary):
            if c:
                c.stop()


def client(node):
    """A connection of its own to a node (one per thread)."""
    s = Server.__new__(Server)
    s.port, s.conn, s.token, s.node = node.current_port(), None, node.token, node
    return s


def lost(c):
    """After a connection failure: the next try goes to the node's port now
    (it may have re-executed itself as a follower on a new one)."""
    c.close_conn()
    c.port = c.node.current_port()
    time.sleep(0.05)


class Load:
    """Publishers and one acking consumer, and what they were told."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.mu = threading.Lock()
        self.stop_pub = threading.Event()
        self.stop_con = threading.Event()
        # Set when the test failed (abort()): every loop, retries too, ends
        # at once, so a failed check fails the suite instead of leaving
        # threads that keep the process alive until meson's timeout.
        self.aborted = threading.Event()
        self.published = set()   # ids acknowledged to publishers
        self.pub_refused = 0     # 503 storage_unavailable to a publish
        self.ack_refused = 0     # ... to an ack
        self.other = []          # any other unexpected answer
        self.ok_times = []       # (sent, answered) of each publish that got a 2xx and wrote
        self.delivered = set()   # ids delivered to the consumer
        self.acked = set()       # ids whose ack was acknowledged
        self.again = []          # (id) delivered after its ack was acknowledged
        self.threads = [threading.Thread(target=self.publisher, args=(k,), daemon=True)
                        for k in range(PUBLISHERS)]
        self.threads.append(threading.Thread(target=self.consumer, daemon=True))

    def start(self):
        for t in self.threads:
            t.start()

    def abort(self):
        """Ends every thread (the test failed): stop, and wait a little.
        They are daemon threads too, so one stuck in a request cannot keep
        the process alive."""
        self.aborted.set()
        self.stop_pub.set()
        self.stop_con.set()
        for t in self.threads:
            t.join(timeout=10)

    def refused(self, st, js):
        return st == 503 and js.get("error", {}).get("code") == "storage_unavailable"

    def publisher(self, k):
        c = client(self.nodes[k % len(self.nodes)])
        n = 0
        while not self.stop_pub.is_set():
            ids = [f"p{k}-{n + i}" for i in range(BATCH)]
            n += BATCH
            batch = [{"type": "fo.x", "source": "failover", "id": i, "data": {"i": i}}
                     for i in ids]
            while not self.aborted.is_set():  # the same ids until acknowledged
                sent = time.time()
                try:
                    st, _, js = c.request("POST", "/v1/events/batch", batch, timeout=60)
                except OSError:
                    lost(c)
                    continue
                if st in (200, 201):
                    with self.mu:
                        self.published.update(r["id"] for r in js["results"])
                        if not all(r.get("duplicate") for r in js["results"]):
                            # (a resend answered from the dedupe window
                            # wrote nothing: not a sign of recovery)
                            self.ok_times.append((sent, time.time()))
                    break
                with self.mu:
                    if self.refused(st, js):
                        self.pub_refused += 1
                    else:
                        self.other.append(("publish", st, js))
                time.sleep(0.05)

    def ack(self, c, ids):
        while not self.aborted.is_set():
            try:
                st, _, js = c.request("POST", "/v1/groups/g/ack", {"ids": ids}, timeout=60)
            except OSError:
                lost(c)
                continue
            if st == 200:
                return js
            with self.mu:
                if self.refused(st, js):
                    self.ack_refused += 1
                else:
                    self.other.append(("ack", st, js))
                    return None
            time.sleep(0.05)

    def consumer(self):
        conns = [client(n) for n in self.nodes]
        r = 0
        while not self.stop_con.is_set():
            c = conns[r % len(conns)]
            r += 1
            try:
                st, _, js = c.request("POST", "/v1/groups/g/pull",
                                      {"consumer": "c", "max": 100, "wait_ms": 200}, timeout=60)
            except OSError:
                lost(c)
                continue
            if st != 200:
                with self.mu:
                    if not self.refused(st, js):
                        self.other.append(("pull", st, js))
                time.sleep(0.05)
                continue
            evs = js["events"]
            if not evs:
                continue
            with self.mu:
                for e in evs:
                    if e["id"] in self.acked:
                        self.again.append(e["id"])
                    self.delivered.add(e["id"])
            by_dlv = {e["delivery"]["id"]: e["id"] for e in evs}
            js = self.ack(c, list(by_dlv))
            if js:
                unknown = set(js.get("unknown", []))
                with self.mu:
                    self.acked.update(i for d, i in by_dlv.items() if d not in unknown)


def log_events(node):
    """Every event in the log, oldest first: (seq, id)."""
    out, after = [], None
    c = client(node)
    while True:
        q = "/v1/events?limit=1000" + (f"&after_seq={after}" if after is not None else "")
        st, _, js = c.request("GET", q)
        assert st == 200, js
        out += [(e["seq"], e["id"]) for e in js["events"]]
        after = js["next_after_seq"]
        if after is None:
            return out


def drain(load):
    """Stops the publishers, lets the consumer get (and ack) every
    acknowledged publish (60 s at most), stops it: the ids acknowledged."""
    load.stop_pub.set()
    for t in load.threads[:-1]:
        t.join(timeout=120)
    with load.mu:
        published = set(load.published)
    end = time.time() + 60
    while time.time() < end:
        with load.mu:
            if published <= load.delivered:
                break
        time.sleep(0.1)
    load.stop_con.set()
    load.threads[-1].join(timeout=120)
    return published


def check_log(node, load, published):
    """Every acknowledged publish is in the log once, the seqs consecutive;
    every one delivered; no event whose ack was acknowledged delivered
    again. (An ack answered 503 changed nothing: the consumer's retry
    writes it; an id its retry finds "unknown" -- its lease ran out
    meanwhile -- is not counted as acked.) The log's (seq, id)s."""
    assert not load.other, load.other[:5]
    events = log_events(node)
    ids = [i for _, i in events]
    assert len(ids) == len(set(ids)), "an event is in the log twice"
    assert published <= set(ids), sorted(published - set(ids))[:10]
    seqs = [s for s, _ in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap in the seqs"
    assert published <= load.delivered, sorted(published - load.delivered)[:10]
    assert not load.again, load.again[:10]
    return events


def failover(fx, tail_on_primary_only=False):
    """Starts the load, then checked_failover. tail_on_primary_only: the
    standby is stopped first, so that the primary flushes commits no
    standby confirms (they wait), then the primary is killed and the
    standby started again and promoted without them."""
    fx.start()
    node0 = fx.nodes[0]
    st, _, js = node0.request("PUT", "/v1/groups/g", {"types": ["fo.>"], "start": "earliest",
                                                      "ack_timeout_ms": 60000})
    assert st == 201, js
    load = Load(fx.nodes)
    load.start()
    try:
        return checked_failover(fx, load, tail_on_primary_only)
    finally:
        load.abort()  # a failed check ends the threads: no hang


def checked_failover(fx, load, tail_on_primary_only):
    time.sleep(2)  # the load in its stride
    with load.mu:
        before = len(load.published)
    assert before > 0, "nothing published before the failover"
    if tail_on_primary_only:
        fx.standby.stop_immediate()
        time.sleep(0.3)  # commits flushed on the primary wait for the standby
    t_kill = time.time()
    fx.primary.stop_immediate()
    if tail_on_primary_only:
        fx.standby.start_server()  # a standby again, without that tail
    time.sleep(PROMOTE_AFTER_S)
    t_promote = time.time()
    fx.standby.promote()
    t_promoted = time.time()
    end = time.time() + 60  # back: a publish acknowledged after the kill
    while time.time() < end and not any(t > t_promoted for _, t in load.ok_times):
        time.sleep(0.02)
    time.sleep(2)  # and the load runs on the new primary a while
    published = drain(load)
    ok_after = sorted(t for sent, t in load.ok_times if sent > t_kill)
    assert ok_after, "no publish sent after the kill acknowledged"
    first_ok = ok_after[0]
    print(f"    failover: {NODES} node(s); {len(published)} events published "
          f"({before} before the kill), {load.pub_refused} publishes and {load.ack_refused} "
          f"acks answered 503 storage_unavailable; promote {t_promote - t_kill:.2f} s after "
          f"the kill (pg_ctl promote took {t_promoted - t_promote:.2f} s); time to recover "
          f"(kill -> first 2xx to a publish sent after it): {first_ok - t_kill:.2f} s, "
          f"{first_ok - t_promoted:.2f} s after the promotion", flush=True)
    assert load.pub_refused + load.ack_refused > 0, "no 503 while the database was away"
    events = check_log(fx.nodes[0], load, published)
    print(f"    acks: {len(load.acked)} acknowledged, {len(load.delivered - load.acked)} "
          f"delivered events without an acknowledged ack", flush=True)
    # the acks hold after a SIGKILL of every node (they are in the new primary)
    for n in fx.nodes:
        n.kill9()
        n.start()
    # Killed and restarted at once, every node may find the leader lock
    # still held by the last leader's dying session and follow it for a
    # moment (503 no_leader): one leads once that session ends.
    end = time.time() + 20
    while not any(n.request("GET", "/v1/cluster")[2]["role"] == "leader"
                  for n in fx.nodes if n.current_port()):
        assert time.time() < end, "no leader after restarting every node"
        time.sleep(0.05)
    again = []
    for n in fx.nodes:
        n.current_port()
        while True:
            st, _, js = n.request("POST", "/v1/groups/g/pull",
                                  {"consumer": "c2", "max": 100, "wait_ms": 300})
            assert st == 200, js
            if not js["events"]:
                break
            again += [e["id"] for e in js["events"] if e["id"] in load.acked]
            st, _, _ = n.request("POST", "/v1/groups/g/ack",
                                 {"ids": [e["delivery"]["id"] for e in js["events"]]})
            assert st == 200
    assert not again, again[:10]
    return events


def rows(cluster, db):
    """seq -> (ts, md5 of data) of the cluster's events."""
    out = cluster.query(db, "SELECT seq, ts, md5(data) FROM eb_events ORDER BY seq")
    return {int(r.split("|")[0]): tuple(r.split("|")[1:]) for r in out.splitlines() if r}


def test_primary_killed_standby_promoted_nothing_acknowledged_lost(fx):
    failover(fx)


def test_commit_flushed_on_the_dead_primary_alone_is_not_acknowledged(fx):
    """The batch being committed when the primary dies is flushed there but
    never reached the standby: it must not be reported durable (its
    publishes answer 503 and are retried), and its seqs are given to the
    retries without a duplicate or a gap. Proof that the case happened:
    the old primary, started again read-only afterwards, holds rows the new
    one does not."""
    failover(fx, tail_on_primary_only=True)
    for n in fx.nodes:
        n.kill9()
    db = fx.uri.split("/")[-1].split("?")[0]
    new = rows(fx.standby, db)
    fx.primary.settings.append("default_transaction_read_only=on")
    fx.primary.start_server()
    old = rows(fx.primary, db)
    only_old = [s for s, r in old.items() if new.get(s) != r]
    print(f"    {len(only_old)} events committed on the dead primary alone (seqs "
          f"{min(only_old) if only_old else '-'}..{max(only_old) if only_old else '-'}); "
          f"none acknowledged, their seqs reused", flush=True)
    assert only_old, "the primary had no commit of its own when it died"


if __name__ == "__main__":
    run_tests(globals(), fixture=Failover)
