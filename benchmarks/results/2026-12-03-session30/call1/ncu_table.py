"""Side-by-side table of selected Nsight Compute metrics from `ncu -i REP --page raw --csv` files:
python3 ncu_table.py LABEL=FILE.csv ... (kernels under 30 us are left out)."""
import csv, re, sys

PATTERNS = [
    r"^gpu__time_duration\.sum$", r"^launch__grid_size$", r"^launch__block_size$",
    r"^launch__registers_per_thread$", r"^launch__shared_mem_per_block_(dynamic|static)$",
    r"^launch__waves_per_multiprocessor$", r"^sm__cycles_elapsed\.avg\.per_second$",
    r"^sm__throughput\.avg\.pct_of_peak_sustained_elapsed$",
    r"^smsp__issue_active\.avg\.pct_of_peak_sustained_active$",
    r"^sm__warps_active\.avg\.pct_of_peak_sustained_active$",
    r"pipe_tensor.*pct_of_peak_sustained_(active|elapsed)$", r"gmma.*pct_of_peak",
    r"^sm__inst_executed_pipe_.*\.avg\.pct_of_peak_sustained_active$",
    r"^smsp__inst_executed\.sum$", r"^dram__bytes_read\.sum$", r"^lts__t_bytes\.sum$",
    r"^dram__throughput\.avg\.pct_of_peak_sustained_elapsed$",
    r"^smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio$",
]


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head, units = rows[0], rows[1]
    body = [r for r in rows[2:] if len(r) == len(head)]
    return head, units, body


cols = []
for arg in sys.argv[1:]:
    label, path = arg.split("=", 1)
    try:
        head, units, body = load(path)
    except (OSError, IndexError) as ex:
        print(f"{label}: {ex}")
        continue
    idx = {h: i for i, h in enumerate(head)}
    for r in body:
        try:
            i = idx["gpu__time_duration.sum"]
            dur = float(r[i].replace(",", ""))
        except (KeyError, ValueError):
            continue
        scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}.get(units[i], 1.0)
        if dur * scale < 30:
            continue
        name = r[idx.get("Kernel Name", 0)][:40]
        cols.append((f"{label}:{name}", dict(zip(head, r))))

names = []
for _, d in cols:
    for k in d:
        if k not in names and any(re.search(p, k) for p in PATTERNS):
            names.append(k)
for label, d in cols:
    print("##", label)
for k in names:
    vals = [d.get(k, "") for _, d in cols]
    if all(v in ("", "n/a", "0") for v in vals):
        continue
    print(f"{k[:78]:78s} " + " ".join(f"{v[:14]:>14s}" for v in vals))
