#!/usr/bin/env bash
# Installs the Debian 12 packages eventbus needs to build, test and run.
# Idempotent and quiet when everything is already present. Run as root
# (or with sudo available). Usage: scripts/deps.sh [--bench] [--peers] [--fuzz]
#   --bench  adds what bench/json and bench/client compare with (jansson,
#            cJSON, libcurl)
#   --peers  adds the systems make bench-peers measures and their C clients:
#            Redis (redis-server, libhiredis-dev), NATS with JetStream
#            (nats-server, libnats-dev), PostgreSQL (postgresql, libpq-dev).
#            bench/peers/run.py starts its own instances on free ports; it
#            never uses a service the packages may have set up.
#   --fuzz   adds clang and its runtime libraries (libFuzzer, ASan, UBSan)
set -euo pipefail

pkgs=(build-essential pkg-config meson ninja-build python3
      libuv1-dev libhttp-parser-dev libpcre2-dev unicode-data
      clang libclang-rt-14-dev
      curl jq    # curl, jq: the shop example's shell consumer (examples/shop/analytics.sh)
      libsystemd-dev           # sd_notify: eventbusd tells systemd when it is ready
      debhelper lintian        # make deb, and its test (tests/lib/test_deb.py)
      strace)                  # checks the systemd unit's SystemCallFilter= (test_notify.py)
for arg in "$@"; do
    case "$arg" in
        --bench) pkgs+=(libjansson-dev libcjson-dev libcurl4-openssl-dev) ;;
        --peers) pkgs+=(redis-server libhiredis-dev nats-server libnats-dev postgresql libpq-dev) ;;
        --fuzz)  pkgs+=(clang libclang-rt-14-dev) ;;
        *) echo "deps: unknown option $arg" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
