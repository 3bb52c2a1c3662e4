"""Black-box test harness: a real eventbusd on a free port and a fresh data
directory, an HTTP/1.1 client, and a tiny runner.

A test module defines functions `test_x(srv)`; `run_tests(globals())` runs
each with its own server (started before, stopped after with SIGTERM and a
check that it exits 0), prints ok/FAIL lines with the assertion and the tail
of the server's log, and ends with "N passed, N failed".
The daemon binary comes from $EVENTBUSD (set by meson) or bin/eventbusd.
$EB_TEST_AUTH=token runs every server with --auth token and an
--admin-token-file in its directory, and every request carries that admin
token (unless the test sets its own Authorization header or srv.token).
$EB_TEST_FSYNC (interval, never) runs every server with that --fsync
unless the test gives its own: meson runs the publish and groups suites
once more under `interval`, where the loop thread writes the log itself.
$EB_TEST_STORE=pg runs every server on the PostgreSQL engine instead of a
data directory: `--store` with a fresh database per Server (dropped at
cleanup) in a throwaway cluster the harness starts on first use and stops
at exit (tests/tools/pgcluster.py; $EB_TEST_PG_HOST names a running one
instead). A test about the embedded log's files calls skip_on_pg(why):
on PostgreSQL it is reported as skipped with that reason.

Contract check (on unless EB_CONTRACT=0): every answer Server.request gets
is matched against docs/openapi.json (generated from docs/openapi.yaml):
its route and method, its status among the operation's responses, its
Content-Type and its body against the response's schema. The bodies are
validated in one batch per module, at the end, by tests/tools/validate-json
(the project's own JSON Schema validator, not the daemon under test); any
mismatch fails the module as the extra test `contract`.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
import pgcluster  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMON = os.environ.get("EVENTBUSD") or os.path.join(ROOT, "bin", "eventbusd")
VALIDATOR = os.environ.get("VALIDATE_JSON") or os.path.join(ROOT, "build", "tests", "tools",
                                                             "validate-json")


class Contract:
    """Answers checked against docs/openapi.json; bodies validated in one batch."""

    def __init__(self, path):
        with open(path) as f:
            self.doc = json.load(f)
        self.routes = []  # (params, regex, path item), literal paths first
        for tpl, item in self.doc["paths"].items():
            rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(tpl)) + "$"
            self.routes.append((tpl.count("{"), re.compile(rx), item))
        self.routes.sort(key=lambda r: r[0])
        self.problems = []  # (test, message)
        self.bodies = []    # (test, what, schema name, body)
        self.test = "?"

    def response(self, r):
        ref = r.get("$ref", "")
        return self.doc["components"]["responses"][ref.rsplit("/", 1)[1]] if ref else r

    def check(self, method, path, status, headers, text):
        path = path.split("?", 1)[0]
        what = f"{method} {path} -> {status}"
        items = [item for _, rx, item in self.routes if rx.match(path)]
        op = next((item[method.lower()] for item in items if method.lower() in item), None)
        if op is None and method == "HEAD":  # HEAD: GET's answer without a body
            op = next((item["get"] for item in items if "get" in item), None)
        if op is None:
            kind = "unknown-method" if items else "unknown-path"
            resp = self.response(self.doc["x-unmatched-routes"][kind])
            want = 405 if items else 404
            if status != want:
                return self.problems.append((self.test, f"{what}: {kind} must answer {want}"))
        else:
            resp = op["responses"].get(str(status))
            if resp is None:
                return self.problems.append((self.test, f"{what}: status not in the contract"))
            resp = self.response(resp)
        content = resp.get("content")
        if method == "HEAD":
            return None
        if not content:
            if text:
                self.problems.append((self.test, f"{what}: body where the contract has none"))
            return None
        ctype = headers.get("content-type", "")
        medias = [(m, md) for m, md in content.items() if ctype.startswith(m)]
        if not medias:
            return self.problems.append((self.test, f"{what}: Content-Type {ctype!r}, not "
                                         f"{' or '.join(content)}"))
        (mtype, media), = medias[:1]
        if mtype.endswith("json"):
            try:
                body = json.loads(text)
            except ValueError:
                return self.problems.append((self.test, f"{what}: body is not JSON"))
        else:
            body = text.decode(errors="replace")
        name = media["schema"]["$ref"].rsplit("/", 1)[1]
        self.bodies.append((self.test, what, name, json.dumps(body)))
        return None

    def finish(self):
        """Validates the bodies; returns the list of problems."""
        if self.bodies:
            defs = json.dumps(self.doc["components"]["schemas"]).replace(
                '"#/components/schemas/', '"#/$defs/')
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                f.write(defs)
            try:
                lines = "".join(f"{n}\t{b}\n" for _, _, n, b in self.bodies)
                p = subprocess.run([VALIDATOR, f.name], input=lines, capture_output=True,
                                   text=True)
            finally:
                os.unlink(f.name)
            verdicts = p.stdout.splitlines()
            if len(verdicts) != len(self.bodies):
                self.problems.append(("-", f"validate-json: {p.stderr.strip() or p.returncode}"))
            for (test, what, name, body), v in zip(self.bodies, verdicts):
                if v != "ok":
                    self.problems.append((test, f"{what}: {name}: {v}\n  body: {body[:300]}"))
        return self.problems


CONTRACT_PATH = os.path.join(ROOT, "docs", "openapi.json")
CONTRACT = Contract(CONTRACT_PATH) if os.environ.get("EB_CONTRACT", "1") != "0" else None


PG = os.environ.get("EB_TEST_STORE") == "pg"
_cluster = None


class Skip(Exception):
    """Raised by a test that cannot run here or does not apply to this run
    (skip_on_pg): printed with its reason, counted neither as passed nor as
    failed."""


def skip_on_pg(why):
    """Ends the test as skipped when the servers run on PostgreSQL."""
    if PG:
        raise Skip(why)


def pg_cluster():
    """The PostgreSQL cluster of this run (started on first use)."""
    global _cluster
    if _cluster is None:
        host = os.environ.get("EB_TEST_PG_HOST")
        if host:
            _cluster = pgcluster.Cluster.existing(host)
        else:
            _cluster = pgcluster.Cluster()
            import atexit
            atexit.register(_cluster.stop)
    return _cluster


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One eventbusd process over a data directory that outlives restarts."""

    def __init__(self, extra_args=None):
        self.dir = tempfile.mkdtemp(prefix="eb-it-")
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "server.log")
        self.extra = list(extra_args or [])
        self.proc = None
        self.port = None
        self.conn = None
        self.token = None  # sent as "Authorization: Bearer <token>" when set
        self.nofile = None  # RLIMIT_NOFILE (soft = hard) for the daemon, when set
        self.pg_db = self.store_uri = None  # EB_TEST_STORE=pg: its database

    def store_args(self):
        """--data DIR, or --store URI on PostgreSQL (a database of its own)."""
        if not PG:
            return ["--data", self.data]
        if not self.pg_db:
            self.pg_db, self.store_uri = pg_cluster().create_db()
        return ["--store", self.store_uri]

    def pg_query(self, sql):
        """EB_TEST_STORE=pg: a query's rows in this server's database."""
        return pg_cluster().query(self.pg_db, sql)

    # -- lifecycle ---------------------------------------------------------
    def start(self, extra_args=None):
        if extra_args is not None:
            self.extra = list(extra_args)
        policy = os.environ.get("EB_TEST_FSYNC")
        fsync = ["--fsync", policy] if policy and "--fsync" not in self.extra else []
        token_file = os.path.join(self.dir, "admin.token")
        if os.environ.get("EB_TEST_AUTH") == "token" and "--auth" not in self.extra:
            fsync += ["--auth", "token", "--admin-token-file", token_file]
        for _ in range(5):
            # Port 0: the daemon takes a free port and says which in its log.
            # (A port picked here could be taken by a parallel suite's daemon
            # first, and its /healthz then answered for ours.)
            log = open(self.log_path, "a")
            seen = log.tell()
            self.proc = subprocess.Popen(
                [DAEMON, "--listen", "127.0.0.1:0"] + self.store_args() +
                ["--log-level", "info"] + fsync + self.extra,
                stdout=log, stderr=log, preexec_fn=self._limits)
            log.close()
            self.port = self.logged_port(seen)
            if self.port and self.wait_ready():
                if self.pg_db:  # alone on its database: ready means leading
                    self.wait_leading()
                if "--admin-token-file" in fsync:
                    self.token = self.read_token(token_file)
                return self
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        raise RuntimeError("eventbusd did not start:\n" + self.log_tail())

    def _limits(self):
        if self.nofile:
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def rss_mb(self):
        """The daemon's resident memory now, in MiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def logged_port(self, offset, timeout=10.0):
        """The port of the "listening on ... (port N)" line written after
        offset, or None if the daemon exits or stays silent."""
        end = time.time() + timeout
        while time.time() < end:
            with open(self.log_path, errors="replace") as f:
                f.seek(offset)
                m = re.search(r"listening on \S+ \(port (\d+)\)(?! with TLS)", f.read())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                return None
            time.sleep(0.01)
        return None

    def wait_ready(self, timeout=10.0):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                return False
            try:
                st, _, _ = self.request("GET", "/healthz", timeout=1)
                if st == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def wait_leading(self, timeout=15.0):
        """A lone node on PostgreSQL restarted at once after SIGKILL may
        follow its own old session for a moment (the database has not seen
        that session's death yet: it answers 503 no_leader meanwhile, which
        clients retry). It must lead once that session ends; a node that
        does not is a failure, said here with its log."""
        end = time.time() + timeout
        while time.time() < end:
            try:
                st, _, body = self.request("GET", "/v1/cluster", timeout=2)
                if st == 200 and body.get("role") == "leader":
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("eventbusd alone on its database did not lead within "
                           f"{timeout:.0f} s:\n" + self.log_tail())

    @staticmethod
    def read_token(path, timeout=10.0):
        """The token an --admin-token-file holds (written once it is durable)."""
        end = time.time() + timeout
        while time.time() < end:
            try:
                with open(path) as f:
                    tok = f.read().strip()
                if tok:
                    return tok
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"no admin token in {path}")

    def stop(self):
        """SIGTERM; the daemon must exit 0."""
        self.close_conn()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=20)
            assert rc == 0, f"eventbusd exited {rc} on SIGTERM\n{self.log_tail()}"
        self.proc = None

    def kill9(self):
        self.close_conn()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, extra_args=None):
        self.stop()
        return self.start(extra_args)

    def cleanup(self):
        self.kill9()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.pg_db:
            pg_cluster().drop_db(self.pg_db)
            self.pg_db = None

    def log_tail(self, n=30):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- HTTP ---------------------------------------------------------------
    def close_conn(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, raw=None, timeout=30):
        """Returns (status, headers dict, parsed JSON body or raw text)."""
        hdrs = {"Content-Type": "application/json"}
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        hdrs.update(headers or {})
        hdrs = {k: v for k, v in hdrs.items() if v is not None}  # None: leave it out
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        for attempt in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
                text = resp.read()
                break
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                conn.close()
                if attempt:
                    raise
            finally:
                conn.close()
        if CONTRACT:
            CONTRACT.check(method, path, resp.status, {k.lower(): v for k, v in resp.getheaders()},
                           text)
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text.decode(errors="replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed

    def raw(self, data, read_until_close=True, timeout=5):
        """Sends raw bytes on a fresh socket; returns what came back."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            try:
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    chunks.append(c)
                    if not read_until_close:
                        break
            except socket.timeout:
                pass
            return b"".join(chunks)


