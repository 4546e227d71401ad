# SPDX-License-Identifier: MIT
"""What an idle daemon maps: libraries only some configurations use are
opened when the configuration asks for them.

- static hosts only: neither libcurl nor libmemcached (nor libhashkit, nor
  the C++ runtime libmemcached pulls in) nor libsystemd is mapped, and the
  service manager still hears READY=1;
- an HAProxy inventory and a memcache publisher: both work (the hosts come
  from a real HAProxy's stats page, the aggregate reaches a real memcached)
  and libcurl and libmemcached are mapped;
- a SIGHUP that adds an HAProxy cluster to a daemon probing static hosts
  loads libcurl then, and the new cluster works;
- a missing or broken library (a stand-in on LD_LIBRARY_PATH: a file that is
  no ELF object, or a real library without the symbols) is one clear line:
  the start is refused, or the reload rejected with the running
  configuration kept.

The daemons use test_service.py's port and notify socket. Ports: 13374, the
stats page of this file's HAProxy."""

import json
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import lib
from lib import R1, R2, REPLICAS, expect, expect_eq, wait_until
from test_service import PORT, Service, is_ready, own_daemon

HAPROXY_STATS = 13374
MEMCACHE_PATH = "itfootprint"
PORT_MAX = "select @@port"

OPTIONAL = ("libcurl.so", "libmemcached.so", "libhashkit.so", "libsystemd.so")


def mapped_libraries(pid):
    """The file names of the shared objects mapped into @pid."""
    names = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and ".so" in parts[5]:
            names.add(Path(parts[5].strip()).name)
    return names


def has(names, prefix):
    return any(n.startswith(prefix) for n in names)


def expect_unmapped(pid, what):
    names = mapped_libraries(pid)
    for prefix in OPTIONAL:
        expect(not has(names, prefix), f"{prefix} is mapped {what}: {sorted(names)}")
    # The sanitizer runtimes link the C++ runtime themselves; a release
    # build must not have it.
    if not has(names, "libasan.so") and not has(names, "libtsan.so"):
        expect(not has(names, "libstdc++.so"), f"libstdc++ is mapped {what}: {sorted(names)}")


def static_cluster():
    return lib.cluster(REPLICAS, query=PORT_MAX, ThrottleThreshold=100000)


def hap_cluster():
    return {"MetricQuery": PORT_MAX, "ThrottleThreshold": 100000,
            "HAProxySettings": {"Host": "127.0.0.1", "Port": HAPROXY_STATS, "PoolName": "ro"}}


def config(clusters, **extra):
    cfg = {"ListenPort": PORT, "RaftDataDir": "@WORKDIR@/raft", "RaftNodes": [],
           "Stores": {"MySQL": {"User": "freno", "Password": "freno", "ThrottleThreshold": 1.0,
                                "Clusters": clusters}}}
    cfg.update(extra)
    return cfg


def value(s, cluster):
    """The cluster's aggregate as a number, or what /aggregated-metrics says."""
    v = json.loads(s.get("/aggregated-metrics")[1]).get(f"mysql/{cluster}")
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def wait_value(s, cluster, want, timeout=15.0):
    return wait_until(lambda: s.alive_or_raise() and value(s, cluster), lambda v: v == want,
                      timeout=timeout, what=f"mysql/{cluster} == {want}")


def wait_log(s, pattern, start=0, timeout=10.0):
    rx = re.compile(pattern)
    return wait_until(lambda: rx.search(s.log_text()[start:]), timeout=timeout,
                      what=f"log line /{pattern}/")


def write_config(s, cfg):
    s.config_path.write_text(json.dumps(lib._substitute(cfg, str(s.workdir)), indent=2))


def reload(s):
    """SIGHUP; waits for RELOADING=1 then READY=1. Returns the log offset
    from before the signal."""
    n = len(s.notify.poll())
    offset = len(s.log_text())
    s.proc.send_signal(signal.SIGHUP)
    j, _ = s.notify.wait_for(lambda m: m.startswith("RELOADING=1"), 10, "RELOADING=1", start=n)
    s.notify.wait_for(is_ready, 10, "READY=1 after the reload", start=j + 1)
    return offset


