#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks an installed freno package (scripts/package.sh --install runs it):
# `freno --version` prints VERSION; the files, their owners and modes; the
# system user; the unit enabled and valid for systemd; the man page found by
# man(1). Then it runs the packaged daemon the way the unit does, without
# systemd: as user freno, with /etc/freno.conf.json and the state directory
# /var/lib/freno, a notify socket standing in for systemd. It must say
# READY=1, answer /lb-check and /leader-check on port 8087, and stop cleanly
# on SIGTERM. Port 8087 must be free: run it in a private network namespace
# (scripts/isolated.sh) on a shared machine.
#
#   scripts/package-check.sh VERSION
set -euo pipefail
version=${1:?usage: $0 VERSION}
fail() {
    echo "package-check: $*" >&2
    exit 1
}

got=$(freno --version) || fail "freno --version failed"
[ "$got" = "$version" ] || fail "freno --version printed \"$got\", expected $version"
echo "package-check: $(command -v freno) --version: $got"

mode() { stat -c '%a %U:%G' "$1"; }
[ "$(mode /usr/sbin/freno)" = "755 root:root" ] || fail "/usr/sbin/freno: $(mode /usr/sbin/freno)"
[ "$(mode /etc/freno.conf.json)" = "640 root:freno" ] || fail "/etc/freno.conf.json: $(mode /etc/freno.conf.json)"
[ "$(mode /etc/default/freno)" = "600 root:root" ] || fail "/etc/default/freno: $(mode /etc/default/freno)"
for f in /lib/systemd/system/freno.service /usr/share/freno/sql/backend-schema.sql \
    /usr/share/doc/freno/examples/freno.conf.json /usr/share/doc/freno/copyright; do
    [ -f "$f" ] || fail "$f is missing"
done
dpkg-query -W -f='${Conffiles}\n' freno | grep -q '/etc/freno.conf.json' || fail "/etc/freno.conf.json is not a conffile"
dpkg-query -W -f='${Conffiles}\n' freno | grep -q '/etc/default/freno' || fail "/etc/default/freno is not a conffile"
uid=$(id -u freno) || fail "no user freno"
[ "$uid" -lt 1000 ] || fail "user freno is not a system user (uid $uid)"
[ "$(getent passwd freno | cut -d: -f7)" = "/usr/sbin/nologin" ] || fail "user freno can log in"
[ -L /etc/systemd/system/multi-user.target.wants/freno.service ] || fail "the unit is not enabled"
man -w freno >/dev/null || fail "man cannot find freno(8)"
# Unit syntax and hardening; the "man:" check needs no running systemd.
verify=$(systemd-analyze verify /lib/systemd/system/freno.service 2>&1 | grep -v "Command 'man freno(8)' failed" || true)
[ -z "$verify" ] || fail "systemd-analyze verify: $verify"
echo "package-check: files, modes, conffiles, user, enabled unit, man page: ok"

# What systemd would do: the state directory, then ExecStart as User=freno.
install -d -o freno -g freno -m 0750 /var/lib/freno
opts=$(. /etc/default/freno && echo "${FRENO_OPTS:-}")
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/freno.service)
exec_start=${exec_start//\$FRENO_OPTS/$opts}
python3 - "$exec_start" <<'PY'
import os, shlex, signal, socket, subprocess, sys, tempfile, time, urllib.request

argv = shlex.split(sys.argv[1])
tmp = tempfile.mkdtemp(prefix="freno-package-check-")
os.chmod(tmp, 0o755)
path = os.path.join(tmp, "notify.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
os.chmod(path, 0o777)  # the daemon runs as freno
sock.settimeout(0.2)
env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000"}
log = open(os.path.join(tmp, "freno.log"), "w+b")
proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log, user="freno", group="freno",
                        extra_groups=[], start_new_session=True)


def fail(msg):
    log.seek(0)
    sys.stderr.write(f"package-check: {msg}; log:\n{log.read().decode(errors='replace')}\n")
    if proc.poll() is None:
        proc.kill()
    sys.exit(1)


msgs = []
deadline = time.monotonic() + 20
while not any(m.startswith("READY=1") for m in msgs):
    if time.monotonic() > deadline or proc.poll() is not None:
        fail(f"no READY=1 (exit status {proc.poll()}, messages {msgs})")
    try:
        msgs.append(sock.recv(4096).decode())
    except socket.timeout:
        pass
for p, want in (("/lb-check", 200), ("/leader-check", 200)):
    try:
        code = urllib.request.urlopen(f"http://127.0.0.1:8087{p}", timeout=5).status
    except Exception as e:
        fail(f"GET {p}: {e}")
    if code != want:
        fail(f"GET {p}: {code}, expected {want}")
ready = [m for m in msgs if m.startswith("READY=1")][0]
proc.send_signal(signal.SIGTERM)
try:
    rc = proc.wait(15)
except subprocess.TimeoutExpired:
    fail("no exit within 15 s of SIGTERM")
if rc != 0:
    fail(f"exit status {rc} after SIGTERM")
owner = os.stat("/var/lib/freno/freno.lock")
print(f"package-check: the packaged daemon ran as freno: {ready!r}, /lb-check and /leader-check 200, "
      f"state in /var/lib/freno (uid {owner.st_uid}), clean stop")
PY
