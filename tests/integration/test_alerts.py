#!/usr/bin/env python3
"""contrib/prometheus/alerts.yml against a real eventbusd.

`promtool check rules` checks the file (syntax, PromQL, templates). Then
each rule's expression is evaluated by `promtool test rules` on series made
from two real scrapes of /metrics, A and B, taken a little apart while the
server is driven into a state: counters grow each minute by what they grew
from A to B (what the server did between the scrapes, repeated), a lag
that grew keeps growing, other gauges stay as in B, the age of the oldest
unacked event grows with the clock, and a group's last pull time stays
where it was (nobody pulls) or keeps up with the clock (consumers pull). Every metric name and
label set comes from the scrape, so a renamed metric or label breaks the
test. Two states: a healthy server (no alert may fire) and a troubled one
(every alert fires). The troubled server's data directory is a small tmpfs
that the test fills, so its storage really is degraded and its publishes
really answer 507 (5xx) between the scrapes: nothing in either state is set
by hand. Mounting needs root (or CAP_SYS_ADMIN); where it is not permitted
the troubled state is skipped with the reason.

promtool compares annotations too: the rules are copied without their
annotations (templates that check rules already parsed), the expressions,
durations and labels unchanged."""
import json
import os
import re
import shutil
import subprocess
import tempfile

from harness import Skip, run_tests, skip_on_pg
from tmpfs import TmpfsServer, can_mount, fill

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "..", "..", "contrib", "prometheus", "alerts.yml")
PROMTOOL = shutil.which("promtool")
MINUTES = 120
EVAL = "90m"
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')


def scrape(srv):
    st, _, text = srv.request("GET", "/metrics")
    assert st == 200, st
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m and not line.startswith("#"):
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def with_instance(series):
    lab = 'instance="eb:8470",job="eventbus"'
    if series.endswith("}"):
        return series[:-1] + "," + lab + "}"
    return series + "{" + lab + "}"


def ramp(a, b):
    return f"{a:g}+{b - a:g}x{MINUTES}"


def build_series(a, b, pulling, overrides):
    out = []
    for s, vb in b.items():
        name = s.split("{")[0]
        if not name.startswith("eventbus_") or name.endswith(("_bucket", "_sum", "_count")):
            continue
        if name.endswith("_total"):  # counters: what happened between A and B, every minute
            vals = f"{vb:g}+{vb - a.get(s, 0):g}x{MINUTES}"
        elif name == "eventbus_group_lag" and vb > a.get(s, vb):
            vals = f"{vb:g}+{vb - a[s]:g}x{MINUTES}"  # lag that grew keeps growing
        elif name == "eventbus_group_oldest_unacked_seconds" and vb > 0:
            vals = f"{vb:g}+60x{MINUTES}"  # nothing acked: it ages with the clock
        elif name == "eventbus_group_last_pull_timestamp_seconds":
            # Test time starts at 0: a pull at scrape B is at 0, never pulled stays 0.
            vals = f"0+{60 if pulling and vb else 0}x{MINUTES}"
        else:  # other gauges stay as in B
            vals = f"{vb:g}+0x{MINUTES}"
        out.append({"series": with_instance(s), "values": overrides.get(s, vals)})
    for s, vals in overrides.items():
        if s not in b:
            out.append({"series": with_instance(s), "values": vals})
    return out


def rules_without_annotations(tmp):
    lines, skip_indent = [], None
    with open(RULES) as f:
        for line in f:
            indent = len(line) - len(line.lstrip())
            if skip_indent is not None and (not line.strip() or indent > skip_indent):
                continue
            skip_indent = None
            if line.strip() == "annotations:":
                skip_indent = indent
                continue
            lines.append(line)
    path = os.path.join(tmp, "rules.yml")
    with open(path, "w") as f:
        f.writelines(lines)
    return path


def alert_names():
    with open(RULES) as f:
        return re.findall(r"- alert: (\S+)", f.read())


