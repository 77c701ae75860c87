/*
 * The cross-entropy half of the fused LM head: the engine computes the logits of one chunk of
 * tokens with a GEMM (never the whole [tokens x vocab]), then this kernel, one block per token:
 *   loss[t]    = logsumexp(z_t) - z_t[target]           (0 when target == -100)
 *   dlogits[t] = grad_scale * (softmax(z_t) - onehot(target))  in bf16 (zero when not counted)
 * The engine then forms dh = dlogits W with a second GEMM.
 *
 * dlogits may overwrite the logits in place (row t at byte offset t * V * 4, row stride ldd =
 * 2V bf16): then the chunk needs V * 4 bytes per token instead of V * 6, so a chunk holds 1.5x
 * the tokens in the same memory and its GEMMs run closer to full speed. In-place is safe because
 * the gradients are written tile by tile, each tile read into registers before a barrier and
 * written after it: writing bf16 elements [a, a + T) touches floats [a/2, (a + T)/2), all of
 * which were read in this tile or an earlier one.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

namespace {
constexpr int kThreads = 512, kPer = 4;  // a tile: 2048 elements

__global__ void __launch_bounds__(kThreads)
    ce_kernel(const float* logits, const int32_t* target, int64_t V, float grad_scale, float* loss,
              bf16* dlogits, int64_t ldd) {
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x;
  const int32_t y = target[t];
  const float* z = logits + t * V;
  bf16* g = dlogits ? dlogits + t * ldd : nullptr;
  float lse = 0.f;
  if (y >= 0) {
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, z[i]);
    mx = block_max(mx, scratch);
    float se = 0.f;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) se += expf(z[i] - mx);
    se = block_sum(se, scratch);
    lse = mx + logf(se);
    if (threadIdx.x == 0) loss[t] = lse - z[y];
  } else if (threadIdx.x == 0) {
    loss[t] = 0.f;
  }
  if (!g) return;
  __syncthreads();  // z[y] is read before any gradient overwrites it
  for (int64_t base = 0; base < V; base += int64_t(kThreads) * kPer) {
    float v[kPer];
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      int64_t i = base + threadIdx.x + int64_t(k) * kThreads;
      v[k] = (y >= 0 && i < V) ? z[i] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      int64_t i = base + threadIdx.x + int64_t(k) * kThreads;
      if (i >= V) continue;
      float p = 0.f;
      if (y >= 0) {
        p = expf(v[k] - lse);
        if (i == y) p -= 1.f;
      }
      g[i] = __float2bfloat16_rn(grad_scale * p);
    }
    __syncthreads();
  }
}
}  // namespace

cudaError_t cross_entropy_chunk(const float* logits, const int32_t* target, int64_t n, int64_t V,
                                float grad_scale, float* loss, bf16* dlogits, int64_t ldd,
                                cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  ce_kernel<<<unsigned(n), kThreads, 0, s>>>(logits, target, V, grad_scale, loss, dlogits, ldd);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
