/*
 * RMSNorm over the last dimension d, as Hugging Face Mistral in fp32:
 *   forward   r = rsqrt(mean(x^2) + eps),  y = bf16(x * r * w)  (+ optional residue y_lo)
 *   backward  dx = r * w * dy - x * r^3 / d * sum_j(w_j dy_j x_j)     (w frozen: no dw)
 * x and dy are fp32 (the residual stream and its gradient). The backward accumulates into the
 * residual gradient (dx += ...) when asked, which fuses the residual add, and can also write
 * bf16(dx), the operand of the next backward GEMMs, saving a conversion pass. One block per row.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

__global__ void rmsnorm_fwd_kernel(const float* x, const bf16* w, bf16* y, float* rstd, int64_t d,
                                   float eps, bf16* y_lo) {
  __shared__ float scratch[32];
  int64_t t = blockIdx.x;
  const float* xr = x + t * d;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss, scratch);
  float r = rsqrtf(ss / float(d) + eps);
  if (threadIdx.x == 0) rstd[t] = r;
  bf16* yr = y + t * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float v = xr[i] * r * __bfloat162float(w[i]);
    bf16 hi = __float2bfloat16_rn(v);
    yr[i] = hi;
    if (y_lo) y_lo[t * d + i] = __float2bfloat16_rn(v - __bfloat162float(hi));
  }
}

__global__ void rmsnorm_bwd_kernel(const float* dy, const float* x, const bf16* w,
                                   const float* rstd, float* dx, int64_t d, bool accumulate,
                                   bf16* dx_bf16) {
  __shared__ float scratch[32];
  int64_t t = blockIdx.x;
  const float* xr = x + t * d;
  const float* dyr = dy + t * d;
  float dot = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
    dot += __bfloat162float(w[i]) * dyr[i] * xr[i];
  dot = block_sum(dot, scratch);
  float r = rstd[t];
  float c = dot * r * r * r / float(d);
  float* dxr = dx + t * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float g = r * __bfloat162float(w[i]) * dyr[i] - xr[i] * c;
    float v = accumulate ? dxr[i] + g : g;
    dxr[i] = v;
    if (dx_bf16) dx_bf16[t * d + i] = __float2bfloat16_rn(v);
  }
}

cudaError_t rmsnorm_forward(const float* x, const bf16* w, bf16* y, float* rstd, int64_t n,
                            int64_t d, float eps, cudaStream_t s, bf16* y_lo) {
  if (n <= 0) return cudaSuccess;
  rmsnorm_fwd_kernel<<<unsigned(n), 256, 0, s>>>(x, w, y, rstd, d, eps, y_lo);
  return cudaGetLastError();
}
cudaError_t rmsnorm_backward(const float* dy, const float* x, const bf16* w, const float* rstd,
                             float* dx, int64_t n, int64_t d, bool accumulate, cudaStream_t s,
                             bf16* dx_bf16) {
  if (n <= 0) return cudaSuccess;
  rmsnorm_bwd_kernel<<<unsigned(n), 256, 0, s>>>(dy, x, w, rstd, dx, d, accumulate, dx_bf16);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
