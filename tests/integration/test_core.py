# SPDX-License-Identifier: MIT
"""Integration tests of the throttling core (docs/semantics.md, docs/api.md) against the MariaDB
topology of scripts/topology.sh. Most tests share one daemon (lib.main_config()
lists its clusters); a few start their own with another config.

Every wait has a deadline; a test never sleeps and hopes."""

import http.client
import os
import re
import socket
import time

import lib
from lib import R1, R2, expect, expect_eq, wait_until

APP = "it-app"


# ---------------------------------------------------------------- helpers

def ready():
    """The main daemon, once it answers checks on a healthy cluster."""
    d = lib.main_daemon()
    wait_check(d, f"/check/{APP}/mysql/threads", 200, timeout=10)
    return d


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def wait_check(d, path, status, timeout=10.0, cond=None, what=None):
    """Polls GET @path until it answers @status (and cond(body) holds).
    Returns (status, parsed body)."""
    return wait_until(lambda: d.get_json(path),
                      lambda r: r[0] == status and (cond is None or cond(r[1])),
                      timeout=timeout, interval=0.05,
                      what=what or f"GET {path} to answer {status}")


def expect_check_body(body, status, what):
    """The GET body of a check: {"StatusCode","Value","Threshold","Message"}."""
    expect(isinstance(body, dict), f"{what}: body is not a JSON object: {body!r}")
    for key in ("StatusCode", "Value", "Threshold", "Message"):
        expect(key in body, f"{what}: key {key} missing in {body!r}")
    expect_eq(body["StatusCode"], status, f"{what}: StatusCode")
    expect(is_num(body["Value"]), f"{what}: Value is not a number: {body!r}")
    expect(is_num(body["Threshold"]), f"{what}: Threshold is not a number: {body!r}")
    expect(isinstance(body["Message"], str), f"{what}: Message is not a string: {body!r}")


def expect_ok_body(d, path, what=None):
    """A control or lb request that must answer 200 {"StatusCode":200,"Message":"OK"}."""
    status, body = d.get_json(path)
    expect_eq((status, body), (200, {"StatusCode": 200, "Message": "OK"}), what or f"GET {path}")


def expect_error_body(d, path, mentions=None):
    """A request that must fail with 500 and a message (naming @mentions)."""
    status, body = d.get_json(path)
    expect_eq(status, 500, f"GET {path} status (body {body!r})")
    expect(isinstance(body, dict) and body.get("StatusCode") == 500,
           f"GET {path}: body is not {{StatusCode:500,...}}: {body!r}")
    msg = body.get("Message")
    expect(isinstance(msg, str) and msg.strip() and msg != "OK", f"GET {path}: no error message: {body!r}")
    if mentions:
        expect(mentions.lower() in msg.lower(), f"GET {path}: message {msg!r} does not mention {mentions!r}")
    return msg


def throttled(d):
    status, body = d.get_json("/throttled-apps")
    expect_eq(status, 200, "GET /throttled-apps status")
    expect(isinstance(body, dict), f"/throttled-apps is not an object: {body!r}")
    return body


def skipped(d):
    status, body = d.get_json("/skipped-hosts")
    expect_eq(status, 200, "GET /skipped-hosts status")
    expect(isinstance(body, dict), f"/skipped-hosts is not an object: {body!r}")
    return body


def expect_latency(d, paths, limit_sec, what):
    """Every GET in @paths answers 200 within @limit_sec."""
    worst, worst_path = 0.0, None
    for p in paths:
        t = time.monotonic()
        status, _ = d.get(p, timeout=5)
        dt = time.monotonic() - t
        expect_eq(status, 200, f"{what}: GET {p}")
        if dt > worst:
            worst, worst_path = dt, p
    expect(worst < limit_sec, f"{what}: GET {worst_path} took {worst:.3f}s (limit {limit_sec}s)")


# ---------------------------------------------------------------- basic API shape (docs/api.md#endpoints)

def test_lb_check_endpoints():
    d = ready()
    for p in ("/lb-check", "/_ping", "/status"):
        expect_ok_body(d, p)
        expect_eq(d.head(p), (200, b""), f"HEAD {p}")


def test_leader_check_in_single_node_mode():
    d = ready()
    expect_eq(d.get_json("/leader-check"), (200, "HTTP 200"), "GET /leader-check")
    expect_eq(d.head("/leader-check"), (200, b""), "HEAD /leader-check")


def test_consensus_endpoints():
    d = ready()
    leaders = []
    for p in ("/raft/leader", "/consensus/leader"):
        status, body = d.get_json(p)
        expect_eq(status, 200, f"GET {p} status")
        expect(isinstance(body, str) and body, f"GET {p}: not a non-empty JSON string: {body!r}")
        leaders.append(body)
    expect_eq(leaders[0], leaders[1], "/raft/leader vs /consensus/leader")
    for p in ("/raft/state", "/consensus/state"):
        expect_eq(d.get_json(p), (200, "Leader"), f"GET {p} of a single-node leader")

    status, st = d.get_json("/consensus/status")
    expect_eq(status, 200, "GET /consensus/status status")
    expect(isinstance(st, dict), f"/consensus/status is not an object: {st!r}")
    types = {"ServiceID": str, "Healthy": bool, "IsLeader": bool, "Leader": str, "State": str,
             "Domain": str, "ShareDomain": str, "ShareDomainServices": dict,
             "ShareDomainServicesList": list, "HealthyDomainServicesList": list}
    for key, typ in types.items():
        expect(key in st, f"/consensus/status lacks {key}: {st!r}")
        expect(isinstance(st[key], typ), f"/consensus/status {key} is not {typ.__name__}: {st[key]!r}")
    expect_eq(st["IsLeader"], True, "/consensus/status IsLeader")
    expect_eq(st["Healthy"], True, "/consensus/status Healthy")
    expect_eq(st["Leader"], leaders[0], "/consensus/status Leader vs /consensus/leader")


def test_hostname():
    d = ready()
    expect_eq(d.get_json("/hostname"), (200, socket.gethostname()), "GET /hostname")


