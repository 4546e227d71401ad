# SPDX-License-Identifier: MIT
"""TLS on the HTTP listener, ListenAddress, named control tokens and the audit
trail (docs/config.md#tls-and-who-may-do-what, docs/api.md#audit-trail).

Certificates come from a throwaway CA made with openssl at run time. HAProxy
(real, from the topology's packages) checks /leader-check over TLS with
check-ssl; curl asks with and without a client certificate. Daemons here
listen on 18120-18124 and HAProxy on 18125; each test stops its own daemons,
since the harness's after-test probe speaks plain HTTP to 127.0.0.1."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import lib
import test_backend_ha as ha
from lib import expect, expect_eq, wait_until

TLS_PORT = 18120
ADDR_PORT = 18121
TOKEN_PORT = 18122
RAFT_PORT = 18123
BACKEND_NODE_PORT = 18124
HAPROXY_PORT = 18125


# ---------------------------------------------------------------- certificates

class Certs:
    """A CA, two server certificates (CN server1, server2; localhost and
    127.0.0.1), a client certificate it signed, and one from another CA."""

    def __init__(self):
        if shutil.which("openssl") is None:
            raise lib.Skip("openssl is not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="freno-it-certs-"))
        self.ca = self._ca("ca")
        self.other_ca = self._ca("other-ca")
        for name in ("server1", "server2"):
            self._leaf(name, "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2\n"
                                   "extendedKeyUsage=serverAuth\n")
        self._leaf("client", "ca", "extendedKeyUsage=clientAuth\n")
        self._leaf("stranger", "other-ca", "extendedKeyUsage=clientAuth\n")
        # HAProxy wants the client certificate and its key in one file.
        (self.dir / "client-combined.pem").write_text(self.path("client.pem").read_text() +
                                                     self.path("client.key").read_text())

    def path(self, name):
        return self.dir / name

    def _run(self, *args):
        out = subprocess.run(["openssl", *args], cwd=self.dir, capture_output=True, text=True, timeout=30)
        expect(out.returncode == 0, f"openssl {' '.join(args)} failed: {out.stderr}")

    def _ca(self, name):
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=test-{name}")
        return self.path(f"{name}.pem")

    def _leaf(self, name, ca, ext):
        (self.dir / f"{name}.ext").write_text(ext)
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        self._run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                  "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def tls_config(port, live_dir, client_ca=None, **extra):
    c = {
        "ListenPort": port,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "TLSCertFile": str(live_dir / "cert.pem"),
        "TLSKeyFile": str(live_dir / "key.pem"),
    }
    if client_ca:
        c["TLSClientCAFile"] = str(client_ca)
    c.update(extra)
    return c


def install(certs, live_dir, name):
    """Makes @name (server1 or server2) the certificate the daemon reads."""
    live_dir.mkdir(exist_ok=True)
    shutil.copy(certs.path(f"{name}.pem"), live_dir / "cert.pem")
    shutil.copy(certs.path(f"{name}.key"), live_dir / "key.pem")


def curl(url, *args):
    """(HTTP status or 0 when no answer, body, curl's exit code)."""
    out = subprocess.run(["curl", "-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}", *args, url],
                         capture_output=True, text=True, timeout=15)
    body, _, code = out.stdout.rpartition("\n")
    return int(code or 0), body, out.returncode


def served_cn(port, ca, host="127.0.0.1"):
    """The CN of the certificate the listener serves (verified against @ca)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, port), timeout=3) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            cert = t.getpeercert()
    return dict(x[0] for x in cert["subject"])["commonName"]


def start_tls_daemon(name, config, port, ca, client_cert=()):
    d = lib.daemon(name, config, port, wait=False)
    wait_until(lambda: d._alive_or_raise() and
               curl(f"https://127.0.0.1:{port}/lb-check", "--cacert", str(ca), *client_cert)[0],
               lambda s: s == 200, timeout=20, what=f"{name} to answer /lb-check over TLS")
    return d


def log_lines(d, pattern):
    return [line for line in d.log_path.read_text(errors="replace").splitlines() if re.search(pattern, line)]


# ---------------------------------------------------------------- HAProxy

HAPROXY_CFG = """
global
    maxconn 64
    stats socket {sock} level admin

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 1s

listen freno
    bind 127.0.0.1:{port}
    option httpchk GET /leader-check
    balance first
    default-server inter 300 fall 1 rise 1
    server tls 127.0.0.1:{freno} ssl verify required ca-file {ca} verifyhost localhost crt {crt} check check-ssl
    server nocert 127.0.0.1:{freno} ssl verify required ca-file {ca} verifyhost localhost check check-ssl backup
    server plain 127.0.0.1:{freno} check backup
"""


class HAProxy:
    def __init__(self, certs):
        if shutil.which("haproxy") is None:
            raise lib.Skip("haproxy is not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="freno-it-haproxy-tls-"))
        self.sock = self.dir / "admin.sock"
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(sock=self.sock, port=HAPROXY_PORT, freno=TLS_PORT, ca=certs.ca,
                                          crt=certs.path("client-combined.pem")))
        self.log = open(self.dir / "haproxy.log", "wb")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, start_new_session=True)

    def states(self):
        """{server: status} from the stats socket ("UP", "DOWN", ...)."""
        if self.proc.poll() is not None:
            raise lib.TestFailure(f"haproxy exited: {(self.dir / 'haproxy.log').read_text(errors='replace')}")
        if not self.sock.exists():
            return {}
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(self.sock))
            s.sendall(b"show stat\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        lines = data.decode().splitlines()
        if not lines:
            return {}
        header = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "freno" and row.get("svname") not in ("FRONTEND", "BACKEND"):
                out[row["svname"]] = row.get("status", "")
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- tests

def test_sec_tls_haproxy_check_ssl_and_client_certs():
    """HAProxy's check-ssl marks the TLS node up on /leader-check (with a
    client certificate it presents); the same check without a certificate,
    and a plain-HTTP check, mark it down. curl without a certificate, or
    with one another CA signed, gets 403; with the right one 200."""
    certs = Certs()
    live = certs.dir / "live"
    install(certs, live, "server1")
    hp = None
    try:
        client = ("--cert", str(certs.path("client.pem")), "--key", str(certs.path("client.key")))
        start_tls_daemon("tls-ca", tls_config(TLS_PORT, live, client_ca=certs.ca), TLS_PORT, certs.ca, client)
        url = f"https://127.0.0.1:{TLS_PORT}"
        status, body, _ = curl(url + "/leader-check", "--cacert", str(certs.ca), *client)
        expect_eq((status, body), (200, '"HTTP 200"\n'), "leader-check with a client certificate")
        status, body, _ = curl(url + "/lb-check", "--cacert", str(certs.ca))
        expect_eq(status, 403, "lb-check without a client certificate")
        expect("client certificate" in body, f"the 403 says why: {body!r}")
        stranger = ("--cert", str(certs.path("stranger.pem")), "--key", str(certs.path("stranger.key")))
        expect_eq(curl(url + "/lb-check", "--cacert", str(certs.ca), *stranger)[0], 403,
                  "lb-check with a certificate of another CA")
        # Several requests on one kept-alive connection: the certificate is
        # verified once per connection, every request is answered.
        ctx = ssl.create_default_context(cafile=str(certs.ca))
        ctx.load_cert_chain(str(certs.path("client.pem")), str(certs.path("client.key")))
        conn = http.client.HTTPSConnection("127.0.0.1", TLS_PORT, context=ctx, timeout=5)
        try:
            for path in ("/lb-check", "/leader-check", "/check/a/mysql/none", "/lb-check"):
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                expect(resp.status in (200, 404), f"{path} on a kept-alive connection: {resp.status}")
                expect(not resp.will_close, f"{path}: the connection stays open")
        finally:
            conn.close()
        # A client that does not trust our CA refuses the server.
        expect(curl(url + "/lb-check", *client)[2] != 0, "curl without --cacert must refuse the server")
        # Plain HTTP on the TLS port gets no HTTP answer.
        expect_eq(curl(f"http://127.0.0.1:{TLS_PORT}/lb-check")[0] in (0, 400), True,
                  "plain HTTP on the TLS port")

        hp = HAProxy(certs)
        wait_until(hp.states, lambda s: s.get("tls") == "UP" and s.get("nocert", "").startswith("DOWN")
                   and s.get("plain", "").startswith("DOWN"), timeout=15,
                   what="haproxy: tls UP, nocert and plain DOWN")
        status, _, body = lib.http("GET", f"http://127.0.0.1:{HAPROXY_PORT}/leader-check")
        expect_eq((status, body), (200, b'"HTTP 200"\n'), "leader-check through haproxy")
    finally:
        if hp is not None:
            hp.stop()
        lib.stop_daemon("tls-ca")
        certs.close()


def test_sec_tls_rotation_on_sighup():
    """SIGHUP re-reads the certificate: the listener serves the new one
    without a restart. A bad certificate on SIGHUP keeps the running one and
    logs one clear line."""
    certs = Certs()
    live = certs.dir / "live"
    install(certs, live, "server1")
    try:
        d = start_tls_daemon("tls-rot", tls_config(TLS_PORT, live), TLS_PORT, certs.ca)
        pid = d.proc.pid
        expect_eq(served_cn(TLS_PORT, certs.ca), "server1", "certificate at start")
        install(certs, live, "server2")
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: served_cn(TLS_PORT, certs.ca), lambda cn: cn == "server2", timeout=5,
                   what="the rotated certificate to be served")
        expect(log_lines(d, r"TLS certificate .* reloaded: subject CN=server2"), "the reload is logged")

        # A broken certificate file, then a key of another certificate.
        (live / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: log_lines(d, r"the running certificate stays"), timeout=5,
                   what="the refused reload to be logged")
        shutil.copy(certs.path("server1.pem"), live / "cert.pem")  # server2's key stays
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(log_lines(d, r"the running certificate stays")), lambda n: n == 2, timeout=5,
                   what="the second refused reload to be logged")
        lines = log_lines(d, r"the running certificate stays")
        expect(re.search(r"error http: SIGHUP: TLSCertFile .*cert\.pem: ", lines[0]), f"names the file: {lines[0]}")
        expect(re.search(r"TLSKeyFile .*key\.pem: the key does not belong to the certificate", lines[1]),
               f"says the key does not match: {lines[1]}")
        expect_eq(served_cn(TLS_PORT, certs.ca), "server2", "certificate after the refused reloads")
        expect_eq(curl(f"https://127.0.0.1:{TLS_PORT}/lb-check", "--cacert", str(certs.ca))[0], 200,
                  "still answering")
        expect_eq(d.proc.pid, pid, "same process")
    finally:
        lib.stop_daemon("tls-rot")
        certs.close()


def test_sec_tls_config_errors():
    """Half a TLS config, or an unreadable file, stops the start with one
    clear line."""
    certs = Certs()
    try:
        for cfg, want in (
                ({"TLSCertFile": str(certs.path("server1.pem"))},
                 "TLSCertFile and TLSKeyFile must be set together (TLSKeyFile is empty)"),
                ({"TLSCertFile": str(certs.path("missing.pem")), "TLSKeyFile": str(certs.path("server1.key"))},
                 "TLSCertFile " + str(certs.path("missing.pem")) + ": cannot read it"),
                ({"TLSCertFile": str(certs.path("server1.pem")), "TLSKeyFile": str(certs.path("server2.key"))},
                 "the key does not belong to the certificate"),
        ):
            out = run_to_exit({"ListenPort": TLS_PORT, "RaftDataDir": "@WORKDIR@", "RaftNodes": [], **cfg})
            expect_eq(out.returncode, 1, f"exit status with {cfg}")
            expect(want in out.stderr, f"expected {want!r} in:\n{out.stderr}")
    finally:
        certs.close()


def run_to_exit(config, timeout=20):
    workdir = Path(tempfile.mkdtemp(prefix="freno-it-sec-"))
    try:
        text = json.dumps(config).replace("@WORKDIR@", str(workdir / "raft"))
        (workdir / "c.json").write_text(text)
        return subprocess.run([str(lib.FRENO_BIN), "--http", "--config", str(workdir / "c.json")],
                              capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_sec_listen_address():
    """ListenAddress 127.0.0.2 binds that address only; a bad value stops
    the start with a clear error."""
    cfg = {"ListenPort": ADDR_PORT, "RaftDataDir": "@WORKDIR@/raft", "RaftNodes": [],
           "ListenAddress": "127.0.0.2"}
    d = lib.daemon("addr", cfg, ADDR_PORT, wait=False)
    try:
        wait_until(lambda: d._alive_or_raise() and lib.http("GET", f"http://127.0.0.2:{ADDR_PORT}/lb-check")[0],
                   lambda s: s == 200, timeout=20, what="the daemon on 127.0.0.2")
        try:
            lib.http("GET", f"http://127.0.0.1:{ADDR_PORT}/lb-check", timeout=2)
            raise lib.TestFailure("127.0.0.1 answered although ListenAddress is 127.0.0.2")
        except ConnectionRefusedError:
            pass
        expect(not log_lines(d, r"need no token"), "no open-control warning on a loopback address")
    finally:
        lib.stop_daemon("addr")
    out = run_to_exit({"ListenPort": ADDR_PORT, "RaftDataDir": "@WORKDIR@", "ListenAddress": "10.0.0.1:80"})
    expect_eq(out.returncode, 1, "exit status with a bad ListenAddress")
    expect('ListenAddress: "10.0.0.1:80" is not an IPv4 or IPv6 address or a host name' in out.stderr,
           out.stderr)
    out = run_to_exit({"ListenPort": ADDR_PORT, "RaftDataDir": "@WORKDIR@",
                       "ListenAddress": "no-such-host.invalid"})
    expect_eq(out.returncode, 1, "exit status with an unresolvable ListenAddress")
    expect("ListenAddress no-such-host.invalid: cannot resolve it" in out.stderr, out.stderr)


def raw_request(port, path, headers):
    """Sends a request with header values as raw bytes (http.client refuses
    some); returns the status."""
    req = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
    for k, v in headers.items():
        req += k.encode() + b": " + v + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req + b"\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_sec_named_tokens_audit_lines():
    """Each control request leaves one audit line naming the token, the
    peer and X-Forwarded-For; hostile bytes are escaped; a request with a
    wrong token is logged too. Open control on every address is warned
    about once."""
    os.environ["FRENO_IT_DEPLOY_TOKEN"] = "d3ploy-secret"
    cfg = {"ListenPort": TOKEN_PORT, "RaftDataDir": "@WORKDIR@/raft", "RaftNodes": [],
           "ControlToken": "legacy-secret",
           "ControlTokens": {"ops": "0ps-secret", "deploy": "${FRENO_IT_DEPLOY_TOKEN}"}}
    d = lib.daemon("tokens", cfg, TOKEN_PORT)
    try:
        expect_eq(d.get("/throttle-app/etl/ttl/30", {"Authorization": "Bearer 0ps-secret",
                                                     "X-Forwarded-For": "203.0.113.7"})[0], 200, "ops")
        expect_eq(d.get("/skip-host/db-9", {"X-Freno-Token": "d3ploy-secret"})[0], 200, "deploy")
        expect_eq(d.get("/recover-host/db-9", {"X-Freno-Token": "legacy-secret"})[0], 200, "legacy")
        expect_eq(d.get("/unthrottle-app/etl", {"X-Freno-Token": "0ps"})[0], 401, "a prefix")
        expect_eq(raw_request(TOKEN_PORT, "/unthrottle-app/etl",
                              {"X-Freno-Token": b"0ps-secret",
                               "X-Forwarded-For": b"1.2.3.4\x01 info audit: who=\"root\" \xff"}), 200, "hostile XFF")
        wait_until(lambda: len(log_lines(d, r" audit: ")), lambda n: n == 5, timeout=5, what="five audit lines")
        lines = log_lines(d, r" audit: ")
        expect(lines[0].endswith('info audit: who="ops" peer="127.0.0.1" forwarded="203.0.113.7" '
                                 'what="throttle-app" params={"app":"etl","ttl":"30"} status=200 message="OK"'),
               lines[0])
        expect('who="deploy"' in lines[1] and 'what="skip-host"' in lines[1] and '"hostName":"db-9"' in lines[1],
               lines[1])
        expect('who="default"' in lines[2] and 'what="recover-host"' in lines[2], lines[2])
        expect('who="-"' in lines[3] and "status=401" in lines[3], lines[3])
        expect('forwarded="1.2.3.4\\u0001 info audit: who=\\"root\\" \\u00ff"' in lines[4], lines[4])
        # No secret reaches the log.
        text = d.log_path.read_text(errors="replace")
        for secret in ("0ps-secret", "d3ploy-secret", "legacy-secret"):
            expect(secret not in text, f"secret {secret} in the log")
        # The trail at GET /audit-log, newest first, needs a token.
        expect_eq(d.get("/audit-log")[0], 401, "audit-log without a token")
        status, body = d.get_json("/audit-log?limit=10", {"X-Freno-Token": "0ps-secret"})
        expect_eq(status, 200, "audit-log")
        wait_until(lambda: d.get_json("/audit-log", {"X-Freno-Token": "0ps-secret"})[1],
                   lambda b: len(b) == 4, timeout=5, what="four entries (the 401 stays in the log only)")
        body = d.get_json("/audit-log", {"X-Freno-Token": "0ps-secret"})[1]
        expect_eq([(e["Who"], e["What"], e["Status"]) for e in body],
                  [("ops", "unthrottle-app", 200), ("default", "recover-host", 200),
                   ("deploy", "skip-host", 200), ("ops", "throttle-app", 200)], "entries, newest first")
        expect_eq(body[3]["Forwarded"], "203.0.113.7", "forwarded")
        expect_eq(body[3]["Params"], {"app": "etl", "ttl": "30"}, "params")
        expect_eq(len(log_lines(d, r"need no token")), 0, "no open-control warning with tokens")
    finally:
        lib.stop_daemon("tokens")
        os.environ.pop("FRENO_IT_DEPLOY_TOKEN", None)


def test_sec_open_control_warning():
    """No token on every address: one warning at start."""
    cfg = {"ListenPort": TOKEN_PORT, "RaftDataDir": "@WORKDIR@/raft", "RaftNodes": []}
    d = lib.daemon("open", cfg, TOKEN_PORT)
    try:
        lines = log_lines(d, r"need no token")
        expect_eq(len(lines), 1, "open-control warnings")
        expect("warn app: control requests" in lines[0] and "every address" in lines[0], lines[0])
    finally:
        lib.stop_daemon("open")


def test_sec_raft_audit_trail_bounded():
    """Raft keeps the trail in its state, the newest 1000: it survives a
    restart and /audit-log's limit is bounded."""
    cfg = {"ListenPort": RAFT_PORT, "RaftDataDir": "@WORKDIR@/raft", "RaftNodes": [],
           "ListenAddress": "127.0.0.1"}
    d = lib.daemon("raft-audit", cfg, RAFT_PORT)
    try:
        c = d.client()
        for i in range(1010):
            status, _ = c.request("GET", f"/skip-host/h{i}/ttl/5")
            expect_eq(status, 200, f"skip-host h{i}")
        c.close()
        wait_until(lambda: d.get_json("/audit-log?limit=1000")[1], lambda b: b and len(b) == 1000 and
                   b[0]["Params"]["hostName"] == "h1009", timeout=10, what="the newest 1000 entries")
        body = d.get_json("/audit-log?limit=1000")[1]
        expect_eq(body[-1]["Params"]["hostName"], "h10", "the oldest entry kept")
        expect_eq(len(d.get_json("/audit-log")[1]), 100, "default limit")
        expect_eq(d.get("/audit-log?limit=1001")[0], 400, "limit past the bound")
        d.restart()
        wait_until(lambda: d.get_json("/audit-log?limit=1000")[1], lambda b: b and len(b) == 1000 and
                   b[0]["Params"]["hostName"] == "h1009" and b[-1]["Params"]["hostName"] == "h10",
                   timeout=10, what="the trail after a restart")
    finally:
        lib.stop_daemon("raft-audit")


