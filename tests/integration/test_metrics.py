# SPDX-License-Identifier: MIT
"""Several metrics per cluster, IgnoreHostsPercent, reasons and Retry-After
(docs/config.md#metrics, docs/api.md#check-details) against the MariaDB
topology of scripts/topology.sh.

The "knob" metric reads meta.freno_knob on each replica. The row comes from
the primary; each replica then changes it locally with sql_log_bin=0, so
the metric goes over its threshold on one replica while the other stays
under, deterministically. Clusters of 10 and 25 hosts reach the two replicas
through TCP relays on other loopback addresses (127.0.1.n), since the
topology listens on 127.0.0.1 only.

Every wait has a deadline; a test never sleeps and hopes."""

import re
import selectors
import shutil
import socket
import subprocess
import threading

import lib
from lib import PRIMARY, R1, R2, REPLICAS, expect, expect_eq, wait_until

PORT = 13386
APP = "it-metrics"
KNOB_QUERY = "select v from meta.freno_knob where id = 1"
KNOB_THRESHOLD = 50
BAD, GOOD = 100, 0
# Relayed hosts: 127.0.1.n:R1 for n in 1..3 (bad), 127.0.1.n:R2 for n in 1..25 (good).
RELAY_NET = "127.0.1"


def relayed(n, port):
    return f"{RELAY_NET}.{n}:{port}"


def percent_cluster(hosts, percent):
    return {"MetricQuery": KNOB_QUERY, "ThrottleThreshold": KNOB_THRESHOLD,
            "IgnoreHostsPercent": percent, "CacheMillis": 200,
            "StaticHostsSettings": {"Hosts": hosts}}


def config():
    local = [f"127.0.0.1:{R1}", f"127.0.0.1:{R2}"]
    return {
        "ListenPort": PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "MemcacheServers": [f"127.0.0.1:{lib.MEMCACHED_PORT}"],
        "Stores": {"MySQL": {
            "User": "freno",
            "Password": "freno",
            "ThrottleThreshold": 1.0,
            "Metrics": {"threads": {"Query": lib.THREADS_QUERY, "Threshold": 1000}},
            "Clusters": {
                # lag, threads_running (inherited) and the knob
                "multi": {"MetricQuery": lib.LAG_QUERY,
                          "Metrics": {"knob": {"Query": KNOB_QUERY, "Threshold": KNOB_THRESHOLD}},
                          "StaticHostsSettings": {"Hosts": local}},
                # no Metrics at all: answers exactly as the original
                "plain": {"MetricQuery": lib.LAG_QUERY, "Metrics": {"threads": None},
                          "StaticHostsSettings": {"Hosts": local}},
                # 3 hosts, 50 %: floor(1.5) = 1 host may be left out
                "pct3one": percent_cluster([f"127.0.0.1:{R1}", f"127.0.0.1:{R2}", f"[::1]:{R2}"], 50),
                "pct3two": percent_cluster([f"127.0.0.1:{R1}", f"[::1]:{R1}", f"127.0.0.1:{R2}"], 50),
                # 3 hosts, 33 %: floor(0.99) = 0
                "pct3none": percent_cluster([f"127.0.0.1:{R1}", f"127.0.0.1:{R2}", f"[::1]:{R2}"], 33),
                # 10 hosts, 25 %: floor(2.5) = 2
                "pct10two": percent_cluster([relayed(n, R1) for n in (1, 2)] +
                                            [relayed(n, R2) for n in range(3, 11)], 25),
                "pct10three": percent_cluster([relayed(n, R1) for n in (1, 2, 3)] +
                                              [relayed(n, R2) for n in range(4, 11)], 25),
                # 25 hosts, 10 %: floor(2.5) = 2
                "pct25two": percent_cluster([relayed(n, R1) for n in (1, 2)] +
                                            [relayed(n, R2) for n in range(3, 26)], 10),
                "pct25three": percent_cluster([relayed(n, R1) for n in (1, 2, 3)] +
                                              [relayed(n, R2) for n in range(4, 26)], 10),
            },
        }},
    }