def test_help_lists_paths():
    d = ready()
    status, paths = d.get_json("/help")
    expect_eq(status, 200, "GET /help status")
    expect(isinstance(paths, list) and paths, f"/help is not a non-empty array: {paths!r}")
    expect(all(isinstance(p, str) and p.startswith("/") for p in paths), f"/help has non-paths: {paths!r}")
    for p in ("/lb-check", "/leader-check", "/throttled-apps", "/skipped-hosts", "/help"):
        expect(p in paths, f"/help lacks {p}: {paths!r}")
    for prefix in ("/check/", "/check-read/", "/throttle-app/", "/skip-host/"):
        expect(any(p.startswith(prefix) for p in paths), f"/help has no {prefix}... path: {paths!r}")


def test_config_memcache():
    d = ready()
    expect_eq(d.get_json("/config/memcache"),
              (200, {"MemcacheServers": [f"127.0.0.1:{lib.MEMCACHED_PORT}"], "MemcachePath": "freno"}),
              "GET /config/memcache")


def test_head_answers_like_get_without_body():
    d = ready()
    paths = ["/lb-check", "/_ping", "/status", "/leader-check", "/raft/leader", "/raft/state",
             "/consensus/leader", "/consensus/state", "/consensus/status", "/hostname",
             "/aggregated-metrics", "/aggregated-metrics?brief=true", "/metrics-health",
             "/throttled-apps", "/skipped-hosts", "/recent-apps", "/recent-apps/5", "/debug/vars",
             "/debug/metrics", "/help", "/check/head-app/mysql/threads", "/check/head-app/mysql/nosuch",
             "/check/head-app/mysql/busy", "/check/head-app/mysql/down",
             "/check-if-exists/head-app/mysql/nosuch", "/check-read/head-app/mysql/threads/0.5",
             "/check-read-if-exists/head-app/mysql/nosuch/1"]
    for p in paths:
        get_status, _ = d.get(p)
        head_status, body = d.head(p)
        expect_eq(head_status, get_status, f"HEAD {p} vs GET status")
        expect_eq(body, b"", f"HEAD {p} body")


# ---------------------------------------------------------------- checks (docs/api.md#check-decision)

def test_lag_under_threshold_is_200():
    d = ready()
    lib.topology_ready()
    status, body = wait_check(d, f"/check/{APP}/mysql/lag", 200)
    expect_check_body(body, 200, "check lag")
    expect(0 <= body["Value"] < 1.0, f"lag Value should be a small lag, got {body!r}")
    expect_eq(body["Threshold"], 1, "lag Threshold")


def test_ipv6_literal_hosts_are_probed():
    d = ready()
    lib.topology_ready()
    status, body = wait_check(d, f"/check/{APP}/mysql/v6", 200,
                              what="cluster of [::1]:R1 and ::1 (cluster Port R2) to answer 200")
    expect(0 <= body["Value"] < 1.0, f"v6 Value should be a small lag, got {body!r}")
    # Both hosts are probed: stopping R1's SQL thread drives the v6 cluster over.
    lib.stop_sql_thread(R1)
    wait_check(d, f"/check/{APP}/mysql/v6", 429, timeout=10,
               what="v6 cluster to answer 429 once [::1]:R1 lags")
    lib.start_sql_thread(R1)
    wait_check(d, f"/check/{APP}/mysql/v6", 200, timeout=15)


def test_lag_over_threshold_is_429_then_200_and_low_priority_417():
    d = ready()
    lib.topology_ready()
    wait_check(d, f"/check/{APP}/mysql/lag", 200)
    wait_check(d, f"/check/{APP}/mysql/lag?p=low", 200, timeout=3)

    lib.stop_sql_thread(R1)
    status, body = wait_check(d, f"/check/{APP}/mysql/lag", 429, timeout=10,
                              what="lag check to answer 429 after STOP SLAVE SQL_THREAD on R1")
    expect_check_body(body, 429, "check lag over threshold")
    expect(body["Value"] > 1.0, f"429 with Value <= Threshold: {body!r}")
    expect_eq(body["Threshold"], 1, "Threshold")
    expect_eq(body["Message"], "Threshold exceeded", "429 Message")
    expect_eq(d.head(f"/check/{APP}/mysql/lag"), (429, b""), "HEAD check over threshold")

    # A normal app was just throttled on this metric: low priority is denied.
    status, body = d.get_json(f"/check/{APP}/mysql/lag?p=low")
    expect_eq(status, 417, f"low-priority check while over threshold (body {body!r})")
    expect_check_body(body, 417, "low-priority check")
    expect_eq(body["Message"], "App denied", "417 Message")

    # A read check uses the threshold it is given and ignores the configured one.
    status, body = d.get_json(f"/check-read/{APP}/mysql/lag/1000")
    expect_eq(status, 200, f"check-read with threshold 1000 (body {body!r})")
    expect_eq(body["Threshold"], 1000, "check-read Threshold")

    lib.start_sql_thread(R1)
    wait_check(d, f"/check/{APP}/mysql/lag", 200, timeout=10,
               what="lag check back to 200 after START SLAVE SQL_THREAD")
    t0 = time.monotonic()
    wait_check(d, f"/check/{APP}/mysql/lag?p=low", 200, timeout=3,
               what="low-priority check back to 200 once the 1 s memory of a throttled normal app ends")
    expect(time.monotonic() - t0 < 2.5, "low-priority denial outlived the 1 s memory by far")


def test_low_priority_on_metric_over_threshold():
    d = ready()
    # busy: threads_running (>= 1) over threshold 0.5, forever.
    status, body = wait_check(d, f"/check/{APP}/mysql/busy", 429)
    expect_check_body(body, 429, "busy check")
    expect(body["Value"] >= 1 and body["Threshold"] == 0.5, f"busy check: {body!r}")
    status, body = d.get_json(f"/check/{APP}/mysql/busy?p=low")
    expect_eq(status, 417, f"low-priority check on a metric over its threshold (body {body!r})")
    status, body = d.get_json(f"/check/{APP}/mysql/threads?p=low")
    expect_eq(status, 200, f"low-priority check on a healthy metric (body {body!r})")


