#!/usr/bin/env python3
"""eventbus as a user installs it: `make install` (PREFIX /usr/local,
DESTDIR honoured) from a build directory of the test's own (never the
user's build/, whose install log `ninja uninstall` needs), then:
- the three programs, libeventbus (.so and .a), every header of include/,
  eventbus.pc, the man pages, the systemd unit and its environment file are
  where they belong, and no internal header is;
- each man page renders with `man -l` (no warnings) and lists every option
  of its program's --help;
- `systemd-analyze verify` accepts the installed unit (its ExecStart
  pointed at the installed daemon, its man: link at the installed page);
- a program built with `pkg-config eventbus` (shared, and static with
  --static) publishes to the installed eventbusd and reads the event back;
- `make install` without DESTDIR runs ldconfig exactly when run as root.
Also checks that libeventbus.so exports exactly the functions of
include/eventbus.h, as lib/libeventbus.map says.

Arguments: the build directory (for the exports check).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import ROOT, Server  # noqa: E402
import installed  # noqa: E402  (tests/lib/installed.py)

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



def make_install(builddir, env=None, **variables):
    """`make install VAR=value...` from ROOT with builddir, the test's own."""
    args = [f"{k}={v}" for k, v in variables.items()]
    env = dict({k: v for k, v in os.environ.items() if k not in ("DESTDIR", "PREFIX", "BUILDDIR")},
               **(env or {}))
    out = subprocess.run(["make", "-s", "-C", ROOT, "install", f"BUILDDIR={builddir}"] + args,
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def setup_own_build(tmp):
    """A build directory of the test's own, without the tests and examples."""
    builddir = os.path.join(tmp, "build")
    subprocess.run(["meson", "setup", builddir, "-Dtests=false"], cwd=ROOT, check=True,
                   capture_output=True)
    return builddir


def soname(lib):
    """The SONAME of the shared library lib (libeventbus.so.N)."""
    out = subprocess.run(["objdump", "-p", lib], capture_output=True, text=True, check=True)
    return re.search(r"^\s*SONAME\s+(\S+)", out.stdout, re.M).group(1)


def installed_files(dest):
    return {os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest) for f in fs}


def check_layout(dest):
    files = installed_files(dest)
    headers = {os.path.relpath(os.path.join(d, f), os.path.join(ROOT, "include"))
               for d, _, fs in os.walk(os.path.join(ROOT, "include")) for f in fs}
    want = ["usr/local/sbin/eventbusd", "usr/local/bin/eventbus", "usr/local/bin/eventbus-log",
            "usr/local/share/man/man8/eventbusd.8", "usr/local/share/man/man1/eventbus.1",
            "usr/local/share/man/man1/eventbus-log.1",
            "usr/local/lib/systemd/system/eventbusd.service", "usr/local/etc/default/eventbusd"]
    want += [f"usr/local/include/{h}" for h in headers]
    for w in want:
        assert w in files, (w, sorted(files))
    for tail in ("libeventbus.so", "libeventbus.a", "pkgconfig/eventbus.pc"):
        assert any(f.startswith("usr/local/lib/") and f.endswith(tail) for f in files), tail
    so = [f for f in files if f.endswith("/libeventbus.so")][0]
    assert os.path.join(os.path.dirname(so), soname(os.path.join(dest, so))) in files, so
    for prog in ("usr/local/sbin/eventbusd", "usr/local/bin/eventbus", "usr/local/bin/eventbus-log"):
        assert os.access(os.path.join(dest, prog), os.X_OK), prog
    assert not any("json.h" in f or "httpc.h" in f for f in files), "internal headers leak"


def pkg_config(dest, pcdir, *args):
    """pkg-config over the installed .pc, its prefix moved under dest."""
    prefix = open(os.path.join(pcdir, "eventbus.pc")).read().split("prefix=", 1)[1].split()[0]
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    out = subprocess.run(["pkg-config", f"--define-variable=prefix={dest}{prefix}"] +
                         list(args) + ["eventbus"],
                         capture_output=True, text=True, env=env, check=True).stdout
    return out.split()


def user_install_log():
    log = os.path.join(BUILD, "meson-logs", "install-log.txt")
    return os.stat(log).st_mtime_ns if os.path.exists(log) else None


def test_make_install(tmp):
    """make install DESTDIR=... from the test's own build directory."""
    before = user_install_log()
    dest = os.path.join(tmp, "dest")
    make_install(setup_own_build(tmp), DESTDIR=dest)
    assert user_install_log() == before, "the user's build/ install log was touched"
    check_layout(dest)
    installed.check_man_pages(os.path.join(dest, "usr/local"))
    installed.check_unit(dest, "/usr/local", "usr/local/lib/systemd/system/eventbusd.service", tmp)
    pcdirs = [os.path.join(d) for d, _, fs in os.walk(dest) for f in fs if f == "eventbus.pc"]
    assert len(pcdirs) == 1, pcdirs
    check_usable(dest, pcdirs[0])


def test_ldconfig_only_as_root(tmp):
    """make install with no DESTDIR (PREFIX in tmp) runs ldconfig iff root,
    and systemctl daemon-reload iff root under a running systemd; both are
    stand-ins first on PATH that note they ran."""
    fake = os.path.join(tmp, "fakebin")
    os.makedirs(fake)
    for prog in ("ldconfig", "systemctl"):
        with open(os.path.join(fake, prog), "w") as f:
            f.write(f"#!/bin/sh\necho \"$*\" > {tmp}/{prog}-ran\n")
        os.chmod(os.path.join(fake, prog), 0o755)
    prefix = os.path.join(tmp, "prefix")
    make_install(setup_own_build(tmp), PREFIX=prefix,
                 env={"PATH": fake + os.pathsep + os.environ["PATH"]})
    assert any(re.search(r"libeventbus\.so\.\d+$", f) for f in installed_files(prefix))
    root = os.getuid() == 0
    assert os.path.exists(f"{tmp}/ldconfig-ran") == root, root
    systemd = root and os.path.isdir("/run/systemd/system")
    assert os.path.exists(f"{tmp}/systemctl-ran") == systemd, systemd
    if systemd:
        assert open(f"{tmp}/systemctl-ran").read().strip() == "daemon-reload"


def check_usable(dest, pcdir):
    """Programs built with pkg-config against the installed library talk to
    the installed eventbusd."""
    harness.DAEMON = os.path.join(dest, "usr/local/sbin/eventbusd")
    srv = Server()
    try:
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
        so = soname(os.path.join(libdir, "libeventbus.so"))
        assert os.path.join(libdir, so) in ldd, ldd
        ldd = subprocess.run(["ldd", static], capture_output=True, text=True, env=env).stdout
        assert "libeventbus" not in ldd, ldd
        srv.stop()
    finally:
        srv.cleanup()


def in_tmp(fn):
    def run():
        tmp = tempfile.mkdtemp(prefix="eb-install-")
        try:
            fn(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return run


SKIP = "sanitizer build (checked in the normal build)" if sanitized() else None
check("exports_match_the_header", test_exports)
check("version_header_matches_meson", test_version_matches_meson)
check("make_install_destdir_usable_with_pkg_config", in_tmp(test_make_install), skip_if=SKIP)
check("make_install_runs_ldconfig_and_daemon_reload_only_as_root", in_tmp(test_ldconfig_only_as_root), skip_if=SKIP)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
