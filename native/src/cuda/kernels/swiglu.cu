/*
 * SwiGLU: h = silu(g) * u with silu(g) = g * sigmoid(g), elementwise.
 *   backward  dg = dh * u * sigmoid(g) * (1 + g * (1 - sigmoid(g))),  du = dh * silu(g)
 * Inputs bf16 (GEMM outputs), dh fp32, outputs bf16 (they feed the next GEMMs). The engine runs
 * the backward in place (dgate = gate, dup = up): each element is read and written by one thread.
 *
 * Two kernels with the same per-element arithmetic, hence the same bits: the vectorized one
 * (8 elements per 16-byte access, two chunks per thread per iteration; the launchers take it
 * when every pointer is 16-byte aligned, the n % 8 tail handled element by element) and the
 * scalar one (one element per thread), kept for any other pointer and as the tests' reference.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

__global__ void swiglu_fwd_scalar_kernel(const bf16* g, const bf16* u, bf16* h, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    h[i] = swiglu_fwd_one(g[i], u[i]);
}
__global__ void swiglu_bwd_scalar_kernel(const float* dh, const bf16* g, const bf16* u, bf16* dg,
                                         bf16* du, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    swiglu_bwd_one(dh[i], g[i], u[i], dg[i], du[i]);
}

namespace {

constexpr int kUnroll = 2;  // 8-element chunks per thread per iteration

__device__ __forceinline__ void swiglu_fwd_chunk(const Bf16x8& g, const Bf16x8& u, Bf16x8& h) {
#pragma unroll
  for (int j = 0; j < 8; ++j) h.v[j] = swiglu_fwd_one(g.v[j], u.v[j]);
}
__device__ __forceinline__ void swiglu_bwd_chunk(const float* dh8, const Bf16x8& g, const Bf16x8& u,
                                                 Bf16x8& dg, Bf16x8& du) {
#pragma unroll
  for (int j = 0; j < 8; ++j) swiglu_bwd_one(dh8[j], g.v[j], u.v[j], dg.v[j], du.v[j]);
}

// Chunks c = first + k * stride (k < kUnroll) are all loaded before any is stored: the stores may
// alias the inputs (in place), so the compiler could not move later loads above them itself.
__global__ void __launch_bounds__(256)
    swiglu_fwd_vec_kernel(const bf16* g, const bf16* u, bf16* h, int64_t n) {
  const int64_t chunks = n / 8, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t c0 = tid; c0 < chunks; c0 += kUnroll * stride) {
    Bf16x8 gv[kUnroll], uv[kUnroll], hv[kUnroll];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      int64_t c = c0 + k * stride;
      if (c < chunks) {
        gv[k] = load_bf16x8(g + 8 * c);
        uv[k] = load_bf16x8(u + 8 * c);
      }
    }
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      int64_t c = c0 + k * stride;
      if (c < chunks) {
        swiglu_fwd_chunk(gv[k], uv[k], hv[k]);
        store_bf16x8(h + 8 * c, hv[k]);
      }
    }
  }
  for (int64_t i = chunks * 8 + tid; i < n; i += stride)  // the n % 8 tail
    h[i] = swiglu_fwd_one(g[i], u[i]);
}

__global__ void __launch_bounds__(256)
    swiglu_bwd_vec_kernel(const float* dh, const bf16* g, const bf16* u, bf16* dg, bf16* du,
                          int64_t n) {
  const int64_t chunks = n / 8, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t c0 = tid; c0 < chunks; c0 += kUnroll * stride) {
    Bf16x8 gv[kUnroll], uv[kUnroll], dgv[kUnroll], duv[kUnroll];
    float dv[kUnroll][8];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      int64_t c = c0 + k * stride;
      if (c < chunks) {
        gv[k] = load_bf16x8(g + 8 * c);
        uv[k] = load_bf16x8(u + 8 * c);
        load_f32x8(dh + 8 * c, dv[k]);
      }
    }
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      int64_t c = c0 + k * stride;
      if (c < chunks) {
        swiglu_bwd_chunk(dv[k], gv[k], uv[k], dgv[k], duv[k]);
        store_bf16x8(dg + 8 * c, dgv[k]);
        store_bf16x8(du + 8 * c, duv[k]);
      }
    }
  }
  for (int64_t i = chunks * 8 + tid; i < n; i += stride)  // the n % 8 tail
    swiglu_bwd_one(dh[i], g[i], u[i], dg[i], du[i]);
}

// The backward with the down projection's LoRA input gradient folded in: the element (i, j) of
// dh gets s * sum_k t[i, k] A[k, j] (t = dy B of down, [tokens, r] bf16 with row stride ldt;
// A = down's lora_A, [r, I] bf16) before the SwiGLU backward, so that the engine needs no GEMM
// pass writing that term over all of dh. The sum runs k = 0 .. r - 1 with fmaf from 0, then
// d = fmaf(s, sum, dh), in both kernels: the same bits.
__device__ __forceinline__ float lora_dx_one(const bf16* trow, const bf16* A, int r, int64_t I,
                                             int64_t j) {
  float acc = 0.f;
  for (int k = 0; k < r; ++k)
    acc = fmaf(__bfloat162float(trow[k]), __bfloat162float(A[int64_t(k) * I + j]), acc);
  return acc;
}

// One element per thread (any alignment, any I): the tests' reference.
__global__ void swiglu_bwd_lora_scalar_kernel(const float* dh, const bf16* t, int64_t ldt,
                                              const bf16* A, int r, float s, const bf16* g,
                                              const bf16* u, bf16* dg, bf16* du, int64_t tokens,
                                              int64_t I) {
  const int64_t n = tokens * I;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / I, j = e % I;
    const float d = fmaf(s, lora_dx_one(t + i * ldt, A, r, I, j), dh[e]);
    swiglu_bwd_one(d, g[e], u[e], dg[e], du[e]);
  }
}

// Vectorized: a block of 256 threads covers 256 C columns (C = 8 or 4 per thread: 16- or 8-byte
// bf16 accesses) of kLoraTokens tokens; the tokens' t rows are staged in shared memory (float).
// With R > 0 (r <= R) each thread holds its C columns of A's r rows in registers, loaded once;
// with R = 0 it reads them once per token (from L1 after the first). The next token's dh, gate
// and up are loaded before this token's sum, so their latency hides behind it. Registers decide
// the speed (probe, 8192 x 14336 on an H200: r 16 with C 8 in registers 194 registers, 0.60 ms;
// from L1 0.49 ms; r 8 with C 8 in registers at 127 registers and two blocks per SM 0.37 ms;
// the plain backward 0.33 ms), so R x C stays at 64 and the launcher picks R = 8, C = 8 for
// r <= 8 and R = 16, C = 4 for r <= 16. Needs I % 8 == 0 and 16-byte aligned dh, gate, up,
// dgate, dup and A; r <= kSwigluLoraMaxRank.
constexpr int kLoraTokens = 32;
// C columns per thread: bf16 as 16- or 8-byte accesses (common.cuh's), dh as float4s.
template <int C>
struct LoraCols;
template <>
struct LoraCols<8> {
  using V = Bf16x8;
  static __device__ __forceinline__ V load(const bf16* p) { return load_bf16x8(p); }
  static __device__ __forceinline__ void store(bf16* p, const V& v) { store_bf16x8(p, v); }
  static __device__ __forceinline__ void load_dh(const float* p, float* d) { load_f32x8(p, d); }
};
template <>
struct LoraCols<4> {
  using V = Bf16x4;
  static __device__ __forceinline__ V load(const bf16* p) { return load_bf16x4(p); }
  static __device__ __forceinline__ void store(bf16* p, const V& v) { store_bf16x4(p, v); }
  static __device__ __forceinline__ void load_dh(const float* p, float* d) {
    const float4 x = *reinterpret_cast<const float4*>(p);
    d[0] = x.x, d[1] = x.y, d[2] = x.z, d[3] = x.w;
  }
};
template <int R, int C>
__global__ void __launch_bounds__(256, R > 0 ? 2 : 1)
    swiglu_bwd_lora_vec_kernel(const float* dh, const bf16* t, int64_t ldt, const bf16* A, int r,
                               float s, const bf16* g, const bf16* u, bf16* dg, bf16* du,
                               int64_t tokens, int64_t I) {
  using Cols = LoraCols<C>;
  using V = typename Cols::V;
  extern __shared__ float st[];  // [kLoraTokens][r]
  const int64_t i0 = int64_t(blockIdx.y) * kLoraTokens;
  const int nt = int(min(int64_t(kLoraTokens), tokens - i0));
  for (int q = threadIdx.x; q < nt * r; q += blockDim.x)
    st[q] = __bfloat162float(t[(i0 + q / r) * ldt + q % r]);
  __syncthreads();
  const int64_t j0 = int64_t(blockIdx.x) * (256 * C) + int64_t(threadIdx.x) * C;
  if (j0 >= I) return;
  V areg[R > 0 ? R : 1];
  if constexpr (R > 0) {
#pragma unroll
    for (int k = 0; k < R; ++k)
      if (k < r) areg[k] = Cols::load(A + int64_t(k) * I + j0);
  }
  float dv[C];
  V gv, uv;
  Cols::load_dh(dh + i0 * I + j0, dv);
  gv = Cols::load(g + i0 * I + j0);
  uv = Cols::load(u + i0 * I + j0);
  for (int ti = 0; ti < nt; ++ti) {
    const int64_t e = (i0 + ti) * I + j0;
    float dn[C];
    V gn, un;
    if (ti + 1 < nt) {
      Cols::load_dh(dh + e + I, dn);
      gn = Cols::load(g + e + I);
      un = Cols::load(u + e + I);
    }
    float acc[C];
#pragma unroll
    for (int jj = 0; jj < C; ++jj) acc[jj] = 0.f;
    if constexpr (R > 0) {
#pragma unroll
      for (int k = 0; k < R; ++k)
        if (k < r) {
          const float tk = st[ti * r + k];
#pragma unroll
          for (int jj = 0; jj < C; ++jj)
            acc[jj] = fmaf(tk, __bfloat162float(areg[k].v[jj]), acc[jj]);
        }
    } else {
      for (int k = 0; k < r; ++k) {
        const V a = Cols::load(A + int64_t(k) * I + j0);
        const float tk = st[ti * r + k];
#pragma unroll
        for (int jj = 0; jj < C; ++jj) acc[jj] = fmaf(tk, __bfloat162float(a.v[jj]), acc[jj]);
      }
    }
    V dgv, duv;
#pragma unroll
    for (int jj = 0; jj < C; ++jj)
      swiglu_bwd_one(fmaf(s, acc[jj], dv[jj]), gv.v[jj], uv.v[jj], dgv.v[jj], duv.v[jj]);
    Cols::store(dg + e, dgv);
    Cols::store(du + e, duv);
    if (ti + 1 < nt) {
#pragma unroll
      for (int jj = 0; jj < C; ++jj) dv[jj] = dn[jj];
      gv = gn;
      uv = un;
    }
  }
}

template <int R, int C>
cudaError_t launch_lora_vec(const float* dh, const bf16* t, int64_t ldt, const bf16* A, int r,
                            float s, const bf16* g, const bf16* u, bf16* dg, bf16* du,
                            int64_t tokens, int64_t I, cudaStream_t st) {
  const dim3 grid(unsigned((I + 256 * C - 1) / (256 * C)),
                  unsigned((tokens + kLoraTokens - 1) / kLoraTokens));
  if (grid.y > 65535u) return cudaErrorInvalidConfiguration;
  swiglu_bwd_lora_vec_kernel<R, C>
      <<<grid, 256, size_t(kLoraTokens) * size_t(r) * sizeof(float), st>>>(dh, t, ldt, A, r, s, g,
                                                                           u, dg, du, tokens, I);
  return cudaGetLastError();
}

// kUnroll chunks per thread (a grid-stride loop beyond grid_for's cap).
unsigned vec_grid(int64_t n) { return grid_for((n / 8 + kUnroll - 1) / kUnroll, 256); }

}  // namespace

bool swiglu_forward_is_vectorized(const bf16* gate, const bf16* up, const bf16* h) {
  return ptr_aligned16(gate) && ptr_aligned16(up) && ptr_aligned16(h);
}
bool swiglu_backward_is_vectorized(const float* dh, const bf16* gate, const bf16* up,
                                   const bf16* dgate, const bf16* dup) {
  return ptr_aligned16(dh) && ptr_aligned16(gate) && ptr_aligned16(up) && ptr_aligned16(dgate) &&
         ptr_aligned16(dup);
}

cudaError_t swiglu_forward(const bf16* gate, const bf16* up, bf16* h, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  if (!swiglu_forward_is_vectorized(gate, up, h)) return swiglu_forward_scalar(gate, up, h, n, s);
  swiglu_fwd_vec_kernel<<<vec_grid(n), 256, 0, s>>>(gate, up, h, n);
  return cudaGetLastError();
}
cudaError_t swiglu_backward(const float* dh, const bf16* gate, const bf16* up, bf16* dgate,
                            bf16* dup, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  if (!swiglu_backward_is_vectorized(dh, gate, up, dgate, dup))
    return swiglu_backward_scalar(dh, gate, up, dgate, dup, n, s);
  swiglu_bwd_vec_kernel<<<vec_grid(n), 256, 0, s>>>(dh, gate, up, dgate, dup, n);
  return cudaGetLastError();
}

cudaError_t swiglu_forward_scalar(const bf16* gate, const bf16* up, bf16* h, int64_t n,
                                  cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  swiglu_fwd_scalar_kernel<<<grid_for(n, 256), 256, 0, s>>>(gate, up, h, n);
  return cudaGetLastError();
}
cudaError_t swiglu_backward_scalar(const float* dh, const bf16* gate, const bf16* up, bf16* dgate,
                                   bf16* dup, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  swiglu_bwd_scalar_kernel<<<grid_for(n, 256), 256, 0, s>>>(dh, gate, up, dgate, dup, n);
  return cudaGetLastError();
}

bool swiglu_backward_lora_is_vectorized(const float* dh, const bf16* A, int r, const bf16* gate,
                                        const bf16* up, const bf16* dgate, const bf16* dup,
                                        int64_t I) {
  return I % 8 == 0 && r >= 1 && r <= kSwigluLoraMaxRank && ptr_aligned16(A) &&
         swiglu_backward_is_vectorized(dh, gate, up, dgate, dup);
}
cudaError_t swiglu_backward_lora(const float* dh, const bf16* t, int64_t ldt, const bf16* A, int r,
                                 float s, const bf16* gate, const bf16* up, bf16* dgate, bf16* dup,
                                 int64_t tokens, int64_t I, cudaStream_t st) {
  if (tokens <= 0 || I <= 0) return cudaSuccess;
  if (r < 1 || ldt < r) return cudaErrorInvalidValue;
  if (!swiglu_backward_lora_is_vectorized(dh, A, r, gate, up, dgate, dup, I))
    return swiglu_backward_lora_scalar(dh, t, ldt, A, r, s, gate, up, dgate, dup, tokens, I, st);
  if (r <= 8)
    return launch_lora_vec<8, 8>(dh, t, ldt, A, r, s, gate, up, dgate, dup, tokens, I, st);
  if (r <= 16)
    return launch_lora_vec<16, 4>(dh, t, ldt, A, r, s, gate, up, dgate, dup, tokens, I, st);
  return launch_lora_vec<0, 8>(dh, t, ldt, A, r, s, gate, up, dgate, dup, tokens, I, st);
}
cudaError_t swiglu_backward_lora_scalar(const float* dh, const bf16* t, int64_t ldt, const bf16* A,
                                        int r, float s, const bf16* gate, const bf16* up,
                                        bf16* dgate, bf16* dup, int64_t tokens, int64_t I,
                                        cudaStream_t st) {
  if (tokens <= 0 || I <= 0) return cudaSuccess;
  if (r < 1 || ldt < r) return cudaErrorInvalidValue;
  swiglu_bwd_lora_scalar_kernel<<<grid_for(tokens * I, 256), 256, 0, st>>>(
      dh, t, ldt, A, r, s, gate, up, dgate, dup, tokens, I);
  return cudaGetLastError();
}

// The fused down input gradient + SwiGLU backward lives in swiglu_dx_sm90.cu (sm_90a only).
bool swiglu_dx_fused_accepts(const SwigluDxParams& p) {
#ifdef LORA4J_HAVE_SM90A
  return swiglu_dx_sm90_accepts(p);
#else
  (void)p;
  return false;
#endif
}
cudaError_t swiglu_dx_fused(const SwigluDxParams& p, cudaStream_t s) {
#ifdef LORA4J_HAVE_SM90A
  return swiglu_dx_sm90(p, s);
#else
  (void)p;
  (void)s;
  return cudaErrorNotSupported;
#endif
}

// The gate/up forward with the SwiGLU forward lives in swiglu_gu_sm90.cu (sm_90a only).
bool swiglu_gu_fused_accepts(const SwigluGuParams& p) {
#ifdef LORA4J_HAVE_SM90A
  return swiglu_gu_sm90_accepts(p);
#else
  (void)p;
  return false;
#endif
}
cudaError_t swiglu_gu_fused(const SwigluGuParams& p, cudaStream_t s) {
#ifdef LORA4J_HAVE_SM90A
  return swiglu_gu_sm90(p, s);
#else
  (void)p;
  (void)s;
  return cudaErrorNotSupported;
#endif
}

}  // namespace cuda
}  // namespace lora4j
