#!/usr/bin/env python3
"""Power-loss test: only what was synced is promised, and all of it is kept.

1. Record. eventbusd runs under the write-tracking shim (shim.c, LD_PRELOAD)
   on an empty data dir with small segments, meta snapshots and size
   retention, while this script drives a workload over HTTP: publishes
   (single and batch), schema registrations, group creates, updates,
   pauses, resumes and deletes, pulls, acks and nacks. For every request it
   notes the trace's size when the request was sent and when its 2xx came
   back: the shim records a sync after it returns, so an operation is
   acknowledged before cut point c when its 2xx came at a trace size no
   greater than record c's end.
2. Crash states. For a cut point, model.py replays the trace and writes a
   directory a power cut could leave (the model is in its docstring);
   several random choices of the unsynced operations per cut, and the
   state that keeps none of them.
3. Check. eventbusd (the binary under test) starts on the state; it must
   recover and serve every event acknowledged before the cut with its seq
   and content, serve nothing that was not published (but the server's own
   eventbus.dead_letter notices, each naming one of our events), keep every
   acknowledged schema and group change, not redeliver an acknowledged ack,
   still deliver every acknowledged event not acked; it must stop cleanly
   and `eventbus-log verify` must pass on both logs.

Under --fsync interval the promise is weaker: an operation must survive only
if its 2xx came more than one interval (plus --margin-ms) before the cut.

--expect-fail (for builds with a planted missing sync, meson -Dfault=...)
turns the verdict round: the run passes when some crash state fails.

Ends with "N passed, N failed" (one per crash state). A failure prints its
cut, seed and mode; --cut/--seed/--mode rerun one state, --keep keeps it.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model  # noqa: E402

# g3 dead-letters at its first failure: an acknowledged nack must leave its
# event in the DLQ, never delivered again.
GROUP_TYPES = {"g1": ["pl.*"], "g2": ["pl.order"], "g3": ["pl.pay"]}
MAX_ATTEMPTS = {"g1": 1000, "g2": 1000, "g3": 1}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = None

    def req(self, method, path, body=None, timeout=10):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
                data = json.dumps(body).encode() if body is not None else None
                hdrs = {"Content-Type": "application/json"} if data is not None else {}
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (ConnectionError, http.client.HTTPException):
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


def start_server(binary, data, fsync, interval_ms, log_path, env=None, args=()):
    """Returns (proc, client) once /healthz answers, or (proc, None) if it exited."""
    for _ in range(5):
        port = free_port()
        log = open(log_path, "a")
        proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{port}", "--data", data, "--fsync", fsync,
             "--fsync-interval-ms", str(interval_ms), "--log-level", "info"] + list(args),
            stdout=log, stderr=log, env=env)
        log.close()
        c = Client(port)
        end = time.time() + 20
        while time.time() < end:
            if proc.poll() is not None:
                break
            try:
                if c.req("GET", "/healthz", timeout=1)[0] == 200:
                    return proc, c
            except OSError:
                c.close()
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with open(log_path) as f:
            if "address already in use" not in f.read().lower():
                return proc, None
    return proc, None


# --- 1. recording ------------------------------------------------------------

class Recorder:
    """Drives the workload; keeps every operation with its trace positions."""

    def __init__(self, client, trace, rng):
        self.c, self.trace, self.rng = client, trace, rng
        self.ops = []  # dicts: kind, sent, acked (trace pos or None), t_ack, ...
        self.n = 0

    def pos(self):
        try:
            return os.path.getsize(self.trace)
        except OSError:
            return 0

    def do(self, kind, method, path, body, **info):
        sent = self.pos()
        st, ans = self.c.req(method, path, body)
        op = dict(kind=kind, sent=sent, status=st, ans=ans, **info)
        if 200 <= st < 300:
            op["acked"] = self.pos()
            op["t_ack"] = time.monotonic_ns()
        else:
            op["acked"] = None
        self.ops.append(op)
        return st, ans

    def event(self, etype):
        self.n += 1
        size = self.rng.choice([40, 200, 900, 3000])
        return {"type": etype, "id": f"e-{self.n}",
                "data": {"n": self.n, "pad": "x" * self.rng.randrange(size)}}

    def publish(self):
        ev = self.event(self.rng.choice(["pl.order", "pl.pay"]))
        st, ans = self.do("publish", "POST", "/v1/events", ev, events=[ev])
        if st not in (200, 201):
            raise AssertionError(f"publish answered {st}: {ans}")

    def batch(self):
        evs = [self.event("pl.order") for _ in range(self.rng.randrange(2, 8))]
        st, ans = self.do("publish", "POST", "/v1/events/batch", evs, events=evs)
        if st not in (200, 201):
            raise AssertionError(f"batch answered {st}: {ans}")

    def consume(self, group, nack_all=False):
        st, ans = self.do("pull", "POST", f"/v1/groups/{group}/pull",
                          {"consumer": "c1", "max": 8}, group=group)
        if st != 200:
            raise AssertionError(f"pull answered {st}: {ans}")
        evs = ans["events"]
        acks = [e for e in evs if not nack_all and self.rng.random() < 0.7]
        nacks = [e for e in evs if e not in acks]
        if acks:
            st, ans = self.do("ack", "POST", f"/v1/groups/{group}/ack",
                              {"ids": [e["delivery"]["id"] for e in acks]},
                              group=group, seqs=[e["seq"] for e in acks])
            if st != 200 or ans["unknown"]:
                raise AssertionError(f"ack answered {st}: {ans}")
        if nacks:
            self.do("nack", "POST", f"/v1/groups/{group}/nack",
                    {"ids": [e["delivery"]["id"] for e in nacks], "error": "pl",
                     "delay_ms": 0}, group=group, seqs=[e["seq"] for e in nacks])

    def setting(self, key, value, method, path, body):
        """A change of one observable setting (key), e.g. a group's existence."""
        st, ans = self.do("setting", method, path, body, key=key, value=value)
        if not 200 <= st < 300:
            raise AssertionError(f"{method} {path} answered {st}: {ans}")


