/*
 * Rotary position embedding, Hugging Face rotate_half convention: for each head and i < D/2,
 * the pair (x[i], x[i + D/2]) is rotated by angle = float(pos) * inv_freq[i] (fp32, as torch):
 *   forward   (a, b) -> (a cos - b sin, b cos + a sin)
 *   backward  the transpose: rotation by -angle applied to the gradient.
 * Forward reads the fp32 GEMM output and rounds once, to fp16 (the attention scores' operand);
 * backward works in place on a bf16 gradient, or reads the attention backward's fp32 dQ
 * accumulator and rounds once, to bf16 (rope_backward_f32). The math in fp32.
 *
 * Two kernels with the same per-pair arithmetic (rope_cos_sin and rope_rotate in common.cuh, which
 * the decode step's fused q / k GEMV uses too), hence the same bits. The vectorized one: a
 * thread takes V adjacent frequencies (16 bytes of input per half-head: V = 4 fp32 or 8 bf16) of
 * kHeads heads of one token, computes their cos / sin once and rotates the kHeads x V pairs,
 * all loads first. The scalar one (one pair per thread, cos / sin per pair) is kept for head
 * sizes whose half is not a multiple of V, unaligned pointers, and as the tests' reference.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

namespace {
__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const bf16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void store(bf16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void store(f16* p, float v) { *p = __float2half_rn(v); }

template <class In, class Out>
__global__ void rope_scalar_kernel(const In* x, Out* y, const int32_t* pos, const float* inv_freq,
                                   int64_t n, int64_t heads, int D, float sign, int64_t ldx,
                                   int64_t ldy) {
  int half = D / 2;
  int64_t total = n * heads * half;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int f = int(i % half);
    int64_t th = i / half;  // token * heads + head
    int64_t t = th / heads;
    float c, sn, lo, hi;
    rope_cos_sin(pos[t], inv_freq[f], sign, c, sn);
    const int64_t h = th - t * heads;
    const In* src = x + t * ldx + h * D;
    Out* dst = y + t * ldy + h * D;
    rope_rotate(load(src + f), load(src + f + half), c, sn, lo, hi);
    store(dst + f, lo);
    store(dst + f + half, hi);
  }
}

constexpr int kHeads = 4;  // heads per thread of the vectorized kernel

// 16 bytes of input: 4 fp32 or 8 bf16 elements; their output (fp16 or bf16) in one access.
__device__ __forceinline__ void load_vec(const float* p, float* o /*[4]*/) {
  float4 v = *reinterpret_cast<const float4*>(p);
  o[0] = v.x, o[1] = v.y, o[2] = v.z, o[3] = v.w;
}
__device__ __forceinline__ void load_vec(const bf16* p, float* o /*[8]*/) {
  Bf16x8 v = load_bf16x8(p);
#pragma unroll
  for (int e = 0; e < 8; ++e) o[e] = __bfloat162float(v.v[e]);
}
__device__ __forceinline__ void store_vec(f16* p, const float (&v)[4]) {
  F16x4 r;
#pragma unroll
  for (int e = 0; e < 4; ++e) r.v[e] = __float2half_rn(v[e]);
  store_f16x4(p, r);
}
__device__ __forceinline__ void store_vec(bf16* p, const float (&v)[8]) {
  Bf16x8 r;
#pragma unroll
  for (int e = 0; e < 8; ++e) r.v[e] = __float2bfloat16_rn(v[e]);
  store_bf16x8(p, r);
}
// 4 bf16 (fp32 input): 8 bytes
__device__ __forceinline__ void store_vec(bf16* p, const float (&v)[4]) {
  const __nv_bfloat162 lo = __floats2bfloat162_rn(v[0], v[1]),
                       hi = __floats2bfloat162_rn(v[2], v[3]);
  uint2 w;
  w.x = *reinterpret_cast<const uint32_t*>(&lo);
  w.y = *reinterpret_cast<const uint32_t*>(&hi);
  *reinterpret_cast<uint2*>(p) = w;
}

// Work item i: frequency group i % groups (fastest, so that a warp reads whole half-heads),
// then head group, then token. Idx is 32-bit where the item count allows (cheaper division).
template <class In, class Out, class Idx>
__global__ void __launch_bounds__(256)
    rope_vec_kernel(const In* x, Out* y, const int32_t* pos, const float* inv_freq, Idx items,
                    int heads, int D, float sign, int64_t ldx, int64_t ldy) {
  constexpr int V = 16 / sizeof(In);
  const int half = D / 2;
  const Idx groups = Idx(half / V), head_groups = Idx((heads + kHeads - 1) / kHeads);
  for (Idx i = blockIdx.x * Idx(blockDim.x) + threadIdx.x; i < items;
       i += Idx(gridDim.x) * blockDim.x) {
    const int f0 = int(i % groups) * V;
    const Idx th = i / groups;
    const int h0 = int(th % head_groups) * kHeads;
    const int64_t t = int64_t(th / head_groups);
    float a[kHeads][V], b[kHeads][V];
#pragma unroll
    for (int k = 0; k < kHeads; ++k) {
      if (h0 + k < heads) {
        const In* src = x + t * ldx + int64_t(h0 + k) * D;
        load_vec(src + f0, a[k]);
        load_vec(src + f0 + half, b[k]);
      }
    }
    float c[V], sn[V];
#pragma unroll
    for (int e = 0; e < V; ++e) rope_cos_sin(pos[t], inv_freq[f0 + e], sign, c[e], sn[e]);
#pragma unroll
    for (int k = 0; k < kHeads; ++k) {
      if (h0 + k < heads) {
        float lo[V], hi[V];
#pragma unroll
        for (int e = 0; e < V; ++e) rope_rotate(a[k][e], b[k][e], c[e], sn[e], lo[e], hi[e]);
        Out* dst = y + t * ldy + int64_t(h0 + k) * D;
        store_vec(dst + f0, lo);
        store_vec(dst + f0 + half, hi);
      }
    }
  }
}

