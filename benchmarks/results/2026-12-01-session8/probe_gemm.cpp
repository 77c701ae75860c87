// Probe: the engine's Gemm (cuBLASLt, heuristic's first algorithm) at the folded shapes.
#include <cuda_runtime.h>
#include <algorithm>
#include <cstdio>
#include <vector>
#include "cuda/gemm.h"
using namespace lora4j::cuda;
int main() {
  cudaStream_t s; cudaStreamCreate(&s);
  void* ws; cudaMalloc(&ws, 64 << 20);
  Gemm g; g.init(s, ws, 64 << 20);
  const int64_t M = 8192;
  __nv_bfloat16 *x, *w; void* y;
  cudaMalloc(&x, size_t(M) * 4224 * 2); cudaMalloc(&w, size_t(14336) * 4224 * 2);
  cudaMalloc(&y, size_t(M) * 14336 * 4);
  cudaMemset(x, 0, size_t(M) * 4224 * 2); cudaMemset(w, 0, size_t(14336) * 4224 * 2);
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  struct C { const char* name; int64_t N, K, ld; bool f32; int lbk; };
  std::vector<C> cs = {
    {"gate frozen only K4096", 14336, 4096, 4096, false, 0},
    {"gate old: loraB(K16)+frozen beta1", 14336, 4096, 4096, false, 16},
    {"gate fold K4128 ld4128", 14336, 4128, 4128, false, 0},
    {"gate fold K4128 ld4160", 14336, 4128, 4160, false, 0},
    {"gate fold K4160 ld4160", 14336, 4160, 4160, false, 0},
    {"gate fold K4160 ld4224", 14336, 4160, 4224, false, 0},
    {"gate K4096 ld4128", 14336, 4096, 4128, false, 0},
    {"gate K4096 ld4160", 14336, 4096, 4160, false, 0},
    {"q frozen only K4096 f32", 4096, 4096, 4096, true, 0},
    {"q old: loraB(K16)+frozen beta1 f32", 4096, 4096, 4096, true, 16},
    {"q fold K4144 ld4144 f32", 4096, 4144, 4144, true, 0},
    {"q fold K4144 ld4160 f32", 4096, 4144, 4160, true, 0},
    {"q fold K4160 ld4160 f32", 4096, 4160, 4160, true, 0},
    {"q K4096 ld4144 f32 (lo GEMM)", 4096, 4096, 4144, true, 0},
    {"v frozen only K4096", 1024, 4096, 4096, false, 0},
    {"v old: loraB(K16)+frozen beta1", 1024, 4096, 4096, false, 16},
    {"v fold K4144 ld4144", 1024, 4144, 4144, false, 0},
    {"v fold K4160 ld4160", 1024, 4160, 4160, false, 0},
  };
  for (const C& c : cs) {
    auto run = [&] {
      float beta = 0.f;
      if (c.lbk) { g.run(false, true, M, c.N, c.lbk, x, 2 * c.lbk, w, c.lbk, y, c.f32, c.N, 1.f, 0.f, "lb"); beta = 1.f; }
      g.run(false, true, M, c.N, c.K, x, c.ld, w, c.ld, y, c.f32, c.N, 1.f, beta, "f");
    };
    run(); run();
    cudaStreamSynchronize(s);
    float best = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
      cudaEventRecord(a, s);
      for (int i = 0; i < 10; ++i) run();
      cudaEventRecord(b, s); cudaEventSynchronize(b);
      float ms; cudaEventElapsedTime(&ms, a, b); best = std::min(best, ms / 10);
    }
    std::printf("%-40s %8.4f ms  %6.1f TFLOP/s\n", c.name, best, 2.0 * M * c.N * c.K / best / 1e9);
  }
  std::printf("probe err: %s\n", cudaGetErrorString(cudaGetLastError()));
}
