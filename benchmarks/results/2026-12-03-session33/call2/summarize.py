"""Mean time, power, clock and energy per call of each variant at each shape from sustained_ab.py's
lines, with each variant's ratio to main's. Usage: summarize.py sustained.jsonl"""
import collections, json, sys

rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith("{"):
        r = json.loads(line)
        rows[(r["B"], r["S"], r["variant"])].append(r)
print("| shape | variant | rounds ms | mean ms | / main | W | MHz | mJ/call |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for (B, S) in sorted({(k[0], k[1]) for k in rows}, key=lambda x: x[1]):
    base = rows.get((B, S, "main"))
    mean = lambda rs, f: sum(r[f] for r in rs) / len(rs)
    for v in sorted({k[2] for k in rows if k[:2] == (B, S)}, key=lambda v: (v != "main", v)):
        rs = rows[(B, S, v)]
        ratio = mean(rs, "ms") / mean(base, "ms") if base else float("nan")
        print(f"| {B} x {S} | {v} | {' / '.join(str(r['ms']) for r in rs)} | {mean(rs, 'ms'):.4f} | "
              f"{ratio:.3f} | {mean(rs, 'watts'):.0f} | {mean(rs, 'sm_mhz'):.0f} | {mean(rs, 'mj_per_call'):.1f} |")
