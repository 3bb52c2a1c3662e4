"""Crash states from a write trace (tests/powerloss/shim.c records it).

The persistence model is POSIX-strict, the most pessimistic one a
conforming file system allows (no ext4 ordering or auto_da_alloc help):

- File data and size: a write or truncate is durable once an fsync or
  fdatasync of that file follows it. Until then each one may be kept,
  dropped, or torn: a prefix of its 512-byte sectors (sectors counted at
  absolute file offsets) kept and the rest dropped. Kept writes past a
  dropped one leave a hole of zeros.
- Directory entries: a create, mkdir, rename or unlink is durable once an
  fsync of the directory holding the entry follows. Syncing the file does
  not make its name durable. Until then each such operation of a
  directory is kept or dropped on its own, applied in order (a kept rename
  of a file whose create was dropped still links the file under its new
  name; an unlink of a name that is not there does nothing).
- A file that is not reachable from the data dir (whose durable entries
  are assumed: the test creates it) is not in the crash state.

A cut point is a record index: the crash happened after record `cut`.
"""
import os
import random
import struct

HDR = struct.Struct("<IIQqqIIQ")
(CREATE, OPEN, WRITE, TRUNC, FSYNC, FDATASYNC, RENAME, UNLINK, MKDIR,
 UNSUPPORTED) = range(1, 11)
NAMES = {CREATE: "create", OPEN: "open", WRITE: "write", TRUNC: "truncate",
         FSYNC: "fsync", FDATASYNC: "fdatasync", RENAME: "rename",
         UNLINK: "unlink", MKDIR: "mkdir", UNSUPPORTED: "unsupported"}
SECTOR = 512


class Rec:
    __slots__ = ("op", "tid", "ns", "fid", "a", "path", "path2", "data", "end")

    def __repr__(self):
        return (f"{NAMES.get(self.op, self.op)} fid={self.fid} a={self.a} "
                f"{self.path} {self.path2} len={len(self.data)}")


def read_trace(path):
    """The trace's records; rec.end is its end offset in the trace file."""
    recs = []
    with open(path, "rb") as f:
        buf = f.read()
    off = 0
    while off + HDR.size <= len(buf):
        op, tid, ns, fid, a, plen, p2len, dlen = HDR.unpack_from(buf, off)
        end = off + HDR.size + plen + p2len + dlen
        if end > len(buf):
            break
        r = Rec()
        r.op, r.tid, r.ns, r.fid, r.a = op, tid, ns, fid, a
        p = off + HDR.size
        r.path = buf[p:p + plen].decode()
        r.path2 = buf[p + plen:p + plen + p2len].decode()
        r.data = buf[p + plen + p2len:end]
        r.end = end
        recs.append(r)
        if op == UNSUPPORTED:
            raise ValueError(f"trace holds a call the model does not cover: {r.path}")
        off = end
    return recs


def split(path):
    d, _, name = path.rpartition("/")
    return d, name


