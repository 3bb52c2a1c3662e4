#!/usr/bin/env python3
"""make bench-peers: eventbusd side by side with Redis Streams, NATS JetStream
and PostgreSQL, on this machine, in one run.

Every system runs the same workloads (bench/peers/driver.c, through one small
C client per system) on a fresh server bound to 127.0.0.1 on a free port with
its data in a new temporary directory:

  publish1  200,000 ~200-byte order.created events in batches of 100, 1 publisher
  publish4  the same from 4 publishers
  consume   200,000 events loaded, then 3 consumer groups read all of them at
            once, pulling 100 and acknowledging each pull as one batch
  latency   publish-to-delivery at a fixed 5,000 events/s for 5 s

eventbusd runs twice, with --fsync always and with --fsync interval, so that
each peer can be compared with the setting closest to its own durability,
and a third time on PostgreSQL (eventbus-postgresql: --store on a fresh
PostgreSQL started as for the postgresql row, both stopped together and
both counted in the server CPU), to set beside the raw postgresql row;
eventbus-postgresql-2nodes is that with two eventbusd nodes on the one
database (one leads, the other forwards to it), the clients' connections
put on them alternately and, as the clients do, moving to the leader the
follower names in its first answer (Eventbus-Leader), all three processes
counted; eventbus-postgresql-2nodes-relay is the same with the connections
staying where they were put (EB_BENCH_STAY=1): half of the requests relayed
by the follower, so the relay's cost shows.

A third eventbusd, eventbus-tls, is eventbus-interval behind TLS with a token
(--auth token, --tls-listen with a P-256 certificate made here by the openssl
CLI, every request carrying a bearer token of scopes publish:*, consume:*,
schemas:write, groups:write). It runs publish1 and publish4 and, beside
eventbus-interval (plaintext, no auth), two more workloads:

  singles   events/4 single events (POST /v1/events) from 8 publishers over
            keep-alive connections
  connect   new connections per second for 5 s from 4 threads: connect (and
            the full TLS handshake), GET /healthz, close

Its figures are printed in a table of their own, TLS against plaintext, with
issue 19's targets (batches at >= 80% of plaintext, singles at >= 70%).
Each figure is the median of --runs runs (3), with min and max; the runs go
round-robin over the systems, one workload at a time (every system runs
publish1, then every system publish4, ...), so a load change on the machine
hits all of them alike. Everything started here is stopped on exit, Ctrl-C or failure.

Usage: bench/peers/run.py [--runs N] [--events N] [--rate R] [--seconds S]
                          [--only eventbus-always,redis,...] [--workloads publish1,...]
  (the TLS rows alone: --only eventbus-interval,eventbus-tls
   --workloads publish1,publish4,singles,connect)
                          [--base PATH]

--base PATH adds three systems, base-always, base-interval and base-postgresql
(after eventbus-postgresql): another eventbusd binary (an older build, say)
run on the same workloads, interleaved with this tree's in the same rounds,
so that both see the same load on a shared machine. The table then shows
this build over the base build in the ratio columns (base-postgresql:
compare its row with eventbus-postgresql's). base-postgresql-2nodes:
a base build from before stop 15 names no leader, so its clients stay
where they were put, as in eventbus-postgresql-2nodes-relay.
Python 3 standard library only. Needs root or the invoking user to run
PostgreSQL (as root, the cluster runs as the 'postgres' user).
"""
import argparse
import glob
import http.client
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TICKS = os.sysconf("SC_CLK_TCK")
CLIENTS = os.path.join(ROOT, "build", "bench", "peers")
# EB_BENCH_EVENTBUSD: another eventbusd binary as "this build" (an A/B of two old builds).
EVENTBUSD = os.environ.get("EB_BENCH_EVENTBUSD") or os.path.join(ROOT, "bin", "eventbusd")

# --- servers ------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what, proc, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready in {seconds} s")


def tcp_answers(port, send, expect):
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        if send:
            s.sendall(send)
        return s.recv(4096).startswith(expect)


