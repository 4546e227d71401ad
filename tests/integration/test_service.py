# SPDX-License-Identifier: MIT
"""Running under systemd, with the service manager played by a real AF_UNIX
datagram socket in NOTIFY_SOCKET (what systemd gives a Type=notify service):

- READY=1 comes once the HTTP listener is up and the node knows whether it
  leads, for each leadership mode: single-node raft (it leads), a raft
  cluster node alone (a follower, without waiting for a quorum), and the
  MySQL backend (only after its first election round, here one that fails,
  and once it serves when that round elected it);
- STATUS= says what the node does; SIGHUP (ExecReload=) answers RELOADING=1
  then READY=1 and leaves the daemon running; SIGTERM sends STOPPING=1;
- with WATCHDOG_USEC the pings come every half interval from the event loop,
  and stop while the loop thread alone is stopped (ptrace) although the
  HTTP threads go on answering;
- with JOURNAL_STREAM naming stderr every line starts with its syslog
  priority, and --log-format json writes one JSON object per line.

Every wait has a deadline; a test never sleeps and hopes."""

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import lib
import test_backend_ha as ha
from lib import REPLICAS, expect, expect_eq, wait_until

PORT = 13370
RAFT_PORTS = (13371, 13372, 13373)  # a cluster of three of which one runs
APP = "it-service"


# ---------------------------------------------------------------- the notify socket

class NotifySocket:
    """The service manager's end: every datagram with its arrival time."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.msgs = []  # (monotonic time, text)

    def poll(self, timeout=0.0):
        """Reads what has arrived (waiting up to @timeout for the first)."""
        if timeout > 0:
            self.sock.settimeout(timeout)
        else:
            self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(4096)
                self.msgs.append((time.monotonic(), data.decode()))
                self.sock.setblocking(False)
        except (BlockingIOError, socket.timeout):
            pass
        return self.msgs

    def wait_for(self, pred, timeout, what, start=0):
        """The first message from index @start on that satisfies @pred."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.msgs):
                if pred(self.msgs[i][1]):
                    return i, self.msgs[i]
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise lib.TestFailure(f"no {what} within {timeout:.1f}s; got {[m for _, m in self.msgs]}")
            self.poll(min(left, 0.1))

    def close(self):
        self.sock.close()


def is_ready(m):
    return m.split("\n")[0] == "READY=1"


def status_of(m):
    for part in m.split("\n"):
        if part.startswith("STATUS="):
            return part[len("STATUS="):]
    return None


# ---------------------------------------------------------------- the daemon

