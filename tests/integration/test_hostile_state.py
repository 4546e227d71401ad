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
    """@apps throttled apps and @hosts skipped hosts, live for an hour, in a
    few statements (the SEQUENCE engine makes the rows). One of each is the
    app and the host the tests check, written a minute before the others:
    the oldest rows, so the first left out when a table holds more rows than
    the cap."""
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


# ---------------------------------------------------------------- secrets

UNAUTHORIZED_PORT = 18106  # answers every GET with 401
SECRETS = {
    "haproxy": "hp-Secr3t-Zq9",
    "query": "tok-Secr3t-Wy5",
    "vitess": "vt-Secr3t-Qx7",
    "probe": "probe-Wr0ng-Pw8",
    "proxysql": "psql-Wr0ng-Pw4",
    "backend": "backend-Wr0ng-Pw6",
    "memcache": "memc-Secr3t-Mk3",
    "token": "ctl-Secr3t-Tk1",
}
# Answers any client may ask for; none may hold a secret.
ANSWER_PATHS = [
    "/debug/vars", "/debug/metrics", "/metrics", "/aggregated-metrics", "/aggregated-metrics?brief=true",
    "/metrics-health", "/consensus/status", "/consensus/leader", "/raft/leader", "/config/memcache",
    "/throttled-apps", "/skipped-hosts", "/recent-apps", "/help", "/status", "/leader-check",
    "/throttle-app/secret-probe-app", "/skip-host/secret-probe-host", "/no/such/path",
]


def secrets_config(port):
    """A leading single-node daemon whose every source of errors carries a
    credential: HAProxy URLs with user:password@ (one refused, one 401), a
    token in the query of HTTP checks (answered 401), a Vitess API with user:password@ (401), a wrong MySQL
    probe password, a wrong ProxySQL password, a memcache server written with
    user:password@, and a ControlToken."""
    refused = f"127.0.0.1:{lib.REFUSED_PORT}"
    unauthorized = f"127.0.0.1:{UNAUTHORIZED_PORT}"
    return {
        "ListenPort": port,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "ControlToken": SECRETS["token"],
        "MemcacheServers": [f"127.0.0.1:{lib.MEMCACHED_PORT}",
                            f"freno:{SECRETS['memcache']}@127.0.0.1:{lib.MEMCACHED_PORT}"],
        "Stores": {"MySQL": {
            "User": ha.USER,
            "Password": SECRETS["probe"],
            "ThrottleThreshold": 1.0,
            "Clusters": {
                "hprefused": {"HAProxySettings": {
                    "Addresses": f"http://stats:{SECRETS['haproxy']}@{refused}/haproxy",
                    "PoolName": "p"}},
                "hp401": {"HAProxySettings": {
                    "Addresses": f"http://stats:{SECRETS['haproxy']}@{unauthorized}/stats",
                    "PoolName": "p"}},
                "vt401": {"VitessSettings": {
                    "API": f"http://vt:{SECRETS['vitess']}@{unauthorized}/", "Keyspace": "ks", "Shard": "0"}},
                "badpw": {"StaticHostsSettings": {"Hosts": [f"127.0.0.1:{ha.BACKEND_PORT}"]},
                          "HttpCheckPort": UNAUTHORIZED_PORT, "HttpCheckPath": f"check?token={SECRETS['query']}"},
                "psql": {"ProxySQLSettings": {"Addresses": [f"127.0.0.1:{ha.BACKEND_PORT}"], "User": ha.USER,
                                              "Password": SECRETS["proxysql"], "HostgroupID": 1}},
            },
        }},
    }


def expect_no_secret(text, where):
    for name, secret in SECRETS.items():
        expect(secret not in text, f"the {name} secret is in {where}:\n{text[:3000]}")


