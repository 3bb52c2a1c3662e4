#!/usr/bin/env python3
"""A throwaway PostgreSQL cluster for the tests of the PostgreSQL engine.

As a module: Cluster() runs initdb in a fresh temporary directory (as the
unprivileged user 'postgres' when run as root, as CI is: PostgreSQL refuses
to run as root), starts the server on a unix socket in that directory (no
TCP port), and stop() stops it (fast shutdown) and removes the directory.
create_db() makes a fresh database and returns its libpq URI; drop_db()
drops one with FORCE.

For failover: Cluster(tcp=True) also listens on 127.0.0.1 (a free port),
and its add_sync_standby() makes a synchronous standby of it in another
temporary directory (pg_basebackup -R, streaming; the primary's
synchronous_standby_names names it, synchronous_commit on: a commit
returns once the standby flushed it). stop_immediate() is `pg_ctl stop -m
immediate`, promote() `pg_ctl promote`; multi_host_uri() the libpq URI
naming both with target_session_attrs=read-write.

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
import socket
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, tcp=False, _base=None):
        """A fresh cluster (initdb); tcp: listening on 127.0.0.1 too.
        _base: made by add_sync_standby() as a standby of that cluster."""
        if not available():
            raise RuntimeError("PostgreSQL is not installed (initdb, postgres, psql): "
                               "run scripts/deps.sh")
        self.dir = tempfile.mkdtemp(prefix="eb-pg-")
        os.chmod(self.dir, 0o711)  # the postgres user must reach it
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.proc = None
        self.port = free_port() if tcp or _base else None
        self.settings = []  # more -c name=value for start_server
        self.creds = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")  # made by Debian's postgresql-common
            self.creds = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        t0 = time.time()
        if _base:  # a copy of the running primary that follows it (-R: standby.signal)
            argv = [pg_bin("pg_basebackup"), "-D", self.data, "-h", "127.0.0.1", "-p",
                    str(_base.port), "-U", USER, "-R", "-X", "stream", "-c", "fast",
                    "--no-sync"]
            self.settings = ["cluster_name=standby1"]  # its name to the primary
        else:
            argv = [pg_bin("initdb"), "-D", self.data, "-A", "trust", "-U", USER, "-E", "UTF8",
                    "--no-sync", "--no-instructions"]
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             **self.creds)
        if out.returncode != 0:
            self.stop()
            raise RuntimeError(f"{os.path.basename(argv[0])} failed:\n" + out.stdout[-2000:])
        self.start_server()
        self.start_s = time.time() - t0

    def start_server(self):
        """Starts postgres on the cluster's directory (again after crash())."""
        logf = open(self.log, "a")
        if self.creds:
            os.chown(self.log, self.creds["user"], self.creds["group"])
        # A test database: no fsync (the tests check eventbus, not the
        # disk), a socket in our directory (and 127.0.0.1 when asked for),
        # enough connections for parallel suites (6 per eventbusd: a reader
        # and a writer per store, and two more META writers).
        net = ["-c", "listen_addresses=127.0.0.1", "-p", str(self.port)] if self.port else \
            ["-c", "listen_addresses="]
        more = [a for kv in self.settings for a in ("-c", kv)]
        self.proc = subprocess.Popen(
            [pg_bin("postgres"), "-D", self.data, "-k", self.dir] + net +
            ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=300",
             "-c", "shared_buffers=32MB"] + more,
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

    def pg_ctl(self, *args):
        out = subprocess.run([pg_bin("pg_ctl"), "-D", self.data] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             **self.creds)
        if out.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)}: {out.stdout}")

    def add_sync_standby(self, timeout=60):
        """A synchronous standby of this cluster (started with tcp=True):
        returns the standby's Cluster once the primary reports it 'sync'."""
        standby = Cluster(_base=self)
        try:
            self.psql("postgres", "ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
            self.psql("postgres", "ALTER SYSTEM SET synchronous_commit = on")
            self.psql("postgres", "SELECT pg_reload_conf()")
            end = time.time() + timeout
            while self.query("postgres", "SELECT sync_state FROM pg_stat_replication "
                                         "WHERE application_name = 'standby1'") != "sync":
                if time.time() > end:
                    raise RuntimeError("the standby is not synchronous:\n" +
                                       standby.log_tail())
                time.sleep(0.05)
        except Exception:
            standby.stop()
            raise
        return standby

    def stop_immediate(self):
        """`pg_ctl stop -m immediate`: every session dropped at once, nothing
        flushed or checkpointed."""
        self.pg_ctl("stop", "-m", "immediate")
        self.proc.wait(timeout=30)

    def promote(self):
        """`pg_ctl promote` of a standby; returns once it accepts writes."""
        self.pg_ctl("promote", "-w", "-t", "60")

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
        c.dir, c.proc, c.log, c.start_s, c.port = host, None, os.devnull, 0.0, None
        c.foreign = True
        return c

    def log_tail(self, n=20):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def where(self):
        """psql's -h and -p for this cluster's socket."""
        return ["-h", self.dir] + (["-p", str(self.port)] if self.port else [])

    def psql(self, db, sql, check=True):
        p = subprocess.run([pg_bin("psql")] + self.where() + ["-U", USER, "-d", db, "-X", "-q",
                            "-v", "ON_ERROR_STOP=1", "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {p.stdout}")
        return p.returncode

    def query(self, db, sql):
        """The rows of a query, unaligned, one a line."""
        return subprocess.run([pg_bin("psql")] + self.where() + ["-U", USER, "-d", db, "-X",
                               "-At", "-v", "ON_ERROR_STOP=1", "-c", sql], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, check=True).stdout.strip()

    def uri(self, db):
        if self.port:
            return f"postgresql://{USER}@/{db}?host={self.dir}&port={self.port}"
        return f"postgresql://{USER}@/{db}?host={self.dir}"

    def multi_host_uri(self, db, *others):
        """db on this cluster and others, over TCP: the first of them that
        accepts writes (libpq tries them in order)."""
        hosts = ",".join(f"127.0.0.1:{c.port}" for c in (self,) + others)
        return f"postgresql://{USER}@{hosts}/{db}?target_session_attrs=read-write"

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
