"""Black-box test harness: a real eventbusd on a free port and a fresh data
directory, an HTTP/1.1 client, and a tiny runner.

A test module defines functions `test_x(srv)`; `run_tests(globals())` runs
each with its own server (started before, stopped after with SIGTERM and a
check that it exits 0), prints ok/FAIL lines with the assertion and the tail
of the server's log, and ends with "N passed, N failed".
The daemon binary comes from $EVENTBUSD (set by meson) or bin/eventbusd.
$EB_TEST_FSYNC (interval, never) runs every server with that --fsync
unless the test gives its own: meson runs the publish and groups suites
once more under `interval`, where the loop thread writes the log itself.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMON = os.environ.get("EVENTBUSD") or os.path.join(ROOT, "bin", "eventbusd")


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
        self.nofile = None  # RLIMIT_NOFILE (soft = hard) for the daemon, when set

    # -- lifecycle ---------------------------------------------------------
    def start(self, extra_args=None):
        if extra_args is not None:
            self.extra = list(extra_args)
        policy = os.environ.get("EB_TEST_FSYNC")
        fsync = ["--fsync", policy] if policy and "--fsync" not in self.extra else []
        for _ in range(5):  # retry if another process grabs the port first
            self.port = free_port()
            log = open(self.log_path, "a")
            self.proc = subprocess.Popen(
                [DAEMON, "--listen", f"127.0.0.1:{self.port}", "--data", self.data,
                 "--log-level", "info"] + fsync + self.extra,
                stdout=log, stderr=log, preexec_fn=self._limits)
            log.close()
            if self.wait_ready():
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
        hdrs.update(headers or {})
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


def run_tests(ns, only=None):
    tests = [(n, f) for n, f in sorted(ns.items()) if n.startswith("test_") and callable(f)]
    if len(sys.argv) > 1:
        tests = [(n, f) for n, f in tests if n in sys.argv[1:]]
    passed = failed = 0
    for name, fn in tests:
        srv = Server()
        t0 = time.time()
        try:
            srv.start()
            fn(srv)
            srv.stop()
            passed += 1
            print(f"ok      {name} ({time.time() - t0:.2f} s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL    {name}\n{traceback.format_exc()}--- server log ---\n{srv.log_tail()}",
                  flush=True)
        finally:
            srv.cleanup()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