def assert_flag_refused(srv, flag, bad_values):
    """Stops srv, checks that eventbusd refuses to start with each of
    flag's bad values (naming the flag), and starts it again as it was."""
    srv.stop()
    for bad in bad_values:
        try:
            srv.start([flag, bad])
        except RuntimeError as e:
            assert flag in str(e), str(e)
        else:
            raise AssertionError(f"{flag} {bad} was taken")
    srv.start([])


def run_tests(ns, only=None, fixture=None):
    """fixture: instead of a started Server, what each test gets (a new
    one per test, with log_tail() and cleanup(); the test starts it)."""
    tests = [(n, f) for n, f in sorted(ns.items()) if n.startswith("test_") and callable(f)]
    if len(sys.argv) > 1:
        tests = [(n, f) for n, f in tests if n in sys.argv[1:]]
    passed = failed = skipped = 0
    for name, fn in tests:
        srv = fixture() if fixture else Server()
        t0 = time.time()
        if CONTRACT:
            CONTRACT.test = name
        try:
            if not fixture:
                srv.start()
            fn(srv)
            if not fixture:
                srv.stop()
            passed += 1
            print(f"ok      {name} ({time.time() - t0:.2f} s)", flush=True)
        except Skip as why:
            skipped += 1
            print(f"skip    {name}: {why}", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL    {name}\n{traceback.format_exc()}--- server log ---\n{srv.log_tail()}",
                  flush=True)
        finally:
            srv.cleanup()
    if CONTRACT:
        t0 = time.time()
        problems = CONTRACT.finish()
        if problems:
            failed += 1
            print("FAIL    contract (docs/openapi.yaml)\n" +
                  "\n".join(f"  {t}: {m}" for t, m in problems[:40]), flush=True)
        else:
            passed += 1
            print(f"ok      contract: {len(CONTRACT.bodies)} answers match docs/openapi.yaml "
                  f"({time.time() - t0:.2f} s)", flush=True)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    sys.exit(1 if failed else 0)
