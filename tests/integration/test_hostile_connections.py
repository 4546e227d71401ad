# SPDX-License-Identifier: MIT
"""Hostile clients against the real daemon, with the MySQL backend electing
the leader (so a node that loses its descriptors or its threads loses its
lease, and the test sees it).

- Slow clients: 1,500 connections from one address send half a request and
  then one header line every 5 s, against a node started under an open-files
  limit of 1,024. Checks from another address (127.0.0.2) must answer within
  1 s throughout, and the node keeps its leadership and its backend row.
- Control requests against a stopped backend: 64 at once while the backend
  server is SIGSTOPped. Checks from another client answer within 0.5 s, every
  control request gets an answer (queue full, not applied, or outcome
  unknown), nothing refused is applied later, and the node leads again once
  the backend is continued.

The nodes use the schema and user of test_backend_ha.py, on ports 18110-18112.
Measured figures are printed as lines starting with "figure:"."""

import http.client as httpclient
import os
import resource
import selectors
import socket
import threading
import time

import lib
import test_backend_ha as ha
from lib import expect, expect_eq, wait_until

SLOW_PORT = 18110
SLOW_HARD_PORT = 18111
CONTROL_PORT = 18112
CHECKER_ADDR = "127.0.0.2"  # checks come from another address than the attackers
APP = "hostile-checker"

SLOW_CONNECTIONS = 1500
SLOW_LINE_EVERY_S = 5.0
SLOW_SAMPLE_S = 25.0
SLOW_CHECK_BOUND_S = 1.0

CONTROL_REQUESTS = 64
CONTROL_CHECK_BOUND_S = 0.5
CONTROL_TIMEOUT_S = 5.0  # ControlTimeoutMillis default
LEADER_BACK_S = 7.0


# ---------------------------------------------------------------- helpers

class LimitedDaemon(lib.Daemon):
    """A daemon started under an open-files limit (soft, hard), as a service
    manager with LimitNOFILE would start it: the limit is in place before
    the process runs."""

    def __init__(self, name, config, port, nofile):
        super().__init__(name, config, port)
        self.nofile = nofile

    def start(self, wait=True, timeout=20.0):
        soft, hard = self.nofile
        wrapper = self.workdir / "limited.sh"
        wrapper.write_text(f'#!/bin/sh\nexec prlimit --nofile={soft}:{hard} -- "{lib.FRENO_BIN}" "$@"\n')
        wrapper.chmod(0o755)
        real = lib.FRENO_BIN
        lib.FRENO_BIN = wrapper
        try:
            return super().start(wait=wait, timeout=timeout)
        finally:
            lib.FRENO_BIN = real

    def open_files(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def nofile_limits(self):
        """(soft, hard) as the kernel has them for the running daemon."""
        for line in open(f"/proc/{self.proc.pid}/limits"):
            if line.startswith("Max open files"):
                f = line.split()
                return int(f[3]), int(f[4])
        raise lib.TestFailure("no 'Max open files' line in /proc/PID/limits")


def node_config(port, domain):
    cfg = ha.node_config(port, domain)
    # A cluster on a replica, so checks have a host that is never stopped.
    cfg["Stores"]["MySQL"]["Clusters"]["r1"] = {
        "User": "freno", "Password": "freno", "MetricQuery": lib.LAG_QUERY,
        "StaticHostsSettings": {"Hosts": [f"127.0.0.1:{lib.R1}"]}}
    return cfg


def start_node(name, port, domain, nofile=None):
    """A node registered with the harness (stopped and checked after the test)."""
    cfg = node_config(port, domain)
    if nofile is None:
        return lib.daemon(name, cfg, port)
    lib.start_helpers()
    d = LimitedDaemon(name, cfg, port, nofile)
    d.requested = (cfg, [])
    lib._daemons[name] = d
    d.start()
    return d


def election_row(domain):
    rows = ha.backend_sql("SELECT service_id, timestampdiff(second, last_seen_active, now()) "
                          f"FROM service_election WHERE domain = '{domain}'")
    return (rows[0][0], int(rows[0][1])) if rows else None


def get_from(addr, port, path, timeout=3.0, method="GET"):
    """One request on a fresh connection from source address @addr."""
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(addr, 0))
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


