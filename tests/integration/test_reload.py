# SPDX-License-Identifier: MIT
"""Live reload (SIGHUP), with the service manager played by a datagram
socket in NOTIFY_SOCKET as in test_service.py:

- a reload that adds a cluster, removes one and changes a threshold while
  /check is hammered on an unchanged cluster: not one answer there but 200,
  the unchanged cluster's MySQL connections are the same server threads
  before and after, the new cluster answers, the removed one is gone from
  checks, /metrics and memcache, the changed one follows its new threshold,
  an app throttle and leadership stay, a key that needs a restart is logged
  and keeps its value, ControlToken changes at once, and the notify socket
  hears RELOADING=1 then READY=1;
- a changed login gives a cluster's hosts new connections;
- a config with a syntax error, and one with a semantic error, are rejected
  with the very lines a start with them logs, and the old config serves on.

Each probe login is a user of its own (created on the replicas without
binlog), so the server's processlist tells one cluster's connections from
every other daemon's. Every wait has a deadline."""

import http.client as httpclient
import json
import re
import signal
import socket
import subprocess
import threading
import time

import lib
from lib import R1, R2, REPLICAS, THREADS_QUERY, expect, expect_eq, wait_until
from test_service import PORT, Service, is_ready, own_daemon

APP = "it-reload"
LOAD_APP = "it-reload-load"
USERS = ("freno_reload", "freno_reload2", "freno_reload3")
HAPROXY_STATS = 13378  # the stats page of this file's HAProxy (pool "ro": both replicas)
MEMCACHE_PATH = "itreload"


def create_users():
    for port in REPLICAS:
        stmts = ["SET SESSION sql_log_bin = 0"]
        for u in USERS:
            for host in ("%", "localhost"):
                stmts += [f"CREATE USER IF NOT EXISTS '{u}'@'{host}' IDENTIFIED BY '{u}'",
                          f"GRANT PROCESS, REPLICATION CLIENT ON *.* TO '{u}'@'{host}'",
                          f"GRANT SELECT ON meta.* TO '{u}'@'{host}'"]
        lib.sql(port, "; ".join(stmts))


def thread_ids(user):
    """The server threads (connection ids) of @user on each replica."""
    ids = set()
    for port in REPLICAS:
        for row in lib.sql(port, "SELECT id FROM information_schema.processlist "
                                 f"WHERE user = '{user}'"):
            ids.add((port, int(row[0])))
    return ids


def hap():
    """A cluster whose hosts come from HAProxy, with a login of its own."""
    return {"MetricQuery": THREADS_QUERY, "ThrottleThreshold": 1000, "User": USERS[2],
            "Password": USERS[2],
            "HAProxySettings": {"Host": "127.0.0.1", "Port": HAPROXY_STATS, "PoolName": "ro"}}


def hang():
    """A cluster whose HAProxy never answers: a reload always finds its
    inventory request in flight, and abandons it."""
    return {"MetricQuery": THREADS_QUERY,
            "HAProxySettings": {"Host": "127.0.0.1", "Port": lib.BLACKHOLE_PORT, "PoolName": "ro"}}


def threads_cluster(hosts, threshold=1000, **settings):
    return lib.cluster(hosts, query=THREADS_QUERY, ThrottleThreshold=threshold, **settings)


def base_config(clusters, **extra):
    cfg = {
        "ListenPort": PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "MemcacheServers": [f"127.0.0.1:{lib.MEMCACHED_PORT}"],
        "MemcachePath": MEMCACHE_PATH,
        "ControlToken": "one",
        "Stores": {"MySQL": {"User": "freno", "Password": "freno", "ThrottleThreshold": 1.0,
                             "Clusters": clusters}},
    }
    cfg.update(extra)
    return cfg


def steady():
    """The cluster that never changes: both replicas, its own login."""
    return threads_cluster(REPLICAS, User=USERS[0], Password=USERS[0])


def write_config(s, cfg):
    s.config_path.write_text(json.dumps(lib._substitute(cfg, str(s.workdir)), indent=2))


def check(s, cluster, app="it-reload-probe"):
    return s.get(f"/check/{app}/mysql/{cluster}")[0]


