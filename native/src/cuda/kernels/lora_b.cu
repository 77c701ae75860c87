/*
 * The LoRA up-projection of an unfolded projection whose output is the fp32 residual stream
 * (o_proj and down_proj):  y = residual + xa B^T,  xa [n, r] bf16 (row stride ldxa), B = lora_B
 * [O, r] bf16, residual and y [n, O] fp32. The frozen GEMM then adds x W^T onto y in its epilogue.
 *
 * As a cuBLASLt GEMM with K = r this product ran at ~2.2x its memory floor (8 bytes per output
 * element: the residual read, y written; 0.132 ms per call at 8192 x 4096 against ~0.062). Here
 * each thread keeps C columns of B in registers (fp32, C x r values, loaded once) and walks a
 * share of the rows: per row it reads xa's r values (the same 16-byte loads for every thread of
 * the block, served by L1), C residual values, and writes C outputs, r fused multiply-adds each.
 * Per element: acc = sum over k from 0 of fmaf(xa[k], B[j, k], acc), then y = residual + acc (the
 * GEMM's alpha 1, beta 1 form); test_ops_cuda checks it against float64 on the same bf16 values.
 *
 * With the residual stream in bf16 (LORA4J_RESIDUAL=bf16) the frozen GEMM runs first into an
 * fp32 z (its C and D would have to share bf16) and lora_b_residual_bf16 finishes the sum:
 * y = bf16((float(residual) + acc) + z), the fp32 form's order, rounded once; r 0 adds only z.
 */
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/kernels.h"

