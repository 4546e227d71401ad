# SPDX-License-Identifier: MIT
"""High availability through the MySQL backend (docs/ha.md#mysql-backend): several freno nodes
share one backend schema on the topology primary, elect one leader per
Domain, and keep operator state in the backend. HAProxy routes clients to the
leader with /leader-check, as the original's sample config does.

Each test starts its own nodes (ports 18101-18105) on a freshly created
schema (freno_ha_test, made with `freno --init-backend`), and HAProxy on
18100 where it needs one. The backend user freno_ha has rights on that
schema only, so nothing collides with the rest of the suite.

FRENO_HA_BACKEND_PORT picks another backend server laid out like a
topology node (FRENO_TOPOLOGY_DIR/n<port>/{mariadbd.sock,mariadbd.pid,my.cnf}),
e.g. a private one while the shared topology is busy.

Measured figures are printed as lines starting with "figure:" (for the
README)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import lib
from lib import expect, expect_eq, wait_until

BACKEND_PORT = int(os.environ.get("FRENO_HA_BACKEND_PORT", lib.PRIMARY))
SCHEMA = "freno_ha_test"
EMPTY_SCHEMA = "freno_ha_empty"
USER = "freno_ha"
PASSWORD = "ha-secret"
PASSWORD_ENV = "FRENO_HA_TEST_PASSWORD"  # the config says ${FRENO_HA_TEST_PASSWORD}
HAPROXY_PORT = 18100
NODE_PORTS = (18101, 18102, 18103)
OTHER_PORTS = (18104, 18105)  # a second Domain
HOSTNAME = socket.gethostname()
SHARE = "ha-share"
APP = "ha-client"

# The bounds this file asserts (docs/ha.md#lease and the issue).
NEW_LEADER_AFTER_KILL_S = 7.0
HAPROXY_200_AFTER_KILL_S = 9.0
NEW_LEADER_AFTER_TERM_S = 2.0
RELOAD_VISIBLE_S = 11.0
SHARE_REFUSE_S = 3.0
LEADER_AFTER_BACKEND_BACK_S = 7.0


# ---------------------------------------------------------------- backend

def root_sql(statement, timeout=10.0):
    return lib.sql(BACKEND_PORT, statement, timeout=timeout)


def backend_sql(statement):
    """Rows of @statement run in the test schema."""
    return root_sql(f"use {SCHEMA}; {statement}")


def prepare_backend():
    """A fresh test schema made by --init-backend, the knob table the probes
    read, and the backend user (password from the environment)."""
    os.environ[PASSWORD_ENV] = PASSWORD
    root_sql(f"""
        CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
        CREATE USER IF NOT EXISTS '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}';
        ALTER USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
        ALTER USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}';
        GRANT ALL ON {SCHEMA}.* TO '{USER}'@'127.0.0.1';
        GRANT ALL ON {SCHEMA}.* TO '{USER}'@'localhost';
        GRANT ALL ON {EMPTY_SCHEMA}.* TO '{USER}'@'127.0.0.1';
        DROP DATABASE IF EXISTS {SCHEMA};
        DROP DATABASE IF EXISTS {EMPTY_SCHEMA};
        CREATE DATABASE {EMPTY_SCHEMA};""")
    out = init_backend(SCHEMA)
    expect("tables service_election, service_health, throttled_apps, skipped_hosts and app_rules are ready"
           in out,
           f"--init-backend did not report the tables ready:\n{out}")
    # Idempotent: a second run changes nothing and succeeds.
    init_backend(SCHEMA)
    backend_sql("""CREATE TABLE knob (name varchar(16) PRIMARY KEY, v double NOT NULL);
                   INSERT INTO knob VALUES ('a', 0.1), ('b', 0.1);""")


def init_backend(schema):
    workdir = Path(tempfile.mkdtemp(prefix="freno-it-ha-init-"))
    try:
        cfg = workdir / "freno.conf.json"
        cfg.write_text(json.dumps(node_config(NODE_PORTS[0], "ha-init", schema=schema)))
        out = subprocess.run([str(lib.FRENO_BIN), "--init-backend", "--config", str(cfg)],
                             capture_output=True, text=True, timeout=60)
        text = out.stdout + out.stderr
        expect(out.returncode == 0, f"freno --init-backend failed ({out.returncode}):\n{text}")
        expect(not lib.SANITIZER_PATTERNS.search(text), f"sanitizer report from --init-backend:\n{text}")
        return text
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def set_knob(name, value):
    backend_sql(f"UPDATE knob SET v = {value} WHERE name = '{name}'")


def restore_topology():
    """After the primary was shut down: pt-heartbeat may have died with it.
    `topology.sh start` is idempotent and waits for fresh heartbeats."""
    if BACKEND_PORT == lib.PRIMARY:
        lib._topology("start")


# ---------------------------------------------------------------- nodes

def node_config(port, domain, schema=SCHEMA, knob="a", share=SHARE):
    return {
        "ListenPort": port,
        "Domain": domain,
        "ShareDomain": share,
        "BackendMySQLHost": "127.0.0.1",
        "BackendMySQLPort": BACKEND_PORT,
        "BackendMySQLSchema": schema,
        "BackendMySQLUser": USER,
        "BackendMySQLPassword": "${" + PASSWORD_ENV + "}",
        "Stores": {"MySQL": {
            "User": USER,
            "Password": PASSWORD,
            "ThrottleThreshold": 1.0,
            "Clusters": {
                "ha": {"MetricQuery": f"select v from {SCHEMA}.knob where name = '{knob}'",
                       "StaticHostsSettings": {"Hosts": [f"127.0.0.1:{BACKEND_PORT}"]}},
            },
        }},
    }


def service_id(port):
    return f"{HOSTNAME}:{port}"


class Nodes:
    """Freno nodes of one Domain, registered with the harness (which stops
    them after the test and checks their logs for sanitizer reports)."""

    def __init__(self, domain, ports, knob="a"):
        self.domain = domain
        self.by_port = {}
        for port in ports:
            d = lib.daemon(f"ha-{port}", node_config(port, domain, knob=knob), port, wait=False)
            self.by_port[port] = d
        for d in self.by_port.values():
            wait_until(lambda d=d: d.get("/lb-check")[0], lambda s: s == 200, timeout=20,
                       what=f"node {d.port} to answer /lb-check")

    def __iter__(self):
        return iter(self.by_port.values())

    def leader_check(self, exclude=()):
        """{port: /leader-check status (0 when not answering)}, asked in
        parallel of every node not in @exclude."""
        out = {}

        def ask(d):
            try:
                out[d.port] = d.get("/leader-check", timeout=1.0)[0] if d.alive() else 0
            except OSError:
                out[d.port] = 0

        threads = [threading.Thread(target=ask, args=(d,)) for d in self if d.port not in exclude]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    def leaders(self, exclude=()):
        return sorted(p for p, s in self.leader_check(exclude).items() if s == 200)

    def wait_one_leader(self, timeout, exclude=()):
        """Waits for exactly one leader (not in @exclude); returns (node, seconds waited)."""
        t0 = time.monotonic()
        ls = wait_until(lambda: self.leaders(exclude), lambda ls: len(ls) == 1,
                        timeout=timeout, interval=0.05,
                        what=f"exactly one leader in domain {self.domain}")
        return self.by_port[ls[0]], time.monotonic() - t0

    def kill9(self, d):
        """SIGKILL; the harness is told the death was on purpose."""
        d.proc.kill()
        d.proc.wait()
        d.proc = None

    def followers(self, leader):
        return [d for d in self if d is not leader and d.alive()]


class LeaderSampler:
    """Asks /leader-check of every node every 100 ms in a thread and records
    every sample where two nodes answered 200."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.samples = 0
        self.split = []
        self.history = []  # (t, leaders) at each change
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        last = None
        while self.running:
            t = time.monotonic()
            leaders = self.nodes.leaders()
            self.samples += 1
            if len(leaders) > 1:
                self.split.append((t, leaders))
            if leaders != last:
                self.history.append((t, leaders))
                last = leaders
            time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))

    def stop(self):
        self.running = False
        self.thread.join(5)

    def first_time(self, cond, after):
        for t, leaders in self.history:
            if t >= after and cond(leaders):
                return t
        return None


