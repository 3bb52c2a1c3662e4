#!/usr/bin/env python3
"""A database that stops answering without closing its connections (issue
20): --store-timeout bounds every wait for it.

A frozen or partitioned database host, or a primary whose machine lost
power, sends no RST: without a bound, a commit under way waits for the
kernel's TCP retransmission timeout (~15 minutes) and every publish and
ack queued behind it waits with it. Here the database is frozen for real:
its own cluster (tests/tools/pgcluster.py), the postmaster and every
backend SIGSTOPped (SIGCONT in a finally, so nothing is left stopped),
the connections open. With --store-timeout 1s, a publish and an ack sent
to the frozen database, and new ones after them, are answered 503
storage_unavailable within a few multiples of the bound (the assertion is
generous: the check is that they do not wait for the database to return);
/healthz answers meanwhile. After SIGCONT the node recovers by itself,
under publishers and an acking consumer (test_pg_failover.py's load):
every 2xx-acknowledged publish is in the log once and delivered, and no
event whose ack was acknowledged is delivered again.

Meson suite 'pg' (EB_TEST_STORE=pg); skipped elsewhere, or without
PostgreSQL. Every request has a client timeout and the suite a meson
timeout, so a node that waits for the database fails the test instead of
hanging CI."""
import os
import signal
import sys
import threading
import time

from harness import assert_flag_refused, run_tests
from test_pg_failover import Load, Node, check_log, drain, need_pg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import pgcluster  # noqa: E402

BOUND_S = 1.0
ANSWER_WITHIN_S = 15.0  # generous: 15 x the bound (a loaded machine), far below TCP's ~15 min
FROZEN_S = 8.0          # how long the database stays frozen at least


class Frozen:
    """The test's world: a cluster of its own (it is frozen) and a node."""

    def __init__(self):
        self.cluster = None
        self.nodes = []

    def start(self):
        need_pg()
        self.cluster = pgcluster.Cluster()
        db, uri = self.cluster.create_db()
        self.nodes.append(Node(uri, ["--store-timeout", f"{int(BOUND_S * 1000)}ms"]).start())

    def log_tail(self):
        out = [f"--- node {i} ---\n{n.log_tail()}" for i, n in enumerate(self.nodes)]
        if self.cluster:
            out.append(f"--- postgres ---\n{self.cluster.log_tail(10)}")
        return "\n".join(out)

    def cleanup(self):
        for n in self.nodes:
            n.cleanup()
        if self.cluster:
            self.cluster.stop()


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def freeze(cluster):
    """SIGSTOP the postmaster (no new backends), then every process it
    started. The list is for thaw."""
    pm = cluster.proc.pid
    os.kill(pm, signal.SIGSTOP)
    pids = [pm] + children(pm)
    for p in pids[1:]:
        os.kill(p, signal.SIGSTOP)
    return pids


def thaw(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGCONT)
        except ProcessLookupError:
            pass


def timed(node, method, path, body, out):
    """A request in a thread: out gets (status, json, seconds) or the error."""
    t0 = time.time()
    try:
        st, _, js = node.request(method, path, body, timeout=ANSWER_WITHIN_S * 3)
        out.append((st, js, time.time() - t0))
    except OSError as e:
        out.append((None, str(e), time.time() - t0))


def refused(r):
    st, js, _ = r
    return st == 503 and isinstance(js, dict) and \
        js.get("error", {}).get("code") == "storage_unavailable"


def test_frozen_database_answers_503_within_the_bound_then_recovers(fx):
    fx.start()
    node = fx.nodes[0]
    for g in ("g", "h"):
        st, _, js = node.request("PUT", f"/v1/groups/{g}", {"types": ["fo.>"],
                                 "start": "earliest", "ack_timeout_ms": 60000})
        assert st == 201, js
    load = Load(fx.nodes)
    load.start()
    pids = []
    try:
        time.sleep(2)  # the load in its stride
        with load.mu:
            before = len(load.published)
        assert before > 0, "nothing published before the freeze"
        # a delivery of group h held, its ack sent once the database is frozen
        st, _, js = node.request("POST", "/v1/groups/h/pull", {"consumer": "x", "max": 1})
        assert st == 200 and js["events"], js
        held = js["events"][0]["delivery"]["id"]

        pids = freeze(fx.cluster)
        t_freeze = time.time()
        try:
            pub, ack = [], []
            threads = [threading.Thread(target=timed, args=(
                           node, "POST", "/v1/events", {"type": "fo.frozen", "source": "t",
                                                        "id": "frozen-1", "data": {}}, pub)),
                       threading.Thread(target=timed, args=(
                           node, "POST", "/v1/groups/h/ack", {"ids": [held]}, ack))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=ANSWER_WITHIN_S * 3)
            for name, r in (("publish", pub), ("ack", ack)):
                assert r, f"the {name} in flight got no answer while the database was frozen"
                assert refused(r[0]), (name, r[0])
                assert r[0][2] < ANSWER_WITHIN_S, (name, r[0])
            # a new publish and a new ack after them: 503 within the bound
            for name, path, body in (
                    ("publish", "/v1/events", {"type": "fo.frozen", "source": "t",
                                               "id": "frozen-2", "data": {}}),
                    ("ack", "/v1/groups/h/ack", {"ids": [held]})):
                r = []
                timed(node, "POST", path, body, r)
                assert refused(r[0]) and r[0][2] < ANSWER_WITHIN_S, (name, r[0])
            t0 = time.time()
            st, _, js = node.request("GET", "/healthz", timeout=ANSWER_WITHIN_S)
            assert st in (200, 503) and time.time() - t0 < ANSWER_WITHIN_S, (st, js)
            print(f"    frozen: publish in flight answered {pub[0][0]} in {pub[0][2]:.2f} s, "
                  f"ack in flight {ack[0][0]} in {ack[0][2]:.2f} s (--store-timeout "
                  f"{BOUND_S:.0f} s); /healthz {st}", flush=True)
            left = FROZEN_S - (time.time() - t_freeze)
            if left > 0:
                time.sleep(left)  # the load's requests keep meeting the frozen database
        finally:
            thaw(pids)
        t_thaw = time.time()
        end = time.time() + 60  # back by itself: a publish sent after the thaw acknowledged
        while time.time() < end and not any(s > t_thaw for s, _ in load.ok_times):
            time.sleep(0.05)
        ok_after = sorted(t for s, t in load.ok_times if s > t_thaw)
        assert ok_after, "no publish acknowledged within 60 s of the thaw"
        time.sleep(1)
        published = drain(load)
        print(f"    {len(published)} events published ({before} before the freeze), "
              f"{load.pub_refused} publishes and {load.ack_refused} acks answered 503; "
              f"recovered {ok_after[0] - t_thaw:.2f} s after the thaw", flush=True)
        check_log(node, load, published)
    finally:
        thaw(pids)
        load.abort()


def test_store_timeout_flag_bounds(fx):
    """--store-timeout takes 100ms to 1h; anything else is refused naming it."""
    fx.start()
    assert_flag_refused(fx.nodes[0], "--store-timeout", ["0", "99ms", "2h", "x", "-1"])


if __name__ == "__main__":
    run_tests(globals(), fixture=Frozen)
