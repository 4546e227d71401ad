# SPDX-License-Identifier: MIT
"""Junk on the wire: the real daemon (the shared main daemon, raft single
node, real topology) gets what hostile or broken clients send — binary bytes,
HTTP/0.9, unknown methods and methods with bodies, huge and numerous headers,
absurd Content-Length, broken chunking, thousands of pipelined requests,
NULs, control characters and invalid UTF-8 in paths, numbers that overflow
or are not numbers in TTLs, ratios, thresholds and minutes.

Every case is sent over a raw socket and must end, within a deadline, in an
answer (an HTTP status line) or a close; a case whose bytes are an unfinished
request may make the server wait for more, so the client then half-closes and
the server must close at once. After every case the daemon still answers
/lb-check and a check within a second, and after every group the operator
state (/throttled-apps, /skipped-hosts) is exactly what it was: a rejected
request changes nothing and a throttle that was set stays enforced.

test_wire_open_defects holds cases whose fix lies outside the router and the
number parser; it reports them as skipped while the defect is there and
passes once it is fixed."""

import json
import random
import select
import socket
import threading
import time

import lib
from lib import expect, expect_eq, wait_until

CHECK = "/check/wire-probe/mysql/threads"  # 200 while the topology is healthy
KEEP_APP = "wire-keep"  # throttled for the whole trial: must stay so
KEEP_HOST = "wire-keep-host"  # skipped for the whole trial: must stay so
ANSWER_S = 3.0  # a complete request: answered or closed within this
CLOSE_S = 3.0  # after the client half-closes: closed within this
WAIT_S = 1.0  # an unfinished request: how long the client waits before half-closing
ALIVE_S = 1.0  # /lb-check and a check answer within this after every case

ANY = None  # any status is fine, as long as there is an answer or a close
REJECT = range(400, 600)
CONTROL_REJECT = (404, 405, 500)  # how a control request with a bad parameter is refused


# ---------------------------------------------------------------- raw exchanges

class Exchange:
    """What came back for one burst of bytes."""

    def __init__(self):
        self.statuses = []  # status codes of the complete responses, in order
        self.bodies = []
        self.closed = None  # "eof" or "reset" once the server closed
        self.half_closed = False  # the client had to half-close to get the end
        self.elapsed = 0.0
        self.raw = b""

    def __repr__(self):
        return (f"statuses={self.statuses} closed={self.closed} half_closed={self.half_closed} "
                f"after {self.elapsed:.2f}s first bytes={self.raw[:160]!r}")


