"""torch SDPA on cuDNN at one Mistral-7B attention shape, one forward and one backward inside a
profiler range (cudaProfilerStart / Stop) for `ncu --profile-from-start off`; warm-up outside."""
import sys
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend

B, S = int(sys.argv[1]), int(sys.argv[2])
H, KV, D = 32, 8, 128
q = torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
k = torch.randn(B, KV, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
v = torch.randn(B, KV, S, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    g = torch.randn_like(o)
    for _ in range(5):
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        o.backward(g)
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStart()
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    o.backward(g)
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()
print("cudnn", B, S, "done")
