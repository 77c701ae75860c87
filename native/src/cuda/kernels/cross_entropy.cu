/*
 * The cross-entropy half of the fused LM head: the engine computes the logits of one chunk of
 * tokens with a GEMM (never the whole [tokens x vocab]), then this kernel, one block per token:
 *   loss[t]    = logsumexp(z_t) - z_t[target]           (0 when target == -100)
 *   dlogits[t] = grad_scale * (softmax(z_t) - onehot(target))  in bf16 (zero when not counted)
 * The engine then forms dh = dlogits W with a second GEMM.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

__global__ void ce_kernel(const float* logits, const int32_t* target, int64_t V,
                          float grad_scale, float* loss, bf16* dlogits) {
  __shared__ float scratch[32];
  int64_t t = blockIdx.x;
  int32_t y = target[t];
  const float* z = logits + t * V;
  if (y < 0) {
    if (threadIdx.x == 0) loss[t] = 0.f;
    if (dlogits)
      for (int64_t i = threadIdx.x; i < V; i += blockDim.x)
        dlogits[t * V + i] = __float2bfloat16_rn(0.f);
    return;
  }
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, z[i]);
  mx = block_max(mx, scratch);
  float se = 0.f;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) se += expf(z[i] - mx);
  se = block_sum(se, scratch);
  float lse = mx + logf(se);
  if (threadIdx.x == 0) loss[t] = lse - z[y];
  if (dlogits) {
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
      float p = expf(z[i] - lse);
      if (i == y) p -= 1.f;
      dlogits[t * V + i] = __float2bfloat16_rn(grad_scale * p);
    }
  }
}

cudaError_t cross_entropy_chunk(const float* logits, const int32_t* target, int64_t n, int64_t V,
                                float grad_scale, float* loss, bf16* dlogits, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  ce_kernel<<<unsigned(n), 512, 0, s>>>(logits, target, V, grad_scale, loss, dlogits);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