class CheckSampler:
    """Asks @paths in turn from 127.0.0.2, each on a fresh connection, as
    fast as answers come (at most every @interval s), and records each
    answer's latency; a failure to connect or answer counts as a miss."""

    def __init__(self, port, paths, interval=0.02):
        self.port, self.paths, self.interval = port, paths, interval
        self.samples = []  # (t, path, status or exception text, latency)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i = 0
        while self.running:
            path = self.paths[i % len(self.paths)]
            i += 1
            t0 = time.monotonic()
            try:
                status = get_from(CHECKER_ADDR, self.port, path, timeout=3.0)[0]
            except (OSError, httpclient.HTTPException) as e:
                status = f"{type(e).__name__}: {e}"
            lat = time.monotonic() - t0
            self.samples.append((t0, path, status, lat))
            time.sleep(max(0.0, self.interval - lat))

    def stop(self):
        self.running = False
        self.thread.join(5)

    def window(self, t_from, t_to):
        return [s for s in self.samples if t_from <= s[0] <= t_to]


def summarize(samples):
    lats = sorted(s[3] for s in samples)
    if not lats:
        return "no samples"
    p = lambda q: lats[min(len(lats) - 1, int(q * len(lats)))]  # noqa: E731
    return f"{len(lats)} answers, p50 {p(0.5) * 1000:.1f} ms, p99 {p(0.99) * 1000:.1f} ms, max {lats[-1] * 1000:.1f} ms"


class SlowClients:
    """@n connections from 127.0.0.1 that each send half a request, then one
    header line every @every s. A connection the daemon closes (or refuses)
    is opened again at its next turn, so the pressure stays on."""

    HALF_REQUEST = b"GET /check/slow/mysql/ha HTTP/1.1\r\nHost: freno\r\nUser-Agent: slow\r\n"

    def __init__(self, port, n, every):
        self.port, self.n, self.every = port, n, every
        self.socks = [None] * n
        self.next_at = [0.0] * n
        self.sent_lines = [0] * n
        self.opened = 0
        self.closed_by_server = 0
        self.lines = 0
        self.open_now = 0
        self.max_open = 0
        self.sel = selectors.DefaultSelector()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = self.n + 256
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, min(hard, need)), max(hard, need)))
        self.thread.start()
        return self

    def _close(self, i, by_server):
        s = self.socks[i]
        if s is None:
            return
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        self.socks[i] = None
        self.open_now -= 1
        if by_server:
            self.closed_by_server += 1

    def _open(self, i, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", self.port))
        self.socks[i] = s
        self.sent_lines[i] = -1  # the half request is still to be sent
        self.sel.register(s, selectors.EVENT_READ, i)
        self.opened += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)

    def _send(self, i, now):
        s = self.socks[i]
        data = self.HALF_REQUEST if self.sent_lines[i] < 0 else f"X-Slow-{self.sent_lines[i]}: x\r\n".encode()
        try:
            s.send(data)
        except BlockingIOError:
            self.next_at[i] = now + 0.1  # still connecting
            return
        except OSError:
            self._close(i, by_server=True)
            self.next_at[i] = now + self.every
            return
        self.sent_lines[i] += 1
        self.lines += 1
        self.next_at[i] = now + self.every

    def _run(self):
        start = time.monotonic()
        # Spread the first sends over one interval, as independent clients would.
        for i in range(self.n):
            self.next_at[i] = start + self.every * i / self.n
        while self.running:
            for key, _ in self.sel.select(timeout=0.05):
                i = key.data
                try:
                    data = key.fileobj.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._close(i, by_server=True)
                    self.next_at[i] = time.monotonic() + self.every
            now = time.monotonic()
            for i in range(self.n):
                if self.next_at[i] > now:
                    continue
                if self.socks[i] is None:
                    self._open(i, now)
                self._send(i, now)

    def stop(self):
        self.running = False
        self.thread.join(5)
        for i in range(self.n):
            self._close(i, by_server=False)
        self.sel.close()


# ---------------------------------------------------------------- slow clients

