# SPDX-License-Identifier: MIT
"""What a probe costs in system calls (docs/semantics.md#probe-cost), counted
by strace on a daemon probing the two replicas of scripts/topology.sh from
several clusters at 20 Hz each.

A probe on an open connection is one send and one receive, plus a share of
one epoll_wait: the socket's watch stays armed between waits and between
probes (no epoll_ctl), and the answer is read once the socket is readable
(no receive failing with EAGAIN first).

Every wait has a deadline; a test never sleeps and hopes."""

import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import lib
from lib import REPLICAS, expect, wait_until

PORT = 13379
CLUSTERS = 8
TRACE_SECS = 3


def config():
    clusters = {f"cost{i}": lib.cluster(REPLICAS) for i in range(CLUSTERS)}
    return {
        "ListenPort": PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "Stores": {"MySQL": {"User": "freno", "Password": "freno", "ThrottleThreshold": 1.0,
                             "Clusters": clusters}},
    }


def strace_counts(pid, secs):
    """{syscall: (calls, errors)} over every thread of @pid for @secs seconds."""
    out = Path(tempfile.mkdtemp(prefix="freno-it-strace-")) / "counts.txt"
    proc = subprocess.Popen(["strace", "-f", "-c", "-o", str(out), "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # strace prints its table when interrupted; attaching takes a moment.
        try:
            proc.wait(timeout=secs)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    counts = {}
    for line in out.read_text().splitlines():
        f = line.split()
        # "% time seconds usecs/call calls [errors] syscall"
        if len(f) in (5, 6) and re.fullmatch(r"[0-9.]+", f[0]) and f[-1] != "total":
            counts[f[-1]] = (int(f[3]), int(f[4]) if len(f) == 6 else 0)
    shutil.rmtree(out.parent, ignore_errors=True)
    return counts


def test_probe_syscalls():
    if shutil.which("strace") is None:
        raise lib.Skip("strace is not installed (scripts/setup.sh)")
    d = lib.daemon("probecost", config(), PORT)
    # Every connection open and probing before counting.
    wait_until(lambda: d.get_json("/debug/vars")[1].get("probes.total", 0),
               lambda n: n >= CLUSTERS * len(REPLICAS) * 10, timeout=10, what="probes running")
    c = strace_counts(d.proc.pid, TRACE_SECS)
    sends = c.get("sendto", (0, 0))[0]
    # 16 probes at 20 Hz for 3 s is about 960; ASan and strace slow it.
    expect(sends >= 100, f"only {sends} sendto in {TRACE_SECS} s: {c}")
    recv_calls, recv_errors = c.get("recvfrom", (0, 0))
    ctl = c.get("epoll_ctl", (0, 0))[0]
    print(f"    per probe: {recv_calls / sends:.2f} recvfrom ({recv_errors / sends:.2f} failed), "
          f"{ctl / sends:.2f} epoll_ctl, {c.get('epoll_wait', (0, 0))[0] / sends:.2f} epoll_wait")
    expect(recv_errors <= sends * 0.05, f"{recv_errors} failed recvfrom for {sends} probes: {c}")
    expect(recv_calls <= sends * 1.1, f"{recv_calls} recvfrom for {sends} probes: {c}")
    expect(ctl <= sends * 0.05, f"{ctl} epoll_ctl for {sends} probes: {c}")
    lib.stop_daemon("probecost")