def test_ignore_hosts_count_and_threshold():
    d = ready()
    lib.topology_ready()
    for c in ("lag", "lagign", "lagthr", "lag1ign"):
        wait_check(d, f"/check/{APP}/mysql/{c}", 200)

    lib.stop_sql_thread(R1)
    # R1 lags between 1 s and 3 s: IgnoreHostsCount drops it; with
    # IgnoreHostsThreshold 3 it is not high enough to be dropped.
    status, body = wait_check(d, f"/check/{APP}/mysql/lag", 429, timeout=10,
                              cond=lambda b: 1.3 <= b["Value"] <= 2.3,
                              what="R1 lag between 1.3 and 2.3 s")
    status, body = d.get_json(f"/check/{APP}/mysql/lagign")
    expect_eq(status, 200, f"IgnoreHostsCount 1 with one lagging replica (body {body!r})")
    expect(body["Value"] < 1.0, f"lagign should report the healthy replica's lag: {body!r}")
    status, body = d.get_json(f"/check/{APP}/mysql/lagthr")
    expect_eq(status, 429, f"IgnoreHostsThreshold 3 with R1 lag < 3 s must not ignore it (body {body!r})")
    expect(body["Value"] > 1.0, f"lagthr Value: {body!r}")
    status, body = d.get_json(f"/check/{APP}/mysql/lag1ign")
    expect_eq(status, 429, f"IgnoreHostsCount never drops the only value (body {body!r})")

    # Above the IgnoreHostsThreshold the lagging host is ignored.
    wait_check(d, f"/check/{APP}/mysql/lag", 429, timeout=10, cond=lambda b: b["Value"] > 3.6,
               what="R1 lag above 3.6 s")
    status, body = d.get_json(f"/check/{APP}/mysql/lagthr")
    expect_eq(status, 200, f"IgnoreHostsThreshold 3 with R1 lag > 3.6 s must ignore it (body {body!r})")
    expect(body["Value"] < 1.0, f"lagthr should report the healthy replica's lag: {body!r}")
    status, body = d.get_json(f"/check/{APP}/mysql/lagign")
    expect_eq(status, 200, f"lagign with R1 far behind (body {body!r})")

    lib.start_sql_thread(R1)
    for c in ("lag", "lagthr", "lag1ign"):
        wait_check(d, f"/check/{APP}/mysql/{c}", 200, timeout=10)


def test_default_metric_stopped_sql_thread_is_500():
    d = ready()
    lib.topology_ready()
    status, body = wait_check(d, f"/check/{APP}/mysql/repl", 200)
    expect_check_body(body, 200, "repl check")
    lib.stop_sql_thread(R1)
    status, body = wait_check(d, f"/check/{APP}/mysql/repl", 500, timeout=5,
                              what="default metric (Seconds_Behind_Master NULL) to answer 500")
    expect_check_body(body, 500, "repl check with SQL thread stopped")
    expect("replication not running" in body["Message"], f"500 Message: {body['Message']!r}")
    lib.start_sql_thread(R1)
    wait_check(d, f"/check/{APP}/mysql/repl", 200, timeout=10)


def test_threads_running_metric():
    d = ready()
    status, body = wait_check(d, f"/check/{APP}/mysql/threads", 200)
    expect_check_body(body, 200, "threads check")
    expect(1 <= body["Value"] < 1000, f"threads_running Value: {body!r}")
    expect_eq(body["Threshold"], 1000, "threads Threshold")


def test_bad_metric_queries_are_500():
    d = ready()
    for c in ("null", "text", "rows", "norow", "unsupported"):
        status, body = wait_check(d, f"/check/{APP}/mysql/{c}", 500, timeout=5,
                                  what=f"cluster {c} (bad MetricQuery) to answer 500")
        expect_check_body(body, 500, f"cluster {c}")
        expect(body["Message"].strip(), f"cluster {c}: empty Message: {body!r}")
    status, body = d.get_json(f"/check/{APP}/mysql/unsupported")
    expect("Unsupported metrics query type" in body["Message"], f"unsupported query Message: {body!r}")


def test_refused_port_is_500_unless_ignored_by_count():
    d = ready()
    status, body = wait_check(d, f"/check/{APP}/mysql/down", 500, timeout=5)
    expect_check_body(body, 500, "down check")
    expect("connect" in body["Message"].lower(), f"refused port Message: {body['Message']!r}")
    wait_check(d, f"/check/{APP}/mysql/downcount", 200, timeout=5,
               what="IgnoreHostsCount 1 to skip the refused host")


def test_hanging_port_is_500_and_api_stays_fast():
    d = ready()
    status, body = wait_check(d, f"/check/{APP}/mysql/hang", 500, timeout=8,
                              what="a port that never answers to give 500 (probe timeout)")
    expect(body["Message"].strip(), f"hang: empty Message: {body!r}")
    expect_latency(d, ["/lb-check", f"/check/{APP}/mysql/threads", "/aggregated-metrics"] * 5, 0.5,
                   "API while a probe hangs")


def test_frozen_replica_is_500_and_api_stays_fast():
    d = ready()
    lib.topology_ready()
    wait_check(d, f"/check/{APP}/mysql/lag", 200)
    wait_check(d, f"/check/{APP}/mysql/lagr2", 200)
    lib.freeze_node(R1)
    t0 = time.monotonic()
    status, body = wait_check(d, f"/check/{APP}/mysql/lag", 500, timeout=8,
                              what="lag check to answer 500 while R1 is SIGSTOPped")
    elapsed = time.monotonic() - t0
    expect(elapsed < 6.0, f"500 came {elapsed:.1f}s after the replica hung")
    expect(body["Message"].strip(), f"frozen replica: empty Message: {body!r}")
    expect_latency(d, ["/lb-check", f"/check/{APP}/mysql/lagr2", "/throttled-apps", "/aggregated-metrics"] * 5,
                   0.5, "API while a replica hangs")
    lib.thaw_node(R1)
    wait_check(d, f"/check/{APP}/mysql/lag", 200, timeout=20, what="lag check back to 200 after SIGCONT")


