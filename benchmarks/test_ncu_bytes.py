#!/usr/bin/env python3
"""Checks ncu_bytes.py on hand-made Nsight Compute exports: the program's output before ncu's
header skipped, numbers with thousands separators, units scaled (ns and us, byte and Mbyte),
launches split into the two shapes by duration, medians per shape, a shape with no launch left
out, and a clear error for an export without the metrics.
Run: python3 benchmarks/test_ncu_bytes.py"""
import os
import subprocess
import sys
import tempfile
import unittest

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ncu_bytes.py")
NAMES = ["ID", "Kernel Name", "gpu__time_duration.sum", "dram__bytes_read.sum",
         "dram__bytes_write.sum", "lts__t_bytes.sum", "smsp__inst_executed.sum"]


def export(units, launches, names=NAMES):
    """An export as ncu writes it: bench output, ncu's notes, then header, units and rows."""
    q = lambda r: ",".join(f'"{v}"' for v in r)
    lines = ["op/variant shape ms/call", "attention_bwd/flash B=4 S=2048 0.9400",
             "==PROF== Disconnected from process 1", q(names), q(["", ""] + units)]
    lines += [q([str(i), "attn_bwd_sm90_kernel<128, 0>"] + l) for i, l in enumerate(launches)]
    return "\n".join(lines) + "\n"


def run(text, *args):
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        f.write(text)
    try:
        p = subprocess.run([sys.executable, TOOL, "v", f.name, *args], capture_output=True,
                           text=True)
    finally:
        os.unlink(f.name)
    return p.returncode, p.stdout.splitlines(), p.stderr


class NcuBytes(unittest.TestCase):
    UNITS = ["ns", "byte", "byte", "byte", "inst"]

    def test_two_shapes_medians(self):
        rc, out, err = run(export(self.UNITS, [
            ["734,500", "904,100,000", "468,400,000", "3,704,000,000", "224,600,000"],
            ["740,000", "910,000,000", "470,000,000", "3,710,000,000", "224,600,000"],
            ["730,000", "900,000,000", "460,000,000", "3,700,000,000", "224,600,000"],
            ["2,521,200", "1,522,200,000", "863,600,000", "12,263,000,000", "844,100,000"],
        ]))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, [
            "| v | 4 x 2048 | 3 | 0.7345 | 904.1 | 468.4 | 3.704 | 224.6 |",
            "| v | 1 x 8192 | 1 | 2.5212 | 1522.2 | 863.6 | 12.263 | 844.1 |"])

    def test_units_split_names_and_header(self):
        units = ["us", "Mbyte", "Mbyte", "Gbyte", "inst"]
        rc, out, err = run(export(units, [["900", "10", "5", "1.5", "1000000"],
                                          ["1,100", "20", "6", "2.5", "3000000"]]),
                           "--split-ms", "1.0", "--below", "short", "--above", "long", "--header")
        self.assertEqual(rc, 0, err)
        self.assertTrue(out[0].startswith("| variant | shape |"), out)
        self.assertEqual(out[2:], ["| v | short | 1 | 0.9000 | 10.0 | 5.0 | 1.500 | 1.0 |",
                                   "| v | long | 1 | 1.1000 | 20.0 | 6.0 | 2.500 | 3.0 |"])

    def test_one_shape_only(self):
        rc, out, _ = run(export(self.UNITS, [["700,000", "1", "1", "1", "1"]]))
        self.assertEqual(rc, 0)
        self.assertEqual(len(out), 1)
        self.assertIn("| 4 x 2048 | 1 |", out[0])

    def test_missing_metric_is_an_error(self):
        names = NAMES[:3] + ["l1tex__t_bytes.sum"] + NAMES[4:]
        rc, out, err = run(export(self.UNITS, [["700,000", "1", "1", "1", "1"]], names))
        self.assertNotEqual(rc, 0)
        self.assertIn("dram__bytes_read.sum", err)

    def test_unknown_unit_is_an_error(self):
        rc, _, err = run(export(["ns", "furlong", "byte", "byte", "inst"],
                                [["700,000", "1", "1", "1", "1"]]))
        self.assertNotEqual(rc, 0)
        self.assertIn("furlong", err)


if __name__ == "__main__":
    unittest.main()
