#!/usr/bin/env python3
"""Prints lora4j's whole-step results next to the reference stack's from the same GPU call.
Usage: compare.py bench_reference.jsonl hf_baseline.json [cli_bench.jsonl]
       compare.py --qlora cli_bench.jsonl
       compare.py --cli cli_bench.jsonl hf_baseline.json
       compare.py --attention ops.txt anchors_ops.json
       compare.py --attention-sustained sustained.jsonl
       compare.py --held-ab held.jsonl
       compare.py --ddp ddp_bench.jsonl hf_ddp_baseline_w1.json hf_ddp_baseline_w2.json
With cli_bench.jsonl (benchmarks/cli_bench.py: `lora4j train`, the user's path) a second table
gives the command line's tokens/s beside the engine's and the reference's. --qlora prints the
QLoRA rows (cli_bench.py ... qlora): each 4-bit run beside the bf16 run of the same setting, the
ratio of their tokens/s, both peaks (the engine's count and nvidia-smi's for the process) and
issue 15's targets, then the same as rows for benchmarks/RESULTS.md. --cli prints the command
line's runs beside the reference's settings that ran in the same call (HF_SETTINGS may have run a
subset), with issue 12's targets. --ddp prints data parallel's rows (cli_bench.py ... ddp,robust
beside benchmarks/reference/hf_ddp_baseline.py run by torchrun on 1 and 2 GPUs in the same call):
`lora4j train` on 1 and 2 GPUs at 4 x 2048 per GPU with and without recompute, the scaling, the
ratio to torch DDP's 2-GPU figure, the engine's peak per GPU, and the median-over-8-workers
aggregation's cost in step time against the mean's, with issue 14's targets; it exits 1 when a
figure is missing (a run failed), not when a target is missed (the rows say so). --held-ab prints
kernel variants held at the power cap (attention_held.py, one line per variant, round and shape):
per op and shape each variant's rounds, mean time, ratio to main's, power, clock and energy a
call; it exits 1 when no variant is labelled main for an op and shape."""
import json
import statistics
import sys

# issue 15: peak memory (GiB) at B x S with recompute, and 4-bit tokens/s over bf16 tokens/s
QLORA_MEMORY_TARGET = {(1, 2048): 6.0, (4, 2048): 10.0}
QLORA_SPEED_TARGET = 0.85


def single(r):
    """A one-process run without gradient accumulation (the --cli, --qlora and engine tables)."""
    return r.get("nproc", 1) == 1 and r.get("grad_accum", 1) == 1


def full_rows(r):
    """Whether a cli_bench.py run trained rows of exactly S tokens, as the engine benchmark and
    the reference stack do (not its padded or packed rows of mixed length)."""
    return not r.get("padded") and not r.get("packed")


def rows_suffix(r):
    """' padded', ' padded+grouped' or ' packed' for cli_bench.py's rows of mixed length."""
    return ((" padded" if r.get("padded") else "") + ("+grouped" if r.get("grouped") else "")
            + (" packed" if r.get("packed") else ""))


def smi_of(r):
    """nvidia-smi's peak of a run: the process's, else GPU 0's rise during it (GiB)."""
    return r.get("smi_peak_gib", r.get("gpu0_delta_peak_gib"))