def promtool_test(series, expected):
    """expected: alert name -> list of label dicts that must fire at EVAL (others: none)."""
    tmp = tempfile.mkdtemp(prefix="eb-alerts-")
    try:
        tests = [{"alertname": n, "eval_time": EVAL,
                  "exp_alerts": [{"exp_labels": l} for l in expected.get(n, [])]}
                 for n in alert_names()]
        doc = {"rule_files": [rules_without_annotations(tmp)], "evaluation_interval": "1m",
               "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": tests}]}
        path = os.path.join(tmp, "test.yml")
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)  # JSON is YAML
        r = subprocess.run([PROMTOOL, "test", "rules", path], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_tool():
    assert PROMTOOL, "promtool is missing: scripts/deps.sh installs Debian's prometheus package"


def test_check_rules(srv):
    check_tool()
    r = subprocess.run([PROMTOOL, "check", "rules", RULES], capture_output=True, text=True)
    assert r.returncode == 0 and "SUCCESS: 7 rules found" in r.stdout, r.stdout + r.stderr
    assert len(alert_names()) == 7


def publish_batch(srv, n, type_="t", bad=0):
    evs = [{"type": type_, "data": {"i": i}} for i in range(n)]
    st, _, body = srv.request("POST", "/v1/events/batch", evs)
    assert st == 201, (st, body)
    for _ in range(bad):
        st, _, body = srv.request("POST", "/v1/events", {"type": type_, "data": {"j": 1}})
        assert st == 422, body


def setup(srv):
    st, _, body = srv.request("PUT", "/v1/schemas/t", {"schema": {"type": "object",
                                                                  "required": ["i"]}})
    assert st == 201, body
    for g in ("slow", "idle"):
        st, _, body = srv.request("PUT", f"/v1/groups/{g}", {"types": ["t"], "max_attempts": 1})
        assert st == 201, body


def pull(srv, group, n):
    st, _, body = srv.request("POST", f"/v1/groups/{group}/pull", {"consumer": "c", "max": n})
    assert st == 200, body
    return [e["delivery"]["id"] for e in body["events"]]


def test_healthy_server_fires_nothing(srv):
    check_tool()
    setup(srv)
    st, _, body = srv.request("DELETE", "/v1/groups/idle")
    assert st == 204, body
    publish_batch(srv, 50)
    a = scrape(srv)
    publish_batch(srv, 50)
    for ids in (pull(srv, "slow", 100),):
        st, _, body = srv.request("POST", "/v1/groups/slow/ack", {"ids": ids})
        assert st == 200 and body["acked"] == 100, body
    b = scrape(srv)
    assert b['eventbus_group_lag{group="slow"}'] == 0, b
    assert b["eventbus_storage_degraded"] == 0, b
    promtool_test(build_series(a, b, pulling=True, overrides={}), {})


def publish_until_full(srv, tries=40):
    """Batches into a full disk: returns how many were refused with 507
    (the first may still fit in a page the filler could not take)."""
    refused = 0
    for _ in range(tries):
        evs = [{"type": "t", "data": {"i": i}} for i in range(50)]
        st, _, body = srv.request("POST", "/v1/events/batch", evs)
        if st == 201:
            continue
        assert st == 507 and body["error"]["code"] == "storage_full", (st, body)
        refused += 1
        if refused == 5:
            break
    return refused


def test_troubled_server_fires_every_alert(srv):
    check_tool()
    skip_on_pg("the troubled state fills the data directory's disk; the "
               "PostgreSQL engine's unreachable state is test_pgstore's")
    ok, why = can_mount()
    if not ok:
        raise Skip(f"cannot mount a tmpfs here ({why}): needs root or CAP_SYS_ADMIN")
    srv.stop()  # this state needs a server whose disk can fill
    srv = TmpfsServer()
    try:
        troubled(srv)
    finally:
        srv.cleanup()


def troubled(srv):
    srv.start()
    setup(srv)
    publish_batch(srv, 1000)
    publish_batch(srv, 100)
    ids = pull(srv, "slow", 101)
    st, _, body = srv.request("POST", "/v1/groups/slow/nack", {"ids": ids})
    assert st == 200, body
    a = scrape(srv)
    assert a['eventbus_dlq_depth{group="slow"}'] == 101, a
    assert a["eventbus_storage_degraded"] == 0, a
    publish_batch(srv, 200, bad=20)  # lag grows; 20 publishes refused by the schema
    fill(srv.data)  # then the disk fills: publishes fail with 507, storage degraded
    refused = publish_until_full(srv)
    assert refused == 5, refused
    b = scrape(srv)
    lag = b['eventbus_group_lag{group="slow"}']
    assert lag >= 1199, b  # 1,199 before the fill, plus batches that still fit
    assert b['eventbus_group_oldest_unacked_seconds{group="slow"}'] > 0, b
    assert b['eventbus_group_last_pull_timestamp_seconds{group="idle"}'] == 0, b
    assert b["eventbus_storage_degraded"] == 1, b
    five = 'eventbus_http_requests_total{method="POST",route="/v1/events/batch",code="5xx"}'
    assert b[five] - a.get(five, 0) == refused, (a.get(five), b[five])
    inst = {"instance": "eb:8470", "job": "eventbus"}
    both = [dict(inst, group=g) for g in ("slow", "idle")]
    expected = {
        "EventbusDLQGrowing": [dict(inst, group="slow", severity="warning")],
        "EventbusLagGrowing": [dict(l, severity="warning") for l in both],
        "EventbusOldestUnackedTooOld": [dict(l, severity="warning") for l in both],
        "EventbusGroupNotPulled": [dict(l, severity="critical") for l in both],
        "EventbusStorageDegraded": [dict(inst, severity="critical")],
        "EventbusPublishErrors": [dict(instance="eb:8470", severity="critical")],
        "EventbusPublishRejected": [dict(instance="eb:8470", severity="warning")],
    }
    promtool_test(build_series(a, b, pulling=False, overrides={}), expected)


if __name__ == "__main__":
    run_tests(globals())
