"""Checks on an installed eventbus, shared by test_install.py (make install
into a DESTDIR) and test_deb.py (the .deb files unpacked into a scratch
root): the man pages render and list every option of their program, and
systemd accepts the unit."""
import os
import re
import subprocess

PAGES = (("eventbusd", "8", "sbin/eventbusd"), ("eventbus", "1", "bin/eventbus"),
         ("eventbus-log", "1", "bin/eventbus-log"))


def check_man_pages(prefix):
    """prefix: the installed tree's PREFIX (DEST/usr/local, ROOT/usr). Each
    page (plain or .gz) renders with `man -l` without a warning and names
    every --flag of its program's --help."""
    for name, sec, prog in PAGES:
        page = os.path.join(prefix, "share/man", f"man{sec}", f"{name}.{sec}")
        page = page if os.path.exists(page) else page + ".gz"
        out = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                             env=dict(os.environ, MANWIDTH="100", LC_ALL="C.UTF-8"))
        assert out.returncode == 0 and not out.stderr.strip(), (page, out.stderr)
        text = out.stdout.replace("\u2010", "-")
        assert "NAME" in text and "SYNOPSIS" in text and name in text, text[:500]
        helptext = subprocess.run([os.path.join(prefix, prog), "--help"],
                                  capture_output=True, text=True, check=True).stdout
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", helptext))
        assert flags, helptext
        missing = [f for f in flags if f not in text]
        assert not missing, (page, missing)


def check_unit(root, prefix, unit, tmp):
    """`systemd-analyze verify` on ROOT/UNIT, which must start PREFIX's
    sbin/eventbusd and read SYSCONFDIR/default/eventbusd. verify checks that
    the binary exists and that the man: link resolves, so ExecStart is
    pointed into ROOT and MANPATH at ROOT's man pages; it must print nothing
    (an unknown directive is only a warning)."""
    text = open(os.path.join(root, unit)).read()
    sbin = os.path.join(prefix, "sbin/")
    etc = "/etc" if prefix == "/usr" else os.path.join(prefix, "etc")
    assert f"ExecStart={sbin}eventbusd " in text, text
    assert f"EnvironmentFile=-{etc}/default/eventbusd" in text, text
    assert os.path.exists(os.path.join(root, etc.lstrip("/"), "default/eventbusd"))
    path = os.path.join(tmp, "eventbusd.service")
    with open(path, "w") as f:
        f.write(text.replace(f"ExecStart={sbin}", f"ExecStart={root}{sbin}"))
    env = dict(os.environ, MANPATH=os.path.join(root, prefix.lstrip("/"), "share/man"))
    out = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                         env=env)
    assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out.stdout + out.stderr
