#!/usr/bin/env python3
"""Checks benchmarks/phases.py (the per-op times of bench_cuda's step, LORA4J_PHASE_TIMES): which
group each op name the CUDA engine marks falls in, and the tables it prints from a hand-made pair
of files. Run: python3 benchmarks/test_phases.py"""
import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import phases  # noqa: E402


class GroupTest(unittest.TestCase):
    def test_names(self):
        want = {
            "attention forward": "attention (forward + backward)",
            "attention backward, segment runs": "attention (forward + backward)",
            "mlp.down_proj dX": "frozen GEMMs, input gradients",
            "self_attn.qkv dX": "frozen GEMMs, input gradients",
            "mlp.gate_proj": "frozen GEMMs, forward",
            "self_attn.q_proj": "frozen GEMMs, forward",
            # lora_dy_pair's per-projection names: LoRA, not the frozen forward their module names
            "dy B + dLoRA_B, mlp.gate_proj": "LoRA GEMMs",
            "dy B + dLoRA_B, self_attn.k_proj": "LoRA GEMMs",
            "dLoRA_A": "LoRA GEMMs",
            "lora_A forward": "LoRA GEMMs",
            "dX through LoRA": "LoRA GEMMs",
            "lm_head backward": "LM head + loss",
            "lm head loss kernels": "LM head + loss",
            "swiglu backward": "element-wise kernels (norms, RoPE, SwiGLU, embedding, checkpoints)",
            "rmsnorm forward": "element-wise kernels (norms, RoPE, SwiGLU, embedding, checkpoints)",
        }
        for name, group in want.items():
            self.assertEqual(phases.group(name), group, name)


class TablesTest(unittest.TestCase):
    def run_main(self, bench, times):
        with tempfile.TemporaryDirectory() as d:
            b, t = os.path.join(d, "bench.jsonl"), os.path.join(d, "phases.jsonl")
            with open(b, "w") as f:
                f.write("\n".join(json.dumps(x) for x in bench) + "\n")
            with open(t, "w") as f:
                f.write("\n".join(json.dumps(x) for x in times) + "\n")
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = phases.main(b, t)
            return rc, out.getvalue()

    def test_one_setting(self):
        bench = [{"bench": "train_step", "layers": 2, "B": 4, "S": 2048, "recompute": 0, "s": 0.0300}]
        times = [{"phase_times": "(step)", "ms_per_step": 30.0, "steps": 6},
                 {"phase_times": "mlp.gate_proj", "ms_per_step": 20.0, "calls_per_step": 2,
                  "share": 0.667},
                 {"phase_times": "dy B + dLoRA_B, mlp.gate_proj", "ms_per_step": 6.0,
                  "calls_per_step": 2, "share": 0.2},
                 {"phase_times": "dy B + dLoRA_B, self_attn.q_proj", "ms_per_step": 4.0,
                  "calls_per_step": 2, "share": 0.133}]
        rc, out = self.run_main(bench, times)
        self.assertEqual(rc, 0)
        self.assertIn("4 x 2048, no recompute, 2 layers: 30.0 ms per step with events "
                      "(30.0 ms without, bench_cuda), 6 steps", out)
        lora = [l for l in out.splitlines() if l.startswith("LoRA GEMMs")]
        self.assertEqual(len(lora), 1)
        self.assertEqual(lora[0].split()[2:4], ["10.0", "5.00"])  # 6 + 4 ms, per layer 5
        frozen = [l for l in out.splitlines() if l.startswith("frozen GEMMs, forward")]
        self.assertEqual(frozen[0].split()[3:5], ["20.0", "10.00"])

    def test_blocks_must_match_settings(self):
        bench = [{"bench": "train_step", "layers": 2, "B": 4, "S": 2048, "recompute": 0, "s": 0.03},
                 {"bench": "train_step", "layers": 2, "B": 4, "S": 2048, "recompute": 1, "s": 0.04}]
        times = [{"phase_times": "(step)", "ms_per_step": 30.0, "steps": 6}]
        rc, out = self.run_main(bench, times)
        self.assertEqual(rc, 1)
        self.assertIn("1 blocks of phase times but 2 train_step lines", out)


if __name__ == "__main__":
    unittest.main()
