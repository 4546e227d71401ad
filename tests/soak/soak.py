#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Soak: three freno nodes (the build under test, normally ASan+UBSan) share
the MySQL backend on the topology primary and sit behind HAProxy, as in
tests/integration/test_backend_ha.py. For --minutes, wrk sends checks at full
speed through HAProxy while faults come one after another:

  replica        a replica is shut down, then started again
  replication    STOP SLAVE on a replica, then START SLAVE
  backend-stop   the backend (the primary) is stopped with SIGSTOP, then continued
  backend-down   the backend is shut down, then started again
  leader-kill    the leader is killed with SIGKILL, then started again

Meanwhile throttles are set through the API (through HAProxy) and every
throttle answered 200 whose TTL has not run out must be listed by the current
leader and enforced (417); /leader-check of every node is sampled every
100 ms and no two nodes may lead at once.

At the end it prints the figures and a last line
  RESULT sanitizer=N two_leaders=N throttles_lost=N unexpected_exits=N
and exits 0 only if all are 0. Run it through scripts/soak.sh."""

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import lib  # noqa: E402
import test_backend_ha as ha  # noqa: E402

NODE_PORTS = ha.NODE_PORTS
HAPROXY_PORT = ha.HAPROXY_PORT
BACKEND = lib.PRIMARY
LEAD_APP_CHECKS = ("/check/soak-knob/mysql/ha", "/check/soak-lag/mysql/lag")
FAULTS = ("replica", "replication", "backend-stop", "backend-down", "leader-kill")
# A throttle is verified only while it has this long left, so that an expiry
# at the second boundary (the backend stores whole seconds) is no loss.
EXPIRY_MARGIN_S = 5.0
RECOVERY_S = 45.0  # after a fault is undone: one leader again within this


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} soak: {msg}", flush=True)


def node_config(port):
    cfg = ha.node_config(port, "soak")
    cfg["Stores"]["MySQL"]["Clusters"]["lag"] = {
        "MetricQuery": lib.LAG_QUERY,
        "User": "freno", "Password": "freno",
        "StaticHostsSettings": {"Hosts": [f"127.0.0.1:{p}" for p in lib.REPLICAS]},
    }
    return cfg


def rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class Cluster:
    """The three nodes. Every kill here is on purpose; any other exit counts."""

    def __init__(self):
        self.nodes = {}
        self.lock = threading.Lock()
        self.killed = set()  # ports killed on purpose and not started again yet
        self.unexpected = []  # (time, port, status)
        self.rss_start = {}
        for port in NODE_PORTS:
            d = lib.Daemon(f"soak-{port}", node_config(port), port)
            self.nodes[port] = d
            d.start(wait=False)
        for d in self.nodes.values():
            lib.wait_until(lambda d=d: d.get("/lb-check")[0], lambda s: s == 200, timeout=30,
                           what=f"node {d.port} to answer /lb-check")
            self.rss_start[d.port] = rss_kb(d.proc.pid)

    def leader_status(self, timeout=0.5):
        """{port: /leader-check status, 0 when not answering}, asked in parallel."""
        out = {}

        def ask(d):
            try:
                out[d.port] = d.get("/leader-check", timeout=timeout)[0] if d.proc is not None else 0
            except OSError:
                out[d.port] = 0

        threads = [threading.Thread(target=ask, args=(d,)) for d in self.nodes.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    def leaders(self):
        return sorted(p for p, s in self.leader_status().items() if s == 200)

    def watch(self):
        """Records and restarts nodes that exited without being told to."""
        with self.lock:
            for port, d in self.nodes.items():
                if d.proc is not None and d.proc.poll() is not None and port not in self.killed:
                    self.unexpected.append((time.time(), port, d.proc.returncode))
                    log(f"node {port} exited on its own with status {d.proc.returncode}; starting it again")
                    d.proc = None
                    d.start(wait=False)

    def kill9(self, port):
        with self.lock:
            d = self.nodes[port]
            self.killed.add(port)
            d.proc.kill()
            d.proc.wait()
            d.proc = None

    def start(self, port):
        with self.lock:
            self.nodes[port].start(wait=False)
            self.killed.discard(port)
        lib.wait_until(lambda: self.nodes[port].get("/lb-check")[0], lambda s: s == 200, timeout=30,
                       what=f"node {port} to answer /lb-check after its restart")

    def stop_all(self):
        problems = {}
        rss_end = {}
        for port, d in self.nodes.items():
            if d.proc is not None:
                rss_end[port] = rss_kb(d.proc.pid)
            problems[port] = d.stop(timeout=20)
        return problems, rss_end


class LeaderSampler(threading.Thread):
    """Every 100 ms: /leader-check of every node, and once a minute the RSS
    of every node."""

    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.samples = 0
        self.none = 0
        self.split = []  # (time, leaders) of every sample with two or more
        self.moments = 0  # runs of consecutive such samples
        self.rss = []  # (minute, {port: kB})
        self.running = True

    def run(self):
        t_start = next_rss = time.monotonic()
        in_split = False
        while self.running:
            t = time.monotonic()
            self.cluster.watch()
            leaders = self.cluster.leaders()
            self.samples += 1
            if not leaders:
                self.none += 1
            if len(leaders) > 1:
                self.split.append((time.time(), leaders))
                self.moments += 0 if in_split else 1
                log(f"TWO LEADERS at once: {leaders}")
            in_split = len(leaders) > 1
            if t >= next_rss:
                self.rss.append((round((t - t_start) / 60), {p: rss_kb(d.proc.pid) if d.proc else None
                                                             for p, d in self.cluster.nodes.items()}))
                next_rss += 60
            time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))


class Throttles(threading.Thread):
    """Sets a throttle through HAProxy every few seconds and checks, on the
    node that leads before and after the look, that every throttle answered
    200 and not about to expire is listed and enforced."""

    def __init__(self, cluster, rnd):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.rnd = rnd
        self.active = {}  # name -> expiry (epoch seconds)
        self.set_ok = 0
        self.refused = 0
        self.unknown = 0
        self.verifications = 0
        self.lost = {}  # name -> first observation
        self.lost_moments = 0
        self.running = True
        self.n = 0

    def set_one(self):
        self.n += 1
        name = f"soak-t-{self.n}"
        ttl_min = self.rnd.randint(1, 8)
        t0 = time.time()
        try:
            status, _, body = lib.http("GET", f"http://127.0.0.1:{HAPROXY_PORT}/throttle-app/{name}/ttl/{ttl_min}/ratio/1",
                                       timeout=8)
        except OSError:
            self.unknown += 1
            return
        if status == 200:
            self.set_ok += 1
            # The backend computes the expiry from its own clock when it got
            # the write, which is after t0.
            self.active[name] = t0 + ttl_min * 60
        elif status in (500, 503, 504):
            self.refused += 1
        else:
            self.unknown += 1
            log(f"throttle {name}: unexpected answer {status} {body[:200]!r}")

    def verify(self):
        now = time.time()
        for name in [n for n, exp in self.active.items() if exp < now]:
            del self.active[name]
        want = [n for n, exp in self.active.items() if exp - now > EXPIRY_MARGIN_S]
        if not want:
            return
        leaders = self.cluster.leaders()
        if len(leaders) != 1:
            return
        d = self.cluster.nodes[leaders[0]]
        try:
            status, apps = d.get_json("/throttled-apps", timeout=2)
            sample = self.rnd.sample(want, min(5, len(want)))
            enforced = {n: d.get(f"/check/{n}/mysql/ha", timeout=2)[0] for n in sample}
        except OSError:
            return
        if status != 200 or not isinstance(apps, dict):
            return
        # Only a node that led before and after the look speaks for the leader.
        if self.cluster.leaders() != leaders:
            return
        self.verifications += 1
        missing = [n for n in want if n not in apps]
        missing += [n for n, st in enforced.items() if st != 417 and n not in missing]
        if missing:
            self.lost_moments += 1
            for n in missing:
                self.lost.setdefault(n, (time.time(), leaders[0], enforced.get(n)))
            log(f"LOST on leader {leaders[0]}: {missing[:10]} (check statuses {enforced})")

    def run(self):
        next_set = 0.0
        while self.running:
            if time.monotonic() >= next_set:
                self.set_one()
                next_set = time.monotonic() + 4
            self.verify()
            time.sleep(1.0)


WRK_LUA = """
local paths = {%s}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {}; n = 0 end
function request()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  local out = io.open(os.getenv("SOAK_WRK_OUT"), "w")
  for k, v in pairs(total) do out:write(string.format("status %%d %%d\\n", k, v)) end
  local e = summary.errors
  out:write(string.format("requests %%d\\n", summary.requests))
  out:write(string.format("errors connect %%d read %%d write %%d status %%d timeout %%d\\n",
                          e.connect, e.read, e.write, e.status, e.timeout))
  out:write(string.format("latency p50_us %%d p99_us %%d max_us %%d\\n",
                          latency:percentile(50), latency:percentile(99), latency.max))
  out:close()
