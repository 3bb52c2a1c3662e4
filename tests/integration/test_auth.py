#!/usr/bin/env python3
"""Authentication and authorization: API tokens with scopes (issue 19).

The scope matrix is generated from the route table in src/api/api.c (each
row names its scope), so a route added there without a row here fails
test_every_route_is_in_the_matrix, and every route is called with a token
that has its scope (2xx) and one that has every other scope (403 naming
the missing one). Also: unknown, malformed, expired and revoked tokens
(401 with WWW-Authenticate), tokens surviving a restart and a meta
snapshot, the per-address backoff, the audit log, and the refusal to
serve a non-loopback address without authentication.

Each test gets its own server (see harness.py); every answer is checked
against docs/openapi.yaml (its 401/403/429 answers and /v1/tokens too).
"""
import json
import os
import re
import subprocess
import time

from harness import DAEMON, PG, ROOT, Server, run_tests

EVENTBUS_LOG = os.environ.get("EVENTBUS_LOG") or os.path.join(ROOT, "bin", "eventbus-log")

AUTH = ["--auth", "token", "--auth-fail-limit", "0"]
ALL = ["admin", "read", "metrics", "schemas:write", "groups:write", "publish:*", "consume:*"]


def route_table():
    """(method, pattern, scope) for each row of the route table in api.c."""
    with open(os.path.join(ROOT, "src", "api", "api.c")) as f:
        text = f.read()
    rows = re.findall(r'\{"([A-Z]+)", "([^"]+)", \w+, (?:NULL|"[^"]*"), EB_SCOPE_(\w+)\}', text)
    assert len(rows) >= 29, rows
    return [(m, p, s.lower().replace("_", ":")) for m, p, s in rows]


def start_with_admin(srv, extra=()):
    path = os.path.join(srv.dir, "admin.token")
    srv.restart(AUTH + ["--admin-token-file", path] + list(extra))
    srv.token = Server.read_token(path)
    return srv.token


def make_token(srv, name, scopes, **kw):
    st, _, body = srv.request("POST", "/v1/tokens", dict(name=name, scopes=scopes, **kw))
    assert st == 201, (st, body)
    assert body["token"].startswith("ebt_") and len(body["token"]) == 47, body
    return body["token"]


def as_token(tok):
    return {"Authorization": "Bearer " + tok}


# What each route is called with: (path, body) for a given fixture. Groups
# are fresh per call ("m.<n>"), so destructive routes cannot spoil others.
def call_for(method, pattern, fx):
    g = fx["group"]
    bodies = {
        ("POST", "/v1/events"): {"type": "t.a", "data": {}},
        ("POST", "/v1/events/batch"): [{"type": "t.a", "data": {}}],
        ("PUT", "/v1/schemas/{type}"): {"schema": {"type": "object"}},
        ("POST", "/v1/schemas/{type}/check"): {"schema": {"type": "object"}},
        ("PUT", "/v1/groups/{group}"): {"types": ["t.*"]},
        ("PATCH", "/v1/groups/{group}"): {"max_attempts": 5},
        ("POST", "/v1/groups/{group}/pull"): {"consumer": "c", "max": 1},
        ("POST", "/v1/groups/{group}/ack"): {"ids": ["nope"]},
        ("POST", "/v1/groups/{group}/nack"): {"ids": ["nope"]},
        ("POST", "/v1/groups/{group}/extend"): {"ids": ["nope"]},
        ("POST", "/v1/groups/{group}/replay"): {"since": {"seq": 0}},
        ("POST", "/v1/groups/{group}/dlq/redrive"): {"ids": ["nope"]},
        ("POST", "/v1/groups/{group}/pause"): None,
        ("POST", "/v1/groups/{group}/resume"): None,
        ("POST", "/v1/tokens"): {"name": "n" + str(fx["n"]), "scopes": ["read"]},
    }
    path = (pattern.replace("{group}", g).replace("{type}", "t.a").replace("{n}", "1")
            .replace("{id}", fx["event"]).replace("{name}", fx["victim"])
            .replace("{file}", "app.js"))
    return path, bodies.get((method, pattern))


