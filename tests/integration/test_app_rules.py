# SPDX-License-Identifier: MIT
"""Per-app rules (docs/semantics.md#app-rules, docs/api.md#app-rule) against
the MariaDB topology: a rule lets one app go on at a replication lag where
another is refused; rules are validated, listed, bounded by MaxAppRules,
kept across restarts in raft mode and across a kill -9 failover with the
MySQL backend, where the original's statements keep working beside the new
table.

Lag comes from a stopped SQL thread on R2 (lib.stop_sql_thread; the runner
starts it again after each test). Every wait has a deadline."""

import time

import lib
import test_backend_ha as ha
import test_raft as raft
from lib import R2, expect, expect_eq, wait_until

RULES_PORT = 13387

OK = (200, "OK")


def control(d, path):
    status, body = d.get_json(path)
    return status, (body or {}).get("Message")


def rules(d):
    status, body = d.get_json("/app-rules")
    expect_eq(status, 200, f"GET /app-rules on {d.port}")
    return body


def check(d, app, store):
    return d.get_json(f"/check/{app}/mysql/{store}")


# ---------------------------------------------------------------- rules on lag

def test_rule_lets_one_app_pass_at_a_lag_another_is_refused():
    d = lib.main_daemon()
    wait_until(lambda: check(d, "it-rule-b", "lagr2")[0], lambda s: s == 200, timeout=15,
               what="lagr2 healthy before the test")
    try:
        # gh-ost-like: goes on up to an hour of lag on lagr2 only; an
        # archiver-like app stops at half the cluster's threshold.
        expect_eq(control(d, "/app-rule/it-rule-a?threshold=3600&store_name=lagr2"), OK, "rule for A")
        expect_eq(control(d, "/app-rule/it-rule-half?factor=0.5"), OK, "factor rule")
        expect_eq(control(d, "/app-rule/it-rule-exempt?exempt=1&ttl=30"), OK, "exempt rule")
        listed = rules(d)
        expect_eq(listed.get("it-rule-a/lagr2"),
                  {"ExpireAt": "0001-01-01T00:00:00Z", "Exempt": False, "Metrics": [],
                   "Thresholds": {"default": 3600}, "Factors": {}}, "/app-rules entry of A")
        expect_eq(listed["it-rule-half"]["Factors"], {"default": 0.5}, "/app-rules entry of the factor")
        expect(29 * 60 < lib.seconds_from_now(listed["it-rule-exempt"]["ExpireAt"]) <= 30 * 60,
               f"exempt rule expires in 30 minutes: {listed['it-rule-exempt']}")

        # With no lag, no rule changes the original fields of a passing check.
        status, body = check(d, "it-rule-b", "lagr2")
        expect_eq(status, 200, f"B without lag: {body}")
        expect("Rule" not in body, f"no rule, no Rule field: {body}")

        lib.stop_sql_thread(R2)
        status, body = wait_until(lambda: check(d, "it-rule-b", "lagr2"), lambda r: r[0] == 429,
                                  timeout=15, what="B refused once R2 lags over 1 s")
        lag = body["Value"]
        expect(lag > 1, f"the lag that refuses B: {body}")
        status, body = check(d, "it-rule-a", "lagr2")
        expect_eq(status, 200, f"A at the same lag, held to its rule's 3600 s: {body}")
        expect_eq(body["Threshold"], 3600, "A's Threshold is its rule's")
        expect_eq(body["Rule"], {"Key": "it-rule-a/lagr2", "Exempt": False}, "A's answer names the rule")
        expect_eq(body["Metrics"][0]["ThresholdFrom"], "rule", "the threshold came from the rule")
        # The rule is scoped to lagr2: on lag (R1 and R2) A is held to 1 s.
        status, body = wait_until(lambda: check(d, "it-rule-a", "lag"), lambda r: r[0] == 429,
                                  timeout=10, what="A refused on a cluster its rule does not name")
        expect("Rule" not in body, f"no rule on lag: {body}")
        status, body = check(d, "it-rule-exempt", "lagr2")
        expect_eq((status, body["Rule"]["Exempt"], body["Metrics"]), (200, True, []), f"exempt app: {body}")
        status, body = check(d, "it-rule-half", "lagr2")
        expect_eq((status, body["Threshold"], body["Metrics"][0]["ThresholdFrom"]), (429, 0.5, "rule-factor"),
                  f"factor rule: {body}")
        expect("set by app rule it-rule-half" in body["Reason"], f"Reason names the rule: {body}")
        # An exempt app still obeys /throttle-app.
        expect_eq(control(d, "/throttle-app/it-rule-exempt/ttl/5"), OK, "throttle the exempt app")
        expect_eq(check(d, "it-rule-exempt", "lagr2")[0], 417, "exempt app throttled")
        expect_eq(control(d, "/unthrottle-app/it-rule-exempt"), OK, "unthrottle")

        # Removing the rule puts A back under the cluster's threshold.
        expect_eq(control(d, "/remove-app-rule/it-rule-a?store_name=lagr2"), OK, "remove A's rule")
        expect("it-rule-a/lagr2" not in rules(d), "gone from /app-rules")
        status, body = check(d, "it-rule-a", "lagr2")
        expect_eq(status, 429, f"A without its rule: {body}")
        expect("Rule" not in body, f"no Rule field once removed: {body}")
    finally:
        for path in ("/remove-app-rule/it-rule-a?store_name=lagr2", "/remove-app-rule/it-rule-half",
                     "/remove-app-rule/it-rule-exempt", "/unthrottle-app/it-rule-exempt"):
            d.get_json(path)


