#!/usr/bin/env python3
"""Checks sass_mix.py on hand-made Nsight Compute source-page exports: opcodes summed without
modifiers or predicate guards, counts with thousands separators, several kernels in one export
(the busiest chosen, or the one a regex names), gzip and plain files, the comparison's order
(largest difference first), the hot-lines listing, and clear errors for a regex that matches
no kernel and for an export without a source page.
Run: python3 benchmarks/test_sass_mix.py"""
import gzip
import os
import subprocess
import sys
import tempfile
import unittest

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sass_mix.py")
HEAD = ["Address", "Source", "Warp Stall Sampling (All Samples)", "Instructions Executed"]


def section(name, rows):
    q = lambda r: ",".join(f'"{v}"' for v in r)
    out = [q(["Kernel Name", name]), q(HEAD)]
    out += [q([f"0x{0x100 + 16 * i:x}", text, "3", n]) for i, (text, n) in enumerate(rows)]
    return out


BUSY = [("      LOP3.LUT R1, R2, 0x3, RZ, 0xc0, !PT", "1,000"),
        ("@!P0 LOP3.LUT R3, R2, 0x7, RZ, 0xc0, !PT", "2,500"),
        ("      HGMMA.64x64x16.F32 R24, gdesc[UR4], RZ", "400"),
        ("@UP1 BRA 0x200", "100"),
        ("      FMUL R4, R4, 0.5", "-")]
SMALL = [("      FMUL R1, R1, R2", "50"), ("      EXIT", "10")]


def write(lines, gz=False):
    text = "\n".join(lines) + "\n"
    f = tempfile.NamedTemporaryFile("wb", suffix=".csv.gz" if gz else ".csv", delete=False)
    f.write(gzip.compress(text.encode()) if gz else text.encode())
    f.close()
    return f.name


def run(*args):
    p = subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


class SassMix(unittest.TestCase):
    def test_one_export_sums_opcodes_of_the_busiest_kernel(self):
        path = write(section("small_kernel", SMALL) + section("busy_kernel<128>", BUSY), gz=True)
        rc, out = run(path)
        self.assertEqual(rc, 0, out)
        self.assertIn("A: busy_kernel<128>", out)
        self.assertIn("| LOP3 | 0.00 | 87.5% |", out)  # 3,500 of 4,000, guards and modifiers off
        self.assertIn("| HGMMA | 0.00 | 10.0% |", out)
        self.assertIn("| BRA | 0.00 | 2.5% |", out)
        self.assertIn("| FMUL | 0.00 | 0.0% |", out)  # "-" counts as none
        self.assertIn("| total | 0.00 | 100% |", out)
        self.assertNotIn("EXIT", out)

    def test_comparison_largest_difference_first_and_hot_lines(self):
        a = write(section("busy_kernel<128>", BUSY))
        b = write(section("other", [("      LOP3.LUT R1, R1, 0x1, RZ, 0xc0, !PT", "500"),
                                    ("      HGMMA.64x64x16.F32 R24, gdesc[UR4], RZ", "400"),
                                    ("      FSEL R2, R2, RZ, P0", "1,200")]))
        rc, out = run(a, b, "--hot", "LOP3", "--lines", "1")
        self.assertEqual(rc, 0, out)
        table = [l for l in out.splitlines() if l.startswith("| ") and "opcode" not in l]
        self.assertTrue(table[1].startswith("| LOP3 | 0.00 | 0.00 | +0.00 |"), table)
        self.assertEqual([l.split(" | ")[0] for l in table[1:4]], ["| LOP3", "| FSEL", "| BRA"])
        self.assertIn("2,500  0x110  @!P0 LOP3.LUT", out)
        self.assertNotIn("1,000  0x100", out)  # --lines 1

    def test_kernel_regex_picks_and_errors_name_the_kernels(self):
        path = write(section("small_kernel", SMALL) + section("busy_kernel<128>", BUSY))
        rc, out = run(path, "--kernel-a", "small")
        self.assertEqual(rc, 0, out)
        self.assertIn("A: small_kernel", out)
        self.assertIn("| FMUL | 0.00 | 83.3% |", out)
        rc, out = run(path, "--kernel-a", "nothing_like_it")
        self.assertNotEqual(rc, 0)
        self.assertIn("0 kernels match 'nothing_like_it'", out)
        self.assertIn("busy_kernel<128>", out)

    def test_export_without_a_source_page(self):
        path = write(['"ID","Kernel Name","gpu__time_duration.sum"', '"0","k","1"'])
        rc, out = run(path)
        self.assertNotEqual(rc, 0)
        self.assertIn("no SASS lines", out)


if __name__ == "__main__":
    unittest.main()