def dialign_config():
    refused = f"127.0.0.1:{lib.REFUSED_PORT}"
    return {
        "ListenPort": lib.ALT_PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "Stores": {"MySQL": {
            "User": "freno", "Password": "freno", "ThrottleThreshold": 1.0,
            "IgnoreDialTcpErrors": True,
            "Clusters": {
                "lag": lib.cluster(lib.REPLICAS),
                "downr2": lib.cluster([refused, R2]),
                "alldown": lib.cluster([refused]),
            },
        }},
    }


def test_replica_shutdown_is_500_unless_ignored():
    d = ready()
    alt = lib.daemon("dialign", dialign_config(), lib.ALT_PORT)
    lib.topology_ready()
    wait_check(alt, f"/check/{APP}/mysql/lag", 200)
    wait_check(alt, f"/check/{APP}/mysql/downr2", 200, what="IgnoreDialTcpErrors to skip the refused host")
    status, body = wait_check(alt, f"/check/{APP}/mysql/alldown", 500, what="all hosts skipped -> 500")
    expect("no hosts found" in body["Message"].lower(), f"all hosts skipped Message: {body!r}")
    wait_check(d, f"/check/{APP}/mysql/lag", 200)

    lib.shutdown_node(R2)
    status, body = wait_check(d, f"/check/{APP}/mysql/lag", 500, timeout=10,
                              cond=lambda b: "connect" in b["Message"].lower(),
                              what="lag check to answer 500 naming the connection failure")
    expect_check_body(body, 500, "lag with R2 down")
    wait_check(d, f"/check/{APP}/mysql/lagign", 200, timeout=5,
               what="IgnoreHostsCount 1 to skip the replica that is down")
    wait_check(alt, f"/check/{APP}/mysql/lag", 200, timeout=10,
               what="IgnoreDialTcpErrors to skip the replica that is down")

    lib.start_node(R2)
    lib.wait_replica_healthy(R2)
    wait_check(d, f"/check/{APP}/mysql/lag", 200, timeout=20, what="lag back to 200 after restart")
    lib.stop_daemon("dialign")


def test_collation_reaches_the_probes():
    """A cluster's Collation is what its probe connections use: a real one
    probes as before, one the server does not know makes every probe fail
    with the server's own error (before, the key loaded and did nothing)."""
    ready()
    cfg = dialign_config()
    cfg["Stores"]["MySQL"]["IgnoreDialTcpErrors"] = False
    cfg["Stores"]["MySQL"]["Clusters"] = {
        "binary": lib.cluster(lib.REPLICAS, Collation="utf8mb4_bin"),
        "bogus": lib.cluster(lib.REPLICAS, Collation="no_such_collation_ci"),
    }
    alt = lib.daemon("collation", cfg, lib.ALT_PORT)
    wait_check(alt, f"/check/{APP}/mysql/binary", 200, what="a cluster with a real Collation")
    status, body = wait_check(alt, f"/check/{APP}/mysql/bogus", 500, timeout=10,
                              what="a cluster whose Collation the server does not know")
    msg = body["Message"].lower()
    expect("collation" in msg or "character set" in msg, f"the probe error is the collation's: {body!r}")
    lib.stop_daemon("collation")


def test_ignore_hosts_and_no_hosts():
    d = ready()
    wait_check(d, f"/check/{APP}/mysql/ignored", 200, what="IgnoreHosts to leave out 127.0.0.2")
    status, body = wait_check(d, f"/check/{APP}/mysql/allignored", 500)
    expect("no hosts found" in body["Message"].lower(), f"no hosts Message: {body!r}")


def test_http_check_404_disregards_host():
    d = ready()
    # 127.0.0.2:13399 refuses MySQL, but its HTTP check says 404: left out.
    wait_check(d, f"/check/{APP}/mysql/httpchk", 200, timeout=12,
               what="host with HTTP check 404 to be disregarded")
    ok_paths, gone_paths = lib.httpcheck_paths()
    expect("/status/check" in gone_paths, f"HTTP check on 127.0.0.2 asked for {gone_paths!r}")
    expect("/status/check" in ok_paths, f"HTTP check on 127.0.0.1 asked for {ok_paths!r}")


def test_check_variants():
    d = ready()
    status, body = d.get_json(f"/check/{APP}/mysql/nosuch")
    expect_eq(status, 404, "check on an unknown cluster")
    expect_check_body(body, 404, "check unknown cluster")
    expect_eq(body["Message"], "No such metric", "404 Message")
    expect_eq(d.get(f"/check/{APP}/redis/threads")[0], 404, "check on an unknown store type")
    expect_eq(d.get(f"/check-if-exists/{APP}/mysql/nosuch")[0], 200, "check-if-exists unknown cluster")
    expect_eq(d.get(f"/check-if-exists/{APP}/mysql/threads")[0], 200, "check-if-exists healthy cluster")
    expect_eq(d.get(f"/check-if-exists/{APP}/mysql/busy")[0], 429, "check-if-exists over threshold")

    status, body = d.get_json(f"/check-read/{APP}/mysql/threads/0.5")
    expect_eq(status, 429, f"check-read below the value (body {body!r})")
    expect_eq(body["Threshold"], 0.5, "check-read Threshold")
    status, body = d.get_json(f"/check-read/{APP}/mysql/busy/1000")
    expect_eq(status, 200, f"check-read ignores the configured threshold (body {body!r})")
    expect_eq(body["Threshold"], 1000, "check-read Threshold")
    expect_error_body(d, f"/check-read/{APP}/mysql/threads/abc")
    expect_eq(d.get(f"/check-read-if-exists/{APP}/mysql/nosuch/1")[0], 200, "check-read-if-exists unknown")
    expect_eq(d.get(f"/check-read/{APP}/mysql/nosuch/1")[0], 404, "check-read unknown cluster")
    expect_eq(d.get(f"/check-read-if-exists/{APP}/mysql/threads/abc")[0], 500,
              "check-read-if-exists with a bad threshold")

    expect_eq(d.head(f"/check/{APP}/mysql/threads"), (200, b""), "HEAD check healthy")
    expect_eq(d.head(f"/check/{APP}/mysql/nosuch"), (404, b""), "HEAD check unknown")
    expect_eq(d.head(f"/check/{APP}/mysql/busy"), (429, b""), "HEAD check over threshold")


