#!/usr/bin/env python3
"""The shop walkthrough (examples/shop/walkthrough.sh) against a real
eventbusd, checked by its output: every step of the story must show what
the README promises, in order, and the server must end in the state the
story leaves it in. Also the top-level README's "Try it", run as written
(its commands read from README.md), answering what its comments say, and
the walkthrough after it on the same server, as a newcomer does them.

$EVENTBUS (the CLI) and $SHOP_BIN (the example services) come from meson.
"""
import os
import re
import shutil
import subprocess

from harness import ROOT, run_tests

SCRIPT = os.path.join(ROOT, "examples", "shop", "walkthrough.sh")
CLI = os.path.abspath(os.environ.get("EVENTBUS") or os.path.join(ROOT, "bin", "eventbus"))

# (step header, lines that must follow it, in this order). A line is a
# regular expression matched against one whole output line.
STORY = [
    ("== 1.", [r"order\.created: registered version 1 \(backward\)"]),
    ("== 2.", [r"created group inventory", r"created group notification",
               r"backoff:\s+200 ms x2 up to 1000 ms, jitter 0"]),
    ("== 3.", [r"order-service: order A-1001 published \(seq 1\)",
               r"order-service: order A-1002 published \(seq 2\)",
               r"order-service: order A-1003 published \(seq 3\)",
               r"inventory\s+no\s+3\s+3\s+0\s+0\s+0"]),  # lag 3, all 3 ready
    ("== 4.", [r"inventory: reserved stock for order A-1001 \(129\.95\)",
               r"inventory: reserved stock for order A-1002 \(5\.00\)",
               r"inventory: reserved stock for order A-1003 \(42\.00\)",
               r"inventory-1: caught up; handled 3 events \(3 acked, 0 failed\)",
               r"inventory\s+no\s+0\s+0\s+0\s+0\s+0"]),
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
    # 4 orders + the eventbus.dead_letter notice of step 8's dead letter
    ("== 10.", [r"events:  5 published; log holds seq 1\.\.5 .*",
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



def readme_blocks():
    """The two ```sh blocks of README.md's "Try it": curl, then the CLI."""
    text = open(os.path.join(ROOT, "README.md")).read()
    at = text.index("\n## Try it\n")
    blocks = []
    for _ in range(2):
        start = text.index("```sh\n", at) + len("```sh\n")
        at = text.index("```", start)
        blocks.append(text[start:at])
        at += 3
    return blocks


def answer_pattern(comment):
    """A README comment showing an answer, as a regular expression: "..."
    stands for anything, ids and times for any id and time."""
    any_id, any_time = r"[0-9A-HJKMNP-TV-Z]{26}", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"
    parts = re.split(r"(\.\.\.|[0-9A-HJKMNP-TV-Z]{26}|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z)",
                     comment)
    out = ""
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out += re.escape(part)
        else:
            out += ".*" if part == "..." else any_time if "T" in part and ":" in part else any_id
    return out


def try_it(srv):
    """Runs README.md's "Try it" against srv: the curl block as written
    (answers one a line), then the CLI block (`tail` and `top`, which run
    until Ctrl-C, get one after 3 s). Returns the curl block's output."""
    curl_block, cli_block = readme_blocks()
    here = f"127.0.0.1:{srv.port}"
    assert "localhost:8470" in curl_block
    prelude = 'curl() { command curl -sS "$@"; echo; }\nset -e\n'
    p = subprocess.run(["bash", "-c", prelude + curl_block.replace("localhost:8470", here)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (p.stdout, p.stderr)
    out = p.stdout
    # every answer the README shows (a "# {" comment) came, in this order
    lines, at = out.splitlines(), 0
    for c in re.findall(r"^# (\{.*)$", curl_block, re.M):
        pat = answer_pattern(c)
        while at < len(lines) and not re.fullmatch(pat, lines[at]):
            at += 1
        assert at < len(lines), f"README answer {c!r} not seen in:\n{out}"
    assert not re.search(r'"unknown":\["', out), out  # no ack/nack of an id that is not there
    assert '{"nacked":1,"unknown":[]}' in out, out
    env = dict(os.environ, EVENTBUS_URL=f"http://{here}", CLI=CLI)
    env.pop("EVENTBUS_OUTPUT", None)
    prelude = ('eb() { case "$1" in tail|top) timeout -s INT --preserve-status 3 "$CLI" "$@";;'
               ' *) "$CLI" "$@";; esac; }\nset -e\n')
    assert cli_block.count("bin/eventbus ") >= 5
    p = subprocess.run(["bash", "-c", prelude + cli_block.replace("bin/eventbus ", "eb ")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert '"orderId"' not in p.stderr and "A-1003" in p.stdout, (p.stdout, p.stderr)
    return out


def test_readme_try_it_then_the_walkthrough(srv):
    """Issue 14.3: the README's "Try it" registered another order.created
    schema, so the walkthrough after it failed at step 1; its nack step
    nacked a delivery that never existed."""
    try_it(srv)
    out = walkthrough(srv)
    assert "order.created: identical to version 1, nothing registered (backward)" in out, out
    for want in ("inventory-1: caught up; handled 3 events (3 acked, 0 failed)",
                 "redrove 1 dead letter of notification", "no dead letters in notification",
                 "walkthrough complete"):
        assert want in out, (want, out)
    st, _, g = srv.request("GET", "/v1/groups/notification")
    assert g["dead_letters"] == 0 and g["counters"]["dead_lettered"] == 1, g


def test_walkthrough_on_a_foreign_schema_says_what_to_do(srv):
    """A server whose order.created the shop's schema cannot follow (the
    README's "Try it" once registered one): the walkthrough stops at step 1
    and says how to get a server it can run on."""
    foreign = {"type": "object", "required": ["orderId", "amount", "currency"],
               "properties": {"amount": {"type": "number", "minimum": 0},
                              "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}}
    assert srv.request("PUT", "/v1/schemas/order.created", {"schema": foreign})[0] == 201
    env = dict(os.environ)
    env.pop("EVENTBUS_URL", None)
    p = subprocess.run(["bash", SCRIPT, f"http://127.0.0.1:{srv.port}"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "incompatible_schema" in p.stderr and "fresh data directory" in p.stderr, p.stderr
    assert "== 2." not in p.stdout, p.stdout


if __name__ == "__main__":
    run_tests(globals())
