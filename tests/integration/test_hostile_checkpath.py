# SPDX-License-Identifier: MIT
"""The check path under a hostile environment: a daemon whose stderr goes to a
pipe that nobody reads keeps its loop running (logging never blocks it), so
/check keeps following the replicas; and when stderr takes lines again, every
line comes out whole, the drops are counted, and shutdown is not held up.

Every wait has a deadline; a test never sleeps and hopes."""

import errno
import fcntl
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import lib
from lib import R1, REPLICAS, expect, wait_until

PORT = 13385
APP = "it-checkpath"
NOISY_HOSTS = 80  # refused hosts: each failed probe is a debug line, 20 per host per second
BLOCKED_SEC = 10  # at about 250 KB of lines a second, twice what the log queue holds

LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) \S")
FILLER = b"filler: the test keeps this pipe full\n"


def config():
    noise = [f"127.0.0.{i}:{lib.REFUSED_PORT}" for i in range(2, 2 + NOISY_HOSTS)]
    return {
        "ListenPort": PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "Stores": {"MySQL": {
            "User": "freno",
            "Password": "freno",
            "ThrottleThreshold": 1.0,
            "Clusters": {
                "lag": lib.cluster(REPLICAS),
                "noise": lib.cluster(noise),
            },
        }},
    }


