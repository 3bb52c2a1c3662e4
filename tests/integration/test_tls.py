#!/usr/bin/env python3
"""TLS (issue 19): eventbusd --tls-listen beside the plain --listen, tried
with curl --cacert, openssl s_client (TLS 1.1 refused, 1.2 and 1.3
accepted), a wrong CA, mutual TLS (a certificate required, its CN naming
the token whose scopes apply), a SIGHUP reload of certificate and key with
connections open, a handshake that never blocks the loop, and large and
pipelined requests through the records.

Certificates are made at test time with `openssl req` into the server's
temporary directory. Each test gets its own server (see harness.py); the
contract check runs on the plain answers only (TLS ones go through the
helpers below).
"""
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time

from harness import Server, free_port, run_tests


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True,
                   timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj",
            f"/CN={name}", cwd=d)
    return os.path.join(d, f"{name}.pem")


def make_cert(d, ca, name, cn, server=True):
    """A certificate for cn signed by ca; returns (cert path, key path)."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n" if server else
                "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext, cwd=d)
    return os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.key")


def tls_server(srv, client_ca=None, extra=()):
    """Starts srv with --tls-listen on a free port; returns its port and the CA."""
    d = srv.dir
    ca = make_ca(d, "ca")
    cert, key = make_cert(d, "ca", "srv", "localhost")
    srv.tls_port = free_port()
    args = ["--tls-listen", f"127.0.0.1:{srv.tls_port}", "--tls-cert", cert, "--tls-key", key]
    if client_ca:
        args += ["--tls-client-ca", client_ca]
    srv.restart(args + list(extra))
    return srv.tls_port, ca


def https(port, ca, method="GET", path="/healthz", body=None, cert=None, headers=None,
          conn=None):
    """One request over TLS; returns (status, parsed body, connection)."""
    if conn is None:
        ctx = ssl.create_default_context(cafile=ca)
        if cert:
            ctx.load_cert_chain(*cert)
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    data = json.dumps(body).encode() if body is not None else None
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    text = r.read()
    return r.status, (json.loads(text) if text else None), conn


def test_curl_with_cacert_and_plain_beside(srv):
    port, ca = tls_server(srv)
    p = subprocess.run(["curl", "-sS", "--cacert", ca, "-H", "Content-Type: application/json",
                        "-d", '{"type":"a.b","data":{"x":1}}',
                        f"https://localhost:{port}/v1/events"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and json.loads(p.stdout)["seq"] == 1, (p.stdout, p.stderr)
    # the plain listener serves the same bus at the same time
    st, _, body = srv.request("GET", "/v1/events/" + json.loads(p.stdout)["id"])
    assert st == 200 and body["data"] == {"x": 1}, body
    # a CA that did not sign the server's certificate: refused by curl
    other = make_ca(srv.dir, "other")
    p = subprocess.run(["curl", "-sS", "--cacert", other, f"https://localhost:{port}/healthz"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 60, (p.returncode, p.stderr)
    # and plain HTTP on the TLS port is not served
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    got = raw.recv(100)
    raw.close()
    assert not got.startswith(b"HTTP/1.1 200"), got


def s_client(port, ca, version):
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", version,
                           "-CAfile", ca, "-brief"], input="", capture_output=True, text=True,
                          timeout=30)


def test_protocol_versions(srv):
    port, ca = tls_server(srv)
    for v in ("-tls1", "-tls1_1"):
        p = s_client(port, ca, v)
        assert p.returncode != 0 and "alert protocol version" in p.stderr, (v, p.stderr)
    for v, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        p = s_client(port, ca, v)
        assert p.returncode == 0, (v, p.stderr)
        assert f"Protocol version: {name}" in p.stderr, p.stderr
        assert "Verification: OK" in p.stderr, p.stderr
    # TLS 1.2 without forward secrecy or AEAD: refused
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2",
                        "-cipher", "AES128-SHA256", "-brief"], input="", capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0, p.stderr


def test_mutual_tls(srv):
    d = srv.dir
    clients = make_ca(d, "clients")
    token_file = os.path.join(d, "admin.token")
    port, ca = tls_server(srv, client_ca=clients,
                          extra=["--auth", "token", "--admin-token-file", token_file])
    admin = Server.read_token(token_file)
    billing = make_cert(d, "clients", "billing", "billing", server=False)
    nobody = make_cert(d, "clients", "nobody", "nobody", server=False)
    make_ca(d, "rogue")
    rogue = make_cert(d, "rogue", "rogue1", "billing", server=False)
    # no client certificate: the handshake fails
    for cert in (None, rogue):
        try:
            st, _, c = https(port, ca, cert=cert)
            raise AssertionError(f"served without a valid client certificate: {st}")
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass
    # a certificate of the right CA: its CN names the token whose scopes apply
    st, body, conn = https(port, ca, cert=billing, path="/v1/groups")
    assert st == 401 and "names no token" in body["error"]["message"], body
    st, body, _ = https(port, ca, "POST", "/v1/tokens", {"name": "billing", "scopes": ["read"]},
                        cert=billing, headers={"Authorization": "Bearer " + admin}, conn=conn)
    assert st == 201, body
    st, body, _ = https(port, ca, path="/v1/groups", conn=conn)
    assert st == 200, body
    st, body, _ = https(port, ca, "PUT", "/v1/groups/g", {"types": ["a"]}, conn=conn)
    assert st == 403 and body["error"]["details"] == [{"scope": "groups:write"}], body
    st, body, _ = https(port, ca, cert=nobody, path="/v1/groups")
    assert st == 401, body
    # curl too
    cert, key = billing
    p = subprocess.run(["curl", "-sS", "--cacert", ca, "--cert", cert, "--key", key,
                        f"https://localhost:{port}/v1/stats"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and "events" in json.loads(p.stdout), p.stderr
    p = subprocess.run(["curl", "-sS", "--cacert", ca, f"https://localhost:{port}/v1/stats"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, p.stdout


def test_sighup_reload_keeps_connections(srv):
    port, ca = tls_server(srv)
    d = srv.dir
    st, _, conn = https(port, ca)
    assert st == 200
    old_serial = cert_serial(port, ca)
    # new CA, new certificate and key, written over the files; then SIGHUP
    ca2 = make_ca(d, "ca2")
    cert2, key2 = make_cert(d, "ca2", "srv2", "localhost")
    os.replace(cert2, os.path.join(d, "srv.pem"))
    os.replace(key2, os.path.join(d, "srv.key"))
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "reloaded the TLS certificate" not in open(srv.log_path).read():
        assert time.time() < deadline, srv.log_tail()
        time.sleep(0.02)
    # the open connection goes on with its session
    for _ in range(3):
        st, _, _ = https(port, ca, path="/v1/stats", conn=conn)
        assert st == 200
    # new connections get the new certificate: the old CA no longer verifies it
    st, _, _ = https(port, ca2)
    assert st == 200
    assert cert_serial(port, ca2) != old_serial
    try:
        https(port, ca)
        raise AssertionError("the old certificate is still served")
    except ssl.SSLCertVerificationError:
        pass
    # a broken file: the reload fails, the current certificate stays
    with open(os.path.join(d, "srv.key"), "w") as f:
        f.write("not a key\n")
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "TLS reload failed" not in open(srv.log_path).read():
        assert time.time() < deadline, srv.log_tail()
        time.sleep(0.02)
    st, _, _ = https(port, ca2)
    assert st == 200
    conn.close()


def cert_serial(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.getpeercert()["serialNumber"]


def test_bad_certificate_files_refuse_to_start(srv):
    d = srv.dir
    make_ca(d, "ca")
    cert, key = make_cert(d, "ca", "srv", "localhost")
    other_cert, other_key = make_cert(d, "ca", "srv2", "localhost")
    srv.stop()
    for args, says in ((["--tls-cert", cert, "--tls-key", other_key], "srv2.key"),
                       (["--tls-cert", os.path.join(d, "none.pem"), "--tls-key", key], "none.pem"),
                       (["--tls-cert", cert], "--tls-listen needs")):
        p = subprocess.run([srv_daemon(), "--data", srv.data, "--listen", "127.0.0.1:0",
                            "--tls-listen", "127.0.0.1:0"] + args, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode != 0 and says in p.stderr, (args, p.stderr)


def srv_daemon():
    from harness import DAEMON
    return DAEMON


def test_handshake_never_blocks_the_loop(srv):
    port, ca = tls_server(srv)
    # a client stuck mid-handshake (half a ClientHello), and one that sends
    # garbage: plain and TLS requests are served meanwhile
    stuck = socket.create_connection(("127.0.0.1", port), timeout=5)
    stuck.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    junk = socket.create_connection(("127.0.0.1", port), timeout=5)
    junk.sendall(b"\x16\x03\x01\x00\x05hello")
    t0 = time.time()
    st, _, _ = srv.request("GET", "/healthz")
    assert st == 200
    st, _, _ = https(port, ca)
    assert st == 200
    assert time.time() - t0 < 5
    assert junk.recv(100)[:1] in (b"\x15", b"")  # an alert, or closed
    stuck.close()
    junk.close()


def test_large_and_pipelined_requests(srv):
    port, ca = tls_server(srv)
    # a batch of ~600 KiB: many records each way
    batch = [{"type": "big.one", "data": {"s": "x" * 6000, "i": i}} for i in range(100)]
    st, body, conn = https(port, ca, "POST", "/v1/events/batch", batch)
    assert st == 201 and len(body["results"]) == 100, body
    st, body, _ = https(port, ca, path="/v1/events?limit=100", conn=conn)
    assert st == 200 and len(body["events"]) == 100 and body["events"][99]["data"]["i"] == 99
    # pipelined: 20 requests in one write, 20 answers in order
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            req = b"GET /v1/events/%d HTTP/1.1\r\nHost: x\r\n\r\n"
            t.sendall(b"".join(req % i for i in range(20)))
            got = b""
            while got.count(b"HTTP/1.1 ") < 20 or not got.endswith(b"}"):
                chunk = t.recv(65536)
                assert chunk, got[-200:]
                got += chunk
    assert got.count(b"HTTP/1.1 404") == 20, got[:300]


def test_cli_and_library_over_https(srv):
    d = srv.dir
    token_file = os.path.join(d, "admin.token")
    port, ca = tls_server(srv, extra=["--auth", "token", "--admin-token-file", token_file])
    admin = Server.read_token(token_file)
    cli = os.environ.get("EVENTBUS_CLI") or os.path.join(os.path.dirname(srv_daemon()),
                                                         "..", "cli", "eventbus")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBUS_")}

    def run(*args, **extra_env):
        return subprocess.run([cli, "--json"] + list(args), capture_output=True, text=True,
                              timeout=30, env=dict(env, **extra_env))
    url = f"https://localhost:{port}"
    p = run("--url", url, "--cacert", ca, "--token", admin, "publish", "a.b", '{"n":1}')
    assert p.returncode == 0 and json.loads(p.stdout)["seq"] == 1, p.stderr
    p = run("--url", f"https://127.0.0.1:{port}", "stats", EVENTBUS_CACERT=ca,
            EVENTBUS_TOKEN=admin)
    assert p.returncode == 0 and json.loads(p.stdout)["events"]["published"] == 1, p.stderr
    # the system store does not know the test CA; another CA neither
    p = run("--url", url, "--token", admin, "stats")
    assert p.returncode == 3 and "certificate" in p.stderr, p.stderr
    other = make_ca(d, "other")
    p = run("--url", url, "--cacert", other, "--token", admin, "stats")
    assert p.returncode == 3 and "certificate" in p.stderr, p.stderr
    # a name the certificate does not hold
    p = run("--url", f"https://127.0.0.2:{port}", "--cacert", ca, "stats")
    assert p.returncode == 3, p.stderr
    p = run("--url", url, "--cacert", os.path.join(d, "missing.pem"), "stats")
    assert p.returncode == 2 and "missing.pem" in p.stderr, p.stderr
    # plain HTTP beside it, with the same token
    p = run("--url", f"127.0.0.1:{srv.port}", "--token", admin, "stats")
    assert p.returncode == 0, p.stderr


if __name__ == "__main__":
    run_tests(globals())
