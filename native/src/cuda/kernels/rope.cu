/*
 * Rotary position embedding, Hugging Face rotate_half convention: for each head and i < D/2,
 * the pair (x[i], x[i + D/2]) is rotated by angle = float(pos) * inv_freq[i] (fp32, as torch):
 *   forward   (a, b) -> (a cos - b sin, b cos + a sin)
 *   backward  the transpose: rotation by -angle applied to the gradient.
 * Forward reads the fp32 GEMM output and rounds once, to fp16 (the attention scores' operand);
 * backward works in place on the bf16 gradient. The math in fp32; one thread per pair.
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
__global__ void rope_kernel(const In* x, Out* y, const int32_t* pos, const float* inv_freq,
                            int64_t n, int64_t heads, int D, float sign) {
  int half = D / 2;
  int64_t total = n * heads * half;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int f = int(i % half);
    int64_t th = i / half;  // token * heads + head
    int64_t t = th / heads;
    float ang = float(pos[t]) * inv_freq[f];
    float c = cosf(ang), sn = sign * sinf(ang);
    const In* src = x + th * D;
    Out* dst = y + th * D;
    float a = load(src + f), b = load(src + f + half);
    store(dst + f, a * c - b * sn);
    store(dst + f + half, b * c + a * sn);
  }
}
}  // namespace

cudaError_t rope_forward(const float* x, f16* y, const int32_t* pos, const float* inv_freq,
                         int64_t n, int64_t heads, int D, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  rope_kernel<<<grid_for(n * heads * (D / 2), 256), 256, 0, s>>>(x, y, pos, inv_freq, n, heads, D,
                                                                 1.f);
  return cudaGetLastError();
}
cudaError_t rope_backward(bf16* dx, const int32_t* pos, const float* inv_freq, int64_t n,
                          int64_t heads, int D, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  rope_kernel<<<grid_for(n * heads * (D / 2), 256), 256, 0, s>>>(dx, dx, pos, inv_freq, n, heads, D,
                                                                 -1.f);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