# ---------------------------------------------------------------- HAProxy

HAPROXY_CFG = """
global
    maxconn 256

defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout check 300ms

# As resources/haproxy.cfg of the original, with a faster check for tests.
listen freno
    bind 127.0.0.1:{port}
    option httpchk GET /leader-check
    http-check disable-on-404
    balance first
    retries 1
    default-server inter 500 fall 1 rise 1 downinter 500 on-marked-down shutdown-sessions weight 10
{servers}
"""


class HAProxy:
    def __init__(self, ports):
        if shutil.which("haproxy") is None:
            raise lib.Skip("haproxy is not installed")
        self.workdir = Path(tempfile.mkdtemp(prefix="freno-it-haproxy-"))
        servers = "\n".join(f"    server n{p} 127.0.0.1:{p} check" for p in ports)
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(port=HAPROXY_PORT, servers=servers))
        self.log = open(self.workdir / "haproxy.log", "wb")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        wait_until(lambda: self._alive() and self.get("/lb-check")[0], lambda s: s == 200, timeout=10,
                   what="haproxy to forward /lb-check")

    def _alive(self):
        if self.proc.poll() is not None:
            raise lib.TestFailure(f"haproxy exited with {self.proc.returncode}: "
                                  f"{(self.workdir / 'haproxy.log').read_text(errors='replace')}")
        return True

    def get(self, path, timeout=2.0):
        status, _, body = lib.http("GET", f"http://127.0.0.1:{HAPROXY_PORT}{path}", timeout=timeout)
        return status, body

    def get_json(self, path):
        return lib.get_json(f"http://127.0.0.1:{HAPROXY_PORT}{path}", timeout=2.0)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------- helpers

