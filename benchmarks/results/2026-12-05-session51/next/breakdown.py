"""One side's attention backward held for SECONDS at B x S, alone in its process, for the CUPTI
kernel trace (native/bench/kernel_trace.cpp) to sum its kernels by name at the power cap: ours
is the op (pre-pass, main kernel, dQ conversion); cuDNN's is torch SDPA's forward + backward
(its forward kernel is named apart in the trace). The trace's per-name totals over its counts
give each kernel's time a call; the setup's kernels are few and short.
Usage: breakdown.py LIB ours|cudnn B S SECONDS   (run from the repository root)"""
import sys

sys.path.insert(0, "benchmarks")
sys.path.insert(0, "benchmarks/reference")
from attention_held import attention_op, batch_for, hold, open_lib  # noqa: E402

lib_path, side, B, S, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
if side == "ours":
    run, done = attention_op(open_lib(lib_path), "attention_bwd", B, S)
else:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import sdpa_kernel, SDPBackend
    from attention_held import D, H, KV
    q = torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, KV, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, KV, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    g = torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16)

    def run(n):
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            for _ in range(n):
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                torch.autograd.grad(o, (q, k, v), g)
        torch.cuda.synchronize()
    done = lambda: None  # noqa: E731
sec = hold(run, batch_for(S), secs)
done()
print(f"{side} {B}x{S}: {sec * 1e3:.4f} ms a call held ({'forward + backward' if side == 'cudnn' else 'backward op'})")
