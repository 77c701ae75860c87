// Time of each aggregation rule on the device (cuda/kernels/aggregate.cu) at the size of a
// Mistral-7B rank-16 all-linear adapter: numel = 41,943,040 fp32 per worker, n = 8 workers
// (issue 14's "median over 8 workers costs at most 5% of step time"; a 7B step at 4 x 2048 is
// about 0.8 s on one H200). Also the device-to-device copy of one worker's gradients (what
// lora4j_workers_gather costs per round in a group of one). One JSON line per rule:
//   {"rule": "median", "n": 8, "numel": 41943040, "ms": ..., "gb_per_s": ...}
// gb_per_s counts the bytes the rule must read at least (n rows) and write (one row).
// Usage: bench_aggregate_cuda [numel] [n] [iterations]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_check.h"
#include "cuda/kernels/aggregate.h"
#include "lora4j.h"

int main(int argc, char** argv) {
  const int64_t numel = argc > 1 ? std::atoll(argv[1]) : 41943040;
  const int n = argc > 2 ? std::atoi(argv[2]) : 8;
  const int iters = argc > 3 ? std::atoi(argv[3]) : 10;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "bench_aggregate_cuda: no CUDA device\n");
    return 1;
  }
  if (n < 3 || n > LORA4J_MAX_WORKERS || numel < 1 || iters < 1) {
    std::fprintf(stderr, "usage: bench_aggregate_cuda [numel >= 1] [3 <= n <= %d] [iterations]\n",
                 LORA4J_MAX_WORKERS);
    return 1;
  }
  // Workers: one random row (values of a gradient's size) plus small per-worker differences,
  // so Krum and centered clipping see realistic, distinct distances.
  std::vector<float> h(size_t(n) * size_t(numel));
  std::mt19937 g(5);
  std::normal_distribution<float> dist(0.f, 1e-3f);
  for (int64_t j = 0; j < numel; ++j) h[size_t(j)] = dist(g);
  for (int i = 1; i < n; ++i)
    for (int64_t j = 0; j < numel; ++j)
      h[size_t(i) * size_t(numel) + size_t(j)] = h[size_t(j)] + 0.3f * dist(g);
  float *rows = nullptr, *out = nullptr;
  BENCH_CUDA(cudaMalloc(&rows, h.size() * sizeof(float)));
  BENCH_CUDA(cudaMalloc(&out, size_t(numel) * sizeof(float)));
  BENCH_CUDA(cudaMemcpy(rows, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
  cudaStream_t s;
  BENCH_CUDA(cudaStreamCreate(&s));
  cudaEvent_t a, b;
  BENCH_CUDA(cudaEventCreate(&a));
  BENCH_CUDA(cudaEventCreate(&b));
  const double bytes = double(n + 1) * double(numel) * sizeof(float);
  // the copy of one worker's gradients into its row (the per-round cost of a group of one)
  {
    BENCH_CUDA(cudaMemcpyAsync(out, rows, size_t(numel) * 4, cudaMemcpyDeviceToDevice, s));
    BENCH_CUDA(cudaEventRecord(a, s));
    for (int it = 0; it < iters; ++it)
      BENCH_CUDA(cudaMemcpyAsync(out, rows, size_t(numel) * 4, cudaMemcpyDeviceToDevice, s));
    BENCH_CUDA(cudaEventRecord(b, s));
    BENCH_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
    ms /= float(iters);
    std::printf(
        "{\"rule\": \"gather-copy\", \"n\": 1, \"numel\": %lld, \"ms\": %.4f, "
        "\"gb_per_s\": %.1f}\n",
        (long long)numel, ms, 2.0 * double(numel) * 4 / (ms * 1e6));
  }
  const struct {
    int rule, f;
    const char* name;
  } rules[] = {{LORA4J_AGG_MEAN, 0, "mean"},
               {LORA4J_AGG_MEDIAN, 0, "median"},
               {LORA4J_AGG_TRIMMED_MEAN, 1, "trimmed-mean:1"},
               {LORA4J_AGG_KRUM, 1, "krum:1"},
               {LORA4J_AGG_CENTERED_CLIP, 0, "centered-clip"},
               {LORA4J_AGG_MEDIAN | LORA4J_AGG_MIX, 0, "median (mixed)"},
               {LORA4J_AGG_TRIMMED_MEAN | LORA4J_AGG_MIX, 1, "trimmed-mean:1 (mixed)"},
               {LORA4J_AGG_CENTERED_CLIP | LORA4J_AGG_MIX, 0, "centered-clip (mixed)"}};
  for (const auto& r : rules) {
    size_t ws = lora4j::cuda::aggregate_workspace_bytes(r.rule, n, numel);
    void* work = nullptr;
    if (ws) BENCH_CUDA(cudaMalloc(&work, ws));
    int32_t sel = -1, nonfinite = 0;
    BENCH_CUDA(lora4j::cuda::aggregate_rows(r.rule, r.f, n, numel, rows, nullptr, out, work, &sel,
                                            &nonfinite, s));  // warm-up
    BENCH_CUDA(cudaStreamSynchronize(s));
    // Krum and centered clipping synchronize inside (their decisions are taken on the host), so
    // the time is the wall time of the call, as a training step sees it.
    double total = 0;
    for (int it = 0; it < iters; ++it) {
      BENCH_CUDA(cudaEventRecord(a, s));
      BENCH_CUDA(lora4j::cuda::aggregate_rows(r.rule, r.f, n, numel, rows, nullptr, out, work, &sel,
                                              &nonfinite, s));
      BENCH_CUDA(cudaEventRecord(b, s));
      BENCH_CUDA(cudaEventSynchronize(b));
      float ms = 0;
      BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
      total += ms;
    }
    const double ms = total / iters;
    std::printf(
        "{\"rule\": \"%s\", \"n\": %d, \"numel\": %lld, \"ms\": %.4f, \"gb_per_s\": %.1f, "
        "\"selected\": %d, \"of_0.8s_step_percent\": %.3f}\n",
        r.name, n, (long long)numel, ms, bytes / (ms * 1e6), sel, ms / 800.0 * 100.0);
    std::fflush(stdout);
    if (work) BENCH_CUDA(cudaFree(work));
  }
  cudaFree(rows);
  cudaFree(out);
  return 0;
}
