"""torch SDPA on cuDNN: forward and forward+backward times (median of 7 batches of 20 calls) at the
attention shapes bench_ops times, Mistral-7B heads (32 / 8, hd128, causal, GQA)."""
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend


def med(fn, reps=7, warm=5, batch=20):
    # batch calls between two events: the GPU stays fed, so torch's per-call dispatch on the host
    # is not counted (one call between events counts it: ~30 us a call at these shapes)
    for _ in range(warm): fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(batch): fn()
        b.record(); torch.cuda.synchronize(); ts.append(a.elapsed_time(b) / batch)
    ts.sort(); return ts[len(ts) // 2]


for B, S in [(4, 2048), (1, 8192)]:
    H, KV, D = 32, 8, 128
    q = torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, KV, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, KV, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    fl = 4 * B * H * S * S * D / 2
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        f = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        g = torch.randn_like(f())
        tf = med(f)
        tfb = med(lambda: f().backward(g))
    print(f"cudnn {B}x{S} fwd {tf:.4f} ms {fl / tf / 1e9:.0f} TFLOP/s  bwd {tfb - tf:.4f} ms "
          f"{2.5 * fl / (tfb - tf) / 1e9:.0f} TFLOP/s", flush=True)