def parse_responses(buf, head_requests=False):
    """Complete HTTP/1.x responses at the start of @buf: [(status, body)]."""
    out = []
    pos = 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return out
        head = buf[pos:end].split(b"\r\n")
        parts = head[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            return out
        status = int(parts[1])
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and value.strip().isdigit():
                length = int(value.strip())
        if status < 200 or head_requests:
            length = 0
        body_start = end + 4
        if len(buf) < body_start + length:
            return out
        if status >= 200:  # 100 Continue is not an answer
            out.append((status, buf[body_start:body_start + length]))
        pos = body_start + length


def exchange(port, data, responses=1, answer_s=ANSWER_S, head_requests=False):
    """Sends @data on a fresh connection and reads until @responses complete
    responses arrived or the server closed. If neither happens within
    @answer_s the client half-closes and waits CLOSE_S more for the close."""
    ex = Exchange()
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    sender_error = []

    def send():
        try:
            s.sendall(data)
        except OSError as e:  # the server may answer and close before it read everything
            sender_error.append(e)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    buf = b""
    deadline = t0 + answer_s
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                if ex.half_closed:
                    break
                sender.join(1.0)
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                ex.half_closed = True
                deadline = time.monotonic() + CLOSE_S
                continue
            r, _, _ = select.select([s], [], [], min(0.1, deadline - now))
            if not r:
                continue
            try:
                chunk = s.recv(1 << 20)
            except ConnectionResetError:
                ex.closed = "reset"
                break
            if not chunk:
                ex.closed = "eof"
                break
            buf += chunk
            if buf.count(b"HTTP/1.") >= responses and len(parse_responses(buf, head_requests)) >= responses:
                break
    finally:
        s.close()
        sender.join(2.0)
    ex.elapsed = time.monotonic() - t0
    ex.raw = buf
    parsed = parse_responses(buf, head_requests)
    ex.statuses = [st for st, _ in parsed]
    ex.bodies = [b for _, b in parsed]
    return ex


def _bytes(x):
    # Latin-1, so that "\xff" in a string is the byte 0xff, not its UTF-8.
    return x if isinstance(x, bytes) else x.encode("latin-1")


def request(method, path, headers=(), body=b"", version=b"HTTP/1.1"):
    """The bytes of one request; @method, @path and @headers may hold any byte."""
    lines = [_bytes(method) + b" " + _bytes(path) + b" " + version, b"Host: freno"]
    lines += [_bytes(h) for h in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class Case:
    """One hostile input and what is acceptable for it.

    ok: the statuses allowed in an answer (ANY: every status); a close
        without an answer is always acceptable.
    unfinished: the bytes are an unfinished request, so the server may wait
        for more; the client half-closes after WAIT_S and the server must
        then close (after an allowed answer, if any)."""

    def __init__(self, name, data, ok=REJECT, unfinished=False, message=None, head=False):
        self.name = name
        self.head = head  # a HEAD request: answers have no body
        self.data = data
        self.ok = ok
        self.unfinished = unfinished
        self.message = message  # a word the JSON error message must hold

    def __repr__(self):
        return self.name


def expect_alive(d, after):
    """The daemon lives and answers at once after @after."""
    expect(d.alive(), f"the daemon died after {after}; log tail:\n{d.log_tail()}")
    for path in ("/lb-check", CHECK):
        t0 = time.monotonic()
        try:
            status, _ = d.get(path, timeout=ALIVE_S + 1)
        except OSError as e:
            raise lib.TestFailure(f"GET {path} after {after}: {e!r}") from None
        dt = time.monotonic() - t0
        expect_eq(status, 200, f"GET {path} after {after}")
        expect(dt <= ALIVE_S, f"GET {path} after {after} took {dt:.2f}s")


def run_case(d, case):
    ex = exchange(d.port, case.data, answer_s=WAIT_S if case.unfinished else ANSWER_S, head_requests=case.head)
    what = f"case {case.name}: {ex!r}"
    answered = bool(ex.statuses)
    if case.unfinished:
        expect(answered or ex.closed, f"{what}: the server neither answered nor closed after the client half-closed")
    else:
        expect(not ex.half_closed, f"{what}: no answer and no close within {ANSWER_S}s of a complete request")
    if answered and case.ok is not ANY:
        expect(ex.statuses[0] in case.ok, f"{what}: status {ex.statuses[0]} not in {list(case.ok)[:8]}")
    if answered and case.message is not None and ex.statuses[0] == 500:
        body = lib.parse_json(ex.bodies[0])
        expect(isinstance(body, dict) and body.get("StatusCode") == 500 and case.message in body.get("Message", ""),
               f"{what}: the error body does not name {case.message!r}: {ex.bodies[0]!r}")
    expect_alive(d, f"case {case.name}")
    return ex


def state(d):
    status, apps = d.get_json("/throttled-apps")
    expect_eq(status, 200, "GET /throttled-apps")
    status, hosts = d.get_json("/skipped-hosts")
    expect_eq(status, 200, "GET /skipped-hosts")
    return apps, hosts


def expect_state(d, before, what):
    apps, hosts = state(d)
    added = sorted(set(apps) - set(before[0]))
    removed = sorted(set(before[0]) - set(apps))
    changed = sorted(k for k in set(apps) & set(before[0]) if apps[k] != before[0][k])
    expect(not (added or removed or changed),
           f"{what} changed /throttled-apps: added {added!r}, removed {removed!r}, changed {changed!r}")
    expect_eq(hosts, before[1], f"/skipped-hosts after {what}")
    status, body = d.get_json(f"/check/{KEEP_APP}/mysql/threads")
    expect_eq((status, body and body.get("Message")), (417, "App denied"), f"{KEEP_APP} still enforced after {what}")


def ready():
    d = lib.main_daemon()
    wait_until(lambda: d.get(CHECK)[0], lambda s: s == 200, timeout=10, what=f"GET {CHECK} to answer 200")
    return d


def trial(cases):
    """Runs @cases against the main daemon with a throttle and a skipped host
    in place, and checks that they changed nothing."""
    d = ready()
    expect_eq(d.get_json(f"/throttle-app/{KEEP_APP}/ttl/60/ratio/1"), (200, {"StatusCode": 200, "Message": "OK"}),
              f"throttle {KEEP_APP}")
    expect_eq(d.get_json(f"/skip-host/{KEEP_HOST}/ttl/60"), (200, {"StatusCode": 200, "Message": "OK"}),
              f"skip {KEEP_HOST}")
    try:
        before = state(d)
        results = {}
        for case in cases:
            results[case.name] = run_case(d, case)
        expect_state(d, before, f"{len(cases)} hostile cases")
        print(f"figure: {len(cases)} cases, each answered or closed, the daemon alive after each, nothing changed")
        return d, results
    finally:
        d.get(f"/unthrottle-app/{KEEP_APP}")
        d.get(f"/recover-host/{KEEP_HOST}")


# ---------------------------------------------------------------- bytes that are not HTTP

def test_wire_binary_and_other_protocols():
    rnd = random.Random(8)
    cases = [
        Case("every byte value", bytes(range(256)) * 4),
        Case("64 KiB of random bytes", bytes(rnd.getrandbits(8) for _ in range(65536))),
        Case("random bytes with line ends", b"\r\n".join(bytes(rnd.getrandbits(8) for _ in range(200))
                                                          for _ in range(50)) + b"\r\n\r\n"),
        Case("4 KiB of NULs", b"\0" * 4096, unfinished=True),
        Case("NULs then an empty line", b"\0" * 4096 + b"\r\n\r\n", unfinished=True),
        Case("a TLS ClientHello", bytes.fromhex("160301002c01000028030300") + b"\0" * 40, unfinished=True),
        Case("the HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Case("HTTP/0.9 GET", b"GET /lb-check\r\n", unfinished=True, ok=ANY),
        Case("HTTP/0.9 GET of a control path", b"GET /throttle-app/wire-h09\r\n\r\n", ok=REJECT),
        Case("HTTP/1.0 without Host", b"GET /throttle-app/wire-h10/ratio/nan HTTP/1.0\r\n\r\n",
             ok=CONTROL_REJECT, message="ratio"),
        Case("HTTP/9.9", request("GET", "/throttle-app/wire-h99", version=b"HTTP/9.9")),
        Case("no version", b"GET /throttle-app/wire-nover FOO\r\nHost: x\r\n\r\n"),
        Case("a request line of 70 KiB", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"),
        Case("a method of 70 KiB", b"A" * 70000 + b" /lb-check HTTP/1.1\r\n\r\n"),
        Case("a header line without a colon", b"GET /throttle-app/wire-nocolon HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n"),
        Case("10,000 empty lines, then a request", b"\r\n" * 10000 + request("GET", "/lb-check"), ok=(200,)),
        Case("request line only, never ended", b"GET /throttle-app/wire-unended HTTP/1.1\r\nHost: x\r\n",
             unfinished=True),
    ]
    trial(cases)


# ---------------------------------------------------------------- methods and bodies

def test_wire_methods_with_and_without_bodies():
    """Only GET (and HEAD) may act: every other method, with or without a
    body, is refused on every control path and changes nothing."""
    cases = []
    methods = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "FOO",
               "get", "G\x01T", "GET\x7f"]
    paths = [f"/throttle-app/wire-m", f"/throttle-app/wire-m/ttl/5/ratio/1", f"/unthrottle-app/{KEEP_APP}",
             f"/skip-host/wire-m-host/ttl/5", f"/recover-host/{KEEP_HOST}", CHECK]
    bodies = [("no body", [], b""),
              ("a body", ["Content-Length: 11", "Content-Type: application/json"], b'{"ttl": 60}'),
              ("a chunked body", ["Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\r\n\r\n")]
    for m in methods:
        for p in paths:
            for label, headers, body in bodies:
                cases.append(Case(f"{m!r} {p} with {label}", request(m, p, headers, body), ok=REJECT))
    # A body that never comes, and HEAD that must not act either.
    cases.append(Case("POST announcing 1 MB that never comes",
                      request("POST", "/throttle-app/wire-m", ["Content-Length: 1000000"]), unfinished=True))
    cases.append(Case("POST with Expect: 100-continue and no body",
                      request("POST", "/throttle-app/wire-m", ["Expect: 100-continue", "Content-Length: 10"]),
                      unfinished=True))
    cases.append(Case("HEAD of a control path with a bad ratio",
                      request("HEAD", "/throttle-app/wire-m/ratio/nan"), ok=CONTROL_REJECT, head=True))
    trial(cases)


# ---------------------------------------------------------------- headers and lengths

def test_wire_headers_and_content_length():
    big = "X-Big: " + "b" * 100000
    many = [f"X-H{i}: v" for i in range(5000)]
    t = "/throttle-app/wire-hdr/ratio/7"  # a bad ratio: refused whatever the headers
    cases = [
        Case("a 100 KB header", request("GET", t, [big])),
        Case("5,000 headers", request("GET", t, many)),
        Case("a 30 KB header", request("GET", t, ["X-A: " + "a" * 30000]), message="ratio"),
        Case("a 100 KB X-Forwarded-For", request("GET", CHECK, ["X-Forwarded-For: " + "1" * 100000])),
        Case("X-Forwarded-For of control bytes", request("GET", CHECK, [b"X-Forwarded-For: \x01\x7f\xff\xfe\"\\"]),
             ok=(200,)),
        Case("a NUL in a header value", request("GET", t, [b"X-A: a\0b"]), message="ratio"),
        Case("a folded header", request("GET", t, ["X-A: a", " folded"]), ok=ANY),
        Case("a space in a header name", request("GET", t, ["X A: b"]), ok=ANY),
        Case("a header of 200 colons", request("GET", t, [":" * 200]), ok=ANY),
        Case("Content-Length: -1", request("GET", t, ["Content-Length: -1"])),
        Case("Content-Length: 2^64", request("POST", t, ["Content-Length: 18446744073709551616"])),
        Case("Content-Length: 2^64-1", request("POST", t, ["Content-Length: 18446744073709551615"]), ok=(413,)),
        Case("Content-Length: 65,537", request("POST", t, ["Content-Length: 65537"]), ok=(413,)),
        Case("Content-Length: 10^30", request("GET", t, ["Content-Length: " + "9" * 30])),
        Case("Content-Length: +3", request("GET", t, ["Content-Length: +3"], b"abc")),
        Case("Content-Length: 0x3", request("GET", t, ["Content-Length: 0x3"], b"abc")),
        Case("Content-Length: 3, 3", request("GET", t, ["Content-Length: 3, 3"], b"abc")),
        Case("Content-Length: (empty)", request("GET", t, ["Content-Length:"])),
        Case("Content-Length: 1e3", request("GET", t, ["Content-Length: 1e3"])),
        Case("two equal Content-Lengths", request("GET", t, ["Content-Length: 3", "Content-Length: 3"], b"abc")),
        Case("two different Content-Lengths", request("GET", t, ["Content-Length: 1", "Content-Length: 2"], b"ab"),
             ok=(400,)),
        Case("Content-Length larger than what is sent", request("GET", t, ["Content-Length: 100"], b"abc"),
             unfinished=True),
        Case("Content-Length and chunked", request("POST", t, ["Content-Length: 3", "Transfer-Encoding: chunked"],
                                                   b"0\r\n\r\n")),
    ]
    trial(cases)


# ---------------------------------------------------------------- chunked encoding

def test_wire_broken_chunked_encoding():
    t = "/throttle-app/wire-chunk"
    te = ["Transfer-Encoding: chunked"]
    cases = [
        Case("a chunk size that is not hex", request("GET", t, te, b"zz\r\nabc\r\n0\r\n\r\n")),
        Case("a negative chunk size", request("GET", t, te, b"-5\r\nabc\r\n")),
        Case("a chunk size of 2^72", request("GET", t, te, b"ffffffffffffffffff\r\nabc\r\n")),
        Case("a chunk size of 2^64-1", request("GET", t, te, b"ffffffffffffffff\r\nabc\r\n"), unfinished=True),
        Case("a chunk size with 0x", request("GET", t, te, b"0x3\r\nabc\r\n0\r\n\r\n")),
        Case("a chunk size after spaces", request("GET", t, te, b"  3\r\nabc\r\n0\r\n\r\n")),
        Case("a chunk longer than its size", request("GET", t, te, b"3\r\nabcdef\r\n0\r\n\r\n")),
        Case("a chunk cut short", request("GET", t, te, b"5\r\nab"), unfinished=True),
        Case("no last chunk", request("GET", t, te, b"3\r\nabc\r\n"), unfinished=True),
        Case("a 100 KB trailer", request("GET", t, te, b"0\r\nX-T: " + b"t" * 100000 + b"\r\n\r\n")),
        Case("a 100 KB chunk extension", request("GET", t + "/ratio/nan", te,
                                                 b"3;" + b"e" * 100000 + b"\r\nabc\r\n0\r\n\r\n")),
        Case("100,000 empty-extension chunks", request("POST", t, te, b"1;x\r\na\r\n" * 100000 + b"0\r\n\r\n")),
        Case("Transfer-Encoding: gzip", request("POST", t, ["Transfer-Encoding: gzip"]), ok=(501,)),
        Case("Transfer-Encoding: chunked, chunked", request("POST", t, ["Transfer-Encoding: chunked, chunked"],
                                                            b"0\r\n\r\n"), ok=(501,)),
        Case("Transfer-Encoding: xchunked", request("POST", t, ["Transfer-Encoding: xchunked"], b"0\r\n\r\n"),
             ok=(501,)),
        Case("Transfer-Encoding twice", request("POST", t, ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
                                                b"0\r\n\r\n"), ok=(400,)),
    ]
    trial(cases)


# ---------------------------------------------------------------- pipelining

def pipelined(d, paths, what):
    """Sends one request per path on one connection in one burst; returns
    the statuses, which must all come back."""
    data = b"".join(request("GET", p) for p in paths)
    t0 = time.monotonic()
    ex = exchange(d.port, data, responses=len(paths), answer_s=60)
    dt = time.monotonic() - t0
    expect_eq(len(ex.statuses), len(paths), f"{what}: answers ({ex.closed=}, {ex.half_closed=})")
    print(f"figure: {len(paths)} pipelined requests ({what}) answered in {dt:.2f} s")
    return ex.statuses


def test_wire_thousands_of_pipelined_requests():
    d = ready()
    expect_eq(d.get_json(f"/throttle-app/{KEEP_APP}/ttl/60/ratio/1")[0], 200, f"throttle {KEEP_APP}")
    expect_eq(d.get_json(f"/skip-host/{KEEP_HOST}/ttl/60")[0], 200, f"skip {KEEP_HOST}")
    try:
        before = state(d)
        statuses = pipelined(d, [CHECK] * 10000, "checks")
        expect_eq(set(statuses), {200}, "statuses of 10,000 pipelined checks")
        statuses = pipelined(d, [f"/check/{KEEP_APP}/mysql/threads"] * 2000, "checks of a throttled app")
        expect_eq(set(statuses), {417}, "statuses of 2,000 pipelined checks of a throttled app")
        bad = [f"/throttle-app/wire-pipe-{i}/ratio/{r}" for i, r in
               enumerate(["nan", "7", "-1", "0x1p-1", "1e309", "inf"] * 500)]
        statuses = pipelined(d, bad, "throttles with bad ratios")
        expect_eq(set(statuses), {500}, "statuses of 3,000 pipelined throttles with bad ratios")
        expect_state(d, before, "the pipelined requests")
        # A malformed request in the middle of a pipeline: the ones before it
        # are answered, nothing after it is acted on, and the connection ends.
        data = (request("GET", CHECK) * 500 + b"GARBAGE\0\r\n\r\n" +
                request("GET", "/throttle-app/wire-after-garbage") * 10)
        ex = exchange(d.port, data, responses=511)
        expect(len(ex.statuses) >= 500 and set(ex.statuses[:500]) == {200},
               f"the 500 checks before the garbage: {ex!r}")
        expect(ex.closed is not None and 200 not in ex.statuses[500:],
               f"after the garbage: statuses {ex.statuses[500:]}, closed {ex.closed}")
        expect_alive(d, "a pipeline with garbage in the middle")
        expect_state(d, before, "a pipeline with garbage in the middle")
    finally:
        d.get(f"/unthrottle-app/{KEEP_APP}")
        d.get(f"/recover-host/{KEEP_HOST}")


# ---------------------------------------------------------------- paths

def test_wire_hostile_paths():
    """NULs, control characters and invalid UTF-8 (raw and percent-encoded),
    encoded slashes and dots, and over-long paths and names."""
    t = "/throttle-app/"
    cases = [
        Case("a raw CR in a control path", request("GET", t + "wire\rcr")),
        Case("a raw tab in a control path", request("GET", t + "wire\ttab"), ok=(404,)),
        Case("a raw space in a control path", request("GET", t + "wire space/ratio/nan"), ok=(400, 404, 500)),
        Case("%0D%0A in an app name", request("GET", t + "wire%0d%0a2026-01-01T00:00:00Z%20error%20fake"),
             ok=(404,)),
        Case("%1B in an app name", request("GET", t + "wire%1b[31mred"), ok=(404,)),
        Case("%7F in an app name", request("GET", t + "wire%7f"), ok=(404,)),
        Case("%C2%85 (NEL) in an app name", request("GET", t + "wire%c2%85"), ok=(404,)),
        Case("%0A in a skipped host", request("GET", "/skip-host/wire%0afake/ttl/5"), ok=(404,)),
        Case("%0A in a recovered host", request("GET", f"/recover-host/{KEEP_HOST}%0a"), ok=(404,)),
        Case("%09 in an unthrottled app", request("GET", f"/unthrottle-app/{KEEP_APP}%09"), ok=(404,)),
        Case("raw bytes that are not UTF-8", request("GET", t + "wire\xff\xfe"), ok=(404,)),
        Case("percent-encoded bytes that are not UTF-8", request("GET", t + "wire%ff%fe"), ok=(404,)),
        Case("an overlong UTF-8 slash", request("GET", t + "wire%c0%af"), ok=(404,)),
        Case("a UTF-8 surrogate", request("GET", t + "wire%ed%a0%80"), ok=(404,)),
        Case("UTF-8 cut short", request("GET", t + "wire%e2%82"), ok=(404,)),
        Case("not UTF-8 in a check", request("GET", "/check/wire%ff/mysql/threads"), ok=(404,)),
        Case("a control character in a check", request("GET", "/check/wire%01/mysql/threads"), ok=(404,)),
        Case("%2F in an app name", request("GET", t + "wire%2Fslash"), ok=(404,)),
        Case("%2F making a path of too many segments", request("GET", t + "wire%2Fttl%2F5%2Fratio%2F1%2Fx"),
             ok=(404,)),
        Case("%2e%2e segments", request("GET", "/check/%2e%2e/%2e%2e/throttle-app/wire-dots"), ok=(404,)),
        Case("../ segments", request("GET", "/check/../throttle-app/wire-dots"), ok=(404,)),
        Case("a double slash", request("GET", "//throttle-app/wire-dslash"), ok=(404,)),
        Case("an empty app name", request("GET", "/throttle-app//ttl/5"), ok=(404,)),
        Case("an absolute URI", request("GET", "http://freno/throttle-app/wire-abs"), ok=(400, 404)),
        Case("an asterisk", request("OPTIONS", "*"), ok=REJECT),
        Case("no path", request("GET", ""), ok=REJECT),
        Case("the longest path, fully percent-encoded, with 64 query arguments and 6 KiB of other headers",
             request("GET", "/check/" + "%41" * 4075 + "/mysql/threads?" + "&".join(f"a{i}=b" for i in range(64)),
                     [f"X-Pad-{i}: " + "p" * 1000 for i in range(6)]), ok=(200, 417, 429)),
        Case("a path of 4,097 bytes", request("GET", "/check/" + "a" * 4083 + "/mysql/threads"), ok=(414, 431)),
        Case("a path of 30,000 bytes", request("GET", t + "a" * 30000), ok=(414, 431)),
        Case("a path of 4,000 slashes", request("GET", "/" * 4000), ok=(404,)),
        Case("an app name of 129 bytes", request("GET", t + "a" * 129), ok=(500,), message="128 bytes"),
        Case("an app name of 4,000 bytes", request("GET", t + "a" * 4000), ok=(500,), message="128 bytes"),
        Case("a host name of 4,000 bytes", request("GET", "/skip-host/" + "h" * 4000), ok=(500,)),
        Case("a store name of 4,000 bytes", request("GET", t + "wire-store?store_name=" + "s" * 4000), ok=(500,),
             message="128 bytes"),
        Case("a query of broken escapes", request("GET", t + "wire-q/ratio/nan?%zz=%%&&=&a&store_name=%"),
             ok=(400,)),
        Case("300 query arguments", request("GET", t + "wire-q/ratio/nan?" + "&".join(f"a{i}=b" for i in range(300))),
             ok=(500, 414, 431)),
        Case("an unknown path of 4,000 bytes of junk", request("GET", "/" + "%ff" * 1300), ok=(404, 414)),
    ]
    trial(cases)


# ---------------------------------------------------------------- numbers

NOT_NUMBERS = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e309", "-1e309", "1e99999", "0x10", "0X1p-1",
               "0x1p-1", "1e-400", "4e-320", "1,5", "1_0", "abc", "1.2.3", "--1", "+-1", "1e", ".", "-",
               "%20" + "1", "1%20", "%ef%bc%91", "5%e2%80%8b"]


def test_wire_bad_numbers_in_control_requests():
    """TTLs and ratios that are not numbers, overflow, or are out of range:
    500 with a message naming the parameter, and nothing changes — neither
    for a new app nor for one already throttled."""
    cases = []
    ttls = NOT_NUMBERS + ["1.5", "-1", "-5", "9223372036854775807", "9223372036854775808",
                          "-9223372036854775809", "99999999999999999999", "153722867280912930"]
    ratios = NOT_NUMBERS + ["-0.0000001", "1.0000000001", "2", "7", "-1", "1e308", "-1e308"]
    for app in ("wire-new", KEEP_APP):
        for ttl in ttls:
            cases.append(Case(f"{app} ttl {ttl}", request("GET", f"/throttle-app/{app}/ttl/{ttl}"),
                              ok=(500,), message="ttl"))
            cases.append(Case(f"{app} ttl {ttl} ratio 0.5", request("GET", f"/throttle-app/{app}/ttl/{ttl}/ratio/0.5"),
                              ok=(500,), message="ttl"))
        for ratio in ratios:
            cases.append(Case(f"{app} ratio {ratio}", request("GET", f"/throttle-app/{app}/ratio/{ratio}"),
                              ok=(500,), message="ratio"))
            cases.append(Case(f"{app} ttl 5 ratio {ratio}", request("GET", f"/throttle-app/{app}/ttl/5/ratio/{ratio}"),
                              ok=(500,), message="ratio"))
    for host in ("wire-new-host", KEEP_HOST):
        for ttl in ttls:
            cases.append(Case(f"skip {host} ttl {ttl}", request("GET", f"/skip-host/{host}/ttl/{ttl}"),
                              ok=(500,), message="ttl"))
    trial(cases)


def test_wire_negative_zero_is_zero():
    """-0 is 0: a ratio of -0 is a ratio of 0 and a TTL of -0 is no expiry,
    as 0 is; neither is stored with a sign."""
    d = ready()
    try:
        expect_eq(d.get_json("/throttle-app/wire-zero/ttl/-0/ratio/-0"), (200, {"StatusCode": 200, "Message": "OK"}),
                  "throttle with ttl -0 and ratio -0")
        e = d.get_json("/throttled-apps")[1].get("wire-zero")
        expect_eq(e, {"ExpireAt": "0001-01-01T00:00:00Z", "Ratio": 0}, "wire-zero in /throttled-apps")
        expect_eq(d.get("/check/wire-zero/mysql/threads")[0], 200, "a check of an app throttled with ratio 0")
    finally:
        d.get("/unthrottle-app/wire-zero")


def test_wire_bad_thresholds_and_minutes():
    """/check-read thresholds that are not finite decimal numbers are a 500
    naming the threshold; /recent-apps minutes that are not an integer are a
    500; any integer answers a JSON object."""
    cases = []
    for thr in NOT_NUMBERS:
        for route in ("check-read", "check-read-if-exists"):
            cases.append(Case(f"{route} threshold {thr}", request("GET", f"/{route}/wire-thr/mysql/threads/{thr}"),
                              ok=(500,), message="threshold"))
    for mins in NOT_NUMBERS + ["1.5", "99999999999999999999", "-99999999999999999999"]:
        cases.append(Case(f"recent-apps minutes {mins}", request("GET", f"/recent-apps/{mins}"), ok=(500,),
                          message="minutes"))
    d, results = trial(cases)
    # Thresholds that are numbers, if odd ones, answer a check.
    for thr, status in (("1e308", 200), ("-1", 200), ("-0", 200), ("0.000001", 429), ("+1000", 200)):
        got, body = d.get_json(f"/check-read/wire-thr/mysql/threads/{thr}")
        expect_eq(got, status, f"check-read with threshold {thr} ({body})")
    for mins in ("0", "-1", "9223372036854775807", "-9223372036854775808", "+5", "007"):
        status, body = d.get_json(f"/recent-apps/{mins}")
        expect_eq(status, 200, f"/recent-apps/{mins}")
        expect(isinstance(body, dict), f"/recent-apps/{mins} is not a JSON object: {body!r}")
    for path in ("/recent-apps", "/debug/vars", "/throttled-apps", "/skipped-hosts"):
        status, body = d.get_json(path)
        expect(status == 200 and isinstance(body, dict), f"{path} after the trial: {status} {body!r}"[:300])


# ---------------------------------------------------------------- open defects

def test_wire_names_cut_short_or_framed_twice():
    """Inputs the HTTP library would decode or frame in a way that acts on
    another name than the one sent: a NUL (%00 or raw), malformed escapes, a
    control character in store_name, a TTL past 9999-12-31, two
    Content-Lengths, thousands of query arguments. Each is refused and
    nothing changes; a wrong outcome is undone and reported as a failure."""
    d = ready()
    expect_eq(d.get_json(f"/throttle-app/{KEEP_APP}/ttl/60/ratio/1")[0], 200, f"throttle {KEEP_APP}")
    expect_eq(d.get_json(f"/skip-host/{KEEP_HOST}/ttl/60")[0], 200, f"skip {KEEP_HOST}")
    open_defects = []
    try:
        # 1. A NUL (%00, or a raw one) cuts the name short, so the
        #    request acts on another name.
        before = state(d)
        for path, victim in ((f"/throttle-app/wire-nul%00junk", "wire-nul"),
                             (f"/throttle-app/wire-nul?store_name=threads%00junk", "wire-nul/threads"),
                             (f"/throttle-app/wire-nul/ttl/5%00junk", "wire-nul")):
            ex = exchange(d.port, request("GET", path))
            expect(ex.statuses or ex.closed, f"{path}: {ex!r}")
            apps = state(d)[0]
            if victim in apps:
                d.get(f"/unthrottle-app/{victim.split('/')[0]}" + (f"?store_name={victim.split('/')[1]}"
                                                                    if "/" in victim else ""))
                open_defects.append(f"GET {path} answered {ex.statuses[:1]} and throttled {victim!r}")
            else:
                expect(not ex.statuses or ex.statuses[0] in REJECT, f"{path}: {ex!r}")
        ex = exchange(d.port, request("GET", "/throttle-app/wire-nul\0junk"))
        if "wire-nul" in state(d)[0]:
            d.get("/unthrottle-app/wire-nul")
            open_defects.append(f"GET /throttle-app/wire-nul<NUL byte>junk answered {ex.statuses[:1]} "
                                f"and throttled 'wire-nul'")
        else:
            expect(not ex.statuses or ex.statuses[0] in REJECT, f"a raw NUL: {ex!r}")
        ex = exchange(d.port, request("GET", f"/recover-host/{KEEP_HOST}%00junk"))
        if KEEP_HOST not in state(d)[1]:
            d.get(f"/skip-host/{KEEP_HOST}/ttl/60")
            before = state(d)
            open_defects.append(f"GET /recover-host/{KEEP_HOST}%00junk answered {ex.statuses[:1]} "
                                f"and recovered {KEEP_HOST!r}")
        # 2. A malformed percent-escape is kept as it is and names an app.
        for path, victim in (("/throttle-app/wire-esc%zz", "wire-esc%zz"), ("/throttle-app/wire-esc%", "wire-esc%")):
            ex = exchange(d.port, request("GET", path))
            if victim in state(d)[0]:
                d.get(f"/unthrottle-app/{victim.replace('%', '%25')}")
                open_defects.append(f"GET {path} answered {ex.statuses[:1]} and throttled {victim!r}")
            else:
                expect(ex.statuses and ex.statuses[0] == 400 or ex.closed, f"{path}: {ex!r}")
        # 3a. The store_name query value is not held to the path's rule: a
        #     control character in it is stored in the throttle's name.
        ex = exchange(d.port, request("GET", "/throttle-app/wire-sn?store_name=a%0Ab"))
        if "wire-sn/a\nb" in state(d)[0]:
            d.get("/unthrottle-app/wire-sn?store_name=a%0Ab")
            open_defects.append(f"GET /throttle-app/wire-sn?store_name=a%0Ab answered {ex.statuses[:1]} "
                                f"and throttled 'wire-sn/a\\nb'")
        else:
            expect(not ex.statuses or ex.statuses[0] in REJECT, f"store_name with a control character: {ex!r}")
        # 3. A TTL whose expiry lies past 9999-12-31 (the backend's DATETIME
        #    and RFC 3339's four-digit year) is accepted.
        for path, name, listing in (("/throttle-app/wire-far/ttl/99999999999", "wire-far", 0),
                                    ("/skip-host/wire-far-host/ttl/99999999999", "wire-far-host", 1)):
            status, body = d.get_json(path)
            if status == 200:
                shown = state(d)[listing].get(name)
                d.get(f"/unthrottle-app/{name}" if listing == 0 else f"/recover-host/{name}")
                open_defects.append(f"GET {path} answered 200; listed as {shown!r}")
            else:
                expect_eq(status, 500, f"{path} ({body})")
                expect("ttl" in body.get("Message", ""), f"{path}: {body}")
        # 4. Two different Content-Lengths: the first one wins, so the rest
        #    of the body is read as a request (behind a proxy that takes the
        #    last one, a request the proxy never saw).
        smuggled = request("GET", "/throttle-app/wire-smuggled")
        ex = exchange(d.port, request("GET", "/lb-check", ["Content-Length: 0", f"Content-Length: {len(smuggled)}"],
                                      smuggled), responses=2)
        if "wire-smuggled" in state(d)[0]:
            d.get("/unthrottle-app/wire-smuggled")
            open_defects.append(f"two different Content-Lengths answered {ex.statuses}; the body ran as a request "
                                f"and throttled 'wire-smuggled'")
        else:
            expect(ex.statuses[:1] == [400] or (not ex.statuses and ex.closed), f"two Content-Lengths: {ex!r}")
        # 5. Too many query arguments for the connection's memory: no
        #    answer, and the connection stays open (up to the idle timeout,
        #    often even after the client half-closes).
        for n in (500, 3000):
            ex = exchange(d.port, request("GET", "/lb-check?" + "&".join(f"a{i}=b" for i in range(n))))
            if not ex.statuses and ex.half_closed:
                open_defects.append(f"GET /lb-check with {n} query arguments: no answer and no close within "
                                    f"{ANSWER_S:.0f} s; after the client's half-close: {ex.closed or 'still open'}")
            else:
                expect(ex.statuses[:1] in ([414], [431], [400]) or (not ex.statuses and ex.closed and
                                                                    not ex.half_closed),
                       f"GET /lb-check with {n} query arguments: {ex!r}")
        expect_alive(d, "requests with too many query arguments")
        expect_state(d, before, "the open-defect cases, once undone")
    finally:
        d.get(f"/unthrottle-app/{KEEP_APP}")
        d.get(f"/recover-host/{KEEP_HOST}")
    expect(not open_defects, "defects:\n    " + "\n    ".join(open_defects))
