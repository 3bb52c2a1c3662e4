#!/usr/bin/env python3
"""Push delivery (webhooks, issue 21) against a real eventbusd and real
receivers on loopback started by the test: the Node receiver of
examples/push-receiver (signatures verified by the official Standard
Webhooks library from npm) for 10,000 events, and small Python receivers
that fail, stall, throttle or die on cue (each verifying the signature
itself, HMAC-SHA256 as the spec says).

The daemon runs with --push-allow-private (the receivers are on
127.0.0.1) except in the SSRF guard's test. Each test gets its own server
(harness.py). Run directly or through meson (suite 'integration').
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time

from harness import ROOT, Server, run_tests
from test_groups import group_info

SECRET = "whsec_" + base64.b64encode(b"eventbus push test secret 32 by").decode()
SECRET2 = "whsec_" + base64.b64encode(b"the rotated-in secret, 32 bytes!").decode()
RECEIVER = os.path.join(ROOT, "examples", "push-receiver")
ALLOW = ["--push-allow-private"]


# --- receivers ---------------------------------------------------------------------------

def verify(secret, headers, body):
    """The Standard Webhooks check: one of the space-separated v1 signatures
    is the HMAC-SHA256 of "id.timestamp.body" under the secret's key."""
    key = base64.b64decode(secret[len("whsec_"):])
    msg = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    want = base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    sigs = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ")]
    return any(hmac.compare_digest(want, s) for s in sigs), len(sigs)


