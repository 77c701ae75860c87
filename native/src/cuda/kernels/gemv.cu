/*
 * One row times a row-major weight (gemv): y[n] = alpha * sum_k x[k] w[n, k] + beta * c[n], the
 * decode step's projections (one token). cuBLASLt's kernels for M = 1 split K for the narrow
 * weights (a reduction kernel after each; k's and v's 8 MB at Mistral-7B read at ~1.6 TB/s); this
 * kernel streams the weight once with one warp per output: 16-byte loads, eight in flight per
 * lane, fp32 accumulation; a grid of the blocks the device holds at once, each warp taking outputs
 * n, n + warps, ... Measured (fortieth session, H200): ~3.4 TB/s on the 117 MB weights (gate, up,
 * down), below cuBLASLt's ~3.9 there, ahead on the narrow ones; the decode step 0.1-0.3 ms faster.
 */
#include <algorithm>

#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {
namespace {

constexpr int kThreads = 256;  // 8 warps, one output at a time each
constexpr int kUnroll = 8;     // 16-byte chunks a lane has in flight

// sum of the 8 products of a 16-byte chunk of w and of x, in element order
__device__ __forceinline__ float dot8(uint4 w, uint4 x, bool f16) {
  const uint32_t wa[4] = {w.x, w.y, w.z, w.w}, xa[4] = {x.x, x.y, x.z, x.w};
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float w0, w1, x0, x1;
    if (f16) {
      const float2 wf = __half22float2(*reinterpret_cast<const __half2*>(&wa[i]));
      const float2 xf = __half22float2(*reinterpret_cast<const __half2*>(&xa[i]));
      w0 = wf.x, w1 = wf.y, x0 = xf.x, x1 = xf.y;
    } else {
      w0 = __uint_as_float(wa[i] << 16), w1 = __uint_as_float(wa[i] & 0xffff0000u);
      x0 = __uint_as_float(xa[i] << 16), x1 = __uint_as_float(xa[i] & 0xffff0000u);
    }
    s = fmaf(w0, x0, s);
    s = fmaf(w1, x1, s);
  }
  return s;
}

template <bool F16, bool Y_F32>
__global__ void __launch_bounds__(kThreads)
    gemv_kernel(const uint4* __restrict__ x, const uint4* __restrict__ w, int64_t ldw16, int64_t N,
                int64_t chunks, const void* c, void* y, float alpha, float beta) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * (kThreads / 32);
  for (int64_t n = int64_t(blockIdx.x) * (kThreads / 32) + (threadIdx.x >> 5); n < N; n += warps) {
    const uint4* wr = w + n * ldw16;
    float acc = 0.f;
    int64_t k = lane;
    for (; k + 32 * (kUnroll - 1) < chunks; k += 32 * kUnroll) {
      uint4 wv[kUnroll], xv[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) wv[u] = __ldcs(wr + k + 32 * u);  // read once: streamed
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) xv[u] = __ldg(x + k + 32 * u);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) acc += dot8(wv[u], xv[u], F16);
    }
    for (; k < chunks; k += 32) acc += dot8(__ldcs(wr + k), __ldg(x + k), F16);
    acc = warp_sum(acc);
    if (lane != 0) continue;
    float v = alpha * acc;
    if (Y_F32) {
      if (beta != 0.f) v = fmaf(beta, static_cast<const float*>(c)[n], v);
      static_cast<float*>(y)[n] = v;
    } else {
      if (beta != 0.f) v = fmaf(beta, __bfloat162float(static_cast<const bf16*>(c)[n]), v);
      static_cast<bf16*>(y)[n] = __float2bfloat16_rn(v);
    }
  }
}

// blocks of gemv_kernel<F16, Y_F32> the current device holds at once (cached per device; 0 when
// the runtime cannot say, and then the grid is one block per 8 outputs)
template <bool F16, bool Y_F32>
int64_t resident_blocks() {
  static int cached[64] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 0;
  if (cached[dev] == 0) {
    int per_sm = 0, sms = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_kernel<F16, Y_F32>, kThreads,
                                                      0) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
      return 0;
    cached[dev] = std::max(1, per_sm) * std::max(1, sms);
  }
  return cached[dev];
}

template <bool F16, bool Y_F32>
void launch(const GemvParams& p, cudaStream_t s) {
  const int64_t need = (p.N + kThreads / 32 - 1) / (kThreads / 32),
                held = resident_blocks<F16, Y_F32>();
  const unsigned grid = unsigned(held > 0 ? std::min(need, held) : need);
  gemv_kernel<F16, Y_F32><<<grid, kThreads, 0, s>>>(static_cast<const uint4*>(p.x),
                                                    static_cast<const uint4*>(p.w), p.ldw / 8, p.N,
                                                    p.K / 8, p.c ? p.c : p.y, p.y, p.alpha, p.beta);
}

}  // namespace

bool gemv_accepts(const GemvParams& p) {
  return p.x && p.w && p.y && p.N > 0 && p.K > 0 && p.K % 8 == 0 && p.ldw >= p.K &&
         p.ldw % 8 == 0 && ptr_aligned16(p.x) && ptr_aligned16(p.w) &&
         (p.N + kThreads / 32 - 1) / (kThreads / 32) <= INT32_MAX;
}

cudaError_t gemv(const GemvParams& p, cudaStream_t s) {
  if (!gemv_accepts(p)) return cudaErrorInvalidValue;
  if (p.f16)
    p.y_f32 ? launch<true, true>(p, s) : launch<true, false>(p, s);
  else
    p.y_f32 ? launch<false, true>(p, s) : launch<false, false>(p, s);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
