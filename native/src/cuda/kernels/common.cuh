// Small device helpers shared by the kernel files.
#pragma once
#include <cstdint>
#include <utility>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda/kernels/kernels.h"

namespace lora4j {
namespace cuda {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum over a block of blockDim.x threads (multiple of 32, <= 1024); every thread gets it.
__device__ __forceinline__ float block_sum(float v, float* scratch /*[32]*/) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[w] = v;
  __syncthreads();
  float t = lane < nw ? scratch[lane] : 0.f;
  return warp_sum(t);
}
__device__ __forceinline__ float block_max(float v, float* scratch /*[32]*/) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[w] = v;
  __syncthreads();
  float t = lane < nw ? scratch[lane] : -INFINITY;
  return warp_max(t);
}

// ---- programmatic dependent launch (sm_90 and later) ------------------------------------------
// A kernel launched with launch_kernel(..., pdl = true) may have its blocks placed on the SMs as
// the blocks of the kernel before it in the stream exit, before that kernel's completion and
// memory flush are signalled. Before pdl_wait() it may only read what no earlier work in the
// stream writes (weights); after it, that kernel has completed and its writes are visible. A
// kernel that calls pdl_wait() before its first dependent read and its first write is correct
// launched either way: without the attribute, and before sm_90, the call does nothing. As every
// block of a kernel waits before it writes or exits, the kernel before the previous one has
// completed too. (No block here releases its dependents early, griddepcontrol.launch_dependents:
// measured slower in a decode step, forty-second session.)
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
// kernel<<<grid, block, smem, s>>>(args...), with programmatic stream serialization when pdl
// (the kernel must call pdl_wait() as above).
template <class... P, class... A>
cudaError_t launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                          bool pdl, A&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute at[1];
  at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  at[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = pdl ? at : nullptr;
  cfg.numAttrs = pdl ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<A>(args)...);
}

// Vector accesses of the element-wise kernels (swiglu.cu, rmsnorm.cu, rope.cu): 16 bytes of
// bf16 (uint4) or fp32 (float4), 8 bytes of bf16 / fp16 next to a float4 of fp32. The launchers
// take these kernels only where every pointer is 16-byte aligned (ptr_aligned16()).
inline bool ptr_aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }
union Bf16x8 {
  uint4 raw;
  bf16 v[8];
};
union Bf16x4 {
  uint2 raw;
  bf16 v[4];
};
union F16x4 {
  uint2 raw;
  f16 v[4];
};
__device__ __forceinline__ Bf16x8 load_bf16x8(const bf16* p) {
  Bf16x8 r;
  r.raw = *reinterpret_cast<const uint4*>(p);
  return r;
}
__device__ __forceinline__ void store_bf16x8(bf16* p, const Bf16x8& v) {
  *reinterpret_cast<uint4*>(p) = v.raw;
}
__device__ __forceinline__ Bf16x4 load_bf16x4(const bf16* p) {
  Bf16x4 r;
  r.raw = *reinterpret_cast<const uint2*>(p);
  return r;
}
__device__ __forceinline__ void store_bf16x4(bf16* p, const Bf16x4& v) {
  *reinterpret_cast<uint2*>(p) = v.raw;
}
__device__ __forceinline__ void store_f16x4(f16* p, const F16x4& v) {
  *reinterpret_cast<uint2*>(p) = v.raw;
}
__device__ __forceinline__ void load_f32x8(const float* p, float* out /*[8]*/) {
  float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
  out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
}

inline unsigned grid_for(int64_t n, int threads, int64_t cap = 65535 * 16) {
  int64_t g = (n + threads - 1) / threads;
  if (g < 1) g = 1;
  if (g > cap) g = cap;
  return unsigned(g);
}

// SwiGLU's per-element arithmetic (swiglu.cu), written once for its scalar kernels, vectorized
// chunks and tails and for the down projection's fused input gradient (swiglu_dx_sm90.cu): the
// same expressions, so the same bits for the same dh.
__device__ __forceinline__ bf16 swiglu_fwd_one(bf16 g, bf16 u) {
  float a = __bfloat162float(g), b = __bfloat162float(u);
  float sg = 1.f / (1.f + expf(-a));
  return __float2bfloat16_rn(a * sg * b);
}
__device__ __forceinline__ void swiglu_bwd_one(float d, bf16 g, bf16 u, bf16& dg, bf16& du) {
  float a = __bfloat162float(g), b = __bfloat162float(u);
  float sg = 1.f / (1.f + expf(-a));
  dg = __float2bfloat16_rn(d * b * sg * (1.f + a * (1.f - sg)));
  du = __float2bfloat16_rn(d * a * sg);
}

// RoPE's angle and rotation of one pair (rope.cu's kernels, gemv.cu's decode pairs), written out
// with explicit roundings so that every kernel that rotates makes the same bits:
//   lo = a cos - b sin (a cos rounded, b sin fused), hi = b cos + a sin (b cos rounded, a sin
//   fused)
__device__ __forceinline__ void rope_cos_sin(int32_t pos, float inv_freq, float sign, float& c,
                                             float& sn) {
  const float ang = float(pos) * inv_freq;
  c = cosf(ang);
  sn = sign * sinf(ang);
}
__device__ __forceinline__ void rope_rotate(float a, float b, float c, float sn, float& lo,
                                            float& hi) {
  lo = __fmaf_rn(-b, sn, __fmul_rn(a, c));
  hi = __fmaf_rn(a, sn, __fmul_rn(b, c));
}

}  // namespace cuda
}  // namespace lora4j