def slow_clients_trial(name, port, domain, nofile):
    ha.prepare_backend()
    d = start_node(name, port, domain, nofile=nofile)
    wait_until(lambda: d.get("/leader-check")[0], lambda s: s == 200, timeout=10,
               what=f"{name} to lead domain {domain}")
    wait_until(lambda: d.get(f"/check/{APP}/mysql/ha")[0], lambda s: s == 200, timeout=5,
               what="the ha cluster's check to answer 200")
    row = election_row(domain)
    expect(row is not None and row[0] == ha.service_id(port), f"election row of {domain}: {row}")
    soft, hard = d.nofile_limits()
    print(f"figure: {name}: started under nofile {nofile[0]}:{nofile[1]}, runs with {soft}:{hard}")

    attack = SlowClients(port, SLOW_CONNECTIONS, SLOW_LINE_EVERY_S).start()
    sampler = CheckSampler(port, [f"/check/{APP}/mysql/ha", "/leader-check"])
    rows = []
    fds = []
    t0 = time.monotonic()
    try:
        # Let the attack build up for one interval, then watch for SLOW_SAMPLE_S.
        while time.monotonic() - t0 < SLOW_LINE_EVERY_S + SLOW_SAMPLE_S:
            time.sleep(1.0)
            rows.append(election_row(domain))
            fds.append(d.open_files())
            expect(d.alive(), f"{name} is alive")
    finally:
        t_end = time.monotonic()
        sampler.stop()
        attack.stop()
    t_watch = t0 + SLOW_LINE_EVERY_S
    watched = sampler.window(t_watch, t_end)
    print(f"figure: {name}: {SLOW_CONNECTIONS} slow connections from one address for "
          f"{t_end - t0:.0f} s ({attack.opened} opened, {attack.closed_by_server} closed by the daemon, "
          f"{attack.lines} lines sent); daemon descriptors: max {max(fds)} of {soft}")
    print(f"figure: {name}: checks and /leader-check from {CHECKER_ADDR} during the attack: "
          f"{summarize(watched)}")
    expect(attack.opened >= SLOW_CONNECTIONS, f"the attack opened {attack.opened} connections")
    expect(len(watched) >= 100, f"enough samples while watched: {len(watched)}")
    bad = [s for s in watched if s[2] != 200 or s[3] > SLOW_CHECK_BOUND_S]
    expect(not bad, f"{len(bad)} of {len(watched)} answers were not a 200 within {SLOW_CHECK_BOUND_S} s, "
                    f"e.g. {bad[:5]}")
    moved = [r for r in rows if r is None or r[0] != ha.service_id(port) or r[1] > 2]
    expect(not moved, f"the election row stayed {ha.service_id(port)} and fresh: {moved[:5]}")
    expect_eq(d.get("/leader-check")[0], 200, "/leader-check after the attack")
    expect(fds and max(fds) < soft, f"descriptors stayed below the limit: {max(fds)} of {soft}")
    return d


def test_slow_clients_under_1024_descriptors():
    """The worst case: soft and hard limit 1,024, nothing to raise."""
    slow_clients_trial("slow-1024", SLOW_PORT, "hostile-slow", (1024, 1024))


def test_slow_clients_soft_1024_hard_higher():
    """The common case: soft 1,024, a higher hard limit the daemon raises to."""
    d = slow_clients_trial("slow-hard", SLOW_HARD_PORT, "hostile-slow-hard", (1024, 8192))
    expect_eq(d.nofile_limits(), (8192, 8192), "the soft open-files limit raised to the hard one")
    lines = ha.log_lines(d, r"open files")
    expect(lines and "1024" in lines[0] and "8192" in lines[0], f"the raise is logged: {lines}")


def test_refuses_to_start_without_descriptors_to_serve():
    """A limit too small to serve anything: one clear line, exit status 1."""
    cfg = node_config(SLOW_PORT, "hostile-tiny")
    d = LimitedDaemon("tiny", cfg, SLOW_PORT, (100, 100))
    d.requested = (cfg, [])
    lib._daemons["tiny"] = d
    d.start(wait=False)
    wait_until(lambda: d.proc.poll(), lambda rc: rc is not None, timeout=10, what="the daemon to exit")
    expect_eq(d.proc.returncode, 1, "exit status")
    lines = ha.log_lines(d, r"open-files limit 100 leaves")
    expect(len(lines) == 1 and "raise the limit" in lines[0], f"one clear line: {d.log_tail()}")
    lib._daemons.pop("tiny")
    d.proc = None  # its exit was the point
    d.retire()


# ---------------------------------------------------------------- connection bounds

def open_from(addr, port):
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(addr, 0))


