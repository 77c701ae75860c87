/*
 * SwiGLU: h = silu(g) * u with silu(g) = g * sigmoid(g), elementwise.
 *   backward  dg = dh * u * sigmoid(g) * (1 + g * (1 - sigmoid(g))),  du = dh * silu(g)
 * Inputs bf16 (GEMM outputs), dh fp32, outputs bf16 (they feed the next GEMMs).
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

__global__ void swiglu_fwd_kernel(const bf16* g, const bf16* u, bf16* h, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float a = __bfloat162float(g[i]), b = __bfloat162float(u[i]);
    float sg = 1.f / (1.f + expf(-a));
    h[i] = __float2bfloat16_rn(a * sg * b);
  }
}
__global__ void swiglu_bwd_kernel(const float* dh, const bf16* g, const bf16* u, bf16* dg, bf16* du,
                                  int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float a = __bfloat162float(g[i]), b = __bfloat162float(u[i]), d = dh[i];
    float sg = 1.f / (1.f + expf(-a));
    dg[i] = __float2bfloat16_rn(d * b * sg * (1.f + a * (1.f - sg)));
    du[i] = __float2bfloat16_rn(d * a * sg);
  }
}

cudaError_t swiglu_forward(const bf16* gate, const bf16* up, bf16* h, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  swiglu_fwd_kernel<<<grid_for(n, 256), 256, 0, s>>>(gate, up, h, n);
  return cudaGetLastError();
}
cudaError_t swiglu_backward(const float* dh, const bf16* gate, const bf16* up, bf16* dgate,
                            bf16* dup, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  swiglu_bwd_kernel<<<grid_for(n, 256), 256, 0, s>>>(dh, gate, up, dgate, dup, n);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