# ---------------------------------------------------------------- the knob

def knob_setup():
    """Creates meta.freno_knob on the primary and waits for both replicas."""
    lib.sql(PRIMARY, "CREATE TABLE IF NOT EXISTS meta.freno_knob (id INT PRIMARY KEY, v DOUBLE NOT NULL); "
                     "INSERT IGNORE INTO meta.freno_knob VALUES (1, 0)")
    for port in REPLICAS:
        wait_until(lambda p=port: lib.sql(p, "SELECT COUNT(*) FROM meta.freno_knob"),
                   lambda rows: rows == [["1"]], timeout=10, what=f"meta.freno_knob on {port}")


def set_knob(port, value):
    """Sets the knob on one replica only (not written to its binary log)."""
    lib.sql(port, f"SET SESSION sql_log_bin = 0; UPDATE meta.freno_knob SET v = {value} WHERE id = 1")
    expect_eq(lib.sql(port, "SELECT v FROM meta.freno_knob WHERE id = 1"), [[str(value)]],
              f"knob on {port}")


def reset_knobs():
    for port in REPLICAS:
        set_knob(port, GOOD)


# ---------------------------------------------------------------- relays

class Relays:
    """TCP relays, one thread for all: each (address, port) listens and
    forwards every connection to 127.0.0.1:target."""

    def __init__(self, pairs):
        self.sel = selectors.DefaultSelector()
        self.listeners = []
        self.peer = {}
        self.stop = False
        for addr, port, target in pairs:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            s.listen(64)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, ("listen", target))
            self.listeners.append(s)
        self.wake_r, self.wake_w = socket.socketpair()
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _drop(self, s):
        for x in (s, self.peer.pop(s, None)):
            if x is None:
                continue
            self.peer.pop(x, None)
            try:
                self.sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()

    def _run(self):
        while not self.stop:
            for key, _ in self.sel.select(timeout=0.5):
                kind, target = key.data
                s = key.fileobj
                if kind == "wake":
                    return
                if kind == "listen":
                    try:
                        c, _ = s.accept()
                    except OSError:
                        continue
                    try:
                        u = socket.create_connection(("127.0.0.1", target), timeout=2)
                    except OSError:
                        c.close()
                        continue
                    for x in (c, u):
                        x.setblocking(False)
                        self.sel.register(x, selectors.EVENT_READ, ("pipe", None))
                    self.peer[c], self.peer[u] = u, c
                    continue
                if s not in self.peer:
                    continue
                try:
                    data = s.recv(65536)
                    if data:
                        self.peer[s].setblocking(True)
                        self.peer[s].sendall(data)
                        self.peer[s].setblocking(False)
                        continue
                except OSError:
                    pass
                self._drop(s)

    def close(self):
        self.stop = True
        self.wake_w.send(b"x")
        self.thread.join(timeout=5)
        for s in list(self.peer):
            if s.fileno() != -1:
                s.close()
        for s in self.listeners:
            s.close()
        self.wake_r.close()
        self.wake_w.close()
        self.sel.close()


_relays = None


def relays():
    global _relays
    if _relays is None:
        pairs = [(f"{RELAY_NET}.{n}", R1, R1) for n in (1, 2, 3)]
        pairs += [(f"{RELAY_NET}.{n}", R2, R2) for n in range(1, 26)]
        _relays = Relays(pairs)
    return _relays


def close_relays():
    global _relays
    if _relays is not None:
        _relays.close()
        _relays = None


# ---------------------------------------------------------------- helpers

def ready():
    """The daemon of this file, knobs at 0, the multi cluster answering 200."""
    knob_setup()
    reset_knobs()
    relays()
    d = lib.daemon("metrics", config(), PORT)
    wait_check(d, f"/check/{APP}/mysql/multi", 200, timeout=15)
    return d


def wait_check(d, path, status, timeout=10.0, cond=None, what=None):
    return wait_until(lambda: d.get_json(path),
                      lambda r: r[0] == status and (cond is None or cond(r[1])),
                      timeout=timeout, interval=0.05,
                      what=what or f"GET {path} to answer {status}")