def test_secrets_never_in_log_or_answers():
    ha.prepare_backend()
    server = lib._HttpCheckServer("127.0.0.1", UNAUTHORIZED_PORT, 401)
    try:
        d = lib.daemon("hostile-secrets", secrets_config(ha.NODE_PORTS[0]), ha.NODE_PORTS[0])
        # A backend node with a wrong password: it never leads, and says why.
        bcfg = ha.node_config(ha.NODE_PORTS[1], "hostile-secrets")
        bcfg["BackendMySQLPassword"] = SECRETS["backend"]
        b = lib.daemon("hostile-secrets-backend", bcfg, ha.NODE_PORTS[1])

        # Every failure happened and was logged, with the URL or the
        # server named, its credentials masked.
        def logged(dm, pattern):
            return ha.log_lines(dm, pattern)
        wait_until(lambda: all([
            logged(d, r"inventory: hprefused: haproxy GET http://\*\*\*@127\.0\.0\.1:\d+/haproxy;csv;norefresh"),
            logged(d, r"inventory: hp401: haproxy GET http://\*\*\*@127\.0\.0\.1:\d+/stats;csv;norefresh: HTTP status 401"),
            logged(d, r"inventory: vt401: vitess GET http://\*\*\*@127\.0\.0\.1:\d+/api/keyspace/ks/tablets/0: HTTP status 401"),
            logged(d, r"Access denied for user"),
            logged(d, r"inventory: psql: .*Access denied"),
            logged(b, r"leader: backend .*Access denied"),
        ]), timeout=15, interval=0.2, what="every failure in the logs")
        wait_until(lambda: any("/check?token=" in p for p in server.paths), timeout=10,
                   what="an HTTP check with the token")

        for dm in (d, b):
            for path in ANSWER_PATHS:
                status, headers, body = lib.http("GET", dm.base + path, timeout=5)
                expect_no_secret(body.decode("utf-8", "replace") + str(headers), f"GET {path} on {dm.name}")
            for c in ("hprefused", "hp401", "vt401", "badpw", "psql", "nosuch"):
                status, _, body = lib.http("GET", f"{dm.base}/check/app/mysql/{c}", timeout=5)
                expect_no_secret(body.decode("utf-8", "replace"), f"/check of {c} on {dm.name}")
        # The probe error is there, without the password.
        agg = d.get_json("/aggregated-metrics")[1]
        expect("Access denied" in agg.get("mysql/badpw", ""), f"the probe error is shown: {agg}")
        # Stop both so the whole log, shutdown included, is checked (the
        # harness removes their work dirs after the test).
        for dm in (d, b):
            problems = dm.stop()
            expect(not problems, "\n".join(problems))
            expect_no_secret(dm.log_path.read_text(errors="replace"), f"the log of {dm.name}")
    finally:
        server.close()


def test_secrets_never_in_config_errors():
    """Config errors name the file, position and key path; they never echo
    the text of a line (a secret may sit on a line of its own) or the value
    of a secret key, and masked URLs and addresses stay masked."""
    secret = "cfg-Secr3t-Pw2"
    cases = [
        # A password value alone on the line after its key, unterminated.
        '{\n  "RaftDataDir": "/tmp/x",\n  "BackendMySQLPassword":\n    "' + secret + '\n}\n',
        # The secret on a line of its own after a bad token.
        '{\n  "RaftDataDir": "/tmp/x",\n  "ControlToken": [\n   ' + secret + '\n  ]\n}\n',
        # A secret key with the wrong type.
        '{"RaftDataDir": "/tmp/x", "ControlToken": ["' + secret + '"]}',
        '{"RaftDataDir": "/tmp/x", "Stores": {"MySQL": {"Password": 12345' + '}}}',
        # Credentials in values that are echoed.
        '{"RaftDataDir": "/tmp/x", "Stores": {"MySQL": {"Clusters": {"v": {"VitessSettings": '
        '{"API": "ftp://u:' + secret + '@vt/", "Keyspace": "k"}}}}}}',
        '{"RaftDataDir": "/tmp/x", "Stores": {"MySQL": {"Clusters": {"s": {"StaticHostsSettings": '
        '{"Hosts": ["u:' + secret + '@db:x"]}}}}}}',
        '{"RaftDataDir": "/tmp/x", "Stores": {"MySQL": {"Clusters": {"h": {"HAProxySettings": '
        '{"Addresses": ["http://u:' + secret + '@lb:1/"], "PoolName": "p"}}}}}}',
    ]
    import subprocess
    import tempfile
    from pathlib import Path
    work = Path(tempfile.mkdtemp(prefix="freno-it-cfgsecret-"))
    for i, text in enumerate(cases):
        cfg = work / f"c{i}.json"
        cfg.write_text(text)
        out = subprocess.run([str(lib.FRENO_BIN), "--http", "--config", str(cfg)], capture_output=True,
                             text=True, timeout=30, env=lib._env_with_sanitizer_options())
        both = out.stdout + out.stderr
        expect_eq(out.returncode, 1, f"exit status for case {i}:\n{both}")
        expect(f"c{i}.json" in both, f"the error names the file (case {i}):\n{both}")
        expect(secret not in both and "12345" not in both, f"a secret in the error of case {i}:\n{both}")
        errors = [line.split(" error ", 1)[-1] for line in both.splitlines() if " error config " in line]
        expect(errors, f"an error line for case {i}:\n{both}")
        print(f"config case {i}: {errors[0]}")
    import shutil
    shutil.rmtree(work, ignore_errors=True)