def throttled_apps(d):
    status, body = d.get_json("/throttled-apps")
    expect_eq(status, 200, f"GET /throttled-apps on {d.port}")
    return body


def expect_ok(d, path):
    status, body = d.get_json(path)
    expect_eq((status, body), (200, {"StatusCode": 200, "Message": "OK"}), f"GET {path} on {d.port}")


def wait_everywhere(nodes, what, cond, timeout):
    """Waits until cond(node) holds on every live node."""
    live = [d for d in nodes if d.alive()]
    wait_until(lambda: all(cond(d) for d in live), timeout=timeout, interval=0.2, what=what)


def log_lines(d, pattern):
    return [line for line in d.log_path.read_text(errors="replace").splitlines() if re.search(pattern, line)]


def election_rows():
    return backend_sql("SELECT domain, share_domain, service_id, "
                       "timestampdiff(second, last_seen_active, now()) FROM service_election ORDER BY domain")


# ---------------------------------------------------------------- tests

def test_backend_schema_and_one_leader():
    prepare_backend()
    # Missing tables: one clear error naming them, and no leadership.
    lonely = lib.daemon("ha-empty", node_config(NODE_PORTS[0], "ha-empty", schema=EMPTY_SCHEMA),
                        NODE_PORTS[0])
    wait_until(lambda: log_lines(lonely, "missing tables"), timeout=5, what="the missing tables error")
    time.sleep(2.5)  # more failed rounds must not repeat it
    lines = log_lines(lonely, "missing tables")
    expect_eq(len(lines), 1, "missing-tables error lines")
    expect("missing tables service_election, service_health, throttled_apps, skipped_hosts" in lines[0],
           f"the error names every table: {lines[0]}")
    expect_eq(lonely.get("/leader-check")[0], 404, "/leader-check without tables")
    lib.stop_daemon("ha-empty")

    t0 = time.monotonic()
    nodes = Nodes("ha-one", NODE_PORTS)
    leader, _ = nodes.wait_one_leader(timeout=5)
    print(f"figure: 3 fresh nodes started and elected a leader in {time.monotonic() - t0:.2f} s")
    time.sleep(2.5)  # a few more rounds: still exactly one
    expect_eq(nodes.leaders(), [leader.port], "leaders after 2.5 s more")

    # The rows the original's statements write: (domain, share_domain,
    # service_id, now()) in service_election; one service_health row each.
    rows = election_rows()
    expect_eq(len(rows), 1, f"service_election rows: {rows}")
    domain, share, sid, age = rows[0]
    expect_eq((domain, share, sid), ("ha-one", SHARE, service_id(leader.port)), "service_election row")
    expect(int(age) <= 2, f"last_seen_active is fresh (now() - {age} s)")
    health = backend_sql("SELECT service_id, domain, share_domain, "
                         "timestampdiff(second, last_seen_active, now()) <= 3 FROM service_health "
                         "ORDER BY service_id")
    expect_eq(health, [[service_id(p), "ha-one", SHARE, "1"] for p in sorted(NODE_PORTS)],
              "service_health rows")

    # What every node reports, as the original's mysql backend does.
    for d in nodes:
        status, st = d.get_json("/consensus/status")
        expect_eq(status, 200, "/consensus/status")
        is_leader = d is leader
        expect_eq((st["ServiceID"], st["IsLeader"], st["Leader"], st["Healthy"], st["Domain"], st["ShareDomain"]),
                  (service_id(d.port), is_leader, service_id(leader.port), True, "ha-one", SHARE),
                  f"/consensus/status on {d.port}")
        expect_eq(st["State"], "Leader" if is_leader else "Healthy", f"State on {d.port}")
        expect_eq(sorted(st["HealthyDomainServicesList"]), sorted(service_id(p) for p in NODE_PORTS),
                  f"HealthyDomainServicesList on {d.port}")
        expect_eq(d.get_json("/consensus/leader"), (200, service_id(leader.port)), "/consensus/leader")
        expect_eq(d.get_json("/raft/leader"), (200, service_id(leader.port)), "/raft/leader")
        expect_eq(d.get_json("/consensus/state")[1], "Leader" if is_leader else "Healthy", "/consensus/state")
        # Only the leader probes: followers have no aggregate.
        want = 200 if is_leader else 404
        wait_until(lambda d=d: d.get(f"/check/{APP}/mysql/ha")[0], lambda s: s == want, timeout=3,
                   what=f"/check on {d.port} to answer {want}")