def scope_needed(scope, fx):
    return {"publish": "publish:t.a", "consume": "consume:" + fx["group"]}.get(scope, scope)


def test_every_route_is_in_the_matrix(srv):
    for m, p, scope in route_table():
        assert scope in ("open", "token", "publish", "consume", "read", "schemas:write",
                         "groups:write", "metrics", "admin"), (m, p, scope)
        call_for(m, p, {"group": "g", "event": "e", "victim": "v", "n": 0})


def test_contract_names_each_routes_scope(srv):
    """docs/openapi.yaml states the scope of every route as the table does."""
    with open(os.path.join(ROOT, "docs", "openapi.json")) as f:
        doc = json.load(f)
    named = {"publish": "publish:<type pattern>", "consume": "consume:<group pattern>"}
    for m, p, scope in route_table():
        op = doc["paths"][p][m.lower()]
        if scope == "open":
            assert op["security"] == [] and "x-scopes" not in op, (m, p, op.get("security"))
            assert not {"401", "403", "429"} & set(op["responses"]), (m, p)
            continue
        # "token": any valid token, no scope (x-scopes empty, never 403)
        assert op["x-scopes"] == ([] if scope == "token" else [named.get(scope, scope)]), \
            (m, p, op["x-scopes"], scope)
        assert {"bearer": []} in op["security"], (m, p, op["security"])
        assert op["security"] == ([{"bearer": []}, {}] if p == "/metrics" else [{"bearer": []}])
        refusals = (("401", "Unauthorized"), ("403", "Forbidden"), ("429", "AuthBackoff"))
        for code, name in refusals:
            if code == "403" and scope == "token":
                assert "403" not in op["responses"], (m, p)
                continue
            assert op["responses"][code] == {"$ref": "#/components/responses/" + name}, (m, p)
    assert doc["components"]["securitySchemes"]["bearer"] == {
        **doc["components"]["securitySchemes"]["bearer"], "type": "http", "scheme": "bearer"}


def test_scope_matrix(srv):
    start_with_admin(srv)
    admin = srv.token
    st, _, body = srv.request("PUT", "/v1/schemas/t.a", {"schema": {"type": "object"}})
    assert st == 201, body
    st, _, body = srv.request("POST", "/v1/events", {"type": "t.a", "data": {}})
    assert st == 201, body
    event = body["id"]
    every = [s for s in ALL if s not in ("publish:*", "consume:*")]
    for i, (m, p, scope) in enumerate(route_table()):
        fx = {"group": f"m.{i}", "event": event, "victim": f"v{i}", "n": i}
        srv.token = admin
        if "{group}" in p and not (m == "PUT" and p == "/v1/groups/{group}"):
            st, _, body = srv.request("PUT", f"/v1/groups/{fx['group']}",
                                      {"types": ["t.*"], "start": "earliest"})
            assert st == 201, body
        make_token(srv, fx["victim"], ["read"])
        need = scope_needed(scope, fx)
        other = [s for s in every if s != need] + ["publish:other.*", "consume:other.*"]
        with_tok = make_token(srv, f"with{i}", [need] if scope not in ("open", "token")
                              else ["read"])
        without = make_token(srv, f"without{i}", other)
        path, body = call_for(m, p, fx)
        metrics_only = make_token(srv, f"metrics{i}", ["metrics"]) if scope == "token" else None
        srv.token = None
        if scope == "open":
            st, _, js = srv.request(m, path, body)
            assert st in (200, 308), (m, p, st, js)  # /ui redirects to /ui/, without a token
            continue
        st, hdr, js = srv.request(m, path, body)
        assert st == 401 and hdr.get("www-authenticate", "").startswith("Bearer"), (m, p, st)
        if scope == "token":  # any valid token will do, whatever its scopes
            for tok in (without, metrics_only):
                st, _, js = srv.request(m, path, body, headers=as_token(tok))
                assert st == 200, (m, p, st, js)
            continue
        st, _, js = srv.request(m, path, body, headers=as_token(without))
        assert st == 403, (m, p, st, js)
        assert js["error"]["code"] == "forbidden" and need in js["error"]["message"], js
        assert js["error"]["details"] == [{"scope": need}], js
        st, _, js = srv.request(m, path, body, headers=as_token(with_tok))
        assert 200 <= st < 300, (m, p, need, st, js)


