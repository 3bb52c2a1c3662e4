#!/usr/bin/env bash
# Builds the Debian packages (debian/) out of tree, then runs lintian.
# Usage: scripts/deb.sh [OUTDIR]   (make deb: OUTDIR = build-deb)
# The sources (git's tracked and new, not ignored, files) are copied to
# OUTDIR/eventbus-VERSION, where dpkg-buildpackage -us -uc -b runs; the .deb
# files, .changes and .buildinfo land in OUTDIR, its output in
# OUTDIR/build.log. Exits non-zero when the build fails or lintian reports
# an error; lintian's warnings are printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/build-deb}")
version=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
src="$out/eventbus-$version"
rm -rf "$out"
mkdir -p "$src"
cd "$root"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf - | tar -xf - -C "$src"
else
    tar --exclude='./build*' --exclude=./bin --exclude=./data -cf - . | tar -xf - -C "$src"
fi
cd "$src"
if ! DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1; then
    tail -40 "$out/build.log" >&2
    echo "deb: dpkg-buildpackage failed (whole log: $out/build.log)" >&2
    exit 1
fi
cd "$out"
rm -rf "$src"
ls -1 "$out"/*.deb
lintian --fail-on error "$out"/*.changes
