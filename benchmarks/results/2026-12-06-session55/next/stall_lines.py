#!/usr/bin/env python3
"""Top source lines (or SASS instructions) by warp-stall samples from
`ncu -i REP --page source --csv --print-source cuda|sass` output: stall_lines.py FILE [N].
Prints each line's share of the kernel's samples and its two largest stall reasons."""
import csv
import sys


def main():
    path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    hi = next(i for i, r in enumerate(rows) if any("Warp Stall Sampling (All" in c for c in r))
    head = rows[hi]
    col = {h: i for i, h in enumerate(head)}
    samp = next(i for i, h in enumerate(head) if h.startswith("Warp Stall Sampling (All"))
    src = col.get("Source", 1)
    line = next((col[h] for h in ("Line", "#", "Line Number") if h in col), None)
    reasons = [(h, i) for h, i in col.items() if h.startswith("stall_") and "Not Issued" not in h]
    body = []
    for r in rows[hi + 1:]:
        if len(r) != len(head):
            continue
        try:
            s = float(r[samp].replace(",", "") or 0)
        except ValueError:
            continue
        body.append((s, r))
    total = sum(s for s, _ in body) or 1.0
    print(f"{path}: {len(body)} rows, {total:.0f} samples")
    for s, r in sorted(body, key=lambda x: -x[0])[:n]:
        top = sorted(((float(r[i] or 0), h[6:]) for h, i in reasons), reverse=True)[:2]
        why = ", ".join(f"{h} {v / max(s, 1):.0%}" for v, h in top if v > 0)
        where = (r[line] + ": ") if line is not None else ""
        print(f"{s / total:6.1%}  {where}{r[src].strip()[:90]}  [{why}]")


if __name__ == "__main__":
    main()
