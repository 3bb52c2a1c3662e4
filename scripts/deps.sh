#!/usr/bin/env bash
# Installs the Debian 12 packages eventbus needs to build, test and run.
# Idempotent and quiet when everything is already present. Run as root
# (or with sudo available). Usage: scripts/deps.sh [--bench] [--peers] [--fuzz]
#   --bench  adds what bench/json and bench/client compare with (jansson,
#            cJSON; libcurl is always there: push delivery) and gnuplot (bench/scale.py draws its curves)
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
      libssl-dev               # OpenSSL 3: token hashing and secrets (TLS later)
      libsystemd-dev           # sd_notify: eventbusd tells systemd when it is ready
      libcurl4-openssl-dev     # push delivery (src/push): libcurl's multi interface on libuv
      debhelper lintian        # make deb, and its test (tests/lib/test_deb.py)
      strace                   # checks the systemd unit's SystemCallFilter= (test_notify.py)
      prometheus               # promtool: contrib/prometheus/alerts.yml (tests/integration/test_alerts.py)
      libpq-dev postgresql     # the PostgreSQL engine (--store), and the throwaway clusters its
                               # tests run (tests/tools/pgcluster.py; the package's own cluster is unused)
      chromium)                # the dashboard's browser tests (tests/ui), headless
for arg in "$@"; do
    case "$arg" in
        --bench) pkgs+=(libjansson-dev libcjson-dev gnuplot-nox) ;;
        --peers) pkgs+=(redis-server libhiredis-dev nats-server libnats-dev postgresql libpq-dev) ;;
        --fuzz)  pkgs+=(clang libclang-rt-14-dev) ;;
        *) echo "deps: unknown option $arg" >&2; exit 2 ;;
    esac
done

# Node.js >= 20 and npm (clients/node, its tests, the docs/openapi.yaml lint):
# Debian's nodejs and npm only when no `node` is on PATH (Debian 12's is 18:
# too old, said below); the npm packages come from the committed lockfiles.
command -v node >/dev/null || pkgs+=(nodejs npm)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci where node_modules is missing or older than its lockfile.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
    echo "deps: Node.js >= 20 is needed for clients/node (found $(node --version 2>/dev/null || echo none));" \
         "install it (e.g. from NodeSource) and run make again" >&2
    exit 1
fi
root=$(cd "$(dirname "$0")/.." && pwd)
for d in clients/node examples/shop-ts examples/push-receiver tests/cloudevents tests/ui; do
    lock="$root/$d/package-lock.json"
    [ -f "$lock" ] || continue
    if [ ! -d "$root/$d/node_modules" ] || [ "$lock" -nt "$root/$d/node_modules" ]; then
        echo "deps: npm ci in $d" >&2
        (cd "$root/$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) && touch "$root/$d/node_modules"
    fi
done