def test_backend_go_statements_share_one_election():
    """A Go node is simulated by running the original's own statements
    (pkg/group/mysql.go, values as its driver interpolates them) every
    second: while it holds the row our nodes follow it, and when it stops
    one of ours takes over; it never takes the row from a live leader."""
    prepare_backend()
    go_id = "go-node:9777"
    attempt = ("insert ignore into service_election (domain, share_domain, service_id, last_seen_active) "
               "values ('ha-mixed', '{share}', '{sid}', now()) on duplicate key update "
               "service_id = if(last_seen_active < now() - interval 5 second, values(service_id), service_id), "
               "share_domain = if(service_id = values(service_id), values(share_domain), share_domain), "
               "last_seen_active = if(service_id = values(service_id), values(last_seen_active), last_seen_active)")
    read = ("select ifnull(max(service_id) = '{sid}', 0) as is_leader, ifnull(max(service_id), '') "
            "from service_election where domain = 'ha-mixed'")

    def go_round():
        backend_sql(attempt.format(share=SHARE, sid=go_id))
        return backend_sql(read.format(sid=go_id))[0]

    expect_eq(go_round(), ["1", go_id], "the simulated Go node leads an empty domain")
    nodes = Nodes("ha-mixed", NODE_PORTS)
    t_end = time.monotonic() + 4
    while time.monotonic() < t_end:
        expect_eq(go_round()[0], "1", "the Go node keeps its row")
        expect_eq(nodes.leaders(), [], "our nodes follow while the Go node renews")
        time.sleep(0.5)
    for d in nodes:
        expect_eq(d.get_json("/consensus/leader"), (200, go_id), f"/consensus/leader on {d.port}")
    # The Go node stops renewing: one of ours takes over within the expiry.
    t0 = time.monotonic()
    leader, _ = nodes.wait_one_leader(timeout=NEW_LEADER_AFTER_KILL_S)
    print(f"figure: takeover from a silent Go node after {time.monotonic() - t0:.2f} s")
    for _ in range(3):
        expect_eq(go_round(), ["0", service_id(leader.port)], "the Go node follows our leader")
        time.sleep(0.5)
    expect_eq(nodes.leaders(), [leader.port], "still one leader")


