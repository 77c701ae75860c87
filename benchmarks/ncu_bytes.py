#!/usr/bin/env python3
"""Memory traffic of a kernel's launches from an Nsight Compute export, as a table row per shape.

The export is `ncu --csv --page raw --metrics gpu__time_duration.sum,dram__bytes_read.sum,
dram__bytes_write.sum,lts__t_bytes.sum,smsp__inst_executed.sum ... > FILE.csv` (the program's
own output before ncu's header is skipped). Launches are told apart by their duration: those
under --split-ms are the shape named by --below, the others the one named by --above (for
bench_ops attention_bwd: 4 x 2048 takes ~0.7 ms, 1 x 8192 ~2.5 ms, profiled alone). Each row
gives the medians over that shape's launches: ms, DRAM MB read and written, L2 GB, millions of
instructions.

Usage: ncu_bytes.py LABEL FILE.csv[.gz] [--split-ms 2.0] [--below "4 x 2048"] [--above "1 x 8192"]
[--header]
"""
import argparse
import csv
import gzip
import statistics
import sys

METRICS = ["gpu__time_duration.sum", "dram__bytes_read.sum", "dram__bytes_write.sum",
           "lts__t_bytes.sum", "smsp__inst_executed.sum"]
# ncu's unit names (bytes in powers of ten, as it prints them) to bytes, ms and instructions
SCALE = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "Tbyte": 1e12,
         "KB": 1e3, "MB": 1e6, "GB": 1e9, "ns": 1e-6, "us": 1e-3, "ms": 1, "s": 1e3,
         "nsecond": 1e-6, "usecond": 1e-3, "msecond": 1, "second": 1e3, "inst": 1,
         "Kinst": 1e3, "Minst": 1e6, "Ginst": 1e9}
HEADER = ("| variant | shape | launches | ms | DRAM read MB | DRAM write MB | L2 GB | M instr |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |")


def csv_rows(path):
    """The non-empty CSV rows of an Nsight Compute export, plain or gzip-compressed (.gz, as the
    call scripts keep them in their logs)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", errors="replace") as f:
        return [r for r in csv.reader(f) if r]


def launches(path):
    """Each profiled launch as a dict of METRICS in ms, bytes and instructions."""
    rows = csv_rows(path)
    try:
        head = next(i for i, r in enumerate(rows) if "gpu__time_duration.sum" in r)
    except StopIteration:
        raise SystemExit(f"{path}: no ncu raw header with gpu__time_duration.sum")
    names, units = rows[head], rows[head + 1]
    missing = [m for m in METRICS if m not in names]
    if missing:
        raise SystemExit(f"{path}: metrics missing from the export: {', '.join(missing)}")
    col = {m: names.index(m) for m in METRICS}
    for m in METRICS:
        if units[col[m]] not in SCALE:
            raise SystemExit(f"{path}: unit '{units[col[m]]}' of {m} not known")
    out = []
    for r in rows[head + 2:]:
        try:
            out.append({m: float(r[col[m]].replace(",", "")) * SCALE[units[col[m]]]
                        for m in METRICS})
        except (ValueError, IndexError):
            continue  # ncu's own lines after the table
    return out


def table_rows(label, launch_list, split_ms, below, above):
    groups = {below: [], above: []}
    for l in launch_list:
        groups[above if l["gpu__time_duration.sum"] > split_ms else below].append(l)
    rows = []
    for shape, ls in groups.items():
        if not ls:
            continue
        med = {m: statistics.median(l[m] for l in ls) for m in METRICS}
        rows.append(f"| {label} | {shape} | {len(ls)} | {med['gpu__time_duration.sum']:.4f} | "
                    f"{med['dram__bytes_read.sum'] / 1e6:.1f} | "
                    f"{med['dram__bytes_write.sum'] / 1e6:.1f} | "
                    f"{med['lts__t_bytes.sum'] / 1e9:.3f} | "
                    f"{med['smsp__inst_executed.sum'] / 1e6:.1f} |")
    return rows


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("label")
    ap.add_argument("csv")
    ap.add_argument("--split-ms", type=float, default=2.0)
    ap.add_argument("--below", default="4 x 2048")
    ap.add_argument("--above", default="1 x 8192")
    ap.add_argument("--header", action="store_true", help="print the table's header first")
    a = ap.parse_args(argv)
    ls = launches(a.csv)
    if not ls:
        raise SystemExit(f"{a.csv}: no launch rows")
    if a.header:
        print(HEADER)
    for row in table_rows(a.label, ls, a.split_ms, a.below, a.above):
        print(row)


if __name__ == "__main__":
    main(sys.argv[1:])
