#!/usr/bin/env python3
"""Where a training step's GPU time goes, from bench_cuda run with LORA4J_PHASE_TIMES.
Usage: phases.py bench.jsonl phases.jsonl
bench.jsonl: bench_cuda's output (its "train_step" lines name the settings, in order);
phases.jsonl: the engine's lines, one block per engine (each begins with its "(step)" line), in
the same order. Prints, per setting, every op (ms per step, ms per layer, calls per step, share)
and the ops grouped: frozen GEMMs forward, frozen GEMMs' input gradients, LoRA GEMMs, attention,
element-wise kernels, LM head, with the step's total. The intervals include any launch gap before
an op, so a gap shows up in the op after it."""
import json
import sys


def group(name):
    if name.startswith("attention"):
        return "attention (forward + backward)"
    if name.endswith(" dX") or name.endswith(" dX + swiglu backward"):
        # (the fused down input gradient holds the SwiGLU backward in its epilogue)
        return "frozen GEMMs, input gradients"
    if name.startswith(("self_attn.", "mlp.")):
        return "frozen GEMMs, forward"
    if "lora" in name.lower() or name in ("dy B", "dX through LoRA"):
        return "LoRA GEMMs"
    if name.startswith("lm") or "lm_head" in name or "loss" in name:
        return "LM head + loss"
    return "element-wise kernels (norms, RoPE, SwiGLU, embedding, checkpoints)"


def blocks(lines):
    out = []
    for r in lines:
        if r.get("phase_times") == "(step)":
            out.append({"step": r, "ops": []})
        elif out and "phase_times" in r:
            out[-1]["ops"].append(r)
    return out


def main(bench_path, phases_path):
    settings = [json.loads(l) for l in open(bench_path) if l.startswith("{") and '"train_step"' in l]
    got = blocks([json.loads(l) for l in open(phases_path) if l.strip().startswith("{")])
    if not got:
        print(f"phases.py: no LORA4J_PHASE_TIMES lines in {phases_path}")
        return 1
    if len(got) != len(settings):
        print(f"phases.py: {len(got)} blocks of phase times but {len(settings)} train_step lines")
        return 1
    for s, b in zip(settings, got):
        layers = s.get("layers", 1)
        step = b["step"]["ms_per_step"]
        print(f"\n{s['B']} x {s['S']}, {'recompute' if s['recompute'] else 'no recompute'}, "
              f"{layers} layers: {step:.1f} ms per step with events "
              f"({s['s'] * 1e3:.1f} ms without, bench_cuda), {b['step']['steps']} steps")
        sums = {}
        for o in b["ops"]:
            g = group(o["phase_times"])
            sums[g] = sums.get(g, 0) + o["ms_per_step"]
        print(f"{'group':<70}{'ms/step':>9}{'ms/layer':>10}{'share':>7}")
        for g, ms in sorted(sums.items(), key=lambda kv: -kv[1]):
            print(f"{g:<70}{ms:>9.1f}{ms / layers:>10.2f}{ms / step:>7.1%}")
        print(f"{'op':<70}{'ms/step':>9}{'ms/layer':>10}{'calls':>7}{'share':>7}")
        for o in b["ops"]:
            print(f"{o['phase_times']:<70}{o['ms_per_step']:>9.2f}{o['ms_per_step'] / layers:>10.3f}"
                  f"{o['calls_per_step']:>7.0f}{o['share']:>7.1%}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
