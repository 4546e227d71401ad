# SPDX-License-Identifier: MIT
"""The live dashboard (docs/api.md#dashboard): /metrics-history filling at
one point a second, /cluster-metrics, and the page itself in headless
Chromium (Debian's `chromium`, driven over the DevTools protocol by cdp.py):
it loads without a console error or a policy violation, shows the values
/aggregated-metrics shows, escapes names, and stays usable with 100
clusters. Every wait has a deadline."""

import time
import urllib.parse

import cdp
import lib
from lib import R1, R2, REPLICAS, expect, expect_eq, wait_until

PORT = 13377
PORT_100 = 13376
APP = "it-dash"
EVIL_APP = "<img src=x onerror=alert(1)>&amp;\"'"
REFUSED = f"127.0.0.1:{lib.REFUSED_PORT}"


def hosts(*ports):
    return {"Hosts": [p if isinstance(p, str) else f"127.0.0.1:{p}" for p in ports]}


def config():
    return {
        "ListenPort": PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "Stores": {"MySQL": {
            "User": "freno",
            "Password": "freno",
            "ThrottleThreshold": 1.0,
            "Clusters": {
                # replication lag, plus threads_running as a second metric
                "lag": {"MetricQuery": lib.LAG_QUERY,
                        "Metrics": {"threads": {"Query": lib.THREADS_QUERY, "Threshold": 1000}},
                        "StaticHostsSettings": hosts(*REPLICAS)},
                # constant values, so that the page and the API can be compared exactly
                "fixed": {"MetricQuery": "select 0.25", "StaticHostsSettings": hosts(*REPLICAS)},
                "over": {"MetricQuery": "select 3", "StaticHostsSettings": hosts(R2)},
                "down": {"MetricQuery": "select 0.25", "StaticHostsSettings": hosts(REFUSED)},
                # a name that is markup
                "<b>bold</b>": {"MetricQuery": "select 0.5", "StaticHostsSettings": hosts(R1)},
            },
        }},
    }


def config_100():
    clusters = {f"c{i:03d}": {"MetricQuery": f"select {i / 100:.2f}", "StaticHostsSettings": hosts(R2)}
                for i in range(100)}
    return {"ListenPort": PORT_100, "RaftDataDir": "@WORKDIR@/raft", "RaftNodes": [],
            "Stores": {"MySQL": {"User": "freno", "Password": "freno", "ThrottleThreshold": 1.0,
                                 "Clusters": clusters}}}


def dash():
    d = lib.daemon("dash", config(), PORT)
    wait_until(lambda: d.get_json("/aggregated-metrics")[1],
               lambda m: m.get("mysql/fixed") == "0.250000" and "mysql/lag" in m,
               timeout=20, what="fixed and lag aggregated")
    return d


def history(d, query=""):
    status, body = d.get_json("/metrics-history" + query)
    expect_eq(status, 200, f"GET /metrics-history{query} status")
    return body


def test_history_fills_at_one_point_a_second():
    d = dash()
    first = wait_until(lambda: history(d, "?cluster=fixed")["Clusters"]["fixed"],
                       lambda c: sum(v is not None for v in c["Metrics"]["default"]["Values"]) >= 2,
                       timeout=10, what="two points of fixed")
    t0 = time.monotonic()
    end0 = first["Start"] + len(first["Metrics"]["default"]["Values"]) - 1
    later = wait_until(lambda: history(d, "?cluster=fixed")["Clusters"]["fixed"],
                       lambda c: c["Start"] + len(c["Metrics"]["default"]["Values"]) - 1 >= end0 + 4,
                       timeout=10, what="four more seconds of fixed")
    elapsed = time.monotonic() - t0
    values = later["Metrics"]["default"]["Values"]
    end = later["Start"] + len(values) - 1
    # one point per second: the newest second moved as the clock did
    expect(abs((end - end0) - elapsed) <= 1.5,
           f"history moved {end - end0} s in {elapsed:.1f} s")
    expect(abs(end - time.time()) <= 2, f"newest point at {end}, now {time.time():.0f}")
    expect(len(values) <= 900, f"{len(values)} points")
    expect_eq(values[-4:], [0.25] * 4, "the last four points of a constant metric")
    expect_eq(later["Metrics"]["default"]["Threshold"], 1, "threshold")
    expect_eq(later["Metrics"]["default"]["Name"], "mysql/fixed", "name")

    # every metric of a cluster, null while in error, only what is newer than since
    body = history(d)
    expect_eq(set(body["Clusters"]), {"lag", "fixed", "over", "down", "<b>bold</b>"}, "clusters")
    expect_eq(set(body["Clusters"]["lag"]["Metrics"]), {"default", "threads"}, "lag's metrics")
    expect_eq(body["Clusters"]["lag"]["Metrics"]["threads"]["Threshold"], 1000, "threads threshold")
    down = body["Clusters"]["down"]["Metrics"]["default"]["Values"]
    expect(down and all(v is None for v in down), f"an erring cluster's points are null: {down[-5:]}")
    since = history(d, f"?cluster=fixed&since={end - 1}")["Clusters"]["fixed"]
    expect(since["Start"] == end or since["Start"] == 0 or since["Start"] >= end,
           f"since {end - 1}: starts at {since['Start']}")
    status, body = d.get_json("/metrics-history?cluster=nosuch")
    expect_eq((status, body), (404, {"StatusCode": 404, "Message": 'metrics-history: no cluster "nosuch"'}),
              "unknown cluster")
    status, body = d.get_json("/metrics-history?since=soon")
    expect_eq(status, 500, "since that is not a number")


