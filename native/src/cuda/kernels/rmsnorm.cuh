// The vectorized RMSNorm forward's row (rmsnorm.cu's rmsnorm_fwd_vec_kernel), shared with the
// kernels that normalize a row inside their own launch: rmsnorm_lora_a (rmsnorm.cu) and
// gemv_pairs' folded norm (gemv.cu), so that each gives rmsnorm_forward's bits.
#pragma once

#include <cuda_fp8.h>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/kernels.h"

namespace lora4j {
namespace cuda {

constexpr int kNormThreads = 256;  // a block a row: the reduction order depends on it

__device__ __forceinline__ uint8_t lo8_of(float v, bf16 hi, float scale) {
  return uint8_t(
      __nv_cvt_float_to_fp8((v - __bfloat162float(hi)) * scale, __NV_SATFINITE, __NV_E4M3));
}

// 4 elements of x from chunk c (16-byte aligned fp32, 8-byte aligned bf16)
__device__ __forceinline__ float4 load4(const float* x, int c) {
  return reinterpret_cast<const float4*>(x)[c];
}
__device__ __forceinline__ float4 load4(const bf16* x, int c) {
  const Bf16x4 u = load_bf16x4(x + 4 * c);
  return make_float4(__bfloat162float(u.v[0]), __bfloat162float(u.v[1]), __bfloat162float(u.v[2]),
                     __bfloat162float(u.v[3]));
}

// Chunk j of thread tid: elements 4 c .. 4 c + 3 with c = tid + j * kNormThreads, c < d / 4.
// Row t of the vectorized forward, by the whole block: staged (shared, d floats) and scratch (32
// floats) its shared memory. write: store y, rstd and the residues / copy asked for; keep
// (nullable, shared, d elements): y's row stored there too (rmsnorm_lora_a's product reads it);
// keep16 (nullable, shared, d elements): the fp16 copy's row there (gemv_pairs' folded norm).
template <int NCH, typename TX>
__device__ __forceinline__ void rmsnorm_fwd_vec_row(const TX* x, const bf16* w, bf16* y,
                                                    float* rstd, int64_t d, float eps, bf16* y_lo,
                                                    int64_t ldy, Lo8 lo8, Y16 y16, int64_t t,
                                                    float4* staged, float* scratch, bool write,
                                                    bf16* keep, f16* keep16 = nullptr) {
  const float* sx = reinterpret_cast<const float*>(staged);
  const int chunks = int(d / 4);
  const TX* xr = x + t * d;
  float4 xv[NCH];
  Bf16x4 wv[NCH];
  // launched with pdl: w is read before the wait, x (the previous kernel's output) after it
#pragma unroll
  for (int j = 0; j < NCH; ++j) {
    int c = threadIdx.x + j * kNormThreads;
    if (c < chunks) wv[j] = load_bf16x4(w + 4 * c);
  }
  pdl_wait();
#pragma unroll
  for (int j = 0; j < NCH; ++j) {
    int c = threadIdx.x + j * kNormThreads;
    if (c < chunks) xv[j] = load4(xr, c);
  }
#pragma unroll
  for (int j = 0; j < NCH; ++j) {
    int c = threadIdx.x + j * kNormThreads;
    if (c < chunks) staged[c] = xv[j];
  }
  __syncthreads();
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) ss += sx[i] * sx[i];
  ss = block_sum(ss, scratch);
  float r = rsqrtf(ss / float(d) + eps);
  if (write && threadIdx.x == 0) rstd[t] = r;
  bf16* yr = y + t * ldy;
#pragma unroll
  for (int j = 0; j < NCH; ++j) {
    int c = threadIdx.x + j * kNormThreads;
    if (c >= chunks) continue;
    const float xs[4] = {xv[j].x, xv[j].y, xv[j].z, xv[j].w};
    Bf16x4 hv, lv;
    F16x4 fv;
    uint32_t l8 = 0;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float v = xs[e] * r * __bfloat162float(wv[j].v[e]);
      bf16 hi = __float2bfloat16_rn(v);
      hv.v[e] = hi;
      lv.v[e] = __float2bfloat16_rn(v - __bfloat162float(hi));
      if (lo8.p) l8 |= uint32_t(lo8_of(v, hi, lo8.scale)) << (8 * e);
      fv.v[e] = __float2half_rn(v);
    }
    if (keep) store_bf16x4(keep + 4 * c, hv);
    if (keep16) store_f16x4(keep16 + 4 * c, fv);
    if (!write) continue;
    store_bf16x4(yr + 4 * c, hv);
    if (y_lo) store_bf16x4(y_lo + t * ldy + 4 * c, lv);
    if (lo8.p) *reinterpret_cast<uint32_t*>(lo8.p + t * lo8.ld + 4 * c) = l8;
    if (y16.p) store_f16x4(y16.p + t * y16.ld + 4 * c, fv);
  }
}
}  // namespace cuda
}  // namespace lora4j