def metric_entry(body, name):
    """The entry of metric @name in a check body's Metrics list."""
    for m in body["Metrics"]:
        if m["Metric"] == name:
            return m
    raise lib.TestFailure(f"no metric {name!r} in {body!r}")


def finish(d):
    """Undoes what a test changed on the replicas and the daemon."""
    reset_knobs()
    lib.stop_daemon("metrics")
    close_relays()


# ---------------------------------------------------------------- several metrics

def test_metric_over_threshold_on_one_replica():
    d = ready()
    try:
        status, body = d.get_json(f"/check/{APP}/mysql/multi")
        expect_eq(status, 200, f"all metrics under their thresholds (body {body!r})")
        expect_eq([m["Metric"] for m in body["Metrics"]], ["default", "knob", "threads"],
                  "metrics of multi, MetricQuery's first, then by name")
        expect_eq(body["Metric"], "default", "the original fields show MetricQuery's metric on 200")
        expect_eq(body["Reason"], "", "no reason on 200")
        expect(body["Value"] < 1, f"lag Value: {body!r}")

        set_knob(R1, BAD)
        status, body = wait_check(d, f"/check/{APP}/mysql/multi", 429,
                                  what="the knob over its threshold on R1 to refuse the cluster")
        expect_eq((body["Metric"], body["Value"], body["Threshold"], body["Message"]),
                  ("knob", BAD, KNOB_THRESHOLD, "Threshold exceeded"), "the original fields show the knob")
        knob = metric_entry(body, "knob")
        expect_eq((knob["StatusCode"], knob["Value"], knob["Host"]), (429, BAD, f"127.0.0.1:{R1}"),
                  "the knob's entry names R1")
        expect_eq(metric_entry(body, "default")["StatusCode"], 200, "lag stays under its threshold")
        expect(f"127.0.0.1:{R1}" in body["Reason"] and "mysql/multi/knob" in body["Reason"],
               f"Reason: {body['Reason']!r}")

        # One metric alone.
        status, body = d.get_json(f"/check/{APP}/mysql/multi?metric=default")
        expect_eq(status, 200, f"?metric=default while the knob is over (body {body!r})")
        expect_eq([m["Metric"] for m in body["Metrics"]], ["default"], "one metric listed")
        status, body = d.get_json(f"/check/{APP}/mysql/multi?metric=knob")
        expect_eq(status, 429, f"?metric=knob (body {body!r})")
        status, body = d.get_json(f"/check/{APP}/mysql/multi?metric=nope")
        expect_eq((status, body["Message"]), (404, "No such metric"), f"?metric=nope (body {body!r})")
        status, _ = d.get_json(f"/check-if-exists/{APP}/mysql/multi?metric=nope")
        expect_eq(status, 200, "/check-if-exists of a metric the cluster does not have")
        # /check-read's threshold replaces the threshold of the metric read.
        status, body = d.get_json(f"/check-read/{APP}/mysql/multi/150?metric=knob")
        expect_eq((status, body["Threshold"]), (200, 150), f"check-read of the knob at 150 (body {body!r})")
        status, body = d.get_json(f"/check-read/{APP}/mysql/multi/150")
        expect_eq(status, 429, f"check-read without ?metric= keeps the knob's threshold (body {body!r})")

        # The other replica now: the host follows.
        set_knob(R2, 70)
        set_knob(R1, GOOD)
        status, body = wait_check(d, f"/check/{APP}/mysql/multi", 429,
                                  cond=lambda b: metric_entry(b, "knob")["Host"] == f"127.0.0.1:{R2}",
                                  what="the knob's worst host to become R2")
        expect_eq(metric_entry(body, "knob")["Value"], 70, "knob value from R2")

        # Every listing shows the extra metrics.
        status, agg = d.get_json("/aggregated-metrics")
        expect_eq(agg.get("mysql/multi/knob"), "70.000000", f"/aggregated-metrics: {agg!r}")
        expect("mysql/multi/threads" in agg and "mysql/multi" in agg and "mysql/plain/threads" not in agg,
               f"/aggregated-metrics: {agg!r}")
        _, health = d.get_json("/metrics-health")
        expect("mysql/multi/threads" in health and "mysql/multi" in health,
               f"/metrics-health: {health!r}")
        # The renderings follow within a second.
        want = ['freno_store_metric_value{store="multi",metric="knob"} 70\n',
                f'freno_host_metric_value{{store="multi",metric="knob",host="127.0.0.1:{R2}"}} 70\n']
        text = wait_until(lambda: d.get("/metrics")[1].decode(), lambda t: all(w in t for w in want),
                          timeout=5, what="the knob of R2 in /metrics")
        if shutil.which("promtool"):
            out = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                                 capture_output=True, timeout=60)
            expect_eq(out.returncode, 0, f"promtool check metrics: {out.stdout + out.stderr!r}")
        wait_until(lambda: d.get_json("/debug/vars")[1], lambda v: v.get("aggregated.mysql.multi/knob") == 70,
                   timeout=5, what="aggregated.mysql.multi/knob in /debug/vars")
        v = wait_until(lambda: lib.memcache_get("freno/mysql/multi/knob"),
                       lambda x: x is not None and x.endswith(":70.000000"), timeout=5,
                       what="freno/mysql/multi/knob in memcached")
        expect(re.fullmatch(r"\d+:70\.000000", v), f"memcache value {v!r}")

        set_knob(R2, GOOD)
        wait_check(d, f"/check/{APP}/mysql/multi", 200, what="the knob back under its threshold")
    finally:
        finish(d)


