#!/usr/bin/env python3
"""The shop walkthrough (examples/shop/walkthrough.sh) against a real
eventbusd, checked by its output: every step of the story must show what
the README promises, in order, and the server must end in the state the
story leaves it in.

$EVENTBUS (the CLI) and $SHOP_BIN (the example services) come from meson.
"""
import os
import re
import shutil
import subprocess

from harness import ROOT, run_tests

SCRIPT = os.path.join(ROOT, "examples", "shop", "walkthrough.sh")

# (step header, lines that must follow it, in this order). A line is a
# regular expression matched against one whole output line.
STORY = [
    ("== 1.", [r"order\.created: registered version 1 \(backward\)"]),
    ("== 2.", [r"created group inventory", r"created group notification",
               r"backoff:\s+200 ms x2 up to 1000 ms, jitter 0"]),
    ("== 3.", [r"order-service: order A-1001 published \(seq 1\)",
               r"order-service: order A-1002 published \(seq 2\)",
               r"order-service: order A-1003 published \(seq 3\)",
               r"inventory\s+no\s+3\s+0\s+0\s+0"]),
    ("== 4.", [r"inventory: reserved stock for order A-1001 \(129\.95\)",
               r"inventory: reserved stock for order A-1002 \(5\.00\)",
               r"inventory: reserved stock for order A-1003 \(42\.00\)",
               r"inventory-1: caught up; handled 3 events \(3 acked, 0 failed\)",
               r"inventory\s+no\s+0\s+0\s+0\s+0"]),
    ("== 5.", [r"created group analytics",
               r"order-service: order A-1004 published \(seq 4\)",
               r"analytics: order A-1004 19\.99 USD \(seq 4\)",
               r"analytics: caught up; handled 1 event"]),
    ("== 6.", [r'order-service: order A-1005 refused: schema_violation: /data/currency: '
               r'required property "currency" missing',
               r"\(exit status 1: nothing was written.*"]),
    ("== 7.", [r'notification: order A-1002: invalid e-mail "bob@" \(attempt 1\)',
               r'notification: order A-1002: invalid e-mail "bob@" \(attempt 4\)',
               r"notification-1: stopped; handled 7 events \(3 acked, 4 failed\)",
               r"EVENT-ID\s+TYPE\s+ATTEMPTS\s+FAILED-AT\s+CONSUMER\s+ERROR",
               r'\S{26}\s+order\.created\s+4\s+.*notification-1\s+invalid e-mail address "bob@"']),
    ("== 8.", [r"redrove 1 dead letter of notification",
               r'notification: order A-1002 has no usable e-mail \("bob@"\); sent to the '
               r"support queue",
               r"notification-1: caught up; handled 1 event \(1 acked, 0 failed\)",
               r"no dead letters in notification"]),
    ("== 9.", [r"requeued 4 events for analytics",
               r"analytics: order A-1001 129\.95 EUR \(seq 1\)",
               r"analytics: order A-1004 19\.99 USD \(seq 4\)",
               r"analytics: caught up; handled 4 events"]),
    ("== 10.", [r"events:  4 published; log holds seq 1\.\.4 .*",
                r"notification\s+no\s+0\s+0\s+0\s+0\s+8\s+4\s+4\s+0\s+1\s+1\s+0",
                r"walkthrough complete"]),
]


def check_story(out):
    lines = out.splitlines()
    at = 0
    for header, wants in STORY:
        while at < len(lines) and not lines[at].startswith(header):
            at += 1
        assert at < len(lines), f"step {header!r} missing"
        for want in wants:
            at += 1
            while at < len(lines) and not re.fullmatch(want, lines[at]):
                at += 1
            assert at < len(lines), f"after {header!r}: no line matching {want!r}"
    # nothing the story forbids: no 5th attempt, no A-1005 anywhere downstream
    assert "(attempt 5)" not in out
    assert not re.search(r"^(inventory|notification|analytics): .*A-1005", out, re.M)


def walkthrough(srv):
    env = dict(os.environ)
    env.pop("EVENTBUS_URL", None)
    p = subprocess.run(["bash", SCRIPT, f"http://127.0.0.1:{srv.port}"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert p.returncode == 0, f"walkthrough exited {p.returncode}:\n{p.stdout}"
    return p.stdout


def test_walkthrough(srv):
    for tool in ("curl", "jq"):
        assert shutil.which(tool), f"{tool} is needed (scripts/deps.sh installs it)"
    out = walkthrough(srv)
    check_story(out)
    st, _, g = srv.request("GET", "/v1/groups/notification")
    assert g["dead_letters"] == 0 and g["in_flight"] == 0 and g["lag"] == 0, g
    st, _, g = srv.request("GET", "/v1/groups/analytics")
    assert g["lag"] == 0 and g["counters"]["replayed"] == 4, g
    st, _, g = srv.request("GET", "/v1/groups/inventory")
    assert g["lag"] == 1, "A-1004 came after inventory caught up and stopped"


def test_walkthrough_runs_again_on_the_same_server(srv):
    """By hand, people run it twice: the second run starts its groups afresh."""
    walkthrough(srv)
    out = walkthrough(srv)
    assert "order.created: identical to version 1, nothing registered (backward)" in out
    assert "inventory-1: caught up; handled 3 events" in out
    assert "walkthrough complete" in out


def test_walkthrough_without_a_server_says_so(srv):
    port = srv.port
    srv.stop()
    env = dict(os.environ)
    p = subprocess.run(["bash", SCRIPT, f"http://127.0.0.1:{port}"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3 and "no eventbusd answers" in p.stderr, (p.returncode, p.stderr)
    srv.start()


if __name__ == "__main__":
    run_tests(globals())