# ---------------------------------------------------------------- app throttling (docs/semantics.md#app-throttles)

def test_throttle_ratio_is_statistically_right():
    d = ready()
    app = "ratio-app"
    expect_ok_body(d, f"/throttle-app/{app}/ratio/0.5")
    try:
        entry = wait_until(lambda: throttled(d).get(app), lambda e: e is not None, timeout=2,
                           what=f"{app} in /throttled-apps")
        expect_eq(entry.get("Ratio"), 0.5, f"{app} Ratio")
        expect_eq(entry.get("ExpireAt"), "0001-01-01T00:00:00Z", f"{app} without TTL never expires")
        c = d.client()
        counts = {}
        for _ in range(1000):
            status, _ = c.request("HEAD", f"/check/{app}/mysql/threads")
            counts[status] = counts.get(status, 0) + 1
        c.close()
        denied = counts.get(417, 0)
        expect(set(counts) <= {200, 417}, f"unexpected statuses: {counts}")
        # Binomial(1000, 0.5): mean 500, sigma 15.8; [400, 600] is beyond 6 sigma.
        expect(400 <= denied <= 600, f"ratio 0.5 denied {denied} of 1000 checks: {counts}")
    finally:
        expect_ok_body(d, f"/unthrottle-app/{app}")
    expect(app not in throttled(d), f"{app} still listed after unthrottle")
    statuses = {d.get(f"/check/{app}/mysql/threads")[0] for _ in range(20)}
    expect_eq(statuses, {200}, "checks after unthrottle")


def test_throttle_store_name_scoping():
    d = ready()
    app = "scoped-app"
    expect_ok_body(d, f"/throttle-app/{app}?store_name=threads")
    try:
        apps = throttled(d)
        expect(f"{app}/threads" in apps and app not in apps, f"/throttled-apps: {apps!r}")
        status, body = d.get_json(f"/check/{app}/mysql/threads")
        expect_eq(status, 417, f"check on the throttled store (body {body!r})")
        expect_eq(body["Message"], "App denied", "417 Message")
        expect_eq(d.get(f"/check/{app}/mysql/threadsb")[0], 200, "check on another store")
        # Unthrottling the app without the store leaves the scoped entry.
        expect_ok_body(d, f"/unthrottle-app/{app}")
        expect_eq(d.get(f"/check/{app}/mysql/threads")[0], 417, "scoped throttle after a plain unthrottle")
    finally:
        expect_ok_body(d, f"/unthrottle-app/{app}?store_name=threads")
    expect(f"{app}/threads" not in throttled(d), "scoped entry still listed after unthrottle")
    expect_eq(d.get(f"/check/{app}/mysql/threads")[0], 200, "check after scoped unthrottle")


def test_throttle_ttl_ratio_updates_and_listing():
    d = ready()
    app, perm = "ttl-app", "perm-app"
    try:
        expect_ok_body(d, f"/throttle-app/{app}/ttl/30/ratio/0.25")
        e = throttled(d)[app]
        expect_eq(e["Ratio"], 0.25, "Ratio after ttl/30/ratio/0.25")
        left = lib.seconds_from_now(e["ExpireAt"])
        expect(29 * 60 <= left <= 31 * 60, f"ExpireAt {e['ExpireAt']} is {left:.0f}s away, want ~1800")
        first_expiry = lib.parse_rfc3339(e["ExpireAt"])

        # Ratio only: new ratio, same expiry.
        expect_ok_body(d, f"/throttle-app/{app}/ratio/0.75")
        e = throttled(d)[app]
        expect_eq(e["Ratio"], 0.75, "Ratio after ratio/0.75")
        drift = abs((lib.parse_rfc3339(e["ExpireAt"]) - first_expiry).total_seconds())
        expect(drift < 1.0, f"ratio-only update moved ExpireAt to {e['ExpireAt']}")

        # TTL only: new expiry, same ratio.
        expect_ok_body(d, f"/throttle-app/{app}/ttl/10")
        e = throttled(d)[app]
        expect_eq(e["Ratio"], 0.75, "Ratio after ttl/10")
        left = lib.seconds_from_now(e["ExpireAt"])
        expect(9 * 60 <= left <= 11 * 60, f"ExpireAt {e['ExpireAt']} is {left:.0f}s away, want ~600")

        # A new entry without TTL or ratio: ratio 1, never expires.
        expect_ok_body(d, f"/throttle-app/{perm}")
        e = throttled(d)[perm]
        expect_eq(e, {"ExpireAt": "0001-01-01T00:00:00Z", "Ratio": 1}, f"{perm} entry")
        expect_eq(d.get(f"/check/{perm}/mysql/threads")[0], 417, "check of a fully throttled app")
        expect_eq(d.head(f"/check/{perm}/mysql/threads"), (417, b""), "HEAD check of a throttled app")
        expect_ok_body(d, f"/throttle-app/{perm}/ttl/5")
        e = throttled(d)[perm]
        expect_eq(e["Ratio"], 1, f"{perm} Ratio after ttl/5")
        left = lib.seconds_from_now(e["ExpireAt"])
        expect(4 * 60 <= left <= 6 * 60, f"{perm} ExpireAt {e['ExpireAt']} is {left:.0f}s away")
    finally:
        expect_ok_body(d, f"/unthrottle-app/{app}")
        expect_ok_body(d, f"/unthrottle-app/{perm}")
    apps = throttled(d)
    expect(app not in apps and perm not in apps, f"entries left after unthrottle: {apps!r}")
    expect_ok_body(d, "/unthrottle-app/never-throttled-app", "unthrottle of an unknown app")


