# SPDX-License-Identifier: MIT
"""Hostile names and floods of names against the real daemon and topology.

* Names that break the Prometheus text format or JSON (quotes, backslashes,
  line feeds, -/_/. twins, multibyte and invalid UTF-8, names as long as the
  router takes) used as apps, stores, throttles and clients: `promtool check
  metrics` stays silent and /debug/vars and /recent-apps stay valid JSON.
* Checks of stores that do not exist get no counters.
* 100,000 distinct app names from random X-Forwarded-For addresses: memory,
  rendering sizes and answer times stay bounded, and an app that checks after
  the flood is counted and listed.

Each test starts its own daemon on lib.ALT_PORT."""

import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import time
import urllib.parse

import lib
from lib import R1, R2, expect, expect_eq, wait_until

# Cluster names chosen to break naive renderings; the config is JSON, so any
# Unicode string is a valid name.
# The long one (191 bytes, the longest store name a check record carries:
# EVENT_STORE_MAX) made the old /metrics read past its 700-byte line buffer.
HOSTILE_STORES = ['q"uote\\store', "a-b", "a_b", "a.b", "café-日本", "new\nline", "long-" + "ş" * 93]
PLAIN_STORE = "main"

MIB = 1024 * 1024


def hostile_config(port, **extra):
    stores = {name: lib.cluster([R1, R2]) for name in HOSTILE_STORES + [PLAIN_STORE]}
    cfg = {
        "ListenPort": port,
        "RaftDataDir": "@WORKDIR@/raft",
        "RaftNodes": [],
        "Stores": {"MySQL": {"User": "freno", "Password": "freno", "ThrottleThreshold": 1.0,
                             "Clusters": stores}},
    }
    cfg.update(extra)
    return cfg


def start(name, **extra):
    d = lib.daemon(name, hostile_config(lib.ALT_PORT, **extra), lib.ALT_PORT)
    wait_until(lambda: d.get_json(f"/check/warmup/mysql/{PLAIN_STORE}")[0], lambda s: s == 200,
               timeout=15, what=f"mysql/{PLAIN_STORE} to answer 200")
    return d


def seg(name):
    """@name (str or bytes) as one percent-encoded path segment."""
    raw = name.encode() if isinstance(name, str) else name
    return urllib.parse.quote(raw, safe="-_.~")


def routable(name):
    """Whether the router takes @name in a path: valid UTF-8 without control
    characters (U+0000-U+001F, U+007F-U+009F); other paths match no route."""
    raw = name.encode() if isinstance(name, str) else name
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text)


def printable(name):
    """What the daemon shows for a client name: invalid UTF-8 bytes and
    control characters become '?' (see core/text.h)."""
    raw = name.encode() if isinstance(name, str) else name
    out, i = [], 0
    while i < len(raw):
        for n in (4, 3, 2, 1):
            try:
                ch = raw[i:i + n].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(ch) == 1:
                break
        else:
            out.append("?")
            i += 1
            continue
        out.append("?" if ord(ch) < 0x20 or 0x7f <= ord(ch) < 0xa0 else ch)
        i += n
    return "".join(out)


def promtool_check(body):
    """Runs `promtool check metrics` on @body; fails the test unless it exits
    0 and prints nothing."""
    expect(shutil.which("promtool") is not None, "promtool not installed (package prometheus)")
    out = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=60)
    report = (out.stdout + out.stderr).decode("utf-8", "replace")
    expect(out.returncode == 0 and report == "",
           f"promtool check metrics exited {out.returncode}: {report[:2000]!r}")


def strict_json(body, what):
    try:
        v = json.loads(body.decode("utf-8", "strict"))
    except (UnicodeDecodeError, ValueError) as e:
        raise lib.TestFailure(f"{what} is not valid UTF-8 JSON ({e}); body starts {body[:300]!r}")
    expect(isinstance(v, dict), f"{what} is not an object")
    return v


_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")