def test_no_new_fields_without_metrics():
    d = ready()
    try:
        set_knob(R1, BAD)
        wait_check(d, f"/check/{APP}/mysql/multi", 429)
        for path in (f"/check/{APP}/mysql/plain", f"/check-if-exists/{APP}/mysql/plain",
                     f"/check/{APP}/mysql/nope", f"/check-read/{APP}/mysql/plain/0.000001"):
            status, headers, body = lib.http("GET", d.url(path))
            parsed = lib.parse_json(body)
            expect_eq(sorted(parsed), ["Message", "StatusCode", "Threshold", "Value"],
                      f"GET {path}: keys of {body!r}")
            expect("retry-after" not in headers, f"GET {path} ({status}): Retry-After without new keys")
        expect_eq(lib.http("GET", d.url(f"/check/{APP}/mysql/plain/0.000001"))[0], 404,
                  "a route with a fifth segment is not a check")
    finally:
        finish(d)


# ---------------------------------------------------------------- Retry-After

def expect_retry_after(d, path, status, want, what):
    """GET and HEAD of @path answer @status with Retry-After in @want (a range)."""
    for method in ("GET", "HEAD"):
        got, headers, body = lib.http(method, d.url(path))
        expect_eq(got, status, f"{method} {path}: {what} (body {body!r})")
        ra = headers.get("retry-after")
        expect(ra is not None and ra.isdigit() and int(ra) in want,
               f"{method} {path}: {what}: Retry-After {ra!r}, want {min(want)}..{max(want)}")
        if method == "HEAD":
            expect_eq(body, b"", f"HEAD {path} has no body")


