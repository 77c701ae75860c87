#!/usr/bin/env python3
"""Checks benchmarks/ab.py (the A/B summary of bench_cuda's labelled train_step lines) on a
hand-made log: grouping by label and setting, pooled step medians, energy, the verdict against
the runs' spread, and lines it must skip. Run: python3 benchmarks/test_ab.py"""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ab  # noqa: E402


def step(s, steps, j=None, B=4, S=2048, rc=0, off=0):
    extra = f',"j_per_step":{j},"mean_w":690,"sm_mhz":1755,"clock_limits":"0x4"' if j else ""
    arr = ",".join(str(t) for t in steps)
    return (f'{{"bench":"train_step","layers":32,"B":{B},"S":{S},"recompute":{rc},'
            f'"targets":127,"offload":{off},"s":{s},"tokens_per_s":1,"peak_gib":58.2,'
            f'"loss":10.6{extra},"steps_s":[{arr}]}}')


LOG = "\n".join([
    "main build rc=0 at 45 s",
    "main " + step(0.470, [0.469, 0.470, 0.471], j=330.0),
    "sd " + step(0.460, [0.459, 0.460, 0.462], j=322.0),
    "df " + step(0.4695, [0.469, 0.4695, 0.470], j=329.5),
    "main " + step(0.472, [0.471, 0.472, 0.473], j=331.0),
    "sd " + step(0.461, [0.460, 0.461, 0.462], j=323.0),
    "df " + step(0.4705, [0.470, 0.4705, 0.471], j=330.5),
    "main " + step(0.600, [0.600], rc=3, off=1),  # another setting, no NVML fields
    "sd " + step(0.590, [0.590], rc=3, off=1),
    '{"bench":"train_step","s":1.0}',  # no label: skipped
    "main {not json",
    "noise line without json",
])


def pair(ab_spec, ratio_s, q_s, faster, p_s, ratio_j, q_j, less, p_j, n=10, rc=0, off=0):
    return (f'{{"bench":"train_step_pair","ab":"{ab_spec}","layers":32,"B":4,"S":2048,'
            f'"recompute":{rc},"targets":127,"offload":{off},"pairs":{n},"a_s":0.4650,'
            f'"b_s":0.4640,"ratio_s":{ratio_s},"ratio_s_q":[{q_s[0]},{q_s[1]}],'
            f'"b_faster":{faster},"p_sign_s":{p_s},"a_j":335.0,"b_j":333.0,"ratio_j":{ratio_j},'
            f'"ratio_j_q":[{q_j[0]},{q_j[1]}],"b_less_energy":{less},"p_sign_j":{p_j},'
            f'"clock_limits":"0x4","a_peak_gib":58.21,"b_peak_gib":58.23,"a_loss":10.6,'
            f'"b_loss":10.6}}')


PAIRS = "\n".join([
    # b 0.3% faster in 9 of 10 pairs with the quartiles below 1; energy not resolved
    pair("LORA4J_DOWN_DX_FOLD=0", 0.997, (0.995, 0.999), 9, 0.0215, 0.999, (0.996, 1.002), 6,
         0.754),
    # b slower in every pair (energy too)
    "fold " + pair("LORA4J_X=1", 1.004, (1.002, 1.006), 0, 0.002, 1.005, (1.003, 1.007), 0,
                   0.002, rc=3, off=1),
    # p below 0.05 but the quartiles straddle 1: not resolved
    pair("LORA4J_Y=0", 0.999, (0.997, 1.001), 8, 0.039, 1.0, (0.999, 1.001), 5, 1.0),
    '{"bench":"train_step_pair","ab":"LORA4J_Z=0","B":4,"S":2048,"recompute":0,"offload":0,'
    '"error":"engine b: lora4j_engine_create: out of memory"}',
    '{"bench":"train_step_pair", broken',
    # no NVML: the energy fields are null (bench_cuda prints JSON null for NaN)
    pair("LORA4J_W=0", 1.0, (0.999, 1.001), 5, 1.0, "null", ("null", "null"), 0, 1.0),
])