def test_tokens_self(srv):
    """GET /v1/tokens/self: the caller's own token, for any valid token."""
    st, _, js = srv.request("GET", "/v1/tokens/self")  # the harness's default: --auth none
    assert st == 200 and js == {"auth": "none"}, js
    start_with_admin(srv)
    ro = make_token(srv, "viewer", ["read", "consume:billing.*"], expires_in="2h")
    st, _, js = srv.request("GET", "/v1/tokens/self", headers=as_token(ro))
    assert st == 200, js
    assert js["auth"] == "token" and js["name"] == "viewer" and not js["expired"], js
    assert js["scopes"] == ["read", "consume:billing.*"], js
    assert 7190_000 <= js["expires"] - js["created"] <= 7200_000, js
    assert "token" not in js and "hash" not in js, js
    st, _, js = srv.request("GET", "/v1/tokens/self")  # the admin token
    assert st == 200 and js["name"] == "admin" and js["expires"] is None, js
    assert "admin" in js["scopes"], js
    for hdr in ({"Authorization": None}, {"Authorization": "Bearer ebt_unknown"}):
        st, h, js = srv.request("GET", "/v1/tokens/self", headers=hdr)
        assert st == 401 and h["www-authenticate"].startswith("Bearer"), (hdr, st, js)
    short = make_token(srv, "short", ["metrics"], expires_in="1s")
    assert srv.request("GET", "/v1/tokens/self", headers=as_token(short))[0] == 200
    time.sleep(1.2)
    st, _, js = srv.request("GET", "/v1/tokens/self", headers=as_token(short))
    assert st == 401 and "expired" in js["error"]["message"], js
    srv.request("DELETE", "/v1/tokens/viewer")
    assert srv.request("GET", "/v1/tokens/self", headers=as_token(ro))[0] == 401
    # the route is read-only: another method is 405, not a revocation of "self"
    make_token(srv, "self", ["read"])
    st, h, js = srv.request("POST", "/v1/tokens/self", {})
    assert st == 405 and "GET" in h["allow"], (st, js)


def test_publish_patterns(srv):
    start_with_admin(srv)
    tok = make_token(srv, "orders", ["publish:orders.*"])
    ok = srv.request("POST", "/v1/events/batch",
                     [{"type": "orders.a", "data": {}}, {"type": "orders.b.c", "data": {}}],
                     headers=as_token(tok))
    assert ok[0] == 201, ok
    st, _, js = srv.request("POST", "/v1/events/batch",
                            [{"type": "orders.a", "data": {}}, {"type": "users.a", "data": {}}],
                            headers=as_token(tok))
    assert st == 403 and js["error"]["details"] == [{"scope": "publish:users.a"}], js
    st, _, js = srv.request("GET", "/v1/stats")
    assert js["events"]["head_seq"] == 3, js  # the refused batch wrote nothing


def test_bad_tokens_are_401(srv):
    start_with_admin(srv)
    tok = make_token(srv, "short", ["read"], expires_in="1s")
    st, _, js = srv.request("GET", "/v1/groups", headers=as_token(tok))
    assert st == 200, js
    for hdr in ["Bearer ebt_unknown", "Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "bearer  " +
                srv.token + "x", "Bearer " + "a" * 600]:
        st, h, js = srv.request("GET", "/v1/groups", headers={"Authorization": hdr})
        assert st == 401 and js["error"]["code"] == "unauthorized", (hdr, st, js)
        assert h["www-authenticate"].startswith("Bearer"), h
    # any case and spacing of the scheme is fine
    st, _, _ = srv.request("GET", "/v1/groups", headers={"Authorization": "bEaReR   " + tok})
    assert st == 200
    time.sleep(1.2)
    st, _, js = srv.request("GET", "/v1/groups", headers=as_token(tok))
    assert st == 401 and "expired" in js["error"]["message"], js
    st, _, js = srv.request("GET", "/v1/tokens")
    assert [t["expired"] for t in js["tokens"] if t["name"] == "short"] == [True], js
    # revoked: 401 at once
    tok2 = make_token(srv, "gone", ["read"])
    st, _, _ = srv.request("DELETE", "/v1/tokens/gone")
    assert st == 204
    st, _, js = srv.request("GET", "/v1/groups", headers=as_token(tok2))
    assert st == 401, js
    st, _, js = srv.request("DELETE", "/v1/tokens/gone")
    assert st == 404, js


