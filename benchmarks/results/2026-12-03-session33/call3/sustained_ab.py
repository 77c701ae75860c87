"""One of our attention ops (OP: attention_fwd or attention_bwd) held launch after launch for
SECONDS at each shape (the board at its power cap, as attention_sustained.py times it), one
kernel variant per process: the CUDA plugin
is the one LORA4J_CUDA_BENCH_LIBRARY names. Beside the time per call, the board's power and SM
clock read once with nvidia-smi in the middle of each held run, and the energy per call they give.
Usage: sustained_ab.py LIB OP LABEL ROUND [SECONDS]. One JSON line per shape."""
import ctypes, json, subprocess, sys, threading, time

lib = ctypes.CDLL(sys.argv[1])
OP, LABEL, RND = sys.argv[2], sys.argv[3], int(sys.argv[4])
SECONDS = float(sys.argv[5]) if len(sys.argv) > 5 else 3.0
lib.lora4j_op_bench_create.argtypes = [ctypes.c_int32, ctypes.c_char_p, ctypes.c_char_p,
                                       ctypes.POINTER(ctypes.c_int64), ctypes.c_int32,
                                       ctypes.c_uint64, ctypes.POINTER(ctypes.c_void_p)]
lib.lora4j_op_bench_run.argtypes = [ctypes.c_void_p, ctypes.c_int32]
lib.lora4j_op_bench_destroy.argtypes = [ctypes.c_void_p]
H, KV, D = 32, 8, 128


def smi(out):
    r = subprocess.run(["nvidia-smi", "--query-gpu=power.draw,clocks.sm", "--format=csv,noheader,nounits"],
                       capture_output=True, text=True)
    out.append([float(x) for x in r.stdout.strip().split(",")])


for B, S in ((4, 2048), (1, 8192)):
    dims = (ctypes.c_int64 * 5)(B, S, H, KV, D)
    b = ctypes.c_void_p()
    if lib.lora4j_op_bench_create(0, OP.encode(), b"flash", dims, 5, 1, ctypes.byref(b)) != 0:
        raise RuntimeError("lora4j_op_bench_create")
    batch = 40 if S <= 2048 else 12
    lib.lora4j_op_bench_run(b, batch)  # warm-up
    reads = []
    t = threading.Timer(SECONDS / 2, smi, (reads,))
    t.start()
    t0, calls = time.time(), 0
    while time.time() - t0 < SECONDS:
        if lib.lora4j_op_bench_run(b, batch) != 0:
            raise RuntimeError("lora4j_op_bench_run")
        calls += batch
    sec = (time.time() - t0) / calls
    t.join()
    lib.lora4j_op_bench_destroy(b)
    w, mhz = reads[0] if reads else (0.0, 0.0)
    print(json.dumps({"variant": LABEL, "round": RND, "B": B, "S": S, "ms": round(sec * 1e3, 4),
                      "op": OP, "tflops": round((2.5 if OP == "attention_bwd" else 1.0) * 2.0 * B * H
                                                * S * S * D / sec * 1e-12, 1),
                      "watts": w, "sm_mhz": mhz, "mj_per_call": round(w * sec * 1e3, 1)}), flush=True)
