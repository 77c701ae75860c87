/*
 * The cross-entropy half of the fused LM head: the engine computes the logits of one chunk of
 * tokens with a GEMM (never the whole [tokens x vocab]), then this kernel, one block per token:
 *   loss[t]    = logsumexp(z_t) - z_t[target]           (0 when target == -100)
 *   dlogits[t] = grad_scale * (softmax(z_t) - onehot(target))  in bf16 (zero when not counted)
 * The engine then forms dh = dlogits W with a second GEMM.
 *
 * The logits are bf16 (the engine's default: what Hugging Face's LM head gives under bf16
 * autocast before its loss upcasts them) or fp32 (LORA4J_LM_HEAD_LOGITS=fp32). The softmax and
 * the loss are fp32 either way.
 *
 * bf16 logits, the vocabulary a multiple of 8 and at most 32768 (Mistral's 32000 and 32768): one
 * block of 512 threads holds its token's whole row in registers (up to 8 x 16 bytes a thread), so
 * the row is read from memory once and its gradients written once, and writing them over the
 * logits in place (ldd = V) is safe: each thread writes only the elements it read, after the
 * block's reductions.
 *
 * Otherwise (fp32 logits, or other vocabularies) the row is read in passes, and dlogits may
 * overwrite the logits in place (row t at the row's own first byte: ldd = 2V bf16 over fp32
 * logits, V over bf16), because the gradients are written tile by tile, each tile read into
 * registers before a barrier and written after it: writing bf16 elements [a, a + T) touches
 * logit elements that were read in this tile or an earlier one.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

namespace {
constexpr int kThreads = 512, kPer = 4;  // a tile: 2048 elements

__device__ __forceinline__ float ld(const float* p) { return *p; }
__device__ __forceinline__ float ld(const bf16* p) { return __bfloat162float(*p); }

template <typename T>
__global__ void __launch_bounds__(kThreads)
    ce_kernel(const T* logits, const int32_t* target, int64_t V, float grad_scale, float* loss,
              bf16* dlogits, int64_t ldd) {
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x;
  const int32_t y = target[t];
  const T* z = logits + t * V;
  bf16* g = dlogits ? dlogits + t * ldd : nullptr;
  float lse = 0.f;
  if (y >= 0) {
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, ld(z + i));
    mx = block_max(mx, scratch);
    float se = 0.f;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) se += expf(ld(z + i) - mx);
    se = block_sum(se, scratch);
    lse = mx + logf(se);
    if (threadIdx.x == 0) loss[t] = lse - ld(z + y);
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
      v[k] = (y >= 0 && i < V) ? ld(z + i) : 0.f;
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

// bf16 logits, one row in registers: kVec 16-byte vectors per thread (V <= 8 * kVec * kThreads).
constexpr float kLog2e = 1.4426950408889634f;
__device__ __forceinline__ float ex2(float x) {  // 2^x; results under 2^-126 flush to zero
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}

// Two blocks per SM (at most 64 registers a thread), so one block's loads overlap the other's
// reductions and stores.
template <int kVec>
__global__ void __launch_bounds__(kThreads, 2)
    ce_bf16_row_kernel(const bf16* logits, const int32_t* target, int64_t V, float grad_scale,
                       float* loss, bf16* dlogits, int64_t ldd) {
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x;
  const int32_t y = target[t];
  const bf16* z = logits + t * V;
  bf16* g = dlogits ? dlogits + t * ldd : nullptr;
  const int nvec = int(V / 8);
  if (y < 0) {  // not counted: loss 0, gradients 0
    if (threadIdx.x == 0) loss[t] = 0.f;
    if (!g) return;
    Bf16x8 zero;
    zero.raw = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const int i = int(threadIdx.x) + k * kThreads;
      if (i < nvec) store_bf16x8(g + int64_t(i) * 8, zero);
    }
    return;
  }
  const float zy = __bfloat162float(z[y]);  // read before the first barrier, so before any write
  Bf16x8 v[kVec];
  float mx = -INFINITY;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const int i = int(threadIdx.x) + k * kThreads;
    v[k].raw = make_uint4(0, 0, 0, 0);
    if (i < nvec) {
      v[k] = load_bf16x8(z + int64_t(i) * 8);
#pragma unroll
      for (int e = 0; e < 8; ++e) mx = fmaxf(mx, __bfloat162float(v[k].v[e]));
    }
  }
  mx = block_max(mx, scratch);
  const float mx2 = mx * kLog2e;
  float se = 0.f;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const int i = int(threadIdx.x) + k * kThreads;
    if (i < nvec)
#pragma unroll
      for (int e = 0; e < 8; ++e) se += ex2(fmaf(__bfloat162float(v[k].v[e]), kLog2e, -mx2));
  }
  se = block_sum(se, scratch);
  const float lse = mx + logf(se);
  if (threadIdx.x == 0) loss[t] = lse - zy;
  if (!g) return;
  const float lse2 = lse * kLog2e;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const int i = int(threadIdx.x) + k * kThreads;
    if (i >= nvec) continue;
    Bf16x8 o;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      float p = ex2(fmaf(__bfloat162float(v[k].v[e]), kLog2e, -lse2));
      if (i * 8 + e == y) p -= 1.f;
      o.v[e] = __float2bfloat16_rn(grad_scale * p);
    }
    store_bf16x8(g + int64_t(i) * 8, o);
  }
}
}  // namespace

cudaError_t cross_entropy_chunk(const float* logits, const int32_t* target, int64_t n, int64_t V,
                                float grad_scale, float* loss, bf16* dlogits, int64_t ldd,
                                cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  ce_kernel<float>
      <<<unsigned(n), kThreads, 0, s>>>(logits, target, V, grad_scale, loss, dlogits, ldd);
  return cudaGetLastError();
}

bool cross_entropy_bf16_in_registers(int64_t V, int64_t ldd, const void* logits,
                                     const void* dlogits) {
  return V % 8 == 0 && V <= int64_t(8) * 8 * kThreads && ptr_aligned16(logits) &&
         (!dlogits || (ldd % 8 == 0 && ptr_aligned16(dlogits)));
}

cudaError_t cross_entropy_chunk(const bf16* logits, const int32_t* target, int64_t n, int64_t V,
                                float grad_scale, float* loss, bf16* dlogits, int64_t ldd,
                                cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  if (!cross_entropy_bf16_in_registers(V, ldd, logits, dlogits)) {
    ce_kernel<bf16>
        <<<unsigned(n), kThreads, 0, s>>>(logits, target, V, grad_scale, loss, dlogits, ldd);
    return cudaGetLastError();
  }
  const int64_t per = (V / 8 + kThreads - 1) / kThreads;  // 16-byte vectors per thread
  if (per <= 1)
    ce_bf16_row_kernel<1>
        <<<unsigned(n), kThreads, 0, s>>>(logits, target, V, grad_scale, loss, dlogits, ldd);
  else if (per <= 2)
    ce_bf16_row_kernel<2>
        <<<unsigned(n), kThreads, 0, s>>>(logits, target, V, grad_scale, loss, dlogits, ldd);
  else if (per <= 4)
    ce_bf16_row_kernel<4>
        <<<unsigned(n), kThreads, 0, s>>>(logits, target, V, grad_scale, loss, dlogits, ldd);
  else
    ce_bf16_row_kernel<8>
        <<<unsigned(n), kThreads, 0, s>>>(logits, target, V, grad_scale, loss, dlogits, ldd);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
