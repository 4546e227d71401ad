#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs everything the build, the demo and the tests need (Debian 12).
# Idempotent and fast when everything is present: apt is only touched when a
# package is missing, and `apt-get update` only runs when the package lists
# are missing or an install fails with the current lists.
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config clang clang-format clang-tidy cppcheck
    libuv1-dev libmicrohttpd-dev libjansson-dev libmariadb-dev libssl-dev libcurl4-openssl-dev
    libmemcached-dev libcmocka-dev liburcu-dev libraft-dev
    mariadb-server mariadb-client percona-toolkit haproxy memcached
    wrk hey curl python3 jq procps iproute2
    libsodium-dev prometheus libunistring-dev
    man-db debhelper lintian debootstrap
    chromium
    libgnutls28-dev
    strace linux-perf
)

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#PACKAGES[@]} packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages (${missing[*]}) and not root; run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

echo "setup: installing ${missing[*]}"
# A fresh image has no package lists; otherwise try with the current lists
# first and refresh them only if that fails (stale lists give 404s).
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    apt-get update -q
fi
if ! apt-get install "${APT_OPTS[@]}" "${missing[@]}"; then
    echo "setup: install failed with the current package lists; updating them" >&2
    apt-get update -q
    apt-get install "${APT_OPTS[@]}" "${missing[@]}"
fi

# Fail loudly if anything is still absent (e.g. a package name that does not exist).
still=()
for p in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
    echo "setup: still missing after install: ${still[*]}" >&2
    exit 1
fi
echo "setup: done"
