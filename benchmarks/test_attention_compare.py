#!/usr/bin/env python3
"""Checks, without a GPU, compare.py --attention-sustained (the attention's contract table: ours
beside cuDNN, both timed sustained by reference/attention_sustained.py) on hand-made lines: the
mean over rounds, the ratio (cuDNN's time over ours), the target's verdict (>= 450 / 300 TFLOP/s
and faster than cuDNN), the order of the rows, and a shape with one side missing left out.
Run: python3 benchmarks/test_attention_compare.py"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

COMPARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare.py")


def line(B, S, d, side, rnd, ms, tf):
    return json.dumps({"B": B, "S": S, "pass": d, "side": side, "round": rnd, "ms": ms, "tflops": tf})


class AttentionSustained(unittest.TestCase):
    def table(self, lines):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("\n".join(lines) + "\nnot json\n")
        try:
            out = subprocess.run([sys.executable, COMPARE, "--attention-sustained", f.name],
                                 capture_output=True, text=True, check=True).stdout
        finally:
            os.unlink(f.name)
        return [l for l in out.splitlines() if l.startswith("| ") and "---" not in l][1:]

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


if __name__ == "__main__":
    unittest.main()