def test_token_requests_are_checked(srv):
    start_with_admin(srv)
    for body, field in [({"scopes": ["read"]}, "/name"),
                        ({"name": "a b", "scopes": ["read"]}, "/name"),
                        ({"name": "x", "scopes": []}, "/scopes"),
                        ({"name": "x", "scopes": ["write"]}, "/scopes"),
                        ({"name": "x", "scopes": ["publish:a*"]}, "/scopes"),
                        ({"name": "x", "scopes": ["read"] * 33}, "/scopes"),
                        ({"name": "x", "scopes": ["read"], "expires_in": "soon"}, "/expires_in"),
                        ({"name": "x", "scopes": ["read"], "secret": "mine"}, "/secret")]:
        st, _, js = srv.request("POST", "/v1/tokens", body)
        assert st == 400 and js["error"]["details"][0]["field"] == field, (body, js)
    make_token(srv, "x", ["read"])
    st, _, js = srv.request("POST", "/v1/tokens", {"name": "x", "scopes": ["read"]})
    assert st == 409, js
    st, _, js = srv.request("GET", "/v1/tokens")
    names = sorted(t["name"] for t in js["tokens"])
    assert names == ["admin", "x"], js
    assert all("token" not in t and "hash" not in t for t in js["tokens"]), js


def test_tokens_survive_restart_and_snapshot(srv):
    path = os.path.join(srv.dir, "admin.token")
    start_with_admin(srv, ["--meta-snapshot-bytes", "4KiB"])
    keep = make_token(srv, "keep", ["read", "groups:write"])
    gone = make_token(srv, "gone", ["read"])
    srv.request("DELETE", "/v1/tokens/gone")
    # grow the meta log past 4 KiB: a snapshot carries the tokens
    for i in range(60):
        st, _, _ = srv.request("PUT", f"/v1/groups/g{i}", {"types": ["t"]})
        assert st == 201
    time.sleep(1.5)  # snapshots are considered once a second
    srv.request("PUT", "/v1/groups/last", {"types": ["t"]})
    time.sleep(1.2)
    # a snapshot was written after the tokens, and it holds them (kind 64)
    srv.stop()
    if PG:  # the meta rows, each (type, JSON)
        rows = srv.pg_query("SELECT type, convert_from(data, 'UTF8') FROM eb_meta ORDER BY seq")
        recs = [(int(t), p) for t, p in (r.split("|", 1) for r in rows.splitlines())]
    else:
        dump = subprocess.run([EVENTBUS_LOG, "dump", os.path.join(srv.data, "meta"), "--json"],
                              capture_output=True, text=True, timeout=30, check=True).stdout
        recs = [(json.loads(x)["type"], json.loads(x)["payload"]) for x in dump.splitlines()]
    kinds = [t for t, _ in recs]
    snap = len(kinds) - 1 - kinds[::-1].index(42)  # EB_META_SNAP, the last one
    assert sorted(json.loads(p)["name"] for t, p in recs[snap:] if t == 64) == \
        ["admin", "keep"], recs[-20:]
    for restart in range(2):
        srv.restart(AUTH + ["--admin-token-file", path, "--meta-snapshot-bytes", "4KiB"])
        assert srv.token == Server.read_token(path)  # the file is kept, the token works
        st, _, js = srv.request("GET", "/v1/tokens")
        assert st == 200 and sorted(t["name"] for t in js["tokens"]) == ["admin", "keep"], js
        st, _, js = srv.request("GET", "/v1/groups", headers=as_token(keep))
        assert st == 200, js
        st, _, js = srv.request("GET", "/v1/groups", headers=as_token(gone))
        assert st == 401, js
    # the secrets are nowhere in the data directory (or database): only their hashes
    if PG:
        blob = srv.pg_query("SELECT string_agg(encode(data, 'escape'), '') FROM eb_meta") + \
            srv.pg_query("SELECT string_agg(encode(data, 'escape'), '') FROM eb_events")
        assert keep not in blob and srv.token not in blob
    for root, _, files in os.walk(srv.data if not PG else os.devnull + "-none"):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                blob = f.read()
            assert keep.encode() not in blob and srv.token.encode() not in blob, name