def reload(s, what):
    """SIGHUP; waits for RELOADING=1 then READY=1 on the notify socket and
    for @what (a regex) in the log. Returns the log text after the signal."""
    n = len(s.notify.poll())
    offset = len(s.log_text())
    s.proc.send_signal(signal.SIGHUP)
    j, _ = s.notify.wait_for(lambda m: m.startswith("RELOADING=1"), 10, "RELOADING=1", start=n)
    s.notify.wait_for(is_ready, 10, "READY=1 after the reload", start=j + 1)
    return wait_until(lambda: s.log_text()[offset:], lambda t: re.search(what, t), timeout=10,
                      what=f"{what!r} in the log")


class CheckLoad:
    """Threads that GET one check path over keep-alive connections as fast
    as they can, counting every answer; anything but 200 (an error or a
    dropped connection included) is remembered."""

    def __init__(self, port, path, threads=2):
        self.port, self.path = port, path
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.count = 0
        self.bad = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        conn = None
        while not self.stop_flag.is_set():
            try:
                if conn is None:
                    conn = httpclient.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", self.path)
                resp = conn.getresponse()
                body = resp.read()
                status = resp.status
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, httpclient.HTTPException) as e:
                status, body = None, repr(e).encode()
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.count += 1
                if status != 200 and len(self.bad) < 20:
                    self.bad.append((status, body[:200]))
        if conn is not None:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(10)

    def snapshot(self):
        with self.lock:
            return self.count, list(self.bad)


def memcache_delete(key):
    with socket.create_connection(("127.0.0.1", lib.MEMCACHED_PORT), timeout=2) as sock:
        sock.sendall(f"delete {key}\r\n".encode())
        sock.recv(64)


def control(s, path, token):
    status, _, body = lib.http("GET", s.base + path, {"X-Freno-Token": token})
    return status


# ---------------------------------------------------------------- tests