def test_retry_after_on_417_and_429_get_and_head():
    d = ready()
    app = APP + "-ra"
    try:
        # 429: the knob's interval (no CacheMillis): 1 s.
        set_knob(R1, BAD)
        wait_check(d, f"/check/{app}/mysql/multi", 429)
        expect_retry_after(d, f"/check/{app}/mysql/multi", 429, range(1, 2), "metric over its threshold")
        expect_retry_after(d, f"/check/{app}/mysql/multi?metric=knob", 429, range(1, 2), "one metric")
        # 417 with a TTL: the seconds it has left, rounded up (10 minutes).
        status, body = d.get_json(f"/throttle-app/{app}/ttl/10")
        expect_eq((status, body), (200, {"StatusCode": 200, "Message": "OK"}), "throttle-app")
        expect_retry_after(d, f"/check/{app}/mysql/multi", 417, range(590, 601), "throttled for 10 minutes")
        status, body = d.get_json(f"/check/{app}/mysql/multi")
        expect_eq(body["Throttle"]["Key"], app, f"Throttle: {body!r}")
        expect_eq(body["Throttle"]["Ratio"], 1, f"Throttle: {body!r}")
        expect(590 <= lib.seconds_from_now(body["Throttle"]["ExpireAt"]) <= 601, f"ExpireAt: {body!r}")
        expect(f"app {app} is throttled by an operator" in body["Reason"], f"Reason: {body!r}")
        # A ratio below 1: a later check may pass, come back in a second.
        d.get_json(f"/throttle-app/{app}/ratio/0.9")
        seen = wait_until(lambda: lib.http("GET", d.url(f"/check/{app}/mysql/multi")),
                          lambda r: r[0] == 417, timeout=5, what="a ratio 0.9 throttle to deny")
        expect_eq(seen[1].get("retry-after"), "1", "Retry-After of a ratio 0.9 throttle")
        # Low priority while the knob refuses normal checks: the window.
        d.get_json(f"/unthrottle-app/{app}")
        wait_check(d, f"/check/{app}/mysql/multi", 429)
        expect_retry_after(d, f"/check/{app}-low/mysql/multi?p=low", 417, range(1, 2), "low priority")
    finally:
        d.get_json(f"/unthrottle-app/{app}")
        finish(d)


# ---------------------------------------------------------------- IgnoreHostsPercent

def test_ignore_hosts_percent_at_3_hosts():
    d = ready()
    try:
        set_knob(R1, BAD)
        # One bad host of three, 50 %: left out.
        status, body = wait_check(d, f"/check/{APP}/mysql/pct3one", 200, cond=lambda b: b["Value"] == GOOD,
                                  timeout=10, what="pct3one: the one bad host left out")
        # Two bad hosts of three: one is too many.
        wait_check(d, f"/check/{APP}/mysql/pct3two", 429, cond=lambda b: b["Value"] == BAD, timeout=10)
        # 33 % of three hosts is 0.99: none may be left out.
        wait_check(d, f"/check/{APP}/mysql/pct3none", 429, cond=lambda b: b["Value"] == BAD, timeout=10)
        set_knob(R1, GOOD)
        for c in ("pct3one", "pct3two", "pct3none"):
            wait_check(d, f"/check/{APP}/mysql/{c}", 200, timeout=10)
    finally:
        finish(d)


def test_ignore_hosts_percent_at_10_and_25_hosts():
    d = ready()
    try:
        for c in ("pct10two", "pct10three", "pct25two", "pct25three"):
            wait_check(d, f"/check/{APP}/mysql/{c}", 200, timeout=15, what=f"{c} healthy through the relays")
        set_knob(R1, BAD)
        # 25 % of 10 and 10 % of 25 are both 2.5: two bad hosts are left out,
        # three are not. Wait until every bad host's probe has seen the knob.
        def bad_seen():
            _, text = d.get("/metrics")
            return text.decode()
        for c, hosts in (("pct10two", 2), ("pct10three", 3), ("pct25two", 2), ("pct25three", 3)):
            want = [f'freno_host_value{{store="{c}",host="{relayed(n, R1)}"}} {BAD}\n'
                    for n in range(1, hosts + 1)]
            wait_until(bad_seen, lambda t, w=want: all(x in t for x in w), timeout=10,
                       what=f"{c}: every bad host probed at {BAD}")
        for c in ("pct10three", "pct25three"):
            wait_check(d, f"/check/{APP}/mysql/{c}", 429, timeout=10,
                       cond=lambda b: b["Value"] == BAD, what=f"{c}: three bad hosts are one too many")
        for c in ("pct10two", "pct25two"):
            status, body = d.get_json(f"/check/{APP}/mysql/{c}")
            expect_eq((status, body["Value"]), (200, GOOD), f"{c}: two bad hosts left out (body {body!r})")
        set_knob(R1, GOOD)
        for c in ("pct10three", "pct25three"):
            wait_check(d, f"/check/{APP}/mysql/{c}", 200, timeout=10)
    finally:
        finish(d)