def test_abusing_app_is_throttled():
    d = ready()
    e = throttled(d).get("abusing-app")
    expect(e is not None, "abusing-app missing from /throttled-apps")
    expect_eq(e["Ratio"], 1, "abusing-app Ratio")
    left = lib.seconds_from_now(e["ExpireAt"])
    expect(left > 9 * 365 * 86400, f"abusing-app ExpireAt {e['ExpireAt']} is not ~10 years away")
    status, body = d.get_json("/check/abusing-app/mysql/threads")
    expect_eq(status, 417, f"abusing-app check (body {body!r})")


def test_throttle_bad_input_changes_nothing():
    d = ready()
    app, keep = "bad-app", "keep-app"
    expect_ok_body(d, f"/throttle-app/{keep}/ttl/30/ratio/0.5")
    try:
        before = throttled(d)[keep]
        for path, mentions in ((f"/throttle-app/{app}/ratio/7", "ratio"),
                               (f"/throttle-app/{app}/ratio/-0.1", "ratio"),
                               (f"/throttle-app/{app}/ratio/abc", "ratio"),
                               (f"/throttle-app/{app}/ttl/abc", "ttl"),
                               (f"/throttle-app/{app}/ttl/-5", "ttl"),
                               (f"/throttle-app/{app}/ttl/abc/ratio/0.5", "ttl"),
                               (f"/throttle-app/{app}/ttl/30/ratio/abc", "ratio"),
                               (f"/throttle-app/{keep}/ratio/7", "ratio"),
                               (f"/throttle-app/{keep}/ttl/x", "ttl")):
            expect_error_body(d, path, mentions)
        long_app = "a" * 300
        expect_error_body(d, f"/throttle-app/{long_app}")
        apps = throttled(d)
        expect(app not in apps, f"{app} throttled by a rejected request: {apps[app] if app in apps else ''}")
        expect(long_app not in apps, "a 300-byte app name was throttled")
        expect_eq(apps.get(keep), before, f"{keep} changed by rejected requests")
    finally:
        expect_ok_body(d, f"/unthrottle-app/{keep}")


def test_percent_encoded_app_names():
    d = ready()
    try:
        expect_ok_body(d, "/throttle-app/pct%20app")
        apps = throttled(d)
        expect("pct app" in apps, f"percent-decoded app name not listed: {sorted(apps)!r}")
        expect_eq(d.get("/check/pct%20app/mysql/threads")[0], 417, "check by the percent-encoded name")
        expect_eq(d.get("/check/pct-app/mysql/threads")[0], 200, "check by another app")
    finally:
        expect_ok_body(d, "/unthrottle-app/pct%20app")
    expect_eq(d.get("/check/pct%20app/mysql/threads")[0], 200, "check after unthrottle")


# ---------------------------------------------------------------- recent apps

def test_recent_apps_record_clients():
    d = ready()
    expect_eq(d.get("/check/plain-app/mysql/threads")[0], 200, "plain check")
    expect_eq(d.get("/check/xff-app/mysql/threads", headers={"X-Forwarded-For": "10.1.2.3"})[0], 200,
              "check with X-Forwarded-For")
    status, _, _ = lib.http("GET", d.url("/check/v6-app/mysql/threads", v6=True))
    expect_eq(status, 200, "check over IPv6 [::1] (the daemon should listen dual-stack)")
    want = ("plain-app/127.0.0.1", "xff-app/10.1.2.3", "v6-app/::1", "freno/local", "freno-share-domain/local")

    def missing():
        status, body = d.get_json("/recent-apps")
        expect_eq(status, 200, "GET /recent-apps")
        expect(isinstance(body, dict), f"/recent-apps is not an object: {body!r}")
        return [k for k in want if k not in body], sorted(body)

    wait_until(missing, lambda r: not r[0], timeout=3,
               what="/recent-apps to list every client (missing keys, then keys present)")
    apps = d.get_json("/recent-apps")[1]
    now = time.time()
    for k in want:
        e = apps[k]
        expect(isinstance(e, dict) and is_num(e.get("CheckedAtEpoch")) and is_num(e.get("MinutesSinceChecked")),
               f"recent app {k} shape: {e!r}")
        expect(abs(e["CheckedAtEpoch"] - now) < 10, f"{k} CheckedAtEpoch {e['CheckedAtEpoch']} vs now {now:.0f}")
        expect_eq(e["MinutesSinceChecked"], 0, f"{k} MinutesSinceChecked")
    status, last5 = d.get_json("/recent-apps/5")
    expect_eq(status, 200, "GET /recent-apps/5")
    for k in want:
        expect(k in last5, f"/recent-apps/5 lacks {k}")


# ---------------------------------------------------------------- skipped hosts

def test_skip_and_recover_host():
    d = ready()
    host = "127.0.0.3"  # skipme = [127.0.0.3:<refused>, R2]
    wait_check(d, f"/check/{APP}/mysql/skipme", 500, timeout=5)
    try:
        expect_ok_body(d, f"/skip-host/{host}/ttl/5")
        hosts = skipped(d)
        expect(host in hosts, f"/skipped-hosts lacks {host}: {hosts!r}")
        left = lib.seconds_from_now(hosts[host])
        expect(4 * 60 <= left <= 6 * 60, f"skip expiry {hosts[host]} is {left:.0f}s away, want ~300")
        wait_check(d, f"/check/{APP}/mysql/skipme", 200, timeout=15,
                   what="the skipped host to leave the probed set")
    finally:
        expect_ok_body(d, f"/recover-host/{host}")
    expect(host not in skipped(d), f"{host} still skipped after recover-host")
    wait_check(d, f"/check/{APP}/mysql/skipme", 500, timeout=15, what="the recovered host to be probed again")


def test_skip_host_ttl_default_and_bad_input():
    d = ready()
    try:
        expect_ok_body(d, "/skip-host/127.0.0.5")
        left = lib.seconds_from_now(skipped(d)["127.0.0.5"])
        expect(59 * 60 <= left <= 61 * 60, f"default skip expiry is {left:.0f}s away, want ~3600")
        expect_error_body(d, "/skip-host/127.0.0.4/ttl/abc", "ttl")
        expect("127.0.0.4" not in skipped(d), "a host was skipped by a request with a bad TTL")
    finally:
        expect_ok_body(d, "/recover-host/127.0.0.5")
        expect_ok_body(d, "/recover-host/127.0.0.4")
    expect_ok_body(d, "/recover-host/never-skipped-host", "recover of an unknown host")