def is_closed(s):
    """Whether the daemon closed @s: end of input or a reset waits to be read."""
    if not select_readable(s):
        return False
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def select_readable(s):
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ)
    try:
        return bool(sel.select(0))
    finally:
        sel.close()


def served(s):
    """Whether a request on the open connection @s gets an answer."""
    try:
        s.settimeout(3)
        s.sendall(b"GET /lb-check HTTP/1.1\r\nHost: x\r\n\r\n")
        return s.recv(12).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def served_fresh(addr, port):
    try:
        with open_from(addr, port) as s:
            return served(s)
    except OSError:
        return False


def test_connection_bounds_per_address_and_in_total():
    """HttpMaxConnectionsPerAddress and the connection budget are kept where
    connections are accepted: one over the per-address bound is closed at
    once, one over the budget waits in the kernel's queue until a place is
    given back; those held are served throughout."""
    ha.prepare_backend()
    cfg = node_config(SLOW_PORT, "hostile-bounds")
    cfg["HttpMaxConnectionsPerAddress"] = 4
    cfg["HttpMaxConnections"] = 16
    d = lib.daemon("bounds", cfg, SLOW_PORT)
    socks = []
    try:
        same = [open_from("127.0.0.3", SLOW_PORT) for _ in range(5)]
        socks += same
        wait_until(lambda: is_closed(same[4]), timeout=5, what="a fifth connection from one address to be closed")
        expect(not any(is_closed(s) for s in same[:4]), "the first four connections from one address are held")
        expect(served(same[0]), "a held connection is served")
        same[1].close()
        wait_until(lambda: served_fresh("127.0.0.3", SLOW_PORT), timeout=5,
                   what="a new connection from the address to be served once one of its four closed")
        # In total: 3 held from 127.0.0.3, then one per address until the
        # budget of 16 is full; the rest wait in the kernel's queue, unread,
        # until held ones close, and are then served in order.
        others = [open_from(f"127.0.1.{i}", SLOW_PORT) for i in range(1, 21)]
        socks += others
        for s in others:
            s.sendall(b"GET /lb-check HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: sum(map(select_readable, others)), lambda n: n >= 11, timeout=5,
                   what="the connections within the budget to be answered")
        # Those over the budget must stay unanswered: look again after a
        # while that is long against an answer (about a millisecond).
        time.sleep(0.5)
        answered = [select_readable(s) for s in others]
        held = answered.index(False) if False in answered else len(answered)
        print(f"figure: bounds: {held} connections served beside 3 from 127.0.0.3 under a budget of 16; "
              f"{20 - held} waiting")
        expect(answered == [True] * held + [False] * (20 - held), f"those waiting are the last ones: {answered}")
        expect(11 <= held <= 13, f"{held} served beside 3 under a budget of 16")
        expect(not any(is_closed(s) for s in others), "a connection over the budget was closed")
        for s in others[:held]:
            s.close()
        wait_until(lambda: all(map(select_readable, others[held:])), timeout=5,
                   what="the waiting connections to be answered once others closed")
        expect(all(s.recv(12).startswith(b"HTTP/1.1 200") for s in others[held:]), "the waiting ones got 200")
        expect(d.alive(), "the daemon is alive")
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------- control requests

def classify(status, headers, body):
    text = body.decode("utf-8", "replace")
    if status == 503 and "queue is full" in text and "retry-after" in headers:
        return "queue full"
    if status == 503 and "not applied" in text and "retry-after" in headers:
        return "not applied"
    if status == 500 and "outcome is unknown" in text:
        return "unknown"
    if status == 500 and "backend" in text:
        return "backend error"
    return f"unexpected {status} {headers.get('retry-after')} {text.strip()}"