def test_backend_kill9_failover_through_haproxy():
    prepare_backend()
    nodes = Nodes("ha-kill", NODE_PORTS)
    leader, _ = nodes.wait_one_leader(timeout=5)
    proxy = HAProxy(NODE_PORTS)
    try:
        wait_until(lambda: proxy.get(f"/check/{APP}/mysql/ha")[0], lambda s: s == 200, timeout=5,
                   what="a 200 check through HAProxy")
        # An operator throttle through HAProxy: answered 200 only once stored.
        status, body = proxy.get_json("/throttle-app/ha-kill-app/ttl/60/ratio/1")
        expect_eq((status, body), (200, {"StatusCode": 200, "Message": "OK"}), "throttle through HAProxy")
        rows = backend_sql("SELECT ratio, timestampdiff(minute, now(), expires_at) FROM throttled_apps "
                           "WHERE app_name = 'ha-kill-app'")
        expect(rows and rows[0][0] == "1" and rows[0][1] in ("59", "60"), f"the backend row: {rows}")

        nodes.kill9(leader)
        t_kill = time.monotonic()
        new, waited = nodes.wait_one_leader(timeout=NEW_LEADER_AFTER_KILL_S + 0.5, exclude=(leader.port,))
        t_leader = time.monotonic() - t_kill
        wait_until(lambda: proxy.get(f"/check/{APP}/mysql/ha")[0], lambda s: s == 200,
                   timeout=HAPROXY_200_AFTER_KILL_S, interval=0.05, what="a 200 check through HAProxy again")
        t_proxy = time.monotonic() - t_kill
        print(f"figure: kill -9 of the leader: new leader after {t_leader:.2f} s, "
              f"clients get 200 through HAProxy after {t_proxy:.2f} s")
        expect(t_leader <= NEW_LEADER_AFTER_KILL_S, f"new leader after {t_leader:.2f} s")
        expect(t_proxy <= HAPROXY_200_AFTER_KILL_S, f"HAProxy 200 after {t_proxy:.2f} s")

        # The throttle survived the failover, on the new leader at once and
        # through HAProxy.
        expect("ha-kill-app" in throttled_apps(new), f"throttle on the new leader: {throttled_apps(new)}")
        expect_eq(proxy.get(f"/check/ha-kill-app/mysql/ha")[0], 417, "throttled app through HAProxy")
        wait_everywhere(nodes, "the throttle on every node", lambda d: "ha-kill-app" in throttled_apps(d),
                        RELOAD_VISIBLE_S - (time.monotonic() - t_kill))

        # The old leader comes back and does not take leadership back.
        leader.start()
        t_end = time.monotonic() + 4
        while time.monotonic() < t_end:
            expect_eq(nodes.leaders(), [new.port], "leaders after the old leader restarted")
            time.sleep(0.2)
        expect_eq(leader.get_json("/consensus/leader"), (200, service_id(new.port)), "the old leader follows")
    finally:
        proxy.stop()


def test_backend_sigterm_releases_leadership():
    prepare_backend()
    nodes = Nodes("ha-term", NODE_PORTS)
    leader, _ = nodes.wait_one_leader(timeout=5)
    time.sleep(1.2)  # every follower has read the leader's row at least once
    leader.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    new, _ = nodes.wait_one_leader(timeout=NEW_LEADER_AFTER_TERM_S + 1, exclude=(leader.port,))
    waited = time.monotonic() - t0
    print(f"figure: SIGTERM of the leader: new leader after {waited:.2f} s")
    expect(waited <= NEW_LEADER_AFTER_TERM_S, f"new leader after {waited:.2f} s")
    leader.proc.wait(10)
    expect_eq(leader.proc.returncode, 0, "exit status after SIGTERM")
    expect(log_lines(leader, "released leadership of domain ha-term"), "the release is logged")
    problems = leader.stop()
    expect(not problems, "\n".join(problems))