def test_sec_backend_audit_log_rows():
    """With the MySQL backend each control command is a row of audit_log
    (created by --init-backend) and /audit-log shows the rows; old rows are
    pruned by AuditLogMaxDays/AuditLogMaxRows; without the table the daemon
    logs once and control requests keep working."""
    ha.prepare_backend()
    now_ms = int(time.time() * 1000)
    # 150 rows of last week and 10 of a year ago, before the node starts.
    rows = ", ".join(f"({now_ms - 7 * 86400000 + i}, 'x', 'w', 'p', '-', 'skip-host', '{{}}', 200, 'OK')"
                     for i in range(150))
    old = ", ".join(f"({now_ms - 365 * 86400000 + i}, 'x', 'w', 'p', '-', 'skip-host', '{{}}', 200, 'OK')"
                    for i in range(10))
    ha.backend_sql("INSERT INTO audit_log (at_ms, service_id, who, peer, forwarded, what, params, status, "
                   f"message) VALUES {old}, {rows}")
    cfg = ha.node_config(BACKEND_NODE_PORT, "audit-dom")
    cfg.update({"ControlTokens": {"ops": "0ps-secret"}, "AuditLogMaxDays": 30, "AuditLogMaxRows": 100})
    d = lib.daemon("ha-audit", cfg, BACKEND_NODE_PORT)
    tok = {"X-Freno-Token": "0ps-secret", "X-Forwarded-For": "198.51.100.4"}
    try:
        wait_until(lambda: d.get("/leader-check")[0], lambda s: s == 200, timeout=15, what="leadership")
        wait_until(lambda: ha.backend_sql("SELECT count(*), min(at_ms) FROM audit_log")[0],
                   lambda r: int(r[0]) == 100 and int(r[1]) >= now_ms - 7 * 86400000 + 50, timeout=10,
                   what="pruning to the newest 100 rows, none older than 30 days")
        expect_eq(d.get("/throttle-app/etl/ttl/10", tok)[0], 200, "throttle-app")
        wait_until(lambda: ha.backend_sql("SELECT who, peer, forwarded, what, params, status, message, service_id "
                                          "FROM audit_log WHERE who = 'ops'"),
                   lambda r: len(r) == 1, timeout=5, what="the audit row")
        row = ha.backend_sql("SELECT who, peer, forwarded, what, params, status, message, service_id "
                             "FROM audit_log WHERE who = 'ops'")[0]
        expect_eq(list(row[:7]), ["ops", "127.0.0.1", "198.51.100.4", "throttle-app",
                                  '{"app":"etl","ttl":"10"}', "200", "OK"], "row")
        expect_eq(row[7], ha.service_id(BACKEND_NODE_PORT), "service_id")
        wait_until(lambda: d.get_json("/audit-log?limit=1", tok)[1],
                   lambda b: b and b[0]["Who"] == "ops" and b[0]["Forwarded"] == "198.51.100.4",
                   timeout=5, what="the row at /audit-log")
        # Without the table: one log line, control keeps working, the trail stays in memory.
        ha.backend_sql("DROP TABLE audit_log")
        for i in range(3):
            t0 = time.monotonic()
            expect_eq(d.get(f"/skip-host/gone-{i}/ttl/5", tok)[0], 200, "skip-host without audit_log")
            expect(time.monotonic() - t0 < 1.0, "control answer delayed by the missing table")
        wait_until(lambda: len(log_lines(d, r"table audit_log is missing")), lambda n: n == 1, timeout=5,
                   what="the missing-table line")
        wait_until(lambda: d.get_json("/audit-log?limit=1", tok)[1],
                   lambda b: b and b[0]["Params"].get("hostName") == "gone-2", timeout=5,
                   what="the trail in memory")
        time.sleep(2.5)  # further ticks and commands must not repeat the line
        expect_eq(len(log_lines(d, r"table audit_log is missing")), 1, "missing-table lines")
    finally:
        lib.stop_daemon("ha-audit")
