#!/usr/bin/env python3
"""One of our attention ops held launch after launch for SECONDS at each shape (4 x 2048 and
1 x 8192, causal, 32 heads, 8 KV heads, head_dim 128), the board at its power cap as in a
training step, for A/B runs of kernel variants: one variant per process, the CUDA plugin being
the one LORA4J_CUDA_BENCH_LIBRARY names (a copy of liblora4j_cuda_bench.so built from that
variant). Beside the time a call, the board's power and SM clock read once with nvidia-smi
halfway through each held run, and the energy a call they give: at the cap the clock falls until
the power is back under it, so a change pays in a held run by the energy it saves, not by the
stalls it removes (thirty-third session). `compare.py --held-ab FILE` prints the variants'
table, each against the one labelled main.
Usage: attention_held.py LIB OP LABEL ROUND [SECONDS]   (LIB: liblora4j_bench.so; OP:
attention_fwd or attention_bwd). Prints one JSON line per shape."""
import ctypes
import json
import subprocess
import sys
import threading
import time

H, KV, D = 32, 8, 128
SHAPES = ((4, 2048), (1, 8192))


def smi(out):
    """Appends [watts, MHz] of GPU 0; nothing where nvidia-smi is missing or answers otherwise."""
    try:
        r = subprocess.run(["nvidia-smi", "--id=0", "--query-gpu=power.draw,clocks.sm",
                            "--format=csv,noheader,nounits"], capture_output=True, text=True)
        out.append([float(x) for x in r.stdout.strip().split(",")])
    except (OSError, ValueError):
        pass


def open_lib(path):
    """liblora4j_bench (lora4j_bench.h) through ctypes, its op-bench entry points typed."""
    lib = ctypes.CDLL(path)
    lib.lora4j_op_bench_create.argtypes = [ctypes.c_int32, ctypes.c_char_p, ctypes.c_char_p,
                                           ctypes.POINTER(ctypes.c_int64), ctypes.c_int32,
                                           ctypes.c_uint64, ctypes.POINTER(ctypes.c_void_p)]
    lib.lora4j_op_bench_run.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.lora4j_op_bench_destroy.argtypes = [ctypes.c_void_p]
    return lib


def attention_op(lib, op, B, S):
    """Our `flash` attention op at B x S (H, KV, D above) on CUDA device 0: run(n) launches it n
    times and waits, done() frees it."""
    dims = (ctypes.c_int64 * 5)(B, S, H, KV, D)
    b = ctypes.c_void_p()
    rc = lib.lora4j_op_bench_create(0, op.encode(), b"flash", dims, 5, 1, ctypes.byref(b))
    if rc != 0:
        raise RuntimeError(f"lora4j_op_bench_create {op} {B} x {S}: {rc}")

    def run(n):
        if lib.lora4j_op_bench_run(b, n) != 0:
            raise RuntimeError(f"lora4j_op_bench_run {op} {B} x {S}")
    return run, lambda: lib.lora4j_op_bench_destroy(b)


def batch_for(S):
    """Calls launched between two checks of the clock at sequence length S (~40 ms of work)."""
    return 40 if S <= 2048 else 12


def hold(run, batch, seconds, started=None):
    """run(batch) once to warm up, then (after started(), if given) launch after launch for
    seconds: the wall-clock seconds a call."""
    run(batch)
    if started:
        started()
    t0, calls = time.time(), 0
    while time.time() - t0 < seconds:
        run(batch)
        calls += batch
    return (time.time() - t0) / calls


def main():
    lib = open_lib(sys.argv[1])
    op, label, rnd = sys.argv[2], sys.argv[3], int(sys.argv[4])
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 3.0
    if op not in ("attention_fwd", "attention_bwd"):
        raise SystemExit(f"attention_held.py: OP must be attention_fwd or attention_bwd, not {op}")
    mult = 2.5 if op == "attention_bwd" else 1.0  # the backward's FLOPs over the forward's
    for B, S in SHAPES:
        run, done = attention_op(lib, op, B, S)
        reads = []
        timer = threading.Timer(seconds / 2, smi, (reads,))
        sec = hold(run, batch_for(S), seconds, timer.start)
        timer.join()
        done()
        watts, mhz = reads[0] if reads else (None, None)
        print(json.dumps({"variant": label, "op": op, "round": rnd, "B": B, "S": S,
                          "ms": round(sec * 1e3, 4),
                          "tflops": round(mult * 2.0 * B * H * S * S * D / sec * 1e-12, 1),
                          "watts": watts, "sm_mhz": mhz,
                          "mj_per_call": round(watts * sec * 1e3, 1) if watts else None}),
              flush=True)


if __name__ == "__main__":
    main()
