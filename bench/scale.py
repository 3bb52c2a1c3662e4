#!/usr/bin/env python3
"""bench/scale.py - costs against the number of groups and the log's length
(issue 15), written as a CSV and drawn as PNG curves with gnuplot.

For each group count (default 1, 10, 100, 1000, 10000), on a fresh
eventbusd (--fsync interval): create the groups (all matching the events,
start latest), publish EVENTS events of ~400 bytes in batches of 1,000
(publish rate), pull+ack them through one group (pull+ack rate, batches
of 1,000), take the RSS with the groups idle, pull once per group and take
the RSS again, time one /metrics scrape (default --metrics-groups), take
the server's CPU while idle for 2 s, then stop (SIGTERM) and time the
restart until /healthz answers. Then, for each log length (default 1M; --log-sizes 1000000,10000000
for more), 10 groups that have consumed nothing: restart time after a
clean stop and after SIGKILL, and with 1 group (--log-many 10000: also with
10,000 groups; --log-small: events of ~60 bytes stored instead of ~400).

Also: server CPU seconds (utime+stime from /proc/<pid>/stat) per 100,000
events published and per 100,000 pulled+acked.

    bench/scale.py [--daemon bin/eventbusd] [--groups 1,10,100,1000,10000]
                   [--events 50000] [--log-sizes 1000000] [--log-many 10000]
                   [--log-small] [--out build/bench-scale]

Writes OUT/scale_groups.csv, OUT/scale_log.csv and, when gnuplot is on
PATH, OUT/scale_*.png. Python 3 stdlib only. Not part of make test.
"""
import argparse
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, exe, data):
        self.exe, self.data, self.proc, self.conn = exe, data, None, None

    def start(self):
        self.port = free_port()
        self.proc = subprocess.Popen([self.exe, "--listen", f"127.0.0.1:{self.port}", "--data",
                                      self.data, "--fsync", "interval", "--log-level", "warn",
                                      "--max-groups", "1000000"],  # past the default 1000
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("eventbusd exited while starting")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    self.conn = c
                    return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.005)

    def stop(self):
        if self.conn:
            self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=600)

    def kill(self):
        if self.conn:
            self.conn.close()
        self.proc.kill()
        self.proc.wait(timeout=600)

    def req(self, method, path, body=None):
        data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        text = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {text[:200]!r}")
        return json.loads(text) if text else None

    def cpu(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0


PAYLOAD = {"orderId": "O-0000000", "customer": "c" * 40, "items": [{"sku": "s" * 20, "qty": 1}] * 6,
           "note": "n" * 120}
BATCH = json.dumps([{"type": "bench.order", "data": PAYLOAD}] * 1000).encode()


# --log-small: events of ~60 bytes stored (50M of them fit in ~10 GB).
SMALL_BATCH = json.dumps([{"type": "bench.order", "data": {"n": 1}}] * 1000).encode()


def publish(d, n, batch=BATCH):
    for _ in range(n // 1000):
        d.req("POST", "/v1/events/batch", batch)


def make_groups(d, n, start="latest"):
    for i in range(n):
        d.req("PUT", f"/v1/groups/g{i}", {"types": ["bench.*"], "start": start})


def drain(d, group, n):
    got = 0
    while got < n:
        evs = d.req("POST", f"/v1/groups/{group}/pull", {"consumer": "c", "max": 1000})["events"]
        if not evs:
            break
        d.req("POST", f"/v1/groups/{group}/ack", {"ids": [e["delivery"]["id"] for e in evs]})
        got += len(evs)
    return got


def groups_run(exe, ngroups, events):
    tmp = tempfile.mkdtemp(prefix="eb-scale-")
    d = Daemon(exe, os.path.join(tmp, "data"))
    try:
        d.start()
        make_groups(d, ngroups)
        c0, t0 = d.cpu(), time.monotonic()
        publish(d, events)
        pub_s, pub_cpu = time.monotonic() - t0, d.cpu() - c0
        c0, t0 = d.cpu(), time.monotonic()
        consumed = drain(d, "g0", events)
        con_s, con_cpu = time.monotonic() - t0, d.cpu() - c0
        rss_idle = d.rss_mb()
        for i in range(ngroups):
            d.req("POST", f"/v1/groups/g{i}/pull", {"consumer": "c", "max": 1})
        rss_pulled = d.rss_mb()
        t0 = time.monotonic()
        d.conn.request("GET", "/metrics")
        r = d.conn.getresponse()
        metrics_bytes = len(r.read())
        metrics_ms = (time.monotonic() - t0) * 1000
        c0 = d.cpu()
        time.sleep(2)
        idle_cpu_pct = (d.cpu() - c0) / 2 * 100
        d.stop()
        restart = d.start()
        lag = d.req("GET", f"/v1/groups/g{ngroups - 1}")["lag"]
        d.stop()
        return {"groups": ngroups, "events": events,
                "publish_per_s": round(events / pub_s), "pull_ack_per_s": round(consumed / con_s),
                "cpu_s_per_100k_published": round(pub_cpu * 100000 / events, 3),
                "cpu_s_per_100k_pull_ack": round(con_cpu * 100000 / max(consumed, 1), 3),
                "rss_idle_mb": round(rss_idle, 1), "rss_after_pull_mb": round(rss_pulled, 1),
                "restart_s": round(restart, 3), "lag_after_restart": lag,
                "metrics_ms": round(metrics_ms, 1), "metrics_bytes": metrics_bytes,
                "idle_cpu_pct": round(idle_cpu_pct, 1)}
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def delete_groups(d, lo, hi):
    for i in range(lo, hi):
        d.req("DELETE", f"/v1/groups/g{i}")


def du(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def log_run(exe, events, ngroups=10, many=0, small=False):
    """Restart times on a log of `events` events: with `many` groups (if
    set) and with ngroups, after a clean stop and after SIGKILL, and with 1
    group. The groups are made before publishing, so each has the whole
    log as its lag."""
    tmp = tempfile.mkdtemp(prefix="eb-scale-")
    d = Daemon(exe, os.path.join(tmp, "data"))
    try:
        d.start()
        make_groups(d, max(ngroups, many))
        publish(d, events, SMALL_BATCH if small else BATCH)
        d.stop()
        row = dict.fromkeys(["events", "groups", "restart_s", "restart_1_group_s",
                             "lag_after_restart", "restart_kill_s", "groups_many",
                             "restart_many_s", "restart_many_kill_s", "disk_mb",
                             "restart_cpu_s", "restart_1_group_cpu_s", "restart_kill_cpu_s",
                             "restart_many_cpu_s", "restart_many_kill_cpu_s"], 0)
        row.update(events=events, groups=ngroups)

        def restart(name):  # wall time to /healthz, and the server's CPU until then
            row[name + "_s"] = round(d.start(), 3)
            row[name + "_cpu_s"] = round(d.cpu(), 3)

        if many:
            restart("restart_many")
            d.kill()
            restart("restart_many_kill")
            delete_groups(d, ngroups, many)
            d.stop()
        restart("restart")
        row["lag_after_restart"] = d.req("GET", "/v1/groups/g0")["lag"]
        d.kill()
        restart("restart_kill")
        delete_groups(d, 1, ngroups)
        d.stop()
        restart("restart_1_group")
        d.stop()
        row["groups_many"] = many
        row["disk_mb"] = round(du(d.data) / 1e6)
        return row
    finally:
        for p in (d.proc,):
            if p and p.poll() is None:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def write_csv(path, rows):
    with open(path, "w") as f:
        f.write(",".join(rows[0]) + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r.values()) + "\n")


def plot(out, groups_csv, log_csv):
    if not shutil.which("gnuplot"):
        print("gnuplot not found: no plots (scripts/deps.sh --bench installs gnuplot-nox)")
        return
    common = ("set terminal pngcairo size 800,500 noenhanced\nset datafile separator ','\n"
              "set key autotitle columnhead\nset logscale x\nset grid\nset key left top\nset yrange [0:*]\n")
    g = f"'{groups_csv}'"
    script = common if not groups_csv else common + f"""
set xlabel 'groups'
set output '{out}/scale_rates.png'
set ylabel 'events/s'
plot {g} using 1:3 with linespoints title 'publish (batches of 1,000)', {g} using 1:4 with linespoints title 'pull+ack, one group'
set output '{out}/scale_rss.png'
set ylabel 'MB'
plot {g} using 1:7 with linespoints title 'RSS, groups idle', {g} using 1:8 with linespoints title 'RSS after one pull per group'
set output '{out}/scale_restart.png'
set ylabel 'seconds'
plot {g} using 1:9 with linespoints title 'restart'
set output '{out}/scale_cpu.png'
set ylabel 'CPU s per 100k events'
plot {g} using 1:5 with linespoints title 'publish', {g} using 1:6 with linespoints title 'pull+ack'
"""
    if log_csv:
        lg = f"'{log_csv}'"
        script += f"""
set output '{out}/scale_log_restart.png'
set xlabel 'events in the log'
set ylabel 'seconds'
plot {lg} using 1:'restart_s' with linespoints title 'restart, 10 groups', {lg} using 1:'restart_kill_s' with linespoints title 'restart after SIGKILL, 10 groups', {lg} using 1:'restart_1_group_s' with linespoints title 'restart, 1 group', {lg} using 1:'restart_many_s' with linespoints title 'restart, 10,000 groups'
set output '{out}/scale_log_restart_cpu.png'
set ylabel 'server CPU seconds until ready'
plot {lg} using 1:'restart_cpu_s' with linespoints title 'restart, 10 groups', {lg} using 1:'restart_kill_cpu_s' with linespoints title 'restart after SIGKILL, 10 groups', {lg} using 1:'restart_1_group_cpu_s' with linespoints title 'restart, 1 group', {lg} using 1:'restart_many_cpu_s' with linespoints title 'restart, 10,000 groups'
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--daemon", default=os.path.join(ROOT, "bin", "eventbusd"))
    ap.add_argument("--groups", default="1,10,100,1000,10000")
    ap.add_argument("--events", type=int, default=50000)
    ap.add_argument("--log-sizes", default="1000000")
    ap.add_argument("--log-groups", type=int, default=10, help="groups for the log-length rows")
    ap.add_argument("--log-many", type=int, default=0,
                    help="also restart with this many groups on each log (e.g. 10000)")
    ap.add_argument("--log-small", action="store_true", help="small events for the log rows")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-scale"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for n in [int(x) for x in a.groups.split(",") if x]:
        r = groups_run(a.daemon, n, a.events)
        print("RESULT scale_groups_%d %s" % (n, " ".join(f"{k}={v}" for k, v in r.items())),
              flush=True)
        rows.append(r)
    gcsv = os.path.join(a.out, "scale_groups.csv") if rows else None
    if rows:
        write_csv(gcsv, rows)
    lrows = []
    for n in [int(x) for x in a.log_sizes.split(",") if x]:
        r = log_run(a.daemon, n, a.log_groups, a.log_many, a.log_small)
        print("RESULT scale_log_%d %s" % (n, " ".join(f"{k}={v}" for k, v in r.items())),
              flush=True)
        lrows.append(r)
    lcsv = os.path.join(a.out, "scale_log.csv") if lrows else None
    if lrows:
        write_csv(lcsv, lrows)
    plot(a.out, gcsv, lcsv)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())
