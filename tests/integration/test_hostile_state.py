# SPDX-License-Identifier: MIT
"""Heavy operator state and secrets, against the real daemon and topology.

* Tens of thousands of throttled apps and skipped hosts stored in the MySQL
  backend (what 100,000 GETs of /throttle-app/<random> leave behind): a new
  node must lead, serve and enforce them within seconds of its election, and
  the caps on active entries (MaxThrottledApps, MaxSkippedHosts) answer a
  request past them with a clear error and change nothing.
* Credentials in inventory URLs and a wrong MySQL password: the secrets
  never reach the log or any answer.

Nodes run with the MySQL backend of test_backend_ha.py (its schema, user
and helpers). Measured figures are printed as lines starting with
"figure:"."""

import datetime
import re
import time

import lib
import test_backend_ha as ha
from lib import expect, expect_eq, wait_until

NODE_PORT = ha.NODE_PORTS[0]
CLUSTER = "ha"
ENFORCED_APP = "hostile-enforced-app"
SKIPPED_IP = "127.0.0.9"  # a probed host that refuses connections: skipped, it is left out
SERVE_20K_S = 10.0
SERVE_100K_AFTER_ELECTION_S = 5.0


# ---------------------------------------------------------------- helpers

def state_config(port, domain, **extra):
    cfg = ha.node_config(port, domain)
    cfg["Stores"]["MySQL"]["Clusters"][CLUSTER]["StaticHostsSettings"]["Hosts"] = [
        f"127.0.0.1:{ha.BACKEND_PORT}", f"{SKIPPED_IP}:{lib.REFUSED_PORT}"]
    cfg.update(extra)
    return cfg


def store_rows(apps, hosts):
    """@apps throttled apps and @hosts skipped hosts, live for an hour, in
    two statements (the SEQUENCE engine makes the rows); one of each is the
    app and host the test checks: the enforced app is the oldest row, so a
    load that keeps the newest rows must still not drop it at the cap."""
    ha.backend_sql(f"""
        INSERT INTO throttled_apps (app_name, throttled_at, expires_at, ratio)
          SELECT concat('hostile-app-', lpad(seq, 6, '0')), now(), now() + interval 1 hour, 1
          FROM seq_1_to_{apps - 1};
        INSERT INTO throttled_apps (app_name, throttled_at, expires_at, ratio)
          VALUES ('{ENFORCED_APP}', now() - interval 1 minute, now() + interval 1 hour, 1);
        INSERT INTO skipped_hosts (host_name, skipped_at, expires_at)
          SELECT concat('hostile-host-', lpad(seq, 6, '0')), now(), now() + interval 1 hour
          FROM seq_1_to_{hosts - 1};
        INSERT INTO skipped_hosts (host_name, skipped_at, expires_at)
          VALUES ('{SKIPPED_IP}', now() - interval 1 minute, now() + interval 1 hour)""")
    got = ha.backend_sql("SELECT (SELECT count(*) FROM throttled_apps), (SELECT count(*) FROM skipped_hosts)")
    expect_eq(got, [[str(apps), str(hosts)]], "rows stored")


def log_time(line):
    """The wall-clock time (epoch seconds) at the start of a log line."""
    stamp = line.split(" ", 1)[0]
    t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def wait_serving(d, timeout):
    """Waits for @d to answer as leader and enforce the stored state: the
    cluster's check answers 200 (so the skipped, refusing host is left out)
    and the enforced app gets 417. Returns the wall-clock time it first did."""
    def state():
        return (d.get("/leader-check", timeout=2)[0],
                d.get(f"/check/hostile-client/mysql/{CLUSTER}", timeout=2)[0],
                d.get(f"/check/{ENFORCED_APP}/mysql/{CLUSTER}", timeout=2)[0])
    wait_until(state, lambda s: s == (200, 200, 417), timeout=timeout, interval=0.05,
               what=f"node {d.port} to lead, serve and enforce the stored state")
    return time.time()


def election_to_serving(d):
    """Seconds from the election log line to the serving log line."""
    elected = ha.log_lines(d, r"leader: elected in domain")
    leading = ha.log_lines(d, r"leader: leading domain")
    expect(elected and leading, f"election and serving log lines on {d.port}:\n{d.log_tail()}")
    return log_time(elected[0]), log_time(leading[0])