// ldx, ldy: the token strides of x and y in elements (0: heads D, the rows side by side)
template <class In, class Out>
cudaError_t launch(const In* x, Out* y, const int32_t* pos, const float* inv_freq, int64_t n,
                   int64_t heads, int D, float sign, bool vectorized, cudaStream_t s,
                   int64_t ldx = 0, int64_t ldy = 0) {
  if (n <= 0) return cudaSuccess;
  if (ldx == 0) ldx = heads * D;
  if (ldy == 0) ldy = heads * D;
  if (ldx < heads * D || ldy < heads * D) return cudaErrorInvalidValue;
  if (!vectorized) {
    rope_scalar_kernel<<<grid_for(n * heads * (D / 2), 256), 256, 0, s>>>(x, y, pos, inv_freq, n,
                                                                          heads, D, sign, ldx, ldy);
    return cudaGetLastError();
  }
  constexpr int V = 16 / sizeof(In);
  const int64_t items = n * ((heads + kHeads - 1) / kHeads) * (D / 2 / V);
  if (items <= INT32_MAX)
    rope_vec_kernel<In, Out, uint32_t><<<grid_for(items, 256), 256, 0, s>>>(
        x, y, pos, inv_freq, uint32_t(items), int(heads), D, sign, ldx, ldy);
  else
    rope_vec_kernel<In, Out, int64_t><<<grid_for(items, 256), 256, 0, s>>>(
        x, y, pos, inv_freq, items, int(heads), D, sign, ldx, ldy);
  return cudaGetLastError();
}

}  // namespace

// The half-head must be whole 16-byte input accesses (then every half-head of fp32 input and
// its fp16 output, or of bf16 in and out, starts 16- or 8-byte aligned).
bool rope_forward_is_vectorized(const float* x, const f16* y, int D) {
  return D > 0 && (D / 2) % 4 == 0 && ptr_aligned16(x) && ptr_aligned16(y);
}
// A token stride (ld) keeps every row as aligned as the first when it is a multiple of 8 bf16
// (16 bytes) or 4 (8 bytes of bf16 output).
bool rope_backward_is_vectorized(const bf16* dx, int D, int64_t ld) {
  return D > 0 && (D / 2) % 8 == 0 && ptr_aligned16(dx) && ld % 8 == 0;
}
// fp32 in (16-byte accesses), 4 bf16 out (8-byte accesses)
bool rope_backward_f32_is_vectorized(const float* g, const bf16* dx, int D, int64_t ld) {
  return D > 0 && (D / 2) % 4 == 0 && ptr_aligned16(g) &&
         (reinterpret_cast<uintptr_t>(dx) & 7u) == 0 && ld % 4 == 0;
}

cudaError_t rope_forward(const float* x, f16* y, const int32_t* pos, const float* inv_freq,
                         int64_t n, int64_t heads, int D, cudaStream_t s) {
  return launch(x, y, pos, inv_freq, n, heads, D, 1.f, rope_forward_is_vectorized(x, y, D), s);
}
cudaError_t rope_backward(bf16* dx, const int32_t* pos, const float* inv_freq, int64_t n,
                          int64_t heads, int D, cudaStream_t s, int64_t ld) {
  return launch<bf16, bf16>(dx, dx, pos, inv_freq, n, heads, D, -1.f,
                            rope_backward_is_vectorized(dx, D, ld), s, ld, ld);
}
cudaError_t rope_backward_f32(const float* g, bf16* dx, const int32_t* pos, const float* inv_freq,
                              int64_t n, int64_t heads, int D, cudaStream_t s, int64_t ld) {
  return launch(g, dx, pos, inv_freq, n, heads, D, -1.f,
                rope_backward_f32_is_vectorized(g, dx, D, ld), s, 0, ld);
}
cudaError_t rope_backward_f32_scalar(const float* g, bf16* dx, const int32_t* pos,
                                     const float* inv_freq, int64_t n, int64_t heads, int D,
                                     cudaStream_t s, int64_t ld) {
  return launch(g, dx, pos, inv_freq, n, heads, D, -1.f, false, s, 0, ld);
}
cudaError_t rope_forward_scalar(const float* x, f16* y, const int32_t* pos, const float* inv_freq,
                                int64_t n, int64_t heads, int D, cudaStream_t s) {
  return launch(x, y, pos, inv_freq, n, heads, D, 1.f, false, s);
}
cudaError_t rope_backward_scalar(bf16* dx, const int32_t* pos, const float* inv_freq, int64_t n,
                                 int64_t heads, int D, cudaStream_t s, int64_t ld) {
  return launch<bf16, bf16>(dx, dx, pos, inv_freq, n, heads, D, -1.f, false, s, ld, ld);
}

}  // namespace cuda
}  // namespace lora4j
