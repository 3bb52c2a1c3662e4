"""A real eventbusd whose data directory is a small tmpfs, and a way to fill
it: how the disk-full and alert tests drive the server out of space for
real. Mounting needs root (or CAP_SYS_ADMIN): can_mount() says whether this
machine allows it, so a test can skip with the reason instead."""
import os
import subprocess

from harness import Server

SIZE = "4m"


def mount_tmpfs(path, size=SIZE):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                       capture_output=True, text=True)
    return r.returncode == 0, (r.stderr or r.stdout).strip()


def can_mount():
    """(True, "") where a tmpfs can be mounted here, else (False, why)."""
    probe = os.path.join("/tmp", f"eb-mount-probe-{os.getpid()}")
    ok, why = mount_tmpfs(probe)
    if ok:
        subprocess.run(["umount", probe], capture_output=True)
    os.rmdir(probe)
    return ok, why or ("" if ok else "not permitted")


class TmpfsServer(Server):
    """A Server whose data directory is a tmpfs of SIZE."""
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        ok, why = mount_tmpfs(self.data)
        if not ok:
            raise RuntimeError(why)

    def cleanup(self):
        self.kill9()
        subprocess.run(["umount", self.data], capture_output=True)
        super().cleanup()


def fill(path):
    """Writes a file until the filesystem is full; returns its path."""
    f = os.path.join(path, "filler")
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in (65536, 4096):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return f
