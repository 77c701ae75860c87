// Time of one sampled draw on the device (cuda/kernels/sample.cu's sample_feed, what
// CudaEngine::decode_sample launches after each step's logits) beside the greedy pick
// (greedy_argmax_feed), at a Mistral vocabulary (32,768 tokens) on three kinds of logits:
//   flat    N(0, 0.05): a random-weight model's logits (the random 7B folder of gen.sh); every
//           token weighs, and the nucleus holds most of the vocabulary
//   normal  N(0, 1)
//   peaked  N(0, 2) with 20 tokens at +12: a trained model's; most weights are 0 at T = 0.7
// and four settings (temperature, top-k, top-p). One JSON line per case:
//   {"op": "sample", "logits": "flat", "t": 0.7, "top_k": 0, "top_p": 0.9, "us": ...}
// us: the mean of `iterations` launches back to back, timed by CUDA events after 3 warm-ups.
// Usage: bench_sample_cuda [iterations] [vocab]   (iterations 1: one launch a case, for ncu)
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_check.h"
#include "cuda/kernels/kernels.h"

namespace {

struct Setting {
  double t;
  int32_t top_k;
  double top_p;
};

}  // namespace

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 200;
  const int32_t V = argc > 2 ? std::atoi(argv[2]) : 32768;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "bench_sample_cuda: no CUDA device\n");
    return 1;
  }
  float* logits = nullptr;
  int64_t *state = nullptr, *state_out = nullptr, *w = nullptr;
  uint32_t* key = nullptr;
  int32_t *out = nullptr, *ids = nullptr, *pos = nullptr;
  BENCH_CUDA(cudaMalloc(&logits, size_t(V) * 4));
  BENCH_CUDA(cudaMalloc(&state, 8));
  BENCH_CUDA(cudaMalloc(&state_out, 8));
  BENCH_CUDA(cudaMalloc(&w, size_t(V) * 8));
  BENCH_CUDA(cudaMalloc(&key, size_t(V) * 4));
  BENCH_CUDA(cudaMalloc(&out, 4));
  BENCH_CUDA(cudaMalloc(&ids, 4));
  BENCH_CUDA(cudaMalloc(&pos, 4));
  const int64_t seed = 42;
  BENCH_CUDA(cudaMemcpy(state, &seed, 8, cudaMemcpyHostToDevice));
  cudaStream_t s;
  BENCH_CUDA(cudaStreamCreate(&s));
  cudaEvent_t e0, e1;
  BENCH_CUDA(cudaEventCreate(&e0));
  BENCH_CUDA(cudaEventCreate(&e1));
  std::mt19937_64 g(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  const char* kinds[] = {"flat", "normal", "peaked"};
  const Setting settings[] = {{0.7, 0, 0.9}, {0.7, 0, 1.0}, {0.7, 50, 1.0}, {1.0, 50, 0.95}};
  std::vector<float> x(static_cast<size_t>(V));
  for (const char* kind : kinds) {
    const std::string k(kind);
    for (float& f : x) f = normal(g) * (k == "flat" ? 0.05f : k == "normal" ? 1.f : 2.f);
    if (k == "peaked")
      for (int i = 0; i < 20; ++i) x[g() % size_t(V)] = 12.f;
    BENCH_CUDA(cudaMemcpy(logits, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    auto time = [&](auto launch) {
      for (int i = 0; i < (iters > 1 ? 3 : 0); ++i) BENCH_CUDA(launch());
      BENCH_CUDA(cudaEventRecord(e0, s));
      for (int i = 0; i < iters; ++i) BENCH_CUDA(launch());
      BENCH_CUDA(cudaEventRecord(e1, s));
      BENCH_CUDA(cudaEventSynchronize(e1));
      float ms = 0;
      BENCH_CUDA(cudaEventElapsedTime(&ms, e0, e1));
      return 1000.0 * ms / iters;
    };
    const double greedy =
        time([&] { return lora4j::cuda::greedy_argmax_feed(logits, V, out, ids, pos, 1, s); });
    std::printf("{\"op\": \"greedy\", \"logits\": \"%s\", \"vocab\": %d, \"us\": %.2f}\n", kind, V,
                greedy);
    for (const Setting& c : settings) {
      const double us = time([&] {
        return lora4j::cuda::sample_feed(logits, V, c.t, c.top_k, c.top_p, state, w, key, out,
                                         state_out, ids, pos, 1, s);
      });
      std::printf(
          "{\"op\": \"sample\", \"logits\": \"%s\", \"vocab\": %d, \"t\": %g, \"top_k\": %d, "
          "\"top_p\": %g, \"us\": %.2f}\n",
          kind, V, c.t, c.top_k, c.top_p, us);
    }
  }
  std::fflush(stdout);
  return 0;
}