def broken_libraries(kind):
    """A directory for LD_LIBRARY_PATH whose libcurl.so.4 and
    libmemcached.so.11 are broken: "garbage" (not an ELF object) or "empty"
    (a real library, libz, without any of their symbols)."""
    d = Path(tempfile.mkdtemp(prefix="freno-it-libs-"))
    for soname in ("libcurl.so.4", "libmemcached.so.11"):
        if kind == "garbage":
            (d / soname).write_bytes(b"not a shared object\n" * 8)
        else:
            zlib = next((p for p in (Path("/lib/x86_64-linux-gnu/libz.so.1"), Path("/usr/lib/x86_64-linux-gnu/libz.so.1"),
                                     Path("/lib64/libz.so.1"), Path("/usr/lib/libz.so.1")) if p.exists()), None)
            if zlib is None:
                raise lib.Skip("libz.so.1 not found")
            shutil.copy(zlib, d / soname)
    return d


def refused_start(cfg, env, name):
    """Starts a daemon that must refuse @cfg: it exits 1 before READY=1.
    Returns its log."""
    s = Service(name, cfg, env=env)
    try:
        try:
            s.proc.wait(20)
        except subprocess.TimeoutExpired:
            raise lib.TestFailure(f"daemon still runs with a broken library; log tail:\n{s.log_tail()}")
        expect_eq(s.proc.returncode, 1, f"exit status; log tail:\n{s.log_tail()}")
        expect(not any(is_ready(m) for _, m in s.notify.poll()), "READY=1 from a refused start")
        text = s.log_text()
        m = lib.SANITIZER_PATTERNS.search(text)
        expect(m is None, f"sanitizer report:\n{text[m.start():m.start() + 3000] if m else ''}")
        return text
    finally:
        s.close()


# ---------------------------------------------------------------- tests

def test_static_hosts_map_no_optional_library():
    own_daemon()
    s = Service("footprint-static", config({"st": static_cluster()}))
    try:
        s.notify.wait_for(is_ready, 20, "READY=1")
        wait_value(s, "st", float(R2))
        expect_unmapped(s.proc.pid, "with static hosts only")
        s.stop()
    finally:
        s.close()


def test_http_inventory_and_memcache_load_their_libraries():
    own_daemon()
    work = Path(tempfile.mkdtemp(prefix="freno-it-footprint-"))
    hap = lib.start_haproxy_stats(work, HAPROXY_STATS, REPLICAS)
    s = None
    try:
        s = Service("footprint-dynamic", config(
            {"hap": hap_cluster()}, MemcacheServers=[f"127.0.0.1:{lib.MEMCACHED_PORT}"],
            MemcachePath=MEMCACHE_PATH))
        s.notify.wait_for(is_ready, 20, "READY=1")
        # Both replicas come from HAProxy's stats page: the worst port is R2's.
        wait_value(s, "hap", float(R2))
        # The aggregate reaches memcached: "<epoch ms>:<value>".
        v = wait_until(lambda: lib.memcache_get(f"{MEMCACHE_PATH}/mysql/hap"),
                       lambda x: x is not None and x.endswith(f":{R2}.000000"), timeout=10,
                       what="the aggregate in memcached")
        expect(re.fullmatch(r"\d{13}:\d+\.\d{6}", v), f"memcached value {v!r}")
        names = mapped_libraries(s.proc.pid)
        expect(has(names, "libcurl.so.4"), f"libcurl is not mapped: {sorted(names)}")
        expect(has(names, "libmemcached.so.11"), f"libmemcached is not mapped: {sorted(names)}")
        expect(not has(names, "libsystemd.so"), f"libsystemd is mapped: {sorted(names)}")
        s.stop()
    finally:
        if s is not None:
            s.close()
        lib.stop_process(hap)
        shutil.rmtree(work, ignore_errors=True)


