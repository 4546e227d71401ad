#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Prints each C file given as FILE:LINE:code with comments blanked out and
string and character literals kept, one output line per source line, so a
grep over the output sees only code (a banned call beside "http://..." or in
a comment is told apart correctly)."""
import sys


def strip(text):
    out = []
    i, n = 0, len(text)
    state = None  # None, 'line', 'block', '"', "'"
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ''
        if state is None:
            if c == '/' and nxt == '/':
                state = 'line'
                i += 2
                continue
            if c == '/' and nxt == '*':
                state = 'block'
                out.append('  ')
                i += 2
                continue
            if c in '"\'':
                state = c
            out.append(c)
        elif state == 'line':
            if c == '\n':
                state = None
                out.append(c)
        elif state == 'block':
            if c == '*' and nxt == '/':
                state = None
                out.append('  ')
                i += 2
                continue
            out.append('\n' if c == '\n' else ' ')
        else:  # inside a literal
            out.append(c)
            if c == '\\' and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == state or c == '\n':
                state = None
        i += 1
    return ''.join(out)


for path in sys.argv[1:]:
    with open(path, encoding='utf-8', errors='replace') as f:
        for no, line in enumerate(strip(f.read()).split('\n'), 1):
            if line.strip():
                print(f"{path}:{no}:{line}")
