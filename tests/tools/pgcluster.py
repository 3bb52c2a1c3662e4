#!/usr/bin/env python3
"""A throwaway PostgreSQL cluster for the tests of the PostgreSQL engine.

As a module: Cluster() runs initdb in a fresh temporary directory (as the
unprivileged user 'postgres' when run as root, as CI is: PostgreSQL refuses
to run as root), starts the server on a unix socket in that directory (no
TCP port), and stop() stops it (fast shutdown) and removes the directory.
create_db() makes a fresh database and returns its libpq URI; drop_db()
drops one with FORCE.

As a program: `pgcluster.py -- CMD ARGS...` starts a cluster, runs CMD
with EB_TEST_PG_HOST (the socket directory) and EB_TEST_PG_URI (a fresh
database of its own) in the environment, then stops and removes the
cluster; it exits with CMD's status. Debian's postgresql package brings
initdb/postgres (scripts/deps.sh); without them it says so and exits 77
(skipped, for meson)."""
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

USER = "eb"  # the database superuser initdb creates


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return found[-1] if found else shutil.which(name)


def available():
    return all(pg_bin(n) for n in ("initdb", "postgres", "psql"))


class Cluster:
    def __init__(self):
        if not available():
            raise RuntimeError("PostgreSQL is not installed (initdb, postgres, psql): "
                               "run scripts/deps.sh")
        self.dir = tempfile.mkdtemp(prefix="eb-pg-")
        os.chmod(self.dir, 0o711)  # the postgres user must reach it
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.proc = None
        self.creds = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")  # made by Debian's postgresql-common
            self.creds = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        t0 = time.time()
        out = subprocess.run([pg_bin("initdb"), "-D", self.data, "-A", "trust", "-U", USER,
                              "-E", "UTF8", "--no-sync", "--no-instructions"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             **self.creds)
        if out.returncode != 0:
            self.stop()
            raise RuntimeError("initdb failed:\n" + out.stdout[-2000:])
        self.start_server()
        self.start_s = time.time() - t0

    def start_server(self):
        """Starts postgres on the cluster's directory (again after crash())."""
        logf = open(self.log, "a")
        if self.creds:
            os.chown(self.log, self.creds["user"], self.creds["group"])
        # A test database: no fsync (the tests check eventbus, not the
        # disk), a socket in our directory only, enough connections for
        # parallel suites (4 per eventbusd).
        self.proc = subprocess.Popen(
            [pg_bin("postgres"), "-D", self.data, "-k", self.dir, "-c", "listen_addresses=",
             "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=300",
             "-c", "shared_buffers=32MB"],
            stdout=logf, stderr=logf, **self.creds)
        logf.close()
        end = time.time() + 30
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres did not start:\n" + self.log_tail())
            if self.psql("postgres", "SELECT 1", check=False) == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("postgres did not answer in 30 s:\n" + self.log_tail())

    def crash(self):
        """Immediate shutdown (SIGQUIT, as pg_ctl stop -m immediate): every
        connection drops, recovery runs at the next start."""
        self.proc.send_signal(signal.SIGQUIT)
        self.proc.wait(timeout=30)

    @classmethod
    def existing(cls, host):
        """A cluster someone else started (its socket directory); stop()
        leaves it running."""
        c = cls.__new__(cls)
        c.dir, c.proc, c.log, c.start_s = host, None, os.devnull, 0.0
        c.foreign = True
        return c

    def log_tail(self, n=20):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def psql(self, db, sql, check=True):
        p = subprocess.run([pg_bin("psql"), "-h", self.dir, "-U", USER, "-d", db, "-X", "-q",
                            "-v", "ON_ERROR_STOP=1", "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {p.stdout}")
        return p.returncode

    def query(self, db, sql):
        """The rows of a query, unaligned, one a line."""
        return subprocess.run([pg_bin("psql"), "-h", self.dir, "-U", USER, "-d", db, "-X", "-At",
                               "-v", "ON_ERROR_STOP=1", "-c", sql], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, check=True).stdout.strip()

    def uri(self, db):
        return f"postgresql://{USER}@/{db}?host={self.dir}"

    def create_db(self):
        name = "eb_" + uuid.uuid4().hex[:16]
        self.psql("postgres", f"CREATE DATABASE {name}")
        return name, self.uri(name)

    def drop_db(self, name):
        self.psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)

    def stop(self):
        if getattr(self, "foreign", False):
            return
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def main(argv):
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: pgcluster.py -- CMD ARGS...", file=sys.stderr)
        return 2
    cmd = argv[argv.index("--") + 1:]
    if not available():
        print("pgcluster: PostgreSQL is not installed (run scripts/deps.sh): skipped")
        return 77
    c = Cluster()
    try:
        print(f"pgcluster: initdb + start {c.start_s:.2f} s, socket in {c.dir}", flush=True)
        _, uri = c.create_db()
        env = dict(os.environ, EB_TEST_PG_HOST=c.dir, EB_TEST_PG_URI=uri)
        return subprocess.run(cmd, env=env).returncode
    finally:
        c.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
