// Times every op variant of the single-op benchmarks (lora4j_op_bench_*, the same ones the JMH
// OpBenchmark runs) at the device's default shapes: Mistral-7B on CUDA, small on the CPU; the
// frozen GEMMs (bf16, nf4-scratch, nf4-fused), when named on the command line, on CUDA at every
// Mistral-7B projection shape and 2048 and 8192 tokens (op_bench_cases::kFrozenShapes), on the
// CPU at q's, gate's and down's shapes and 256 tokens (kCpuFrozenShapes).
// Prints one line per op/variant (the attention's flash kernels, forward and backward, also at
// 1 x 8192): time per call, TFLOP/s (the op's algorithmic FLOPs, the same for every variant), GB/s
// against the byte floor, and the memory the benchmark holds; on CUDA, where NVML sees one GPU,
// also the board's mean power over the timed runs and its energy per call: the frozen GEMMs hold
// the card at its power cap through a training step, so what an op costs the step is its energy
// over the cap's power (memory-bound ops draw about the cap too: native/src/cuda/NOTES.md,
// twenty-ninth session).
//   bench_ops [--device N] [op ...]     N = -1: CPU; default 0 (CUDA device 0); ops: only these
//   LORA4J_OPS_SECONDS: time per measurement (default 0.3 s; the best of 3 is reported)
// Run by scripts/gpu/run.sh with STEPS containing "ops" (every op) or "qlora" (the frozen GEMMs).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lora4j_bench.h"
#include "nvml.h"
#include "op_bench_cases.h"

namespace {

double seconds_of(lora4j_op_bench* b, int32_t iterations, bool* ok) {
  auto t0 = std::chrono::steady_clock::now();
  *ok = lora4j_op_bench_run(b, iterations) == LORA4J_OK;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Times one op variant at one shape (dims empty: the device's default); returns 1 on failure.
int time_one(int32_t device, const char* op, const char* variant, const std::vector<int64_t>& dims,
             double target, const lora4j::bench::Nvml* nvml) {
  lora4j_op_bench* b = nullptr;
  if (lora4j_op_bench_create(device, op, variant, dims.empty() ? nullptr : dims.data(),
                             int32_t(dims.size()), 1, &b) != LORA4J_OK) {
    std::printf("%s/%s: FAILED %s\n", op, variant, lora4j_bench_last_error());
    return 1;
  }
  int failures = 0;
  char text[256] = {0};
  lora4j_op_bench_describe(b, text, sizeof text);
  double flops = 0, bytes = 0;
  int64_t memory = 0;
  lora4j_op_bench_cost(b, &flops, &bytes, &memory);
  bool ok = true;
  double once = seconds_of(b, 1, &ok);  // warm-up (plans, caches)
  if (ok) once = seconds_of(b, 1, &ok);
  int32_t k = int32_t(std::min(1e6, std::max(1.0, target / std::max(once, 1e-7))));
  double best = 1e30, total = 0;
  const double j0 = nvml ? nvml->energy_j() : NAN;
  for (int rep = 0; rep < 3 && ok; ++rep) {
    const double s = seconds_of(b, k, &ok);
    best = std::min(best, s / k);
    total += s;
  }
  const double joules = nvml ? nvml->energy_j() - j0 : NAN;
  if (!ok) {
    std::printf("%s: FAILED %s\n", text, lora4j_bench_last_error());
    failures = 1;
  } else {
    char tf[32] = "-";
    if (flops > 0) std::snprintf(tf, sizeof tf, "%.3g", flops / best * 1e-12);
    char watts[32] = "-", mj[32] = "-";
    if (std::isfinite(joules) && joules > 0) {  // all three runs: 3 k calls in `total` seconds
      std::snprintf(watts, sizeof watts, "%.0f", joules / total);
      std::snprintf(mj, sizeof mj, "%.4g", joules * 1e3 / (3.0 * k));
    }
    std::printf("%-96s %10.4f %9s %9.3g %9lld %6s %9s\n", text, best * 1e3, tf, bytes / best * 1e-9,
                static_cast<long long>(memory >> 20), watts, mj);
  }
  std::fflush(stdout);
  lora4j_op_bench_destroy(b);
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  int32_t device = 0;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--device") == 0 && i + 1 < argc)
      device = std::atoi(argv[++i]);
    else
      only.push_back(argv[i]);
  }
  const char* env = std::getenv("LORA4J_OPS_SECONDS");
  const double target = env ? std::max(0.01, std::atof(env)) : 0.3;
  int failures = 0;
  // the board's power and energy: NVML's one GPU (several: which one CUDA runs on is unknown)
  const lora4j::bench::Nvml nvml(nullptr);
  const lora4j::bench::Nvml* energy = device >= 0 && nvml.ok ? &nvml : nullptr;
  std::printf("%-96s %10s %9s %9s %9s %6s %9s\n", "op/variant shape", "ms/call", "TFLOP/s", "GB/s",
              "MiB held", "W", "mJ/call");
  for (const auto& c : op_bench_cases::kAll) {
    if (!only.empty() && std::find(only.begin(), only.end(), c.op) == only.end()) continue;
    // the frozen GEMMs, when named, at every Mistral-7B projection shape and both token
    // counts; every other op (and the frozen GEMMs in a run of all ops) at the default shape
    std::vector<std::vector<int64_t>> shapes = {{}};
    if (std::strncmp(c.op, "frozen_linear", 13) == 0 && !only.empty()) {
      shapes.clear();
      if (device >= 0)
        for (const auto& f : op_bench_cases::kFrozenShapes) shapes.push_back({f[0], f[1], f[2]});
      else
        for (const auto& f : op_bench_cases::kCpuFrozenShapes) shapes.push_back({f[0], f[1], f[2]});
    }
    for (const auto& dims : shapes)
      failures += time_one(device, c.op, c.variant, dims, target, energy);
  }
  // The attention's two kernels, forward and backward, also at one long row (1 x 8192, Mistral's
  // heads) on CUDA.
  for (const char* op : {"attention_fwd", "attention_bwd"}) {
    if (device < 0 ||
        (!only.empty() && std::find(only.begin(), only.end(), std::string(op)) == only.end()))
      continue;
    for (const char* v : {"flash", "flash_mma"})
      failures += time_one(device, op, v, {1, 8192, 32, 8, 128}, target, energy);
  }
  return failures ? 1 : 0;
}