def test_control_requests_against_stopped_backend():
    ha.prepare_backend()
    domain = "hostile-ctl"
    d = start_node("ctl", CONTROL_PORT, domain)
    wait_until(lambda: d.get("/leader-check")[0], lambda s: s == 200, timeout=10, what="the node to lead")
    wait_until(lambda: d.get(f"/check/{APP}/mysql/r1")[0], lambda s: s == 200, timeout=5,
               what="the r1 check to answer 200")
    # Normal answers are unchanged while the backend works.
    ha.expect_ok(d, "/throttle-app/hostile-before/ttl/30")
    expect_eq(d.head("/unthrottle-app/hostile-before")[0], 200, "HEAD /unthrottle-app")

    sampler = CheckSampler(d.port, [f"/check/{APP}/mysql/r1"])
    answers = [None] * CONTROL_REQUESTS
    names = [f"hostile-ctl-{i}" for i in range(CONTROL_REQUESTS)]

    def control(i):
        method = "HEAD" if i % 8 == 7 else "GET"
        path = f"/throttle-app/{names[i]}/ttl/30" if i % 2 == 0 else f"/skip-host/{names[i]}/ttl/30"
        t0 = time.monotonic()
        try:
            status, headers, body = lib.http(method, d.base + path, timeout=CONTROL_TIMEOUT_S + 5)
            if method == "HEAD":
                # No body: the status and Retry-After tell the kind.
                kind = {503: "not applied" if "retry-after" in headers else "503 without Retry-After",
                        500: "unknown or backend error"}.get(status, f"unexpected {status}")
            else:
                kind = classify(status, headers, body)
            answers[i] = (kind, time.monotonic() - t0, status, body[:200])
        except (OSError, httpclient.HTTPException) as e:
            answers[i] = (f"no answer: {e}", time.monotonic() - t0, None, b"")

    time.sleep(0.5)
    lib.freeze_node(ha.BACKEND_PORT)
    try:
        t_burst = time.monotonic()
        threads = [threading.Thread(target=control, args=(i,)) for i in range(CONTROL_REQUESTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(CONTROL_TIMEOUT_S + 10)
        t_done = time.monotonic()
        time.sleep(0.5)
        sampler.stop()
    finally:
        lib.thaw_node(ha.BACKEND_PORT)
    t_thaw = time.monotonic()

    kinds = {}
    for a in answers:
        kinds[a[0] if a else "thread still waiting"] = kinds.get(a[0] if a else "thread still waiting", 0) + 1
    slowest = max(a[1] for a in answers if a)
    watched = sampler.window(t_burst, t_done)
    print(f"figure: {CONTROL_REQUESTS} control requests at once against a SIGSTOPped backend: {kinds}; "
          f"all answered within {slowest:.2f} s")
    print(f"figure: checks from another client during the burst: {summarize(watched)}")
    expect(all(a is not None and not a[0].startswith(("no answer", "unexpected", "503 without"))
               for a in answers), f"every control request got an expected answer: {kinds}; "
                                  f"e.g. {[a for a in answers if a is None or a[0].startswith(('no', 'un', '503'))][:3]}")
    expect(kinds.get("queue full", 0) >= 1, f"the queue bound refused some requests: {kinds}")
    expect(slowest < CONTROL_TIMEOUT_S + 1.5, f"the slowest answer came after {slowest:.2f} s")
    expect(len(watched) >= 20, f"enough check samples during the burst: {len(watched)}")
    bad = [s for s in watched if s[3] > CONTROL_CHECK_BOUND_S or not isinstance(s[2], int)]
    expect(not bad, f"{len(bad)} of {len(watched)} checks did not answer within {CONTROL_CHECK_BOUND_S} s, "
                    f"e.g. {bad[:5]}")

    wait_until(lambda: d.get("/leader-check")[0], lambda s: s == 200, timeout=LEADER_BACK_S,
               what="leadership back after SIGCONT")
    print(f"figure: backend continued: leading again after {time.monotonic() - t_thaw:.2f} s")

    # Nothing the daemon said was not applied shows up later: commands whose
    # clients got "queue full" or "not applied" are never written.
    refused = [names[i] for i, a in enumerate(answers) if a[0] in ("queue full", "not applied")]
    expect(refused, "some commands were refused")
    ha.expect_ok(d, "/throttle-app/hostile-after/ttl/30")  # the queue works again, after the others
    wait_until(lambda: "hostile-after" in ha.throttled_apps(d), timeout=2, what="hostile-after applied")
    time.sleep(1.0)
    quoted = ",".join(f"'{n}'" for n in refused)
    written = ha.backend_sql(f"SELECT app_name FROM throttled_apps WHERE app_name IN ({quoted}) "
                             f"UNION ALL SELECT host_name FROM skipped_hosts WHERE host_name IN ({quoted})")
    expect_eq(written, [], "backend rows of refused commands")
