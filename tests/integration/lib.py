# SPDX-License-Identifier: MIT
"""Harness for the integration tests (Python 3 standard library only).

It starts and stops the daemon with a config dict, talks HTTP to it,
queries the MariaDB topology of scripts/topology.sh through the mariadb CLI,
injects faults into replicas (stopped SQL thread, shutdown, SIGSTOP) and
undoes them after each test, and runs small helper services (a memcached, an
HTTP-check responder, a port that accepts but never answers).

Environment:
  FRENO_BIN               daemon binary (default: build/freno in the repo)
  FRENO_TOPOLOGY_DIR      base dir of scripts/topology.sh (default /tmp/freno-topology)
  FRENO_TEST_KEEP         keep the work dirs (config, log) of daemons that stopped cleanly
  FRENO_TEST_DAEMON_URL   use an already running daemon (e.g. under gdb) for
                          the tests that use the main config; tests that need
                          their own daemon are skipped. Write the config it
                          must run with: run.py --write-config FILE
"""

import datetime
import http.client as httpclient
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
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FRENO_BIN = Path(os.environ.get("FRENO_BIN", REPO / "build" / "freno"))
TOPOLOGY_SH = REPO / "scripts" / "topology.sh"
TOPOLOGY_DIR = Path(os.environ.get("FRENO_TOPOLOGY_DIR", "/tmp/freno-topology"))
EXTERNAL_URL = os.environ.get("FRENO_TEST_DAEMON_URL", "").rstrip("/")

# Ports: 13306-13399 belong to the topology and these tests.
PRIMARY = 13306
R1 = 13307
R2 = 13308
REPLICAS = (R1, R2)
MAIN_PORT = 13390  # the shared daemon
ALT_PORT = 13391  # a second daemon with another config
STARTUP_PORT = 13393
LEADER_PORT = 13394
MEMCACHED_PORT = 13381
HTTPCHECK_PORT = 13397  # 200 on 127.0.0.1, 404 on 127.0.0.2
BLACKHOLE_PORT = 13398  # accepts TCP connections, never says a word
REFUSED_PORT = 13399  # nothing listens here

LAG_QUERY = ("select unix_timestamp(now(6)) - unix_timestamp(ts) as lag_check "
             "from meta.heartbeat order by ts desc limit 1")
THREADS_QUERY = "show global status like 'threads_running'"

SANITIZER_PATTERNS = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"SUMMARY: UndefinedBehaviorSanitizer|WARNING: ThreadSanitizer|ERROR: ThreadSanitizer")


class Skip(Exception):
    """Raised by a test that cannot run in this setup."""


class TestFailure(AssertionError):
    pass


def expect(cond, message):
    """Fails the test with @message unless @cond holds (works under python -O)."""
    if not cond:
        raise TestFailure(message)


def expect_eq(actual, expected, what):
    if actual != expected:
        raise TestFailure(f"{what}: expected {expected!r}, got {actual!r}")


# ---------------------------------------------------------------- waiting