class Service:
    """A daemon started the way systemd starts one: NOTIFY_SOCKET (and
    whatever else @env says) in its environment, stderr to a file."""

    def __init__(self, name, config, env=None, args=(), stderr_env=None):
        self.workdir = Path(tempfile.mkdtemp(prefix=f"freno-it-{name}-"))
        self.notify = NotifySocket(self.workdir / "notify.sock")
        self.log_path = self.workdir / "freno.log"
        cfg = lib._substitute(config, str(self.workdir))
        self.config_path = self.workdir / "freno.conf.json"
        self.config_path.write_text(json.dumps(cfg, indent=2))
        full_env = lib._env_with_sanitizer_options()
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
            full_env.pop(k, None)
        full_env["NOTIFY_SOCKET"] = self.notify.path
        full_env.update(env or {})
        log = open(self.log_path, "ab")
        if stderr_env is not None:
            # The variable systemd sets when stderr is the journal.
            st = os.fstat(log.fileno())
            full_env[stderr_env] = f"{st.st_dev}:{st.st_ino}"
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [str(lib.FRENO_BIN), "--http", "--config", str(self.config_path), "--http-port", str(PORT)]
            + list(args), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=full_env,
            start_new_session=True)
        log.close()
        self.base = f"http://127.0.0.1:{PORT}"

    def get(self, path, timeout=5.0):
        status, _, body = lib.http("GET", self.base + path, None, timeout)
        return status, body

    def alive_or_raise(self):
        if self.proc.poll() is not None:
            raise lib.TestFailure(f"daemon exited with {self.proc.returncode}; log tail:\n{self.log_tail()}")
        return True

    def answers_lb_check(self):
        self.alive_or_raise()
        try:
            return self.get("/lb-check", timeout=1.0)[0] == 200
        except OSError:
            return False

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines=30):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self):
        """SIGTERM; the exit must be clean and the log free of sanitizer reports."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise lib.TestFailure("daemon did not exit within 15s of SIGTERM")
        rc = self.proc.returncode
        text = self.log_text()
        m = lib.SANITIZER_PATTERNS.search(text)
        expect(m is None, f"sanitizer report:\n{text[m.start():m.start() + 3000] if m else ''}")
        expect(rc == 0, f"daemon exited with {rc}; log tail:\n{self.log_tail()}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
        if not os.environ.get("FRENO_TEST_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)


def single_config(**extra):
    cfg = {
        "ListenPort": PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "Stores": {"MySQL": {"User": "freno", "Password": "freno", "ThrottleThreshold": 1.0,
                             "Clusters": {"lag": lib.cluster(REPLICAS)}}},
    }
    cfg.update(extra)
    return cfg


def own_daemon():
    if lib.EXTERNAL_URL:
        raise lib.Skip("needs its own daemon (FRENO_TEST_DAEMON_URL is set)")
    lib.start_helpers()


# ---------------------------------------------------------------- notify

def test_notify_ready_reload_stop_single_node():
    own_daemon()
    s = Service("notify", single_config())
    try:
        i, (_, ready) = s.notify.wait_for(is_ready, 20, "READY=1")
        # READY means: the listener is up and the node knows it leads, now.
        expect_eq(s.get("/lb-check")[0], 200, "/lb-check right at READY=1")
        expect_eq(s.get("/leader-check")[0], 200, "/leader-check right at READY=1 (single node leads)")
        expect_eq(status_of(ready), "leader (single-node); 1 cluster(s), 2 host(s) probed",
                  "STATUS= with READY=1")
        for _, m in s.notify.msgs[:i]:
            expect(m.startswith("STATUS=starting"), f"before READY=1 only 'starting' statuses, got {m!r}")

        # ExecReload=/bin/kill -HUP $MAINPID: the daemon stays, and says so.
        n = len(s.notify.poll())
        s.proc.send_signal(signal.SIGHUP)
        j, (_, m) = s.notify.wait_for(lambda m: m.startswith("RELOADING=1"), 5, "RELOADING=1", start=n)
        expect(re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=\d+", m), f"reloading message {m!r}")
        _, (_, m) = s.notify.wait_for(is_ready, 5, "READY=1 after the reload", start=j + 1)
        expect_eq(status_of(m), "leader (single-node); 1 cluster(s), 2 host(s) probed", "STATUS= after reload")
        wait_until(lambda: "reload: no change" in s.log_text(), timeout=5,
                   what="the reload line in the log")
        expect(s.alive_or_raise() and s.get("/leader-check")[0] == 200, "still leading after SIGHUP")

        n = len(s.notify.poll())
        s.proc.send_signal(signal.SIGTERM)
        s.notify.wait_for(lambda m: m == "STOPPING=1\nSTATUS=stopping", 5, "STOPPING=1", start=n)
        s.stop()
        expect(not any(m.startswith("READY=1") for _, m in s.notify.poll()[n:]), "no READY=1 after STOPPING=1")
    finally:
        s.close()


def test_notify_raft_cluster_node_ready_without_quorum():
    """One node of three: no quorum, no leader, but it knows it does not
    lead, so the service manager need not wait (nodes of a cluster start one
    after the other)."""
    own_daemon()
    cfg = {"ListenPort": PORT, "RaftDataDir": "@WORKDIR@/raft", "RaftBind": f"127.0.0.1:{RAFT_PORTS[0]}",
           "RaftNodes": [f"127.0.0.1:{p}" for p in RAFT_PORTS]}
    s = Service("notify-raft", cfg)
    try:
        _, (_, ready) = s.notify.wait_for(is_ready, 20, "READY=1")
        expect(re.fullmatch(r"not leading \(raft, state (Follower|Candidate), leader unknown\); 0 cluster\(s\)",
                            status_of(ready)), f"STATUS= with READY=1: {ready!r}")
        expect_eq(s.get("/leader-check")[0], 404, "/leader-check of a node without quorum")
        s.stop()
    finally:
        s.close()


def test_notify_mysql_backend_waits_for_first_round():
    """The backend accepts connections and never answers: HTTP is up at
    once, but the node learns that it does not lead only when the first
    election round fails (the connect timeout, 500 ms), and READY=1 waits
    for that."""
    own_daemon()
    cfg = {"ListenPort": PORT, "Domain": "it-service", "BackendMySQLHost": "127.0.0.1",
           "BackendMySQLPort": lib.BLACKHOLE_PORT, "BackendMySQLSchema": "freno_never",
           "BackendMySQLUser": "nobody", "BackendMySQLPassword": "nothing"}
    s = Service("notify-mysql", cfg)
    try:
        wait_until(s.answers_lb_check, timeout=20, interval=0.01, what="/lb-check to answer")
        http_up = time.monotonic()
        expect(not any(is_ready(m) for _, m in s.notify.poll()),
               f"READY=1 before the first election round ended: {s.notify.msgs}")
        _, (t, ready) = s.notify.wait_for(is_ready, 10, "READY=1")
        expect(t - http_up >= 0.3, f"READY=1 {t - http_up:.3f}s after HTTP was up: before the round failed?")
        expect_eq(status_of(ready), "not leading (mysql-backend, state Unhealthy, leader unknown); 0 cluster(s)",
                  "STATUS= with READY=1")
        expect_eq(s.get("/leader-check")[0], 404, "/leader-check")
        s.stop()
    finally:
        s.close()


def test_notify_mysql_backend_ready_as_leader():
    """A lone node on a working backend is elected in its first round; it
    says READY=1 once it serves (its operator state loaded), so /leader-check
    answers 200 from the first moment the service manager calls it started."""
    own_daemon()
    ha.prepare_backend()
    s = Service("notify-mysql-leader", ha.node_config(PORT, "it-service-domain", share=""))
    try:
        _, (_, ready) = s.notify.wait_for(is_ready, 20, "READY=1")
        expect_eq(s.get("/leader-check")[0], 200, "/leader-check right at READY=1")
        expect_eq(status_of(ready), "leader (mysql-backend); 1 cluster(s), 1 host(s) probed",
                  "STATUS= with READY=1")
        s.stop()
    finally:
        s.close()


# ---------------------------------------------------------------- watchdog

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000


class ThreadStop:
    """Stops one thread of another process and nothing else (ptrace seize +
    interrupt: no signal, so the other threads run on), as a loop stuck in a
    blocking call would stand still. SIGSTOP would stop the whole process
    and prove nothing about where the pings come from."""

    def __init__(self, tid):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self.libc.ptrace.restype = ctypes.c_long
        self.tid = tid

    def _ptrace(self, req):
        if self.libc.ptrace(req, self.tid, None, None) == -1:
            e = ctypes.get_errno()
            raise lib.TestFailure(f"ptrace({req:#x}, {self.tid}): {os.strerror(e)}")

    def stop(self):
        self._ptrace(PTRACE_SEIZE)
        self._ptrace(PTRACE_INTERRUPT)
        _, status = os.waitpid(self.tid, WALL)
        expect(os.WIFSTOPPED(status), f"thread {self.tid} did not stop: status {status:#x}")

    def resume(self):
        self._ptrace(PTRACE_DETACH)


def test_watchdog_pings_from_the_loop_and_stop_when_it_stalls():
    own_daemon()
    # 400 ms: a ping every 200 ms. Checks refuse answers from a loop silent for 500 ms.
    s = Service("watchdog", single_config(CheckStaleAfterMillis=500), env={"WATCHDOG_USEC": "400000"})
    stopped = None
    try:
        s.notify.wait_for(is_ready, 20, "READY=1")
        wait_until(lambda: lib.http("GET", s.base + f"/check/{APP}/mysql/lag")[0], lambda c: c == 200,
                   timeout=10, what="/check to answer 200")
        # Pings at the promised pace.
        n = len(s.notify.poll())
        t0 = time.monotonic()
        j = n
        for k in range(5):
            j, _ = s.notify.wait_for(lambda m: m == "WATCHDOG=1", 2, f"watchdog ping {k + 1}", start=j)
            j += 1
        took = time.monotonic() - t0
        expect(0.6 <= took <= 1.6, f"5 pings took {took:.2f}s at one per 200 ms")

        # The loop is the main thread (app_run runs it): stop it alone.
        stopped = ThreadStop(s.proc.pid)
        stopped.stop()
        stall_start = time.monotonic()
        s.notify.poll()  # a ping sent just before the stop
        n = len(s.notify.msgs)
        # The HTTP threads still answer, and /check sees the loop stalled.
        expect_eq(s.get("/lb-check")[0], 200, "/lb-check while the loop is stopped")
        code, body = wait_until(lambda: lib.http("GET", s.base + f"/check/{APP}/mysql/lag")[::2],
                                lambda r: r[0] == 500, timeout=3, what="/check to answer 500 (loop stalled)")
        expect("stall" in body.decode(errors="replace"), f"/check body names the stall: {body!r}")
        while time.monotonic() - stall_start < 1.5:
            s.notify.poll(0.1)
        pings = [m for _, m in s.notify.msgs[n:] if m == "WATCHDOG=1"]
        expect_eq(len(pings), 0, "watchdog pings during a 1.5 s loop stall (the limit is 0.4 s)")

        stopped.resume()
        stopped = None
        s.notify.wait_for(lambda m: m == "WATCHDOG=1", 2, "a ping once the loop runs again", start=n)
        wait_until(lambda: lib.http("GET", s.base + f"/check/{APP}/mysql/lag")[0], lambda c: c == 200,
                   timeout=5, what="/check to answer 200 again")
        s.stop()
    finally:
        if stopped is not None:
            stopped.resume()
        s.close()


# ---------------------------------------------------------------- log formats

PRIORITY = {"error": "3", "warn": "4", "info": "6", "debug": "7"}


HOSTILE_NAME = 'd"o\\wn\u00e9'  # a cluster name with a quote, a backslash and a non-ASCII letter


def noisy_config():
    """A cluster whose host refuses connections: warn lines for sure, one
    naming the cluster; and an unknown key with a control character."""
    cfg = single_config(Stores={"MySQL": {"User": "freno", "Password": "freno", "ThrottleThreshold": 1.0,
                                          "Clusters": {HOSTILE_NAME: lib.cluster([f"127.0.0.1:{lib.REFUSED_PORT}"])}}})
    cfg["Unknown\u0001Key"] = 1
    return cfg


def run_until_warned(s):
    s.notify.wait_for(is_ready, 20, "READY=1")
    wait_until(lambda: "warn" in s.log_text(), timeout=10, what="a warn line")
    s.stop()
    return s.log_text().splitlines()


def test_log_journal_priorities():
    own_daemon()
    s = Service("journal", noisy_config(), stderr_env="JOURNAL_STREAM", args=["--debug"])
    try:
        lines = run_until_warned(s)
    finally:
        s.close()
    seen = set()
    for line in lines:
        m = re.fullmatch(r"<([3-7])>(error|warn|info|debug) \S.*", line)
        expect(m, f"journal line without priority, or with a time: {line!r}")
        expect_eq(m.group(1), PRIORITY[m.group(2)], f"priority of {line!r}")
        seen.add(m.group(2))
    expect({"warn", "info", "debug"} <= seen, f"levels seen: {seen}")

    # The same daemon with stderr redirected elsewhere (the variable stays,
    # but names another file): plain lines with their time.
    s = Service("journal-not", noisy_config(), env={"JOURNAL_STREAM": "1:1"})
    try:
        lines = run_until_warned(s)
    finally:
        s.close()
    for line in lines:
        expect(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) ", line),
               f"not a plain line: {line!r}")


def test_log_json():
    own_daemon()
    s = Service("json", noisy_config(), args=["--log-format", "json"])
    try:
        s.notify.wait_for(is_ready, 20, "READY=1")
        wait_until(lambda: "failing" in s.log_text(), timeout=10, what="the probe failure line")
        s.stop()
        raw = s.log_path.read_bytes()
    finally:
        s.close()
    levels = set()
    messages = []
    for line in raw.split(b"\n")[:-1]:
        text = line.decode("utf-8")  # strict: every line is UTF-8
        obj = json.loads(text)
        expect_eq(sorted(obj), ["level", "message", "time"], f"members of {text}")
        expect(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"]), f"time of {text}")
        levels.add(obj["level"])
        messages.append(obj["message"])
    expect({"info", "warn"} <= levels, f"levels: {levels}")
    expect(any(f"(cluster {HOSTILE_NAME}): failing" in m for m in messages),
           f"the failure line names the cluster as configured: {messages}")
    expect(any(m.endswith(": Unknown?Key: unknown key") for m in messages), f"the unknown key warning: {messages}")
    expect(raw.endswith(b"\n"), "the last line is whole")

    out = subprocess.run([str(lib.FRENO_BIN), "--http", "--log-format", "yaml"], capture_output=True, text=True,
                         timeout=10)
    expect_eq(out.returncode, 2, "exit status of a bad --log-format")
    expect_eq(out.stderr.strip(), 'freno: --log-format: expected text or json, got "yaml"', "its message")