end
"""


def start_wrk(seconds, workdir):
    script = workdir / "soak.lua"
    script.write_text(WRK_LUA % ", ".join(f'"{p}"' for p in LEAD_APP_CHECKS))
    out = workdir / "wrk.out"
    env = dict(os.environ, SOAK_WRK_OUT=str(out))
    proc = subprocess.Popen(["wrk", "-t2", "-c16", f"-d{int(seconds)}s", "--timeout", "2s", "-s", str(script),
                             f"http://127.0.0.1:{HAPROXY_PORT}"], stdout=open(workdir / "wrk.log", "wb"),
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return proc, out


def parse_wrk(path):
    statuses, errors, requests, latency = {}, {}, 0, {}
    for line in path.read_text().splitlines():
        f = line.split()
        if f[0] == "status":
            statuses[int(f[1])] = int(f[2])
        elif f[0] == "requests":
            requests = int(f[1])
        elif f[0] == "errors":
            # "status" is wrk's count of answers other than 2xx/3xx, already in statuses.
            errors = {f[i]: int(f[i + 1]) for i in range(1, len(f), 2) if f[i] != "status"}
        elif f[0] == "latency":
            latency = {f[i]: int(f[i + 1]) for i in range(1, len(f), 2)}
    return requests, dict(sorted(statuses.items())), errors, latency


# ---------------------------------------------------------------- faults

def wait_one_leader(cluster, timeout):
    t0 = time.monotonic()
    try:
        lib.wait_until(cluster.leaders, lambda ls: len(ls) == 1, timeout=timeout, interval=0.05,
                       what="exactly one leader")
        return time.monotonic() - t0
    except lib.TestFailure:
        return None


def restore_topology():
    lib._topology("start")  # idempotent; restarts pt-heartbeat and waits for fresh heartbeats


def fault(kind, cluster, rnd, hold_s):
    """Injects @kind, holds it, undoes it; returns a dict of figures."""
    fig = {"kind": kind}
    if kind == "replica":
        port = rnd.choice(lib.REPLICAS)
        fig["port"] = port
        lib.shutdown_node(port)
        time.sleep(hold_s)
        lib.start_node(port)
        lib.wait_replica_healthy(port, timeout=60)
    elif kind == "replication":
        port = rnd.choice(lib.REPLICAS)
        fig["port"] = port
        lib._disturbed["sql_stopped"].add(port)
        lib.sql(port, "STOP SLAVE")
        time.sleep(hold_s)
        lib.sql(port, "START SLAVE")
        lib._disturbed["sql_stopped"].discard(port)
        lib.wait_replica_healthy(port, timeout=60)
    elif kind == "backend-stop":
        lib.freeze_node(BACKEND)
        time.sleep(min(hold_s, 10))
        lib.thaw_node(BACKEND)
        fig["leader_again_s"] = wait_one_leader(cluster, RECOVERY_S)
        restore_topology()
    elif kind == "backend-down":
        lib.shutdown_node(BACKEND)
        time.sleep(min(hold_s, 10))
        lib.start_node(BACKEND)
        fig["leader_again_s"] = wait_one_leader(cluster, RECOVERY_S)
        restore_topology()
    elif kind == "leader-kill":
        leaders = cluster.leaders()
        if len(leaders) != 1:
            fig["skipped"] = f"leaders {leaders}"
            return fig
        port = leaders[0]
        fig["port"] = port
        cluster.kill9(port)
        t_kill = time.monotonic()
        fig["new_leader_s"] = wait_one_leader(cluster, RECOVERY_S)
        time.sleep(max(0.0, 5 - (time.monotonic() - t_kill)))
        cluster.start(port)
    # From the undo (for backend faults: from the backend's return) to one
    # leader again.
    if "leader_again_s" not in fig:
        fig["leader_again_s"] = wait_one_leader(cluster, RECOVERY_S)
    if fig["leader_again_s"] is None:
        log(f"no single leader within {RECOVERY_S:.0f} s after {kind}: {cluster.leader_status()}")
        wait_one_leader(cluster, RECOVERY_S)
    return fig


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--fault-interval", type=float, default=40.0, help="seconds from one fault to the next")
    ap.add_argument("--hold", type=float, default=15.0, help="seconds a fault lasts (backend faults: at most 10)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rnd = random.Random(seed)
    duration = args.minutes * 60
    workdir = Path(tempfile.mkdtemp(prefix="freno-soak-"))
    log(f"{args.minutes:g} min, seed {seed}, binary {lib.FRENO_BIN}, work dir {workdir}")

    lib.topology_ready()
    ha.prepare_backend()
    cluster = Cluster()
    proxy = ha.HAProxy(NODE_PORTS)
    sampler = LeaderSampler(cluster)
    throttles = Throttles(cluster, rnd)
    faults = []
    wrk = None
    wrk_out = workdir / "wrk.out"
    t_start = time.monotonic()
    problems = {}
    rss_end = {}
    try:
        if wait_one_leader(cluster, 20) is None:
            raise lib.TestFailure(f"no leader at start: {cluster.leader_status()}")
        sampler.start()
        throttles.start()
        wrk, wrk_out = start_wrk(duration, workdir)
        t_start = time.monotonic()
        i = 0
        while True:
            next_fault = t_start + (i + 1) * args.fault_interval
            # The last fault must be undone (and recovered from) before the end.
            if next_fault + args.hold + RECOVERY_S + 30 > t_start + duration:
                break
            time.sleep(max(0.0, next_fault - time.monotonic()))
            kind = FAULTS[i % len(FAULTS)]
            log(f"fault {i + 1}: {kind}")
            fig = fault(kind, cluster, rnd, args.hold)
            fig["at_s"] = round(next_fault - t_start, 1)
            log(f"fault {i + 1}: {json.dumps(fig)}")
            faults.append(fig)
            i += 1
        wrk.wait(timeout=max(10.0, duration - (time.monotonic() - t_start) + 60))
    finally:
        throttles.running = False
        sampler.running = False
        throttles.join(10)
        sampler.join(10)
        if wrk is not None and wrk.poll() is None:
            wrk.terminate()
            wrk.wait(10)
        problems, rss_end = cluster.stop_all()
        proxy.stop()
        for p in lib.after_test():
            log(f"restoring the topology: {p}")

    # ---------------------------------------------------------------- report
    elapsed = time.monotonic() - t_start
    requests, statuses, errors, latency = parse_wrk(wrk_out) if wrk_out.exists() else (0, {}, {}, {})
    reports = []
    for port, d in cluster.nodes.items():
        text = d.log_path.read_text(errors="replace") if d.log_path.exists() else ""
        for line in text.splitlines():
            if lib.SANITIZER_PATTERNS.search(line):
                reports.append((port, line.strip()))
    bad_exits = [(p, msgs) for p, msgs in problems.items() if any("exited with status" in m for m in msgs)]
    kills = [f for f in faults if f["kind"] == "leader-kill" and f.get("new_leader_s") is not None]
    figures = {
        "seed": seed,
        "minutes": round(elapsed / 60, 1),
        "checks": requests,
        "checks_per_s": round(requests / elapsed) if elapsed else 0,
        "statuses": statuses,
        "socket_errors": errors,
        "latency_us": latency,
        "faults": {k: sum(1 for f in faults if f["kind"] == k) for k in FAULTS},
        "failover_after_kill_s": [round(f["new_leader_s"], 2) for f in kills],
        "recovery_s": {k: [round(f["leader_again_s"], 2) if f["leader_again_s"] is not None else None
                           for f in faults if f["kind"] == k] for k in FAULTS},
        "leader_samples": sampler.samples,
        "samples_without_leader": sampler.none,
        "two_leaders": sampler.moments,
        "two_leader_samples": len(sampler.split),
        "throttles_set": throttles.set_ok,
        "throttles_refused": throttles.refused,
        "throttles_unknown": throttles.unknown,
        "throttle_verifications": throttles.verifications,
        "throttles_lost": len(throttles.lost),
        "sanitizer": len(reports),
        "unexpected_exits": len(cluster.unexpected) + len(bad_exits),
        "rss_kb_start": cluster.rss_start,
        "rss_kb_end": rss_end,
        "rss_kb_per_minute": sampler.rss,
    }
    log("figures:")
    for k, v in figures.items():
        print(f"  {k}: {v}")
    if throttles.lost:
        print("  lost throttles (name: time, leader, check status):")
        for n, (t, port, st) in sorted(throttles.lost.items()):
            print(f"    {n}: {time.strftime('%H:%M:%S', time.localtime(t))} on {port}, check {st}")
    for t, leaders in sampler.split[:20]:
        print(f"  two leaders at {time.strftime('%H:%M:%S', time.localtime(t))}: {leaders}")
    for port, line in reports[:40]:
        print(f"  sanitizer on {port}: {line}")
    for t, port, rc in cluster.unexpected:
        print(f"  node {port} exited on its own at {time.strftime('%H:%M:%S', time.localtime(t))} with {rc}")
    for port, msgs in problems.items():
        for m in msgs:
            print(f"  node {port} at shutdown: {m[:2000]}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    failed = figures["sanitizer"] or figures["two_leaders"] or figures["throttles_lost"] or figures["unexpected_exits"]
    if failed:
        print(f"  node logs kept: " + ", ".join(str(d.log_path) for d in cluster.nodes.values()))
    else:
        for d in cluster.nodes.values():
            d.retire()
    print(f"RESULT sanitizer={figures['sanitizer']} two_leaders={figures['two_leaders']} "
          f"throttles_lost={figures['throttles_lost']} unexpected_exits={figures['unexpected_exits']}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    sys.exit(main())