namespace lora4j {
namespace cuda {

namespace {
constexpr int kThreads = 256;
constexpr int kTargetBlocks = 1024;  // ~4 waves of 2 blocks per SM on a 132-SM GPU

// columns per thread: 4 (float4 accesses) up to rank 16, 2 at rank 32 (64 fp32 B values either
// way, so that two blocks fit an SM's registers)
__host__ __device__ constexpr int cols_for(int r) { return r <= 16 ? 4 : 2; }

template <int C>
struct Vec;
template <>
struct Vec<4> {
  using T = float4;
  __device__ static void to(const T& v, float* f) {
    f[0] = v.x, f[1] = v.y, f[2] = v.z, f[3] = v.w;
  }
  __device__ static T from(const float* f) { return make_float4(f[0], f[1], f[2], f[3]); }
};
template <>
struct Vec<2> {
  using T = float2;
  __device__ static void to(const T& v, float* f) { f[0] = v.x, f[1] = v.y; }
  __device__ static T from(const float* f) { return make_float2(f[0], f[1]); }
};

// R bf16 values from a 16-byte aligned address, as floats (common.cuh's 16-byte loads)
template <int R>
__device__ __forceinline__ void load_row(const bf16* p, float* f) {
#pragma unroll
  for (int c = 0; c < R / 8; ++c) {
    const Bf16x8 u = load_bf16x8(p + 8 * c);
#pragma unroll
    for (int e = 0; e < 8; ++e) f[c * 8 + e] = __bfloat162float(u.v[e]);
  }
}

constexpr int kRowsInFlight = 4;

// One row's C outputs: y[j] = r[j] + sum over k from 0 of fmaf(xa[k], B[j, k], .)
template <int R, int C>
__device__ __forceinline__ void row_out(const bf16* xa_row, const float (&b)[C][R], const float* r,
                                        float* y_row) {
  float x[R];
  load_row<R>(xa_row, x);
  float acc[C];
#pragma unroll
  for (int c = 0; c < C; ++c) {
    acc[c] = 0.f;
#pragma unroll
    for (int k = 0; k < R; ++k) acc[c] = fmaf(x[k], b[c][k], acc[c]);
    acc[c] = r[c] + acc[c];
  }
  *reinterpret_cast<typename Vec<C>::T*>(y_row) = Vec<C>::from(acc);
}

template <int R>
__global__ void __launch_bounds__(kThreads, 2)
    lora_b_residual_kernel(const bf16* __restrict__ xa, int64_t ldxa, const bf16* __restrict__ B,
                           const float* residual, float* y, int64_t n, int64_t O,
                           int64_t rows_per_block) {
  constexpr int C = cols_for(R);
  using V = Vec<C>;
  const int64_t j0 = (int64_t(blockIdx.x) * kThreads + threadIdx.x) * C;
  if (j0 >= O) return;  // no block-wide synchronization below
  float b[C][R];
#pragma unroll
  for (int c = 0; c < C; ++c) load_row<R>(B + (j0 + c) * R, b[c]);
  const int64_t i0 = int64_t(blockIdx.y) * rows_per_block;
  const int64_t i1 = i0 + rows_per_block < n ? i0 + rows_per_block : n;
  // kRowsInFlight rows' residual loads are issued before the first of their sums, so that many
  // 16-byte loads per thread are in flight (two per thread left it at 1.75x its memory floor).
  // Each row's output is stored after its own residual was read: y may be the residual itself.
  int64_t i = i0;
  for (; i + kRowsInFlight <= i1; i += kRowsInFlight) {
    float r[kRowsInFlight][C] = {};
#pragma unroll
    for (int q = 0; q < kRowsInFlight; ++q)
      if (residual)
        V::to(*reinterpret_cast<const typename V::T*>(residual + (i + q) * O + j0), r[q]);
#pragma unroll
    for (int q = 0; q < kRowsInFlight; ++q)
      row_out<R, C>(xa + (i + q) * ldxa, b, r[q], y + (i + q) * O + j0);
  }
  for (; i < i1; ++i) {
    float r[C] = {};
    if (residual) V::to(*reinterpret_cast<const typename V::T*>(residual + i * O + j0), r);
    row_out<R, C>(xa + i * ldxa, b, r, y + i * O + j0);
  }
}

template <int R>
cudaError_t launch(const bf16* xa, int64_t ldxa, const bf16* B, const float* residual, float* y,
                   int64_t n, int64_t O, cudaStream_t s) {
  constexpr int C = cols_for(R);
  const int64_t col_blocks = (O / C + kThreads - 1) / kThreads;
  int64_t row_blocks = std::max<int64_t>(1, std::min<int64_t>(n, kTargetBlocks / col_blocks));
  const int64_t rows = (n + row_blocks - 1) / row_blocks;
  row_blocks = (n + rows - 1) / rows;
  lora_b_residual_kernel<R><<<dim3(unsigned(col_blocks), unsigned(row_blocks)), kThreads, 0, s>>>(
      xa, ldxa, B, residual, y, n, O, rows);
  return cudaGetLastError();
}

// C bf16 values as floats and back (C = 4: 8 bytes, C = 2: 4 bytes, aligned so)
template <int C>
__device__ __forceinline__ void load_bf(const bf16* p, float* f) {
  if constexpr (C == 4) {
    const Bf16x4 u = load_bf16x4(p);
#pragma unroll
    for (int e = 0; e < 4; ++e) f[e] = __bfloat162float(u.v[e]);
  } else {
    const float2 v = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
    f[0] = v.x, f[1] = v.y;
  }
}
template <int C>
__device__ __forceinline__ void store_bf(bf16* p, const float* f) {
  if constexpr (C == 4) {
    Bf16x4 u;
#pragma unroll
    for (int e = 0; e < 4; ++e) u.v[e] = __float2bfloat16_rn(f[e]);
    store_bf16x4(p, u);
  } else {
    *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(f[0], f[1]);
  }
}

__host__ __device__ constexpr int cols_bf16(int r) { return r == 0 ? 4 : cols_for(r); }

// One row's C outputs: y[j] = bf16((res[j] + sum over k of fmaf(xa[k], B[j, k], .)) + z[j])
template <int R, int C>
__device__ __forceinline__ void row_out_bf16(const bf16* xa_row, const float (&b)[C][R > 0 ? R : 1],
                                             const float* res, const float* z, bf16* y_row) {
  float out[C];
  if constexpr (R > 0) {
    float x[R];
    load_row<R>(xa_row, x);
#pragma unroll
    for (int c = 0; c < C; ++c) {
      float acc = 0.f;
#pragma unroll
      for (int k = 0; k < R; ++k) acc = fmaf(x[k], b[c][k], acc);
      out[c] = (res[c] + acc) + z[c];
    }
  } else {
#pragma unroll
    for (int c = 0; c < C; ++c) out[c] = res[c] + z[c];
  }
  store_bf<C>(y_row, out);
}

template <int R>
__global__ void __launch_bounds__(kThreads, 2)
    lora_b_residual_bf16_kernel(const bf16* __restrict__ xa, int64_t ldxa,
                                const bf16* __restrict__ B, const bf16* residual,
                                const float* __restrict__ z, bf16* y, int64_t n, int64_t O,
                                int64_t rows_per_block) {
  constexpr int C = cols_bf16(R);
  using V = Vec<C>;
  const int64_t j0 = (int64_t(blockIdx.x) * kThreads + threadIdx.x) * C;
  if (j0 >= O) return;  // no block-wide synchronization below
  float b[C][R > 0 ? R : 1];
  if constexpr (R > 0) {
#pragma unroll
    for (int c = 0; c < C; ++c) load_row<R>(B + (j0 + c) * R, b[c]);
  }
  const int64_t i0 = int64_t(blockIdx.y) * rows_per_block;
  const int64_t i1 = i0 + rows_per_block < n ? i0 + rows_per_block : n;
  // as lora_b_residual_kernel: the rows' loads issued first; each row stored after its own
  // residual was read (y may be the residual)
  int64_t i = i0;
  for (; i + kRowsInFlight <= i1; i += kRowsInFlight) {
    float r[kRowsInFlight][C], zz[kRowsInFlight][C];
#pragma unroll
    for (int q = 0; q < kRowsInFlight; ++q) {
      load_bf<C>(residual + (i + q) * O + j0, r[q]);
      V::to(*reinterpret_cast<const typename V::T*>(z + (i + q) * O + j0), zz[q]);
    }
#pragma unroll
    for (int q = 0; q < kRowsInFlight; ++q)
      row_out_bf16<R, C>(xa + (i + q) * ldxa, b, r[q], zz[q], y + (i + q) * O + j0);
  }
  for (; i < i1; ++i) {
    float r[C], zz[C];
    load_bf<C>(residual + i * O + j0, r);
    V::to(*reinterpret_cast<const typename V::T*>(z + i * O + j0), zz);
    row_out_bf16<R, C>(xa + i * ldxa, b, r, zz, y + i * O + j0);
  }
}

template <int R>
cudaError_t launch_bf16(const bf16* xa, int64_t ldxa, const bf16* B, const bf16* residual,
                        const float* z, bf16* y, int64_t n, int64_t O, cudaStream_t s) {
  constexpr int C = cols_bf16(R);
  const int64_t col_blocks = (O / C + kThreads - 1) / kThreads;
  int64_t row_blocks = std::max<int64_t>(1, std::min<int64_t>(n, kTargetBlocks / col_blocks));
  const int64_t rows = (n + row_blocks - 1) / row_blocks;
  row_blocks = (n + rows - 1) / rows;
  lora_b_residual_bf16_kernel<R>
      <<<dim3(unsigned(col_blocks), unsigned(row_blocks)), kThreads, 0, s>>>(xa, ldxa, B, residual,
                                                                             z, y, n, O, rows);
  return cudaGetLastError();
}
}  // namespace

bool lora_b_residual_supported(const bf16* xa, int64_t ldxa, const bf16* B, int r,
                               const float* residual, const float* y, int64_t O) {
  auto al = [](const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; };
  if (r != 8 && r != 16 && r != 32) return false;
  const size_t vec = size_t(cols_for(r)) * sizeof(float);
  return O > 0 && O % cols_for(r) == 0 && O / cols_for(r) < (int64_t(1) << 30) && ldxa % 8 == 0 &&
         al(xa, 16) && al(B, 16) && al(y, vec) && (!residual || al(residual, vec));
}

cudaError_t lora_b_residual(const bf16* xa, int64_t ldxa, const bf16* B, int r,
                            const float* residual, float* y, int64_t n, int64_t O, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  if (!lora_b_residual_supported(xa, ldxa, B, r, residual, y, O)) return cudaErrorInvalidValue;
  switch (r) {
    case 8:
      return launch<8>(xa, ldxa, B, residual, y, n, O, s);
    case 16:
      return launch<16>(xa, ldxa, B, residual, y, n, O, s);
    default:
      return launch<32>(xa, ldxa, B, residual, y, n, O, s);
  }
}

bool lora_b_residual_bf16_supported(const bf16* xa, int64_t ldxa, const bf16* B, int r,
                                    const bf16* residual, const float* z, const bf16* y,
                                    int64_t O) {
  auto al = [](const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; };
  if (r != 0 && r != 8 && r != 16 && r != 32) return false;
  const int64_t c = cols_bf16(r);
  const bool lora = r == 0 || (ldxa % 8 == 0 && al(xa, 16) && al(B, 16));
  return lora && residual && z && y && O > 0 && O % c == 0 && O / c < (int64_t(1) << 30) &&
         al(residual, size_t(c) * 2) && al(y, size_t(c) * 2) && al(z, size_t(c) * 4);
}

cudaError_t lora_b_residual_bf16(const bf16* xa, int64_t ldxa, const bf16* B, int r,
                                 const bf16* residual, const float* z, bf16* y, int64_t n,
                                 int64_t O, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  if (!lora_b_residual_bf16_supported(xa, ldxa, B, r, residual, z, y, O))
    return cudaErrorInvalidValue;
  switch (r) {
    case 0:
      return launch_bf16<0>(xa, ldxa, B, residual, z, y, n, O, s);
    case 8:
      return launch_bf16<8>(xa, ldxa, B, residual, z, y, n, O, s);
    case 16:
      return launch_bf16<16>(xa, ldxa, B, residual, z, y, n, O, s);
    default:
      return launch_bf16<32>(xa, ldxa, B, residual, z, y, n, O, s);
  }
}

}  // namespace cuda
}  // namespace lora4j