def wait_until(fn, cond=bool, timeout=5.0, interval=0.05, what=None):
    """Calls @fn until cond(value) is true, at most @timeout seconds.

    Returns the value that satisfied @cond. On timeout fails with @what and
    the last value observed (an exception raised by @fn counts as a value)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except (OSError, httpclient.HTTPException, ValueError, subprocess.SubprocessError) as e:
            last = e
        else:
            try:
                if cond(last):
                    return last
            except (KeyError, TypeError, AttributeError, ValueError):
                pass  # a value of the wrong shape: not there yet
        if time.monotonic() >= deadline:
            desc = what or getattr(fn, "__name__", "condition")
            raise TestFailure(f"timed out after {timeout:.1f}s waiting for {desc}; "
                              f"last observed: {_short(last)}")
        time.sleep(interval)


def _short(v, limit=400):
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + "..."


# ---------------------------------------------------------------- HTTP

def http(method, url, headers=None, timeout=5.0):
    """One request on a fresh connection. Returns (status, headers, body).

    Header names in the returned dict are lower case; body is bytes."""
    u = urllib.parse.urlsplit(url)
    conn = httpclient.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def get_json(url, headers=None, timeout=5.0):
    """GET @url; returns (status, parsed JSON or None when the body is not JSON)."""
    status, _, body = http("GET", url, headers, timeout)
    return status, parse_json(body)


def parse_json(body):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


class Client:
    """A keep-alive HTTP connection for many quick requests."""

    def __init__(self, host, port, timeout=5.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def request(self, method, path, headers=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = httpclient.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, headers=headers or {})
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, body
            except (httpclient.HTTPException, ConnectionError):
                # The server may close an idle keep-alive connection; retry once.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ---------------------------------------------------------------- time

_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_rfc3339(s):
    """Parses an RFC 3339 time into an aware datetime; fails the test if malformed."""
    m = _RFC3339.match(s) if isinstance(s, str) else None
    expect(m is not None, f"not an RFC 3339 time: {s!r}")
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    micro = int((frac or ".0")[1:7].ljust(6, "0"))
    if tz == "Z":
        tzinfo = datetime.timezone.utc
    else:
        sign = 1 if tz[0] == "+" else -1
        tzinfo = datetime.timezone(sign * datetime.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    return datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), micro, tzinfo)


def seconds_from_now(s):
    """Seconds between now and the RFC 3339 time @s (positive: in the future)."""
    return (parse_rfc3339(s) - datetime.datetime.now(datetime.timezone.utc)).total_seconds()


# ---------------------------------------------------------------- daemons

def _env_with_sanitizer_options():
    env = dict(os.environ)
    asan = "detect_leaks=1:halt_on_error=1:abort_on_error=0:print_summary=1"
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":" + asan).strip(":")
    ubsan = "print_stacktrace=1:halt_on_error=1"
    env["UBSAN_OPTIONS"] = (env.get("UBSAN_OPTIONS", "") + ":" + ubsan).strip(":")
    return env


class Daemon:
    """One daemon process with its own work dir, config file and log."""

    def __init__(self, name, config, port, args=()):
        self.name = name
        self.port = port
        self.args = list(args)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"freno-it-{name}-"))
        self.config = _substitute(config, str(self.workdir))
        self.config_path = self.workdir / "freno.conf.json"
        self.log_path = self.workdir / "freno.log"
        self.base = f"http://127.0.0.1:{port}"
        self.proc = None
        self.started_at = None
        self._log_offset = 0

    def start(self, wait=True, timeout=20.0):
        expect(FRENO_BIN.exists(), f"daemon binary {FRENO_BIN} not found (build first)")
        self.config_path.write_text(json.dumps(self.config, indent=2))
        cmd = [str(FRENO_BIN), "--http", "--config", str(self.config_path),
               "--http-port", str(self.port)] + self.args
        log = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     env=_env_with_sanitizer_options(), start_new_session=True)
        log.close()
        if wait:
            wait_until(lambda: self._alive_or_raise() and self.get("/lb-check")[0], lambda s: s == 200,
                       timeout=timeout, interval=0.02, what=f"daemon {self.name} to answer /lb-check")
        return self

    def _alive_or_raise(self):
        if self.proc.poll() is not None:
            raise TestFailure(f"daemon {self.name} exited with {self.proc.returncode} during startup; "
                              f"log tail:\n{self.log_tail()}")
        return True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, wait; returns a list of problems (sanitizer reports, bad exit)."""
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"daemon {self.name} did not exit within {timeout:.0f}s of SIGTERM")
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        if rc not in (0, -signal.SIGTERM):
            problems.append(f"daemon {self.name} exited with status {rc}")
        report = self.sanitizer_report()
        if report:
            problems.append(f"sanitizer report in {self.log_path}:\n{report}")
        if problems:
            problems.append(f"log tail of {self.name}:\n{self.log_tail()}")
        self.proc = None
        return problems

    def restart(self, **kw):
        problems = self.stop()
        expect(not problems, "\n".join(problems))
        return self.start(**kw)

    def retire(self):
        """Stops for good; removes the work dir unless there were problems
        (then the log stays for a look). Returns the problems."""
        problems = self.stop()
        if not problems and not os.environ.get("FRENO_TEST_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    def sanitizer_report(self):
        """New sanitizer report lines since the last call ('' if none)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                data = f.read()
        except FileNotFoundError:
            return ""
        self._log_offset += len(data)
        text = data.decode("utf-8", "replace")
        m = SANITIZER_PATTERNS.search(text)
        if not m:
            return ""
        return text[max(0, m.start() - 200):m.start() + 3000]

    def log_tail(self, lines=30):
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # HTTP helpers bound to this daemon.
    def url(self, path, v6=False):
        host = "[::1]" if v6 else "127.0.0.1"
        return f"http://{host}:{self.port}{path}"

    def request(self, method, path, headers=None, timeout=5.0):
        return http(method, self.base + path, headers, timeout)

    def get(self, path, headers=None, timeout=5.0):
        status, _, body = http("GET", self.base + path, headers, timeout)
        return status, body

    def head(self, path, headers=None, timeout=5.0):
        status, _, body = http("HEAD", self.base + path, headers, timeout)
        return status, body

    def get_json(self, path, headers=None, timeout=5.0):
        return get_json(self.base + path, headers, timeout)

    def client(self):
        return Client("127.0.0.1", self.port)


class ExternalDaemon(Daemon):
    """A daemon somebody else runs (FRENO_TEST_DAEMON_URL)."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.name = "external"
        self.port = u.port or 80
        self.base = url
        self.proc = None
        self.log_path = None

    def start(self, wait=True, timeout=20.0):
        return self

    def alive(self):
        return True

    def stop(self, timeout=10.0):
        return []

    def retire(self):
        return []

    def restart(self, **kw):
        raise Skip("needs to restart the daemon")

    def sanitizer_report(self):
        return ""

    def log_tail(self, lines=30):
        return "(external daemon)"

    def url(self, path, v6=False):
        if v6:
            return f"http://[::1]:{self.port}{path}"
        return self.base + path

    def client(self):
        u = urllib.parse.urlsplit(self.base)
        return Client(u.hostname, self.port)


def _substitute(obj, workdir):
    if isinstance(obj, str):
        return obj.replace("@WORKDIR@", workdir)
    if isinstance(obj, list):
        return [_substitute(x, workdir) for x in obj]
    if isinstance(obj, dict):
        return {k: _substitute(v, workdir) for k, v in obj.items()}
    return obj


_daemons = {}  # name -> Daemon, every daemon this session started
_shutdown_problems = []  # (name, problems) of daemons replaced mid-suite


def daemon(name, config, port, args=(), wait=True):
    """The running daemon called @name, started with @config (a dict; the
    string @WORKDIR@ in values becomes its private work dir). A running one
    with another config or args is stopped and replaced. With @wait false it
    returns right after spawning (d.started_at is the spawn time)."""
    d = _daemons.get(name)
    if d is not None and d.alive() and d.requested == (config, list(args)) and _answers(d):
        return d
    if d is not None:
        problems = d.retire()
        if problems:
            _shutdown_problems.append((name, problems))
    if EXTERNAL_URL:
        raise Skip("needs its own daemon (FRENO_TEST_DAEMON_URL is set)")
    d = Daemon(name, config, port, args)
    d.requested = (config, list(args))
    _daemons[name] = d
    start_helpers()
    try:
        d.start(wait=wait)
    except BaseException:
        # The failure message carries the log; stop it here so it is not
        # reported a second time as a dead daemon.
        _daemons.pop(name, None)
        d.stop()
        raise
    return d


def stop_daemon(name):
    """Stops the daemon called @name and fails the test if it left a problem."""
    d = _daemons.pop(name, None)
    if d is not None:
        problems = d.retire()
        expect(not problems, "\n".join(problems))


def main_daemon():
    """The shared daemon serving most tests (main_config())."""
    if EXTERNAL_URL:
        start_helpers()
        return ExternalDaemon(EXTERNAL_URL)
    return daemon("main", main_config(), MAIN_PORT)


def stop_extra_daemons():
    """After each test: stops every daemon but the shared one; returns problems."""
    problems = []
    for name in [n for n in _daemons if n != "main"]:
        problems.extend(_daemons.pop(name).retire())
    return problems


def _answers(d):
    """True if @d answers /lb-check; if it does not, gives a dying process up
    to 3 s to finish exiting so that its death is seen now."""
    try:
        d.get("/lb-check", timeout=3)
        return True
    except (OSError, httpclient.HTTPException):
        if d.proc is not None:
            try:
                d.proc.wait(3)
            except subprocess.TimeoutExpired:
                pass
        return False


def check_daemons():
    """After each test: every daemon alive and answering, no new sanitizer report."""
    problems = []
    for d in list(_daemons.values()):
        if d.proc is not None and not _answers(d) and d.alive():
            problems.append(f"daemon {d.name} is alive but does not answer /lb-check; log tail:\n{d.log_tail()}")
        if d.proc is not None and not d.alive():
            problems.append(f"daemon {d.name} died (status {d.proc.returncode}); log tail:\n{d.log_tail()}")
            _daemons.pop(d.name, None)
            continue
        report = d.sanitizer_report()
        if report:
            problems.append(f"sanitizer report from daemon {d.name}:\n{report}")
    return problems


def shutdown():
    """Stops every daemon and helper; returns (name, problems) per daemon with problems."""
    results = []
    for name, d in list(_daemons.items()):
        problems = d.retire()
        if problems:
            results.append((name, problems))
    _daemons.clear()
    for name, problems in _shutdown_problems:
        results.append((name, problems))
    _shutdown_problems.clear()
    stop_helpers()
    return results


# ---------------------------------------------------------------- configs

def static_hosts(*hosts):
    return {"StaticHostsSettings": {"Hosts": [h if isinstance(h, str) else f"127.0.0.1:{h}" for h in hosts]}}


def cluster(hosts, query=LAG_QUERY, **settings):
    c = {"MetricQuery": query}
    c.update(static_hosts(*hosts))
    c.update(settings)
    return c


def main_config():
    """One daemon, many clusters: each test looks at the clusters it needs."""
    refused = f"127.0.0.1:{REFUSED_PORT}"
    return {
        "ListenPort": MAIN_PORT,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "MemcacheServers": [f"127.0.0.1:{MEMCACHED_PORT}"],
        "Stores": {"MySQL": {
            "User": "freno",
            "Password": "freno",
            "ThrottleThreshold": 1.0,
            "Clusters": {
                # heartbeat lag over both replicas, threshold 1 s
                "lag": cluster(REPLICAS),
                "lagr2": cluster([R2]),
                "lagign": cluster(REPLICAS, IgnoreHostsCount=1),
                "lagthr": cluster(REPLICAS, IgnoreHostsCount=1, IgnoreHostsThreshold=3.0),
                "lag1ign": cluster([R1], IgnoreHostsCount=1),
                # default metric: SHOW SLAVE STATUS Seconds_Behind_Master
                "repl": cluster(REPLICAS, query=""),
                # IPv6 literal hosts: "[::1]:port" and a bare "::1" taking the cluster Port
                "v6": {"MetricQuery": LAG_QUERY, "Port": R2,
                       "StaticHostsSettings": {"Hosts": [f"[::1]:{R1}", "::1"]}},
                # threads_running is >= 1 (the probe itself), far below 1000, above 0.5
                "threads": cluster(REPLICAS, query=THREADS_QUERY, ThrottleThreshold=1000),
                "threadsb": cluster(REPLICAS, query=THREADS_QUERY, ThrottleThreshold=1000),
                "busy": cluster(REPLICAS, query=THREADS_QUERY, ThrottleThreshold=0.5),
                # failing hosts and queries
                "down": cluster([refused]),
                "downcount": cluster([refused, R2], IgnoreHostsCount=1),
                "hang": cluster([f"127.0.0.1:{BLACKHOLE_PORT}"]),
                "null": cluster([R2], query="select null"),
                "text": cluster([R2], query="select 'abc'"),
                "rows": cluster([R2], query="select 1 union all select 2"),
                "norow": cluster([R2], query="select 1 from dual where 1 = 0"),
                "unsupported": cluster([R2], query="describe meta.heartbeat"),
                # inventory: ignored hosts, skipped hosts, HTTP checks
                "ignored": cluster([f"127.0.0.2:{REFUSED_PORT}", R2], IgnoreHosts=["127.0.0.2"]),
                "allignored": cluster([f"127.0.0.2:{REFUSED_PORT}"], IgnoreHosts=["127.0.0.2"]),
                "skipme": cluster([f"127.0.0.3:{REFUSED_PORT}", R2]),
                "httpchk": cluster([f"127.0.0.2:{REFUSED_PORT}", R2], HttpCheckPort=HTTPCHECK_PORT,
                                   HttpCheckPath="status/check"),
            },
        }},
    }


# ---------------------------------------------------------------- MariaDB

def node_socket(port):
    return TOPOLOGY_DIR / f"n{port}" / "mariadbd.sock"


def node_pid(port):
    return int((TOPOLOGY_DIR / f"n{port}" / "mariadbd.pid").read_text().strip())


def sql(port, statement, timeout=10.0, columns=False):
    """Runs @statement as root over the node's socket; returns rows as lists
    of strings (NULL stays 'NULL'). With @columns the first row is the header."""
    cmd = ["mariadb", "--no-defaults", f"--socket={node_socket(port)}", "-uroot", "--batch",
           "--connect-timeout=3", "-e", statement]
    if not columns:
        cmd.insert(-2, "--skip-column-names")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise TestFailure(f"sql on {port} failed: {statement!r}: {out.stderr.strip()}")
    return [line.split("\t") for line in out.stdout.splitlines()]


def replica_status(port):
    rows = sql(port, "SHOW SLAVE STATUS", columns=True)
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[1]))