def test_admin_token_file(srv):
    path = os.path.join(srv.dir, "admin.token")
    tok = start_with_admin(srv)
    assert os.stat(path).st_mode & 0o777 == 0o600
    deadline = time.time() + 10  # the line follows the file's fsync: under load, later
    while path not in open(srv.log_path).read() and time.time() < deadline:
        time.sleep(0.05)
    log = open(srv.log_path).read()
    assert path in log and tok not in log, log
    # an existing file is left alone (and its token keeps working)
    srv.restart(AUTH + ["--admin-token-file", path])
    assert Server.read_token(path) == tok
    st, _, _ = srv.request("GET", "/v1/tokens", headers=as_token(tok))
    assert st == 200


def test_metrics_scope_and_public(srv):
    start_with_admin(srv)
    st, _, _ = srv.request("GET", "/metrics", headers={"Authorization": None})
    assert st == 401
    st, _, _ = srv.request("GET", "/healthz", headers={"Authorization": None})
    assert st == 200
    srv.restart(AUTH + ["--metrics-public"])
    st, _, text = srv.request("GET", "/metrics", headers={"Authorization": None})
    assert st == 200 and "eventbus_auth_failures_total" in text, text


def test_backoff_after_repeated_401(srv):
    path = os.path.join(srv.dir, "admin.token")
    srv.restart(["--auth", "token", "--auth-fail-limit", "5", "--admin-token-file", path,
                 "--metrics-public"])
    srv.token = Server.read_token(path)
    bad = {"Authorization": "Bearer ebt_wrong"}
    for _ in range(5):
        st, _, _ = srv.request("GET", "/v1/groups", headers=bad)
        assert st == 401
    # now refused before any token is looked at, the good one too
    st, h, js = srv.request("GET", "/v1/groups", headers=bad)
    assert st == 429 and js["error"]["code"] == "auth_backoff" and h["retry-after"] == "1", js
    st, _, _ = srv.request("GET", "/v1/groups")
    assert st == 429
    st, _, text = srv.request("GET", "/metrics")
    assert "eventbus_auth_failures_total 5\n" in text, text
    assert "eventbus_auth_backoff_total 2\n" in text, text
    time.sleep(1.1)
    st, _, _ = srv.request("GET", "/v1/groups")
    assert st == 200  # the wait is over; a success forgets the failures
    for _ in range(4):
        assert srv.request("GET", "/v1/groups", headers=bad)[0] == 401
    assert srv.request("GET", "/v1/groups")[0] == 200


def test_audit_log_of_writes(srv):
    start_with_admin(srv, ["--log-format", "json"])
    tok = make_token(srv, "ops", ["groups:write", "read"])
    srv.request("PUT", "/v1/groups/g", {"types": ["t"]}, headers=as_token(tok))
    srv.request("PUT", "/v1/schemas/t", {"schema": {}}, headers=as_token(tok))
    srv.request("GET", "/v1/groups", headers=as_token(tok))  # a read: not audited
    time.sleep(0.1)
    lines = [json.loads(x) for x in open(srv.log_path) if x.startswith("{")]
    audit = [x["msg"] for x in lines if x["msg"].startswith("audit:")]
    assert 'audit: token=admin route="POST /v1/tokens" status=201 outcome=ok' in audit, audit
    assert 'audit: token=ops route="PUT /v1/groups/g" status=201 outcome=ok' in audit, audit
    assert 'audit: token=ops route="PUT /v1/schemas/t" status=403 outcome=refused' in audit, audit
    assert not any("GET" in a for a in audit), audit