# ---------------------------------------------------------------- bad requests

def test_bad_requests():
    d = ready()
    for p in ("/nope", "/check/a/mysql", "/check", "/throttle-app", "/check/a/mysql/threads/extra/x"):
        expect_eq(d.get(p)[0], 404, f"GET {p}")
    for long_path in ("/" + "y" * 10240, "/check/" + "x" * 10240 + "/mysql/threads"):
        try:
            status, _ = d.get(long_path)
        except (OSError, http.client.HTTPException) as e:
            raise lib.TestFailure(f"10 kB path {long_path[:12]}...: no HTTP status, connection ended with {e!r}")
        expect(400 <= status < 600, f"10 kB path {long_path[:12]}... answered {status}")
    expect_ok_body(d, "/lb-check", "lb-check after a 10 kB path")
    expect_eq(d.get(f"/check/{APP}/mysql/threads")[0], 200, "check after a 10 kB path")


# ---------------------------------------------------------------- metrics (docs/api.md#metrics-and-counters)

def test_aggregated_metrics():
    d = ready()
    wait_check(d, f"/check/{APP}/mysql/down", 500)
    status, m = d.get_json("/aggregated-metrics")
    expect_eq(status, 200, "GET /aggregated-metrics")
    expect(isinstance(m, dict), f"/aggregated-metrics is not an object: {m!r}")
    expect(re.fullmatch(r"\d+\.\d{6}", m.get("mysql/threads", "")), f"mysql/threads: {m.get('mysql/threads')!r}")
    expect(re.fullmatch(r"-?\d+\.\d{6}", m.get("mysql/lag", "")), f"mysql/lag: {m.get('mysql/lag')!r}")
    expect(m.get("mysql/down", "").startswith("error: "), f"mysql/down: {m.get('mysql/down')!r}")
    expect(all(k.startswith("mysql/") for k in m), f"metric names: {sorted(m)!r}")
    status, b = d.get_json("/aggregated-metrics?brief=true")
    expect_eq(status, 200, "GET /aggregated-metrics?brief=true")
    expect(re.fullmatch(r"\d+\.\d{3}", b.get("mysql/threads", "")), f"brief mysql/threads: {b.get('mysql/threads')!r}")
    expect(b.get("mysql/down", "").startswith("error: "), f"brief mysql/down: {b.get('mysql/down')!r}")


def test_metrics_health():
    d = ready()
    status, h = d.get_json("/metrics-health")
    expect_eq(status, 200, "GET /metrics-health")
    expect(isinstance(h, dict), f"/metrics-health is not an object: {h!r}")
    e = h.get("mysql/threads")
    expect(isinstance(e, dict), f"/metrics-health lacks mysql/threads: {h!r}")
    expect(is_num(e.get("SecondsSinceLastHealthy")) and 0 <= e["SecondsSinceLastHealthy"] <= 2,
           f"mysql/threads SecondsSinceLastHealthy: {e!r}")
    ago = -lib.seconds_from_now(e.get("LastHealthyAt"))
    expect(-2 <= ago <= 3, f"mysql/threads LastHealthyAt {e.get('LastHealthyAt')} is {ago:.1f}s ago")
    for never in ("mysql/down", "mysql/busy", "mysql/null"):
        expect(never not in h, f"{never} was never healthy but is listed: {h.get(never)!r}")


def test_debug_vars_counters():
    d = ready()
    app = "vars-app"
    expect_eq(d.get(f"/check/{app}/mysql/threads")[0], 200, "check threads")
    expect_eq(d.get(f"/check/{app}/mysql/down")[0], 500, "check down")
    need = ["check.any.total", f"check.{app}.total", "check.any.mysql.threads.total",
            f"check.{app}.mysql.threads.total", f"check.{app}.mysql.down.total", "check.any.error",
            f"check.{app}.error", f"check.{app}.mysql.down.error", "check.any.internal-error",
            f"check.{app}.internal-error", f"check.{app}.mysql.down.internal-error",
            "probes.total", "probes.error"]

    def missing(path):
        status, v = d.get_json(path)
        expect_eq(status, 200, f"GET {path}")
        expect(isinstance(v, dict), f"{path} is not an object")
        return [k for k in need if not (is_num(v.get(k)) and v[k] >= 1)], v

    for path in ("/debug/vars", "/debug/metrics"):
        gaps, v = wait_until(lambda: missing(path), lambda r: not r[0], timeout=3,
                             what=f"{path} counters")
        expect_eq(v.get(f"check.{app}.mysql.threads.error", 0), 0, f"{path} threads error count")
        expect(v[f"check.{app}.total"] >= 2, f"{path} check.{app}.total: {v[f'check.{app}.total']}")
        expect_eq(v.get("consensus.is_leader"), 1, f"{path} consensus.is_leader")
        expect(is_num(v.get("aggregated.mysql.threads")) and v["aggregated.mysql.threads"] >= 1,
               f"{path} aggregated.mysql.threads: {v.get('aggregated.mysql.threads')!r}")
    wait_until(lambda: d.get_json("/debug/vars")[1].get("throttled_states.abusing-app"),
               lambda x: x == 1, timeout=7, what="gauge throttled_states.abusing-app = 1")


def test_prometheus_metrics():
    d = ready()
    status, body = d.get("/metrics")
    expect_eq(status, 200, "GET /metrics")
    text = body.decode()
    sample = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+]?([0-9.eE+-]+|NaN|Inf)( -?\d+)?")
    names = set()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        expect(sample.fullmatch(line), f"/metrics line is not Prometheus text: {line!r}")
        names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    expect(any("check" in n for n in names), f"/metrics has no check counter: {sorted(names)[:20]!r}")
    expect(any("probe" in n for n in names), f"/metrics has no probe counter: {sorted(names)[:20]!r}")