def test_reload_clusters_under_check_load():
    own_daemon()
    create_users()
    clusters = {
        "steady": steady(),
        "hap": hap(),
        "hang": hang(),
        "gone": threads_cluster([R2]),
        "thr": threads_cluster([R1]),
    }
    s = Service("reload", base_config(clusters))
    haproxy = None
    try:
        haproxy = lib.start_haproxy_stats(s.workdir, HAPROXY_STATS, REPLICAS)
        s.notify.wait_for(is_ready, 20, "READY=1")
        for c in ("steady", "hap", "gone", "thr"):
            wait_until(lambda c=c: check(s, c), lambda st: st == 200, timeout=10,
                       what=f"/check on {c} to answer 200")
        wait_until(lambda: lib.memcache_get(f"{MEMCACHE_PATH}/mysql/gone"), timeout=5,
                   what="memcache to hold the cluster that goes")
        expect_eq(control(s, f"/throttle-app/{APP}?ttl=60", "one"), 200, "throttle-app with the token")
        expect_eq(check(s, "steady", APP), 417, "a check of the throttled app")
        before = wait_until(lambda: thread_ids(USERS[0]), lambda ids: len(ids) == 2, timeout=10,
                            what="one connection of the steady cluster per replica")
        hap_before = wait_until(lambda: thread_ids(USERS[2]), lambda ids: len(ids) == 2, timeout=15,
                                what="one connection of the HAProxy cluster per replica")

        with CheckLoad(PORT, f"/check/{LOAD_APP}/mysql/steady") as load, \
                CheckLoad(PORT, f"/check/{LOAD_APP}/mysql/hap") as hap_load:
            wait_until(lambda: load.snapshot()[0], lambda n: n >= 50, timeout=10,
                       what="the check load to get going")
            start_count = load.snapshot()[0]
            clusters2 = {
                "steady": steady(),
                "hap": hap(),
                "hang": hang(),
                "thr": threads_cluster([R1], threshold=0.5),
                "fresh": threads_cluster([R2]),
            }
            write_config(s, base_config(clusters2, ControlToken="two", HttpIdleTimeoutSecs=31))
            text = reload(s, r"reload: 1 cluster added, 1 removed, 1 changed, 1 key changed, "
                             r"1 key needs a restart")
            expect("reload: HttpIdleTimeoutSecs changed and needs a restart; the running value stays"
                   in text, f"the needs-a-restart line; log:\n{text}")
            expect("reload: ControlToken changed" in text, f"the ControlToken line; log:\n{text}")
            for line in ("reload: cluster fresh added", "reload: cluster gone removed",
                         "reload: cluster thr changed"):
                expect(line in text, f"{line!r} in the log:\n{text}")
            for name in ("steady", "hap"):
                expect(f"mysql/{name}" not in text and f"cluster {name}" not in text,
                       f"the unchanged cluster {name} is not mentioned:\n{text}")

            wait_until(lambda: check(s, "fresh"), lambda st: st == 200, timeout=10,
                       what="the added cluster to answer 200")
            expect_eq(check(s, "gone"), 404, "a check of the removed cluster")
            wait_until(lambda: check(s, "thr"), lambda st: st == 429, timeout=10,
                       what="the changed threshold to throttle")
            # Let the load run on past the reload for a while.
            reloaded_at = time.monotonic()
            wait_until(lambda: load.snapshot()[0], lambda n: n >= start_count + 300, timeout=20,
                       what="300 more checks after the reload")
            wait_until(time.monotonic, lambda t: t >= reloaded_at + 2, timeout=5,
                       what="two seconds of load after the reload")
        for name, lo in (("steady", load), ("hap", hap_load)):
            count, bad = lo.snapshot()
            expect(count >= 350, f"only {count} checks under load on {name}")
            expect(not bad, f"{len(bad)} of {count} checks on the unchanged cluster {name} failed: {bad}")

        expect_eq(thread_ids(USERS[0]), before, "the steady cluster's server threads after the reload")
        # The inventory starts again on reload and reads HAProxy at once: the
        # same hosts, so the same connections.
        since_reload = lambda: s.log_text().split("reload: 1 cluster added", 1)[1]  # noqa: E731
        wait_until(lambda: "inventory: hap: 2 host(s) from haproxy" in since_reload(), timeout=10,
                   what="HAProxy read again after the reload")
        expect_eq(thread_ids(USERS[2]), hap_before, "the HAProxy cluster's server threads after the reload")
        expect_eq(check(s, "steady", APP), 417, "the app throttle after the reload")
        expect_eq(s.get("/leader-check")[0], 200, "leadership after the reload")
        status, metrics = s.get("/metrics")
        gauges = [l for l in metrics.decode().splitlines() if l.startswith("freno_store_threshold")]
        expect(status == 200 and any('"fresh"' in l for l in gauges)
               and not any('"gone"' in l for l in gauges), f"/metrics: fresh and not gone: {gauges}")
        # Memcache entries live 1 s unless published again: gone's goes.
        memcache_delete(f"{MEMCACHE_PATH}/mysql/gone")
        memcache_delete(f"{MEMCACHE_PATH}/mysql/steady")
        wait_until(lambda: lib.memcache_get(f"{MEMCACHE_PATH}/mysql/steady"), timeout=5,
                   what="steady published to memcache again")
        wait_until(lambda: lib.memcache_get(f"{MEMCACHE_PATH}/mysql/fresh"), timeout=5,
                   what="fresh published to memcache")
        expect(lib.memcache_get(f"{MEMCACHE_PATH}/mysql/gone") is None,
               "the removed cluster is published to memcache")
        # The new token at once, the old one no more.
        expect_eq(control(s, f"/unthrottle-app/{APP}", "one"), 401, "unthrottle with the old token")
        expect_eq(control(s, f"/unthrottle-app/{APP}", "two"), 200, "unthrottle with the new token")
        expect_eq(check(s, "steady", APP), 200, "a check once unthrottled")
        # The key that needs a restart kept its running value: a reload of
        # the same file again finds it changed again, and nothing else.
        reload(s, r"reload: 0 clusters added, 0 removed, 0 changed, 0 keys changed, "
                  r"1 key needs a restart")

        # A new login: the cluster's hosts are probed over new connections.
        clusters3 = dict(clusters2, steady=threads_cluster(REPLICAS, User=USERS[1], Password=USERS[1]))
        write_config(s, base_config(clusters3, ControlToken="two"))
        reload(s, r"reload: 0 clusters added, 0 removed, 1 changed")
        wait_until(lambda: thread_ids(USERS[1]), lambda ids: len(ids) == 2, timeout=10,
                   what="the new login's connections")
        wait_until(lambda: thread_ids(USERS[0]), lambda ids: not ids, timeout=10,
                   what="the old login's connections to close")
        wait_until(lambda: check(s, "steady"), lambda st: st == 200, timeout=10,
                   what="the steady cluster to answer with its new login")

        # Named tokens change live too, and the audit line names the one used.
        write_config(s, base_config(clusters3, ControlToken="two", ControlTokens={"ops": "three"}))
        reload(s, r"reload: 0 clusters added, 0 removed, 0 changed, 1 key changed")
        expect_eq(control(s, f"/throttle-app/{APP}?ttl=1", "three"), 200, "throttle with a named token")
        wait_until(lambda: s.log_text(), lambda t: 'who="ops"' in t and "throttle-app" in t,
                   timeout=5, what="the audit line naming the ops token")
        write_config(s, base_config(clusters3, ControlToken="two", ControlTokens={"deploy": "four"}))
        reload(s, r"reload: 0 clusters added, 0 removed, 0 changed, 1 key changed")
        expect_eq(control(s, f"/unthrottle-app/{APP}", "three"), 401, "the removed named token")
        expect_eq(control(s, f"/unthrottle-app/{APP}", "four"), 200, "the new named token")
        s.stop()
    finally:
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(10)
        s.close()


