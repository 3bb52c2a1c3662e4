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
- The unit's sandbox: every system call eventbusd makes (strace, over
  start, publishes with a schema pattern, a group pull and ack, SIGHUP,
  SIGTERM, and a restart that recovers the log) is one its
  SystemCallFilter= allows, and every socket family one its
  RestrictAddressFamilies= allows; systemd would kill it otherwise.
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

    def start(self, port, wrap=()):
        """wrap: a command the daemon runs under (strace)."""
        self.port = port
        log = open(os.path.join(self.dir, "server.log"), "a")
        env = dict(os.environ, NOTIFY_SOCKET=self.path)
        self.proc = subprocess.Popen(
            list(wrap) + [DAEMON, "--listen", f"127.0.0.1:{port}",
                          "--data", os.path.join(self.dir, "data")],
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


UNIT = os.environ.get("EB_UNIT", "")


def syscall_filter():
    """(allowed syscalls, allowed families) from the built unit, the sets
    expanded with systemd-analyze syscall-filter, as systemd would."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], check=True,
                         capture_output=True, text=True).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.strip(), [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.strip())

    def expand(names):
        got = set()
        for n in names:
            got |= expand(groups[n]) if n.startswith("@") else {n}
        return got
    allowed, families = None, None
    for line in open(UNIT):
        key, _, value = line.strip().partition("=")
        if key == "SystemCallFilter":
            deny = value.startswith("~")
            names = expand(value.lstrip("~").split())
            allowed = (allowed - names) if deny else (names if allowed is None else allowed | names)
        elif key == "RestrictAddressFamilies":
            families = set(value.split())
    assert allowed and families, UNIT
    return allowed, families


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"} if body is not None else {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert resp.status < 300, (method, path, resp.status, data)
    return data


def traced_workload(n, trace):
    for _ in range(2):  # the second time recovers what the first wrote
        n.start(free_port(), wrap=["strace", "-D", "-f", "-q", "-o", trace + str(_)])
        assert n.message().get("READY") == "1", n.log()
        request(n.port, "PUT", "/v1/schemas/t.x", {"schema": {"type": "object", "properties": {
            "a": {"type": "string", "pattern": "^[a-z]+$"}}}})
        for i in range(20):
            request(n.port, "POST", "/v1/events", {"type": "t.x", "data": {"a": "abc"}})
        request(n.port, "PUT", "/v1/groups/g", {"types": ["t.x"], "start": "earliest"})
        got = json.loads(request(n.port, "POST", "/v1/groups/g/pull",
                                 {"consumer": "c", "max": 5}))
        request(n.port, "POST", "/v1/groups/g/ack",
                {"ids": [e["delivery"]["id"] for e in got["events"]]})
        request(n.port, "GET", "/metrics")
        n.proc.send_signal(signal.SIGHUP)
        assert n.message().get("RELOADING") == "1"
        assert n.message().get("READY") == "1"
        n.proc.send_signal(signal.SIGTERM)
        assert n.message().get("STOPPING") == "1"
        assert n.proc.wait(timeout=30) == 0, n.log()


def test_syscalls_within_the_units_filter(n):
    allowed, families = syscall_filter()
    trace = os.path.join(n.dir, "trace")
    traced_workload(n, trace)
    used, used_families = set(), set()
    for i in range(2):
        text = ""
        for _ in range(100):  # strace -D finishes its file just after the daemon exits
            text = open(trace + str(i)).read()
            if "+++ exited with 0 +++" in text:
                break
            time.sleep(0.05)
        used |= set(re.findall(r"^\d+\s+([a-z0-9_]+)\(", text, re.M))
        used_families |= set(re.findall(r"\bsocket\((AF_[A-Z0-9]+)", text))
    used -= {"execve"}  # strace's exec of the daemon, before systemd's filter would apply
    assert {"fdatasync", "flock", "accept4", "sendmsg"} <= used, sorted(used)
    assert not used - allowed, f"not allowed by the unit: {sorted(used - allowed)}"
    assert not used_families - families, sorted(used_families - families)


if not UNIT:  # a sanitizer build: LeakSanitizer cannot run under strace
    del test_syscalls_within_the_units_filter


if __name__ == "__main__":
    run_tests(globals(), fixture=Notified)
