#!/usr/bin/env python3
"""Sets up a Meson build directory once, and afterwards changes an option
only when its value really differs, so that a `make` with nothing to do
prints nothing but ninja's own lines (a `meson configure` of any kind makes
the next ninja run regenerate the build files, ~40 lines of output).

Usage: scripts/configure.py BUILDDIR [SETUP-ARGS...] [-- OPTIONS...]
  SETUP-ARGS  given to `meson setup` only (e.g. --buildtype=debug)
  OPTIONS     -Dname=value, given to `meson setup` and enforced afterwards:
              `meson configure BUILDDIR` with the ones whose value differs
Meson's output goes to /dev/null; its errors still reach stderr.
"""
import json
import os
import subprocess
import sys


def current_options(builddir):
    with open(os.path.join(builddir, "meson-info", "intro-buildoptions.json")) as f:
        return {o["name"]: o["value"] for o in json.load(f)}


def same(have, want):
    """Meson reports booleans as JSON booleans, arrays as lists."""
    if isinstance(have, bool):
        return want.lower() == ("true" if have else "false")
    if isinstance(have, list):
        return ",".join(str(v) for v in have) == want
    return str(have) == want


def main(argv):
    if not argv:
        sys.exit(__doc__)
    builddir, rest = argv[0], argv[1:]
    setup, options = (rest[:rest.index("--")], rest[rest.index("--") + 1:]) if "--" in rest \
        else (rest, [])
    quiet = {"stdout": subprocess.DEVNULL}
    if not os.path.exists(os.path.join(builddir, "build.ninja")):
        return subprocess.run(["meson", "setup", builddir] + setup + options, **quiet).returncode
    have = current_options(builddir)
    changed = []
    for opt in options:
        name, _, value = opt[2:].partition("=")
        if not opt.startswith("-D") or name not in have or not same(have[name], value):
            changed.append(opt)
    if not changed:
        return 0
    return subprocess.run(["meson", "configure", builddir] + changed, **quiet).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