def qlora(path):
    runs = [json.loads(l) for l in open(path) if l.startswith("{") and '"cli_train"' in l]
    runs = [r for r in runs if single(r)]
    q4 = [r for r in runs if r.get("load_in_4bit") == 1]
    if not q4:
        print(f"no --load-in-4bit runs in {path}")
        return 1
    fmt = lambda v, f: format(v, f) if isinstance(v, (int, float)) else "-"
    verdict = lambda ok: "-" if ok is None else ("met" if ok else "NOT met")
    rows, bad = [], 0
    print("QLoRA: lora4j train --load-in-4bit vs the bf16 base, same call, recompute layer")
    print(f"{'setting':<22}{'4-bit tok/s':>12}{'bf16 tok/s':>11}{'ratio':>7}{'engine GiB':>11}"
          f"{'smi GiB':>9}{'bf16 smi':>9}{'memory target':>22}{'speed target':>18}")
    for r in q4:
        key = (r["B"], r["S"])
        base = [b for b in runs if b.get("load_in_4bit") == 0 and (b["B"], b["S"]) == key
                and b["recompute"] == r["recompute"]]
        b = base[0] if base else {}
        tps, btps = r.get("tokens_per_s"), b.get("tokens_per_s")
        ratio = tps / btps if tps and btps else None
        limit = QLORA_MEMORY_TARGET.get(key) if r["recompute"] == 1 else None
        # judged on the engine's peak, the measure of the reference stack's figures
        # (torch.cuda.max_memory_allocated) and of the published QLoRA ones; nvidia-smi's figure
        # (with the CUDA context, about 0.5 GiB more) is printed beside it
        used = r.get("engine_peak_gib")
        mem_ok = None if limit is None or used is None else used <= limit
        speed_ok = None if ratio is None else ratio >= QLORA_SPEED_TARGET
        bad += (mem_ok is False) + (speed_ok is False) + (tps is None)
        name = f"{r['B']} x {r['S']} {'recompute' if r['recompute'] else 'no recompute'}"
        mem_t = f"<= {limit:g} GiB {verdict(mem_ok)}" if limit else "-"
        print(f"{name:<22}{fmt(tps, ',.0f'):>12}{fmt(btps, ',.0f'):>11}{fmt(ratio, '.3f'):>7}"
              f"{fmt(r.get('engine_peak_gib'), '.2f'):>11}{fmt(smi_of(r), '.2f'):>9}"
              f"{fmt(smi_of(b), '.2f'):>9}{mem_t:>22}"
              f"{'>= 0.85x ' + verdict(speed_ok):>18}")
        if tps is None:
            print(f"    4-bit run failed: {r.get('error', '')} {r.get('tail', '')[-300:]}")
        rows.append(f"| {name} | {fmt(tps, ',.0f')} | {fmt(btps, ',.0f')} | "
                    f"{fmt(ratio, '.3f') + 'x' if ratio else '-'} | "
                    f"{fmt(r.get('engine_peak_gib'), '.2f')} | {fmt(smi_of(r), '.2f')} | "
                    f"{fmt(b.get('engine_peak_gib'), '.2f')} | {fmt(smi_of(b), '.2f')} | "
                    f"{mem_t} | >= 0.85x {verdict(speed_ok)} |")
    print()
    print("rows for benchmarks/RESULTS.md:")
    print("| setting | 4-bit tok/s | bf16 tok/s | 4-bit / bf16 | 4-bit engine peak GiB | "
          "4-bit nvidia-smi GiB | bf16 engine peak GiB | bf16 nvidia-smi GiB | memory target "
          "(engine peak) | speed target |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(row)
    return 1 if bad else 0


def mode_name(recompute):
    """bench_cuda's and cli_bench.py's recompute field: 0 none, 1 per layer, 2 selective, 3
    attention (2 and 3 set beside the reference's gradient-checkpointed run, as per-layer
    recompute is)."""
    return {0: "no recompute", 1: "recompute", 2: "selective", 3: "attention"}.get(
        recompute, str(recompute))


# issue 12: the command line's tokens/s over the reference's, same call, at no more than the
# reference's memory; a recompute setting is any of per-layer, selective, with or without
# --offload-checkpoints (set beside the reference's gradient-checkpointed run)
CLI_TARGET = {(4, 2048, 0): 1.6, (4, 2048, 1): 1.5, (1, 8192, 1): 1.3, (8, 4096, 1): 1.3}


def cli_vs_reference(cli_path, ref_path):
    runs = [json.loads(l) for l in open(cli_path) if l.startswith("{") and '"cli_train"' in l]
    runs = [r for r in runs if single(r)]
    ref = json.load(open(ref_path))
    print("| setting | `lora4j train` tok/s | engine peak GiB | reference tok/s | reference GiB "
          "| ratio | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        # the reference trains full rows only: a run on padded or packed rows has no figure to set
        # beside it
        if r.get("load_in_4bit") or not full_rows(r):
            continue
        key = (r["B"], r["S"], min(r["recompute"], 1))
        h = [x for x in ref.get("runs", []) if (x["bs"], x["seq"], int(x["grad_ckpt"])) == key]
        if not h or not r.get("tokens_per_s"):
            continue
        h = h[0]
        name = f"{r['B']} x {r['S']}, {mode_name(r['recompute'])}"
        if r.get("offload"):
            name += ", offloaded checkpoints"
        if "tokens_per_s" not in h:  # the reference failed there (e.g. out of memory)
            print(f"| {name} | {r['tokens_per_s']:,.0f} | {r['engine_peak_gib']:.1f} | "
                  f"{h.get('error', 'failed')} | - | - | - |")
            continue
        ratio = r["tokens_per_s"] / h["tokens_per_s"]
        t = CLI_TARGET.get(key)
        over = r["engine_peak_gib"] > h["peak_mem_GiB"]
        verdict = "-" if t is None else f"{t:g}x: {'met' if ratio >= t and not over else 'not met'}"
        if t is not None and over:
            verdict += " (over the reference's memory)"
        print(f"| {name} | {r['tokens_per_s']:,.0f} | {r['engine_peak_gib']:.1f} | "
              f"{h['tokens_per_s']:,.0f} | {h['peak_mem_GiB']:.1f} | {ratio:.2f}x | {verdict} |")
    return 0


# issue 14: 2-GPU tokens/s over our 1-GPU figure, over the reference's 2-GPU figure, and the
# robust aggregation's (median over 8 workers) cost in step time
DDP_SCALING_TARGET = 1.95
DDP_REFERENCE_TARGET = 1.5
ROBUST_COST_TARGET = 0.05


def ddp(bench_path, ref_paths):
    runs = [json.loads(l) for l in open(bench_path) if l.startswith("{") and '"cli_train"' in l]
    refs, missing = {}, 0
    for p in ref_paths:
        try:
            r = json.load(open(p))
            refs[r["world"]] = r
        except (OSError, ValueError, KeyError) as e:
            print(f"reference {p}: {e}")
            missing += 1
    fmt = lambda v, f: format(v, f) if isinstance(v, (int, float)) else "-"
    verdict = lambda v, ok: "-" if v is None else f"{v}: {'met' if ok else 'NOT met'}"

    def ours(bs, seq, gc, nproc, accum=1, rule="mean"):
        m = [r for r in runs if (r["B"], r["S"], r["recompute"], r.get("nproc", 1),
                                 r.get("grad_accum", 1), r.get("aggregation", "mean"),
                                 r.get("load_in_4bit", 0)) == (bs, seq, gc, nproc, accum, rule, 0)]
        return m[-1] if m else None

    def theirs(world, bs, seq, gc):
        m = [x for x in refs.get(world, {}).get("runs", [])
             if (x["bs_per_gpu"], x["seq"], int(x["grad_ckpt"])) == (bs, seq, gc)]
        return m[0] if m else None

    def tps(r):
        return r.get("tokens_per_s") if r else None

    def failed(r, what):
        nonlocal missing
        if r is None:
            print(f"    {what}: no such run in {bench_path}")
        elif not r.get("tokens_per_s"):
            print(f"    {what} failed (exit {r.get('exit')}): {r.get('error', '')} "
                  f"{r.get('tail', '')[-300:]}")
        else:
            if r.get("skipped"):
                print(f"    {what}: {r['skipped']} step(s) skipped by the guard")
            return
        missing += 1

    r2 = refs.get(2, {})
    gpu = r2.get("gpu") or refs.get(1, {}).get("gpu") or "?"
    print("Data parallel (issue 14): lora4j train on 1 and 2 GPUs beside torch DDP, same call; "
          + gpu)
    if "allreduce_168MB_ms" in r2:
        print(f"reference's NCCL all-reduce of 41,943,040 fp32 on 2 GPUs: "
              f"{r2['allreduce_168MB_ms']:.2f} ms ({r2['busbw_GBps']:.0f} GB/s bus bandwidth)")
    table = []
    for gc in (0, 1):
        name = f"4 x 2048, {'recompute' if gc else 'no recompute'}"
        one, two = ours(4, 2048, gc, 1), ours(4, 2048, gc, 2)
        failed(one, f"{name}, 1 GPU")
        failed(two, f"{name}, 2 GPUs")
        h1, h2 = theirs(1, 4, 2048, gc), theirs(2, 4, 2048, gc)
        if h2 is None:
            print(f"    {name}: no 2-GPU reference figure")
            missing += 1
        scaling = tps(two) / tps(one) if tps(one) and tps(two) else None
        h1t, h2t = (h1 or {}).get("global_tokens_per_s"), (h2 or {}).get("global_tokens_per_s")
        h_scaling = h2t / h1t if h1t and h2t else None
        ratio = tps(two) / h2t if tps(two) and h2t else None
        mem = lambda r: fmt((r or {}).get("engine_peak_gib"), ".1f")
        hmem = lambda h: fmt((h or {}).get("peak_mem_GiB"), ".1f")
        scaled = verdict(fmt(scaling, ".3f") + "x" if scaling else None,
                         (scaling or 0) >= DDP_SCALING_TARGET)
        h_scaled = fmt(h_scaling, ".3f") + "x" if h_scaling else "-"
        vs_ref = verdict(fmt(ratio, ".2f") + "x" if ratio else None,
                         (ratio or 0) >= DDP_REFERENCE_TARGET)
        table.append(
            f"| {name} | {fmt(tps(one), ',.0f')} | {fmt(tps(two), ',.0f')} | {scaled} | "
            f"{fmt(h1t, ',.0f')} | {fmt(h2t, ',.0f')} | {h_scaled} | {vs_ref} | "
            f"{mem(one)} / {mem(two)} | {hmem(h1)} / {hmem(h2)} |")
    print()
    print("rows for benchmarks/RESULTS.md:")
    print(f"| setting (per GPU) | lora4j 1 GPU tok/s | lora4j 2 GPUs tok/s | scaling (target >= "
          f"{DDP_SCALING_TARGET:g}x) | reference 1 GPU tok/s | reference 2 GPUs tok/s | reference "
          f"scaling | lora4j / reference, 2 GPUs (target >= {DDP_REFERENCE_TARGET:g}x) | lora4j "
          f"engine peak GiB per GPU, 1 / 2 GPUs | reference GiB per GPU, 1 / 2 GPUs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in table:
        print(row)
    mean, median = ours(4, 2048, 1, 2, 4, "mean"), ours(4, 2048, 1, 2, 4, "median")
    if mean is not None or median is not None:
        name = "2 GPUs x --grad-accum 4 (8 workers), 4 x 2048 recompute"
        failed(mean, f"{name}, mean")
        failed(median, f"{name}, median")
        cost = (mean["tokens_per_s"] / median["tokens_per_s"] - 1
                if tps(mean) and tps(median) else None)
        print()
        print("| robust aggregation | mean tok/s | median tok/s | mean step s | median step s | "
              f"median's cost in step time (target <= {ROBUST_COST_TARGET:.0%}) | engine peak GiB "
              f"per GPU, mean / median |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        costs = verdict(None if cost is None else f"{cost:+.2%}",
                        cost is not None and cost <= ROBUST_COST_TARGET)
        of = lambda r, k, f: fmt((r or {}).get(k), f)
        print(f"| {name} | {fmt(tps(mean), ',.0f')} | {fmt(tps(median), ',.0f')} | "
              f"{of(mean, 'step_s', '.3f')} | {of(median, 'step_s', '.3f')} | {costs} | "
              f"{of(mean, 'engine_peak_gib', '.1f')} / {of(median, 'engine_peak_gib', '.1f')} |")
    return 1 if missing else 0


if len(sys.argv) > 1 and sys.argv[1] == "--ddp":
    sys.exit(ddp(sys.argv[2], sys.argv[3:]))
# issue 12: attention on Hopper, TFLOP/s (causal FLOPs), and faster than cuDNN in the same call
ATTN_TARGET = {"fwd": 450.0, "bwd": 300.0}


def attention_vs_cudnn(ops_path, anchors_path):
    """Our attention kernels (bench_ops lines 'attention_fwd/flash B=.. S=..', TFLOP/s column)
    beside torch SDPA's cuDNN backend from torch_ops_baseline.py, same shapes, same call."""
    import re
    ours = {}
    for line in open(ops_path):
        m = re.match(r"attention_(fwd|bwd)/(flash|flash_mma) B=(\d+) S=(\d+) H=32 KH=8 D=128 on cuda"
                     r"\S*\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            ours[(m.group(1), m.group(2), int(m.group(3)), int(m.group(4)))] = float(m.group(6))
    ref = json.load(open(anchors_path)).get("attention", [])
    cudnn = {(r["B"], r["S"]): r for r in ref if r.get("backend") == "cudnn" and "error" not in r}
    print("| shape | pass | lora4j TFLOP/s | mma.sync TFLOP/s | cuDNN TFLOP/s | lora4j / cuDNN | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (B, S) in sorted(set((k[2], k[3]) for k in ours)):
        for d in ("fwd", "bwd"):
            t = ours.get((d, "flash", B, S))
            if t is None:
                continue
            mma = ours.get((d, "flash_mma", B, S))
            c = cudnn.get((B, S), {}).get(d + "_tflops")
            ratio = f"{t / c:.2f}x" if c else "-"
            ok = t >= ATTN_TARGET[d] and (c is None or t > c)
            print(f"| {B} x {S} | {d} | {t:.0f} | {mma:.0f} | "
                  f"{c:.0f} | {ratio} | >= {ATTN_TARGET[d]:g} and above cuDNN: "
                  f"{'met' if ok else 'not met'} |" if mma is not None and c is not None else
                  f"| {B} x {S} | {d} | {t:.0f} | {mma if mma is not None else '-'} | "
                  f"{c if c is not None else '-'} | {ratio} | - |")
    return 0


def attention_sustained(path):
    """Ours beside cuDNN with both timed alike (attention_sustained.py: one process, each side
    held at the power cap launch after launch): mean time a call over the rounds, TFLOP/s, the
    ratio and the issue's target. This is the table the "faster than cuDNN" target is read from:
    a side timed in short bursts runs at a higher clock than one timed sustained."""
    rows = [json.loads(l) for l in open(path) if l.startswith("{")]
    by = {}
    for r in rows:
        by.setdefault((r["B"], r["S"], r["pass"], r["side"]), []).append(r)
    print("| shape | pass | lora4j ms (TFLOP/s) | cuDNN ms (TFLOP/s) | lora4j / cuDNN | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (B, S, d) in sorted({k[:3] for k in by}, key=lambda k: (k[1], k[0], ("fwd", "bwd").index(k[2]))):
        o, c = by.get((B, S, d, "ours")), by.get((B, S, d, "cudnn"))
        if not o or not c:
            continue
        om, cm = (statistics.mean(r["ms"] for r in x) for x in (o, c))
        ot, ct = (statistics.mean(r["tflops"] for r in x) for x in (o, c))
        ok = ot >= ATTN_TARGET[d] and om < cm
        print(f"| {B} x {S} | {d} | {om:.4f} ({ot:.0f}) | {cm:.4f} ({ct:.0f}) | {cm / om:.2f}x | "
              f">= {ATTN_TARGET[d]:g} and above cuDNN: {'met' if ok else 'not met'} |")
    return 0


def held_ab(path):
    """Variants of one op held alike (attention_held.py), each against the one labelled main."""
    by = {}
    for line in open(path):
        if line.startswith("{"):
            r = json.loads(line)
            by.setdefault((r["op"], r["S"], r["B"]), {}).setdefault(r["variant"], []).append(r)
    print("| op | shape | variant | rounds, ms | mean, ms | / main | W | SM MHz | mJ a call |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    status = 0
    for (op, S, B) in sorted(by):
        variants = by[(op, S, B)]
        if "main" not in variants:
            print(f"| {op} | {B} x {S} | no variant labelled main | | | | | | |")
            status = 1
            continue
        base = statistics.mean(r["ms"] for r in variants["main"])
        for v in sorted(variants, key=lambda v: (v != "main", v)):
            rs = variants[v]
            m = statistics.mean(r["ms"] for r in rs)
            print(f"| {op} | {B} x {S} | {v} | {' / '.join(str(r['ms']) for r in rs)} | {m:.4f} | "
                  f"{m / base:.3f} | {_reading_mean(rs, 'watts', 0)} | "
                  f"{_reading_mean(rs, 'sm_mhz', 0)} | {_reading_mean(rs, 'mj_per_call', 1)} |")
    return status


def _reading_mean(rows, key, digits):
    """The mean of a field the rows may lack (no nvidia-smi reading), "-" when none has it."""
    xs = [r[key] for r in rows if r.get(key) is not None]
    return f"{statistics.mean(xs):.{digits}f}" if xs else "-"


if len(sys.argv) > 1 and sys.argv[1] == "--held-ab":
    sys.exit(held_ab(sys.argv[2]))
if len(sys.argv) > 1 and sys.argv[1] == "--attention":
    sys.exit(attention_vs_cudnn(sys.argv[2], sys.argv[3]))
if len(sys.argv) > 1 and sys.argv[1] == "--attention-sustained":
    sys.exit(attention_sustained(sys.argv[2]))
if len(sys.argv) > 1 and sys.argv[1] == "--qlora":
    sys.exit(qlora(sys.argv[2]))
if len(sys.argv) > 1 and sys.argv[1] == "--cli":
    sys.exit(cli_vs_reference(sys.argv[2], sys.argv[3]))

runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{") and '"train_step"' in l]
# A setting timed more than once in the call (scripts/gpu/run.sh times the engine before and after
# the command line): one row, the mean of its runs, with each run kept in "each".
by_setting = {}  # insertion-ordered: the settings in the order first timed
for r in runs:
    o = by_setting.setdefault((r["B"], r["S"], r["recompute"], r.get("targets"), r.get("offload", 0)),
                              dict(r, each=[]))
    o["each"].append(r["tokens_per_s"])
    o["peak_gib"] = max(o["peak_gib"], r["peak_gib"])
for o in by_setting.values():
    o["tokens_per_s"] = sum(o["each"]) / len(o["each"])
ours = list(by_setting.values())
ref = json.load(open(sys.argv[2]))
ceiling = ref["bf16_matmul_tflops"]


def flops_per_token(seq, h=4096, L=32, I=14336, V=32000, kvd=1024):
    # The reference script's count: 4 x frozen linear parameters + attention (backward 2.5x).
    lin = L * (h * h * 2 + h * kvd * 2 + 3 * h * I) + h * V
    return 4 * lin + L * 2 * 2 * seq * h / 2 * 3.5


print(f"GPU {ref['gpu']}; bf16 matmul ceiling {ceiling:.0f} TFLOP/s, copy {ref['copy_TBps']:.2f} TB/s")
print(f"{'setting':<28}{'lora4j tok/s':>14}{'GiB':>7}{'MFU':>6}{'ref tok/s':>11}{'GiB':>7}{'MFU':>6}{'ratio':>7}")

for r in ours:
    gc = r["recompute"] >= 1
    match = [x for x in ref["runs"] if x["bs"] == r["B"] and x["seq"] == r["S"] and x["grad_ckpt"] == gc]
    mfu = r["tokens_per_s"] * flops_per_token(r["S"]) / (ceiling * 1e12)
    name = f"{r['B']} x {r['S']} {mode_name(r['recompute'])}{' offload' if r.get('offload') else ''}"
    if match and "tokens_per_s" in match[0]:
        m = match[0]
        print(f"{name:<28}{r['tokens_per_s']:>14,.0f}{r['peak_gib']:>7.1f}{mfu:>6.0%}"
              f"{m['tokens_per_s']:>11,.0f}{m['peak_mem_GiB']:>7.1f}{m['mfu_vs_measured_ceiling']:>6.0%}"
              f"{r['tokens_per_s'] / m['tokens_per_s']:>6.2f}x")
    else:
        print(f"{name:<28}{r['tokens_per_s']:>14,.0f}{r['peak_gib']:>7.1f}{mfu:>6.0%}{'(none)':>11}")


if len(sys.argv) > 3:
    cli = [json.loads(l) for l in open(sys.argv[3]) if l.startswith("{") and '"cli_train"' in l
           and not json.loads(l).get("load_in_4bit") and single(json.loads(l))]
    print()
    print("the user's path: lora4j train (command line) vs the engine benchmark and the reference")
    def cli_name(c):
        return (f"{c['B']} x {c['S']} {mode_name(c['recompute'])}{' offload' if c.get('offload') else ''}"
                + rows_suffix(c))

    W = max([28] + [len(cli_name(c)) + 2 for c in cli])
    print(f"{'setting':<{W}}{'train tok/s':>13}{'GiB':>7}{'MFU':>6}{'engine':>9}{'train/eng':>10}"
          f"{'ref tok/s':>11}{'train/ref':>10}")
    for c in cli:
        gc = c["recompute"] >= 1
        name = cli_name(c)
        tps = c.get("tokens_per_s")
        if not tps:
            print(f"{name:<{W}}{'failed':>13}  {c.get('error', '')} {c.get('tail', '')[-200:]}")
            continue
        # the engine benchmark and the reference train full rows: padded rows get neither ratio,
        # nor an MFU (their real tokens attend over shorter rows than S)
        full = full_rows(c)
        eng = [r for r in ours if r["B"] == c["B"] and r["S"] == c["S"] and r["recompute"] == c["recompute"]
               and r.get("targets", 127) == 127  # the command line trains all seven
               and r.get("offload", 0) == c.get("offload", 0)] if full else []
        m = [x for x in ref["runs"] if x["bs"] == c["B"] and x["seq"] == c["S"] and x["grad_ckpt"] == gc
             and "tokens_per_s" in x] if full else []
        mfu = f"{tps * flops_per_token(c['S']) / (ceiling * 1e12):>6.0%}" if full else f"{'-':>6}"
        # a setting the engine benchmark or the reference did not run this call shows "-"
        e = f"{eng[0]['tokens_per_s']:>9,.0f}{tps / eng[0]['tokens_per_s']:>9.3f}x" if eng \
            else f"{'-':>9}{'-':>10}"
        rt = f"{m[0]['tokens_per_s']:>11,.0f}{tps / m[0]['tokens_per_s']:>9.2f}x" if m \
            else f"{'-':>11}{'-':>10}"
        print(f"{name:<{W}}{tps:>13,.0f}{c.get('memory_gib', float('nan')):>7.1f}{mfu}{e}{rt}")
        if eng and len(eng[0]["each"]) > 1:
            print("    engine runs: " + ", ".join(f"{x:,.0f}" for x in eng[0]["each"])
                  + " tokens/s (train/engine " + ", ".join(f"{tps / x:.3f}" for x in eng[0]["each"])
                  + ")")
        if c.get("breakdown"):
            print("    " + c["breakdown"])
