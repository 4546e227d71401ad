#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian package from this checkout and checks it with lintian;
# --install also installs it on this machine and checks the result
# (scripts/package-check.sh); --chroot installs it into a fresh Debian 12
# made by debootstrap (needs the Debian mirror) and runs `freno --version`.
#
#   scripts/package.sh [--install] [--chroot]
#
# The tracked and new (not ignored) files are copied to build-deb/freno-V/,
# where dpkg-buildpackage -b (debhelper, debian/) builds; the package lands
# in build-deb/: freno_V_ARCH.deb (and its -dbgsym). lintian must find no
# error; its warnings are printed, and the ones we keep are overridden in
# debian/freno.lintian-overrides, each with its reason. --install changes
# this machine (a system user, /etc files, an enabled unit): for throwaway
# machines and CI. Root for --install and --chroot; not for the build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build-deb

install=false
chroot=false
for a in "$@"; do
    case "$a" in
    --install) install=true ;;
    --chroot) chroot=true ;;
    *) echo "usage: $0 [--install] [--chroot]" >&2; exit 2 ;;
    esac
done

version=$(sed -nE 's/^set\(FRENO_VERSION "([^"]+)"\)$/\1/p' CMakeLists.txt)
changelog=$(dpkg-parsechangelog -S Version)
if [ "$version" != "$changelog" ]; then
    echo "package: CMakeLists.txt says version $version, debian/changelog $changelog: add a changelog entry" >&2
    exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$out/freno_${version}_${arch}.deb

echo "package: freno $version ($arch) in $out"
rm -rf "$out"
mkdir -p "$out/freno-$version"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files deleted in the work tree are left out.
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            [ -e "$f" ] && printf '%s\0' "$f"
        done | xargs -0 cp -a --parents -t "$out/freno-$version"
else
    tar -C "$root" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$out/freno-$version" -xf -
fi

start=$(date +%s)
if ! (cd "$out/freno-$version" && dpkg-buildpackage -b -us -uc -j"$(nproc)") >"$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log" >&2
    echo "package: dpkg-buildpackage failed (whole log: $out/build.log)" >&2
    exit 1
fi
echo "package: built $(basename "$deb") in $(($(date +%s) - start)) s"
dpkg-deb --field "$deb" Package Version Depends Installed-Size | sed 's/^/  /'
dpkg-deb --contents "$deb" | awk '{print "  " $1 " " $2 " " $6}'

echo "package: lintian"
lintian_rc=0
lintian_out=$(lintian --display-level ">=warning" --fail-on error "$deb" 2>&1) || lintian_rc=$?
if [ -n "$lintian_out" ]; then
    sed 's/^/  /' <<<"$lintian_out"
fi
errors=$(grep -c '^E:' <<<"$lintian_out" || true)
warnings=$(grep -c '^W:' <<<"$lintian_out" || true)
echo "package: lintian: $errors error(s), $warnings warning(s)"
if [ "$lintian_rc" -ne 0 ]; then
    echo "package: lintian failed" >&2
    exit 1
fi

if $install; then
    echo "package: apt-get install $deb"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" >"$out/install.log" 2>&1 || {
        tail -n 30 "$out/install.log" >&2
        echo "package: apt-get install failed (whole log: $out/install.log)" >&2
        exit 1
    }
    bash scripts/package-check.sh "$version"
fi

if $chroot; then
    dir=$out/chroot
    echo "package: debootstrap bookworm into $dir"
    if ! debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian >"$out/debootstrap.log" 2>&1; then
        tail -n 20 "$out/debootstrap.log" >&2
        echo "package: debootstrap failed (no mirror reachable?); whole log: $out/debootstrap.log" >&2
        exit 1
    fi
    cp "$deb" "$dir/tmp/"
    mount -t proc proc "$dir/proc"
    trap 'umount "$dir/proc" 2>/dev/null || true' EXIT
    if ! chroot "$dir" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/$(basename "$deb")" >"$out/chroot-install.log" 2>&1; then
        tail -n 30 "$out/chroot-install.log" >&2
        echo "package: install in the fresh chroot failed (whole log: $out/chroot-install.log)" >&2
        exit 1
    fi
    got=$(chroot "$dir" /usr/sbin/freno --version)
    if [ "$got" != "$version" ]; then
        echo "package: in the chroot, freno --version printed \"$got\", expected $version" >&2
        exit 1
    fi
    echo "package: fresh Debian 12 chroot: installed, freno --version: $got"
fi
echo "package: ok: $deb"
