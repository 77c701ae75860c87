// A probe for the next session (not part of the build): the decode step's one-row products at
// Mistral-7B's shapes, timed back to back over rotating copies of the weight (more than L2 holds),
// in forms of the kernel that keep the sum order of gemv.cu or say where they do not:
//   lib     cuda::gemv (gemv.cu as the engine runs it)
//   xsmem   x staged in shared memory once a block; a warp a row, eight 16-byte chunks of w in
//           flight a lane (the same order and bits as lib)
//   split2  two warps a row, each half of the lane's chunks, summed through shared memory (other
//           bits: a research form, to see whether more warps a row is what the narrow products lack)
// Prints us a call and TB/s for each (form, shape). Built on the GPU machine:
//   nvcc -O3 -std=c++17 -arch=sm_90 -I native/src -I native/include gemv_probe.cu -o /tmp/probe
// (it includes gemv.cu itself for the lib form; -DGEMV_SRC='"path"' another copy of it).
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <vector>

// GEMV_SRC: the gemv.cu to time as "lib" (s42c1.sh builds the tree's and a patched copy's)
#ifndef GEMV_SRC
#define GEMV_SRC "cuda/kernels/gemv.cu"
#endif
#include GEMV_SRC

namespace probe {
using lora4j::cuda::bf16;

__device__ __forceinline__ float dot8b(uint4 w, uint4 x) {
  const uint32_t wa[4] = {w.x, w.y, w.z, w.w}, xa[4] = {x.x, x.y, x.z, x.w};
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    s = fmaf(__uint_as_float(wa[i] << 16), __uint_as_float(xa[i] << 16), s);
    s = fmaf(__uint_as_float(wa[i] & 0xffff0000u), __uint_as_float(xa[i] & 0xffff0000u), s);
  }
  return s;
}

// x in shared memory; warp per row, lane chunks l, l + 32, ... (gemv's order), 8 in flight
__global__ void __launch_bounds__(256) xsmem(const uint4* __restrict__ x, const uint4* __restrict__ w,
                                             int64_t N, int64_t chunks, float* y) {
  extern __shared__ uint4 xs[];
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) xs[c] = x[c];
  __syncthreads();
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * 8;
  for (int64_t n = int64_t(blockIdx.x) * 8 + (threadIdx.x >> 5); n < N; n += warps) {
    const uint4* wr = w + n * chunks;
    float acc = 0.f;
    int64_t k = lane;
    for (; k + 32 * 7 < chunks; k += 256) {
      uint4 wv[8];
#pragma unroll
      for (int u = 0; u < 8; ++u) wv[u] = __ldcs(wr + k + 32 * u);
#pragma unroll
      for (int u = 0; u < 8; ++u) acc += dot8b(wv[u], xs[k + 32 * u]);
    }
    for (; k < chunks; k += 32) acc += dot8b(__ldcs(wr + k), xs[k]);
    acc = lora4j::cuda::warp_sum(acc);
    if (lane == 0) y[n] = acc;
  }
}

// two warps a row (warp pair p of the block: rows n), each taking every other group of 32 chunks
__global__ void __launch_bounds__(256) split2(const uint4* __restrict__ x,
                                              const uint4* __restrict__ w, int64_t N,
                                              int64_t chunks, float* y) {
  __shared__ float part[8];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, half = wid & 1;
  const int64_t n = int64_t(blockIdx.x) * 4 + (wid >> 1);
  float acc = 0.f;
  if (n < N) {
    const uint4* wr = w + n * chunks;
    int64_t k = lane + 32 * half;
    for (; k + 64 * 3 < chunks; k += 256) {
      uint4 wv[4], xv[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) wv[u] = __ldcs(wr + k + 64 * u);
#pragma unroll
      for (int u = 0; u < 4; ++u) xv[u] = __ldg(x + k + 64 * u);
#pragma unroll
      for (int u = 0; u < 4; ++u) acc += dot8b(wv[u], xv[u]);
    }
    for (; k < chunks; k += 64) acc += dot8b(__ldcs(wr + k), __ldg(x + k));
  }
  acc = lora4j::cuda::warp_sum(acc);
  if (lane == 0) part[wid] = acc;
  __syncthreads();
  if (half == 0 && lane == 0 && n < N) y[n] = part[wid] + part[wid + 1];
}
}  // namespace probe