class AbTest(unittest.TestCase):
    def setUp(self):
        fd, self.path = tempfile.mkstemp(suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(LOG + "\n")

    def tearDown(self):
        os.unlink(self.path)

    def test_groups_and_summary(self):
        g = ab.read(self.path)
        self.assertEqual(len(g), 5)  # main, sd, df at 4 x 2048; main, sd with recompute
        s = ab.summary(g[("main", (4, 2048, 0, 0, 0, 0, 0))])
        self.assertEqual(s["runs"], 2)
        self.assertAlmostEqual(s["median_s"], 0.471)
        self.assertAlmostEqual(s["range_s"], 0.002)
        self.assertAlmostEqual(s["pooled_s"], 0.471)  # median of six steps
        self.assertAlmostEqual(s["j"], 330.5)
        self.assertIsNone(ab.summary(g[("main", (4, 2048, 3, 1, 0, 0, 0))])["j"])

    def test_verdicts(self):
        out = ab.report(ab.read(self.path), "main")
        # sd: pooled 0.4605 against 0.471 = -2.23%, beyond a 0.42% spread (2 ms of 471);
        # energy 322.5 against 330.5 J = -2.42%
        self.assertIn("sd 4 x 2048, no recompute: time -2.23%, energy -2.42% "
                      "(spread 0.42%: beyond the runs' spread)", out)
        # df: 0.470 against 0.471 = -0.21%, within the spread; 330 against 330.5 J = -0.15%
        self.assertIn("df 4 x 2048, no recompute: time -0.21%, energy -0.15% "
                      "(spread 0.42%: within the runs' spread)", out)
        # no energy on either side: no energy figure
        self.assertIn("sd 4 x 2048, recompute 3 offloaded: time -1.67% (spread 0.00%: "
                      "one run on a side: no spread to judge by)", out)
        self.assertNotIn("main 4 x 2048, no recompute: time", out)

    def test_pairs(self):
        fd, path = tempfile.mkstemp(suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(PAIRS + "\n")
        try:
            pairs = ab.read_pairs(path)
            self.assertEqual(len(pairs), 5)  # the broken line skipped
            self.assertEqual(pairs[1][0], "fold")
            out = ab.report_pairs(pairs)
            self.assertIn("b = LORA4J_DOWN_DX_FOLD=0, 4 x 2048, no recompute: 10 pairs, "
                          "time b/a -0.30% (quartiles -0.50% to -0.10%), b faster in 9 of 10, "
                          "p 0.021: b lower; energy b/a -0.10% (quartiles -0.40% to +0.20%), "
                          "b lower in 6 of 10, p 0.754: no difference resolved", out)
            self.assertIn("fold b = LORA4J_X=1, 4 x 2048, recompute 3 offloaded: 10 pairs, "
                          "time b/a +0.40%", out)
            self.assertIn("p 0.002: b higher; energy b/a +0.50%", out)
            self.assertIn("b = LORA4J_Y=0, 4 x 2048, no recompute: 10 pairs, time b/a -0.10% "
                          "(quartiles -0.30% to +0.10%), b faster in 8 of 10, p 0.039: "
                          "no difference resolved", out)
            self.assertIn("b = LORA4J_Z=0, 4 x 2048, no recompute: not measured (engine b: "
                          "lora4j_engine_create: out of memory)", out)
            self.assertIn("b = LORA4J_W=0, 4 x 2048, no recompute: 10 pairs, time b/a +0.00% "
                          "(quartiles -0.10% to +0.10%), b faster in 5 of 10, p 1.000: no "
                          "difference resolved; energy not measured (no NVML)", out)
            # a log of pair lines only is summarized, not refused
            r = subprocess.run([sys.executable, os.path.join(HERE, "ab.py"), path],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("paired runs (two engines in one process, steps alternated):", r.stdout)
            self.assertNotIn("against main:", r.stdout)
        finally:
            os.unlink(path)

    def test_energy_too_spread_is_not_read(self):
        r = {"ab": "X=0", "B": 4, "S": 2048, "pairs": 24, "ratio_s": 1.0, "ratio_s_q": [0.99, 1.01],
             "b_faster": 12, "p_sign_s": 1.0, "ratio_j": 0.86, "ratio_j_q": [0.81, 0.98],
             "b_less_energy": 24, "p_sign_j": 0.0001}
        out = ab.report_pairs([("", r)])
        self.assertIn("p 0.000: not read (quartiles 17% apart)", out)
        r["ratio_j_q"] = [0.85, 0.90]
        self.assertIn("p 0.000: b lower", ab.report_pairs([("", r)]))

    def test_masked_setting_is_named(self):
        key = ab.setting_key({"B": 4, "S": 2048, "recompute": 0, "offload": 0, "masked": 0.5})
        self.assertEqual(ab.setting_name(key), "4 x 2048, no recompute, 50% of labels -100")
        self.assertEqual(ab.setting_name(ab.setting_key({"B": 4, "S": 2048})),
                         "4 x 2048, no recompute")
        key = ab.setting_key({"B": 4, "S": 2048, "padded": 0.4})
        self.assertEqual(ab.setting_name(key), "4 x 2048, no recompute, rows right-padded by up to 40%")
        key = ab.setting_key({"B": 4, "S": 2048, "recompute": 3, "offload": 1, "packed": 300})
        self.assertEqual(ab.setting_name(key), "4 x 2048, recompute 3 offloaded, rows packed with "
                         "examples of ~300 tokens")

    def test_command_line(self):
        r = subprocess.run([sys.executable, os.path.join(HERE, "ab.py"), self.path, "--ref", "sd"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("against sd:", r.stdout)
        self.assertIn("main 4 x 2048, no recompute: time +2.28%", r.stdout)
        empty = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
        empty.write("nothing here\n")
        empty.close()
        try:
            r = subprocess.run([sys.executable, os.path.join(HERE, "ab.py"), empty.name],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("no labelled train_step lines", r.stdout)
        finally:
            os.unlink(empty.name)


if __name__ == "__main__":
    unittest.main()