def test_cluster_metrics_lists_hosts():
    d = dash()
    c = wait_until(lambda: d.get_json("/cluster-metrics?cluster=down")[1]["Clusters"][0],
                   lambda c: c["Metrics"][0]["Hosts"][0]["ProbeErrors"] > 0, timeout=10,
                   what="down's host failing")
    m = c["Metrics"][0]
    expect_eq((m["HasValue"], m["Ok"], m["Value"]), (True, False, None), "down's aggregate")
    expect(m["Error"], "down's aggregate error is empty")
    h = m["Hosts"][0]
    expect_eq((h["Host"], h["Ok"]), (REFUSED, False), "down's host")
    expect(h["Error"], "down's host error is empty")
    c = d.get_json("/cluster-metrics?cluster=fixed")[1]["Clusters"][0]
    expect_eq([(x["Host"], x["Ok"], x["Value"]) for x in c["Metrics"][0]["Hosts"]],
              [(f"127.0.0.1:{R1}", True, 0.25), (f"127.0.0.1:{R2}", True, 0.25)], "fixed's hosts")
    status, headers, _ = d.request("GET", "/cluster-metrics")
    expect_eq(status, 200, "status")
    expect("default-src 'none'" in headers.get("content-security-policy", ""),
           f"no policy: {headers}")


def page_values(b):
    return b.evaluate("Object.fromEntries([...document.querySelectorAll('.chip .value')]"
                      ".map(e => [e.dataset.metric, e.textContent]))")


def test_page_in_chromium():
    d = dash()
    for path, ctype in (("/dashboard", "text/html"), ("/dashboard/app.js", "text/javascript"),
                        ("/dashboard/style.css", "text/css")):
        status, headers, body = d.request("GET", path)
        expect_eq(status, 200, f"GET {path}")
        expect(headers.get("content-type", "").startswith(ctype), f"{path}: {headers}")
        expect("default-src 'none'" in headers.get("content-security-policy", ""), f"{path}: {headers}")
        expect(b"https://" not in body, f"{path} names another origin")
    evil = urllib.parse.quote(EVIL_APP, safe="")
    expect_eq(d.get(f"/throttle-app/{APP}/ttl/30/ratio/0.5")[0], 200, "throttle")
    expect_eq(d.get(f"/throttle-app/{evil}/ttl/5")[0], 200, "throttle a markup name")
    expect_eq(d.get("/skip-host/127.0.0.9/ttl/20")[0], 200, "skip-host")
    expect_eq(d.get(f"/app-rule/{APP}-rule?threshold=default:2&factor=threads:0.5&ttl=60")[0], 200,
              "app-rule")
    expect_eq(d.get(f"/app-rule/{evil}?exempt=1")[0], 200, "app-rule for a markup name")
    d.get(f"/check/{APP}-reader/mysql/fixed")
    with cdp.Browser() as b:
        b.navigate(d.url("/dashboard"))
        b.wait_for("document.querySelectorAll('details.cluster').length === 5", what="five clusters")
        # the value shown is the one /aggregated-metrics gives
        want = d.get_json("/aggregated-metrics")[1]
        shown = b.wait_for("(() => { const e = document.querySelector('.value[data-metric=\"mysql/fixed\"]');"
                           " return e && e.textContent !== '-' && e.textContent; })()",
                           what="fixed's value on the page")
        expect_eq(shown, want["mysql/fixed"], "fixed on the page and in /aggregated-metrics")
        # a changing value matches too, within a deadline (the page polls every 2 s)
        def lag_matches():
            agg = d.get_json("/aggregated-metrics?brief=true")[1]
            v = page_values(b)
            return abs(float(v["mysql/lag"]) - float(agg["mysql/lag"])) < 1.0 and \
                v["mysql/over"] == d.get_json("/aggregated-metrics")[1]["mysql/over"]
        wait_until(lag_matches, timeout=10, what="lag and over on the page")
        expect_eq(b.evaluate("document.querySelector('.chip[data-metric=\"mysql/over\"]').className"),
                  "chip over", "over's state")
        expect_eq(b.evaluate("document.querySelector('.chip[data-metric=\"mysql/down\"]').className"),
                  "chip error", "down's state")
        # a few clusters: expanded, with a chart and the hosts table
        b.wait_for("document.querySelector('details[data-cluster=\"fixed\"] svg.chart path.line') !== null",
                   what="fixed's chart")
        hosts_shown = b.evaluate("[...document.querySelectorAll('details[data-cluster=\"down\"] table.hosts"
                                 " tbody td:first-child')].map(e => e.textContent)")
        expect_eq(hosts_shown, [REFUSED], "down's hosts on the page")
        # names are text, never markup
        expect_eq(b.evaluate("document.querySelector('details[data-cluster=\"<b>bold</b>\"] .cname')"
                             ".textContent"), "<b>bold</b>", "markup cluster name shown as text")
        expect_eq(b.evaluate("document.querySelectorAll('main b, main img').length"), 0,
                  "markup from names became elements")
        apps = b.wait_for("(() => { const r = [...document.querySelectorAll('#apps tr')]"
                          ".map(tr => [...tr.children].map(td => td.textContent));"
                          " return r.length >= 3 && r; })()", what="throttled apps")
        by_app = {r[0]: r for r in apps}
        expect(EVIL_APP in by_app, f"markup app name not shown as text: {apps}")
        expect_eq(by_app[APP][1], "0.5", "ratio")
        expect(by_app[APP][2].startswith(("29m", "30m")), f"TTL left: {by_app[APP]}")
        expect_eq(by_app["abusing-app"][2], "more than a year", "abusing-app's ten years")
        skipped = b.evaluate("[...document.querySelectorAll('#skipped td')].map(e => e.textContent)")
        expect(skipped[0] == "127.0.0.9" and skipped[1].startswith(("19m", "20m")), f"skipped: {skipped}")
        b.wait_for("[...document.querySelectorAll('#recent td')].some(e => e.textContent.startsWith("
                   f"'{APP}-reader/'))", timeout=15, what="recent app")
        state = b.evaluate("document.getElementById('state').textContent")
        expect(state.startswith("Leader"), f"state: {state}")
        # app rules: the section lists each rule in words, with its TTL left
        rules = b.wait_for("(() => { const r = [...document.querySelectorAll('#rules tr')]"
                           ".map(tr => [...tr.children].map(td => td.textContent));"
                           " return !document.getElementById('rules-section').hidden && r.length >= 2"
                           " && r; })()", what="app rules on the page")
        by_key = {r[0]: r for r in rules}
        expect_eq(by_key.get(f"{APP}-rule", [None, None])[1], "default at most 2; threads at most 0.5 x the cluster's",
                  f"the rule in words: {rules}")
        expect(by_key[f"{APP}-rule"][2].startswith(("59m", "1h")), f"rule TTL left: {rules}")
        expect_eq(by_key.get(EVIL_APP, [None, None])[1], "exempt from metrics", f"exempt rule: {rules}")
        expect_eq(by_key[EVIL_APP][2], "never", "a rule without TTL")
        # stays quiet over a few polls
        b.pump(5)
        expect(not b.errors, "page errors:\n" + "\n".join(b.errors))