class StderrPipe:
    """The daemon's stderr: a 4 KiB pipe that a thread drains only while
    draining is on; the test can also fill it to the brim."""

    def __init__(self):
        self.rd, self.wr = os.pipe()
        fcntl.fcntl(self.wr, fcntl.F_SETPIPE_SZ, 4096)
        self.data = bytearray()
        self.draining = threading.Event()
        self.paused = threading.Event()
        self.eof = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            if not self.draining.is_set():
                self.paused.set()
                self.draining.wait(0.05)
                continue
            self.paused.clear()
            ready, _, _ = select.select([self.rd], [], [], 0.05)
            if not ready:
                continue
            chunk = os.read(self.rd, 65536)
            if not chunk:
                self.eof.set()
                return
            self.data += chunk

    def drain(self):
        self.draining.set()

    def pause_and_fill(self):
        """Stops draining, then fills the pipe with whole filler lines."""
        self.draining.clear()
        wait_until(self.paused.is_set, timeout=5, what="the stderr reader to pause")
        flags = fcntl.fcntl(self.wr, fcntl.F_GETFL)
        fcntl.fcntl(self.wr, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        try:
            while True:
                os.write(self.wr, FILLER)
        except BlockingIOError:
            pass
        except OSError as e:
            expect(e.errno == errno.EAGAIN, f"filling the pipe: {e}")
        fcntl.fcntl(self.wr, fcntl.F_SETFL, flags)

    def close_ours(self):
        """Closes the test's copy of the write end: EOF comes when the daemon exits."""
        if self.wr is not None:
            os.close(self.wr)
            self.wr = None

    def close(self):
        self.close_ours()
        self.draining.set()
        self.thread.join(5)
        os.close(self.rd)


def start_daemon(workdir, pipe):
    cfg = lib._substitute(config(), str(workdir))
    (workdir / "raft").mkdir(exist_ok=True)
    path = workdir / "freno.conf.json"
    path.write_text(json.dumps(cfg, indent=2))
    out = open(workdir / "stdout.log", "ab")
    proc = subprocess.Popen([str(lib.FRENO_BIN), "--http", "--config", str(path), "--http-port", str(PORT),
                             "--debug"], stdin=subprocess.DEVNULL, stdout=out, stderr=pipe.wr,
                            env=lib._env_with_sanitizer_options(), start_new_session=True)
    out.close()
    return proc


def check(path):
    return lib.get_json(f"http://127.0.0.1:{PORT}{path}", timeout=2)


def test_full_stderr_pipe_does_not_stall_the_loop():
    if lib.EXTERNAL_URL:
        raise lib.Skip("starts its own daemon")
    lib.topology_ready()
    lib.start_helpers()
    workdir = Path(tempfile.mkdtemp(prefix="freno-it-checkpath-"))
    pipe = StderrPipe()
    proc = None
    try:
        pipe.drain()
        proc = start_daemon(workdir, pipe)
        wait_until(lambda: check(f"/check/{APP}/mysql/lag"), lambda r: r[0] == 200, timeout=20,
                   what="the daemon to answer 200 on a healthy lag cluster")
        expect(proc.poll() is None, "daemon exited during startup")
        debug_lines = pipe.data.count(b" debug probe: ")
        wait_until(lambda: pipe.data.count(b" debug probe: "), lambda n: n > debug_lines + 20, timeout=10,
                   what="the daemon to log failing probes at debug level")

        # Nobody reads stderr any more and the pipe is full: every line the
        # daemon logs from now on finds no room.
        pipe.pause_and_fill()
        t0 = time.monotonic()
        lib.stop_sql_thread(R1)
        status, body = wait_until(lambda: check(f"/check/{APP}/mysql/lag"), lambda r: r[0] == 429, timeout=15,
                                  what="/check to answer 429 after STOP SLAVE SQL_THREAD on R1 while stderr "
                                       "is full (a loop blocked in a log write keeps answering 200)")
        expect(body.get("Message") == "Threshold exceeded", f"429 body: {body!r}")
        lib.start_sql_thread(R1)
        wait_until(lambda: check(f"/check/{APP}/mysql/lag"), lambda r: r[0] == 200, timeout=15,
                   what="/check back to 200 after START SLAVE SQL_THREAD while stderr is still full")
        # Long enough for the daemon's log queue to fill: checks keep answering.
        worst = 0.0
        while time.monotonic() - t0 < BLOCKED_SEC:
            t1 = time.monotonic()
            status, body = check(f"/check/{APP}/mysql/lag")
            worst = max(worst, time.monotonic() - t1)
            expect(status == 200, f"/check answered {status} {body!r} while stderr was full")
            time.sleep(0.1)
        expect(worst < 1.0, f"a check took {worst:.2f}s while stderr was full")
        blocked_for = time.monotonic() - t0
        expect(proc.poll() is None, "daemon died while stderr was full")

        # stderr takes lines again; then a clean stop flushes what is queued.
        pipe.drain()
        pipe.close_ours()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            raise lib.TestFailure("daemon did not exit within 15 s of SIGTERM") from None
        expect(proc.returncode in (0, -signal.SIGTERM), f"daemon exited with {proc.returncode}")
        wait_until(pipe.eof.is_set, timeout=10, what="end of the daemon's stderr")

        data = bytes(pipe.data)
        report = lib.SANITIZER_PATTERNS.search(data.decode("utf-8", "replace"))
        expect(report is None, f"sanitizer report on stderr:\n{data[report.start() - 200:][:3000]!r}"
               if report else "")
        lines = [ln for ln in data.split(b"\n")[:-1] if ln + b"\n" != FILLER]
        expect(data.endswith(b"\n"), "stderr does not end with a whole line")
        broken = [ln for ln in lines if not LINE.match(ln)]
        expect(not broken, f"{len(broken)} broken log line(s), e.g. {broken[:3]!r}")
        expect(lines and lines[-1].endswith(b" info app: stopped"),
               f"the last line is not the stop message: {lines[-3:]!r}")
        dropped = [ln for ln in lines if b" warn log: dropped " in ln]
        expect(dropped, "no line says how many lines were dropped while stderr was full")
        print(f"    stderr blocked for {blocked_for:.1f}s, slowest check {worst * 1000:.0f} ms; "
              f"{len(lines)} lines came out; "
              f"drop notices: {[d.split(b'log: ')[1].decode() for d in dropped][:3]}")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        pipe.close()
        if proc is not None and proc.returncode in (0, -signal.SIGTERM):
            shutil.rmtree(workdir, ignore_errors=True)