def replica_lag(port):
    """Heartbeat lag in seconds as the tests' lag query sees it, or None."""
    rows = sql(port, LAG_QUERY)
    return float(rows[0][0]) if rows and rows[0][0] != "NULL" else None


def replica_healthy(port):
    st = replica_status(port)
    lag = replica_lag(port)
    ok = (st.get("Slave_IO_Running") == "Yes" and st.get("Slave_SQL_Running") == "Yes"
          and lag is not None and lag < 0.5)
    return ok, {"io": st.get("Slave_IO_Running"), "sql": st.get("Slave_SQL_Running"), "lag": lag}


def wait_replica_healthy(port, timeout=30.0):
    wait_until(lambda: replica_healthy(port), lambda r: r[0], timeout=timeout, interval=0.1,
               what=f"replica {port} replicating with heartbeat lag < 0.5s")


# Faults injected by the current test; after_test() undoes them.
_disturbed = {"sql_stopped": set(), "frozen": set(), "down": set()}


def stop_sql_thread(port):
    _disturbed["sql_stopped"].add(port)
    sql(port, "STOP SLAVE SQL_THREAD")


def start_sql_thread(port):
    sql(port, "START SLAVE SQL_THREAD")
    _disturbed["sql_stopped"].discard(port)


def shutdown_node(port):
    _disturbed["down"].add(port)
    _topology("stop-node", str(port))