def test_reload_adding_an_http_inventory_loads_libcurl():
    own_daemon()
    work = Path(tempfile.mkdtemp(prefix="freno-it-footprint-"))
    hap = lib.start_haproxy_stats(work, HAPROXY_STATS, REPLICAS)
    s = None
    try:
        s = Service("footprint-reload", config({"st": static_cluster()}))
        s.notify.wait_for(is_ready, 20, "READY=1")
        wait_value(s, "st", float(R2))
        expect_unmapped(s.proc.pid, "before the reload")
        write_config(s, config({"st": static_cluster(), "hap": hap_cluster()}))
        offset = reload(s)
        wait_log(s, r"reload: cluster hap added", start=offset)
        wait_value(s, "hap", float(R2))
        names = mapped_libraries(s.proc.pid)
        expect(has(names, "libcurl.so.4"), f"libcurl is not mapped after the reload: {sorted(names)}")
        expect(not has(names, "libmemcached.so"), f"libmemcached is mapped: {sorted(names)}")
        # A cluster with HTTP checks on a static inventory needs libcurl too;
        # loaded once, it is not loaded again.
        write_config(s, config({"st": static_cluster(), "hap": hap_cluster(),
                                "chk": lib.cluster([R1], query=PORT_MAX, ThrottleThreshold=100000,
                                                   HttpCheckPort=lib.HTTPCHECK_PORT)}))
        offset = reload(s)
        wait_log(s, r"reload: cluster chk added", start=offset)
        wait_value(s, "chk", float(R1))
        expect_eq(len(re.findall(r"libcurl \S+ loaded", s.log_text())), 1, "libcurl loads in the log")
        s.stop()
    finally:
        if s is not None:
            s.close()
        lib.stop_process(hap)
        shutil.rmtree(work, ignore_errors=True)


def test_broken_library_refuses_the_start():
    own_daemon()
    for kind, why in (("garbage", r"(invalid ELF header|file too short)"),
                      ("empty", r"undefined symbol: curl_\w+")):
        libs = broken_libraries(kind)
        try:
            env = {"LD_LIBRARY_PATH": str(libs)}
            text = refused_start(config({"hap": hap_cluster()}), env, f"footprint-nocurl-{kind}")
            expect(re.search(r"inventory: cluster hap \(HAProxy inventory\): cannot load libcurl: "
                             r"\S*libcurl\.so\.4: " + why, text), f"no libcurl error line in:\n{text}")
            why_mc = why.replace("curl_", "(memcached|hashkit)_")
            text = refused_start(config({"st": static_cluster()},
                                        MemcacheServers=[f"127.0.0.1:{lib.MEMCACHED_PORT}"]),
                                 env, f"footprint-nomc-{kind}")
            expect(re.search(r"memcache: MemcacheServers: cannot load libmemcached: "
                             r"\S*libmemcached\.so\.11: " + why_mc, text),
                   f"no libmemcached error line in:\n{text}")
            # Static hosts need neither: the same environment starts.
            s = Service(f"footprint-nolibs-{kind}", config({"st": static_cluster()}), env=env)
            try:
                s.notify.wait_for(is_ready, 20, "READY=1 without the optional libraries")
                s.stop()
            finally:
                s.close()
        finally:
            shutil.rmtree(libs, ignore_errors=True)


def test_broken_libcurl_rejects_the_reload():
    own_daemon()
    libs = broken_libraries("garbage")
    s = None
    try:
        s = Service("footprint-reload-nocurl", config({"st": static_cluster()}),
                    env={"LD_LIBRARY_PATH": str(libs)})
        s.notify.wait_for(is_ready, 20, "READY=1")
        wait_value(s, "st", float(R2))
        write_config(s, config({"st": static_cluster(), "hap": hap_cluster()}))
        offset = reload(s)
        wait_log(s, r"reload: rejected: inventory: cluster hap \(HAProxy inventory\): cannot load "
                    r"libcurl: \S*libcurl\.so\.4: [^\n]*; the running configuration stays", start=offset)
        # The running configuration serves on, without the new cluster.
        expect_eq(s.get("/check/it-footprint/mysql/st")[0], 200, "/check on the running cluster")
        expect_eq(value(s, "hap"), None, "mysql/hap after the rejected reload")
        expect(s.alive_or_raise(), "daemon alive")
        s.stop()
    finally:
        if s is not None:
            s.close()
        shutil.rmtree(libs, ignore_errors=True)
