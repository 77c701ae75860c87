/*
 * Greedy decoding on the device (CudaEngine::decode_greedy): the argmax of a step's logits
 * written where the next step reads its token (ids[0]) and position (pos[0]), so that the host can
 * queue several steps without waiting for any of them; and the first step's token and position
 * written the same way (a kernel argument, not a copy from host memory).
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {
namespace {

constexpr int kThreads = 1024;

// (v, i) replaces (bv, bi) where v is larger, or equal at a lower index; a NaN is never larger
__device__ __forceinline__ void keep_best(float v, int32_t i, float& bv, int32_t& bi) {
  if (v > bv || (v == bv && i < bi)) bv = v, bi = i;
}

// the warp's best (v, i) into lane 0's bv, bi (the other lanes' are partial)
__device__ __forceinline__ void warp_keep_best(float& bv, int32_t& bi) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float v = __shfl_down_sync(0xffffffffu, bv, o);
    const int32_t i = __shfl_down_sync(0xffffffffu, bi, o);
    keep_best(v, i, bv, bi);
  }
}

__global__ void __launch_bounds__(kThreads)
    argmax_feed_kernel(const float* __restrict__ logits, int32_t n, int32_t* out, int32_t* ids,
                       int32_t* pos, int32_t next_pos) {
  __shared__ float sv[kThreads / 32];
  __shared__ int32_t si[kThreads / 32];
  float bv = -INFINITY;
  int32_t bi = INT32_MAX;
  for (int32_t i = threadIdx.x; i < n; i += kThreads) keep_best(logits[i], i, bv, bi);
  warp_keep_best(bv, bi);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) sv[warp] = bv, si[warp] = bi;
  __syncthreads();
  if (warp != 0) return;
  bv = sv[lane];  // kThreads / 32 == 32 partials
  bi = si[lane];
  warp_keep_best(bv, bi);
  if (lane != 0) return;
  // the host's order (greedy_argmax): a NaN at index 0 is never replaced; no NaN after it is
  // chosen; all -inf (or NaN past 0) leaves index 0 or the first -inf
  const int32_t best = isnan(logits[0]) || bi == INT32_MAX ? 0 : bi;
  *out = best;
  ids[0] = best;
  pos[0] = next_pos;
}

__global__ void feed_kernel(int32_t* ids, int32_t* pos, int32_t token, int32_t position) {
  ids[0] = token;
  pos[0] = position;
}

}  // namespace

cudaError_t greedy_argmax_feed(const float* logits, int32_t n, int32_t* out, int32_t* ids,
                               int32_t* pos, int32_t next_pos, cudaStream_t s) {
  if (n <= 0) return cudaErrorInvalidValue;
  argmax_feed_kernel<<<1, kThreads, 0, s>>>(logits, n, out, ids, pos, next_pos);
  return cudaGetLastError();
}

cudaError_t decode_feed(int32_t* ids, int32_t* pos, int32_t token, int32_t position,
                        cudaStream_t s) {
  feed_kernel<<<1, 1, 0, s>>>(ids, pos, token, position);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