def record(args, work):
    """Runs the workload under the shim; returns (ops, trace path)."""
    data = os.path.join(work, "data")
    os.makedirs(data)
    trace = os.path.join(work, "trace")
    env = dict(os.environ, LD_PRELOAD=args.shim, EB_PL_DIR=data, EB_PL_TRACE=trace,
               EB_TEST_SEGMENT_BYTES=str(args.segment_bytes))
    proc, c = start_server(args.eventbusd, data, args.fsync, args.interval_ms,
                           os.path.join(work, "record.log"), env=env,
                           args=["--meta-snapshot-bytes", "4096",
                                 "--retention-bytes", str(args.segment_bytes * 6)])
    if c is None:
        raise RuntimeError("eventbusd did not start under the shim:\n" + tail(work, "record.log"))
    rng = random.Random(args.seed)
    r = Recorder(c, trace, rng)
    try:
        r.setting("schema:pl.order", 1, "PUT", "/v1/schemas/pl.order",
                  {"schema": {"type": "object", "title": "v1"}, "compatibility": "none"})
        for g, types in GROUP_TYPES.items():
            r.setting(f"group:{g}", True, "PUT", f"/v1/groups/{g}",
                      {"types": types, "start": "earliest", "max_attempts": MAX_ATTEMPTS[g]})
        r.setting("paused:g2", False, "POST", "/v1/groups/g2/resume", None)
        version, paused = 1, False
        end = time.time() + args.seconds
        rounds = 0
        while time.time() < end or rounds < 10:
            rounds += 1
            if args.fsync == "interval" and rounds % 40 == 0:
                # quiet spells: acknowledged appends older than the promise
                # that only the periodic sync can have made durable
                time.sleep((args.interval_ms + args.margin_ms) / 1000 + 0.2)
            for _ in range(rng.randrange(1, 4)):
                r.publish()
            if rng.random() < 0.5:
                r.batch()
            r.consume("g1")
            if rng.random() < 0.3:
                r.consume("g3", nack_all=True)
            if rng.random() < 0.5:
                r.consume("g2")
            x = rng.random()
            if x < 0.1:
                version += 1
                r.setting("schema:pl.order", version, "PUT", "/v1/schemas/pl.order",
                          {"schema": {"type": "object", "title": f"v{version}"}})
            elif x < 0.2:
                paused = not paused
                r.setting("paused:g2", paused, "POST",
                          f"/v1/groups/g2/{'pause' if paused else 'resume'}", None)
            elif x < 0.3:
                r.setting("config:g2", rounds, "PUT", "/v1/groups/g2",
                          {"types": GROUP_TYPES["g2"], "max_attempts": 1000,
                           "ack_timeout_ms": 30000 + rounds})
            elif x < 0.4:
                g = f"t{rounds % 3}"
                st, _ = c.req("GET", f"/v1/groups/{g}")
                if st == 200:
                    r.setting(f"group:{g}", False, "DELETE", f"/v1/groups/{g}", None)
                else:
                    r.setting(f"group:{g}", True, "PUT", f"/v1/groups/{g}", {"types": ["x"]})
    finally:
        proc.send_signal(signal.SIGKILL)  # the trace ends here: no clean close
        proc.wait()
        c.close()
    return r.ops, trace


