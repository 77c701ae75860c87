/*
 * Kernels of the single-op benchmarks (see bench_baselines.h). The materialized attention
 * variant is what an eager framework does: S = scale Q K^T for every head with a GEMM (fp32
 * [S, S] per head), this softmax over each row with the causal mask, P V with a second GEMM, P
 * kept (bf16) for the backward; there dP = dO V^T by GEMM, dS = P (dP - rowsum(P dP)) here,
 * and dQ, dK, dV by GEMMs. One block per score row; the row stays in L1/L2 between its passes.
 */
#include "bench/cuda/bench_baselines.h"
#include "cuda/kernels/common.cuh"
#include "bench/op_bench.h"

namespace lora4j {
namespace cuda {
namespace {

template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ bf16 from_float<bf16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}

template <class T>
__global__ void fill_kernel(T* x, int64_t n, uint64_t seed, uint32_t tensor, float scale,
                            float offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    x[i] = from_float<T>(bench_uniform(seed, tensor, uint64_t(i)) * scale + offset);
}

template <class T>
cudaError_t fill(T* x, int64_t n, uint64_t seed, uint32_t tensor, float scale, float offset,
                 cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  fill_kernel<T><<<grid_for(n, 256), 256, 0, s>>>(x, n, seed, tensor, scale, offset);
  return cudaGetLastError();
}

template <class T>
__global__ void to_f32_kernel(const T* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = float(x[i]);
}

__global__ void softmax_kernel(const float* s, bf16* p, float* lse, int64_t S) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x, i = r % S;
  const float* row = s + r * S;
  bf16* prow = p + r * S;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) mx = fmaxf(mx, row[j]);
  mx = block_max(mx, scratch);
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) sum += expf(row[j] - mx);
  sum = block_sum(sum, scratch);
  const float l = mx + logf(sum);
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x)
    prow[j] = __float2bfloat16_rn(j <= i ? expf(row[j] - l) : 0.f);
  if (threadIdx.x == 0 && lse) lse[r] = l;
}

__global__ void softmax_backward_kernel(const bf16* p, const float* dp, bf16* ds, int64_t S) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x, i = r % S;
  const bf16* prow = p + r * S;
  const float* dprow = dp + r * S;
  bf16* dsrow = ds + r * S;
  float delta = 0.f;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x)
    delta += __bfloat162float(prow[j]) * dprow[j];
  delta = block_sum(delta, scratch);
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x)
    dsrow[j] = __float2bfloat16_rn(j <= i ? __bfloat162float(prow[j]) * (dprow[j] - delta) : 0.f);
}

__global__ void add_bf16_kernel(bf16* y, const bf16* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16_rn(__bfloat162float(y[i]) + __bfloat162float(x[i]));
}

__global__ void add_f32_kernel(float* y, const float* x, float c, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] += c * x[i];
}

}  // namespace

cudaError_t bench_fill(float* x, int64_t n, uint64_t seed, uint32_t tensor, float scale,
                       float offset, cudaStream_t s) {
  return fill(x, n, seed, tensor, scale, offset, s);
}
cudaError_t bench_fill(bf16* x, int64_t n, uint64_t seed, uint32_t tensor, float scale,
                       float offset, cudaStream_t s) {
  return fill(x, n, seed, tensor, scale, offset, s);
}
cudaError_t bench_fill(__half* x, int64_t n, uint64_t seed, uint32_t tensor, float scale,
                       float offset, cudaStream_t s) {
  return fill(x, n, seed, tensor, scale, offset, s);
}

cudaError_t bench_to_f32(const bf16* x, float* y, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  to_f32_kernel<bf16><<<grid_for(n, 256), 256, 0, s>>>(x, y, n);
  return cudaGetLastError();
}
cudaError_t bench_to_f32(const __half* x, float* y, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  to_f32_kernel<__half><<<grid_for(n, 256), 256, 0, s>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t causal_softmax_rows(const float* s, bf16* p, float* lse, int64_t rows, int64_t S,
                                cudaStream_t st) {
  if (rows <= 0) return cudaSuccess;
  if (rows > 0x7FFFFFFF) return cudaErrorInvalidValue;
  softmax_kernel<<<unsigned(rows), 256, 0, st>>>(s, p, lse, S);
  return cudaGetLastError();
}

cudaError_t causal_softmax_backward_rows(const bf16* p, const float* dp, bf16* ds, int64_t rows,
                                         int64_t S, cudaStream_t st) {
  if (rows <= 0) return cudaSuccess;
  if (rows > 0x7FFFFFFF) return cudaErrorInvalidValue;
  softmax_backward_kernel<<<unsigned(rows), 256, 0, st>>>(p, dp, ds, S);
  return cudaGetLastError();
}

cudaError_t add_inplace(bf16* y, const bf16* x, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  add_bf16_kernel<<<grid_for(n, 256), 256, 0, s>>>(y, x, n);
  return cudaGetLastError();
}
cudaError_t add_inplace(float* y, const float* x, float c, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  add_f32_kernel<<<grid_for(n, 256), 256, 0, s>>>(y, x, c, n);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