def test_rule_requests_are_validated():
    d = lib.main_daemon()
    long_app = "x" * 129
    cases = [
        ("/app-rule/v", "app-rule: an empty rule: give threshold, factor, metrics or exempt=1"),
        ("/app-rule/v?threshold=abc", 'app-rule: threshold of default: "abc" is not a decimal number'),
        ("/app-rule/v?threshold=0x1", 'app-rule: threshold of default: "0x1" is not a decimal number'),
        ("/app-rule/v?threshold=-2", "app-rule: threshold of default must be in [0, 1e+15]; got -2"),
        ("/app-rule/v?factor=0", "app-rule: factor of default must be above 0 and at most 1e+06; got 0"),
        ("/app-rule/v?exempt=1&threshold=2",
         "app-rule: exempt excludes metrics, threshold and factor: give one or the other"),
        ("/app-rule/v?exempt=maybe", 'app-rule: exempt "maybe" is not 1, 0, true or false'),
        ("/app-rule/v?metrics=a,a", "app-rule: metrics: a is named twice"),
        ("/app-rule/v?metrics=a&threshold=b:1",
         "app-rule: b has a threshold or factor but is not in the rule's metrics"),
        ("/app-rule/v?metric=a%20b&threshold=1",
         'app-rule: metric: metric name "a b" is not 1 to 32 of [A-Za-z0-9_-]'),
        ("/app-rule/v?threshold=1&ttl=-1", "app-rule: ttl -1 is not a whole number of minutes, 0 or more"),
        ("/app-rule/v?threshold=1&ttl=1.5", "app-rule: ttl 1.5 is not a whole number of minutes, 0 or more"),
        ("/app-rule/freno?threshold=1", "app-rule: freno is the daemon's own app; it takes no rule"),
        (f"/app-rule/{long_app}?threshold=1",
         "app-rule: name of 129 bytes is longer than the 128 bytes the backend can store"),
    ]
    for path, want in cases:
        expect_eq(control(d, path), (400, want), f"GET {path}")
    expect("v" not in rules(d), "nothing stored by refused requests")
    # Removing a rule that does not exist is fine, as unthrottling is.
    expect_eq(control(d, "/remove-app-rule/never-set"), OK, "remove an unknown rule")


# ---------------------------------------------------------------- raft single node

def rules_config(**extra):
    cfg = {
        "ListenPort": RULES_PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "ControlToken": "rules-secret",
        "MaxAppRules": 2,
        "Stores": {"MySQL": {"User": "freno", "Password": "freno", "ThrottleThreshold": 1.0,
                             "Clusters": {"lagr2": lib.cluster([R2])}}},
    }
    cfg.update(extra)
    return cfg


