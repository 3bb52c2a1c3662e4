#!/usr/bin/env python3
"""eventbusd under systemd's readiness protocol (sd_notify), for real: the
test opens the Unix datagram socket that $NOTIFY_SOCKET names, as systemd
does for a Type=notify service, and reads what the daemon sends.

- READY=1 comes once the port accepts: at the moment it arrives, a connect
  and a /healthz answer succeed without any retry; and a daemon that cannot
  listen (the port is taken) sends no READY=1 at all and exits 1.
- SIGHUP sends RELOADING=1 (with MONOTONIC_USEC), then READY=1, and the
  daemon keeps serving.
- SIGTERM sends STOPPING=1, then the daemon exits 0.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DAEMON, free_port, run_tests  # noqa: E402


class Notified:
    """An eventbusd with NOTIFY_SOCKET set to a socket this test reads."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="eb-notify-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.path = os.path.join(self.dir, "notify")
        self.sock.bind(self.path)
        self.proc = None
        self.port = None

    def start(self, port):
        self.port = port
        log = open(os.path.join(self.dir, "server.log"), "a")
        env = dict(os.environ, NOTIFY_SOCKET=self.path)
        self.proc = subprocess.Popen(
            [DAEMON, "--listen", f"127.0.0.1:{port}", "--data", os.path.join(self.dir, "data")],
            stdout=log, stderr=log, env=env)
        log.close()

    def message(self, timeout=15.0):
        """The next datagram as a dict of its KEY=VALUE lines; None on timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def log(self):
        path = os.path.join(self.dir, "server.log")
        if not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            return f.read()

    def log_tail(self):
        return self.log()[-3000:]

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def healthz(port):
    """One GET /healthz on a new connection, no retry: the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(4096).split(b"\r\n", 1)[0].decode()


def started(n):
    """Starts n's daemon on a free port and waits for its first message;
    retries on another port if someone else took the port meanwhile."""
    for _ in range(5):
        n.start(free_port())
        msg = n.message()
        if msg is not None or n.proc.poll() is None:
            return msg
        n.proc.wait()
    raise AssertionError("eventbusd did not start:\n" + n.log())


def test_ready_only_once_the_port_accepts(n):
    msg = started(n)
    assert msg is not None and msg.get("READY") == "1", msg
    # no retry: the port must accept at the moment READY=1 arrives
    assert healthz(n.port) == "HTTP/1.1 200 OK", "READY=1 before the port accepts"
    assert "listening" in msg.get("STATUS", ""), msg


def test_no_ready_when_it_cannot_listen(n):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        n.start(taken.getsockname()[1])
        assert n.proc.wait(timeout=30) == 1, n.log()
    assert n.message(timeout=0.5) is None, "a message from a daemon that never listened"
    assert "cannot listen" in n.log(), n.log()


def test_sighup_reloading_then_ready(n):
    assert started(n).get("READY") == "1"
    n.proc.send_signal(signal.SIGHUP)
    msg = n.message()
    assert msg is not None and msg.get("RELOADING") == "1", msg
    assert int(msg["MONOTONIC_USEC"]) > 0, msg
    msg = n.message()
    assert msg is not None and msg.get("READY") == "1", msg
    assert healthz(n.port) == "HTTP/1.1 200 OK"
    assert "SIGHUP" in n.log(), n.log()
    assert n.proc.poll() is None, "SIGHUP stopped the daemon"


def test_sigterm_stopping_then_exit_0(n):
    assert started(n).get("READY") == "1"
    n.proc.send_signal(signal.SIGTERM)
    msg = n.message()
    assert msg is not None and msg.get("STOPPING") == "1", msg
    assert n.proc.wait(timeout=30) == 0, n.log()


if __name__ == "__main__":
    run_tests(globals(), fixture=Notified)
