#!/usr/bin/env bash
# Installs the Debian 12 packages eventbus needs to build, test and run.
# Idempotent and quiet when everything is already present. Run as root
# (or with sudo available). Usage: scripts/deps.sh [--bench] [--fuzz]
#   --bench  also the peers bench/ measures against (jansson, cJSON)
#   --fuzz   also clang and its runtime libraries (libFuzzer, ASan, UBSan)
set -euo pipefail

pkgs=(build-essential pkg-config meson ninja-build python3
      libuv1-dev libhttp-parser-dev libpcre2-dev)
for arg in "$@"; do
    case "$arg" in
    --bench) pkgs+=(libjansson-dev libcjson-dev) ;;
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