def test_page_with_100_clusters():
    d = lib.daemon("dash100", config_100(), PORT_100)
    wait_until(lambda: d.get_json("/aggregated-metrics")[1], lambda m: len(m) == 100,
               timeout=30, what="100 clusters aggregated")
    status, _, whole = d.request("GET", "/metrics-history")
    expect_eq(status, 200, "history of 100 clusters")
    status, _, one = d.request("GET", "/metrics-history?cluster=c042")
    expect_eq(status, 200, "history of one cluster")
    expect(len(one) < 12000, f"one cluster's history is {len(one)} bytes")
    status, _, cm = d.request("GET", "/cluster-metrics")
    expect(len(cm) < 60000, f"/cluster-metrics of 100 clusters is {len(cm)} bytes")
    with cdp.Browser() as b:
        b.navigate(d.url("/dashboard"))
        b.wait_for("document.querySelectorAll('details.cluster').length === 100", timeout=20,
                   what="100 clusters on the page")
        expect_eq(b.evaluate("document.querySelectorAll('details.cluster[open]').length"), 0,
                  "100 clusters start collapsed")
        b.wait_for("(() => { const e = document.querySelector('.value[data-metric=\"mysql/c042\"]');"
                   " return e && e.textContent === '0.420000'; })()", what="c042's value")
        # filtering leaves c050..c059
        b.evaluate("(() => { const f = document.getElementById('filter'); f.value = 'c05';"
                   " f.dispatchEvent(new Event('input')); })()")
        shown = b.evaluate("[...document.querySelectorAll('details.cluster')].filter(e => !e.hidden)"
                           ".map(e => e.dataset.cluster)")
        expect_eq(shown, [f"c05{i}" for i in range(10)], "filtered clusters")
        b.evaluate("document.querySelector('details[data-cluster=\"c057\"]').open = true")
        b.wait_for("document.querySelector('details[data-cluster=\"c057\"] svg.chart path.line') !== null",
                   what="c057's chart")
        b.pump(3)
        expect(not b.errors, "page errors:\n" + "\n".join(b.errors))
    expect(len(whole) > len(one), "history sizes")
