#!/usr/bin/env python3
"""make bench: runs the benchmarks under bench/ (log, json, schema, publish,
tls: TLS and tokens against plain HTTP, consume, push: webhooks against pull
+ ack, client, node: the TypeScript
client, scale: costs against the number of groups and the log's length,
bench/scale.py) and prints one table:
figure, target, result. Benchmarks are not tests: nothing here is timed in
make test. Each program also prints its own detailed lines."""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(ROOT, "build", "bench")
DAEMON = os.path.join(ROOT, "bin", "eventbusd")


def run(cmd):
    print("$ " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd),
          flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout
    print("\n".join(l for l in out.splitlines() if not l.startswith("RESULT")), flush=True)
    res = {}
    for line in out.splitlines():
        m = re.match(r"RESULT (.+?) ((?:\w+=[\d.]+ ?)+)$", line)
        if m:
            res[m.group(1)] = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", m.group(2))}
    return res


def main():
    rows = []
    log = run([os.path.join(B, "bench_log"), ROOT, "--repeat", "3"])
    raw = log.get("raw", {})
    mb = raw.get("mb_per_s", 0)
    rows.append(("raw disk: 256 MiB write + fdatasync", "-",
                 f"{mb:.0f} MB/s (median of 3 after a warm-up; first pass "
                 f"{raw.get('cold_mb_per_s', 0):.0f} MB/s); 200-byte records from one "
                 f"thread: {raw.get('one_thread_records_per_s', 0):,.0f} rec/s"))
    for n in (1, 8, 64):
        r = log.get(f"log_{n}", {})
        rows.append((f"log append, {n} appenders (fsync always)",
                     ">= 500k rec/s, >= 70% raw" if n == 64 else "-",
                     f"{r.get('records_per_s', 0):,.0f} rec/s (min {r.get('min_records_per_s', 0):,.0f}"
                     f", max {r.get('max_records_per_s', 0):,.0f}), "
                     f"{r.get('mb_per_s', 0):.0f} MB/s = {r.get('pct_raw', 0):.0f}% of raw, "
                     f"p99 {r.get('p99_us', 0):.0f} us"))
    if os.path.exists(os.path.join(B, "bench_json")):
        js = run([os.path.join(B, "bench_json")])
        for name in ("event_200B", "event_4KB"):
            r = js.get(f"json_{name}", {})
            o = r.get("ours_ns", 1)
            rows.append((f"json parse+walk+write {name}",
                         ">= 5x jansson, >= 2x cJSON" if name == "event_200B" else "-",
                         f"{o:.0f} ns; {r.get('jansson_ns', 0) / o:.1f}x jansson, "
                         f"{r.get('cjson_ns', 0) / o:.1f}x cJSON"))
    sc = run([os.path.join(B, "bench_schema")]).get("schema_validate", {})
    rows.append(("schema validate order.created", "< 500 ns",
                 f"{sc.get('ns', 0):.0f} ns (with errors {sc.get('ns_errors', 0):.0f} ns)"))
    pub = run([os.path.join(B, "bench_publish"), DAEMON])
    s = pub.get("single events, 64 connections", {})
    b = pub.get("batches of 100, 4 publishers", {})
    rows.append(("publish single events, 64 conns", ">= 50k/s, p99 < 10 ms",
                 f"{s.get('events_per_s', 0):,.0f}/s, p99 {s.get('p99_ms', 0):.2f} ms"))
    rows.append(("publish batches of 100, 4 publishers", ">= 200k events/s",
                 f"{b.get('events_per_s', 0):,.0f}/s, p99 {b.get('p99_ms', 0):.2f} ms"))
    tl = run([os.path.join(B, "bench_tls"), DAEMON])
    tb, ts, tc = tl.get("tls_batch", {}), tl.get("tls_single", {}), tl.get("tls_conns", {})
    for r, name, target in ((tb, "publish batches of 100 over TLS + token", ">= 80% of plain, no auth"),
                            (ts, "single publishes over TLS keep-alive + token", ">= 70% of plain, no auth")):
        rows.append((name, target,
                     f"server CPU/event {r.get('tls_cpu_us', 0):.2f} vs {r.get('plain_cpu_us', 0):.2f} us "
                     f"= {r.get('cpu_pct', 0):.0f}% of plain's throughput when CPU-bound; wall "
                     f"{r.get('tls', 0):,.0f}/s = {r.get('pct', 0):.0f}% of {r.get('plain', 0):,.0f}/s"))
    rows.append(("new TLS connections (handshake + GET /healthz)", "-",
                 f"{tc.get('tls', 0):,.0f}/s, server {tc.get('tls_cpu_us', 0):.0f} us CPU each "
                 f"(plain TCP {tc.get('plain', 0):,.0f}/s, {tc.get('plain_cpu_us', 0):.0f} us)"))
    es = run([os.path.join(B, "bench_estore"), DAEMON, "--events", "100000",
              "--log-events", "1000000"])
    for pol in ("always", "never"):
        r = es.get(f"publish_{pol}", {})
        rows.append((f"publish keyed + expected_version vs unkeyed (fsync {pol})", ">= 85%",
                     f"{100 * r.get('ratio', 0):.0f}%: {r.get('keyed_expected', 0):,.0f}/s vs "
                     f"{r.get('unkeyed', 0):,.0f}/s"))
    kr, rc, rk = es.get("key_read", {}), es.get("restart_clean", {}), es.get("restart_kill", {})
    rows.append(("GET ?key= (1,000 events) in a log of 1M", "p99 < 5 ms",
                 f"p50 {kr.get('p50_ms', 0):.2f} ms, p99 {kr.get('p99_ms', 0):.2f} ms; restart "
                 f"{rc.get('seconds', 0):.1f} s clean, {rk.get('seconds', 0):.1f} s after SIGKILL"))
    con = run([os.path.join(B, "bench_consume"), DAEMON])
    c, lat = con.get("consume", {}), con.get("latency", {})
    rows.append(("consume 1M, 3 groups at once (fsync always)", ">= 150k events/s per group",
                 f"{c.get('per_group_min', 0):,.0f}/s slowest group, "
                 f"{c.get('per_group_max', 0):,.0f}/s fastest" if c else "failed"))
    rows.append(("append-to-delivery at 5,000 events/s", "p50 < 0.5 ms, p99 < 2 ms",
                 f"p50 {lat.get('p50_ms', 0):.3f} ms, p99 {lat.get('p99_ms', 0):.3f} ms "
                 f"({lat.get('rate', 0):,.0f}/s held)" if lat else "failed"))
    pu = run([os.path.join(B, "bench_push"), DAEMON])
    pt, pl = pu.get("push_throughput", {}), pu.get("push_latency", {})
    rows.append(("push (webhooks), batch 1, max_in_flight 100", ">= 50% of pull 1 + ack",
                 f"{pt.get('push', 0):,.0f}/s = {pt.get('pct', 0):.0f}% of pull 1 + ack "
                 f"{pt.get('pull1', 0):,.0f}/s (eventbusd CPU/event {pt.get('cpu_push1', 0):.1f} "
                 f"against {pt.get('cpu_pull1', 0):.1f} us); {pt.get('pct_limit', 0):.0f}% of a "
                 f"plain keep-alive generator's {pt.get('limit', 0):,.0f} POSTs/s"
                 if pt else "failed"))
    rows.append(("push (webhooks), batch 100", "-",
                 f"{pt.get('batch100', 0):,.0f}/s = {pt.get('pct100', 0):.0f}% of pull 100 + ack "
                 f"{pt.get('pull100', 0):,.0f}/s" if pt else "failed"))
    rows.append(("push latency at 1,000 events/s (publish to POST)", "-",
                 f"p50 {pl.get('p50_ms', 0):.2f} ms, p99 {pl.get('p99_ms', 0):.2f} ms"
                 if pl else "failed"))
    fl = run([os.path.join(B, "bench_filter"), DAEMON]).get("filter", {})
    rows.append(("pull+ack, group with a data filter", ">= 70% of the same group without",
                 f"{fl.get('filtered_eps', 0):,.0f}/s = {100 * fl.get('ratio', 0):.0f}% of "
                 f"{fl.get('plain_eps', 0):,.0f}/s" if fl else "failed"))
    dl = run([os.path.join(B, "bench_delay"), DAEMON]).get("delay", {})
    rows.append(("1M delayed events due over 10 s: delivery error", "p99 < 100 ms",
                 f"p99 {dl.get('delivery_p99_ms', 0):.0f} ms (server's release p99 "
                 f"{dl.get('release_p99_ms', 0):.0f} ms), {dl.get('early', 0):.0f} early"
                 if dl else "failed"))
    rows.append(("server CPU while 1M delayed events wait", "near zero",
                 f"{dl.get('cpu_idle_waiting', 0):.4f} CPU-s/s (none waiting: "
                 f"{dl.get('cpu_idle_empty', 0):.4f}); restart {dl.get('restart_term_s', 0):.2f} s, "
                 f"{dl.get('restart_kill_s', 0):.2f} s after SIGKILL" if dl else "failed"))
    if os.path.exists(os.path.join(B, "bench_client")):
        cl = run([os.path.join(B, "bench_client"), DAEMON])
        p = cl.get("client_publish", {})
        rows.append(("libeventbus publish, client CPU/request", "< libcurl easy",
                     f"{p.get('ours_cpu_us', 0):.1f} us vs libcurl {p.get('curl_cpu_us', 0):.1f} us "
                     f"(wall {p.get('ours_us', 0):.0f} vs {p.get('curl_us', 0):.0f} us, fsync bound)"))
        rows.append(("eb_consume drain (pull 500 + ack)", "-",
                     f"{cl.get('client_consume', {}).get('events_per_s', 0):,.0f} events/s"))
    node_c = os.path.join(B, "node", "bench_node_c")
    if shutil.which("node") and os.path.exists(node_c):
        nd = run(["node", os.path.join(ROOT, "bench", "node", "bench.mjs"), DAEMON, node_c]).get("node", {})
        fc = nd.get("consume_fetch_eps", 0) or 1
        ff = nd.get("cpu_fetch_us", 0) or 1
        rows.append(("@eventbus/client consume, trivial handler", ">= 80% of a fetch loop",
                     f"{nd.get('consume_client_eps', 0):,.0f}/s = {100 * nd.get('consume_client_eps', 0) / fc:.0f}% "
                     f"of fetch loop {fc:,.0f}/s (C eb_consume {nd.get('consume_c_eps', 0):,.0f}/s)"))
        rows.append(("@eventbus/client publish batches of 100, CPU/event", "<= 1.5x a fetch loop",
                     f"{nd.get('cpu_client_us', 0):.2f} us = {nd.get('cpu_client_us', 0) / ff:.2f}x fetch loop "
                     f"{ff:.2f} us (C {nd.get('cpu_c_us', 0):.2f} us); {nd.get('publish_client_eps', 0):,.0f} events/s"))
    sc = run([sys.executable, os.path.join(ROOT, "bench", "scale.py"), "--daemon", DAEMON])
    one, many = sc.get("scale_groups_1", {}), sc.get("scale_groups_1000", {})
    top, log = sc.get("scale_groups_10000", {}), sc.get("scale_log_1000000", {})
    if one and many and top:
        rows.append(("publish batches with 1,000 groups (bench/scale.py)", ">= 80% of 1 group",
                     f"{many['publish_per_s']:,.0f}/s = "
                     f"{100 * many['publish_per_s'] / one['publish_per_s']:.0f}% of "
                     f"{one['publish_per_s']:,.0f}/s"))
        rows.append(("restart, 10,000 groups / RSS 10,000 idle groups", "< 2 s / < 100 MB",
                     f"{top['restart_s']:.2f} s / {top['rss_idle_mb']:.0f} MB "
                     f"(1 group: {one['restart_s']:.2f} s; /metrics {top['metrics_ms']:.0f} ms)"))
    if log:
        rows.append(("restart on 1M events, 10 groups / 1 group", "within 2x",
                     f"{log['restart_s']:.2f} s / {log['restart_1_group_s']:.2f} s"))
    w = max(len(r[0]) for r in rows)
    t = max(len(r[1]) for r in rows)
    print("\n%-*s  %-*s  %s" % (w, "figure", t, "target", "result"))
    for r in rows:
        print("%-*s  %-*s  %s" % (w, r[0], t, r[1], r[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
