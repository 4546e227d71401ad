#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Takes docs/dashboard.png: the dashboard of a daemon running the demo
config (scripts/run-demo.sh, plus a threads_running metric) against the
MariaDB topology, with a few apps checking, one throttled, one skipped host,
and replica 13307 lagging for the last seconds of a minute of history.

Run it inside a private network namespace, with the topology started:
  bash scripts/isolated.sh shot bash -c 'bash scripts/topology.sh start >/dev/null &&
      python3 scripts/dashboard-screenshot.py; bash scripts/topology.sh stop >/dev/null'
Needs chromium; compresses with pngquant and optipng when they are there."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import cdp  # noqa: E402

PORT = 8087
BIN = Path(os.environ.get("FRENO_BIN", REPO / "build" / "freno"))
TOPO = Path(os.environ.get("FRENO_TOPOLOGY_DIR", "/tmp/freno-topology"))
OUT = REPO / "docs" / "dashboard.png"
LAG = ("select unix_timestamp(now(6)) - unix_timestamp(ts) as lag_check "
       "from meta.heartbeat order by ts desc limit 1")


def get(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=5) as r:
        return r.read()


def sql(port, statement):
    subprocess.run(["mariadb", f"--socket={TOPO}/n{port}/mariadbd.sock", "-uroot", "-e", statement],
                   check=True)


def wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"dashboard-screenshot: timed out waiting for {what}")


def main():
    work = Path(tempfile.mkdtemp(prefix="freno-shot-"))
    conf = {
        "ListenPort": PORT,
        "RaftDataDir": str(work / "raft"),
        "RaftNodes": [],
        "Stores": {"MySQL": {
            "User": "freno", "Password": "freno", "MetricQuery": LAG, "ThrottleThreshold": 1.0,
            "Metrics": {"threads": {"Query": "show global status like 'threads_running'", "Threshold": 64}},
            "Clusters": {
                "main": {"StaticHostsSettings": {"Hosts": ["127.0.0.1:13307", "127.0.0.1:13308"]}},
                "replica1": {"StaticHostsSettings": {"Hosts": ["127.0.0.1:13307"]}},
                "replica2": {"StaticHostsSettings": {"Hosts": ["127.0.0.1:13308"]}},
            }}},
    }
    (work / "freno.conf.json").write_text(json.dumps(conf))
    log = open(work / "freno.log", "wb")
    d = subprocess.Popen([str(BIN), "--http", "--config", str(work / "freno.conf.json"),
                          "--http-port", str(PORT)], stdout=log, stderr=subprocess.STDOUT)
    lagging = False
    try:
        wait(lambda: len(json.loads(get("/aggregated-metrics"))) == 6, 30, "aggregates")
        for path in ("/check/gh-ost/mysql/main", "/check/archiver/mysql/main",
                     "/check/spark-export/mysql/replica2", "/throttle-app/archiver/ttl/30/ratio/0.5",
                     "/throttle-app/backfill-users/ttl/120", "/skip-host/db-7.example/ttl/60",
                     "/app-rule/gh-ost?threshold=2", "/app-rule/archiver?factor=0.5&ttl=90"):
            get(path)
        time.sleep(45)  # history to draw: not a wait for a condition
        sql(13307, "STOP SLAVE SQL_THREAD")
        lagging = True
        wait(lambda: float(json.loads(get("/aggregated-metrics"))["mysql/replica1"]) > 8, 30,
             "replica1 lagging")
        for path in ("/check/gh-ost/mysql/main", "/check/archiver/mysql/replica1"):
            try:
                get(path)
            except OSError:
                pass  # 429 while lagging
        with cdp.Browser(width=1400, height=1000) as b:
            b.navigate(f"http://127.0.0.1:{PORT}/dashboard")
            b.wait_for("document.querySelectorAll('svg.chart path.line').length >= 6", timeout=20,
                       what="charts")
            b.wait_for("[...document.querySelectorAll('#recent td')].length >= 6", timeout=20,
                       what="recent apps")
            b.pump(1)
            if b.errors:
                raise SystemExit("dashboard-screenshot: page errors: " + "; ".join(b.errors))
            raw = work / "raw.png"
            b.screenshot(raw)
    finally:
        if lagging:
            sql(13307, "START SLAVE SQL_THREAD")
        d.terminate()
        d.wait(10)
        log.close()
    if shutil.which("pngquant"):
        subprocess.run(["pngquant", "--force", "--quality=60-90", "--speed=1", "--output",
                        str(work / "q.png"), str(raw)], check=True)
        raw = work / "q.png"
    if shutil.which("optipng"):
        subprocess.run(["optipng", "-quiet", "-o5", str(raw)], check=True)
    shutil.copyfile(raw, OUT)
    shutil.rmtree(work, ignore_errors=True)
    print(f"dashboard-screenshot: wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
