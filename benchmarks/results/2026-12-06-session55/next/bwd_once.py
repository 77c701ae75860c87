#!/usr/bin/env python3
"""Launches our attention backward op a few times at one shape, for a profiler to pick one launch:
bwd_once.py LIB B S (LIB: liblora4j_bench.so; the kernel's form from LORA4J_ATTN_BWD_FORM)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
import attention_held as held  # noqa: E402

lib = held.open_lib(sys.argv[1])
run, done = held.attention_op(lib, "attention_bwd", int(sys.argv[2]), int(sys.argv[3]))
run(4)
done()
