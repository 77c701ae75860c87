"""Medians per shape of an ncu --csv --page raw export of the backward kernel's launches.

Usage: ncu_sum.py LABEL FILE.csv. Launches over 2 ms are the 1 x 8192 shape, the rest 4 x 2048.
"""
import csv
import statistics
import sys

label, path = sys.argv[1], sys.argv[2]
rows = [r for r in csv.reader(open(path, errors="replace")) if r]
head = next(i for i, r in enumerate(rows) if "gpu__time_duration.sum" in r)
names, units = rows[head], rows[head + 1]
want = ["gpu__time_duration.sum", "dram__bytes_read.sum", "dram__bytes_write.sum", "lts__t_bytes.sum",
        "smsp__inst_executed.sum"]
col = {w: names.index(w) for w in want}
scale = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9,
         "nsecond": 1e-6, "usecond": 1e-3, "msecond": 1, "ns": 1e-6, "us": 1e-3, "ms": 1}


def val(r, w):
    v = float(r[col[w]].replace(",", ""))
    return v * scale.get(units[col[w]], 1)


groups = {"4 x 2048": [], "1 x 8192": []}
for r in rows[head + 2:]:
    try:
        t = val(r, "gpu__time_duration.sum")
    except (ValueError, IndexError):
        continue
    groups["1 x 8192" if t > 2.0 else "4 x 2048"].append(r)
for shape, rs in groups.items():
    if not rs:
        continue
    med = {w: statistics.median(val(r, w) for r in rs) for w in want}
    print(f"| {label} | {shape} | {len(rs)} | {med['gpu__time_duration.sum']:.4f} | "
          f"{med['dram__bytes_read.sum'] / 1e6:.1f} | {med['dram__bytes_write.sum'] / 1e6:.1f} | "
          f"{med['lts__t_bytes.sum'] / 1e9:.3f} | {med['smsp__inst_executed.sum'] / 1e6:.1f} |")
