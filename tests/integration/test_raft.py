# SPDX-License-Identifier: MIT
"""Raft high availability: real daemons on loopback, no MariaDB needed.

Single-node mode (RaftNodes: []) keeps operator state across restarts and
refuses a damaged data directory with a clear message; a three-node cluster
elects one leader, replicates commands, fails over after kill -9, lets the
killed node rejoin, loses its leader in a minority partition (SIGSTOP) and
gets it back on resume; a node that starts late catches up from a snapshot.

Ports 18300-18399: HTTP 183xx below 18350, raft 1835x and up.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import lib
from lib import expect, expect_eq, wait_until

SINGLE_HTTP = 18310
FLAGS_HTTP = 18311
FORCED_HTTP = 18312
FORCED_RAFT = 18360
FLAGS_RAFT = 18361
HTTP = (18301, 18302, 18303)
RAFT = (18351, 18352, 18353)
LATE_HTTP = (18321, 18322, 18323)
LATE_RAFT = (18371, 18372, 18373)

# Measured failover times (kill -9 of the leader -> another node answers
# /leader-check 200), printed at the end of the failover test.
failover_seconds = []


_scratch = []  # temporary directories of the current test


def scratch_dir(prefix):
    """A temporary directory, removed by drop_scratch() at the end of a test
    that passed (a failed test leaves it for a look)."""
    p = Path(tempfile.mkdtemp(prefix=f"freno-it-raft-{prefix}-"))
    _scratch.append(p)
    return p


def drop_scratch():
    while _scratch:
        shutil.rmtree(_scratch.pop(), ignore_errors=True)


def node(name, config, port, args=(), wait=True):
    """Starts a daemon like lib.daemon() but without the helper services
    (memcached, HTTP-check responders) the raft tests do not use. The runner
    stops and checks it after the test like any other."""
    old = lib._daemons.pop(name, None)
    if old is not None:
        problems = old.retire()
        expect(not problems, "\n".join(problems))
    if lib.EXTERNAL_URL:
        raise lib.Skip("needs its own daemons (FRENO_TEST_DAEMON_URL is set)")
    d = lib.Daemon(name, config, port, args)
    d.requested = (config, list(args))
    lib._daemons[name] = d
    try:
        d.start(wait=wait)
    except BaseException:
        lib._daemons.pop(name, None)
        d.stop()
        raise
    return d


def single_config(**extra):
    cfg = {"ListenPort": SINGLE_HTTP, "RaftDataDir": "@WORKDIR@/raft", "RaftNodes": []}
    cfg.update(extra)
    return cfg


def cluster_config(i, http=HTTP, raft=RAFT):
    return {
        "ListenPort": http[i],
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftBind": f"127.0.0.1:{raft[i]}",
        "RaftNodes": [f"127.0.0.1:{p}" for p in raft],
    }


def state(d):
    status, body = d.get_json("/raft/state")
    return body if status == 200 else None


def is_leader(d):
    return d.get("/leader-check")[0] == 200


def leaders(nodes):
    return [d for d in nodes if d.alive() and is_leader(d)]


def one_leader(nodes, timeout=10.0):
    """Waits until exactly one live node leads and every live node names it."""
    def probe():
        ls = leaders(nodes)
        if len(ls) != 1:
            return None
        want = ls[0].get_json("/raft/leader")[1]
        named = [d.get_json("/raft/leader")[1] for d in nodes if d.alive()]
        return ls[0] if all(n == want for n in named) else None
    return wait_until(probe, lambda d: d is not None, timeout=timeout, interval=0.05,
                      what="exactly one raft leader, named by every live node")


def control(d, path):
    status, body = d.get_json(path)
    return status, (body or {}).get("Message")


def kill9(d):
    """kill -9, reaped, and marked so the harness does not report a death."""
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    d.proc = None


def throttled(d):
    """/throttled-apps without the built-in abusing-app, whose expiry each
    node sets from its own start time."""
    status, body = d.get_json("/throttled-apps")
    expect_eq(status, 200, f"/throttled-apps on {d.name}")
    body.pop("abusing-app", None)
    return body


def skipped(d):
    status, body = d.get_json("/skipped-hosts")
    expect_eq(status, 200, f"/skipped-hosts on {d.name}")
    return body


def start_cluster(prefix, http=HTTP, raft=RAFT, which=(0, 1, 2)):
    nodes = []
    for i in which:
        nodes.append(node(f"{prefix}{i + 1}", cluster_config(i, http, raft), http[i]))
    return nodes


# ---------------------------------------------------------------- single node

def test_raft_single_node_leads_at_once_and_keeps_state():
    d = node("raft-single", single_config(), SINGLE_HTTP, wait=False)
    # Leader within 1 s of the spawn: one voter elects itself at start.
    wait_until(lambda: d._alive_or_raise() and d.get("/leader-check")[0], lambda s: s == 200,
               timeout=1.0, interval=0.01, what="single node to lead within 1 s of start")
    expect_eq(state(d), "Leader", "/raft/state")
    expect_eq(d.get_json("/raft/leader")[1], "127.0.0.1:10008", "/raft/leader (RaftBind default)")
    status, st = d.get_json("/consensus/status")
    expect(status == 200 and st["IsLeader"] and st["Healthy"] and st["State"] == "Leader",
           f"/consensus/status: {st}")

    expect_eq(control(d, "/throttle-app/persist-me/ttl/90/ratio/0.25"), (200, "OK"), "throttle")
    expect_eq(control(d, "/throttle-app/forever"), (200, "OK"), "throttle without ttl")
    expect_eq(control(d, "/throttle-app/gone"), (200, "OK"), "throttle")
    expect_eq(control(d, "/unthrottle-app/gone"), (200, "OK"), "unthrottle")
    expect_eq(control(d, "/skip-host/db-9/ttl/30"), (200, "OK"), "skip-host")
    expect_eq(control(d, "/throttle-app/x/ratio/2"),
              (500, "throttle-app: ratio must be in [0..1] range; got 2"), "bad ratio")
    before_apps, before_hosts = throttled(d), skipped(d)
    expect_eq(before_apps["persist-me"]["Ratio"], 0.25, "ratio")
    expect(85 * 60 < lib.seconds_from_now(before_apps["persist-me"]["ExpireAt"]) <= 90 * 60,
           f"expiry about 90 minutes ahead: {before_apps['persist-me']}")
    expect("gone" not in before_apps and "x" not in before_apps, f"apps: {before_apps}")

    # A clean restart, then a crash: both keep the state, TTL and ratio.
    d.restart()
    wait_until(lambda: is_leader(d), timeout=1.0, interval=0.01, what="leader after restart")
    expect_eq(throttled(d).get("persist-me"), before_apps["persist-me"], "app after restart")
    expect_eq(throttled(d).get("forever"), before_apps["forever"], "permanent app after restart")
    expect_eq(skipped(d), before_hosts, "skipped hosts after restart")
    expect_eq(control(d, "/throttle-app/after-crash/ratio/0.5"), (200, "OK"), "throttle")
    kill9(d)
    d.start()
    wait_until(lambda: is_leader(d), timeout=1.0, interval=0.01, what="leader after kill -9")
    apps = throttled(d)
    expect_eq(apps.get("persist-me"), before_apps["persist-me"], "app after kill -9")
    expect_eq(apps.get("after-crash", {}).get("Ratio"), 0.5, "last command before kill -9")
    expect("gone" not in apps, f"unthrottled app came back: {apps}")
    expect_eq(skipped(d), before_hosts, "skipped hosts after kill -9")


def test_raft_single_node_snapshot_and_restart():
    # More commands than the snapshot threshold (64): the log is compacted
    # and a restart restores from the snapshot plus the entries after it.
    d = node("raft-single", single_config(), SINGLE_HTTP)
    c = d.client()
    for i in range(100):
        status, _ = c.request("GET", f"/throttle-app/snap-{i}/ttl/{i + 1}/ratio/0.{i % 10}")
        expect_eq(status, 200, f"throttle snap-{i}")
    for i in range(0, 100, 10):
        status, _ = c.request("GET", f"/unthrottle-app/snap-{i}")
        expect_eq(status, 200, f"unthrottle snap-{i}")
    c.close()
    before = throttled(d)
    raft_dir = d.workdir / "raft"
    expect(any(p.name.startswith("snapshot-") for p in raft_dir.iterdir()),
           f"a snapshot in {sorted(p.name for p in raft_dir.iterdir())}")
    d.restart()
    expect_eq(throttled(d), before, "every app after a restart from a snapshot")


def _run_failing(config, what):
    """Starts the daemon with @config expecting it to refuse; returns its output."""
    work = scratch_dir("bad")
    cfg_path = work / "freno.conf.json"
    cfg_path.write_text(json.dumps(lib._substitute(config, str(work))))
    env = lib._env_with_sanitizer_options()
    # libraft 0.15 leaks its entry array when a damaged segment fails to load
    # (uv_segment.c, error path of uvSegmentLoadClosed); nothing of ours.
    supp = work / "lsan-libraft.supp"
    supp.write_text("leak:libraft.so\n")
    env["LSAN_OPTIONS"] = f"suppressions={supp}"
    out = subprocess.run([str(lib.FRENO_BIN), "--http", "--config", str(cfg_path),
                          "--http-port", str(SINGLE_HTTP)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=20, env=env)
    text = out.stdout + out.stderr
    expect_eq(out.returncode, 1, f"exit status with {what}; output:\n{text}")
    expect(not lib.SANITIZER_PATTERNS.search(text), f"sanitizer report with {what}:\n{text}")
    return text


def test_raft_single_node_bad_data_dir():
    # Make a real data directory with some state to damage.
    d = node("raft-single", single_config(), SINGLE_HTTP)
    expect_eq(control(d, "/throttle-app/a/ratio/0.5"), (200, "OK"), "throttle")
    expect_eq(control(d, "/skip-host/h"), (200, "OK"), "skip")
    problems = d.stop()
    expect(not problems, "\n".join(problems))
    good = scratch_dir("good") / "raft"
    subprocess.run(["cp", "-a", str(d.workdir / "raft"), str(good)], check=True)
    lib.stop_daemon("raft-single")
    expect((good / "metadata1").exists() or (good / "metadata2").exists(), "raft metadata written")

    def damaged(mutate):
        work = scratch_dir("dir")
        subprocess.run(["cp", "-a", str(good), str(work / "raft")], check=True)
        mutate(work / "raft")
        return str(work / "raft")

    def garbage(path):
        path.write_bytes(b"this is not what libraft wrote here" * 3)

    def metadata(dirp):
        for m in ("metadata1", "metadata2"):
            if (dirp / m).exists():
                garbage(dirp / m)

    def segment(dirp):
        seg = max((p for p in dirp.iterdir() if p.name[0].isdigit()), key=lambda p: p.name)
        data = bytearray(seg.read_bytes())
        for i in range(len(data) // 2, len(data)):
            data[i] ^= 0x5A
        seg.write_bytes(bytes(data))

    def no_metadata(dirp):
        for m in ("metadata1", "metadata2"):
            (dirp / m).unlink(missing_ok=True)

    cases = [
        (metadata, "metadata1"),
        (segment, "cannot load the raft state"),
        (no_metadata, "metadata files (metadata1, metadata2) are missing"),
    ]
    for mutate, msg in cases:
        dirp = damaged(mutate)
        text = _run_failing(single_config(RaftDataDir=dirp), mutate.__name__)
        expect(f"raft: data directory {dirp}" in text and msg in text,
               f"damaged {mutate.__name__}: expected a message naming {dirp} and '{msg}', got:\n{text}")

    # A data directory path that is a file, or lies below a file.
    work = scratch_dir("file")
    (work / "file").write_text("x")
    text = _run_failing(single_config(RaftDataDir=str(work / "file")), "a file as data dir")
    expect(f"raft: data directory {work / 'file'}: not a directory" in text, text)
    text = _run_failing(single_config(RaftDataDir=str(work / "file" / "sub")), "a path below a file")
    expect(f"raft: data directory {work / 'file' / 'sub'}: mkdir" in text, text)

    # A missing data directory is created, as the original does.
    d = node("raft-single", single_config(RaftDataDir="@WORKDIR@/not/yet/there"), SINGLE_HTTP)
    wait_until(lambda: is_leader(d), timeout=1.0, what="leader with a new nested data dir")
    expect((d.workdir / "not" / "yet" / "there" / "metadata1").exists() or
           (d.workdir / "not" / "yet" / "there" / "metadata2").exists(), "data dir created")

    # A second daemon on the same data directory is refused.
    text = _run_failing(single_config(RaftDataDir=str(d.workdir / "not" / "yet" / "there"),
                                      ListenPort=FLAGS_HTTP), "a data dir in use")
    expect("in use by another process" in text, text)
    drop_scratch()


def test_raft_flags_and_default_port():
    # The flags override the config; DefaultRaftPort fills missing ports.
    cfg = {"ListenPort": FLAGS_HTTP, "RaftDataDir": "/nonexistent/never/used", "RaftNodes": [],
           "DefaultRaftPort": FLAGS_RAFT}
    work = scratch_dir("flags")
    d = node("raft-flags", cfg, FLAGS_HTTP,
                   args=["--raft-datadir", str(work / "raft"), "--raft-bind", "127.0.0.1",
                         "--raft-nodes", "127.0.0.1"])
    wait_until(lambda: is_leader(d), timeout=5.0, what="one-node cluster from flags to lead")
    expect_eq(d.get_json("/raft/leader")[1], f"127.0.0.1:{FLAGS_RAFT}", "leader with DefaultRaftPort")
    expect((work / "raft").is_dir(), "--raft-datadir used")
    expect_eq(control(d, "/throttle-app/flagged"), (200, "OK"), "throttle")
    lib.stop_daemon("raft-flags")
    drop_scratch()


def test_raft_force_leadership_without_quorum():
    # Two voters configured, one running: no raft leader. --force-leadership
    # makes the node lead (probe, answer /leader-check) as the original does,
    # but commands still need the raft leader.
    cfg = {"ListenPort": FORCED_HTTP, "RaftDataDir": "@WORKDIR@/raft",
           "RaftBind": f"127.0.0.1:{FORCED_RAFT}",
           "RaftNodes": [f"127.0.0.1:{FORCED_RAFT}", f"127.0.0.1:{FORCED_RAFT + 1}"]}
    d = node("raft-forced", cfg, FORCED_HTTP, args=["--force-leadership"])
    wait_until(lambda: is_leader(d), timeout=2.0, what="forced node to lead")
    time.sleep(2.5)  # past an election timeout: still no raft leader
    expect(state(d) in ("Follower", "Candidate"), f"raft state {state(d)}")
    expect_eq(d.get("/raft/leader")[0], 500, "/raft/leader without a raft leader")
    expect(is_leader(d), "forced node leads")
    expect_eq(control(d, "/throttle-app/nope"), (500, "not leader"), "command without raft leader")


# ---------------------------------------------------------------- three nodes

def test_raft_three_nodes_failover():
    nodes = start_cluster("raft-n")
    leader = one_leader(nodes)
    followers = [d for d in nodes if d is not leader]
    expect_eq(state(leader), "Leader", "leader state")
    for f in followers:
        expect_eq(state(f), "Follower", f"{f.name} state")
        expect_eq(f.get("/leader-check")[0], 404, f"{f.name} /leader-check")
        # As the original: only the leader takes control requests.
        expect_eq(control(f, "/throttle-app/via-follower"), (500, "not leader"), "follower throttle")
        expect_eq(control(f, "/skip-host/via-follower"), (500, "not leader"), "follower skip")
    leader_addr = leader.get_json("/raft/leader")[1]
    expect_eq(leader_addr, f"127.0.0.1:{RAFT[HTTP.index(leader.port)]}", "leader id is its raft address")
    status, st = followers[0].get_json("/consensus/status")
    expect(status == 200 and st["Leader"] == leader_addr and not st["IsLeader"] and st["Healthy"]
           and st["State"] == "Follower", f"follower /consensus/status: {st}")

    expect_eq(control(leader, "/throttle-app/replicated/ttl/60/ratio/0.3"), (200, "OK"), "throttle")
    expect_eq(control(leader, "/throttle-app/replicated/ratio/0.6"), (200, "OK"), "ratio only")
    expect_eq(control(leader, "/skip-host/db-3/ttl/20"), (200, "OK"), "skip")
    expect_eq(control(leader, "/throttle-app/dropped"), (200, "OK"), "throttle")
    expect_eq(control(leader, "/unthrottle-app/dropped"), (200, "OK"), "unthrottle")
    want_app = throttled(leader)["replicated"]
    expect_eq(want_app["Ratio"], 0.6, "ratio after ratio-only update")
    want_hosts = skipped(leader)
    for f in followers:
        wait_until(lambda f=f: (throttled(f).get("replicated"), "dropped" in throttled(f),
                                skipped(f)),
                   lambda v: v == (want_app, False, want_hosts), timeout=3.0,
                   what=f"{f.name} to apply the commands")

    # kill -9 the leader: another node leads within 5 s, with the state.
    t0 = time.monotonic()
    kill9(leader)
    new = wait_until(lambda: leaders(followers), lambda ls: len(ls) == 1, timeout=5.0,
                     interval=0.02, what="a new leader within 5 s of kill -9")[0]
    failover_seconds.append(time.monotonic() - t0)
    print(f"    raft failover after kill -9: {failover_seconds[-1]:.2f}s", flush=True)
    expect_eq(throttled(new).get("replicated"), want_app, "app on the new leader")
    expect_eq(skipped(new), want_hosts, "skipped hosts on the new leader")
    expect_eq(control(new, "/throttle-app/after-failover/ratio/0.9"), (200, "OK"),
              "throttle on the new leader")

    # The killed node comes back as a follower and catches up.
    leader.start()
    wait_until(lambda: state(leader), lambda s: s == "Follower", timeout=5.0,
               what="restarted node to follow")
    expect_eq(one_leader(nodes), new, "the leader after the rejoin")
    wait_until(lambda: throttled(leader).get("after-failover", {}).get("Ratio"), lambda r: r == 0.9,
               timeout=5.0, what="restarted node to get the command issued while it was down")
    expect_eq(throttled(leader).get("replicated"), want_app, "old state on the restarted node")
    expect_eq(skipped(leader), want_hosts, "skipped hosts on the restarted node")

    # A graceful stop of the leader hands leadership over at once.
    t0 = time.monotonic()
    lib.stop_daemon(new.name)
    rest = [d for d in nodes if d is not new]
    wait_until(lambda: leaders(rest), lambda ls: len(ls) == 1, timeout=5.0, interval=0.02,
               what="a new leader after SIGTERM of the leader")
    print(f"    raft handover after SIGTERM: {time.monotonic() - t0:.2f}s", flush=True)


def test_raft_minority_partition():
    nodes = start_cluster("raft-n")
    leader = one_leader(nodes)
    expect_eq(control(leader, "/throttle-app/before-partition"), (200, "OK"), "throttle")
    # Freeze two nodes, the leader among them: the one left cannot lead.
    frozen = [leader, next(d for d in nodes if d is not leader)]
    alone = next(d for d in nodes if d not in frozen)
    try:
        for d in frozen:
            os.kill(d.proc.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        wait_until(lambda: state(alone), lambda s: s == "Candidate", timeout=5.0, interval=0.02,
                   what="the lone node to stand as candidate")
        print(f"    lone node without leader (candidate) after {time.monotonic() - t0:.2f}s",
              flush=True)
        expect_eq(alone.get("/leader-check")[0], 404, "lone node /leader-check")
        expect_eq(alone.get("/raft/leader")[0], 500, "lone node /raft/leader")
        expect_eq(control(alone, "/throttle-app/during-partition"), (500, "not leader"),
                  "command without quorum")
        time.sleep(1.0)
        expect(not is_leader(alone), "still no leader in the minority")
    finally:
        for d in frozen:
            os.kill(d.proc.pid, signal.SIGCONT)
    t0 = time.monotonic()
    leader = one_leader(nodes, timeout=10.0)
    print(f"    one leader again {time.monotonic() - t0:.2f}s after resume", flush=True)
    expect_eq(control(leader, "/throttle-app/after-partition"), (200, "OK"), "throttle")
    for d in nodes:
        wait_until(lambda d=d: sorted(k for k in throttled(d) if "partition" in k),
                   lambda v: v == ["after-partition", "before-partition"], timeout=5.0,
                   what=f"{d.name} state after the partition")

    # A leader cut off from both followers steps down by itself.
    leader = one_leader(nodes)
    others = [d for d in nodes if d is not leader]
    try:
        for d in others:
            os.kill(d.proc.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        # A command it takes now cannot commit: it fails when the leader
        # steps down, well within the HTTP layer's 5 s wait.
        status, msg = control(leader, "/throttle-app/isolated")
        expect(status == 500 and msg.startswith("not leader"),
               f"command on an isolated leader: {status} {msg!r}")
        wait_until(lambda: is_leader(leader), lambda v: not v, timeout=5.0, interval=0.02,
                   what="the isolated leader to step down")
        print(f"    isolated leader stepped down after {time.monotonic() - t0:.2f}s "
              f"(pending command answered: {msg!r})", flush=True)
        expect(state(leader) in ("Follower", "Candidate"), f"state {state(leader)}")
    finally:
        for d in others:
            os.kill(d.proc.pid, signal.SIGCONT)
    one_leader(nodes, timeout=10.0)


def test_raft_late_node_catches_up_from_snapshot():
    # Two of three nodes make a quorum; more commands than the snapshot
    # threshold compact the log, so the third, started late with an empty
    # data directory, is sent a snapshot.
    nodes = start_cluster("raft-late", LATE_HTTP, LATE_RAFT, which=(0, 1))
    leader = one_leader(nodes)
    c = leader.client()
    for i in range(90):
        status, _ = c.request("GET", f"/throttle-app/late-{i}/ttl/{i + 1}/ratio/0.{i % 10}")
        expect_eq(status, 200, f"throttle late-{i}")
    status, _ = c.request("GET", "/skip-host/late-host/ttl/15")
    expect_eq(status, 200, "skip")
    c.close()
    want_apps, want_hosts = throttled(leader), skipped(leader)
    # libraft keeps the last 3 messages for a peer it cannot reach and sends
    # them when the peer appears; give the leader a few heartbeats so those
    # are snapshot offers, not appends from before the log was compacted.
    time.sleep(1.5)
    late = start_cluster("raft-late", LATE_HTTP, LATE_RAFT, which=(2,))[0]
    wait_until(lambda: (throttled(late), skipped(late)), lambda v: v[0] == want_apps and
               v[1] == want_hosts, timeout=10.0, what="late node to catch up")
    expect_eq(state(late), "Follower", "late node state")
    log = late.log_path.read_text(errors="replace")
    expect("raft: restored a snapshot" in log, f"late node restored a snapshot; log:\n{late.log_tail()}")