#define CK(x)                                                                    \
  do {                                                                           \
    cudaError_t e_ = (x);                                                        \
    if (e_ != cudaSuccess) {                                                     \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                              \
    }                                                                            \
  } while (0)

using probe::bf16;

int main() {
  struct Shape {
    const char* name;
    int64_t N, K;
  } shapes[] = {{"k/v", 1024, 4096},  {"q/o", 4096, 4096},      {"gate/up", 14336, 4096},
                {"down", 4096, 14336}, {"lm_head", 32000, 4096}};
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  std::printf("%-8s %-7s %9s %8s\n", "shape", "form", "us/call", "TB/s");
  for (const Shape& s : shapes) {
    const size_t bytes = size_t(s.N * s.K) * 2;
    const int copies = int((size_t(3) << 30) / bytes) + 1;  // > 3 GB: no L2 reuse between calls
    std::vector<bf16*> w(static_cast<size_t>(copies), nullptr);
    for (auto& p : w) {
      CK(cudaMalloc(&p, bytes));
      CK(cudaMemset(p, 0x3c, bytes));
    }
    bf16* x = nullptr;
    float* y = nullptr;
    CK(cudaMalloc(&x, size_t(s.K) * 2));
    CK(cudaMemset(x, 0x3c, size_t(s.K) * 2));
    CK(cudaMalloc(&y, size_t(s.N) * 4));
    const int64_t chunks = s.K / 8;
    for (int form = 0; form < 3; ++form) {
      auto launch = [&](const bf16* wp) {
        if (form == 0) {
          lora4j::cuda::GemvParams g;
          g.x = x, g.w = wp, g.ldw = s.K, g.N = s.N, g.K = s.K, g.y = y, g.y_f32 = true;
          CK(lora4j::cuda::gemv(g, 0));
        } else if (form == 1) {
          const int64_t held = int64_t(sms) * 4;
          const int64_t blocks = std::min<int64_t>((s.N + 7) / 8, held);
          probe::xsmem<<<unsigned(blocks), 256, size_t(chunks) * 16>>>(
              reinterpret_cast<const uint4*>(x), reinterpret_cast<const uint4*>(wp), s.N, chunks, y);
        } else {
          probe::split2<<<unsigned((s.N + 3) / 4), 256>>>(reinterpret_cast<const uint4*>(x),
                                                           reinterpret_cast<const uint4*>(wp), s.N,
                                                           chunks, y);
        }
      };
      if (form == 1)
        CK(cudaFuncSetAttribute(probe::xsmem, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                int(chunks * 16)));
      for (int i = 0; i < copies; ++i) launch(w[size_t(i)]);  // warm
      CK(cudaDeviceSynchronize());
      cudaEvent_t a, b;
      CK(cudaEventCreate(&a));
      CK(cudaEventCreate(&b));
      const int calls = 200;
      CK(cudaEventRecord(a));
      for (int i = 0; i < calls; ++i) launch(w[size_t(i % copies)]);
      CK(cudaEventRecord(b));
      CK(cudaEventSynchronize(b));
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, a, b));
      const double us = 1e3 * ms / calls;
      std::printf("%-8s %-7s %9.2f %8.2f\n", s.name, form == 0 ? "lib" : form == 1 ? "xsmem" : "split2",
                  us, double(bytes) / (us * 1e-6) / 1e12);
    }
    for (auto p : w) CK(cudaFree(p));
    CK(cudaFree(x));
    CK(cudaFree(y));
  }
  return 0;
}
