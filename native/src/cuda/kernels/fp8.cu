/*
 * A bf16 matrix quantized to e4m3 with one power-of-two scale for the whole matrix, for the FP8
 * GEMMs of the q/k residue (the engine's q and k projections run a second GEMM on the bf16
 * rounding residue of their input; the residue is ~2^-8 of the input, so its product needs far
 * fewer bits than bf16 gives it). Two passes on the stream: the largest magnitude (an atomic
 * max on the float's bits, which order as integers for non-negative floats: the same result
 * whatever the order), then the quantization, whose first thread also writes the dequantization
 * scale 1 / S where cuBLASLt reads it (CUBLASLT_MATMUL_DESC_A/B_SCALE_POINTER).
 */

#include <cuda_fp8.h>

#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

namespace {

__global__ void absmax_kernel(const bf16* w, int64_t rows, int64_t cols, int64_t ld,
                              unsigned int* amax_bits) {
  __shared__ float scratch[32];
  float m = 0.f;
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x)
    m = fmaxf(m, fabsf(__bfloat162float(w[(e / cols) * ld + e % cols])));
  m = block_max(m, scratch);
  if (threadIdx.x == 0) atomicMax(amax_bits, __float_as_uint(m));
}

__global__ void quantize_kernel(const bf16* w, int64_t rows, int64_t cols, int64_t ld, uint8_t* out,
                                float* scales) {
  const float s = e4m3_pow2_scale(scales[0]);
  if (blockIdx.x == 0 && threadIdx.x == 0) scales[1] = 1.f / s;
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x)
    out[e] = uint8_t(__nv_cvt_float_to_fp8(__bfloat162float(w[(e / cols) * ld + e % cols]) * s,
                                           __NV_SATFINITE, __NV_E4M3));
}

}  // namespace

cudaError_t e4m3_quantize(const bf16* w, int64_t rows, int64_t cols, int64_t ld, uint8_t* out,
                          float* scales, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (ld < cols) return cudaErrorInvalidValue;
  cudaError_t e = cudaMemsetAsync(scales, 0, sizeof(float), s);
  if (e != cudaSuccess) return e;
  const unsigned grid = grid_for(rows * cols, 256);
  absmax_kernel<<<grid, 256, 0, s>>>(w, rows, cols, ld, reinterpret_cast<unsigned int*>(scales));
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  quantize_kernel<<<grid, 256, 0, s>>>(w, rows, cols, ld, out, scales);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
