// One-row products' building blocks shared by gemv.cu and the kernels that take a product into
// their own launch (rmsnorm.cu's rmsnorm_lora_a): the 16-byte chunk's dot product and the split
// order's row sum (kernels.h, GemvParams::split), so that each gives gemv's bits.
#pragma once

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/kernels.h"

namespace lora4j {
namespace cuda {

constexpr int kGemvUnroll = 8;  // 16-byte chunks a lane has in flight

// sum of the 8 products of a 16-byte chunk of w and of x, in element order
__device__ __forceinline__ float gemv_dot8(uint4 w, uint4 x, bool f16) {
  const uint32_t wa[4] = {w.x, w.y, w.z, w.w}, xa[4] = {x.x, x.y, x.z, x.w};
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float w0, w1, x0, x1;
    if (f16) {
      const float2 wf = __half22float2(*reinterpret_cast<const __half2*>(&wa[i]));
      const float2 xf = __half22float2(*reinterpret_cast<const __half2*>(&xa[i]));
      w0 = wf.x, w1 = wf.y, x0 = xf.x, x1 = xf.y;
    } else {
      w0 = __uint_as_float(wa[i] << 16), w1 = __uint_as_float(wa[i] & 0xffff0000u);
      x0 = __uint_as_float(xa[i] << 16), x1 = __uint_as_float(xa[i] & 0xffff0000u);
    }
    s = fmaf(w0, x0, s);
    s = fmaf(w1, x1, s);
  }
  return s;
}

// Row wr (chunks 16-byte chunks) times x in the split order, by a block of 32 kGemvSplitWarps
// threads: lane l of warp w takes chunks 32 w + l, then every 32 kGemvSplitWarps further on, a
// round of up to kGemvUnroll loads issued before its products; each warp's butterfly sum into
// part[w] (shared, kGemvSplitWarps floats), then a __syncthreads. load_x(k) gives x's chunk k.
// gemv_split_sum(part) then adds the warps' sums in warp order; part is free again once every
// thread that reads it has passed another __syncthreads.
template <bool F16, class LoadX>
__device__ __forceinline__ void gemv_split_row_parts(const uint4* __restrict__ wr, int64_t chunks,
                                                     LoadX load_x, float* part) {
  constexpr int64_t kStep = 32 * kGemvSplitWarps;  // chunks between a lane's turns
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float acc = 0.f;
  int64_t base = 32 * warp;  // the warp's chunk for lane 0 this round
  // whole rounds (every lane of the warp has kGemvUnroll chunks: the bound is the warp's)
  for (; base + kStep * (kGemvUnroll - 1) + 31 < chunks; base += kStep * kGemvUnroll) {
    uint4 wv[kGemvUnroll], xv[kGemvUnroll];
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) wv[u] = __ldcs(wr + base + lane + kStep * u);
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) xv[u] = load_x(base + lane + kStep * u);
    __syncwarp();
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) acc += gemv_dot8(wv[u], xv[u], F16);
  }
  if (base < chunks) {  // the rest: fewer than kGemvUnroll chunks on some lane, loaded together too
    uint4 wv[kGemvUnroll], xv[kGemvUnroll];
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      const int64_t k = base + lane + kStep * u;
      wv[u] = k < chunks ? __ldcs(wr + k) : make_uint4(0, 0, 0, 0);
      xv[u] = k < chunks ? load_x(k) : make_uint4(0, 0, 0, 0);
    }
    __syncwarp();
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u)
      if (base + lane + kStep * u < chunks) acc += gemv_dot8(wv[u], xv[u], F16);
  }
  acc = warp_sum(acc);
  if (lane == 0) part[warp] = acc;
  __syncthreads();
}
__device__ __forceinline__ float gemv_split_sum(const float* part) {
  float sum = part[0];
#pragma unroll
  for (int i = 1; i < kGemvSplitWarps; ++i) sum += part[i];
  return sum;
}

}  // namespace cuda
}  // namespace lora4j