class Server:
    """One server process in its own session (Ctrl-C reaches us, not it: we
    stop it ourselves, in order) with its data in a fresh directory."""

    running = []

    def __init__(self, name, workdir):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=workdir)
        self.port = free_port()
        self.proc = None
        self.logf = None

    def spawn(self, argv, **kw):
        self.logf = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        Server.running.append(self)

    def wait_ready(self, check, what):
        """Waits for check(); on failure stops the server (its log goes
        into the error) and raises RuntimeError."""
        try:
            wait_until(check, what, self.proc)
        except RuntimeError as e:
            tail = self.log_tail().strip()
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"{e}\n{tail}") from None

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in Server.running:
            Server.running.remove(self)
        if self.logf:
            self.logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        for other in getattr(self, "also", []):  # servers it ran on (its database)
            other.stop(getattr(other, "stop_signal", signal.SIGTERM))


def start_eventbus(workdir, policy, store=None, exe=None):
    s = Server("eventbus", workdir)
    where = ["--store", store] if store else ["--data", os.path.join(s.dir, "data")]
    s.spawn([exe or EVENTBUSD, "--listen", f"127.0.0.1:{s.port}"] + where +
            ["--fsync", policy, "--log-level", "warn"])

    def healthy():
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=1)
        try:
            c.request("GET", "/healthz")
            return c.getresponse().status == 200
        finally:
            c.close()
    s.wait_ready(healthy, "eventbusd")
    s.target = f"127.0.0.1:{s.port}"
    return s


