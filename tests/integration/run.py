#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs the integration tests: every function test_* in tests/integration/test_*.py,
files in name order, functions in source order.

  run.py [-k SUBSTRING]... [--list] [--write-config FILE]

Prints PASS/FAIL/SKIP per test, then a summary and a last line
`RESULT passed=N failed=N skipped=N`. Exit status 0 only if nothing failed.
"""

import argparse
import importlib.util
import inspect
import json
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import lib  # noqa: E402


def discover(filters):
    tests = []
    for path in sorted(HERE.glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        funcs = [f for name, f in vars(module).items()
                 if name.startswith("test_") and inspect.isfunction(f) and f.__module__ == path.stem]
        funcs.sort(key=lambda f: f.__code__.co_firstlineno)
        for f in funcs:
            full = f"{path.stem}.{f.__name__}"
            if not filters or any(s in full for s in filters):
                tests.append((full, f))
    return tests


def short_reason(exc):
    if isinstance(exc, AssertionError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def where(exc):
    """The innermost frame of the traceback that lies in a test file."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).name.startswith("test_")]
    if not frames:
        return ""
    f = frames[-1]
    return f" [{Path(f.filename).name}:{f.lineno}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", action="append", default=[], help="run only tests whose name contains this")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("--write-config", metavar="FILE",
                    help="write the main daemon config (for FRENO_TEST_DAEMON_URL runs) and exit")
    args = ap.parse_args()

    if args.write_config:
        Path(args.write_config).resolve().parent.mkdir(parents=True, exist_ok=True)
        cfg = lib._substitute(lib.main_config(), str(Path(args.write_config).resolve().parent))
        Path(args.write_config).write_text(json.dumps(cfg, indent=2) + "\n")
        print(f"wrote {args.write_config}; run: freno --http --config {args.write_config} "
              f"--http-port {lib.MAIN_PORT}")
        return 0

    tests = discover(args.k)
    if args.list:
        for name, _ in tests:
            print(name)
        return 0

    try:
        lib.topology_ready()
    except lib.TestFailure as e:
        print(f"warning: the topology is not ready ({e}); start it: scripts/topology.sh start", flush=True)

    passed = failed = skipped = 0
    suite_start = time.monotonic()
    try:
        for name, fn in tests:
            t0 = time.monotonic()
            outcome, reason = "pass", None
            try:
                fn()
            except lib.Skip as e:
                outcome, reason = "skip", str(e)
            except Exception as e:  # a failing test must not stop the suite
                outcome, reason = "fail", short_reason(e) + where(e)
            finally:
                problems = lib.check_daemons() + lib.stop_extra_daemons() + lib.after_test()
            if problems:
                if outcome == "fail":
                    reason += "\n    also: " + "\n    ".join(problems)
                else:
                    outcome, reason = "fail", "after the test: " + "\n    ".join(problems)
            dt = time.monotonic() - t0
            if outcome == "pass":
                passed += 1
                print(f"PASS {name} ({dt:.1f}s)", flush=True)
            elif outcome == "skip":
                skipped += 1
                print(f"SKIP {name}: {reason}", flush=True)
            else:
                failed += 1
                print(f"FAIL {name}: {reason} ({dt:.1f}s)", flush=True)
    finally:
        for name, problems in lib.shutdown():
            failed += 1
            print(f"FAIL shutdown of daemon {name}: " + "\n    ".join(problems), flush=True)

    total = time.monotonic() - suite_start
    print(f"integration: {passed} passed, {failed} failed, {skipped} skipped in {total:.0f}s")
    print(f"RESULT passed={passed} failed={failed} skipped={skipped}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