def count_json(d, path):
    status, body = d.get_json(path, timeout=10)
    expect_eq(status, 200, f"GET {path}")
    return body


# ---------------------------------------------------------------- heavy state

def test_state_20k_rows_new_node_leads_serves_and_enforces():
    ha.prepare_backend()
    store_rows(20000, 20000)
    t0 = time.time()
    d = lib.daemon("hostile-state", state_config(NODE_PORT, "hostile-20k"), NODE_PORT, wait=False)
    t_serving = wait_serving(d, SERVE_20K_S)
    t_elected, t_leading = election_to_serving(d)
    print(f"figure: 20,000 apps + 20,000 hosts stored: serving {t_serving - t0:.2f} s after start, "
          f"{t_leading - t_elected:.2f} s from election to serving")
    expect(t_serving - t0 <= SERVE_20K_S, f"serving after {t_serving - t0:.2f} s")
    apps = count_json(d, "/throttled-apps")
    hosts = count_json(d, "/skipped-hosts")
    expect(ENFORCED_APP in apps and "hostile-app-019999" in apps, "stored apps loaded")
    expect_eq(len([a for a in apps if a.startswith("hostile-")]), 20000, "throttled apps loaded")
    expect_eq(len(hosts), 20000, "skipped hosts loaded")
    expect_eq(d.get("/check/hostile-app-000001/mysql/ha")[0], 417, "a stored app is throttled")


def test_state_100k_rows_serve_within_5s_of_election_and_caps():
    ha.prepare_backend()
    store_rows(100000, 100000)
    d = lib.daemon("hostile-state", state_config(NODE_PORT, "hostile-100k"), NODE_PORT, wait=False)
    t_serving = wait_serving(d, 30)
    t_elected, t_leading = election_to_serving(d)
    load_s, visible_s = t_leading - t_elected, t_serving - t_elected
    print(f"figure: 100,000 apps + 100,000 hosts stored: {load_s:.2f} s from election to serving "
          f"(log), leadership and enforcement visible {visible_s:.2f} s after the election")
    expect(load_s <= SERVE_100K_AFTER_ELECTION_S, f"{load_s:.2f} s from election to serving")
    expect(visible_s <= SERVE_100K_AFTER_ELECTION_S, f"visible {visible_s:.2f} s after the election")

    # At the caps (100,000 each by default): a new entry is refused with a
    # clear error and nothing changes, here or in the backend; an existing
    # entry can still be changed, and removing one makes room.
    status, body = d.get_json("/throttle-app/hostile-one-too-many")
    expect_eq(status, 500, f"a throttle past the cap: {body}")
    expect("MaxThrottledApps" in body["Message"] and "100000" in body["Message"],
           f"the error names the cap and its key: {body}")
    status, body = d.get_json("/skip-host/hostile-host-too-many")
    expect_eq(status, 500, f"a skip past the cap: {body}")
    expect("MaxSkippedHosts" in body["Message"], f"the error names the cap and its key: {body}")
    expect_eq(ha.backend_sql("SELECT count(*) FROM throttled_apps WHERE app_name = 'hostile-one-too-many' "
                             "UNION ALL SELECT count(*) FROM skipped_hosts WHERE host_name = 'hostile-host-too-many'"),
              [["0"], ["0"]], "nothing written past the caps")
    expect("hostile-one-too-many" not in count_json(d, "/throttled-apps"), "nothing applied past the cap")

    t = time.monotonic()
    ha.expect_ok(d, "/throttle-app/hostile-app-000001/ratio/0.5")
    update_s = time.monotonic() - t
    expect_eq(count_json(d, "/throttled-apps")["hostile-app-000001"]["Ratio"], 0.5, "an update at the cap")
    ha.expect_ok(d, "/unthrottle-app/hostile-app-000002")
    t = time.monotonic()
    ha.expect_ok(d, "/throttle-app/hostile-one-more")
    add_s = time.monotonic() - t
    print(f"figure: with 100,000 apps: a ratio update answered in {update_s * 1000:.0f} ms, "
          f"a new throttle in {add_s * 1000:.0f} ms")
    expect_eq(d.get("/check/hostile-one-more/mysql/ha")[0], 417, "the new throttle is enforced")
    status, body = d.get_json("/throttle-app/hostile-two-more")
    expect_eq(status, 500, f"full again: {body}")


