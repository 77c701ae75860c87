#!/usr/bin/env python3
"""Prints lora4j's whole-step results next to the reference stack's from the same GPU call.
Usage: compare.py bench_reference.jsonl hf_baseline.json [cli_bench.jsonl]
With cli_bench.jsonl (benchmarks/cli_bench.py: `lora4j train`, the user's path) a second table
gives the command line's tokens/s beside the engine's and the reference's."""
import json
import sys

ours = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{") and '"train_step"' in l]
ref = json.load(open(sys.argv[2]))
ceiling = ref["bf16_matmul_tflops"]


def flops_per_token(seq, h=4096, L=32, I=14336, V=32000, kvd=1024):
    # The reference script's count: 4 x frozen linear parameters + attention (backward 2.5x).
    lin = L * (h * h * 2 + h * kvd * 2 + 3 * h * I) + h * V
    return 4 * lin + L * 2 * 2 * seq * h / 2 * 3.5


print(f"GPU {ref['gpu']}; bf16 matmul ceiling {ceiling:.0f} TFLOP/s, copy {ref['copy_TBps']:.2f} TB/s")
print(f"{'setting':<28}{'lora4j tok/s':>14}{'GiB':>7}{'MFU':>6}{'ref tok/s':>11}{'GiB':>7}{'MFU':>6}{'ratio':>7}")
for r in ours:
    gc = r["recompute"] == 1
    match = [x for x in ref["runs"] if x["bs"] == r["B"] and x["seq"] == r["S"] and x["grad_ckpt"] == gc]
    mfu = r["tokens_per_s"] * flops_per_token(r["S"]) / (ceiling * 1e12)
    name = f"{r['B']} x {r['S']} {'recompute' if gc else 'no recompute'}"
    if match and "tokens_per_s" in match[0]:
        m = match[0]
        print(f"{name:<28}{r['tokens_per_s']:>14,.0f}{r['peak_gib']:>7.1f}{mfu:>6.0%}"
              f"{m['tokens_per_s']:>11,.0f}{m['peak_mem_GiB']:>7.1f}{m['mfu_vs_measured_ceiling']:>6.0%}"
              f"{r['tokens_per_s'] / m['tokens_per_s']:>6.2f}x")
    else:
        print(f"{name:<28}{r['tokens_per_s']:>14,.0f}{r['peak_gib']:>7.1f}{mfu:>6.0%}{'(none)':>11}")


if len(sys.argv) > 3:
    cli = [json.loads(l) for l in open(sys.argv[3]) if l.startswith("{") and '"cli_train"' in l]
    print()
    print("the user's path: lora4j train (command line) vs the engine benchmark and the reference")
    print(f"{'setting':<28}{'train tok/s':>13}{'GiB':>7}{'MFU':>6}{'engine':>9}{'train/eng':>10}"
          f"{'ref tok/s':>11}{'train/ref':>10}")
    for c in cli:
        gc = c["recompute"] == 1
        name = f"{c['B']} x {c['S']} {'recompute' if gc else 'no recompute'}"
        tps = c.get("tokens_per_s")
        if not tps:
            print(f"{name:<28}{'failed':>13}  {c.get('error', '')} {c.get('tail', '')[-200:]}")
            continue
        eng = [r for r in ours if r["B"] == c["B"] and r["S"] == c["S"] and r["recompute"] == c["recompute"]]
        m = [x for x in ref["runs"] if x["bs"] == c["B"] and x["seq"] == c["S"] and x["grad_ckpt"] == gc
             and "tokens_per_s" in x]
        mfu = tps * flops_per_token(c["S"]) / (ceiling * 1e12)
        e = eng[0]["tokens_per_s"] if eng else float("nan")
        rt = m[0]["tokens_per_s"] if m else float("nan")
        print(f"{name:<28}{tps:>13,.0f}{c.get('memory_gib', float('nan')):>7.1f}{mfu:>6.0%}{e:>9,.0f}"
              f"{tps / e:>9.3f}x{rt:>11,.0f}{tps / rt:>9.2f}x")
        if c.get("breakdown"):
            print("    " + c["breakdown"])
