"""Our attention kernels (the op bench library, through ctypes) and torch SDPA's cuDNN kernels
timed the same way in one process: each held launch after launch for SECONDS (the board at its
power cap, as in a training step), time per call from the wall clock over whole batches of calls.
Short bursts of calls run at a higher clock than sustained load (thirty-first session: cuDNN's
forward at 4 x 2048 took 0.256-0.260 ms a call in torch_ops_baseline.py's 20-call bursts and
0.291 ms held for 4 s, call5), so a ratio is fair only when both sides are timed alike. The
backward: ours is the op (pre-pass, kernel, dQ conversion); cuDNN's is its forward + backward
less its forward, both sustained. Both sides go through benchmarks/attention_held.py's hold loop
(hold, batch_for), ours through its binding (open_lib, attention_op); the shapes and H, KV, D are
its too.
Usage: attention_sustained.py LIB [SECONDS]   (LIB: liblora4j_bench.so; LORA4J_CUDA_BENCH_LIBRARY
names the CUDA plugin). Prints one JSON line per (shape, pass, side, round)."""
import json, os, sys
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from attention_held import D, H, KV, SHAPES, attention_op, batch_for, hold, open_lib  # noqa: E402

lib = open_lib(sys.argv[1])
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0


def flops(B, S):  # causal forward: 2 products of 2 B H S^2 D / 2
    return 2.0 * B * H * S * S * D


def cudnn(backward, B, S):
    q = torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, KV, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, KV, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    g = torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16)

    def run(n):
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            for _ in range(n):
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                if backward:
                    torch.autograd.grad(o, (q, k, v), g)
        torch.cuda.synchronize()
    return run


def sustained(run, batch):
    return hold(run, batch, SECONDS)


for B, S in SHAPES:
    batch = batch_for(S)
    for rnd in (1, 2):
        sides = ("ours", "cudnn") if rnd == 1 else ("cudnn", "ours")
        for side in sides:
            if side == "ours":
                res = {}
                for op in ("attention_fwd", "attention_bwd"):
                    run, done = attention_op(lib, op, B, S)
                    res[op] = sustained(run, batch)
                    done()
                fwd, bwd = res["attention_fwd"], res["attention_bwd"]
            else:
                fwd = sustained(cudnn(False, B, S), batch)
                bwd = sustained(cudnn(True, B, S), batch) - fwd
            for name, sec, mult in (("fwd", fwd, 1.0), ("bwd", bwd, 2.5)):
                print(json.dumps({"B": B, "S": S, "pass": name, "side": side, "round": rnd,
                                  "ms": round(sec * 1e3, 4),
                                  "tflops": round(flops(B, S) * mult / sec * 1e-12, 1)}), flush=True)
            torch.cuda.empty_cache()
