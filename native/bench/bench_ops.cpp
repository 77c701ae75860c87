// Times every op variant of the single-op benchmarks (lora4j_op_bench_*, the same ones the JMH
// OpBenchmark runs) at the device's default shapes: Mistral-7B on CUDA, small on the CPU.
// Prints one line per op/variant (the attention forward's flash kernels also at 1 x 8192): time per
// call, TFLOP/s (the op's algorithmic FLOPs, the same for every variant), GB/s against the byte
// floor, and the memory the benchmark holds.
//   bench_ops [--device N] [op ...]     N = -1: CPU; default 0 (CUDA device 0)
//   LORA4J_OPS_SECONDS: time per measurement (default 0.3 s; the best of 3 is reported)
// Run by scripts/gpu/run.sh with STEPS containing "ops".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lora4j_bench.h"
#include "op_bench_cases.h"

namespace {

double seconds_of(lora4j_op_bench* b, int32_t iterations, bool* ok) {
  auto t0 = std::chrono::steady_clock::now();
  *ok = lora4j_op_bench_run(b, iterations) == LORA4J_OK;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
  std::printf("%-72s %10s %9s %9s %9s\n", "op/variant shape", "ms/call", "TFLOP/s", "GB/s",
              "MiB held");
  auto time_case = [&](const char* op, const char* variant, const int64_t* dims, int32_t ndims) {
    lora4j_op_bench* b = nullptr;
    if (lora4j_op_bench_create(device, op, variant, dims, ndims, 1, &b) != LORA4J_OK) {
      std::printf("%s/%s: FAILED %s\n", op, variant, lora4j_bench_last_error());
      ++failures;
      return;
    }
    char text[256] = {0};
    lora4j_op_bench_describe(b, text, sizeof text);
    double flops = 0, bytes = 0;
    int64_t memory = 0;
    lora4j_op_bench_cost(b, &flops, &bytes, &memory);
    bool ok = true;
    double once = seconds_of(b, 1, &ok);  // warm-up (plans, caches)
    if (ok) once = seconds_of(b, 1, &ok);
    int32_t k = int32_t(std::min(1e6, std::max(1.0, target / std::max(once, 1e-7))));
    double best = 1e30;
    for (int rep = 0; rep < 3 && ok; ++rep) best = std::min(best, seconds_of(b, k, &ok) / k);
    if (!ok) {
      std::printf("%s: FAILED %s\n", text, lora4j_bench_last_error());
      ++failures;
    } else {
      char tf[32] = "-";
      if (flops > 0) std::snprintf(tf, sizeof tf, "%.3g", flops / best * 1e-12);
      std::printf("%-72s %10.4f %9s %9.3g %9lld\n", text, best * 1e3, tf, bytes / best * 1e-9,
                  static_cast<long long>(memory >> 20));
    }
    std::fflush(stdout);
    lora4j_op_bench_destroy(b);
  };
  auto wanted = [&](const char* op) {
    return only.empty() || std::find(only.begin(), only.end(), op) != only.end();
  };
  for (const auto& c : op_bench_cases::kAll)
    if (wanted(c.op)) time_case(c.op, c.variant, nullptr, 0);
  // The attention forward's two kernels also at one long row (1 x 8192, Mistral's heads) on CUDA.
  if (device >= 0 && wanted("attention_fwd")) {
    const int64_t long_row[5] = {1, 8192, 32, 8, 128};
    for (const char* v : {"flash", "flash_mma"}) time_case("attention_fwd", v, long_row, 5);
  }
  return failures ? 1 : 0;
}