def start_node(port):
    _topology("start-node", str(port))
    _disturbed["down"].discard(port)


def freeze_node(port):
    """SIGSTOP the server: it keeps its sockets but answers nothing."""
    _disturbed["frozen"].add(port)
    os.kill(node_pid(port), signal.SIGSTOP)


def thaw_node(port):
    os.kill(node_pid(port), signal.SIGCONT)
    _disturbed["frozen"].discard(port)


def _topology(*args):
    out = subprocess.run(["bash", str(TOPOLOGY_SH), *args, "--base-dir", str(TOPOLOGY_DIR)],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise TestFailure(f"topology.sh {' '.join(args)} failed: {out.stderr.strip() or out.stdout.strip()}")


def after_test():
    """Undoes every fault the test injected and waits for a healthy topology.
    Returns a list of problems (empty when all is well)."""
    problems = []
    touched = set()
    for port in list(_disturbed["frozen"]):
        try:
            thaw_node(port)
        except OSError as e:
            problems.append(f"SIGCONT {port}: {e}")
        touched.add(port)
    for port in list(_disturbed["down"]):
        try:
            start_node(port)
        except TestFailure as e:
            problems.append(str(e))
        touched.add(port)
    for port in list(_disturbed["sql_stopped"]):
        try:
            start_sql_thread(port)
        except TestFailure as e:
            problems.append(str(e))
        touched.add(port)
    for port in sorted(touched):
        if port in REPLICAS:
            try:
                wait_replica_healthy(port)
            except TestFailure as e:
                problems.append(str(e))
    return problems


def topology_ready():
    """Fails unless both replicas replicate with fresh heartbeats."""
    for port in REPLICAS:
        wait_replica_healthy(port, timeout=10)


# ---------------------------------------------------------------- helper services

class _Blackhole:
    """Accepts TCP connections and never writes: a MySQL that hangs before
    its greeting. Connections are closed after 30 s so they do not pile up."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(256)
        self.sock.settimeout(0.5)
        self.held = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
                self.held.append((time.monotonic(), conn))
            except socket.timeout:
                pass
            except OSError:
                break
            now = time.monotonic()
            while self.held and now - self.held[0][0] > 30:
                self.held.pop(0)[1].close()

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()
        for _, c in self.held:
            c.close()


class _HttpCheckServer:
    """Answers every GET with @status and remembers the paths asked for."""

    def __init__(self, addr, port, status):
        import http.server

        paths = self.paths = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                paths.append(self.path)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer((addr, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


_helpers = {}


def start_helpers():
    """Starts the helper services the main config refers to (once)."""
    if _helpers:
        return _helpers
    _helpers["blackhole"] = _Blackhole(BLACKHOLE_PORT)
    _helpers["httpcheck_ok"] = _HttpCheckServer("127.0.0.1", HTTPCHECK_PORT, 200)
    _helpers["httpcheck_404"] = _HttpCheckServer("127.0.0.2", HTTPCHECK_PORT, 404)
    mc = subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(MEMCACHED_PORT), "-U", "0",
                           "-m", "16", "-u", "root"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _helpers["memcached"] = mc

    def mc_up():
        if mc.poll() is not None:
            raise TestFailure(f"memcached exited with {mc.returncode} (port {MEMCACHED_PORT} in use?)")
        with socket.create_connection(("127.0.0.1", MEMCACHED_PORT), timeout=1):
            return True

    wait_until(mc_up, timeout=10, what=f"memcached on {MEMCACHED_PORT}")
    return _helpers


def stop_process(proc):
    """SIGTERM, then SIGKILL after 5 s; a process already gone is fine."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_helpers():
    for name, h in list(_helpers.items()):
        if name == "memcached":
            stop_process(h)
        else:
            h.close()
    _helpers.clear()


def start_haproxy_stats(workdir, port, servers, pool="ro"):
    """A real HAProxy whose CSV stats page on @port lists @servers (replica
    ports) in @pool, health-checked every 200 ms: an HAProxy inventory
    source. Waits for the page; raises Skip without haproxy."""
    if shutil.which("haproxy") is None:
        raise Skip("haproxy is not installed")
    lines = ["defaults", "    mode tcp", "    timeout connect 1s", "    timeout client 5s",
             "    timeout server 5s", "listen stats", f"    bind 127.0.0.1:{port}",
             "    mode http", "    stats enable", "    stats uri /", f"backend {pool}"]
    lines += [f"    server 127.0.0.1:{p} 127.0.0.1:{p} check inter 200 rise 1 fall 1" for p in servers]
    path = os.path.join(str(workdir), "haproxy.cfg")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    proc = subprocess.Popen(["haproxy", "-db", "-f", path], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def page():
        try:
            return http("GET", f"http://127.0.0.1:{port}/;csv;norefresh", timeout=2)[0]
        except OSError:
            return None
    try:
        wait_until(page, lambda st: st == 200, timeout=10, what="the HAProxy stats page")
    except BaseException:
        stop_process(proc)
        raise
    return proc


def httpcheck_paths():
    """Paths the HTTP-check helpers were asked for, on 127.0.0.1 and 127.0.0.2."""
    return list(_helpers["httpcheck_ok"].paths), list(_helpers["httpcheck_404"].paths)


def memcache_get(key, port=MEMCACHED_PORT):
    """Value of @key in memcached as str, or None on a miss (text protocol)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(f"get {key}\r\n".encode())
        data = b""
        while not (data.endswith(b"END\r\n") or data.startswith(b"ERROR") or
                   data.startswith(b"CLIENT_ERROR") or data.startswith(b"SERVER_ERROR")):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"VALUE "):
        return None
    header, rest = data.split(b"\r\n", 1)
    length = int(header.split()[3])
    return rest[:length].decode()
