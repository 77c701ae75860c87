/*
 * Rotary position embedding, Hugging Face rotate_half convention: for each head and i < D/2,
 * the pair (x[i], x[i + D/2]) is rotated by angle = float(pos) * inv_freq[i] (fp32, as torch):
 *   forward   (a, b) -> (a cos - b sin, b cos + a sin)
 *   backward  the transpose: rotation by -angle applied to the gradient.
 * In place on bf16 [n, heads, D]; the math in fp32. One thread per pair.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

__global__ void rope_kernel(bf16* x, const int32_t* pos, const float* inv_freq, int64_t n,
                            int64_t heads, int D, float sign) {
  int half = D / 2;
  int64_t total = n * heads * half;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int f = int(i % half);
    int64_t th = i / half;  // token * heads + head
    int64_t t = th / heads;
    float ang = float(pos[t]) * inv_freq[f];
    float c = cosf(ang), sn = sign * sinf(ang);
    bf16* base = x + th * D;
    float a = __bfloat162float(base[f]), b = __bfloat162float(base[f + half]);
    base[f] = __float2bfloat16_rn(a * c - b * sn);
    base[f + half] = __float2bfloat16_rn(b * c + a * sn);
  }
}

cudaError_t rope_forward(bf16* x, const int32_t* pos, const float* inv_freq, int64_t n,
                         int64_t heads, int D, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  rope_kernel<<<grid_for(n * heads * (D / 2), 256), 256, 0, s>>>(x, pos, inv_freq, n, heads, D,
                                                                 1.f);
  return cudaGetLastError();
}
cudaError_t rope_backward(bf16* dx, const int32_t* pos, const float* inv_freq, int64_t n,
                          int64_t heads, int D, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  rope_kernel<<<grid_for(n * heads * (D / 2), 256), 256, 0, s>>>(dx, pos, inv_freq, n, heads, D,
                                                                 -1.f);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