def tail(work, name, n=2000):
    try:
        with open(os.path.join(work, name), errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


# --- 3. checking one crash state ---------------------------------------------

class Expect:
    """What must hold in a crash state after cut record `cut`."""

    def __init__(self, args, ops, recs, cut):
        cut_pos, cut_ns = recs[cut].end, recs[cut].ns
        if args.fsync == "always":
            self.must = lambda op: op["acked"] is not None and op["acked"] <= cut_pos
        else:
            window = (args.interval_ms + args.margin_ms) * 1_000_000
            self.must = lambda op: (op["acked"] is not None and op["acked"] <= cut_pos and
                                    op["t_ack"] + window <= cut_ns)
        self.may = lambda op: op["sent"] <= cut_pos  # may have reached the disk
        self.ops = ops
        self.excused_below = self.retention_excuse(recs, cut)

    @staticmethod
    def retention_excuse(recs, cut):
        """Events below this seq may be gone: retention deleted their
        segment before the cut."""
        bases, gone = [], []
        for r in recs[:cut + 1]:
            if r.path.startswith("events/") and r.path.endswith(".seg"):
                b = int(r.path[7:27])
                (gone if r.op == model.UNLINK else bases).append(b)
        bases = sorted(set(bases))
        below = 0
        for b in gone:
            later = [x for x in bases if x > b]
            below = max(below, later[0] if later else b)
        return below

    def count_must(self):
        return sum(1 for op in self.ops if self.must(op))

    def settings(self):
        """key -> set of values the state may show."""
        out = {}
        for key in {op["key"] for op in self.ops if op["kind"] == "setting"}:
            seq = [op for op in self.ops if op["kind"] == "setting" and op["key"] == key]
            last = max((i for i, op in enumerate(seq) if self.must(op)), default=-1)
            allowed = {seq[last]["value"]} if last >= 0 else {None}
            for op in seq[last + 1:]:
                if self.may(op):
                    allowed.add(op["value"])
            out[key] = allowed
        return out


def read_all_events(c):
    evs, after = [], 0
    while True:
        st, ans = c.req("GET", f"/v1/events?after_seq={after}&limit=1000")
        if st != 200:
            raise AssertionError(f"GET /v1/events answered {st}: {ans}")
        evs += ans["events"]
        if ans["next_after_seq"] is None:
            return evs
        after = ans["next_after_seq"]


def check_state(args, ex, c):
    """Raises AssertionError naming the first broken promise."""
    published = {}  # id -> (event, op)
    for op in ex.ops:
        if op["kind"] == "publish":
            for i, ev in enumerate(op["events"]):
                published[ev["id"]] = (ev, op, i)
    served = {}
    for e in read_all_events(c):
        if e["type"] == "eventbus.dead_letter":  # the server's notice of a dead letter
            d = e["data"]
            if e.get("source") != "eventbusd" or d.get("group") not in GROUP_TYPES or \
                    d.get("event_id") not in published:
                raise AssertionError(f"dead-letter notice {e['id']} (seq {e['seq']}) names "
                                     f"no dead letter of ours: {d}")
            continue
        if e["id"] not in published:
            raise AssertionError(f"serves event {e['id']} (seq {e['seq']}) never published")
        ev, op, i = published[e["id"]]
        if not ex.may(op):
            raise AssertionError(f"serves event {e['id']} published after the cut")
        if e["data"] != ev["data"] or e["type"] != ev["type"]:
            raise AssertionError(f"event {e['id']} (seq {e['seq']}) has other content")
        if op["acked"] is not None:
            seq = op["ans"]["seq"] if "seq" in op["ans"] else op["ans"]["results"][i]["seq"]
            if seq != e["seq"]:
                raise AssertionError(f"event {e['id']} at seq {e['seq']}, acknowledged as {seq}")
        served[e["id"]] = e
    checked = 0
    must_seqs = {}
    for op in ex.ops:
        if op["kind"] != "publish" or not ex.must(op):
            continue
        for i, ev in enumerate(op["events"]):
            seq = op["ans"]["seq"] if "seq" in op["ans"] else op["ans"]["results"][i]["seq"]
            if seq < ex.excused_below:
                continue
            checked += 1
            if ev["id"] not in served:
                raise AssertionError(f"acknowledged event {ev['id']} (seq {seq}) lost")
            must_seqs[seq] = ev
    for key, allowed in ex.settings().items():
        what, name = key.split(":")
        checked += 1
        if what == "schema":
            st, ans = c.req("GET", f"/v1/schemas/{name}")
            have = max(ans["versions"]) if st == 200 else None
        elif what == "group":
            st, ans = c.req("GET", f"/v1/groups/{name}")
            have = st == 200
            if None in allowed:  # never created: not there
                allowed = allowed | {False}
        elif what == "paused":
            st, ans = c.req("GET", f"/v1/groups/{name}")
            have = ans["paused"] if st == 200 else None
            if None in allowed:
                allowed = allowed | {False}
        else:  # config
            st, ans = c.req("GET", f"/v1/groups/{name}")
            have = ans["config"]["ack_timeout_ms"] - 30000 if st == 200 else None
            if None in allowed:
                allowed = allowed | {0}
        if have not in allowed:
            raise AssertionError(f"{key} is {have!r}; acknowledged state allows {sorted(map(repr, allowed))}")
    for g, types in GROUP_TYPES.items():
        checked += check_group(ex, c, g, types, must_seqs)
    return checked


def seqs_of(ex, kind, g, pred):
    out = set()
    for op in ex.ops:
        if op["kind"] == kind and op["group"] == g and pred(op):
            out.update(op["seqs"])
    return out


def dead_letters(c, g):
    seqs, after = set(), None
    while True:
        q = f"/v1/groups/{g}/dlq?limit=1000" + (f"&after={after}" if after else "")
        st, ans = c.req("GET", q)
        if st != 200:
            raise AssertionError(f"GET {q} answered {st}: {ans}")
        seqs.update(d["event"]["seq"] for d in ans["dead_letters"])
        if ans["next"] is None:
            return seqs
        after = ans["next"]


def held_leases(ex, c, g):
    """The seqs whose lease, given by a pull of the recording, the server
    still holds (leases are recorded, not waited for): acked now with the
    ids those pulls got. Such an event is not lost: it is in flight."""
    ids = {}
    for op in ex.ops:
        if op["kind"] == "pull" and op.get("group") == g and op["status"] == 200:
            ids.update((e["delivery"]["id"], e["seq"]) for e in op["ans"]["events"])
    keys, held = list(ids), set()
    for i in range(0, len(keys), 5000):
        part = keys[i:i + 5000]
        st, ans = c.req("POST", f"/v1/groups/{g}/ack", {"ids": part})
        if st != 200:
            raise AssertionError(f"ack {g} answered {st}: {ans}")
        unknown = set(ans["unknown"])
        held.update(ids[k] for k in part if k not in unknown)
    return held


def check_group(ex, c, g, types, must_seqs):
    """Acked events are not delivered again, nacked ones of a group that
    dead-letters at once are in its DLQ, and every other acknowledged
    event of the group's types is delivered, or still leased to the pull
    of the recording that got it (its id acked now)."""
    st, ans = c.req("GET", f"/v1/groups/{g}")
    if st != 200:
        return 0  # its creation was not acknowledged (checked above)
    if ans["paused"]:
        c.req("POST", f"/v1/groups/{g}/resume")
    acked = seqs_of(ex, "ack", g, ex.must)
    may_done = seqs_of(ex, "ack", g, ex.may)
    dead = dead_letters(c, g)
    nacked = set()
    if MAX_ATTEMPTS[g] == 1:
        nacked = seqs_of(ex, "nack", g, ex.must)
        may_done |= seqs_of(ex, "nack", g, ex.may)
        if nacked - dead:
            raise AssertionError(f"group {g}: seqs {sorted(nacked - dead)[:5]} nacked before "
                                 f"the cut (dead letters) are not in its DLQ")
    elif dead:
        raise AssertionError(f"group {g} has dead letters {sorted(dead)[:5]}; nothing failed enough")
    got = held_leases(ex, c, g)
    if got & (acked | nacked):
        raise AssertionError(f"group {g}: seqs {sorted(got & (acked | nacked))[:5]} acked or "
                             f"dead-lettered before the cut are still leased")
    while True:
        st, ans = c.req("POST", f"/v1/groups/{g}/pull", {"consumer": "check", "max": 1000})
        if st != 200:
            raise AssertionError(f"pull {g} answered {st}: {ans}")
        if not ans["events"]:
            break
        for e in ans["events"]:
            if e["seq"] in acked or e["seq"] in nacked:
                raise AssertionError(f"group {g} redelivers seq {e['seq']}, "
                                     f"{'acked' if e['seq'] in acked else 'dead-lettered'} before the cut")
            got.add(e["seq"])
    for seq, ev in must_seqs.items():
        match = any(t == ev["type"] or (t.endswith(".*") and ev["type"].startswith(t[:-1]))
                    for t in types)
        if match and seq not in may_done and seq not in got:
            raise AssertionError(f"group {g} does not deliver seq {seq} (acknowledged, never acked)")
    return len(acked) + len(nacked) + 1


def run_state(args, mdl, ops, recs, cut, seed, mode, work):
    """One crash state; returns (ok, message, acknowledged ops checked)."""
    state = os.path.join(work, "state")
    shutil.rmtree(state, ignore_errors=True)
    mdl.crash_state(random.Random(seed), state, mode)
    if args.keep:
        shutil.copytree(state, args.keep, dirs_exist_ok=True)
    ex = Expect(args, ops, recs, cut)
    logp = os.path.join(work, "state.log")
    if os.path.exists(logp):
        os.remove(logp)
    proc, c = start_server(args.eventbusd, state, args.fsync, args.interval_ms, logp)
    if c is None:
        return False, "eventbusd refused the state:\n" + tail(work, "state.log", 800), 0
    try:
        checked = check_state(args, ex, c)
    except AssertionError as e:
        proc.kill()
        proc.wait()
        return False, str(e), 0
    finally:
        c.close()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = "timeout"
    if rc != 0:
        return False, f"eventbusd exited {rc} on SIGTERM:\n" + tail(work, "state.log", 800), 0
    for sub in ("events", "meta"):
        v = subprocess.run([args.eventbus_log, "verify", os.path.join(state, sub)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if v.returncode != 0:
            return False, f"eventbus-log verify {sub} failed:\n{v.stdout[-800:]}", 0
    return True, "", checked


def pick_cuts(recs, n, rng):
    """Cut points, where the most is unsynced and where the durable state
    just changed: right before a directory fsync (after a run of creates,
    renames or unlinks), right before a file sync, right after either, and
    anywhere."""
    dirs, dir_syncs, file_syncs, multi, ndir = set(), [], [], [], 0
    for i, r in enumerate(recs):
        if r.op == model.MKDIR or (r.op in (model.CREATE, model.OPEN) and r.a):
            dirs.add(r.fid)
        if r.op in (model.CREATE, model.MKDIR, model.RENAME, model.UNLINK):
            ndir += 1
        elif r.op in (model.FSYNC, model.FDATASYNC):
            (dir_syncs if r.fid in dirs else file_syncs).append(i)
            if r.fid in dirs:
                if ndir > 2:  # several directory changes unsynced at once
                    multi.append(i - 1)
                ndir = 0
    pools = [(multi, 0.15), ([i - 1 for i in dir_syncs if i], 0.2),
             ([i - 1 for i in file_syncs if i], 0.25),
             (dir_syncs + file_syncs, 0.2), (range(len(recs)), 0.2)]
    cuts = set()
    for _ in range(n * 20):
        if len(cuts) >= min(n, len(recs)):
            break
        x = rng.random()
        for pool, w in pools:
            x -= w
            if x < 0 or pool is pools[-1][0]:
                break
        if pool:
            cuts.add(rng.choice(pool))
    return sorted(cuts)


def sync_lag_ms(recs):
    """The longest time from a write to the next sync of its file (the
    interval promise's real margin on this machine, shown in the output)."""
    first, worst = {}, 0
    for r in recs:
        if r.op == model.WRITE:
            first.setdefault(r.fid, r.ns)
        elif r.op in (model.FSYNC, model.FDATASYNC) and r.fid in first:
            worst = max(worst, r.ns - first.pop(r.fid))
    return worst / 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eventbusd", required=True)
    p.add_argument("--eventbus-log", required=True)
    p.add_argument("--shim", required=True)
    p.add_argument("--fsync", choices=["always", "interval"], default="always")
    p.add_argument("--interval-ms", type=int, default=50)
    p.add_argument("--margin-ms", type=int, default=450)
    p.add_argument("--seconds", type=float, default=3.0, help="workload length")
    p.add_argument("--segment-bytes", type=int, default=16384)
    p.add_argument("--cuts", type=int, default=60)
    p.add_argument("--per-cut", type=int, default=3, help="random states per cut (plus the keep-nothing one)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--expect-fail", action="store_true")
    p.add_argument("--cut", type=int, help="check only this cut (with --seed, --mode)")
    p.add_argument("--mode", default="random", choices=["random", "none", "all"])
    p.add_argument("--state-seed", type=int, default=0, help="with --cut: the state's seed")
    p.add_argument("--keep", help="copy the (last) crash state here")
    p.add_argument("--replay", help="check the trace a failed run kept (its directory)")
    args = p.parse_args()
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    print(f"power-loss: {args.eventbusd} --fsync {args.fsync}, seed {args.seed}", flush=True)
    work = tempfile.mkdtemp(prefix="eb-pl-")
    passed = failed = checked_ops = 0
    keep_trace = None
    try:
        t0 = time.time()
        if args.replay:
            trace = os.path.join(args.replay, "trace")
            with open(os.path.join(args.replay, "ops.json")) as f:
                ops = json.load(f)
        else:
            ops, trace = record(args, work)
        recs = model.read_trace(trace)
        nsync = sum(1 for r in recs if r.op in (model.FSYNC, model.FDATASYNC))
        print(f"recorded {len(ops)} operations ({sum(1 for o in ops if o['acked'] is not None)} "
              f"acknowledged), {len(recs)} file operations ({nsync} syncs) in "
              f"{time.time() - t0:.1f} s", flush=True)
        print(f"longest a write waited for its file's sync: {sync_lag_ms(recs):.0f} ms", flush=True)
        rng = random.Random(args.seed)
        cuts = [args.cut] if args.cut is not None else pick_cuts(recs, args.cuts, rng)
        mdl, done = model.Model(), 0
        for cut in cuts:
            while done <= cut:
                mdl.apply(recs[done])
                done += 1
            plans = [(args.state_seed, args.mode)]
            if args.cut is None:
                plans = [(0, "none")] + [(rng.randrange(1 << 30), "random")
                                         for _ in range(args.per_cut)]
            for seed, mode in plans:
                ok, msg, n = run_state(args, mdl, ops, recs, cut, seed, mode, work)
                if ok:
                    passed += 1
                    checked_ops += n
                    continue
                failed += 1
                if not args.replay and not keep_trace:
                    keep_trace = tempfile.mkdtemp(prefix="eb-pl-fail-")
                    shutil.copy(trace, keep_trace)
                    with open(os.path.join(keep_trace, "ops.json"), "w") as f:
                        json.dump(ops, f)
                src = args.replay or keep_trace
                print(f"FAIL cut {cut} ({recs[cut]!r}), mode {mode}, state seed {seed}: {msg}\n"
                      f"  rerun: {sys.argv[0]} ... --fsync {args.fsync} --replay {src} "
                      f"--cut {cut} --mode {mode} --state-seed {seed} --keep DIR", flush=True)
                if args.expect_fail:
                    break
            if args.expect_fail and failed:
                break
        print(f"checked {passed + failed} crash states ({passed} good) at {len(cuts)} cut points, "
              f"{checked_ops} acknowledged operations checked in them, {time.time() - t0:.1f} s",
              flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.expect_fail:
        ok = failed > 0
        print(("the planted fault was caught" if ok else
               "NOT CAUGHT: every crash state passed on a build with a missing sync"))
        print(f"{int(ok)} passed, {int(not ok)} failed")
        return 0 if ok else 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