class Receiver:
    """A threaded HTTP/1.1 receiver on a free loopback port. `behave(n,
    body, headers)` gives (status, extra headers, body) for the n-th POST
    (from 1); it may sleep."""

    def __init__(self, behave=None, port=0, secret=SECRET, tls=None):
        self.posts = []  # (time, headers, body, signature ok, signatures)
        self.lock = threading.Lock()
        self.behave = behave or (lambda n, b, h: (204, {}, b""))
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                ok, nsig = verify(secret, hdrs, body)
                with rec.lock:
                    rec.posts.append((time.time(), hdrs, body, ok, nsig))
                    n = len(rec.posts)
                status, extra, out = rec.behave(n, body, hdrs)
                try:
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    if not callable(out):
                        self.send_header("content-length", str(len(out)))
                    self.end_headers()
                    out(self.wfile) if callable(out) else self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def log_message(self, *a):
                pass

        class S(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a peer that went away (the SIGKILL, the cut answer)

        self.srv = S(("127.0.0.1", port), H)
        self.srv.daemon_threads = True
        if tls:  # (cert, key): HTTPS
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook", host="127.0.0.1"):
        return f"{self.scheme}://{host}:{self.port}{path}"

    def events(self):
        """Every event POSTed (a batch counts each), in order."""
        out = []
        with self.lock:
            for _, _, body, _, _ in self.posts:
                v = json.loads(body)
                out += v if isinstance(v, list) else [v]
        return out

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def push_group(srv, name, url, expect=(200, 201), secret=SECRET, **cfg):
    cfg.setdefault("types", ["order.created"])
    push = {"url": url, "secret": secret}
    push.update(cfg.pop("push", {}))
    cfg["push"] = push
    st, _, body = srv.request("PUT", f"/v1/groups/{name}", cfg)
    assert st in expect, (st, body)
    return body


def publish_many(srv, n, start=0, key=None):
    ids = []
    for a in range(start, start + n, 1000):
        evs = [{"type": "order.created", "data": {"i": i}} for i in range(a, min(a + 1000, start + n))]
        if key:
            for e in evs:
                e["key"] = key(e["data"]["i"])
        st, _, body = srv.request("POST", "/v1/events/batch", evs)
        assert st == 201, (st, body)
        ids += [r["id"] for r in body["results"]]
    return ids


def wait_for(cond, timeout=60, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def settled(srv, group):
    g = group_info(srv, group)
    return g["lag"] == 0 and g["in_flight"] == 0 and g["push"]["in_flight"] == 0


# --- the Node receiver: 10,000 events verified by the official library -------------------

def node_receiver(secret=SECRET, extra=()):
    assert shutil.which("node"), "node is needed (scripts/deps.sh says which)"
    if not os.path.isdir(os.path.join(RECEIVER, "node_modules", "standardwebhooks")):
        raise AssertionError("examples/push-receiver has no node_modules: scripts/deps.sh runs "
                             "npm ci there")
    p = subprocess.Popen(["node", "receiver.mjs", "--secret", secret, "--port", "0", *extra],
                         cwd=RECEIVER, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = p.stdout.readline()
    assert line.startswith("listening on "), line
    return p, int(line.split()[2])


STATS_GETS = {}  # port -> GET /stats made (each on a connection of its own)


def node_stats(port, ids=False, ca=None):
    import http.client
    STATS_GETS[port] = STATS_GETS.get(port, 0) + 1
    if ca:
        import ssl
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                        context=ssl.create_default_context(cafile=ca))
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/stats?ids=1" if ids else "/stats")
    out = json.loads(c.getresponse().read())
    c.close()
    return out


def test_10k_events_verified_by_standardwebhooks_each_acked_once(srv):
    srv.restart(ALLOW)
    proc, port = node_receiver()
    try:
        push_group(srv, "hooks", f"http://127.0.0.1:{port}/orders", start="earliest",
                   push={"max_in_flight": 100})
        ids = publish_many(srv, 10000)
        wait_for(lambda: node_stats(port)["unique"] >= 10000, 300, "10,000 events at the receiver")
        wait_for(lambda: settled(srv, "hooks"), 60, "the group settled")
        st = node_stats(port, ids=True)
        assert st["bad_signatures"] == 0, (st, g["push"], g["counters"])
        assert set(st["ids"]) == set(ids), "the receiver has exactly the published events"
        g = group_info(srv, "hooks")
        assert g["counters"]["acked"] == 10000, g["counters"]  # each event acked once
        assert g["dead_letters"] == 0 and g["lag"] == 0, g
        # cleartext: HTTP/1.1 (libcurl speaks HTTP/2 only where TLS's ALPN offers it)
        assert st["http1"] == st["received"] and st["http2"] == 0, st
        # kept alive: at most one connection per POST in flight, not one per POST
        conns = st["connections"] - STATS_GETS[port]
        assert conns <= 100, (conns, st)
        print(f"    10,000 events: {st['received']} POSTs, {st['duplicates']} duplicates "
              f"(at-least-once), 0 bad signatures, {conns} connections")
    finally:
        proc.terminate()
        proc.wait(10)


def test_http2_over_tls_multiplexed_and_verified(srv):
    """A real HTTP/2 receiver: Node's http2.createSecureServer({allowHTTP1:
    true}) with a certificate made here, trusted through --push-ca-file.
    libcurl picks HTTP/2 by ALPN; with max_in_flight 100 the POSTs are
    concurrent streams of one connection.

    libcurl 7.88 (Debian 12) ends each finished stream with RST_STREAM, and
    Node's nghttp2 (>= 1.57, the rapid-reset guard) answers about 1,000 of
    them with GOAWAY: so the first 500 events check the one connection, and
    1,500 more check that delivery goes on over new connections with every
    event acked once (POSTs past the GOAWAY's last stream are sent again:
    at-least-once, the duplicates are counted)."""
    from test_tls import make_ca, make_cert
    ca = make_ca(srv.dir, "h2ca")
    cert, key = make_cert(srv.dir, "h2ca", "h2recv", "localhost")
    srv.restart(ALLOW + ["--push-ca-file", ca])
    # each answer held 50 ms: POSTs overlap, so multiplexing shows
    proc, port = node_receiver(extra=["--cert", cert, "--key", key, "--hold-ms", "50"])
    try:
        push_group(srv, "h2", f"https://127.0.0.1:{port}/orders", start="earliest",
                   push={"max_in_flight": 100})
        ids = []
        for n in (500, 1500):
            ids += publish_many(srv, n, start=len(ids))
            wait_for(lambda: node_stats(port, ca=ca)["unique"] >= len(ids), 120,
                     f"{len(ids)} events over HTTP/2")
            wait_for(lambda: settled(srv, "h2"), 60, "the group settled")
            st = node_stats(port, ca=ca)
            if n == 500:  # one connection, many streams at once on it (up to 100)
                assert st["h2_connections"] == 1 and st["received"] == 500, st
                assert st["most_at_once"] >= 20, st
                first = st
        assert set(node_stats(port, ids=True, ca=ca)["ids"]) == set(ids), \
            "the receiver has exactly the published events"
        g = group_info(srv, "h2")
        assert st["bad_signatures"] == 0, (st, g["push"], g["counters"])
        # every POST arrived as HTTP/2 (our /stats GETs are HTTP/1.1 and not counted)
        assert st["http2"] == st["received"] and st["http1"] == 0, st
        # each event acked once, and eventbusd saw one 2xx per event
        assert g["counters"]["acked"] == len(ids) and g["dead_letters"] == 0, g["counters"]
        assert g["push"]["posts"]["ok"] == len(ids), g["push"]
        print(f"    HTTP/2: 500 events in 500 POSTs on 1 connection, up to "
              f"{first['most_at_once']} streams at once; 2,000 events: {st['received']} POSTs "
              f"({st['duplicates']} sent again after a GOAWAY) on {st['h2_connections']} "
              f"connections")
    finally:
        proc.terminate()
        proc.wait(10)


def test_example_receiver_refuses_a_bad_signature_and_the_event_is_retried(srv):
    srv.restart(ALLOW)
    proc, port = node_receiver(secret=SECRET2)  # not the group's secret
    try:
        push_group(srv, "wrong", f"http://127.0.0.1:{port}/x", max_attempts=2,
                   backoff={"initial_ms": 50, "max_ms": 50, "multiplier": 1, "jitter": 0})
        publish_many(srv, 1)
        wait_for(lambda: group_info(srv, "wrong")["dead_letters"] == 1, 30, "the dead letter")
        st = node_stats(port)
        assert st["bad_signatures"] == 2 and st["unique"] == 0, st
        st_, _, body = srv.request("GET", "/v1/groups/wrong/dlq")
        assert body["dead_letters"][0]["error"].startswith("HTTP 401: signature"), body
    finally:
        proc.terminate()
        proc.wait(10)


# --- failures, timeouts, circuit, Retry-After --------------------------------------------

def test_receiver_failing_n_times_then_succeeding(srv):
    srv.restart(ALLOW)
    r = Receiver(lambda n, b, h: (500, {}, b"database is down " * 40) if n <= 3 else (204, {}, b""))
    try:
        push_group(srv, "flaky", r.url(), max_attempts=5,
                   backoff={"initial_ms": 50, "max_ms": 200, "multiplier": 2, "jitter": 0})
        publish_many(srv, 1)
        wait_for(lambda: settled(srv, "flaky"), 30, "delivery")
        g = group_info(srv, "flaky")
        assert g["counters"]["acked"] == 1 and g["counters"]["nacked"] == 3, g["counters"]
        assert g["push"]["posts"]["http_error"] == 3 and g["push"]["posts"]["ok"] == 1, g["push"]
        # the nack's error: status and a bounded excerpt of the body
        err = g["push"]["last_error"]
        assert err.startswith("HTTP 500: database is down"), err
        assert len(err) <= len("HTTP 500: ") + 256, len(err)
        assert [p[1]["eventbus-attempt"] for p in r.posts] == ["1", "2", "3", "4"]
        assert len({p[1]["webhook-id"] for p in r.posts}) == 1  # stable across attempts
        assert all(p[3] for p in r.posts), "every POST signed"
        assert g["push"]["circuit"] == "closed"
    finally:
        r.close()


def test_slow_receiver_times_out_and_dead_letters(srv):
    srv.restart(ALLOW)
    r = Receiver(lambda n, b, h: (time.sleep(2), (204, {}, b""))[1])
    try:
        push_group(srv, "slow", r.url(), max_attempts=2, push={"timeout_ms": 300},
                   backoff={"initial_ms": 50, "max_ms": 50, "multiplier": 1, "jitter": 0})
        publish_many(srv, 1)
        wait_for(lambda: group_info(srv, "slow")["dead_letters"] == 1, 30, "the dead letter")
        g = group_info(srv, "slow")
        assert g["push"]["posts"]["timeout"] == 2, g["push"]
        st, _, body = srv.request("GET", "/v1/groups/slow/dlq")
        dl = body["dead_letters"][0]
        assert dl["error"] == "timeout after 300 ms", dl
        assert dl["attempts"] == 2
    finally:
        r.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_dead_endpoint_opens_the_circuit_probes_and_closes_when_it_returns(srv):
    srv.restart(ALLOW)
    port = free_port()  # nobody listens: connection refused
    push_group(srv, "dead", f"http://127.0.0.1:{port}/hook", max_attempts=1000,
               backoff={"initial_ms": 10, "max_ms": 10, "multiplier": 1, "jitter": 0},
               push={"circuit_failures": 3})
    publish_many(srv, 20)
    wait_for(lambda: group_info(srv, "dead")["push"]["circuit"] != "closed", 20,
             "the circuit to open")
    time.sleep(0.3)  # the POSTs in flight when it opened end
    g = group_info(srv, "dead")
    assert g["push"]["circuit_opened"] == 1 and g["push"]["next_probe_at"], g["push"]
    assert g["push"]["in_flight"] == 0, g["push"]
    fails = g["push"]["posts"]["connection_error"]
    assert fails >= 3, g["push"]
    # open: no hammering. Over ~2.5 s (first probe after 1 s, then 2 s) at
    # most a couple of probes go out, against 20 events ready.
    time.sleep(2.5)
    g = group_info(srv, "dead")
    probes = g["push"]["posts"]["connection_error"] - fails
    assert 1 <= probes <= 3, (probes, g["push"])
    assert g["lag"] == 20, g  # events wait: the lag shows it
    st, _, ov = srv.request("GET", "/v1/overview")  # the dashboard's overview shows it too
    assert st == 200 and ov["groups"][0]["circuit"] in ("open", "half_open"), ov
    st, _, m = srv.request("GET", "/metrics")
    assert 'eventbus_push_circuit_state{group="dead"} ' in m, "the circuit gauge"
    assert f'eventbus_push_deliveries_total{{group="dead",outcome="connection_error"}} ' in m
    # the endpoint comes back: the next probe succeeds, the circuit closes
    r = Receiver(port=port)
    try:
        wait_for(lambda: settled(srv, "dead"), 30, "delivery after the endpoint returned")
        g = group_info(srv, "dead")
        assert g["push"]["circuit"] == "closed" and g["push"]["consecutive_failures"] == 0
        st, _, ov = srv.request("GET", "/v1/overview")
        assert ov["groups"][0]["circuit"] == "closed", ov
        assert len({e["id"] for e in r.events()}) == 20
        assert g["counters"]["acked"] == 20
    finally:
        r.close()


def test_429_with_retry_after_holds_the_endpoint(srv):
    srv.restart(ALLOW)
    r = Receiver(lambda n, b, h: (429, {"Retry-After": "2"}, b"slow down") if n == 1
                 else (204, {}, b""))
    try:
        push_group(srv, "throttled", r.url(), max_attempts=5,
                   backoff={"initial_ms": 10, "max_ms": 10, "multiplier": 1, "jitter": 0})
        publish_many(srv, 1)
        g = wait_for(lambda: (lambda g: g if g["push"]["posts"]["throttled"] else None)(
            group_info(srv, "throttled")), 20, "the 429")
        assert g["push"]["retry_after_until"], g["push"]  # held, shown
        wait_for(lambda: settled(srv, "throttled"), 20, "the retry")
        t1, t2 = r.posts[0][0], r.posts[1][0]
        # the retry waited Retry-After (2 s), not the 10 ms backoff
        assert t2 - t1 >= 1.8, t2 - t1
        assert len(r.posts) == 2
    finally:
        r.close()


def test_retry_after_http_date_on_429_and_503(srv):
    """Retry-After as an HTTP-date a few seconds ahead, on 429 and on 503:
    the retry waits until that date (not the group's 10 ms backoff) and
    not much longer."""
    from email.utils import formatdate
    srv.restart(ALLOW)
    dates = {}

    def throttle(status):
        def behave(n, b, h):
            if n > 1:
                return 204, {}, b""
            at = int(time.time()) + 3  # a date has whole seconds: 2 to 3 s ahead
            dates[status] = at
            return status, {"Retry-After": formatdate(at, usegmt=True)}, b"later"
        return behave

    rs = {st: Receiver(throttle(st)) for st in (429, 503)}
    try:
        for st, r in rs.items():
            push_group(srv, f"t{st}", r.url(), max_attempts=5,
                       backoff={"initial_ms": 10, "max_ms": 10, "multiplier": 1, "jitter": 0})
        publish_many(srv, 1)
        for st, r in rs.items():
            g = wait_for(lambda: (lambda g: g if g["push"]["posts"]["throttled"] else None)(
                group_info(srv, f"t{st}")), 20, f"the {st}")
            assert g["push"]["retry_after_until"], g["push"]  # held until the date, shown
        for st, r in rs.items():
            wait_for(lambda: settled(srv, f"t{st}"), 20, f"the retry after the {st}")
            assert len(r.posts) == 2, (st, len(r.posts))
            retried = r.posts[1][0]
            # not before the date (the 10 ms backoff would be), and soon after it
            # (the hold's timer, a pull and a POST: 2 s of room for a loaded machine)
            assert dates[st] - 0.05 <= retried <= dates[st] + 2.0, (st, retried - dates[st])
            g = group_info(srv, f"t{st}")
            assert g["counters"]["acked"] == 1 and g["push"]["posts"]["throttled"] == 1, g
    finally:
        for r in rs.values():
            r.close()


def test_retry_after_in_the_past_retries_soon_and_garbage_uses_the_backoff(srv):
    """A date in the past means "now": the retry comes at once, not after
    the group's 3 s backoff. A value that is neither delta-seconds nor a
    date is ignored: the group's backoff (1.5 s here) applies."""
    from email.utils import formatdate
    srv.restart(ALLOW)
    past = Receiver(lambda n, b, h: (503, {"Retry-After": formatdate(time.time() - 3600,
                                                                      usegmt=True)}, b"")
                    if n == 1 else (204, {}, b""))
    junk = Receiver(lambda n, b, h: (429, {"Retry-After": "soon, maybe"}, b"")
                    if n == 1 else (204, {}, b""))
    try:
        push_group(srv, "past", past.url(), max_attempts=5,
                   backoff={"initial_ms": 3000, "max_ms": 3000, "multiplier": 1, "jitter": 0})
        push_group(srv, "junk", junk.url(), max_attempts=5,
                   backoff={"initial_ms": 1500, "max_ms": 1500, "multiplier": 1, "jitter": 0})
        publish_many(srv, 1)
        wait_for(lambda: settled(srv, "past") and settled(srv, "junk"), 20, "the retries")
        gap = past.posts[1][0] - past.posts[0][0]
        assert gap < 1.0, gap  # soon: not the 3 s backoff
        gap = junk.posts[1][0] - junk.posts[0][0]
        assert 1.4 <= gap < 3.0, gap  # the group's 1.5 s backoff
        for name in ("past", "junk"):
            g = group_info(srv, name)
            assert g["counters"]["acked"] == 1 and g["push"]["posts"]["throttled"] == 1, g
    finally:
        past.close()
        junk.close()


# --- crash, SSRF, pulls, secrets, bounds --------------------------------------------------

def test_sigkill_mid_push_loses_nothing(srv):
    # small meta snapshots: the restart reads the push secret back from one
    srv.restart(ALLOW + ["--meta-snapshot-bytes", "4096"])
    r = Receiver(lambda n, b, h: (time.sleep(0.002), (204, {}, b""))[1])
    try:
        push_group(srv, "crash", r.url(), start="earliest", push={"max_in_flight": 20},
                   ack_timeout_ms=2000)
        ids = publish_many(srv, 3000)
        wait_for(lambda: len(r.posts) >= 500, 60, "pushing under way")
        srv.kill9()
        got_before = len(r.posts)
        srv.start(ALLOW + ["--meta-snapshot-bytes", "4096"])
        wait_for(lambda: settled(srv, "crash"), 120, "the rest pushed after the restart")
        assert all(p[3] for p in r.posts), "every POST signed with the secret, after too"
        seen = [e["id"] for e in r.events()]
        assert set(seen) == set(ids), f"missing {len(set(ids) - set(seen))}"
        g = group_info(srv, "crash")
        assert g["lag"] == 0 and g["dead_letters"] == 0, g
        print(f"    SIGKILL after {got_before} POSTs: {len(seen) - len(set(seen))} duplicates, "
              f"none lost")
    finally:
        r.close()


def test_ssrf_guard_refuses_loopback_without_the_flag(srv):
    r = Receiver()
    try:
        for i, url in enumerate([r.url(), f"http://localhost:{r.port}/h",
                                 f"http://[::ffff:127.0.0.1]:{r.port}/h"]):
            push_group(srv, f"ssrf{i}", url, max_attempts=1)
        publish_many(srv, 1)
        for i in range(3):
            wait_for(lambda: group_info(srv, f"ssrf{i}")["dead_letters"] == 1, 20, "refusal")
            g = group_info(srv, f"ssrf{i}")
            assert g["push"]["posts"]["refused"] == 1, g["push"]
            assert "--push-allow-private" in g["push"]["last_error"], g["push"]
        assert r.posts == [], "nothing reached the receiver"
    finally:
        r.close()


def test_pull_on_a_pushed_group_is_409(srv):
    push_group(srv, "p", "https://hooks.example.com/x")
    st, _, body = srv.request("POST", "/v1/groups/p/pull", {"consumer": "c"})
    assert st == 409 and body["error"]["code"] == "push_group", (st, body)
    # "push": null makes it a pulled group again
    st, _, body = srv.request("PATCH", "/v1/groups/p", {"push": None})
    assert st == 200 and "push" not in body["config"], body
    st, _, body = srv.request("POST", "/v1/groups/p/pull", {"consumer": "c"})
    assert st == 200, (st, body)


def test_secret_never_in_an_answer_and_rotation_signs_with_both(srv):
    srv.restart(ALLOW)
    r = Receiver(secret=SECRET2)
    try:
        answers = [push_group(srv, "sec", r.url())]
        assert answers[0]["config"]["push"]["secret"] == "whsec_\u2026" + SECRET[-4:]
        # a PUT of what GET shows (the masked secret) keeps it
        st, _, g = srv.request("GET", "/v1/groups/sec")
        cfg = g["config"]
        st, _, body = srv.request("PUT", "/v1/groups/sec", cfg)
        assert st == 200, body
        answers.append(body)
        # a masked text that is not this group's: refused, naming the field
        bad = dict(cfg, push=dict(cfg["push"], secret="whsec_\u2026zzzz"))
        st, _, body = srv.request("PUT", "/v1/groups/sec", bad)
        assert st == 400 and body["error"]["details"][0]["field"] == "/push/secret", body
        # rotate: the new secret signs, and the old one too for the grace period
        st, _, body = srv.request("PATCH", "/v1/groups/sec", {"push": {"secret": SECRET2}})
        assert st == 200, body
        answers.append(body)
        assert body["config"]["push"]["previous_secret"] == "whsec_\u2026" + SECRET[-4:], body
        publish_many(srv, 1)
        wait_for(lambda: settled(srv, "sec"), 20, "delivery")
        _, hdrs, payload, ok, nsig = r.posts[0]
        assert ok and nsig == 2, hdrs["webhook-signature"]
        assert verify(SECRET, hdrs, payload)[0], "the previous secret signs too"
        # the secret survives a restart (the meta record keeps it) and stays hidden
        srv.restart(ALLOW)
        for path in ["/v1/groups/sec", "/v1/groups", "/v1/stats", "/metrics", "/v1/overview"]:
            answers.append(srv.request("GET", path)[2])
        publish_many(srv, 1, start=1)
        wait_for(lambda: len(r.posts) == 2, 20, "delivery after the restart")
        assert r.posts[1][3] and r.posts[1][4] == 2
        text = json.dumps(answers)
        for s in (SECRET, SECRET2):
            assert s not in text and s[6:] not in text, "a secret in an answer"
        log = srv.log_tail(10000)
        assert SECRET2[6:] not in log and SECRET[6:] not in log, "a secret in the log"
    finally:
        r.close()


def test_huge_answer_is_read_only_to_the_bound(srv):
    srv.restart(ALLOW)
    sent = {"bytes": 0}
    total = 64 << 20

    def stream(w):
        chunk = b"x" * 65536
        try:
            for _ in range(total // len(chunk)):
                w.write(chunk)
                sent["bytes"] += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    r = Receiver(lambda n, b, h: (200, {"content-length": str(total)}, stream))
    try:
        push_group(srv, "big", r.url())
        publish_many(srv, 1)
        wait_for(lambda: settled(srv, "big"), 30, "the ack")
        g = group_info(srv, "big")
        assert g["counters"]["acked"] == 1, g  # a 2xx status stands
        time.sleep(0.5)
        # the daemon stopped reading at 4 KiB and closed: the receiver could
        # write at most what the socket buffers hold, far from 64 MiB
        assert sent["bytes"] < total // 8, sent
    finally:
        r.close()


def test_config_errors_name_the_field(srv):
    cases = [
        ({"url": "ftp://x/y", "secret": SECRET}, "/push/url"),
        ({"url": "http://"}, "/push/url"),
        ({"secret": SECRET}, "/push/url"),
        ({"url": "https://a.example/h", "secret": "whsec_short"}, "/push/secret"),
        ({"url": "https://a.example/h", "secret": "nope"}, "/push/secret"),
        ({"url": "https://a.example/h"}, "/push/secret"),
        ({"url": "https://a.example/h", "secret": SECRET, "headers": {"webhook-id": "x"}},
         "/push/headers/webhook-id"),
        ({"url": "https://a.example/h", "secret": SECRET, "headers": {"X-A": "a\r\nb: c"}},
         "/push/headers/X-A"),
        ({"url": "https://a.example/h", "secret": SECRET, "batch": 0}, "/push/batch"),
        ({"url": "https://a.example/h", "secret": SECRET, "format": "xml"}, "/push/format"),
        ({"url": "https://a.example/h", "secret": SECRET, "timeout_ms": 10}, "/push/timeout_ms"),
        ({"url": "https://a.example/h", "secret": SECRET, "colour": 1}, "/push/colour"),
    ]
    for push, field in cases:
        st, _, body = srv.request("PUT", "/v1/groups/bad", {"types": ["a.b"], "push": push})
        assert st == 400, (push, st, body)
        assert body["error"]["details"][0]["field"] == field, (push, body)
    st, _, body = srv.request("GET", "/v1/groups/bad")
    assert st == 404, "nothing written"


def test_batches_and_cloudevents(srv):
    srv.restart(ALLOW)
    r = Receiver()
    try:
        push_group(srv, "ce", r.url(), start="earliest",
                   push={"batch": 10, "format": "cloudevents", "headers": {"X-Team": "orders"}})
        srv.request("POST", "/v1/groups/ce/pause")
        ids = publish_many(srv, 25)
        srv.request("POST", "/v1/groups/ce/resume")
        wait_for(lambda: settled(srv, "ce"), 20, "delivery")
        evs = r.events()
        assert sorted(e["id"] for e in evs) == sorted(ids)
        assert all(e["specversion"] == "1.0" for e in evs), evs[0]
        _, hdrs, body, ok, _ = r.posts[0]
        assert ok and hdrs["content-type"] == "application/cloudevents-batch+json", hdrs
        assert hdrs["x-team"] == "orders"
        assert all(isinstance(json.loads(p[2]), list) for p in r.posts)
        assert max(len(json.loads(p[2])) for p in r.posts) <= 10
    finally:
        r.close()


def test_tls_verified_against_the_push_ca_file(srv):
    from test_tls import make_ca, make_cert
    ca = make_ca(srv.dir, "pushca")
    cert, key = make_cert(srv.dir, "pushca", "recv", "localhost")
    r = Receiver(tls=(cert, key))
    try:
        # not signed by a CA of the system store: refused, nothing received
        srv.restart(ALLOW)
        push_group(srv, "tls", r.url(host="localhost"), max_attempts=1)
        publish_many(srv, 1)
        wait_for(lambda: group_info(srv, "tls")["dead_letters"] == 1, 20, "the refusal")
        g = group_info(srv, "tls")
        assert g["push"]["posts"]["connection_error"] == 1, g["push"]
        assert "certificate" in g["push"]["last_error"].lower(), g["push"]["last_error"]
        assert r.posts == []
        # with --push-ca-file: verified and delivered (the DLQ entry redriven)
        srv.restart(ALLOW + ["--push-ca-file", ca])
        st, _, body = srv.request("POST", "/v1/groups/tls/dlq/redrive", {})
        assert st == 200, body
        wait_for(lambda: settled(srv, "tls"), 20, "delivery over TLS")
        assert len(r.posts) == 1 and r.posts[0][3]
    finally:
        r.close()


class Concurrency:
    """A behaviour that holds each POST for `hold` seconds and records the
    most POSTs it held at once."""

    def __init__(self, hold):
        self.hold, self.now, self.most = hold, 0, 0
        self.lock = threading.Lock()

    def __call__(self, n, body, headers):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.hold)
        with self.lock:
            self.now -= 1
        return 204, {}, b""


def test_max_in_flight_bounds_the_posts_at_once(srv):
    srv.restart(ALLOW)
    c = Concurrency(0.05)
    r = Receiver(c)
    try:
        push_group(srv, "bounded", r.url(), push={"max_in_flight": 4})
        publish_many(srv, 60)
        wait_for(lambda: settled(srv, "bounded"), 60, "delivery")
        assert len(r.posts) == 60
        assert 2 <= c.most <= 4, c.most  # concurrent, and never past the bound
    finally:
        r.close()


def test_push_max_connections_bounds_the_connections(srv):
    srv.restart(ALLOW + ["--push-max-connections", "2"])
    c = Concurrency(0.05)
    r = Receiver(c)
    try:
        push_group(srv, "conns", r.url(), push={"max_in_flight": 50})
        publish_many(srv, 60)
        wait_for(lambda: settled(srv, "conns"), 60, "delivery")
        assert len(r.posts) == 60
        assert c.most <= 2, c.most  # 50 allowed in flight, 2 connections: queued in libcurl
    finally:
        r.close()


def test_delete_or_unpush_while_posting(srv):
    srv.restart(ALLOW)
    r1, r2 = Receiver(Concurrency(0.1)), Receiver(Concurrency(0.1))
    try:
        push_group(srv, "gone", r1.url(), push={"max_in_flight": 5})
        push_group(srv, "back", r2.url(), push={"max_in_flight": 5})
        ids = publish_many(srv, 40)
        wait_for(lambda: len(r1.posts) >= 10 and len(r2.posts) >= 10, 20, "posting under way")
        assert srv.request("DELETE", "/v1/groups/gone")[0] == 204
        st, _, body = srv.request("PATCH", "/v1/groups/back", {"push": None})
        assert st == 200 and "push" not in body["config"], body
        time.sleep(0.5)  # the POSTs in flight end; nothing new starts
        n1, n2 = len(r1.posts), len(r2.posts)
        time.sleep(0.5)
        assert (len(r1.posts), len(r2.posts)) == (n1, n2), "a POST after delete or unpush"
        assert n1 < 40 and n2 < 40
        # "back" is a pulled group again: what push did not ack is pulled
        pulled = []
        for _ in range(100):
            st, _, body = srv.request("POST", "/v1/groups/back/pull",
                                      {"consumer": "c", "max": 100, "wait_ms": 200})
            assert st == 200, body
            pulled += [e["id"] for e in body["events"]]
            if body["events"]:
                srv.request("POST", "/v1/groups/back/ack",
                            {"ids": [e["delivery"]["id"] for e in body["events"]]})
            if group_info(srv, "back")["lag"] == 0:
                break
        pushed = {e["id"] for e in r2.events()}
        assert pushed | set(pulled) == set(ids), "every event pushed or pulled"
        assert srv.request("GET", "/healthz")[0] == 200
    finally:
        r1.close()
        r2.close()


def test_cli_creates_shows_rotates_and_unpushes(srv):
    from test_cli import run
    srv.restart(ALLOW)
    r = Receiver()
    try:
        rc, out, err = run(srv, "--table", "groups", "create", "cli", "--types", "order.created",
                           "--push", r.url(), "--push-secret", SECRET, "--push-header",
                           "X-Env: test", "--push-timeout", "5s", "--push-batch", "5")
        assert rc == 0, (out, err)
        assert "whsec_\u2026" + SECRET[-4:] in out and SECRET not in out, out
        rc, out, err = run(srv, "groups", "create", "nosecret", "--types", "a.b", "--push",
                           r.url())
        assert rc == 2 and "--push-secret" in err, (rc, err)
        publish_many(srv, 3)
        wait_for(lambda: settled(srv, "cli"), 20, "delivery")
        assert r.posts[0][1]["x-env"] == "test" and r.posts[0][3]
        rc, out, err = run(srv, "--table", "groups", "show", "cli")
        assert rc == 0 and "push circuit:   closed" in out and SECRET[6:] not in out, out
        rc, out, err = run(srv, "top", "--json", "-n", "1")
        assert rc == 0 and json.loads(out.splitlines()[0])["groups"][0]["push_circuit"] == "closed"
        rc, out, err = run(srv, "groups", "update", "cli", "--push-secret", SECRET2)
        assert rc == 0, err
        g = group_info(srv, "cli")["config"]["push"]
        assert g["secret"] == "whsec_\u2026" + SECRET2[-4:] and "previous_secret" in g, g
        assert g["headers"] == {"X-Env": "test"} and g["batch"] == 5, g  # the rest kept
        rc, out, err = run(srv, "groups", "update", "cli", "--no-push")
        assert rc == 0, err
        assert "push" not in group_info(srv, "cli")["config"]
    finally:
        r.close()


if __name__ == "__main__":
    run_tests(globals())