class Model:
    """Replays records, keeping what is durable apart from what is pending."""

    ROOT = 0

    def __init__(self):
        self.kind = {self.ROOT: "dir"}
        self.data = {}                 # fid -> durable bytearray
        self.pend = {}                 # fid -> [(WRITE, off, bytes) | (TRUNC, size)]
        self.entries = {self.ROOT: {}}  # dir fid -> durable {name: fid}
        self.dpend = {self.ROOT: []}   # dir fid -> [(op, name, name2, fid)]
        self.cur = {"": self.ROOT}     # path -> fid, as the running process saw it

    def dir_of(self, path):
        d, name = split(path)
        if d not in self.cur:
            raise ValueError(f"parent of {path} unknown")
        return self.cur[d], name

    def apply(self, r):
        if r.op in (CREATE, MKDIR):
            parent, name = self.dir_of(r.path)
            self.cur[r.path] = r.fid
            if r.op == MKDIR or r.a:
                self.kind[r.fid] = "dir"
                self.entries[r.fid] = {}
                self.dpend[r.fid] = []
            else:
                self.kind[r.fid] = "file"
                self.data[r.fid] = bytearray()
                self.pend[r.fid] = []
            self.dpend[parent].append((CREATE, name, None, r.fid))
        elif r.op == OPEN:
            if r.path == "":
                if self.cur[""] != r.fid:  # the data dir itself: bind its fid
                    self.kind[r.fid] = "dir"
                    self.entries[r.fid] = self.entries.pop(self.ROOT)
                    self.dpend[r.fid] = self.dpend.pop(self.ROOT)
                    self.kind.pop(self.ROOT)
                    self.ROOT = r.fid
                    self.cur[""] = r.fid
            elif self.cur.get(r.path) != r.fid:
                raise ValueError(f"open of {r.path} (fid {r.fid}) the trace never created")
        elif r.op == WRITE:
            self.pend[r.fid].append((WRITE, r.a, bytes(r.data)))
        elif r.op == TRUNC:
            self.pend[r.fid].append((TRUNC, r.a))
        elif r.op in (FSYNC, FDATASYNC):
            if self.kind.get(r.fid) == "dir":
                for op in self.dpend[r.fid]:
                    dir_apply(self.entries[r.fid], op)
                self.dpend[r.fid] = []
            else:
                for op in self.pend[r.fid]:
                    file_apply(self.data[r.fid], op)
                self.pend[r.fid] = []
        elif r.op == RENAME:
            p1, n1 = self.dir_of(r.path)
            p2, n2 = self.dir_of(r.path2)
            if p1 != p2:
                raise ValueError("rename across directories is not modelled")
            fid = self.cur.pop(r.path)
            self.cur[r.path2] = fid
            self.dpend[p1].append((RENAME, n1, n2, fid))
        elif r.op == UNLINK:
            parent, name = self.dir_of(r.path)
            fid = self.cur.pop(r.path)
            self.dpend[parent].append((UNLINK, name, None, fid))

    def pending_ops(self):
        return (sum(len(v) for v in self.pend.values()) +
                sum(len(v) for v in self.dpend.values()))

    def crash_state(self, rng, out_dir, mode="random"):
        """Writes one crash state under out_dir. mode: 'random' (each pending
        operation kept, dropped or torn), 'none' (only durable), 'all'."""
        entries = {}
        for d, ents in self.entries.items():
            e = dict(ents)
            for op in self.dpend[d]:
                if choose(rng, mode, 0.5):
                    dir_apply(e, op)
            entries[d] = e
        os.makedirs(out_dir, exist_ok=True)
        self._materialize(rng, mode, entries, self.ROOT, out_dir, set())

    def _materialize(self, rng, mode, entries, d, path, seen):
        for name, fid in sorted(entries[d].items()):
            p = os.path.join(path, name)
            if fid in seen:
                continue  # a file linked under two names: keep one
            seen.add(fid)
            if self.kind[fid] == "dir":
                os.makedirs(p, exist_ok=True)
                self._materialize(rng, mode, entries, fid, p, seen)
                continue
            content = bytearray(self.data[fid])
            for op in self.pend[fid]:
                if op[0] == WRITE and mode == "random" and rng.random() < 0.3:
                    off, data = op[1], op[2]
                    first, last = off // SECTOR, (off + len(data) + SECTOR - 1) // SECTOR
                    cut = rng.randint(first, last) * SECTOR  # sectors before it kept
                    file_apply(content, (WRITE, off, data[:max(0, cut - off)]))
                elif choose(rng, mode, 0.6):
                    file_apply(content, op)
            with open(p, "wb") as f:
                f.write(content)


def choose(rng, mode, p):
    if mode == "all":
        return True
    if mode == "none":
        return False
    return rng.random() < p


def file_apply(content, op):
    if op[0] == TRUNC:
        size = op[1]
        if size < len(content):
            del content[size:]
        else:
            content.extend(b"\0" * (size - len(content)))
        return
    _, off, data = op
    if off > len(content):
        content.extend(b"\0" * (off - len(content)))
    content[off:off + len(data)] = data


def dir_apply(ents, op):
    kind, name, name2, fid = op
    if kind == CREATE:
        ents[name] = fid
    elif kind == RENAME:
        if ents.get(name) == fid:
            del ents[name]
        ents[name2] = fid
    elif kind == UNLINK:
        if ents.get(name) == fid:
            del ents[name]
