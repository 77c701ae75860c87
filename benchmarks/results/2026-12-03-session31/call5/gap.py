"""Our Hopper attention forward and cuDNN's (torch SDPA) at 4 x 2048, 32 heads, 8 KV heads,
head_dim 128, causal, run the same way: launch after launch for a few seconds each (the time a
call from the wall clock), then a window of launches under torch.profiler (CUPTI sees both
libraries' kernels: each kernel's duration and the gap to the next). Phase times are printed so
that the nvidia-smi log beside it (clocks, power) can be cut by phase.
Usage: gap.py LIB OUT   (LIB: liblora4j_bench.so, which loads LORA4J_CUDA_BENCH_LIBRARY; OUT: the folder for trace files)"""
import ctypes, json, statistics, sys, time
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend

lib = ctypes.CDLL(sys.argv[1])
out = sys.argv[2]
lib.lora4j_op_bench_create.argtypes = [ctypes.c_int32, ctypes.c_char_p, ctypes.c_char_p,
                                       ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint64,
                                       ctypes.POINTER(ctypes.c_void_p)]
lib.lora4j_op_bench_run.argtypes = [ctypes.c_void_p, ctypes.c_int32]
SECONDS = 4.0


def ours():
    b = ctypes.c_void_p()
    rc = lib.lora4j_op_bench_create(0, b"attention_fwd", b"flash", None, 0, 1, ctypes.byref(b))
    assert rc == 0, rc
    return lambda n: lib.lora4j_op_bench_run(b, n)  # n launches, then a stream sync


def cudnn():
    B, S, H, KV, D = 4, 2048, 32, 8, 128
    q = torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, KV, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, KV, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)

    def run(n):
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            for _ in range(n):
                F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        torch.cuda.synchronize()
    return run


def phase(name, run, kernel_key):
    run(20)
    t0 = time.time()
    calls = 0
    while time.time() - t0 < SECONDS:
        run(50)
        calls += 50
    t1 = time.time()
    print(f"PHASE {name} sustained {t0:.3f} {t1:.3f} per_call_ms {(t1 - t0) / calls * 1e3:.4f}", flush=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        run(60)
    path = f"{out}/trace-{name}.json"
    prof.export_chrome_trace(path)
    ev = [e for e in json.load(open(path))["traceEvents"]
          if e.get("cat") == "kernel" and kernel_key in e.get("name", "")]
    ev.sort(key=lambda e: e["ts"])
    dur = [e["dur"] for e in ev]
    gaps = [ev[i + 1]["ts"] - (ev[i]["ts"] + ev[i]["dur"]) for i in range(len(ev) - 1)]
    others = sorted({e.get("name", "")[:60] for e in json.load(open(path))["traceEvents"]
                     if e.get("cat") == "kernel" and kernel_key not in e.get("name", "")})
    print(f"PHASE {name} kernels {len(ev)} dur_us median {statistics.median(dur):.1f} "
          f"min {min(dur):.1f} max {max(dur):.1f} gap_us median {statistics.median(gaps):.1f} "
          f"min {min(gaps):.1f} max {max(gaps):.1f} other kernels {others}", flush=True)


phase("ours", ours(), "attn_fwd_sm90")
phase("cudnn", cudnn(), "sdpa")
phase("ours2", ours(), "attn_fwd_sm90")
