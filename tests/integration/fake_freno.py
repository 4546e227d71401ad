#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A slow, simple stand-in for the daemon, written from docs/semantics.md and docs/api.md, used only
to check the integration suite itself before (or beside) the real daemon:

  FRENO_BIN=tests/integration/fake_freno.py python3 tests/integration/run.py

It supports static hosts, single-node mode and --force-leadership; a MySQL
backend is never reached (the node is simply not leader). It speaks just
enough of the MySQL protocol (native password, text queries) to probe.
It is not the product and makes no attempt to be fast.
"""

import datetime
import hashlib
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# ---------------------------------------------------------------- MySQL client


class MySQLError(Exception):
    pass


class MyConn:
    CAPS = 0x1 | 0x4 | 0x200 | 0x2000 | 0x8000 | 0x80000

    def __init__(self, host, port, user, password, timeout=1.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.seq = 0
        try:
            self._handshake(user, password)
        except BaseException:
            self.close()
            raise

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise MySQLError("lost connection to server")
            buf += chunk
        return buf

    def _read(self):
        hdr = self._recv(4)
        self.seq = (hdr[3] + 1) & 0xFF
        return self._recv(int.from_bytes(hdr[:3], "little"))

    def _write(self, payload):
        self.sock.sendall(len(payload).to_bytes(3, "little") + bytes([self.seq]) + payload)
        self.seq = (self.seq + 1) & 0xFF

    @staticmethod
    def _err(p):
        code = int.from_bytes(p[1:3], "little")
        msg = p[9:] if p[3:4] == b"#" else p[3:]
        return MySQLError(f"{msg.decode(errors='replace')} [mysql {code}]")

    @staticmethod
    def _native(password, salt):
        if not password:
            return b""
        s1 = hashlib.sha1(password.encode()).digest()
        s2 = hashlib.sha1(s1).digest()
        s3 = hashlib.sha1(salt[:20] + s2).digest()
        return bytes(a ^ b for a, b in zip(s1, s3))

    def _handshake(self, user, password):
        p = self._read()
        if p[0] == 0xFF:
            raise self._err(p)
        i = p.index(b"\0", 1) + 1 + 4
        salt = p[i:i + 8]
        i += 9 + 2 + 1 + 2 + 2
        auth_len = p[i]
        i += 1 + 10
        n = max(13, auth_len - 8)
        salt += p[i:i + n - 1]
        auth = self._native(password, salt)
        payload = (self.CAPS.to_bytes(4, "little") + (1 << 24).to_bytes(4, "little") + bytes([33]) +
                   b"\0" * 23 + user.encode() + b"\0" + bytes([len(auth)]) + auth +
                   b"mysql_native_password\0")
        self._write(payload)
        r = self._read()
        if r[0] == 0xFE:  # auth switch
            j = r.index(b"\0", 1)
            new_salt = r[j + 1:].rstrip(b"\0")
            self._write(self._native(password, new_salt))
            r = self._read()
        if r[0] == 0xFF:
            raise self._err(r)

    @staticmethod
    def _lenenc(p, i):
        c = p[i]
        if c < 0xFB:
            return c, i + 1
        size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[c]
        return int.from_bytes(p[i + 1:i + 1 + size], "little"), i + 1 + size

    def query(self, q):
        """Returns (column names, rows); NULL is None, other values str."""
        self.seq = 0
        self._write(b"\x03" + q.encode())
        p = self._read()
        if p[0] == 0xFF:
            raise self._err(p)
        if p[0] == 0x00:
            return [], []
        ncols, _ = self._lenenc(p, 0)
        cols = []
        for _ in range(ncols):
            c = self._read()
            i = 0
            fields = []
            for _ in range(6):
                n, i = self._lenenc(c, i)
                fields.append(c[i:i + n])
                i += n
            cols.append(fields[4].decode())
        self._read()  # EOF
        rows = []
        while True:
            p = self._read()
            if p[0] == 0xFE and len(p) < 9:
                break
            if p[0] == 0xFF:
                raise self._err(p)
            i, row = 0, []
            for _ in range(ncols):
                if p[i] == 0xFB:
                    row.append(None)
                    i += 1
                else:
                    n, i = self._lenenc(p, i)
                    row.append(p[i:i + n].decode(errors="replace"))
                    i += n
            rows.append(row)
        return cols, rows


def to_number(s, what):
    if s is None:
        raise MySQLError(f"{what}: value is NULL")
    try:
        return float(s)
    except ValueError:
        raise MySQLError(f"{what}: value {s!r} is not a number") from None


def run_metric(conn, query):
    q = query.strip().lower()
    if q.startswith("select"):
        cols, rows = conn.query(query)
        if len(rows) != 1:
            raise MySQLError(f"metric query returned {len(rows)} rows, expected one")
        return to_number(rows[0][0], "metric query")
    if q.startswith("show global"):
        cols, rows = conn.query(query)
        if len(rows) != 1 or len(rows[0]) < 2:
            raise MySQLError(f"metric query returned {len(rows)} rows, expected one (name, value)")
        return to_number(rows[0][1], "metric query")
    if q:
        raise MySQLError(f"Unsupported metrics query type: {query}")
    cols, rows = conn.query("SHOW SLAVE STATUS")
    if not rows:
        raise MySQLError("replication not running; not a replica")
    r = dict(zip(cols, rows[0]))
    if r.get("Seconds_Behind_Master") is None:
        raise MySQLError(f"replication not running; Slave_IO_Running={r.get('Slave_IO_Running')}, "
                         f"Slave_SQL_Running={r.get('Slave_SQL_Running')}")
    return float(r["Seconds_Behind_Master"])


# ---------------------------------------------------------------- state

ZERO_TIME = "0001-01-01T00:00:00Z"
HOSTNAME = socket.gethostname()


def rfc3339(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Fake:
    def __init__(self, cfg, port, force_leader):
        self.cfg = cfg
        self.port = port
        self.lock = threading.Lock()
        self.stop = threading.Event()
        raft_dir = cfg.get("RaftDataDir")
        self.leader = force_leader or (bool(raft_dir) and not cfg.get("RaftNodes"))
        self.state_file = os.path.join(raft_dir, "state.json") if raft_dir else None
        mysql = cfg.get("Stores", {}).get("MySQL", {})
        self.ignore_dial = bool(mysql.get("IgnoreDialTcpErrors"))
        self.clusters = {}
        for name, c in mysql.get("Clusters", {}).items():
            s = {}
            for key in ("User", "Password", "MetricQuery", "CacheMillis", "ThrottleThreshold", "Port",
                        "IgnoreHostsCount", "IgnoreHostsThreshold", "HttpCheckPort", "HttpCheckPath"):
                default = {"Port": 3306, "User": "", "Password": "", "MetricQuery": "", "HttpCheckPath": ""}
                s[key] = c.get(key) or mysql.get(key) or default.get(key, 0)
            s["IgnoreHosts"] = c.get("IgnoreHosts") or mysql.get("IgnoreHosts") or []
            hosts = []
            for h in c.get("StaticHostsSettings", {}).get("Hosts", []):
                host, _, p = h.rpartition(":") if ":" in h else (h, "", "")
                hosts.append((host or h, int(p) if p else s["Port"]))
            s["hosts"] = hosts
            self.clusters[name] = s
        self.throttled = {"abusing-app": (time.time() + 10 * 365 * 86400, 1.0)}
        self.skipped = {}
        self.load_state()
        self.inventory = {}
        self.results = {}
        self.http_checks = {}
        self.aggregates = {}
        self.lowprio = {}
        self.health = {}
        self.recent = {}
        self.counters = {}
        self.refresh_inventory()

    # persistence (single-node mode)
    def load_state(self):
        if self.state_file and os.path.exists(self.state_file):
            with open(self.state_file) as f:
                st = json.load(f)
            self.throttled.update({k: tuple(v) for k, v in st["throttled"].items()})
            self.skipped.update(st["skipped"])

    def save_state(self):
        if self.state_file:
            os.makedirs(os.path.dirname(self.state_file), exist_ok=True)
            with open(self.state_file, "w") as f:
                json.dump({"throttled": self.throttled, "skipped": self.skipped}, f)

    def count(self, name, n=1):
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + n

    # inventory and probes
    def refresh_inventory(self):
        now = time.time()
        inv = {}
        for name, s in self.clusters.items():
            keep = []
            for host, port in s["hosts"]:
                if any(sub in f"{host}:{port}" for sub in s["IgnoreHosts"]):
                    continue
                exp = self.skipped.get(host)
                if exp is not None and exp > now:
                    continue
                keep.append((host, port))
            inv[name] = keep
        self.inventory = inv

    def probe_loop(self, cluster, host, port):
        s = self.clusters[cluster]
        conn = None
        while not self.stop.is_set():
            if self.leader and (host, port) in self.inventory.get(cluster, []):
                try:
                    if conn is None:
                        try:
                            conn = MyConn(host, port, s["User"], s["Password"])
                        except ConnectionRefusedError as e:
                            raise ConnectionRefusedError(f"connect {host}:{port}: {e.strerror}") from None
                    v = run_metric(conn, s["MetricQuery"])
                    res = (v, None, False)
                except ConnectionRefusedError as e:
                    res = (None, str(e), True)
                except (OSError, MySQLError, ValueError, IndexError) as e:
                    res = (None, f"probe {host}:{port}: {e or type(e).__name__}", False)
                    if conn:
                        conn.close()
                    conn = None
                self.results[(cluster, host, port)] = res
                self.count("probes.total")
                if res[1]:
                    self.count("probes.error")
            self.stop.wait(0.05)

    def http_check_loop(self, cluster, host, port):
        s = self.clusters[cluster]
        hp = s["HttpCheckPort"]
        if not hp or hp < 0:
            return
        while not self.stop.is_set():
            if self.leader:
                try:
                    c = socket.create_connection((host, hp), timeout=1)
                    c.settimeout(1)
                    c.sendall(f"GET /{s['HttpCheckPath']} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                    line = c.recv(100).split(b"\r\n", 1)[0]
                    c.close()
                    self.http_checks[(cluster, host, port)] = int(line.split()[1])
                except (OSError, ValueError, IndexError):
                    self.http_checks[(cluster, host, port)] = 0
            self.stop.wait(5)

    def aggregate(self, name):
        s = self.clusters[name]
        tokens = s["IgnoreHostsCount"]
        values = []
        for host, port in self.inventory.get(name, []):
            if self.http_checks.get((name, host, port)) == 404:
                continue
            r = self.results.get((name, host, port))
            if r is None:
                return None, "Metric not collected yet"
            v, err, dial = r
            if err:
                if self.ignore_dial and dial:
                    continue
                if tokens > 0:
                    tokens -= 1
                    continue
                return None, err
            values.append(v)
        if not values:
            return None, "No hosts found"
        values.sort()
        while tokens > 0:
            if len(values) > 1 and (s["IgnoreHostsThreshold"] <= 0 or values[-1] > s["IgnoreHostsThreshold"]):
                values.pop()
            tokens -= 1
        return values[-1], None

    def background(self):
        last_inv = last_self = last_mc = time.monotonic()
        mc = self.cfg.get("MemcacheServers") or []
        path = self.cfg.get("MemcachePath") or "freno"
        while not self.stop.is_set():
            now = time.monotonic()
            if now - last_inv >= 10:
                self.refresh_inventory()
                last_inv = now
            if self.leader:
                for name in self.clusters:
                    self.aggregates[name] = self.aggregate(name) + (time.time(),)
            if now - last_self >= 0.1:
                last_self = now
                for name in list(self.aggregates):
                    st = self.check("freno", "mysql", name, "local", {})[0]
                    self.check("freno-share-domain", "mysql", name, "local", {})
                    if st == 200:
                        self.health[f"mysql/{name}"] = time.time()
                self.expire()
            if mc and now - last_mc >= 0.1:
                last_mc = now
                self.publish(mc[0], path)
            self.stop.wait(0.025)

    def publish(self, server, path):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=0.5) as c:
                for name, (v, err, _) in list(self.aggregates.items()):
                    key = f"{path}/mysql/{name}"
                    if err:
                        c.sendall(f"delete {key} noreply\r\n".encode())
                    else:
                        val = f"{int(time.time() * 1000)}:{v:.6f}"
                        c.sendall(f"set {key} 0 1 {len(val)} noreply\r\n{val}\r\n".encode())
        except OSError:
            pass

    def expire(self):
        now = time.time()
        with self.lock:
            for k, (exp, _) in list(self.throttled.items()):
                if exp and exp <= now:
                    del self.throttled[k]

    # checks
    def app_throttled(self, app, store):
        now = time.time()
        for key in (f"{app}/{store}", app):
            e = self.throttled.get(key)
            if e and (not e[0] or e[0] > now) and random.random() < e[1]:
                return True
        return False

    def check(self, app, store_type, store, client, flags):
        metric = f"{store_type}/{store}"
        low, read_thr = flags.get("low"), flags.get("threshold")
        value, threshold = 0.0, 0.0
        if (low and self.lowprio.get(metric, 0) > time.monotonic()) or self.app_throttled(app, store):
            status, msg = 417, "App denied"
        else:
            agg = self.aggregates.get(store) if store_type == "mysql" and store in self.clusters else None
            if agg is None or not self.leader or time.time() - agg[2] > 5:
                status, msg = 404, "No such metric"
            else:
                threshold = read_thr if read_thr is not None else float(self.clusters[store]["ThrottleThreshold"])
                v, err, _ = agg
                if err:
                    status, msg = 500, err
                else:
                    value = v
                    if v > threshold:
                        status, msg = 429, "Threshold exceeded"
                        if not low and read_thr is None and app != "freno":
                            self.lowprio[metric] = time.monotonic() + 1.0
                    else:
                        status, msg = 200, ""
        names = ["check.any", f"check.{app}", f"check.any.{store_type}.{store}",
                 f"check.{app}.{store_type}.{store}"]
        for n in names:
            self.count(n + ".total")
            if status != 200:
                self.count(n + ".error")
            if status == 500:
                self.count(n + ".internal-error")
        self.recent[f"{app}/{client}"] = time.time()
        return status, {"StatusCode": status, "Value": value, "Threshold": threshold, "Message": msg}


# ---------------------------------------------------------------- HTTP


def ok():
    return 200, {"StatusCode": 200, "Message": "OK"}


def fail(msg):
    return 500, {"StatusCode": 500, "Message": msg}


def parse_ttl(s):
    if s is None:
        return None, None
    if not re.fullmatch(r"\d+", s):
        return None, f"invalid ttl {s!r}: want a non-negative number of minutes"
    return int(s), None


def parse_ratio(s):
    if s is None:
        return None, None
    try:
        r = float(s)
    except ValueError:
        return None, f"invalid ratio {s!r}: not a number"
    if not 0 <= r <= 1:
        return None, f"invalid ratio {s}: must be in [0..1]"
    return r, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake = None

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.handle_any(head=False)

    def do_HEAD(self):
        self.handle_any(head=True)

    def handle_any(self, head):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        parts = [urllib.parse.unquote(x) for x in u.path.split("/")[1:]]
        try:
            status, body = self.route(parts, q)
        except Exception as e:  # noqa: BLE001 - a fake; report and carry on
            status, body = 500, {"StatusCode": 500, "Message": f"fake error: {e}"}
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode() + b"\n")
        self.send_response(status)
        self.send_header("Content-Length", "0" if head else str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def client(self):
        xff = self.headers.get("X-Forwarded-For")
        if xff:
            return xff
        host = self.client_address[0]
        return host[7:] if host.startswith("::ffff:") else host

    def route(self, p, q):
        f = self.fake
        n = len(p)
        head = p[0] if p else ""
        if n == 1 and head in ("lb-check", "_ping", "status"):
            return ok()
        if n == 1 and head == "leader-check":
            return (200, "HTTP 200") if f.leader else (404, "HTTP 404")
        lid = f"{HOSTNAME}:{f.port}"
        if n == 2 and head in ("raft", "consensus") and p[1] == "leader":
            return (200, lid) if f.leader else (500, None)
        if n == 2 and head in ("raft", "consensus") and p[1] == "state":
            return 200, "Leader" if f.leader else "Follower"
        if n == 2 and head == "consensus" and p[1] == "status":
            return 200, {"ServiceID": lid, "Healthy": True, "IsLeader": f.leader, "Leader": lid if f.leader else "",
                         "State": "Leader" if f.leader else "Follower", "Domain": "", "ShareDomain": "",
                         "ShareDomainServices": {}, "ShareDomainServicesList": [lid],
                         "HealthyDomainServicesList": [lid]}
        if n == 1 and head == "hostname":
            return 200, HOSTNAME
        if head in ("check", "check-if-exists", "check-read", "check-read-if-exists"):
            read = head.startswith("check-read")
            if n != (5 if read else 4):
                return 404, None
            app, st, store = p[1], p[2], p[3]
            if len(app) > 128:
                return fail(f"app name too long ({len(app)} bytes, max 128)")
            flags = {"low": q.get("p", [""])[0] == "low"}
            if read:
                try:
                    flags["threshold"] = float(p[4])
                except ValueError:
                    return fail(f"invalid threshold {p[4]!r}")
            status, body = f.check(app, st, store, self.client(), flags)
            if status == 404 and head.endswith("if-exists"):
                status = 200
            return status, body
        if n == 1 and head == "aggregated-metrics":
            brief = q.get("brief", [""])[0] == "true"
            out = {}
            for name, (v, err, _) in list(f.aggregates.items()):
                out[f"mysql/{name}"] = f"error: {err}" if err else (f"{v:.3f}" if brief else f"{v:f}")
            return 200, out
        if n == 1 and head == "metrics-health":
            now = time.time()
            return 200, {k: {"LastHealthyAt": rfc3339(t), "SecondsSinceLastHealthy": int(now - t)}
                         for k, t in list(f.health.items())}
        if head == "throttle-app" and n in (2, 4, 6):
            return self.throttle(p, q)
        if head == "unthrottle-app" and n == 2:
            key = p[1] + (f"/{q['store_name'][0]}" if "store_name" in q else "")
            with f.lock:
                f.throttled.pop(key, None)
                f.save_state()
            return ok()
        if n == 1 and head == "throttled-apps":
            return 200, {k: {"ExpireAt": rfc3339(e) if e else ZERO_TIME, "Ratio": r}
                         for k, (e, r) in list(f.throttled.items())}
        if head == "skip-host" and (n == 2 or (n == 4 and p[2] == "ttl")):
            ttl, err = parse_ttl(p[3] if n == 4 else None)
            if err:
                return fail(err)
            with f.lock:
                f.skipped[p[1]] = time.time() + 60 * (ttl or 60)
                f.save_state()
            return ok()
        if head == "recover-host" and n == 2:
            with f.lock:
                f.skipped.pop(p[1], None)
                f.save_state()
            return ok()
        if n == 1 and head == "skipped-hosts":
            return 200, {h: rfc3339(t) for h, t in list(f.skipped.items())}
        if head == "recent-apps" and n in (1, 2):
            limit = int(p[1]) if n == 2 else 0
            now = time.time()
            out = {}
            for k, t in list(f.recent.items()):
                mins = int((now - t) / 60)
                if not limit or mins <= limit:
                    out[k] = {"CheckedAtEpoch": int(t), "MinutesSinceChecked": mins}
            return 200, out
        if n == 2 and head == "debug" and p[1] in ("vars", "metrics"):
            with f.lock:
                out = dict(f.counters)
            out["consensus.is_leader"] = 1 if f.leader else 0
            for name, (v, err, _) in list(f.aggregates.items()):
                if not err:
                    out[f"aggregated.mysql.{name}"] = v
            for app in list(f.throttled):
                out[f"throttled_states.{app}"] = 1
            return 200, out
        if n == 1 and head == "metrics":
            with f.lock:
                lines = [f"freno_{re.sub('[^a-zA-Z0-9_]', '_', k)} {v}" for k, v in f.counters.items()]
            return 200, ("\n".join(lines) + "\n").encode()
        if n == 1 and head == "help":
            return 200, ["/lb-check", "/_ping", "/status", "/leader-check", "/raft/leader",
                         "/check/:app/:storeType/:storeName", "/check-read/:app/:storeType/:storeName/:threshold",
                         "/throttle-app/:app", "/throttled-apps", "/skip-host/:hostName", "/skipped-hosts",
                         "/help"]
        if n == 2 and head == "config" and p[1] == "memcache" and self.command == "GET":
            return 200, {"MemcacheServers": f.cfg.get("MemcacheServers") or [],
                         "MemcachePath": f.cfg.get("MemcachePath") or "freno"}
        return 404, None

    def throttle(self, p, q):
        f = self.fake
        app = p[1] + (f"/{q['store_name'][0]}" if "store_name" in q else "")
        if len(app) > 128:
            return fail(f"app name too long ({len(app)} bytes, max 128)")
        opts = dict(zip(p[2::2], p[3::2]))
        if set(opts) - {"ttl", "ratio"} or (len(opts) == 2 and p[2] != "ttl"):
            return 404, None
        ttl, err = parse_ttl(opts.get("ttl"))
        if err:
            return fail(err)
        ratio, err = parse_ratio(opts.get("ratio"))
        if err:
            return fail(err)
        with f.lock:
            old = f.throttled.get(app)
            if ttl:
                exp = time.time() + 60 * ttl
            elif old is not None and ttl is None and ratio is not None:
                exp = old[0]  # ratio only: same expiry
            else:
                exp = 0  # never expires
            r = ratio if ratio is not None else (old[1] if old else 1.0)
            f.throttled[app] = (exp, r)
            f.save_state()
        return ok()


class DualStackServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main(argv):
    args = argv[1:]
    if "--http" not in args:
        print("usage: fake_freno.py --http --config FILE [--http-port N] [--force-leadership]")
        return 2
    cfg_path = args[args.index("--config") + 1]
    with open(cfg_path) as fh:
        cfg = json.load(fh)
    port = int(args[args.index("--http-port") + 1]) if "--http-port" in args else cfg.get("ListenPort", 8087)
    fake = Fake(cfg, port, "--force-leadership" in args)
    Handler.fake = fake
    server = DualStackServer(("::", port), Handler)
    threads = [threading.Thread(target=fake.background, daemon=True)]
    for name, s in fake.clusters.items():
        for host, hport in s["hosts"]:
            threads.append(threading.Thread(target=fake.probe_loop, args=(name, host, hport), daemon=True))
            threads.append(threading.Thread(target=fake.http_check_loop, args=(name, host, hport), daemon=True))
    for t in threads:
        t.start()

    def on_term(signum, frame):
        fake.stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print(f"fake freno listening on [::]:{port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