CLI = os.environ.get("EVENTBUS_CLI") or os.path.join(ROOT, "bin", "eventbus")


def cli(srv, *args, token=None, env_token=None):
    env = {k: v for k, v in os.environ.items() if k != "EVENTBUS_TOKEN"}
    if env_token:
        env["EVENTBUS_TOKEN"] = env_token
    argv = [CLI, "--url", f"127.0.0.1:{srv.port}", "--json"] + (["--token", token] if token
                                                                  else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)


def test_cli_tokens_and_token_options(srv):
    admin = start_with_admin(srv)
    p = cli(srv, "stats")
    assert p.returncode == 1 and "unauthorized" in p.stderr, p.stderr
    p = cli(srv, "tokens", "create", "pub", "--scopes", "publish:orders.*,read",
            "--expires-in", "30d", env_token=admin)
    assert p.returncode == 0, p.stderr
    made = json.loads(p.stdout)
    assert made["scopes"] == ["publish:orders.*", "read"] and made["expires"], made
    pub = made["token"]
    p = cli(srv, "publish", "orders.created", "{}", token=pub)
    assert p.returncode == 0, p.stderr
    p = cli(srv, "publish", "users.created", "{}", token=pub)
    assert p.returncode == 1 and "forbidden" in p.stderr and "publish:users.created" in p.stderr
    p = cli(srv, "tokens", "list", token=pub)
    assert p.returncode == 1 and "admin" in p.stderr, p.stderr
    p = cli(srv, "tokens", "self", token=pub)  # no scope needed
    assert p.returncode == 0, p.stderr
    me = json.loads(p.stdout)
    assert me["auth"] == "token" and me["name"] == "pub" and me["expires"], me
    p = cli(srv, "tokens", "list", token=admin)
    assert sorted(t["name"] for t in json.loads(p.stdout)["tokens"]) == ["admin", "pub"]
    p = cli(srv, "tokens", "revoke", "pub", token=admin)
    assert p.returncode == 0, p.stderr
    p = cli(srv, "stats", token=pub)
    assert p.returncode == 1 and "unauthorized" in p.stderr, p.stderr
    p = cli(srv, "stats", token="not a token")
    assert p.returncode == 2 and "--token" in p.stderr, p.stderr
    p = cli(srv, "tokens", "create", "x", token=admin)
    assert p.returncode == 2 and "--scopes" in p.stderr, p.stderr


def test_open_network_without_auth_is_refused(srv):
    srv.stop()
    base = [DAEMON, "--data", srv.data]
    for extra in (["--listen", "0.0.0.0:0", "--auth", "none"],
                  ["--listen", "[::]:0", "--auth", "none"]):
        p = subprocess.run(base + extra, capture_output=True, text=True, timeout=20)
        assert p.returncode == 2 and "refusing to serve" in p.stderr, (extra, p.stderr)
    # 0.0.0.0 with the default mode: token auth
    st, _ = status_on_any_address(srv, base, [], "/v1/groups")
    assert st == 401
    # --insecure: runs open, and says so
    st, err = status_on_any_address(srv, base, ["--auth", "none", "--insecure"], "/v1/groups")
    assert st == 200
    assert "WITHOUT authentication" in err, err


def status_on_any_address(srv, base, extra, path):
    """Runs eventbusd on 0.0.0.0 with extra flags; the status of GET path
    (once it answers) and what it logged."""
    proc = subprocess.Popen(base + ["--listen", f"0.0.0.0:{srv.port}"] + extra,
                            stderr=subprocess.PIPE, text=True)
    st = None
    try:
        for _ in range(500):
            try:
                st, _, _ = srv.request("GET", path, timeout=1)
                break
            except OSError:
                time.sleep(0.02)
    finally:
        proc.terminate()
        err = proc.communicate(timeout=20)[1]
    return st, err

if __name__ == "__main__":
    run_tests(globals())