def make_cert(workdir):
    """A self-signed P-256 certificate for 127.0.0.1 (made once); its path
    is also the CA the client trusts."""
    cert, key = os.path.join(workdir, "tls-cert.pem"), os.path.join(workdir, "tls-key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True, timeout=60)
    return cert, key


def start_eventbus_tls(workdir):
    """eventbusd --fsync interval behind TLS with --auth token; the client
    gets the URL, the CA and a token of the scopes the workloads need."""
    cert, key = make_cert(workdir)
    s = Server("eventbus-tls", workdir)
    tls_port, tokfile = free_port(), os.path.join(s.dir, "admin.token")
    s.spawn([EVENTBUSD, "--listen", f"127.0.0.1:{s.port}", "--data", os.path.join(s.dir, "data"),
             "--fsync", "interval", "--log-level", "warn", "--auth", "token",
             "--admin-token-file", tokfile, "--tls-listen", f"127.0.0.1:{tls_port}",
             "--tls-cert", cert, "--tls-key", key])

    def admin_request(method, path, body=None):
        with open(tokfile) as f:
            admin = f.read().strip()
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
        try:
            c.request(method, path, body=body, headers={
                "Authorization": "Bearer " + admin, "Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    s.wait_ready(lambda: os.path.exists(tokfile) and admin_request("GET", "/v1/tokens")[0] == 200,
                 "eventbusd (TLS)")
    st, body = admin_request("POST", "/v1/tokens", json.dumps(
        {"name": "bench", "scopes": ["publish:*", "consume:*", "schemas:write", "groups:write"]}))
    if st != 201:
        s.stop(signal.SIGKILL)
        raise RuntimeError(f"cannot make the bench token: {st} {body[:200]!r}")
    s.target = f"https://127.0.0.1:{tls_port}"
    s.env = {"EB_BENCH_TOKEN": json.loads(body)["token"], "EB_BENCH_CACERT": cert}
    return s


def start_eventbus_pg(workdir, pg, exe=None):
    """eventbusd --store on a PostgreSQL of its own, as the postgresql row
    runs it (synchronous_commit on: --fsync always)."""
    db = pg.start()
    try:
        store = f"postgresql://bench@127.0.0.1:{db.port}/postgres"
        s = start_eventbus(workdir, "always", store, exe=exe)
        s.store = store
    except RuntimeError:
        db.stop(db.stop_signal)
        raise
    s.also = [db]
    return s


def start_eventbus_pg_2nodes(workdir, pg, exe=None, relay=False):
    """Two eventbusd nodes on one PostgreSQL database (issue 20): the first
    leads, the second forwards to it; the driver's connections (publishers,
    consumers' pulls and acks) alternate between the two, and move to the
    leader the follower names unless relay (EB_BENCH_STAY=1)."""
    s = start_eventbus_pg(workdir, pg, exe)
    try:
        b = start_eventbus(workdir, "always", s.store, exe=exe)
    except RuntimeError:
        s.stop()  # and its database
        raise
    s.also = [b] + s.also
    s.target = f"{s.target},{b.target}"
    if relay:
        s.env = {"EB_BENCH_STAY": "1"}
    return s


def start_redis(workdir):
    s = Server("redis", workdir)
    s.spawn(["redis-server", "--port", str(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--protected-mode", "no", "--daemonize", "no"])
    s.wait_ready(lambda: tcp_answers(s.port, b"PING\r\n", b"+PONG"), "redis-server")
    s.target = f"127.0.0.1:{s.port}"
    return s


def start_nats(workdir):
    s = Server("nats", workdir)
    s.spawn(["nats-server", "-a", "127.0.0.1", "-p", str(s.port), "-js", "-sd", s.dir])
    s.wait_ready(lambda: tcp_answers(s.port, None, b"INFO"), "nats-server")
    s.target = f"nats://127.0.0.1:{s.port}"
    return s


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return found[-1] if found else shutil.which(name)


class Postgres:
    """initdb once into a template; every start copies it (seconds saved)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.user = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")  # created by Debian's postgresql package
            self.user, self.uid, self.gid = "postgres", pw.pw_uid, pw.pw_gid
        self.template = os.path.join(workdir, "pg-template")
        os.mkdir(self.template, 0o700)
        self.chown(self.template)
        out = subprocess.run([pg_bin("initdb"), "-D", self.template, "-A", "trust", "-U", "bench",
                              "-E", "UTF8", "--no-sync"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, **self.as_user())
        if out.returncode != 0:
            raise RuntimeError("initdb failed:\n" + out.stdout[-2000:])

    def chown(self, path):
        if self.user:
            for d, _, files in os.walk(path):
                os.chown(d, self.uid, self.gid)
                for f in files:
                    os.chown(os.path.join(d, f), self.uid, self.gid)

    def as_user(self):
        return {"user": self.uid, "group": self.gid, "extra_groups": []} if self.user else {}

    def start(self):
        s = Server("postgresql", self.workdir)
        os.chmod(s.dir, 0o700)
        data = os.path.join(s.dir, "data")
        shutil.copytree(self.template, data, symlinks=True)
        self.chown(s.dir)
        s.spawn([pg_bin("postgres"), "-D", data, "-p", str(s.port), "-k", s.dir,
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on",
                 "-c", "synchronous_commit=on", "-c", "max_connections=100"], **self.as_user())
        isready = pg_bin("pg_isready")
        s.wait_ready(lambda: subprocess.run([isready, "-q", "-h", "127.0.0.1", "-p", str(s.port)])
                     .returncode == 0, "postgres")
        s.stop_signal = signal.SIGINT  # "fast" shutdown
        s.target = f"host=127.0.0.1 port={s.port} user=bench dbname=postgres"
        return s


# name, client, durability as printed, starter(workdir, pg) -> Server
SYSTEMS = [
    ("eventbus-always", "eventbus", "fsync always: fdatasync before each 2xx",
     lambda w, pg: start_eventbus(w, "always")),
    ("eventbus-interval", "eventbus", "fsync interval: 2xx after write, fdatasync every 100 ms",
     lambda w, pg: start_eventbus(w, "interval")),
    ("redis", "redis", "AOF appendfsync everysec: reply after write, fsync every 1 s",
     lambda w, pg: start_redis(w)),
    ("nats", "nats", "JetStream file store: ack after write, fsync in the background",
     lambda w, pg: start_nats(w)),
    ("postgresql", "pg", "synchronous_commit on: commit after WAL fsync",
     lambda w, pg: pg.start()),
    ("eventbus-tls", "eventbus", "fsync interval, over TLS 1.3 with a bearer token (--auth token)",
     lambda w, pg: start_eventbus_tls(w)),
    ("eventbus-postgresql", "eventbus", "--store on PostgreSQL, synchronous_commit on",
     lambda w, pg: start_eventbus_pg(w, pg)),
    ("eventbus-postgresql-2nodes", "eventbus",
     "--store, sync commit, 2 nodes on one database (clients given both, following the leader)",
     lambda w, pg: start_eventbus_pg_2nodes(w, pg)),
    ("eventbus-postgresql-2nodes-relay", "eventbus",
     "--store, sync commit, 2 nodes on one database (clients split over both, half relayed)",
     lambda w, pg: start_eventbus_pg_2nodes(w, pg, relay=True)),
]
SHORT = {"eventbus-always": "fsync always", "eventbus-interval": "fsync interval",
         "redis": "AOF everysec", "nats": "file store", "postgresql": "synchronous_commit on",
         "eventbus-tls": "interval, TLS + token", "eventbus-postgresql": "--store, sync commit",
         "eventbus-postgresql-2nodes": "--store, 2 nodes",
         "eventbus-postgresql-2nodes-relay": "--store, 2 nodes, relayed"}



def add_base(exe):
    """--base: the same eventbus rows for another binary, placed right after
    ours so that each round runs them back to back."""
    for i, policy in ((2, "always"), (3, "interval")):
        name = "base-" + policy
        SYSTEMS.insert(i, (name, "eventbus", f"the --base eventbusd ({exe}), fsync {policy}",
                           lambda w, pg, p=policy: start_eventbus(w, p, exe=exe)))
        SHORT[name] = f"base, fsync {policy}"
    for ours, start in (("eventbus-postgresql", start_eventbus_pg),
                        ("eventbus-postgresql-2nodes", start_eventbus_pg_2nodes)):
        name = "base-" + ours[len("eventbus-"):]
        i = [s[0] for s in SYSTEMS].index(ours) + 1
        SYSTEMS.insert(i, (name, "eventbus", f"the --base eventbusd ({exe}), {SHORT[ours]}",
                           lambda w, pg, st=start: st(w, pg, exe)))
        SHORT[name] = "base, " + SHORT[ours]


# name, driver arguments
WORKLOADS = [
    ("publish1", ["publish", "--publishers", "1", "--batch", "100"]),
    ("publish4", ["publish", "--publishers", "4", "--batch", "100"]),
    ("consume", ["consume", "--groups", "3", "--pull", "100", "--publishers", "4"]),
    ("latency", ["latency", "--pull", "100"]),
    ("singles", ["publish", "--publishers", "8", "--batch", "1"]),
    ("connect", ["connect", "--publishers", "4"]),
]
# Who runs what: the TLS system runs only the workloads of its table, and
# the TLS table's own workloads run only there and on plaintext interval.
TLS_ONLY = ("singles", "connect")
TLS_WORKLOADS = ("publish1", "publish4") + TLS_ONLY


def applies(system, workload):
    if system == "eventbus-tls":
        return workload in TLS_WORKLOADS
    return workload not in TLS_ONLY or system == "eventbus-interval"


# figure, workload, RESULT key, higher is better
FIGURES = [
    ("publish, batches of 100, 1 publisher (events/s)", "publish1", "events_per_s", True),
    ("publish, batches of 100, 4 publishers (events/s)", "publish4", "events_per_s", True),
    ("consume, 3 groups at once, per group (events/s, slowest group)", "consume",
     "per_group_min", True),
    ("server CPU s per 100k published, batches of 100, 4 publishers", "publish4",
     "cpu_pub_100k", False),
    ("server CPU s per 100k published, consume's preload", "consume", "cpu_load_100k", False),
    ("server CPU s per 100k delivered and acked, 3 groups", "consume", "cpu_con_100k", False),
    ("publish-to-delivery p50 at 5,000/s (ms)", "latency", "p50_ms", False),
    ("publish-to-delivery p99 at 5,000/s (ms)", "latency", "p99_ms", False),
]

# The TLS table (issue 19): figure, workload, RESULT key, higher is better,
# the share of plaintext TLS must keep (None: shown, not a target).
TLS_FIGURES = [
    ("publish, batches of 100, 1 publisher (events/s)", "publish1", "events_per_s", True, 0.80),
    ("publish, batches of 100, 4 publishers (events/s)", "publish4", "events_per_s", True, 0.80),
    ("publish, single events, 8 publishers, keep-alive (events/s)", "singles", "events_per_s",
     True, 0.70),
    ("new connections per second, 4 threads", "connect", "conns_per_s", True, None),
    ("server CPU s per 100k published, batches of 100, 4 publishers", "publish4",
     "cpu_pub_100k", False, None),
    ("server CPU s per 100k published, single events", "singles", "cpu_pub_100k", False, None),
    ("server CPU us per new connection", "connect", "cpu_conn_us", False, None),
]

# --- running ------------------------------------------------------------------


def server_cpu(server):
    """CPU seconds (user + system, with reaped children) of the server's
    processes: every process of the session it leads, and their children
    (PostgreSQL's backends each call setsid(): a live one is counted as the
    postmaster's child, an ended one in the postmaster's cutime), from
    /proc/<pid>/stat."""
    sids, total = {x.proc.pid for x in [server] + getattr(server, "also", [])}, 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) in sids or int(fields[3]) in sids or int(fields[1]) in sids:  # sid, ppid
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


def wait_stopped(pid, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                    return True
        except OSError:
            return False
        time.sleep(0.001)
    return False


def run_client(system, client, server, workload, args, opts, run_no):
    """Runs one workload; the RESULT figures plus the server's CPU seconds
    per phase (the driver stops at each PHASE line until we have read it)."""
    exe = os.path.join(CLIENTS, "bench_peer_" + client)
    events = opts.events // 4 if workload == "singles" else opts.events
    extra = ["--events", str(events), "--rate", str(opts.rate),
             "--seconds", str(opts.seconds), "--phases", "1"]
    cmd = [exe] + args + extra + ["--target", server.target, "--run", f"{workload}{run_no}"]
    t0 = time.time()
    env = dict(os.environ, **getattr(server, "env", {}))  # TLS: the token and the CA
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=env)
    timer = threading.Timer(opts.timeout, p.kill)
    timer.start()
    res, cpu = {}, {}
    try:
        for line in p.stdout:
            line = line.rstrip("\n")
            m = re.match(r"RESULT (\w+) (.*)$", line)
            if m:
                res = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", m.group(2))}
            elif line.startswith("PHASE "):
                if wait_stopped(p.pid):
                    cpu[line[6:]] = server_cpu(server)
                os.kill(p.pid, signal.SIGCONT)
            else:
                print("  " + line, flush=True)
        p.wait()
    finally:
        timed_out = not timer.is_alive() and p.returncode not in (0, 1)
        timer.cancel()
    if timed_out:
        print(f"  {system} {workload}: timed out after {opts.timeout} s", flush=True)
        return None
    if p.returncode != 0 or not res:
        print(f"  {system} {workload}: FAILED (exit {p.returncode})", flush=True)
        print("  server log: " + server.log_tail().strip().replace("\n", "\n  "), flush=True)
        code = server.proc.poll() if server.proc else None
        if code is not None:
            print(f"  server exited: {code}", flush=True)
        return None
    end = server_cpu(server)
    if "prepared" in cpu and args[0] == "publish":
        res["cpu_pub_100k"] = (end - cpu["prepared"]) * 100000 / events
    if "prepared" in cpu and args[0] == "connect" and res.get("conns"):
        res["cpu_conn_us"] = (end - cpu["prepared"]) * 1e6 / res["conns"]
    if "prepared" in cpu and "loaded" in cpu:
        res["cpu_load_100k"] = (cpu["loaded"] - cpu["prepared"]) * 100000 / opts.events
        groups = int(args[args.index("--groups") + 1]) if "--groups" in args else 3
        res["cpu_con_100k"] = (end - cpu["loaded"]) * 100000 / (opts.events * groups)
    print(f"  ({time.time() - t0:.1f} s)", flush=True)
    return res


def measure(opts, systems, workloads, workdir):
    """results[system][workload] = list of RESULT dicts (one per good run)."""
    pg = None
    if any(s[0].endswith("postgresql") for s in systems):
        pg = Postgres(workdir)
    results = {s[0]: {w[0]: [] for w in workloads if applies(s[0], w[0])} for s in systems}
    failures = 0
    for run_no in range(1, opts.runs + 1):
        for wname, args in workloads:
            for name, client, _, start in systems:
                if not applies(name, wname):
                    continue
                print(f"== run {run_no}/{opts.runs}: {name} {wname}", flush=True)
                try:
                    server = start(workdir, pg)
                except RuntimeError as e:
                    print(f"  {name}: FAILED to start: {e}", flush=True)
                    failures += 1
                    continue
                try:
                    r = run_client(name, client, server, wname, args, opts, run_no)
                finally:
                    server.stop(getattr(server, "stop_signal", signal.SIGTERM))
                if r is None:
                    failures += 1
                else:
                    results[name][wname].append(r)
    return results, failures


# --- the table ----------------------------------------------------------------


def summary(values):
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt_value(v, key):
    return f"{v:.3f}" if key.endswith("_ms") or key.startswith("cpu_") else f"{v:,.0f}"


def fmt_range(s, key):
    return "-" if s is None else f"[{fmt_value(s[1], key)} - {fmt_value(s[2], key)}]"


def fmt_ratio(ours, theirs, higher):
    if ours is None or theirs is None or not theirs[0]:
        return "-"
    r = ours[0] / theirs[0]
    better = r > 1 if higher else r < 1
    return f"{r:.2f} {'ahead' if better else 'behind' if r != 1 else 'even'}"


def figure_stats(results, system, workload, key):
    return summary([r[key] for r in results.get(system, {}).get(workload, []) if key in r])


def print_table(results, systems):
    """One block per figure: every system's median [min - max] beside its
    durability, and for each peer the ratio eventbus/peer per eventbus
    setting."""
    ours = [s[0] for s in systems if s[0] in ("eventbus-always", "eventbus-interval")]
    head = ["figure", "system", "durability", "median", "[min - max]"] + \
        [f"{o.replace('eventbus-', '')}/peer" for o in ours]
    rows = []
    for fig, wl, key, higher in FIGURES:
        if not any(wl in results.get(s[0], {}) for s in systems):
            continue
        for name, _, _, _ in systems:
            if name == "eventbus-tls" or wl not in results.get(name, {}):
                continue  # the TLS table's
            st = figure_stats(results, name, wl, key)
            row = [fig, name, SHORT[name], "failed" if st is None else fmt_value(st[0], key),
                   fmt_range(st, key)]
            for o in ours:
                row.append("" if name.startswith("eventbus")
                           else fmt_ratio(figure_stats(results, o, wl, key), st, higher))
            rows.append(row)
            fig = ""
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    right = {3}

    def line(r):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    print("\n" + line(head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        if r[0] and r is not rows[0]:
            print()
        print(line(r))
    print("\nalways/peer, interval/peer: eventbus (--fsync always, --fsync interval) over the "
          "peer, medians;\nabove 1 is ahead for events/s, below 1 is ahead for latency and "
          "CPU seconds.\nServer CPU: utime + stime of the server's processes (/proc/<pid>/stat, "
          "its whole session)\nbetween the driver's phases, per 100,000 events published or "
          "per 100,000 deliveries acked.")
    print("Durability of each side, as configured here:")
    for name, _, dur, _ in systems:
        print(f"  {name:18} {dur}")
    for name, _, _, _ in systems:
        held = [r["rate"] for r in results.get(name, {}).get("latency", []) if "rate" in r]
        if held and min(held) < 0.95 * OPTS.rate:
            print(f"  note: {name} held only {min(held):,.0f} events/s in a latency run "
                  f"(target {OPTS.rate:,.0f})")


def print_targets(results):
    """Issue 7's targets: throughput ahead of PostgreSQL at fsync always and of
    Redis and NATS at fsync interval; p99 no worse than the best peer, read as
    eventbus at its setting closest to that peer's durability (interval for
    Redis and NATS, which answer before they fsync) and, like with like,
    --fsync always against PostgreSQL (the one peer that syncs before it
    answers). --fsync always against the best peer is shown, not a target."""
    checks = []
    for fig, wl, key, higher in FIGURES[:3]:
        for ours, peer in (("eventbus-always", "postgresql"), ("eventbus-interval", "redis"),
                           ("eventbus-interval", "nats")):
            a, b = figure_stats(results, ours, wl, key), figure_stats(results, peer, wl, key)
            if a and b:
                checks.append((f"{fig}: {ours} ahead of {peer}", a[0] > b[0]))
    p99 = {p: figure_stats(results, p, "latency", "p99_ms")
           for p in ("eventbus-always", "eventbus-interval", "redis", "nats", "postgresql")}
    peers = [(p99[p][0], p) for p in ("redis", "nats", "postgresql") if p99[p]]
    notes = []
    if peers:
        best, who = min(peers)
        a = p99["eventbus-interval"]
        if a:
            checks.append((f"p99 at 5,000/s: eventbus-interval {a[0]:.3f} ms no worse than the "
                           f"best peer ({who}) {best:.3f} ms", a[0] <= best))
        a, pg = p99["eventbus-always"], p99["postgresql"]
        if a and pg:
            checks.append((f"p99 at 5,000/s, like with like: eventbus-always {a[0]:.3f} ms no "
                           f"worse than postgresql {pg[0]:.3f} ms", a[0] <= pg[0]))
        if a:
            notes.append(f"not a target: eventbus-always p99 {a[0]:.3f} ms against {who} "
                         f"{best:.3f} ms ({a[0] / best:.1f}x): an fdatasync before each answer "
                         f"against none")
    # Issue 20: eventbus on PostgreSQL against the raw postgresql row.
    for fig, wl, key, _ in FIGURES[:3]:
        share = 0.6 if wl == "consume" else 0.8
        a, b = (figure_stats(results, "eventbus-postgresql", wl, key),
                figure_stats(results, "postgresql", wl, key))
        if a and b:
            checks.append((f"{fig}: eventbus-postgresql at >= {share:.0%} of postgresql "
                           f"({a[0] / b[0]:.0%})", a[0] >= share * b[0]))
    for fig, wl, key, higher in FIGURES[:3]:  # issue 20: 2 nodes no slower than 1
        a, b = (figure_stats(results, "eventbus-postgresql-2nodes", wl, key),
                figure_stats(results, "eventbus-postgresql", wl, key))
        if a and b:
            checks.append((f"{fig}: eventbus-postgresql-2nodes no slower than one node "
                           f"({a[0] / b[0]:.0%})", a[0] >= b[0]))
        r = figure_stats(results, "eventbus-postgresql-2nodes-relay", wl, key)
        if r and b:
            notes.append(f"not a target: {fig}: eventbus-postgresql-2nodes-relay (half the "
                         f"requests relayed by the follower) at {r[0] / b[0]:.0%} of one node")
    if checks:
        print("\nTargets (issues 7 and 20):")
        for what, ok in checks:
            print(f"  [{'met' if ok else 'NOT met'}] {what}")
        for n in notes:
            print(f"  ({n})")


def print_tls_table(results):
    """Issue 19: eventbus-interval over TLS with a token against plaintext
    without auth, same run: medians [min - max], the share TLS keeps
    (tls/plain for throughput, plain/tls for CPU cost) and the targets."""
    plain, tls = "eventbus-interval", "eventbus-tls"
    if not results.get(tls) or not results.get(plain):
        return
    head = ["figure", "plaintext, no auth", "[min - max]", "TLS + token", "[min - max]",
            "TLS keeps", "target"]
    rows, checks = [], []
    for fig, wl, key, higher, target in TLS_FIGURES:
        a, b = figure_stats(results, plain, wl, key), figure_stats(results, tls, wl, key)
        if a is None and b is None:
            continue
        keep = None
        if a and b and a[0] and b[0]:
            keep = b[0] / a[0] if higher else a[0] / b[0]
        rows.append([fig, "failed" if a is None else fmt_value(a[0], key), fmt_range(a, key),
                     "failed" if b is None else fmt_value(b[0], key), fmt_range(b, key),
                     "-" if keep is None else f"{keep * 100:.0f}%",
                     "" if target is None else f">= {target * 100:.0f}%"])
        if target is not None:
            checks.append((f"{fig}: TLS + token at {'-' if keep is None else f'{keep * 100:.0f}%'}"
                           f" of plaintext (target {target * 100:.0f}%)",
                           keep is not None and keep >= target))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    right = {1, 3, 5}

    def line(r):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    print("\nTLS with a token (eventbus-tls) against plaintext without auth (eventbus-interval), "
          "same run, --fsync interval:")
    print(line(head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
    print("TLS keeps: TLS/plaintext for events or connections per second; plaintext/TLS for "
          "server CPU\n(what TLS keeps of plaintext's throughput when the server is the "
          "bottleneck).\nClient and server share this machine's CPUs: the client's own "
          "TLS work counts against the\nwall-clock rows, not against the CPU rows.")
    print("\nTargets (issue 19):")
    for what, ok in checks:
        print(f"  [{'met' if ok else 'NOT met'}] {what}")


# --- machine ------------------------------------------------------------------


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM, Linux {platform.release()}"


def fdatasync_us(workdir):
    path = os.path.join(workdir, "fsync-probe")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    v = []
    try:
        for _ in range(200):
            t = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fdatasync(fd)
            v.append((time.perf_counter() - t) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(v)


def version(cmd):
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return out.stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def load():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def check_tools(systems):
    missing = []
    for name, client, _, _ in systems:
        if not os.access(os.path.join(CLIENTS, "bench_peer_" + client), os.X_OK):
            missing.append(f"client build/bench/peers/bench_peer_{client}")
    need = {"redis": ["redis-server"], "nats": ["nats-server"],
            "postgresql": [], "eventbus-tls": ["openssl"]}
    for name, _, _, _ in systems:
        for tool in need.get(name, []):
            if not shutil.which(tool):
                missing.append(tool)
        if "postgresql" in name and not (pg_bin("postgres") and pg_bin("initdb")):
            missing.append("postgres/initdb")
    if not os.access(EVENTBUSD, os.X_OK):
        missing.append("bin/eventbusd")
    if missing:
        sys.exit("missing: " + ", ".join(missing) +
                 "\n(make bench-peers installs the peers with scripts/deps.sh --peers and builds "
                 "the clients)")


# --- main -----------------------------------------------------------------------

OPTS = None


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    global OPTS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--events", type=int, default=200000)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--timeout", type=float, default=180, help="per client run, seconds")
    ap.add_argument("--only", default="", help="comma-separated systems: " +
                    ",".join(s[0] for s in SYSTEMS))
    ap.add_argument("--workloads", default="", help="comma-separated: " +
                    ",".join(w[0] for w in WORKLOADS))
    ap.add_argument("--base", default="", help="another eventbusd to compare with (A/B)")
    OPTS = opts = ap.parse_args()
    if opts.base:
        add_base(os.path.abspath(opts.base))
    systems = [s for s in SYSTEMS if not opts.only or s[0] in opts.only.split(",")]
    workloads = [w for w in WORKLOADS if not opts.workloads or w[0] in opts.workloads.split(",")]
    check_tools(systems)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    workdir = tempfile.mkdtemp(prefix="eb-bench-peers-")
    os.chmod(workdir, 0o711)  # the postgres user must reach its own directories
    t0 = time.time()
    try:
        print("machine: " + machine())
        print(f"disk: 4 KiB write+fdatasync median {fdatasync_us(workdir):.0f} us ({workdir})")
        print("versions: " + "; ".join([
            version([EVENTBUSD, "--version"]), version(["redis-server", "--version"]),
            version(["nats-server", "--version"]), version([pg_bin("postgres") or "postgres",
                                                           "--version"])]))
        print(f"workload: {opts.events:,} events of ~200 bytes; latency at {opts.rate:,.0f} "
              f"events/s for {opts.seconds:g} s; median of {opts.runs} runs")
        print("start: " + load(), flush=True)
        results, failures = measure(opts, systems, workloads, workdir)
        print(f"\nend: {load()}; took {time.time() - t0:.0f} s")
        print_table(results, systems)
        print_targets(results)
        print_tls_table(results)
        return 1 if failures else 0
    except KeyboardInterrupt as e:
        why = f" by {e}" if str(e) else ""
        print(f"\ninterrupted{why}; stopping what was started", file=sys.stderr)
        return 130
    finally:
        for s in list(Server.running):
            s.stop(getattr(s, "stop_signal", signal.SIGTERM))
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
