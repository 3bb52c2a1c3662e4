#!/usr/bin/env python3
"""docs/api.md against a real eventbusd: the examples are read out of the
markdown, so the page cannot drift from the server.

Walking the page in order, on one server (with order.created's schema from
examples/shop registered first, as in the README):
- a ```http block is a request: it is sent; the ```json block right after
  it is its answer: an error answer must be exactly what the server says,
  a success answer must have the documented shape (below);
- in a `PUT`, `POST` or `PATCH` section without a ```http block, the first
  ```json block is the request body: the server must accept it (2xx); the
  next ```json block, unless it is an error, is the answer's shape;
- in a `GET` section the first ```json block is the answer's shape;
- every ```json block holding {"error": ...} has a code of the Errors
  table and details whose members are the documented ones.
The shape check: every documented member exists in the answer with a value
of the same JSON type (numbers alike; null stands for any); arrays compare
their first elements. Blocks that elide with "…" or "..." are not JSON and
are not checked (they are listed in the output)."""
import json
import os
import re

from harness import ROOT, run_tests

DOC = os.path.join(ROOT, "docs", "api.md")
SUBST = {"{type}": "order.created", "{group}": "inventory", "{n}": "1"}
with open(os.path.join(ROOT, "docs", "openapi.json")) as _f:  # the contract's ErrorDetail
    DETAIL_KEYS = set(json.load(_f)["components"]["schemas"]["ErrorDetail"]["properties"])


def sections():
    """[(method, path, [(kind, text)])] in page order; kind is http or json."""
    out, cur = [], None
    text = open(DOC).read()
    for m in re.finditer(r"(?m)^(#{2,3} .*)$|^```(json|http)\n((?:.*\n)*?)```", text):
        if m.group(1):
            h = re.match(r"#{2,3} `(GET|PUT|POST|PATCH|DELETE) ([^`? ]+)", m.group(1))
            cur = (h.group(1), h.group(2), []) if h else (None, m.group(1), [])
            out.append(cur)
        elif cur is not None:
            cur[2].append((m.group(2), m.group(3)))
    return out


def error_codes():
    text = open(DOC).read()
    table = text[text.index("## Errors"):text.index("## Health")]
    return set(re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", table, re.M))


def same_shape(doc, got, where):
    if doc is None:
        return
    if isinstance(doc, bool) or isinstance(got, bool):
        assert isinstance(doc, bool) and isinstance(got, bool), (where, doc, got)
    elif isinstance(doc, (int, float)):
        assert isinstance(got, (int, float)), (where, doc, got)
    elif isinstance(doc, str):
        assert isinstance(got, str), (where, doc, got)
    elif isinstance(doc, list):
        assert isinstance(got, list), (where, doc, got)
        if doc and got:
            same_shape(doc[0], got[0], where + "/0")
    else:
        assert isinstance(got, dict), (where, doc, got)
        for k, v in doc.items():
            assert k in got, (f"{where}/{k}: documented, not in the answer", got)
            same_shape(v, got[k], f"{where}/{k}")


def is_error(v):
    return isinstance(v, dict) and isinstance(v.get("error"), dict)


def check_error_doc(e, codes, where):
    err = e["error"]
    assert err["code"] in codes, (where, err["code"], "not in the Errors table")
    assert isinstance(err["message"], str) and isinstance(err["details"], list), (where, err)
    for d in err["details"]:
        assert set(d) <= DETAIL_KEYS, (where, d)


def parse_http(block):
    head, _, body = block.partition("\n\n")
    lines = head.splitlines()
    method, path = lines[0].split()[:2]
    headers = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
    return method, path, headers, body.strip() or None


def send(srv, method, path, headers, body):
    hdrs = dict(headers)
    raw = body.encode() if body is not None else None
    if raw is not None:
        hdrs.setdefault("Content-Type", "application/json")
    return srv.request(method, path, raw=raw, headers=hdrs)


def fill(path):
    for k, v in SUBST.items():
        path = path.replace(k, v)
    return path


def test_every_example_matches_the_server(srv):
    with open(os.path.join(ROOT, "examples", "shop", "order.created.json")) as f:
        st, _, body = srv.request("PUT", "/v1/schemas/order.created", {"schema": json.load(f)})
    assert st == 201, body
    codes = error_codes()
    assert len(codes) >= 15, codes
    checked = skipped = 0
    for method, path, blocks in sections():
        where = f"{method} {path}" if method else path
        parsed = []
        for kind, text in blocks:
            if kind == "http":
                parsed.append(("http", text))
                continue
            try:
                parsed.append(("json", json.loads(text)))
            except ValueError:
                print(f"        not JSON, not checked: {where}: {text[:50]!r}")
                skipped += 1
                parsed.append(("elided", None))
        for v in (v for k, v in parsed if k == "json"):
            if is_error(v):
                check_error_doc(v, codes, where)
        answer = None  # (status, body) of the request just sent
        used_body = False
        for i, (kind, v) in enumerate(parsed):
            if kind == "http":
                answer = send(srv, *parse_http(v))
                continue
            if kind != "json":
                answer = None
                continue
            is_err = is_error(v)
            if answer is not None:
                st, _, got = answer
                if is_err:
                    assert got == v, (where, "documented", v, "server", got)
                else:
                    assert 200 <= st < 300, (where, st, got)
                    same_shape(v, got, where)
                checked += 1
                answer = None
                continue
            if is_err:
                continue
            if method in ("PUT", "POST", "PATCH") and not used_body and \
                    not any(k == "http" for k, _ in parsed):
                used_body = True
                answer = send(srv, method, fill(path), {}, json.dumps(v))
                assert 200 <= answer[0] < 300, (where, "documented body refused", v, answer[2])
                checked += 1
                if not any(k == "json" and not is_error(x) for k, x in parsed[i + 1:]):
                    answer = None
                continue
            if method == "GET" and "{id}" not in path:
                st, _, got = srv.request("GET", fill(path))
                assert st == 200, (where, st, got)
                same_shape(v, got, where)
                checked += 1
    print(f"        {checked} examples checked, {skipped} elided blocks skipped")
    assert checked >= 20, checked


if __name__ == "__main__":
    run_tests(globals())
