#!/usr/bin/env python3
"""The Debian packages as `make deb` builds them: scripts/deb.sh (the same
script, into a scratch directory, not the user's build-deb/) runs
dpkg-buildpackage and lintian, which must report no error. Then each .deb is
unpacked with `dpkg-deb -x` into a scratch root, and there:
- every file is in its package: eventbusd (daemon, eventbus-log, the unit,
  /etc/default/eventbusd as a conffile, man pages), eventbus-cli,
  libeventbus1 (the shared library), libeventbus-dev (headers, .so link,
  .a, eventbus.pc);
- the maintainer scripts enable and start the unit (dh_installsystemd);
- each man page renders with `man -l` and lists its program's options;
- `systemd-analyze verify` accepts the unit; the unpacked programs run.
Lintian's warnings are printed (they do not fail the test).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import installed  # noqa: E402

PACKAGES = {
    "eventbusd": ["usr/sbin/eventbusd", "usr/bin/eventbus-log",
                  "lib/systemd/system/eventbusd.service", "etc/default/eventbusd",
                  "usr/share/man/man8/eventbusd.8.gz", "usr/share/man/man1/eventbus-log.1.gz"],
    "eventbus-cli": ["usr/bin/eventbus", "usr/share/man/man1/eventbus.1.gz"],
    "libeventbus1": ["usr/lib/{ma}/libeventbus.so.1"],
    "libeventbus-dev": ["usr/include/eventbus.h", "usr/lib/{ma}/libeventbus.so",
                        "usr/lib/{ma}/libeventbus.a", "usr/lib/{ma}/pkgconfig/eventbus.pc"],
}

passed = failed = 0


def check(name, fn, *args):
    global passed, failed
    try:
        fn(*args)
        passed += 1
        print(f"ok      {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - report any failure of the check
        failed += 1
        print(f"FAIL    {name}: {e}", flush=True)


def build(out):
    proc = subprocess.run([os.path.join(ROOT, "scripts", "deb.sh"), out], capture_output=True,
                          text=True)
    lines = (proc.stdout + proc.stderr).splitlines()
    tags = [ln for ln in lines if ln[:2] in ("E:", "W:")]
    for t in tags:
        print(f"        lintian {t}")
    assert proc.returncode == 0, "\n".join(lines[-40:])
    assert not [t for t in tags if t.startswith("E:")], tags


def debs(out):
    found = {}
    for f in os.listdir(out):
        if f.endswith(".deb") and "-dbgsym_" not in f:
            found[f.split("_", 1)[0]] = os.path.join(out, f)
    assert set(found) == set(PACKAGES), sorted(found)
    return found


def unpacked_files(out, scratch):
    ma = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True,
                        text=True, check=True).stdout.strip()
    for pkg, deb in debs(out).items():
        one = scratch + "-" + pkg  # this package alone
        os.makedirs(one)
        os.makedirs(scratch, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", deb, one], check=True)
        subprocess.run(["dpkg-deb", "-x", deb, scratch], check=True)
        files = {os.path.relpath(os.path.join(d, f), one) for d, _, fs in os.walk(one) for f in fs}
        for want in PACKAGES[pkg]:
            assert want.format(ma=ma) in files, (pkg, want, sorted(files))
        sonames = {f.rsplit(".so.", 1)[1] for f in files if re.search(r"\.so\.\d+$", f)}
        for n in sonames:  # Debian policy 8.1: the package is named after the soname
            assert pkg == f"libeventbus{n}", f"soname {n} in {pkg}: rename it in debian/"
    headers = {os.path.relpath(os.path.join(d, f), os.path.join(ROOT, "include"))
               for d, _, fs in os.walk(os.path.join(ROOT, "include")) for f in fs}
    for h in headers:
        assert os.path.exists(os.path.join(scratch, "usr/include", h)), h


def control(deb, name):
    """A control member (conffiles, postinst...) of deb."""
    return subprocess.run(["dpkg-deb", "-I", deb, name], capture_output=True, text=True,
                          check=True).stdout


def maintainer_scripts(out):
    deb = debs(out)["eventbusd"]
    assert control(deb, "conffiles").split() == ["/etc/default/eventbusd"]
    postinst = control(deb, "postinst")
    assert "deb-systemd-helper" in postinst and "eventbusd.service" in postinst, postinst
    assert "deb-systemd-invoke" in postinst and "start" in postinst, postinst


def programs_run(scratch):
    ver = subprocess.run([os.path.join(scratch, "usr/sbin/eventbusd"), "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert ver.startswith("eventbusd "), ver
    for prog in ("usr/bin/eventbus", "usr/bin/eventbus-log"):
        subprocess.run([os.path.join(scratch, prog), "--help"], capture_output=True, check=True)


def main():
    tmp = tempfile.mkdtemp(prefix="eb-deb-")
    out, scratch = os.path.join(tmp, "out"), os.path.join(tmp, "root")
    try:
        check("deb_builds_and_lintian_reports_no_error", build, out)
        if failed:
            return 1
        check("each_package_holds_its_files", unpacked_files, out, scratch)
        check("unit_enabled_and_started_env_file_a_conffile", maintainer_scripts, out)
        check("man_pages_render", installed.check_man_pages, os.path.join(scratch, "usr"))
        check("unit_passes_systemd_analyze_verify", installed.check_unit, scratch, "/usr",
              "lib/systemd/system/eventbusd.service", tmp)
        check("unpacked_programs_run", programs_run, scratch)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
