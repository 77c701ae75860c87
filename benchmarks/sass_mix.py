#!/usr/bin/env python3
"""Executed-instruction mix of a kernel from Nsight Compute's SASS source page.

The export is `ncu -i REPORT --page source --csv --print-source sass > FILE.csv` (gzip-compressed
or plain; the report profiled with the SourceCounters section, which `--set full` includes). Each
SASS line carries "Instructions Executed" (warp-level); this sums them by opcode (the mnemonic
without its modifiers and without a predicate guard), so two kernels, or two builds of one, can be
compared opcode by opcode.

Usage:
  sass_mix.py A.csv[.gz] [B.csv[.gz]] [--top 25] [--hot OPCODE] [--lines 20]
              [--kernel-a REGEX] [--kernel-b REGEX]
An export may hold several kernels: each file's is the one matching its REGEX, or the one that
executed the most instructions. One export: each opcode's count and share of the kernel's total. Two: both side by side with
A - B, the largest differences first (A = the first file). --hot OPCODE also lists A's most
executed lines of that opcode with their addresses, to find where they come from.
"""
import argparse
import os
import re
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ncu_bytes import csv_rows  # noqa: E402  (the exports' reader, plain or .gz)

OPCODE = re.compile(r"^(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_]*)")


def kernels(path):
    """{kernel name: [(address, source text, instructions executed, opcode), ...]} for every
    kernel of the export (ncu writes one "Kernel Name" row, a header and the kernel's SASS lines
    per kernel)."""
    found, name, cols = {}, None, None
    for r in csv_rows(path):
        if r[0] == "Kernel Name":
            name, cols = (r[1] if len(r) > 1 else "?"), None
            found.setdefault(name, [])
            continue
        if "Source" in r and "Instructions Executed" in r:
            cols = (r.index("Address"), r.index("Source"), r.index("Instructions Executed"))
            if name is None:
                name = "?"
                found.setdefault(name, [])
            continue
        if cols is None or len(r) <= max(cols):
            continue
        text = r[cols[1]].strip()
        op = OPCODE.match(text)
        if not op:
            continue
        count = r[cols[2]].replace(",", "").strip()
        found[name].append((r[cols[0]], text, int(float(count)) if count not in ("", "-") else 0,
                            op.group(1)))
    found = {k: v for k, v in found.items() if v}
    if not found:
        raise SystemExit(f"{path}: no SASS lines under a source page header (Source, Instructions Executed)")
    return found


def lines(path, pattern=None):
    """The SASS lines of one kernel of the export: the one whose name matches pattern, or without
    a pattern the one that executed the most instructions. Returns (kernel name, lines)."""
    found = kernels(path)
    if pattern:
        names = [k for k in found if re.search(pattern, k)]
        if len(names) != 1:
            raise SystemExit(f"{path}: {len(names)} kernels match {pattern!r} of {sorted(found)}")
        name = names[0]
    else:
        name = max(found, key=lambda k: sum(r[2] for r in found[k]))
    return name, found[name]


def mix(rows):
    counts = Counter()
    for _, _, n, op in rows:
        counts[op] += n
    return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b", nargs="?")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--hot")
    ap.add_argument("--lines", type=int, default=20)
    ap.add_argument("--kernel-a", help="regex for A's kernel (default: the most instructions)")
    ap.add_argument("--kernel-b", help="regex for B's kernel (default: the most instructions)")
    args = ap.parse_args(argv)
    name_a, rows_a = lines(args.a, args.kernel_a)
    print(f"A: {name_a[:100]}")
    ma = mix(rows_a)
    ta = sum(ma.values())
    if args.b is None:
        print("| opcode | executed (M) | share |\n| --- | --- | --- |")
        for op, n in ma.most_common(args.top):
            print(f"| {op} | {n / 1e6:.2f} | {100 * n / ta:.1f}% |")
        print(f"| total | {ta / 1e6:.2f} | 100% |")
    else:
        name_b, rows_b = lines(args.b, args.kernel_b)
        print(f"B: {name_b[:100]}")
        mb = mix(rows_b)
        tb = sum(mb.values())
        ops = sorted(set(ma) | set(mb), key=lambda o: -abs(ma[o] - mb[o]))
        print("| opcode | A (M) | B (M) | A - B (M) |\n| --- | --- | --- | --- |")
        for op in ops[:args.top]:
            print(f"| {op} | {ma[op] / 1e6:.2f} | {mb[op] / 1e6:.2f} | {(ma[op] - mb[op]) / 1e6:+.2f} |")
        print(f"| total | {ta / 1e6:.2f} | {tb / 1e6:.2f} | {(ta - tb) / 1e6:+.2f} |")
    if args.hot:
        hot = sorted((r for r in rows_a if r[3] == args.hot), key=lambda r: -r[2])[:args.lines]
        print(f"\n{args.hot} lines of {args.a}, most executed first:")
        for addr, text, n, _ in hot:
            print(f"{n:>12,}  {addr}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