def test_rules_token_limit_and_raft_restart():
    d = lib.daemon("rules", rules_config(), RULES_PORT)
    auth = {"X-Freno-Token": "rules-secret"}

    def ctl(path):
        status, body = d.get_json(path, headers=auth)
        return status, (body or {}).get("Message")

    expect_eq(control(d, "/app-rule/r1?threshold=5"), (401, "control request: missing or wrong token"),
              "no token")
    expect_eq(control(d, "/remove-app-rule/r1"), (401, "control request: missing or wrong token"),
              "no token to remove")
    expect_eq(ctl("/app-rule/r1?threshold=5"), OK, "first rule")
    expect_eq(ctl("/app-rule/r2?metrics=default,threads&threshold=default:2&factor=threads:3&ttl=60"), OK,
              "second rule")
    expect_eq(ctl("/app-rule/r3?exempt=1"),
              (500, "app-rule: limit reached: 2 apps have rules (MaxAppRules); remove some or raise the limit"),
              "a third rule past MaxAppRules")
    expect_eq(ctl("/app-rule/r1?factor=2"), OK, "replacing a rule takes no room")
    before = rules(d)
    expect_eq(sorted(before), ["r1", "r2"], "rules held")
    expect_eq(before["r1"]["Thresholds"], {}, "a rule is replaced whole")
    expect_eq(before["r1"]["Factors"], {"default": 2}, "the new rule")
    expect_eq(before["r2"]["Metrics"], ["default", "threads"], "subset")

    # A clean restart and a kill -9 both keep the rules.
    d.restart()
    wait_until(lambda: raft.is_leader(d), timeout=5, interval=0.02, what="leader after restart")
    expect_eq(rules(d), before, "rules after a restart")
    expect_eq(ctl("/remove-app-rule/r1"), OK, "remove")
    expect_eq(ctl("/app-rule/r4?exempt=1"), OK, "room again")
    after = rules(d)
    raft.kill9(d)
    d.start()
    wait_until(lambda: raft.is_leader(d), timeout=5, interval=0.02, what="leader after kill -9")
    expect_eq(rules(d), after, "rules after kill -9")
    status, body = check(d, "r4", "lagr2")
    expect_eq((status, body.get("Rule")), (200, {"Key": "r4", "Exempt": True}), f"the restored rule applies: {body}")


def test_rules_raft_three_nodes_replicate_and_fail_over():
    nodes = raft.start_cluster("rules-n")
    leader = raft.one_leader(nodes)
    followers = [n for n in nodes if n is not leader]
    expect_eq(control(followers[0], "/app-rule/x?threshold=1"), (500, "not leader"), "follower refuses")
    expect_eq(control(leader, "/app-rule/gh-ost?threshold=2"), OK, "rule on the leader")
    want = rules(leader)
    for f in followers:
        wait_until(lambda f=f: rules(f), lambda r: r == want, timeout=3, what=f"{f.name} to apply the rule")
    raft.kill9(leader)
    new = wait_until(lambda: raft.leaders(followers), lambda ls: len(ls) == 1, timeout=5,
                     what="a new leader after kill -9")[0]
    expect_eq(rules(new), want, "the rule on the new leader")
    expect_eq(control(new, "/remove-app-rule/gh-ost"), OK, "remove on the new leader")
    leader.start()
    wait_until(lambda: rules(leader), lambda r: r == {}, timeout=5, what="the old leader to catch up")


# ---------------------------------------------------------------- MySQL backend

GO_ATTEMPT = ("insert ignore into service_election (domain, share_domain, service_id, last_seen_active) "
              "values ('{domain}', '{share}', '{sid}', now()) on duplicate key update "
              "service_id = if(last_seen_active < now() - interval 5 second, values(service_id), service_id), "
              "share_domain = if(service_id = values(service_id), values(share_domain), share_domain), "
              "last_seen_active = if(service_id = values(service_id), values(last_seen_active), last_seen_active)")
GO_THROTTLE = ("replace into throttled_apps (app_name, throttled_at, expires_at, ratio) "
               "values ('{app}', now(), now() + interval 10 minute, -1)")
GO_LOAD = "select app_name, ratio, expires_at from throttled_apps where expires_at > now()"


