#!/usr/bin/env python3
"""libeventbus as a user gets it: `meson install` into a temporary
destination, then a program built with `pkg-config eventbus` (shared, and
static with --static) publishes to a real eventbusd and reads the event
back. Also checks that libeventbus.so exports exactly the functions of
include/eventbus.h, as lib/libeventbus.map says.

Arguments: the build directory. $EVENTBUSD is the daemon (set by meson).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import ROOT, Server  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "build")

PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include <eventbus.h>

int main(int argc, char **argv)
{
    eb_client *c;
    eb_client_opts o = {.size = sizeof o, .url = argv[1]};
    if (argc < 2 || eb_client_new(&o, &c) != 0)
        return 2;
    const char *v;
    if (eb_version(&v) != EB_VERSION_HEX || strlen(v) < 5)
        return 3;
    eb_publish_result r = {.size = sizeof r};
    int rc = eb_publish(c, "install.checked", "{\"ok\":true}", NULL, &r);
    if (rc) {
        fprintf(stderr, "%s: %s\n", eb_strerror(rc), eb_client_error(c)->message);
        return 1;
    }
    eb_events *l;
    if (eb_events_get(c, r.id, &l) != 0)
        return 1;
    printf("seq %llu data %s\n", (unsigned long long)r.seq, eb_events_at(l, 0)->data);
    eb_events_free(l);
    eb_client_free(c);
    return 0;
}
"""

passed = failed = skipped = 0


def sanitized():
    """True for a -Db_sanitize build: a program built without the sanitizer
    cannot load its libeventbus.so (the normal build covers that check)."""
    out = subprocess.run(["meson", "introspect", BUILD, "--buildoptions"], capture_output=True,
                         text=True, check=True).stdout
    return any(o["name"] == "b_sanitize" and o["value"] not in ("none", "")
               for o in json.loads(out))


def check(name, fn, skip_if=None):
    global passed, failed, skipped
    if skip_if:
        skipped += 1
        print(f"skip    {name}: {skip_if}", flush=True)
        return
    try:
        fn()
        passed += 1
        print(f"ok      {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - report any failure of the check
        failed += 1
        print(f"FAIL    {name}: {e}", flush=True)


def header_functions():
    """The functions of the public headers: eventbus.h and eventbus/*.h."""
    inc = os.path.join(ROOT, "include")
    paths = [os.path.join(inc, "eventbus.h")] + sorted(
        os.path.join(inc, "eventbus", f) for f in os.listdir(os.path.join(inc, "eventbus")))
    text = "\n".join(open(p).read() for p in paths)
    return set(re.findall(r"^(?!typedef|#|\s|/\*|\*)[^;(]*?\b(eb_[a-z0-9_]+)\(", text, re.M))


def test_exports():
    want = header_functions()
    mapped = set(re.findall(r"^\s+(eb_[a-z0-9_]+);", open(os.path.join(ROOT, "lib",
                                                                    "libeventbus.map")).read(),
                            re.M))
    assert want == mapped, f"header vs map: {sorted(want ^ mapped)}"
    so = os.path.join(BUILD, "lib", "libeventbus.so")
    out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True,
                         check=True).stdout
    exported = {line.split()[-1].split("@")[0] for line in out.splitlines()
                if line.split()[-1][0] != "E"}  # EVENTBUS_1 is the version node
    assert exported == want, f"exported vs header: {sorted(exported ^ want)}"


def test_version_matches_meson():
    """include/eventbus/version.h and meson.build's project version agree."""
    text = open(os.path.join(ROOT, "include", "eventbus", "version.h")).read()
    got = ".".join(re.search(rf"#define EB_VERSION_{k} (\d+)", text).group(1)
                   for k in ("MAJOR", "MINOR", "PATCH"))
    meson = re.search(r"version: '([0-9.]+)'", open(os.path.join(ROOT, "meson.build")).read())
    assert got == meson.group(1), (got, meson.group(1))


def install(dest):
    subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", dest],
                   check=True, capture_output=True)
    pcs = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs if f == "eventbus.pc"]
    assert len(pcs) == 1, pcs
    return os.path.dirname(pcs[0])


def pkg_config(dest, pcdir, *args):
    """pkg-config over the installed .pc, its prefix moved under dest."""
    prefix = open(os.path.join(pcdir, "eventbus.pc")).read().split("prefix=", 1)[1].split()[0]
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    out = subprocess.run(["pkg-config", f"--define-variable=prefix={dest}{prefix}"] +
                         list(args) + ["eventbus"],
                         capture_output=True, text=True, env=env, check=True).stdout
    return out.split()


def test_installed_and_usable():
    dest = tempfile.mkdtemp(prefix="eb-install-")
    srv = Server()
    try:
        pcdir = install(dest)
        files = {os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest)
                 for f in fs}
        for want in ("include/eventbus.h", "include/eventbus/err.h",
                     "include/eventbus/version.h", "libeventbus.so.1", "libeventbus.a", "bin/eventbus"):
            assert any(f.endswith(want) for f in files), (want, sorted(files))
        assert not any("json.h" in f or "httpc.h" in f for f in files), "internal headers leak"
        src = os.path.join(dest, "prog.c")
        with open(src, "w") as f:
            f.write(PROGRAM)
        cflags = pkg_config(dest, pcdir, "--cflags")
        libs = pkg_config(dest, pcdir, "--libs")
        libdir = [a[2:] for a in libs if a.startswith("-L")][0]
        shared, static = os.path.join(dest, "prog-shared"), os.path.join(dest, "prog-static")
        subprocess.run(["cc", "-std=c17", "-Wall", "-Werror", src, "-o", shared] + cflags +
                       libs + [f"-Wl,-rpath,{libdir}"], check=True)
        static_libs = pkg_config(dest, pcdir, "--static", "--libs")
        static_libs = [os.path.join(libdir, "libeventbus.a") if a == "-leventbus" else a
                       for a in static_libs if not a.startswith("-L")]
        subprocess.run(["cc", "-std=c17", "-Wall", "-Werror", src, "-o", static] + cflags +
                       static_libs, check=True)
        srv.start()
        url = f"http://127.0.0.1:{srv.port}"
        # as a user runs it: not with the build tree's library path (meson test sets one)
        env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
        for prog in (shared, static):
            out = subprocess.run([prog, url], capture_output=True, text=True, timeout=30,
                                 env=env)
            assert out.returncode == 0, (prog, out.stderr)
            assert out.stdout.endswith('data {"ok":true}\n'), out.stdout
        ldd = subprocess.run(["ldd", shared], capture_output=True, text=True, env=env).stdout
        assert os.path.join(libdir, "libeventbus.so.1") in ldd, ldd
        ldd = subprocess.run(["ldd", static], capture_output=True, text=True, env=env).stdout
        assert "libeventbus" not in ldd, ldd
        srv.stop()
    finally:
        srv.cleanup()
        shutil.rmtree(dest, ignore_errors=True)


check("exports_match_the_header", test_exports)
check("version_header_matches_meson", test_version_matches_meson)
check("installed_and_usable_with_pkg_config", test_installed_and_usable,
      skip_if="sanitizer build (checked in the normal build)" if sanitized() else None)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