def start_time_errors(cfg_path, port):
    """The lines a start with the config at @cfg_path logs about it."""
    out = subprocess.run([str(lib.FRENO_BIN), "--http", "--config", str(cfg_path), "--http-port",
                          str(port)], capture_output=True, text=True, timeout=30,
                         env=lib._env_with_sanitizer_options())
    expect_eq(out.returncode, 1, f"exit status of a start with a bad config ({out.stderr})")
    expect("refusing to start" in out.stderr, f"start refused: {out.stderr}")
    lines = [l[l.index("config "):] for l in out.stderr.splitlines() if "config " in l and
             "refusing" not in l]
    expect(lines, f"no config message at start: {out.stderr}")
    return lines


def test_reload_rejects_a_bad_config():
    own_daemon()
    clusters = {"lag": lib.cluster(REPLICAS), "thr": threads_cluster([R1])}
    good = base_config(clusters)
    s = Service("reload-bad", good)
    try:
        s.notify.wait_for(is_ready, 20, "READY=1")
        for c in clusters:
            wait_until(lambda c=c: check(s, c), lambda st: st == 200, timeout=10,
                       what=f"/check on {c} to answer 200")
        good_text = s.config_path.read_text()

        # A syntax error: the file as the start would read it.
        bad_syntax = good_text.replace('"ControlToken"', '"ControlToken" "x",', 1)
        # A semantic error: a negative threshold, and a cluster with no hosts.
        bad_cfg = base_config(dict(clusters, thr=threads_cluster([R1], threshold=-1),
                                   extra={"MetricQuery": THREADS_QUERY}))
        bad_semantic = json.dumps(lib._substitute(bad_cfg, str(s.workdir)), indent=2)
        for what, text in (("syntax", bad_syntax), ("semantic", bad_semantic)):
            s.config_path.write_text(text)
            expected = start_time_errors(s.config_path, 13379)
            log = reload(s, r"reload: rejected: the configuration has errors; "
                            r"the running configuration stays")
            for line in expected:
                expect(line in log, f"{what} error: the start-time line {line!r} on reload; log:\n{log}")
            expect("reload: 0 clusters" not in log, f"{what} error: nothing applied:\n{log}")
            expect_eq(check(s, "thr"), 200, f"{what} error: the old threshold still serves")
            expect_eq(check(s, "extra"), 404, f"{what} error: no cluster from the bad config")
            expect_eq(check(s, "lag") in (200, 429), True, f"{what} error: lag still served")
        # The good file again: nothing changed.
        s.config_path.write_text(good_text)
        reload(s, r"reload: no change")
        s.stop()
    finally:
        s.close()