def test_memcache_publishes_values():
    d = ready()
    v = wait_until(lambda: lib.memcache_get("freno/mysql/threads"), lambda x: x is not None, timeout=5,
                   what="freno/mysql/threads in memcached")
    m = re.fullmatch(r"(\d+):(\d+\.\d{6})", v)
    expect(m is not None, f"memcache value {v!r} is not <epoch-millis>:<%.6f>")
    expect(abs(int(m.group(1)) / 1000.0 - time.time()) < 5, f"memcache epoch-millis {m.group(1)} is not now")
    expect(float(m.group(2)) >= 1, f"threads_running in memcache: {m.group(2)}")
    for _ in range(5):
        expect(lib.memcache_get("freno/mysql/down") is None, "an error aggregate is published to memcache")
        time.sleep(0.1)


# ---------------------------------------------------------------- startup and leadership

def startup_config():
    return {
        "ListenPort": lib.STARTUP_PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "Stores": {"MySQL": {
            "User": "freno", "Password": "freno", "ThrottleThreshold": 1000,
            "Clusters": {"threads": lib.cluster(lib.REPLICAS, query=lib.THREADS_QUERY)},
        }},
    }


def test_first_check_within_one_second_and_state_survives_restart():
    lib.topology_ready()
    d = lib.daemon("startup", startup_config(), lib.STARTUP_PORT, wait=False)
    wait_until(lambda: d.get("/check/startup-app/mysql/threads")[0], lambda s: s == 200, timeout=10,
               interval=0.01, what="first 200 check after start")
    elapsed = time.monotonic() - d.started_at
    expect(elapsed < 1.0, f"first 200 check came {elapsed:.2f}s after start (limit 1 s)")
    expect_eq(d.get_json("/leader-check"), (200, "HTTP 200"), "single-node /leader-check")

    expect_ok_body(d, "/throttle-app/persist-app/ttl/30/ratio/0.5")
    expect_ok_body(d, "/skip-host/127.0.0.9/ttl/30")
    d.restart()
    apps, hosts = throttled(d), skipped(d)
    expect(apps.get("persist-app", {}).get("Ratio") == 0.5,
           f"single-node state lost over restart: /throttled-apps {apps!r}")
    expect("127.0.0.9" in hosts, f"single-node state lost over restart: /skipped-hosts {hosts!r}")
    lib.stop_daemon("startup")


def backend_config():
    """MySQL-backend mode with a backend that refuses connections."""
    return {
        "ListenPort": lib.LEADER_PORT,
        "BackendMySQLHost": "127.0.0.1",
        "BackendMySQLPort": lib.REFUSED_PORT,
        "BackendMySQLSchema": "freno_backend",
        "BackendMySQLUser": "freno",
        "BackendMySQLPassword": "freno",
        "Stores": {"MySQL": {
            "User": "freno", "Password": "freno", "ThrottleThreshold": 1000,
            "Clusters": {"threads": lib.cluster(lib.REPLICAS, query=lib.THREADS_QUERY)},
        }},
    }


def test_force_leadership():
    lib.topology_ready()
    d = lib.daemon("follower", backend_config(), lib.LEADER_PORT)
    # Without a reachable backend the node never leads: 404 for checks.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        expect_eq(d.get_json("/leader-check"), (404, "HTTP 404"), "/leader-check without a backend")
        expect_eq(d.get("/check/follower-app/mysql/threads")[0], 404, "/check on a node that is not leader")
        expect_eq(d.get("/check-if-exists/follower-app/mysql/threads")[0], 200,
                  "/check-if-exists on a node that is not leader")
        time.sleep(0.2)
    lib.stop_daemon("follower")

    d = lib.daemon("forced", backend_config(), lib.LEADER_PORT, args=["--force-leadership"])
    wait_until(lambda: d.get_json("/leader-check"), lambda r: r == (200, "HTTP 200"), timeout=2,
               what="/leader-check with --force-leadership")
    wait_check(d, "/check/forced-app/mysql/threads", 200, timeout=5)
    lib.stop_daemon("forced")


def test_control_token_guards_control_requests():
    lib.topology_ready()
    cfg = {
        "ListenPort": lib.ALT_PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "ControlToken": "${FRENO_IT_TOKEN}",
        "Stores": {"MySQL": {
            "User": "freno", "Password": "freno", "ThrottleThreshold": 1000,
            "Clusters": {"threads": lib.cluster(lib.REPLICAS, query=lib.THREADS_QUERY)},
        }},
    }
    os.environ["FRENO_IT_TOKEN"] = "s3cret-token"
    try:
        d = lib.daemon("token", cfg, lib.ALT_PORT)
    finally:
        del os.environ["FRENO_IT_TOKEN"]
    status, body = d.get_json("/throttle-app/tok-app")
    expect_eq(status, 401, f"throttle-app without a token: {body!r}")
    status, body = d.get_json("/throttle-app/tok-app", headers={"Authorization": "Bearer wrong"})
    expect_eq(status, 401, f"throttle-app with a wrong token: {body!r}")
    expect("tok-app" not in d.get_json("/throttled-apps")[1], "a refused request changes nothing")
    status, body = d.get_json("/throttle-app/tok-app", headers={"Authorization": "Bearer s3cret-token"})
    expect_eq((status, body), (200, {"StatusCode": 200, "Message": "OK"}), "throttle-app with the bearer token")
    expect("tok-app" in d.get_json("/throttled-apps")[1], "throttled with the token")
    status, _ = d.get_json("/unthrottle-app/tok-app", headers={"X-Freno-Token": "s3cret-token"})
    expect_eq(status, 200, "unthrottle-app with X-Freno-Token")
    expect_eq(d.get_json("/skip-host/h1")[0], 401, "skip-host without a token")
    # Reads and checks never need it, and the token never appears in answers.
    wait_check(d, "/check/tok-app/mysql/threads", 200, timeout=5)
    for path in ("/debug/vars", "/consensus/status", "/config/memcache"):
        expect(b"s3cret-token" not in d.get(path)[1], f"token leaked by {path}")
    lib.stop_daemon("token")