def test_state_more_rows_than_the_cap_load_the_newest():
    """Rows written by other nodes can exceed this node's cap: it loads the
    newest up to the cap, the same rows every time, and says so once."""
    ha.prepare_backend()
    store_rows(3000, 3000)
    cfg = state_config(NODE_PORT, "hostile-cap", MaxThrottledApps=1000, MaxSkippedHosts=1000)
    d = lib.daemon("hostile-state", cfg, NODE_PORT, wait=False)
    wait_until(lambda: d.get("/leader-check")[0], lambda s: s == 200, timeout=10, what="leadership")
    apps = count_json(d, "/throttled-apps")
    hosts = count_json(d, "/skipped-hosts")
    user_apps = [a for a in apps if a.startswith("hostile-")]
    expect_eq(len(user_apps), 1000, "apps loaded at a cap of 1000")
    expect_eq(len(hosts), 1000, "hosts loaded at a cap of 1000")
    # The oldest rows are the ones left out.
    expect(ENFORCED_APP not in apps and SKIPPED_IP not in hosts, "the oldest rows are left out")
    first = set(user_apps)
    warn = ha.log_lines(d, r"throttled_apps: .*more than 1000 live rows")
    expect_eq(len(warn), 1, f"one warning about the rows left out:\n{d.log_tail()}")
    expect(ha.log_lines(d, r"skipped_hosts: .*more than 1000 live rows"), "a warning for skipped_hosts too")
    # The next reload (every 10 s) keeps the same rows and does not warn again.
    time.sleep(10.5)
    expect_eq({a for a in count_json(d, "/throttled-apps") if a.startswith("hostile-")}, first,
              "the same rows after a reload")
    expect_eq(len(ha.log_lines(d, r"throttled_apps: .*more than 1000 live rows")), 1, "still one warning")


def test_state_caps_in_raft_mode():
    """Raft single-node mode has the same caps: the command past them is
    refused before it reaches the log, and the state restored after a
    restart (snapshot plus log) is the same, still at the cap."""
    import test_raft as rt
    d = rt.node("hostile-raft", rt.single_config(MaxThrottledApps=100, MaxSkippedHosts=10), rt.SINGLE_HTTP)
    c = d.client()
    for i in range(100):
        status, _ = c.request("GET", f"/throttle-app/cap-{i:03d}/ttl/60")
        expect_eq(status, 200, f"throttle cap-{i:03d}")
    for i in range(10):
        status, _ = c.request("GET", f"/skip-host/cap-host-{i}")
        expect_eq(status, 200, f"skip cap-host-{i}")
    c.close()

    def refused(path, key):
        status, body = d.get_json(path)
        expect_eq(status, 500, f"{path} past the cap: {body}")
        expect(key in body["Message"] and "limit reached" in body["Message"], f"the error names {key}: {body}")

    refused("/throttle-app/cap-one-too-many", "MaxThrottledApps")
    refused("/skip-host/cap-host-too-many", "MaxSkippedHosts")
    ha.expect_ok(d, "/throttle-app/cap-000/ratio/0.5")  # an existing entry still changes
    before = rt.throttled(d)
    expect_eq(len(before), 100, "throttled apps at the cap")
    expect_eq(before["cap-000"]["Ratio"], 0.5, "the changed entry")
    d.restart()
    expect_eq(rt.throttled(d), before, "the same apps after a restart")
    expect_eq(len(rt.skipped(d)), 10, "the same hosts after a restart")
    refused("/throttle-app/cap-one-too-many", "MaxThrottledApps")
    ha.expect_ok(d, "/unthrottle-app/cap-001")
    ha.expect_ok(d, "/throttle-app/cap-one-more")
    expect("cap-one-more" in rt.throttled(d), "room after an unthrottle")