def test_rules_survive_kill9_failover_with_mysql_backend():
    ha.prepare_backend()
    expect_eq(ha.backend_sql("SHOW TABLES LIKE 'app_rules'"), [["app_rules"]],
              "--init-backend created app_rules")
    nodes = ha.Nodes("rules-ha", ha.NODE_PORTS)
    leader, _ = nodes.wait_one_leader(timeout=5)
    ha.set_knob("a", 1.5)  # over the cluster's threshold of 1
    wait_until(lambda: check(leader, "ha-b", "ha")[0], lambda s: s == 429, timeout=10,
               what="ha-b refused at 1.5")
    follower = nodes.followers(leader)[0]
    expect_eq(control(follower, "/app-rule/ha-a?threshold=2&store_name=ha"), OK,
              "a rule through a follower reaches the leader")
    expect_eq(control(leader, "/app-rule/ha-x?exempt=1&ttl=30"), OK, "exempt with a TTL")
    rows = ha.backend_sql("SELECT app_name, rule, expires_at IS NULL, timestampdiff(minute, now(), expires_at) "
                          "FROM app_rules ORDER BY app_name")
    expect_eq([r[:3] for r in rows], [["ha-a/ha", '{"Thresholds":{"default":2}}', "1"],
                                      ["ha-x", '{"Exempt":true}', "0"]], "app_rules rows")
    expect(rows[1][3] in ("29", "30"), f"TTL of the exempt rule: {rows}")
    wait_until(lambda: check(leader, "ha-a", "ha")[0], lambda s: s == 200, timeout=ha.RELOAD_VISIBLE_S,
               what="ha-a to pass at 1.5 on the leader once it loaded the follower's rule")

    # A node of the original sharing the backend runs its own statements
    # beside the new table: its throttle lands and ours loads it.
    ha.backend_sql(GO_ATTEMPT.format(domain="rules-go", share=ha.SHARE, sid="go-node:9777"))
    ha.backend_sql(GO_THROTTLE.format(app="ha-go-app"))
    expect_eq([r[0] for r in ha.backend_sql(GO_LOAD)], ["ha-go-app"], "the original's load query")

    # Hostile rows: each rejected with one log line, the rest still loads.
    ha.backend_sql("""INSERT INTO app_rules (app_name, rule, ruled_at, expires_at) VALUES
        ('ha-bad-json', 'not json', now(), NULL),
        ('ha-bad-neg', '{"Thresholds":{"default":-1}}', now(), NULL),
        ('ha-direct', '{"Factors":{"default":3}}', now(), NULL)""")
    ha.wait_everywhere(nodes, "the direct rule on every node", lambda d: "ha-direct" in rules(d),
                       ha.RELOAD_VISIBLE_S)

    nodes.kill9(leader)
    new, _ = nodes.wait_one_leader(timeout=ha.NEW_LEADER_AFTER_KILL_S + 0.5, exclude=(leader.port,))
    got = rules(new)
    expect_eq(sorted(got), ["ha-a/ha", "ha-direct", "ha-x"], f"rules on the new leader: {got}")
    expect_eq(got["ha-a/ha"]["Thresholds"], {"default": 2}, "the rule after failover")
    status, body = wait_until(lambda: check(new, "ha-a", "ha"), lambda r: r[0] == 200, timeout=10,
                              what="ha-a to pass on the new leader")
    expect_eq(body["Rule"], {"Key": "ha-a/ha", "Exempt": False}, f"the new leader applies the rule: {body}")
    expect_eq(check(new, "ha-b", "ha")[0], 429, "ha-b still refused")
    expect("ha-go-app" in ha.throttled_apps(new), "the original's throttle on the new leader")
    for d in nodes:
        if not d.alive():
            continue
        for reason in ("rule text: column", "threshold of default must be in"):
            expect(ha.log_lines(d, f"app_rules: rejecting row .*{reason}"),
                   f"a log line for '{reason}' on {d.port}")

    expect_eq(control(new, "/remove-app-rule/ha-a?store_name=ha"), OK, "remove on the new leader")
    expect_eq(ha.backend_sql("SELECT COUNT(*) FROM app_rules WHERE app_name = 'ha-a/ha'"), [["0"]],
              "row deleted")
    expect_eq(check(new, "ha-a", "ha")[0], 429, "ha-a refused without its rule")
    ha.set_knob("a", 0.1)


def test_rules_backend_without_the_table():
    """A backend made before rules existed (no app_rules): the nodes lead
    and serve as before; a rule request says what is missing."""
    ha.prepare_backend()
    ha.backend_sql("DROP TABLE app_rules")
    nodes = ha.Nodes("rules-old", ha.NODE_PORTS[:1])
    leader, _ = nodes.wait_one_leader(timeout=5)
    wait_until(lambda: check(leader, "any", "ha")[0], lambda s: s == 200, timeout=10,
               what="checks answered as before")
    status, msg = control(leader, "/app-rule/x?threshold=2")
    expect_eq(status, 500, f"rule without the table: {msg}")
    expect("has no table app_rules; create it with freno --init-backend" in msg, f"the reason: {msg}")
    expect_eq(rules(leader), {}, "no rules")
    expect(ha.log_lines(leader, "no table app_rules, so per-app rules are off"), "logged once at start")
    # Once the table is created the next request works.
    ha.init_backend(ha.SCHEMA)
    wait_until(lambda: control(leader, "/app-rule/x?threshold=2"), lambda r: r == OK, timeout=5,
               what="a rule once app_rules exists")
    expect_eq(list(rules(leader)), ["x"], "the rule")