def test_backend_share_domain():
    prepare_backend()
    a = Nodes("ha-a", NODE_PORTS[:2], knob="a")
    b = Nodes("ha-b", OTHER_PORTS, knob="b")
    la, _ = a.wait_one_leader(timeout=5)
    lb, _ = b.wait_one_leader(timeout=5)
    rows = election_rows()
    expect_eq([r[:3] for r in rows], [["ha-a", SHARE, service_id(la.port)], ["ha-b", SHARE, service_id(lb.port)]],
              "one election row per Domain")
    wait_until(lambda: la.get_json("/consensus/status")[1]["ShareDomainServices"],
               lambda m: m == {"ha-b": service_id(lb.port)}, timeout=3, what="ShareDomainServices of ha-a")
    check = f"/check/{APP}/mysql/ha"
    wait_until(lambda: la.get(check)[0], lambda s: s == 200, timeout=5, what="ha-a answers 200")
    # ha-b's metric has been healthy; it goes bad there only.
    wait_until(lambda: lb.get_json("/metrics-health")[1], lambda m: "mysql/ha" in (m or {}), timeout=5,
               what="ha-b's /metrics-health lists mysql/ha")
    set_knob("b", 5)
    t0 = time.monotonic()
    wait_until(lambda: la.get(check)[0], lambda s: s == 429, timeout=SHARE_REFUSE_S + 0.5, interval=0.05,
               what="ha-a to refuse checks while ha-b's metric is unhealthy")
    refused = time.monotonic() - t0
    print(f"figure: ShareDomain: the other Domain refuses checks {refused:.2f} s after the metric went bad")
    expect(refused <= SHARE_REFUSE_S, f"refused after {refused:.2f} s")
    status, body = la.get_json(check)
    expect_eq((status, body["Message"] if body else None), (429, "Threshold exceeded"), "the refusal")
    expect_eq(la.get("/check/freno/mysql/ha")[0], 200, "app freno is not refused for a peer's health")
    set_knob("b", 0.1)
    t0 = time.monotonic()
    wait_until(lambda: la.get(check)[0], lambda s: s == 200, timeout=SHARE_REFUSE_S + 1, interval=0.05,
               what="ha-a to answer 200 again once ha-b is healthy")
    print(f"figure: ShareDomain: checks pass again {time.monotonic() - t0:.2f} s after the metric recovered")
    expect_eq(sorted(a.leaders() + b.leaders()), sorted([la.port, lb.port]), "still one leader per Domain")


