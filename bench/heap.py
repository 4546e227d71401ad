#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Where a running daemon's resident heap memory is, by allocation size.

Walks glibc's main heap ([heap] in /proc/PID/maps) chunk by chunk through
/proc/PID/mem, asks /proc/PID/pagemap which pages are resident, and prints
the size classes holding the most resident bytes: how many chunks, used or
free, their size and the resident bytes each. A page shared by two chunks
counts for each the part it holds. Root only (pagemap and mem of another
process). A diagnostic, not a test: it reads a heap that keeps changing, so
it stops at the first chunk header that does not parse.

Usage: bench/heap.py PID [TOP]      e.g. after bench/probes.sh started 500 hosts
"""
import collections
import struct
import sys

PAGE = 4096


def heap_range(pid):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if line.rstrip().endswith("[heap]"):
                lo, hi = line.split()[0].split("-")
                return int(lo, 16), int(hi, 16)
    sys.exit(f"heap: process {pid} has no [heap] mapping")


def resident_pages(pid, start, end):
    n = (end - start) // PAGE
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek((start // PAGE) * 8)
        raw = f.read(n * 8)
    return [(struct.unpack_from("<Q", raw, i * 8)[0] >> 63) & 1 for i in range(n)]


def chunks(data):
    """(offset, size, in use) of each chunk, by glibc's size fields."""
    found = []
    off = 0
    while off + 16 <= len(data):
        sz = struct.unpack_from("<Q", data, off + 8)[0] & ~7
        if sz < 16 or off + sz > len(data):
            break
        found.append([off, sz, True])
        off += sz
    for i in range(len(found) - 1):
        nxt = struct.unpack_from("<Q", data, found[i + 1][0] + 8)[0]
        found[i][2] = bool(nxt & 1)  # the next chunk's PREV_INUSE bit
    return found, off


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    pid = int(sys.argv[1])
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    start, end = heap_range(pid)
    res = resident_pages(pid, start, end)
    with open(f"/proc/{pid}/mem", "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    found, walked = chunks(data)
    stats = collections.defaultdict(lambda: [0, 0, 0])
    for off, sz, used in found:
        key = (sz if sz < 1024 else sz // 1024 * 1024, "used" if used else "free")
        resident = 0
        for p in range(off // PAGE, (off + sz - 1) // PAGE + 1):
            if res[p]:
                resident += min(off + sz, (p + 1) * PAGE) - max(off, p * PAGE)
        s = stats[key]
        s[0] += 1
        s[1] += sz
        s[2] += resident
    print(f"heap {(end - start) >> 10} KB, resident {sum(res) * PAGE >> 10} KB, "
          f"{len(found)} chunks walked over {walked >> 10} KB")
    print(f"{'size':>8} {'':4} {'chunks':>7} {'bytes':>10} {'resident':>10} {'each':>8}")
    for (size, kind), (n, total, resident) in sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]:
        print(f"{size:>8} {kind:4} {n:>7} {total >> 10:>7} KB {resident >> 10:>7} KB {resident / n:>8.0f}")


if __name__ == "__main__":
    main()
