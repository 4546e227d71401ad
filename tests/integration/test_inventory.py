# SPDX-License-Identifier: MIT
"""Dynamic inventory, HTTP checks and memcache publishing against real
services: two HAProxy processes moved through states over their runtime API,
a ProxySQL stats table served by the topology primary, a vtctld stand-in
serving the tablet JSON vtctld returns, HTTP check responders and a
memcached.

Which hosts a cluster probes is read from its aggregate: the clusters here
use "select @@port" (the worst host is the highest port) or
"select 20000 - @@port" (the lowest port), so the value names the hosts.
Refreshes come every 10 s, so each step waits up to ~12 s.

Ports 18200-18299 belong to this file.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import http.server
from pathlib import Path

import lib
from lib import PRIMARY, R1, R2, expect, expect_eq

DAEMON_PORT = 18200
HAPROXY_A = 18201        # stats page of HAProxy A (pool mysql_ro: both replicas; pool merge: R1)
HAPROXY_B = 18202        # stats page of HAProxy B (pool merge: R2)
EMPTY_HTTP = 18211       # answers 200 with an empty body
VTCTLD = 18210           # vtctld stand-in
HTTPCHECK = 18220        # 200 on 127.0.0.1, 404 on 127.0.0.2
MEMCACHED = 18230
NOTHING = 18299          # nothing listens here
PROXYSQL_DEAD = "127.0.0.1:1"  # sorts before the live address; refused
MC_PATH = "freno-inv"

PORT_MAX = "select @@port"
PORT_MIN = "select 20000 - @@port"
BOTH_MAX = float(R2)
ONLY_R1_MAX = float(R1)
R1_MIN = 20000.0 - R1


def _free_ports_check():
    for port in (DAEMON_PORT, HAPROXY_A, HAPROXY_B, EMPTY_HTTP, VTCTLD, HTTPCHECK, MEMCACHED):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise lib.Skip(f"port {port} is busy")
        finally:
            s.close()


# ---------------------------------------------------------------- helpers

class _Env:
    """The services this file starts, once, torn down at exit."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="freno-inv-"))
        self.procs = {}
        self.servers = []
        self.vitess_tablets = []
        self.vitess_status = 200
        self.vitess_paths = []

    # HAProxy ------------------------------------------------------------
    def haproxy_config(self, name, stats_port, pools):
        lines = ["global", f"    stats socket {self.dir}/{name}.sock mode 600 level admin",
                 "defaults", "    mode tcp", "    timeout connect 1s", "    timeout client 5s",
                 "    timeout server 5s",
                 "listen stats", f"    bind 127.0.0.1:{stats_port}", "    mode http",
                 "    stats enable", "    stats uri /"]
        for pool, ports in pools.items():
            lines.append(f"backend {pool}")
            for p in ports:
                # The server name says host:port, so each replica keeps its port.
                lines.append(f"    server 127.0.0.1:{p} 127.0.0.1:{p} check inter 200 rise 1 fall 1")
        path = self.dir / f"{name}.cfg"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_haproxy(self, name, stats_port, pools):
        cfg = self.haproxy_config(name, stats_port, pools)
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs[name] = proc
        lib.wait_until(lambda: _http_status(f"http://127.0.0.1:{stats_port}/;csv;norefresh") == 200,
                       timeout=10, what=f"haproxy {name} stats page")

    def haproxy_cmd(self, name, cmd):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(str(self.dir / f"{name}.sock"))
        s.sendall(cmd.encode() + b"\n")
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        s.close()
        return out.decode().strip()

    def server_status(self, name, stats_port, pool, server):
        body = lib.http("GET", f"http://127.0.0.1:{stats_port}/;csv;norefresh")[2]
        lines = body.decode().splitlines()
        cols = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            f = line.split(",")
            if len(f) > 2 and f[cols.index("pxname")] == pool and f[cols.index("svname")] == server:
                return f[cols.index("status")]
        return None

    def stop(self, name):
        proc = self.procs.pop(name, None)
        if proc is not None:
            lib.stop_process(proc)

    # HTTP stand-ins -------------------------------------------------------
    def serve(self, addr, port, handler):
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        srv = http.server.ThreadingHTTPServer((addr, port), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.servers.append(srv)

    def start_http(self):
        env = self

        class Quiet(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

        class Empty(Quiet):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Vtctld(Quiet):
            def do_GET(self):
                env.vitess_paths.append(self.path)
                if self.path != "/api/keyspace/commerce/tablets/0?cells=zone1%2Czone3":
                    self.send_error(404)
                    return
                if env.vitess_status != 200:
                    self.send_error(env.vitess_status)
                    return
                body = json.dumps(env.vitess_tablets, indent=2).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def check(status):
            class Check(Quiet):
                def do_GET(self):
                    self.send_response(status if self.path == "/health/mysql" else 500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
            return Check

        self.serve("127.0.0.1", EMPTY_HTTP, Empty)
        self.serve("127.0.0.1", VTCTLD, Vtctld)
        self.serve("127.0.0.1", HTTPCHECK, check(200))
        self.serve("127.0.0.2", HTTPCHECK, check(404))

    # memcached ------------------------------------------------------------
    def start_memcached(self):
        self.procs["memcached"] = subprocess.Popen(
            ["memcached", "-l", "127.0.0.1", "-p", str(MEMCACHED), "-U", "0", "-m", "16", "-u", "root"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lib.wait_until(lambda: _mc_alive(), timeout=5, what="memcached up")

    def close(self):
        for name in list(self.procs):
            self.stop(name)
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _http_status(url):
    try:
        return lib.http("GET", url, timeout=2)[0]
    except OSError:
        return None


def _mc_alive():
    try:
        with socket.create_connection(("127.0.0.1", MEMCACHED), timeout=1) as s:
            s.sendall(b"version\r\n")
            return s.recv(100).startswith(b"VERSION")
    except OSError:
        return False


def mc_get(key):
    """The value of @key in the test memcached, or None."""
    with socket.create_connection(("127.0.0.1", MEMCACHED), timeout=2) as s:
        s.sendall(f"get {key}\r\n".encode())
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    m = re.match(rb"VALUE \S+ \d+ \d+\r\n(.*)\r\nEND\r\n", data, re.S)
    return m.group(1).decode() if m else None


def tablet(uid, cell, ttype, port, stats=None):
    t = {"alias": {"cell": cell, "uid": uid}, "hostname": f"vt-{uid}",
         "port_map": {"grpc": 16000 + uid, "vt": 15000 + uid}, "keyspace": "commerce", "shard": "0",
         "type": ttype, "mysql_hostname": "127.0.0.1", "mysql_port": port}
    if stats is not None:
        t["stats"] = stats
    return t


PRIMARY_T, REPLICA_T, RDONLY_T = 1, 2, 3
HEALTHY = {"realtime": {"seconds_behind_master": 0}, "serving": True, "up": True}
BROKEN = {"last_error": "vttablet error: replication is not running",
          "realtime": {"health_error": "replication is not running"}}


def proxysql_setup():
    """The stats table ProxySQL serves, on the primary, not replicated."""
    lib.sql(PRIMARY, """
        SET SESSION sql_log_bin = 0;
        CREATE DATABASE IF NOT EXISTS stats;
        DROP TABLE IF EXISTS stats.stats_mysql_connection_pool;
        CREATE TABLE stats.stats_mysql_connection_pool (
            hostgroup INT, srv_host VARCHAR(255), srv_port INT, status VARCHAR(64),
            ConnUsed INT DEFAULT 0, ConnFree INT DEFAULT 0, ConnOK INT DEFAULT 0,
            ConnERR INT DEFAULT 0, MaxConnUsed INT DEFAULT 0, Queries BIGINT DEFAULT 0,
            Queries_GTID_sync BIGINT DEFAULT 0, Bytes_data_sent BIGINT DEFAULT 0,
            Bytes_data_recv BIGINT DEFAULT 0, Latency_us BIGINT DEFAULT 0);
        INSERT INTO stats.stats_mysql_connection_pool (hostgroup, srv_host, srv_port, status) VALUES
            (10, '127.0.0.1', %d, 'ONLINE'),
            (10, '127.0.0.1', %d, 'ONLINE'),
            (10, '127.0.0.1', %d, 'OFFLINE_HARD'),
            (20, '127.0.0.1', %d, 'ONLINE');
        GRANT SELECT ON stats.* TO 'freno'@'%%';
        GRANT SELECT ON stats.* TO 'freno'@'localhost';
        CREATE DATABASE IF NOT EXISTS invtest;
        CREATE TABLE IF NOT EXISTS invtest.flip (v DOUBLE);
        DELETE FROM invtest.flip;
        INSERT INTO invtest.flip VALUES (0.5);
        GRANT SELECT ON invtest.* TO 'freno'@'%%';
        GRANT SELECT ON invtest.* TO 'freno'@'localhost';
    """ % (R1, R2, NOTHING, PRIMARY))


def proxysql_status(port, status):
    lib.sql(PRIMARY, "SET SESSION sql_log_bin = 0; UPDATE stats.stats_mysql_connection_pool "
                     f"SET status = '{status}' WHERE hostgroup = 10 AND srv_port = {port}")


def config(workdir):
    def c(query, **settings):
        d = {"MetricQuery": query}
        d.update(settings)
        return d

    hap = lambda addrs, pool: {"HAProxySettings": {"Addresses": addrs, "PoolName": pool}}  # noqa: E731
    vt = {"VitessSettings": {"API": f"http://127.0.0.1:{VTCTLD}/", "Keyspace": "commerce", "Shard": "0",
                             "Cells": ["zone1", " ", "zone3"], "TimeoutSecs": 2}}
    psql = {"ProxySQLSettings": {"Addresses": [f"127.0.0.1:{PRIMARY}", PROXYSQL_DEAD], "HostgroupID": 10,
                                 "IgnoreServerTTLSecs": 15}}
    return {
        "ListenPort": DAEMON_PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "MemcacheServers": [f"127.0.0.1:{MEMCACHED}"],
        "MemcachePath": MC_PATH,
        "Stores": {"MySQL": {
            "User": "freno",
            "Password": "freno",
            "ThrottleThreshold": 100000,
            "ProxySQLUser": "freno",
            "ProxySQLPassword": "freno",
            "Clusters": {
                "hap": c(PORT_MAX, **hap(f"127.0.0.1:{HAPROXY_A}", "mysql_ro")),
                "hapmin": c(PORT_MIN, **hap(f"http://127.0.0.1:{HAPROXY_A}/", "mysql_ro")),
                "merge": c(PORT_MAX, **hap(f"127.0.0.1:{HAPROXY_A},http://127.0.0.1:{HAPROXY_B}", "merge")),
                "mergemin": c(PORT_MIN, **hap(f"127.0.0.1:{HAPROXY_A},127.0.0.1:{HAPROXY_B}", "merge")),
                "hapnopool": c(PORT_MAX, **hap(f"127.0.0.1:{HAPROXY_A}", "nope")),
                "hapdown": c(PORT_MAX, **hap(f"127.0.0.1:{NOTHING}", "mysql_ro")),
                "hapempty": c(PORT_MAX, **hap(f"127.0.0.1:{EMPTY_HTTP}", "mysql_ro")),
                "psql": c(PORT_MAX, **psql),
                "psqlmin": c(PORT_MIN, **psql),
                "vt": c(PORT_MAX, **vt),
                "vtmin": c(PORT_MIN, **vt),
                "hc": c(PORT_MAX, HttpCheckPort=HTTPCHECK, HttpCheckPath="/health/mysql",
                        StaticHostsSettings={"Hosts": [f"127.0.0.2:{NOTHING}", f"127.0.0.1:{R2}"]}),
                "hcoff": c(PORT_MAX, HttpCheckPort=-1,
                           StaticHostsSettings={"Hosts": [f"127.0.0.2:{NOTHING}", f"127.0.0.1:{R2}"]}),
                "flip": c("select v from invtest.flip", StaticHostsSettings={"Hosts": [f"127.0.0.1:{PRIMARY}"]}),
            },
        }},
    }


_env = None


def env():
    global _env
    if _env is None:
        _free_ports_check()
        for tool in ("haproxy", "memcached"):
            if shutil.which(tool) is None:
                raise lib.Skip(f"{tool} is not installed")
        e = _Env()
        try:
            e.start_http()
            e.start_memcached()
            e.start_haproxy("a", HAPROXY_A, {"mysql_ro": [R1, R2], "merge": [R1]})
            e.start_haproxy("b", HAPROXY_B, {"merge": [R2]})
            e.vitess_tablets = [
                tablet(100, "zone1", PRIMARY_T, PRIMARY, HEALTHY),
                tablet(101, "zone1", REPLICA_T, R1, HEALTHY),
                tablet(102, "zone3", REPLICA_T, R2),  # no stats: realtime stats off, healthy
                tablet(200, "zone2", REPLICA_T, PRIMARY, HEALTHY),  # cell not configured
                tablet(103, "zone1", RDONLY_T, PRIMARY, HEALTHY),
            ]
            proxysql_setup()
        except BaseException:
            e.close()
            raise
        import atexit
        atexit.register(e.close)
        _env = e
    return _env


def daemon():
    e = env()
    return lib.daemon("inventory", config(str(e.dir)), DAEMON_PORT), e


def metric(d, cluster):
    """The cluster's aggregate as /aggregated-metrics shows it, or None."""
    return d.get_json("/aggregated-metrics")[1].get(f"mysql/{cluster}")


def value(d, cluster):
    v = metric(d, cluster)
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def wait_value(d, cluster, want, timeout=13.0):
    return lib.wait_until(lambda: value(d, cluster), lambda v: v == want, timeout=timeout,
                          what=f"mysql/{cluster} == {want}")


def log_text(d):
    return Path(d.log_path).read_text(errors="replace")


def wait_log(d, pattern, timeout=13.0):
    rx = re.compile(pattern)
    return lib.wait_until(lambda: rx.search(log_text(d)), timeout=timeout, what=f"log line /{pattern}/")


# ---------------------------------------------------------------- tests

def test_initial_inventories():
    """Every source yields its hosts right after start; failing sources are
    logged with their reason and leave the cluster without hosts."""
    d, _ = daemon()
    wait_value(d, "hap", BOTH_MAX)
    wait_value(d, "hapmin", R1_MIN)
    # Merged from two HAProxies: R1 from A, R2 from B.
    wait_value(d, "merge", BOTH_MAX)
    wait_value(d, "mergemin", R1_MIN)
    # ProxySQL: ONLINE R1 and R2 of hostgroup 10 (the primary is in 20, a
    # dead host OFFLINE_HARD), reached after the dead first sorted address.
    wait_value(d, "psql", BOTH_MAX)
    wait_value(d, "psqlmin", R1_MIN)
    # Vitess: the REPLICA tablets of zone1 and zone3; not the PRIMARY, the
    # RDONLY or the zone2 replica (all three on the primary's port).
    wait_value(d, "vt", BOTH_MAX)
    wait_value(d, "vtmin", R1_MIN)
    expect(all(p == "/api/keyspace/commerce/tablets/0?cells=zone1%2Czone3" for p in _env.vitess_paths),
           f"vtctld paths: {set(_env.vitess_paths)}")
    for cluster, why in (("hapnopool", r"pool nope not found"),
                         ("hapdown", r"haproxy GET http://127\.0\.0\.1:%d/;csv;norefresh: " % NOTHING),
                         ("hapempty", r"haproxy GET http://127\.0\.0\.1:%d/;csv;norefresh: empty body" % EMPTY_HTTP)):
        wait_log(d, r"inventory: %s: .*%s.*; keeping the previous 0 host\(s\)" % (cluster, why))
        expect(value(d, cluster) in (None, "error: No hosts found"),
               f"mysql/{cluster} without hosts: {metric(d, cluster)!r}")
    # A failing source is logged once per change, not at every refresh.
    time.sleep(11)
    text = log_text(d)
    for cluster in ("hapnopool", "hapdown", "hapempty"):
        n = len(re.findall(r"inventory: %s: .*keeping the previous" % cluster, text))
        expect_eq(n, 1, f"log lines for the failing {cluster}")


def test_haproxy_states_move_the_probed_set():
    """maint, ready and drain through HAProxy's runtime API."""
    d, e = daemon()
    wait_value(d, "hap", BOTH_MAX)
    srv = f"mysql_ro/127.0.0.1:{R2}"
    try:
        expect_eq(e.haproxy_cmd("a", f"set server {srv} state maint"), "", "set maint")
        expect_eq(e.server_status("a", HAPROXY_A, "mysql_ro", f"127.0.0.1:{R2}"), "MAINT", "status")
        wait_value(d, "hap", ONLY_R1_MAX)
        wait_value(d, "hapmin", R1_MIN, timeout=2)
        e.haproxy_cmd("a", f"set server {srv} state ready")
        lib.wait_until(lambda: e.server_status("a", HAPROXY_A, "mysql_ro", f"127.0.0.1:{R2}"),
                       lambda s: s == "UP", timeout=5, what="R2 UP again in HAProxy")
        wait_value(d, "hap", BOTH_MAX)
        e.haproxy_cmd("a", f"set server {srv} state drain")
        expect_eq(e.server_status("a", HAPROXY_A, "mysql_ro", f"127.0.0.1:{R2}"), "DRAIN", "status")
        wait_value(d, "hap", ONLY_R1_MAX)
    finally:
        e.haproxy_cmd("a", f"set server {srv} state ready")
    wait_value(d, "hap", BOTH_MAX)


def test_haproxy_unreachable_keeps_previous_inventory():
    d, e = daemon()
    wait_value(d, "merge", BOTH_MAX)
    e.stop("b")
    try:
        wait_log(d, r"inventory: merge: haproxy GET http://127\.0\.0\.1:%d/;csv;norefresh: .*keeping the previous 2 host\(s\)" % HAPROXY_B)
        # Still both hosts (R2 came only from B) a refresh later.
        time.sleep(1)
        expect_eq(value(d, "merge"), BOTH_MAX, "mysql/merge while HAProxy B is down")
        expect_eq(value(d, "mergemin"), R1_MIN, "mysql/mergemin while HAProxy B is down")
    finally:
        e.start_haproxy("b", HAPROXY_B, {"merge": [R2]})
    wait_log(d, r"inventory: merge: haproxy source answers again, 2 host\(s\)")


def test_proxysql_status_rules_and_ignore_ttl():
    d, _ = daemon()
    wait_value(d, "psql", BOTH_MAX)
    try:
        # Lagging servers are still probed.
        proxysql_status(R2, "SHUNNED_REPLICATION_LAG")
        proxysql_status(R1, "SHUNNED_REPLICATION_LAG")
        time.sleep(11)
        expect_eq(value(d, "psql"), BOTH_MAX, "mysql/psql with lagging servers")
        expect_eq(value(d, "psqlmin"), R1_MIN, "mysql/psqlmin with lagging servers")
        # SHUNNED: out, and ignored for 15 s even when ONLINE again at once.
        proxysql_status(R1, "ONLINE")
        proxysql_status(R2, "SHUNNED")
        wait_value(d, "psql", ONLY_R1_MAX)
        gone = time.monotonic()
        proxysql_status(R2, "ONLINE")
        wait_value(d, "psql", BOTH_MAX, timeout=25)
        back = time.monotonic() - gone
        expect(back >= 13.0, f"R2 probed again {back:.1f}s after it left; the ignore TTL is 15 s")
    finally:
        proxysql_status(R1, "ONLINE")
        proxysql_status(R2, "ONLINE")


def test_vitess_tablets():
    d, e = daemon()
    wait_value(d, "vt", BOTH_MAX)
    # R2's tablet reports replication broken: not serveable.
    e.vitess_tablets[2]["stats"] = BROKEN
    wait_value(d, "vt", ONLY_R1_MAX)
    # vtctld failing: the previous inventory stays.
    e.vitess_status = 500
    wait_log(d, r"inventory: vt: vitess GET http://127\.0\.0\.1:%d/api/keyspace/commerce/tablets/0\?cells=zone1%%2Czone3: HTTP status 500; keeping the previous 1 host\(s\)" % VTCTLD)
    expect_eq(value(d, "vt"), ONLY_R1_MAX, "mysql/vt while vtctld fails")
    e.vitess_status = 200
    e.vitess_tablets[2]["stats"] = {"realtime": {}}
    wait_value(d, "vt", BOTH_MAX)


def test_http_check_404_leaves_host_out():
    d, _ = daemon()
    # 127.0.0.2 refuses MySQL but answers its HTTP check with 404: left out.
    wait_value(d, "hc", BOTH_MAX, timeout=15)
    # Without HTTP checks the same hosts give a connection error.
    v = metric(d, "hcoff")
    expect(isinstance(v, str) and v.startswith("error:"), f"mysql/hcoff: {v!r}")
    # /debug/vars is rebuilt every second.
    lib.wait_until(lambda: d.get_json("/debug/vars")[1],
                   lambda dv: all(dv[n] > 0 for n in ("httpcheck.200", "httpcheck.404", "httpcheck.skip")),
                   timeout=3, what="httpcheck.200, .404 and .skip counted")


def test_memcache_values_expiry_and_deletion():
    d, e = daemon()
    wait_value(d, "flip", 0.5)
    key = f"{MC_PATH}/mysql/flip"
    v = lib.wait_until(lambda: mc_get(key), timeout=5, what=f"memcache {key}")
    m = re.fullmatch(r"(\d{13}):(\d+\.\d{6})", v)
    expect(m is not None, f"memcache value format: {v!r}")
    expect_eq(m.group(2), "0.500000", "memcache value")
    expect(abs(int(m.group(1)) / 1000 - time.time()) < 2, f"epoch millis {m.group(1)} not recent")
    lib.wait_until(lambda: mc_get(f"{MC_PATH}/mysql/hap"), lambda x: x and x.endswith(f":{R2}.000000"),
                   timeout=5, what="mysql/hap published too")
    expect(mc_get(f"{MC_PATH}/mysql/hcoff") is None, "an error aggregate has no key")
    # The aggregate turns into an error: the key is deleted at once.
    lib.sql(PRIMARY, "SET SESSION sql_log_bin = 0; DROP TABLE invtest.flip")
    try:
        lib.wait_until(lambda: mc_get(key), lambda x: x is None, timeout=3, what="key deleted")
    finally:
        lib.sql(PRIMARY, "SET SESSION sql_log_bin = 0; CREATE TABLE IF NOT EXISTS invtest.flip (v DOUBLE);"
                         " INSERT INTO invtest.flip VALUES (0.25)")
    lib.wait_until(lambda: mc_get(key), lambda x: x is not None and x.endswith(":0.250000"), timeout=5,
                   what="key set again")
    # memcached down: checks stay fast, the failure is logged once, and
    # publishing resumes when it is back.
    e.stop("memcached")
    try:
        t0 = time.monotonic()
        for _ in range(20):
            expect_eq(d.get("/check/inv/mysql/flip")[0], 200, "check while memcached is down")
        per = (time.monotonic() - t0) / 20
        expect(per < 0.1, f"checks took {per * 1000:.0f} ms each with memcached down")
        wait_log(d, r"memcache: \d+ of \d+ writes failed")
        time.sleep(2)
        expect(len(re.findall(r"memcache: \d+ of \d+ writes failed", log_text(d))) <= 2,
               "memcache failure logged once per change")
    finally:
        e.start_memcached()
    lib.wait_until(lambda: mc_get(key), timeout=8, what="published again after memcached restart")
    wait_log(d, r"memcache: writes succeed again")
    # Values expire 1 s after the last write: stop the daemon and look.
    lib.stop_daemon("inventory")
    time.sleep(2.2)
    expect(mc_get(key) is None, "key expired after the daemon stopped")