def test_backend_operator_state():
    prepare_backend()
    nodes = Nodes("ha-ops", NODE_PORTS)
    leader, _ = nodes.wait_one_leader(timeout=5)
    follower = nodes.followers(leader)[0]

    expect_ok(leader, "/throttle-app/ha-ttl/ttl/30/ratio/0.5")
    expect_ok(leader, "/throttle-app/ha-perm")
    expect_ok(leader, "/throttle-app/ha-store/ttl/5?store_name=ha")
    expect_ok(follower, "/skip-host/db-ha-1/ttl/15")
    rows = backend_sql("SELECT app_name, ratio, expires_at IS NULL, timestampdiff(minute, now(), expires_at) "
                       "FROM throttled_apps ORDER BY app_name")
    expect_eq([r[:3] for r in rows], [["ha-perm", "1", "1"], ["ha-store/ha", "1", "0"], ["ha-ttl", "0.5", "0"]],
              "throttled_apps rows")
    expect(rows[1][3] in ("4", "5") and rows[2][3] in ("29", "30"), f"expiries: {rows}")
    # A ratio alone keeps the expiry (the original would make it permanent).
    expect_ok(leader, "/throttle-app/ha-ttl/ratio/0.25")
    expect_eq(backend_sql("SELECT ratio, expires_at IS NULL FROM throttled_apps WHERE app_name = 'ha-ttl'"),
              [["0.25", "0"]], "ratio-only update")
    expect_eq(throttled_apps(leader)["ha-ttl"]["Ratio"], 0.25, "local ratio")

    # Rows written straight into the backend, good and hostile: the good
    # ones load on every node within a reload period, each bad one is
    # rejected with one log line and does not stop the others.
    backend_sql("""INSERT INTO throttled_apps (app_name, throttled_at, expires_at, ratio) VALUES
        ('ha-direct', now(), now() + interval 1 hour, 0.75),
        ('ha-null-ratio', now(), NULL, NULL),
        ('ha-ratio-7', now(), NULL, 7),
        ('ha-negative-ttl', now(), now() - interval 10 minute, 1),
        (repeat('\u20ac', 100), now(), NULL, 1),
        ('ha-direct-2', now(), NULL, 0.5);
        INSERT INTO skipped_hosts (host_name, skipped_at, expires_at) VALUES
        ('db-ha-direct', now(), now() + interval 1 hour)""")
    t0 = time.monotonic()
    wait_everywhere(nodes, "the direct rows on every node",
                    lambda d: {"ha-direct", "ha-direct-2", "ha-ttl", "ha-perm"} <= set(throttled_apps(d)),
                    RELOAD_VISIBLE_S)
    print(f"figure: a row written into throttled_apps is on every node after {time.monotonic() - t0:.2f} s")
    for d in nodes:
        apps = throttled_apps(d)
        expect_eq((apps["ha-direct"]["Ratio"], apps["ha-direct-2"]["Ratio"]), (0.75, 0.5), f"ratios on {d.port}")
        bad = [k for k in apps if k.startswith("ha-null") or k.startswith("ha-ratio") or
               k.startswith("ha-negative") or k.startswith("\u20ac")]
        expect_eq(bad, [], f"rejected rows on {d.port}")
        for reason in ("ratio is NULL", "ratio 7 is outside", "negative ttl", "300 bytes is longer"):
            expect(log_lines(d, f"rejecting row .*{reason}"), f"a log line for '{reason}' on {d.port}")
    wait_until(lambda: leader.get_json("/skipped-hosts")[1], lambda h: "db-ha-direct" in (h or {}),
               timeout=RELOAD_VISIBLE_S, what="the direct skipped host on the leader")
    expect("db-ha-1" in leader.get_json("/skipped-hosts")[1], "a skip through a follower reaches the leader")

    # Unthrottle and recover: expires_at = now(), gone on every node.
    expect_ok(follower, "/unthrottle-app/ha-direct")
    expect_ok(leader, "/recover-host/db-ha-1")
    expect_eq(backend_sql("SELECT expires_at <= now() FROM throttled_apps WHERE app_name = 'ha-direct' UNION ALL "
                          "SELECT expires_at <= now() FROM skipped_hosts WHERE host_name = 'db-ha-1'"),
              [["1"], ["1"]], "expired rows")
    expect("db-ha-1" not in leader.get_json("/skipped-hosts")[1], "recovered at once on the leader")
    wait_everywhere(nodes, "the unthrottle on every node", lambda d: "ha-direct" not in throttled_apps(d),
                    RELOAD_VISIBLE_S)

    # A write the backend refuses: 500 with the reason, nothing applied.
    backend_sql("RENAME TABLE throttled_apps TO throttled_apps_away")
    try:
        status, body = leader.get_json("/throttle-app/ha-lost")
        expect_eq(status, 500, "throttle while the table is missing")
        expect("doesn't exist" in body["Message"], f"the reason: {body}")
        expect("ha-lost" not in throttled_apps(leader), "nothing applied locally")
    finally:
        backend_sql("RENAME TABLE throttled_apps_away TO throttled_apps")

    # A second reload later, each bad row is still reported only once.
    time.sleep(max(0.0, 10.5 - (time.monotonic() - t0)))
    wait_until(lambda: leader.get_json("/throttled-apps")[1], lambda a: "ha-direct-2" in (a or {}), timeout=3,
               what="the reload after the table came back")
    for d in nodes:
        expect_eq(len(log_lines(d, "rejecting row .*ratio is NULL")), 1, f"lines for one bad row on {d.port}")


