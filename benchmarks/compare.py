#!/usr/bin/env python3
"""Prints lora4j's whole-step results next to the reference stack's from the same GPU call.
Usage: compare.py bench_reference.jsonl hf_baseline.json"""
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