def parse_labels(s):
    """Label text of the exposition format -> dict, undoing the escapes."""
    labels, i = {}, 0
    while i < len(s):
        eq = s.index("=", i)
        name = s[i:eq]
        expect(s[eq + 1] == '"', f"label {name} value is not quoted: {s!r}")
        j, val = eq + 2, []
        while s[j] != '"':
            if s[j] == "\\":
                val.append({"\\": "\\", '"': '"', "n": "\n"}[s[j + 1]])
                j += 2
            else:
                val.append(s[j])
                j += 1
        labels[name] = "".join(val)
        i = j + 1
        if i < len(s):
            expect(s[i] == ",", f"labels not separated by commas: {s!r}")
            i += 1
    return labels


def samples(text):
    """[(family, labels dict, value string)] of every sample line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        expect(m is not None, f"/metrics line does not parse: {line!r}")
        out.append((m.group(1), parse_labels(m.group(2) or ""), m.group(3)))
    return out


def label_values(smp, family, label):
    return {lab.get(label) for fam, lab, _ in smp if fam == family}


# ---------------------------------------------------------------- hostile names

def hostile_apps():
    longest_store = max(len(n.encode()) for n in HOSTILE_STORES + [PLAIN_STORE])
    long_ascii = "L" * (lib_route_max() - len("/check//mysql/") - longest_store)
    return [
        'q"uote', "back\\slash", 'both\\"mixed\\', "a-b", "a_b", "a.b", "a:b", "a b",
        "new\nline", "tab\there", "café", "日本語", "emoji-😀", "ß" * 100,
        b"bad\xff\xfe", b"cut\xc3", b"\xed\xa0\x80surrogate", b"nul\x00after",
        "é" * 150,  # 300 bytes: cut inside a character where the daemon stops counting
        long_ascii,
        "x" * 300,  # the length that read past the old stack buffer
    ]


def lib_route_max():
    return 4096  # ROUTE_PATH_MAX in src/http/router.h: the longest path the router takes


def test_hostile_names_keep_metrics_and_json_valid():
    d = start("hostile")
    apps = hostile_apps()
    stores = HOSTILE_STORES + [PLAIN_STORE]
    clients = ['x"y\\z', "é", "10.1.1.1"]
    c = d.client()
    for i, app in enumerate(apps):
        for store in stores:
            status, _ = c.request("GET", f"/check/{seg(app)}/mysql/{seg(store)}",
                                  headers={"X-Forwarded-For": clients[i % len(clients)]})
            if routable(app) and routable(store):
                expect(100 <= status < 600, f"check {app!r} on {store!r}: status {status}")
            else:
                raw = app.encode() if isinstance(app, str) else app
                # A NUL is refused before routing (400): it would cut the name short.
                expect_eq(status, 400 if b"\x00" in raw else 404, f"check {app!r} on {store!r}: a path refused")
    # Throttles with hostile app names and store names (names up to the 128
    # bytes the backend stores; longer ones are refused with a message).
    throttles = ['t"q', "t\\b", "t-w", "t_w", "t.w", "tcafé", "ß" * 60]
    # name/store fits in 128 bytes; store_name is held to the path's rule (no control characters)
    short_stores = [n for n in stores if len(n.encode()) <= 40 and routable(n)]
    for j, app in enumerate(throttles):
        store = short_stores[j % len(short_stores)]
        if len(app.encode()) + 1 + len(store.encode()) > 128:  # app/store must fit the backend's 128 bytes
            store = min(short_stores, key=lambda n: len(n.encode()))
        status, body = c.request("GET", f"/throttle-app/{seg(app)}/ttl/30/ratio/0.5?store_name={seg(store)}")
        expect_eq(status, 200, f"throttle {app!r} on {store!r} ({body!r})")
        status, _ = c.request("GET", f"/throttle-app/{seg(app)}/ttl/30")
        expect_eq(status, 200, f"throttle {app!r}")
    status, _ = c.request("GET", f"/throttle-app/{seg('ü' * 100)}")
    expect_eq(status, 500, "a 200-byte throttle name is refused")
    c.request("GET", "/check/marker-done/mysql/main")
    c.close()

    # The renderings are rebuilt every second; /debug/vars keeps the
    # original's names, so this wait means the same before and after a change
    # of the Prometheus text.
    wait_until(lambda: d.get_json("/debug/vars")[1], lambda v: "check.marker-done.total" in v, timeout=5,
               what="the renderings to include the last check")
    status, body = d.get("/metrics")
    expect_eq(status, 200, "GET /metrics")
    promtool_check(body)
    smp = samples(body.decode("utf-8", "strict"))
    counted = label_values(smp, "freno_app_checks_total", "app")
    for app in apps:
        raw = app.encode() if isinstance(app, str) else app
        shown = printable(raw[:191])  # EVENT_APP_MAX in src/snapshot/events.h
        if not routable(app):
            expect(shown not in counted, f"app {app!r} in a path the router refuses was counted as {shown!r}")
            continue
        expect(shown in counted, f"app {app!r} not counted as {shown!r}; counted: {sorted(counted)[:40]!r}")
    for twin in ("a-b", "a_b", "a.b", "a:b", "a b"):
        expect(twin in counted, f"twin app {twin!r} not a series of its own")
    shown_stores = label_values(smp, "freno_store_threshold", "store")
    expect_eq(shown_stores, set(stores), "stores in freno_store_threshold")
    pairs = {(lab["app"], lab["store"]) for fam, lab, _ in smp if fam == "freno_app_store_checks_total"}
    for store in filter(routable, stores):
        expect(('q"uote', store) in pairs, f"app/store pair ('q\"uote', {store!r}) not counted")
    healthy = {lab["store"]: v for fam, lab, v in smp if fam == "freno_store_healthy"}
    expect_eq(healthy.get('q"uote\\store'), "1", "freno_store_healthy of a hostile store")
    ratios = {(lab["app"], lab["store"]): v for fam, lab, v in smp if fam == "freno_throttled_app_ratio"}
    expect_eq(ratios.get(('t"q', stores[0])), "0.5", "throttle ratio of a hostile name on a hostile store")
    expect_eq(ratios.get(("t\\b", "")), "1", "throttle ratio of a hostile name on every store")

    status, body = d.get("/debug/vars")
    expect_eq(status, 200, "GET /debug/vars")
    dv = strict_json(body, "/debug/vars")
    for key in ('check.q"uote.total', "check.back\\slash.total", "check.a-b.total", "check.a_b.total",
                "check.a.b.total", "check.caf\u00e9.total", 'check.any.mysql.q"uote\\store.total',
                "aggregated.mysql.café-日本", 'throttled_states.t"q/q"uote\\store'):
        expect(key in dv, f"/debug/vars lacks {key!r}")
    for key in ("check.bad??.total", "check.new?line.total"):
        expect(key not in dv, f"/debug/vars counts a path the router refuses: {key!r}")
    status, body = d.get("/recent-apps")
    expect_eq(status, 200, "GET /recent-apps")
    ra = strict_json(body, "/recent-apps")
    expect('q"uote/x"y\\z' in ra, f"/recent-apps lacks the hostile pair; keys {sorted(ra)[:20]!r}")
    expect(not any(k.startswith("bad") for k in ra), "/recent-apps lists an app from a path the router refuses")
    # http.client sends header values as Latin-1: "é" arrives as the lone byte 0xE9.
    expect("a_b/?" in ra, f"/recent-apps lacks the client sent as invalid UTF-8; keys {sorted(ra)[:40]!r}")
    # Throttles with hostile names are enforced like any other.
    status, _ = d.get(f"/check/{seg('t.w')}/mysql/main")
    expect_eq(status, 417, "check by a throttled hostile app")
    status, _ = d.get(f"/check/{seg('t_w')}/mysql/{seg('a-b')}")
    expect_eq(status, 417, "check by a throttled hostile app on a hostile store")


def test_unknown_stores_are_not_counted():
    d = start("unknownstores")
    c = d.client()
    for i in range(200):
        status, _ = c.request("GET", f"/check/ghost-app/mysql/nosuch-{i}")
        expect_eq(status, 404, f"check of unknown store nosuch-{i}")
    status, _ = c.request("GET", "/check/ghost-app/mysql/main")
    expect_eq(status, 200, "check of a store that exists")
    c.close()
    dv = wait_until(lambda: d.get_json("/debug/vars")[1], lambda v: v.get("check.ghost-app.mysql.main.total") == 1,
                    timeout=5, what="check.ghost-app.mysql.main.total = 1")
    ghosts = sorted(k for k in dv if "nosuch" in k)
    expect(not ghosts, f"/debug/vars counts stores that do not exist: {ghosts[:5]!r} ({len(ghosts)})")
    expect_eq(dv.get("check.ghost-app.total"), 1, "check.ghost-app.total (existing stores only)")
    expect(dv.get("check.any.total", 0) >= 201, "check.any.total still counts every check")
    status, body = d.get("/metrics")
    expect(b"nosuch" not in body, "/metrics shows a store that does not exist")
    recents = d.get_json("/recent-apps")[1]
    expect("ghost-app/127.0.0.1" in recents, "/recent-apps lists the app")


# ---------------------------------------------------------------- flood

def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise lib.TestFailure(f"no VmRSS for pid {pid}")


async def _pipelined(port, requests, conns, batch):
    """Sends raw @requests (bytes) over @conns keep-alive connections, @batch
    at a time per connection (pipelined). Returns the status of each."""
    statuses = []

    async def worker(part):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in range(0, len(part), batch):
                chunk = part[i:i + batch]
                writer.write(b"".join(chunk))
                await writer.drain()
                for _ in chunk:
                    head = await reader.readuntil(b"\r\n\r\n")
                    statuses.append(int(head[9:12]))
                    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
                    await reader.readexactly(int(m.group(1)) if m else 0)
        finally:
            writer.close()

    parts = [requests[i::conns] for i in range(conns)]
    await asyncio.wait_for(asyncio.gather(*(worker(p) for p in parts)), timeout=120)
    return statuses


def timed_get(d, path):
    t0 = time.monotonic()
    status, body = d.get(path, timeout=10)
    return status, body, time.monotonic() - t0


FLOOD_APPS = 100_000


def start_measured(name, **extra):
    """A daemon whose RSS tells what it keeps: ASan holds freed memory in
    quarantine (256 MB by default) to catch use after free; 4 MB here."""
    old = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = ((old + ":") if old else "") + "quarantine_size_mb=4"
    try:
        return start(name, **extra)
    finally:
        if old is None:
            os.environ.pop("ASAN_OPTIONS", None)
        else:
            os.environ["ASAN_OPTIONS"] = old


def check_requests(names, store=PLAIN_STORE):
    return [f"GET /check/{seg(n)}/mysql/{seg(store)} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.{i % 200}.0.1\r\n\r\n"
            .encode() for i, n in enumerate(names)]


def built_with_tsan():
    try:
        return b"__tsan_init" in lib.FRENO_BIN.read_bytes()
    except OSError:
        return False


def test_flood_of_app_names_stays_bounded():
    d = start_measured("flood")
    # Warm up the renderings and the allocator with the daemon's usual work.
    c = d.client()
    for i in range(200):
        c.request("GET", f"/check/warm-{i}/mysql/main", headers={"X-Forwarded-For": f"10.0.0.{i % 250}"})
    c.close()
    wait_until(lambda: d.get_json("/debug/vars")[1], lambda v: "check.warm-199.total" in v, timeout=5,
               what="the renderings to include the warm-up checks")
    for path in ("/metrics", "/debug/vars", "/recent-apps"):
        d.get(path)
    rss0 = rss_bytes(d.proc.pid)

    rnd = random.Random(8)

    def flood(tag):
        reqs = []
        for i in range(FLOOD_APPS):
            ip = f"{rnd.randrange(1, 224)}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
            app = f"{tag}-{i}-{rnd.getrandbits(32):08x}"
            reqs.append(f"GET /check/{app}/mysql/main HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {ip}\r\n\r\n"
                        .encode())
        t0 = time.monotonic()
        statuses = asyncio.run(_pipelined(lib.ALT_PORT, reqs, conns=8, batch=100))
        secs = time.monotonic() - t0
        expect_eq(len(statuses), FLOOD_APPS, f"answers to the {tag} flood")
        expect(set(statuses) <= {200, 429, 500}, f"{tag} flood answers: {sorted(set(statuses))!r}")
        expect(secs < 60, f"the {tag} flood took {secs:.1f}s")
        return secs

    flood_s = flood("flood")
    rss_mid = rss_bytes(d.proc.pid)
    flood("again")  # the tables are at their caps: a second flood must not grow memory further

    # Check records reach the loop through per-thread queues drained every
    # 25 ms; wait until the flood's are all taken in (or counted as dropped),
    # so that "after the flood" also holds for the loop.
    def drained(v):
        stores = sum(n for k, n in v.items() if k.startswith("check.any.mysql.") and k.endswith(".total"))
        return stores + v["check.events.dropped"] >= v["check.any.total"]

    wait_until(lambda: d.get_json("/debug/vars")[1], drained, timeout=10,
               what="the loop to take in the flood's check records")
    status = d.get("/check/after-flood-app/mysql/main", headers={"X-Forwarded-For": "192.0.2.77"})[0]
    expect(status in (200, 429, 500), f"check after the flood answered {status}")

    def after_seen():
        m = d.get("/metrics")[1].decode()
        v = d.get_json("/debug/vars")[1]
        r = d.get_json("/recent-apps")[1]
        return ([line for line in m.splitlines() if "after-flood-app" in line],
                {k: n for k, n in v.items() if "after-flood-app" in k},
                [k for k in r if k.startswith("after-flood-app/")])

    wait_until(after_seen,
               lambda s: ('freno_app_checks_total{app="after-flood-app"} 1' in s[0]
                          and s[1].get("check.after-flood-app.total") == 1
                          and s[1].get("check.after-flood-app.mysql.main.total") == 1
                          and s[2] == ["after-flood-app/192.0.2.77"]),
               timeout=5, what="the app checking after the flood in /metrics, /debug/vars and /recent-apps")

    figures = {}
    for path in ("/metrics", "/debug/vars", "/recent-apps"):
        worst = 0.0
        for _ in range(3):
            status, body, secs = timed_get(d, path)
            expect_eq(status, 200, f"GET {path} after the flood")
            expect(len(body) < 8 * MIB, f"{path} is {len(body) / MIB:.1f} MB after the flood")
            worst = max(worst, secs)
        expect(worst < 1.0, f"{path} took {worst:.2f}s after the flood")
        figures[path] = (len(body), worst)
        if path == "/metrics":
            promtool_check(body)
        else:
            strict_json(body, path)
    rss1 = rss_bytes(d.proc.pid)
    growth = rss1 - rss0
    print(f"  flood: {FLOOD_APPS} apps in {flood_s:.1f}s ({FLOOD_APPS / flood_s:.0f}/s); "
          f"RSS {rss0 / MIB:.1f} -> {rss_mid / MIB:.1f} MB after one flood -> {rss1 / MIB:.1f} MB after two "
          f"(+{growth / MIB:.1f}); "
          + "; ".join(f"{p} {n / 1024:.0f} KB in {s * 1000:.0f} ms" for p, (n, s) in figures.items()))
    if built_with_tsan():
        # ThreadSanitizer keeps shadow memory and histories several times the
        # size of what the daemon uses; only the second flood's bound applies.
        print("  flood: ThreadSanitizer build, RSS growth bound not applied")
    else:
        expect(growth <= 64 * MIB, f"RSS grew by {growth / MIB:.1f} MB ({rss0 / MIB:.1f} -> {rss1 / MIB:.1f})")
    # Anything that kept 100,000 more names would add well over this.
    second_bound = (32 if built_with_tsan() else 16) * MIB
    expect(rss1 - rss_mid <= second_bound,
           f"a second flood grew RSS by {(rss1 - rss_mid) / MIB:.1f} MB: something is not bounded")


SLOW_READERS = 24
BIG_CAP = 12_000


def test_slow_readers_share_one_rendering():
    """Clients that ask for /metrics and then read nothing keep their answer
    pending; they must share the one rendering, not hold a copy each (the old
    code copied the whole text for every request). The kernel takes up to
    4 MB of each answer (net.ipv4.tcp_wmem), so this uses caps raised for a
    /metrics of about 10 MB."""
    # Room beside the names for the daemon's own self checks (apps "freno"
    # and "freno-share-domain", on every store), which are counted too.
    cap = BIG_CAP + 64
    d = start_measured("slowreaders", MaxCountedApps=cap, MaxCountedAppStores=cap)
    names = [f"{i:05d}-" + "n" * 100 for i in range(BIG_CAP)]
    statuses = asyncio.run(_pipelined(lib.ALT_PORT, check_requests(names), conns=4, batch=100))
    expect_eq(len(statuses), len(names), "answers to the checks")
    # A pipelined flood can outrun the loop: a thread's full event ring drops
    # check records (counted, by design). This test needs the big rendering,
    # not the flood, so names whose records were dropped are sent again, each
    # round once every record sent is either counted or counted as dropped.
    sent, missing = len(names), names

    last = {}

    def accounted():
        last["vars"] = v = d.get_json("/debug/vars")[1]
        return sum(v.get(f"check.{n}.total", 0) for n in names) + v.get("check.events.dropped", 0)

    for _ in range(10):
        wait_until(accounted, lambda n: n >= sent, timeout=10,
                   what=f"each of the {sent} check records sent to be counted or dropped")
        counted = last["vars"]
        missing = [n for n in names if f"check.{n}.total" not in counted]
        if not missing:
            break
        print(f"  slow readers: {len(missing)} check records dropped by the flood, sent again")
        asyncio.run(_pipelined(lib.ALT_PORT, check_requests(missing), conns=1, batch=20))
        sent += len(missing)
    expect(not missing, f"{len(missing)} apps still not counted after sending them again")
    size = len(d.get("/metrics")[1])
    expect(size > 8 * MIB, f"/metrics is only {size / MIB:.1f} MB")
    rss0 = rss_bytes(d.proc.pid)
    socks = []
    try:
        for _ in range(SLOW_READERS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # little room on our side
            s.settimeout(5)
            s.connect(("127.0.0.1", lib.ALT_PORT))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        for s in socks:
            expect(s.recv(1) == b"H", "a slow reader got no answer")  # the answer is under way
        rss1 = rss_bytes(d.proc.pid)
        t0 = time.monotonic()
        status, _ = d.get("/check/meanwhile/mysql/main", timeout=5)
        secs = time.monotonic() - t0
    finally:
        for s in socks:
            s.close()
    growth = rss1 - rss0
    print(f"  slow readers: {SLOW_READERS} pending answers of {size / MIB:.1f} MB; "
          f"RSS {rss0 / MIB:.1f} -> {rss1 / MIB:.1f} MB (+{growth / MIB:.1f})")
    expect(status in (200, 429), f"a check beside the slow readers answered {status}")
    expect(secs < 1, f"a check beside the slow readers took {secs:.2f}s")
    expect(growth <= 16 * MIB, f"{SLOW_READERS} slow readers of a {size / MIB:.1f} MB /metrics grew RSS by "
           f"{growth / MIB:.1f} MB: each holds a copy")
