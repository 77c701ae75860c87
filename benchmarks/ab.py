#!/usr/bin/env python3
"""A/B runs of bench_cuda's whole step, summarized: the GPU call scripts alternate builds and
prefix each `train_step` line with the build's label ("main {...}", "sd {...}").
Usage: ab.py LOG [--ref LABEL]   (LABEL defaults to "main")

Per label and setting (B x S, recompute, offload): the runs' median step time and their range;
every timed step of every run pooled (bench_cuda's "steps_s") and its median; the board's energy
per step (median of the runs' "j_per_step", when NVML gave it). Then each label against the
reference label at the same setting: the change of the pooled median time and of the energy per
step in percent, and whether the time's change is larger than the spread of the runs (the
widest range of either side, given two runs or more on each), which is what a single A/B call
can resolve.

bench_cuda's paired lines (LORA4J_BENCH_AB=NAME=VALUE,...: two engines in one process, their
steps alternated, "train_step_pair"; labelled or not) are listed after that: per line the median
ratio b / a of the step time and of the energy with their quartiles, in how many pairs b was
lower and the sign test's p, and a verdict: b faster (or slower) when p < 0.05 and the quartiles
lie on one side of 1, else no difference resolved."""
import json
import statistics
import sys


def labelled(path, bench, need_label):
    """(label, dict) of each line of the log holding a JSON object whose "bench" string is bench,
    after an optional label ("main {...}"); lines that do not parse are skipped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    for line in lines:
        line = line.strip()
        i = line.find("{")
        if i < 0 or (need_label and i == 0) or f'"{bench}"' not in line:
            continue
        try:
            yield line[:i].strip(), json.loads(line[i:])
        except json.JSONDecodeError:
            continue


def setting_key(run):
    return (run.get("B"), run.get("S"), run.get("recompute", 0), run.get("offload", 0),
            run.get("masked", 0), run.get("padded", 0), run.get("packed", 0))


def read(path):
    """{(label, setting): [run dict, ...]} of the labelled train_step lines, in log order."""
    groups = {}
    for label, run in labelled(path, "train_step", True):
        groups.setdefault((label, setting_key(run)), []).append(run)
    return groups


def read_pairs(path):
    """bench_cuda's train_step_pair lines, as (label, dict), in the order of the log."""
    return list(labelled(path, "train_step_pair", False))


def pair_verdict(ratio_q, p):
    """b faster / slower when the sign test gives p < 0.05 and the ratios' quartiles both lie on
    one side of 1."""
    lo, hi = ratio_q
    if p < 0.05 and hi < 1:
        return "b lower"
    if p < 0.05 and lo > 1:
        return "b higher"
    return "no difference resolved"


# Energy ratios whose quartiles lie further apart than this are not read: per-step energy from
# NVML's counter scattered by -20% to +25% around steps of 0.46 s whose time moved by tenths of a
# percent (RESULTS.md, eighteenth session), while 0.59 s steps agreed within 1.5%.
ENERGY_QUARTILE_SPAN = 0.10


def report_pairs(pairs):
    lines = []
    for label, r in pairs:
        head = f"  {label + ' ' if label else ''}b = {r.get('ab', '?')}, {setting_name(setting_key(r))}"
        if "error" in r:
            lines.append(f"{head}: not measured ({r['error']})")
            continue
        n = r["pairs"]
        energy = "energy not measured (no NVML)"
        if r.get("ratio_j") is not None:
            lo, hi = r["ratio_j_q"]
            verdict = (f"not read (quartiles {(hi - lo) * 100:.0f}% apart)"
                       if hi - lo > ENERGY_QUARTILE_SPAN else pair_verdict(r["ratio_j_q"], r["p_sign_j"]))
            energy = (f"energy b/a {(r['ratio_j'] - 1) * 100:+.2f}% "
                      f"(quartiles {(lo - 1) * 100:+.2f}% to {(hi - 1) * 100:+.2f}%), "
                      f"b lower in {r['b_less_energy']} of {n}, p {r['p_sign_j']:.3f}: {verdict}")
        lines.append(
            f"{head}: {n} pairs, time b/a {(r['ratio_s'] - 1) * 100:+.2f}% "
            f"(quartiles {(r['ratio_s_q'][0] - 1) * 100:+.2f}% to {(r['ratio_s_q'][1] - 1) * 100:+.2f}%), "
            f"b faster in {r['b_faster']} of {n}, p {r['p_sign_s']:.3f}: "
            f"{pair_verdict(r['ratio_s_q'], r['p_sign_s'])}; {energy}")
    return "\n".join(lines)


def summary(runs):
    times = [r["s"] for r in runs]
    steps = [t for r in runs for t in r.get("steps_s", [r["s"]])]
    joules = [r["j_per_step"] for r in runs if "j_per_step" in r]
    return {
        "runs": len(runs),
        "median_s": statistics.median(times),
        "range_s": max(times) - min(times),
        "pooled_s": statistics.median(steps),
        "j": statistics.median(joules) if joules else None,
    }


def setting_name(key):
    B, S, rc, off, masked, padded, packed = key
    mode = "no recompute" if not rc else f"recompute {rc}" + (" offloaded" if off else "")
    return (f"{B} x {S}, {mode}" + (f", {masked:.0%} of labels -100" if masked else "")
            + (f", rows right-padded by up to {padded:.0%}" if padded else "")
            + (f", rows packed with examples of ~{packed} tokens" if packed else ""))


def report(groups, ref):
    lines = []
    sums = {k: summary(v) for k, v in groups.items()}
    lines.append(f"{'label':<10}{'setting':<36}{'runs':>5}{'median ms':>11}{'range ms':>10}"
                 f"{'pooled ms':>11}{'J/step':>9}")
    for (label, key), s in sums.items():
        j = f"{s['j']:.1f}" if s["j"] is not None else "-"
        lines.append(f"{label:<10}{setting_name(key):<36}{s['runs']:>5}{s['median_s'] * 1e3:>11.1f}"
                     f"{s['range_s'] * 1e3:>10.1f}{s['pooled_s'] * 1e3:>11.1f}{j:>9}")
    lines.append(f"against {ref}:")
    for (label, key), s in sums.items():
        base = sums.get((ref, key))
        if label == ref or base is None:
            continue
        dt = (s["pooled_s"] / base["pooled_s"] - 1) * 100
        spread = max(s["range_s"], base["range_s"]) / base["median_s"] * 100
        if min(s["runs"], base["runs"]) < 2:
            verdict = "one run on a side: no spread to judge by"
        else:
            verdict = "beyond the runs' spread" if abs(dt) > spread else "within the runs' spread"
        dj = ""
        if s["j"] is not None and base["j"] is not None:
            dj = f", energy {(s['j'] / base['j'] - 1) * 100:+.2f}%"
        lines.append(f"  {label} {setting_name(key)}: time {dt:+.2f}%{dj} "
                     f"(spread {spread:.2f}%: {verdict})")
    return "\n".join(lines)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    ref = "main"
    if "--ref" in argv:
        ref = argv[argv.index("--ref") + 1]
    groups = read(argv[1])
    pairs = read_pairs(argv[1])
    if not groups and not pairs:
        print(f"ab.py: no labelled train_step lines and no train_step_pair lines in {argv[1]}")
        return 1
    if groups:
        print(report(groups, ref))
    if pairs:
        print("paired runs (two engines in one process, steps alternated):")
        print(report_pairs(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
