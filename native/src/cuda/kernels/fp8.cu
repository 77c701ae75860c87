/*
 * A bf16 matrix quantized to e4m3 with one power-of-two scale for the whole matrix, for the FP8
 * GEMMs of the q/k residue (the engine's q and k projections run a second GEMM on the bf16
 * rounding residue of their input; the residue is ~2^-8 of the input, so its product needs far
 * fewer bits than bf16 gives it). Two passes on the stream: the largest magnitude (one atomic
 * max per block on the float's bits, which order as integers for non-negative floats: the same
 * result whatever the order), then the quantization, whose first thread also writes the
 * dequantization scale 1 / S where cuBLASLt reads it (CUBLASLT_MATMUL_DESC_A/B_SCALE_POINTER).
 * Blocks take whole rows (row = blockIdx.x, then every gridDim.x-th), threads 8 columns at a
 * time (16-byte loads, 8-byte stores) where cols and ld are multiples of 8 and w is 16-byte
 * aligned, else one column at a time; the grid is capped so that the atomics stay few.
 */

#include <cuda_fp8.h>

#include <algorithm>

#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

namespace {

constexpr int kQuantThreads = 256;
constexpr int kQuantMaxBlocks = 1024;

__device__ __forceinline__ uint8_t to_e4m3(float v) {
  return uint8_t(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

template <bool kVec>
__global__ void __launch_bounds__(kQuantThreads)
    absmax_kernel(const bf16* w, int64_t rows, int64_t cols, int64_t ld, unsigned int* amax_bits) {
  __shared__ float scratch[32];
  float m = 0.f;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const bf16* row = w + r * ld;
    if constexpr (kVec) {
      for (int64_t c = int64_t(threadIdx.x) * 8; c < cols; c += int64_t(blockDim.x) * 8) {
        const Bf16x8 v = load_bf16x8(row + c);
#pragma unroll
        for (int j = 0; j < 8; ++j) m = fmaxf(m, fabsf(__bfloat162float(v.v[j])));
      }
    } else {
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        m = fmaxf(m, fabsf(__bfloat162float(row[c])));
    }
  }
  m = block_max(m, scratch);
  if (threadIdx.x == 0) atomicMax(amax_bits, __float_as_uint(m));
}

template <bool kVec>
__global__ void __launch_bounds__(kQuantThreads)
    quantize_kernel(const bf16* w, int64_t rows, int64_t cols, int64_t ld, uint8_t* out,
                    float* scales) {
  const float s = e4m3_pow2_scale(scales[0]);
  if (blockIdx.x == 0 && threadIdx.x == 0) scales[kE4m3InvScale] = 1.f / s;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const bf16* row = w + r * ld;
    uint8_t* orow = out + r * cols;
    if constexpr (kVec) {
      for (int64_t c = int64_t(threadIdx.x) * 8; c < cols; c += int64_t(blockDim.x) * 8) {
        const Bf16x8 v = load_bf16x8(row + c);
        uint32_t lo = 0, hi = 0;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          lo |= uint32_t(to_e4m3(__bfloat162float(v.v[j]) * s)) << (8 * j);
          hi |= uint32_t(to_e4m3(__bfloat162float(v.v[j + 4]) * s)) << (8 * j);
        }
        *reinterpret_cast<uint2*>(orow + c) = make_uint2(lo, hi);
      }
    } else {
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        orow[c] = to_e4m3(__bfloat162float(row[c]) * s);
    }
  }
}

template <bool kVec>
cudaError_t launch_quantize(const bf16* w, int64_t rows, int64_t cols, int64_t ld, uint8_t* out,
                            float* scales, cudaStream_t s) {
  const unsigned grid = unsigned(std::min<int64_t>(rows, kQuantMaxBlocks));
  absmax_kernel<kVec>
      <<<grid, kQuantThreads, 0, s>>>(w, rows, cols, ld, reinterpret_cast<unsigned int*>(scales));
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  quantize_kernel<kVec><<<grid, kQuantThreads, 0, s>>>(w, rows, cols, ld, out, scales);
  return cudaGetLastError();
}

}  // namespace

bool e4m3_quantize_is_vectorized(const bf16* w, int64_t cols, int64_t ld, const uint8_t* out) {
  return cols % 8 == 0 && ld % 8 == 0 && ptr_aligned16(w) &&
         (reinterpret_cast<uintptr_t>(out) & 7u) == 0;
}

cudaError_t e4m3_quantize(const bf16* w, int64_t rows, int64_t cols, int64_t ld, uint8_t* out,
                          float* scales, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (ld < cols) return cudaErrorInvalidValue;
  cudaError_t e = cudaMemsetAsync(scales, 0, sizeof(float), s);
  if (e != cudaSuccess) return e;
  return e4m3_quantize_is_vectorized(w, cols, ld, out)
             ? launch_quantize<true>(w, rows, cols, ld, out, scales, s)
             : launch_quantize<false>(w, rows, cols, ld, out, scales, s);
}

}  // namespace cuda
}  // namespace lora4j