def test_backend_stalled_and_down():
    prepare_backend()
    nodes = Nodes("ha-fault", NODE_PORTS)
    leader, _ = nodes.wait_one_leader(timeout=5)
    expect_ok(leader, "/throttle-app/ha-fault-app/ttl/60/ratio/0.5")
    expect_ok(leader, "/skip-host/db-ha-fault/ttl/60")
    sampler = LeaderSampler(nodes)
    frozen = False
    try:
        # Stalled: SIGSTOP keeps the sockets open but answers nothing.
        time.sleep(1)
        lib.freeze_node(BACKEND_PORT)
        frozen = True
        t_stop = time.monotonic()
        # An operator command cannot be stored: 500 with the reason, nothing
        # applied, and the node does not hang.
        t0 = time.monotonic()
        status, body = leader.get_json("/throttle-app/ha-during-stall", timeout=5)
        expect_eq(status, 500, f"throttle while the backend is stalled ({body})")
        expect(time.monotonic() - t0 < 3, "the refusal came within the backend timeouts")
        expect("ha-during-stall" not in throttled_apps(leader), "nothing applied during the stall")
        time.sleep(max(0.0, 8 - (time.monotonic() - t_stop)))
        gone = sampler.first_time(lambda ls: ls == [], t_stop)
        expect(gone is not None, f"the leader stepped down while the backend was stalled: {sampler.history}")
        print(f"figure: backend stalled: the leader stepped down after {gone - t_stop:.2f} s")
        lib.thaw_node(BACKEND_PORT)
        frozen = False
        t_back = time.monotonic()
        _, _ = nodes.wait_one_leader(timeout=LEADER_AFTER_BACKEND_BACK_S)
        print(f"figure: backend resumed: a leader again after {time.monotonic() - t_back:.2f} s")

        # Down: connections refused.
        lib.shutdown_node(BACKEND_PORT)
        t_down = time.monotonic()
        status, body = leader.get_json("/skip-host/db-ha-during-down")
        expect_eq(status, 500, f"skip-host while the backend is down ({body})")
        expect("Can't connect" in body["Message"], f"the reason: {body}")
        expect("db-ha-during-down" not in leader.get_json("/skipped-hosts")[1], "nothing skipped")
        time.sleep(max(0.0, 6 - (time.monotonic() - t_down)))
        expect_eq(nodes.leaders(), [], "no leader while the backend is down")
        lib.start_node(BACKEND_PORT)
        t_back = time.monotonic()
        _, _ = nodes.wait_one_leader(timeout=LEADER_AFTER_BACKEND_BACK_S)
        print(f"figure: backend restarted (down {t_back - t_down:.1f} s): "
              f"a leader again after {time.monotonic() - t_back:.2f} s")
    finally:
        if frozen:
            lib.thaw_node(BACKEND_PORT)
        sampler.stop()
        restore_topology()
    expect_eq(sampler.split, [], "samples where two nodes answered /leader-check 200")
    expect(sampler.samples > 100, f"enough samples ({sampler.samples})")
    print(f"figure: {sampler.samples} samples of /leader-check on 3 nodes every 100 ms, never two leaders")
    for d in nodes:
        expect(d.alive(), f"node {d.port} is alive")
    # Operator state intact, in the backend and on every node.
    expect_eq(backend_sql("SELECT ratio FROM throttled_apps WHERE app_name = 'ha-fault-app'"), [["0.5"]],
              "the throttle row")
    wait_everywhere(nodes, "the throttle on every node", lambda d: "ha-fault-app" in throttled_apps(d),
                    RELOAD_VISIBLE_S)
    leader, _ = nodes.wait_one_leader(timeout=1)
    expect("db-ha-fault" in leader.get_json("/skipped-hosts")[1], "the skipped host on the leader")
    # Errors were logged once per state change, not once a second.
    for d in nodes:
        n = len(log_lines(d, r"backend .*: election: "))
        expect(n <= 6, f"{n} election error lines on {d.port}:\n" + "\n".join(log_lines(d, "election")))
