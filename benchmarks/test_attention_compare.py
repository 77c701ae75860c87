#!/usr/bin/env python3
"""Checks, without a GPU, compare.py --attention-sustained (the attention's contract table: ours
beside cuDNN, both timed sustained by reference/attention_sustained.py) on hand-made lines: the
mean over rounds, the ratio (cuDNN's time over ours), the target's verdict (>= 450 / 300 TFLOP/s
and faster than cuDNN), the order of the rows, and a shape with one side missing left out; and
compare.py --held-ab (kernel variants held by attention_held.py): each variant's mean and ratio
to main's, power, clock and energy means, a missing nvidia-smi reading shown as "-", and exit
status 1 when an op and shape has no variant labelled main.
Run: python3 benchmarks/test_attention_compare.py"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

COMPARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare.py")


def run_compare(flag, text):
    """compare.py FLAG on a file holding text: its exit status and its table's rows (header and
    separator lines left out)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write(text)
    try:
        p = subprocess.run([sys.executable, COMPARE, flag, f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    rows = [l for l in p.stdout.splitlines() if l.startswith("| ") and "---" not in l][1:]
    return p.returncode, rows


def line(B, S, d, side, rnd, ms, tf):
    return json.dumps({"B": B, "S": S, "pass": d, "side": side, "round": rnd, "ms": ms, "tflops": tf})


class AttentionSustained(unittest.TestCase):
    def table(self, lines):
        rc, rows = run_compare("--attention-sustained", "\n".join(lines) + "\nnot json\n")
        self.assertEqual(rc, 0)
        return rows

    def test_rows(self):
        rows = self.table([
            line(4, 2048, "fwd", "ours", 1, 0.28, 490), line(4, 2048, "fwd", "ours", 2, 0.30, 458),
            line(4, 2048, "fwd", "cudnn", 1, 0.30, 458), line(4, 2048, "fwd", "cudnn", 2, 0.31, 443),
            line(4, 2048, "bwd", "ours", 1, 1.0, 343), line(4, 2048, "bwd", "cudnn", 1, 0.95, 361),
            line(1, 8192, "fwd", "ours", 1, 0.99, 554), line(1, 8192, "bwd", "cudnn", 1, 2.9, 472),
        ])
        self.assertEqual(len(rows), 2, rows)  # 1 x 8192 has no pair on either pass
        fwd, bwd = rows
        self.assertIn("| 4 x 2048 | fwd | 0.2900 (474) | 0.3050 (450) | 1.05x |", fwd)
        self.assertTrue(fwd.endswith("above cuDNN: met |"), fwd)
        self.assertIn("| 4 x 2048 | bwd | 1.0000 (343) | 0.9500 (361) | 0.95x |", bwd)
        self.assertTrue(bwd.endswith("above cuDNN: not met |"), bwd)

    def test_fast_but_under_the_floor(self):
        rows = self.table([line(4, 2048, "bwd", "ours", 1, 1.0, 290),
                           line(4, 2048, "bwd", "cudnn", 1, 1.1, 264)])
        self.assertEqual(len(rows), 1)
        self.assertIn("1.10x", rows[0])
        self.assertTrue(rows[0].endswith("not met |"), rows[0])


def held(variant, rnd, S, ms, watts=690.0, mhz=1700.0, op="attention_bwd"):
    return json.dumps({"variant": variant, "op": op, "round": rnd, "B": 4 if S == 2048 else 1,
                       "S": S, "ms": ms, "tflops": 1.0, "watts": watts, "sm_mhz": mhz,
                       "mj_per_call": round(watts * ms, 1) if watts else None})


class HeldAB(unittest.TestCase):
    def run_table(self, lines):
        return run_compare("--held-ab", "\n".join(lines) + "\n")

    def test_ratios_and_means(self):
        rc, rows = self.run_table([
            held("x", 1, 8192, 3.3), held("main", 1, 2048, 1.0, 700, 1800),
            held("x", 1, 2048, 0.98, 690, 1780), held("main", 2, 2048, 1.02, 680, 1760),
            held("x", 2, 2048, 0.96, None, None), held("main", 1, 8192, 3.0),
        ])
        self.assertEqual(rc, 0)
        self.assertEqual(len(rows), 4, rows)
        self.assertEqual(rows[0], "| attention_bwd | 4 x 2048 | main | 1.0 / 1.02 | 1.0100 | 1.000 "
                                  "| 690 | 1780 | 696.8 |")
        # x: mean 0.97 ms, 0.960 of main's; power, clock and energy from its one reading
        self.assertEqual(rows[1], "| attention_bwd | 4 x 2048 | x | 0.98 / 0.96 | 0.9700 | 0.960 "
                                  "| 690 | 1780 | 676.2 |")
        self.assertTrue(rows[2].startswith("| attention_bwd | 1 x 8192 | main |"), rows[2])
        self.assertIn("| 3.3000 | 1.100 |", rows[3])

    def test_no_main(self):
        rc, rows = self.run_table([held("main", 1, 2048, 1.0),
                                   held("x", 1, 2048, 0.3, op="attention_fwd")])
        self.assertEqual(rc, 1)
        self.assertIn("| attention_bwd | 4 x 2048 | main |", rows[0])
        self.assertIn("| attention_fwd | 4 x 2048 | no variant labelled main |", rows[1])


if __name__ == "__main__":
    unittest.main()
