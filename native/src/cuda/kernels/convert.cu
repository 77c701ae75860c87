/*
 * Conversions between fp32 and bf16 (round to nearest even), and the LoRA merge
 * W <- bf16(W + scale * B A) computed from the fp32 master copies of A [r, in] and B [out, r].
 * Grid-stride loops: any n works with a bounded grid.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

__global__ void f32_to_bf16_kernel(const float* x, bf16* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16_rn(x[i]);
}
__global__ void bf16_to_f32_kernel(const bf16* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __bfloat162float(x[i]);
}
__global__ void lora_merge_kernel(bf16* w, const float* a, const float* b, float scale, int64_t out,
                                  int64_t in, int64_t r) {
  int64_t n = out * in;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o = i / in, c = i % in;
    float acc = 0.f;
    for (int64_t k = 0; k < r; ++k) acc += b[o * r + k] * a[k * in + c];
    w[i] = __float2bfloat16_rn(__bfloat162float(w[i]) + scale * acc);
  }
}

cudaError_t f32_to_bf16(const float* x, bf16* y, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  f32_to_bf16_kernel<<<grid_for(n, 256), 256, 0, s>>>(x, y, n);
  return cudaGetLastError();
}
cudaError_t bf16_to_f32(const bf16* x, float* y, int64_t n, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  bf16_to_f32_kernel<<<grid_for(n, 256), 256, 0, s>>>(x, y, n);
  return cudaGetLastError();
}
cudaError_t lora_merge_weight(bf16* w, const float* a, const float* b, float scale, int64_t out,
                              int64_t in, int64_t r, cudaStream_t s) {
  lora_merge_kernel<<<grid_for(out * in, 256), 256, 0, s>>>(w, a, b, scale, out, in, r);
  return cudaGetLastError();
}

// dst.p[i][j] += src[i * len + j] for i < count: one launch for a group's slices (blockIdx.y is
// the slice)
__global__ void add_f32_slices_kernel(const float* src, int64_t len, F32Slices dst) {
  const float* s = src + int64_t(blockIdx.y) * len;
  float* d = dst.p[blockIdx.y];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < len;
       i += int64_t(gridDim.x) * blockDim.x)
    d[i] += s[i];
}
cudaError_t add_f32_slices(const float* src, int64_t len, const F32Slices& dst, int count,
                           cudaStream_t s) {
  if (count < 1 || count > F32Slices::kMax) return cudaErrorInvalidValue;
  if (len <= 0) return cudaSuccess;
  add_f32_slices_kernel<<<dim3(grid_for(len, 256, 1024), unsigned(count)), 256, 0, s>>>(src, len,
                                                                                        dst);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
