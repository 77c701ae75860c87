// The single-op benchmarks on CUDA, through the C API:
//  - the variants of every op compute the same function (same seed; bf16 operands, so
//    norm-wise relative error 1e-2, 2e-2 for the attention gradients, where both variants
//    round P and dS to bf16 and dq/dk cancel; AdamW runs the same kernel: 1e-6);
//  - every op (and variant) on CUDA against the same op on the CPU on the same seed: the inputs
//    are the same numbers, so this checks the CUDA wiring (strides, heads, chunks) end to end;
//  - every op at its Mistral-7B default shape allocates, runs and gives finite outputs;
//  - a bad device index or an unsupported head_dim is a status with a message.
// Skips (exit 77) when no CUDA device or no CUDA backend is present.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "lora4j_bench.h"
#include "op_bench_cases.h"
#include "op_bench_util.h"

using op_bench_cases::OpCase;
using op_bench_util::Bench;

namespace {

const char* kSuite = "op_bench";
constexpr uint64_t kSeed = 5;
int g_checks = 0;
double g_worst = 0;  // largest err / tol

// One line per check; only failures carry the "[op_bench]" prefix that scripts/gpu/run.sh puts
// in its summary, which gets one line for the whole suite at the end.
bool report(const std::string& name, double err, double tol) {
  bool ok = std::isfinite(err) && err <= tol;
  ++g_checks;
  g_worst = std::max(g_worst, std::isfinite(err) ? err / tol : INFINITY);
  if (!ok) return ct::report(kSuite, name, err, tol);
  std::printf("  op_bench  %-58s err=%.3e  tol=%.0e  PASS\n", name.c_str(), err, tol);
  return true;
}
bool report_bool(const std::string& name, bool ok, const std::string& detail) {
  ++g_checks;
  if (!ok) return ct::report_bool(kSuite, name, ok, detail);
  std::printf("  op_bench  %-58s %s  PASS\n", name.c_str(), detail.c_str());
  return true;
}

std::string tag_of(const char* op, const std::vector<int64_t>& dims) {
  std::string t = op;
  for (int64_t d : dims) t += " " + std::to_string(d);
  return t;
}

// Runs a and b once on the same seed and compares every output.
void compare(int32_t dev_a, const char* var_a, int32_t dev_b, const char* var_b, const char* op,
             const std::vector<int64_t>& dims, double tol, const std::string& what) {
  Bench a(dev_a, op, var_a, dims, kSeed), b(dev_b, op, var_b, dims, kSeed);
  std::string tag = what + " " + tag_of(op, dims);
  if (!report_bool(tag + " created", a.status == 0 && b.status == 0, "")) return;
  bool ran = lora4j_op_bench_run(a.h, 1) == 0 && lora4j_op_bench_run(b.h, 1) == 0;
  if (!report_bool(tag + " runs", ran, ran ? "" : lora4j_bench_last_error())) return;
  auto oa = a.outputs(), ob = b.outputs();
  report_bool(tag + " outputs", !oa.empty() && oa.size() == ob.size(),
              std::to_string(oa.size()) + " / " + std::to_string(ob.size()));
  for (auto& kv : oa) {
    auto it = ob.find(kv.first);
    double err = it == ob.end() ? NAN : ct::rel_err(it->second, kv.second);
    report(tag + " " + kv.first, err, tol);
  }
}

void variants() {
  const std::vector<int64_t> att_small = {2, 200, 8, 2, 64}, att_7b = {1, 1024, 32, 8, 128};
  for (const auto& dims : {att_small, att_7b}) {
    compare(0, "flash", 0, "materialized", "attention_fwd", dims, 1e-2, "flash vs materialized");
    compare(0, "flash", 0, "materialized", "attention_bwd", dims, 2e-2, "flash vs materialized");
    // on sm_90 flash takes the wgmma kernels, flash_mma the mma.sync ones: the same rounding
    // points, sums in another order
    compare(0, "flash", 0, "flash_mma", "attention_fwd", dims, 1e-2, "flash vs flash_mma");
    compare(0, "flash", 0, "flash_mma", "attention_bwd", dims, 1e-2, "flash vs flash_mma");
  }
  compare(0, "fused", 0, "materialized", "cross_entropy", {1000, 256, 5000}, 1e-2,
          "fused vs materialized");
  compare(0, "fused", 0, "materialized", "cross_entropy", {2048, 4096, 32768}, 1e-2,
          "fused vs materialized");
  // the loss kernels beside the next chunk's GEMM on a second stream: the same values, bit for
  // bit (3 chunks of 960 and 128 tokens; 2 chunks of 4493 and 507)
  compare(0, "fused", 0, "fused_serial", "cross_entropy", {2048, 4096, 32768}, 0,
          "overlapped vs serial chunks");
  compare(0, "fused", 0, "fused_serial", "cross_entropy", {5000, 128, 7000}, 0,
          "overlapped vs serial chunks");
  for (const char* op : {"lora_linear_fwd", "lora_linear_bwd"}) {
    compare(0, "fused", 0, "separate", op, {333, 256, 520, 16}, 1e-2, "fused vs separate");
    compare(0, "fused", 0, "separate", op, {2048, 4096, 14336, 16}, 1e-2, "fused vs separate");
  }
  compare(0, "flat", 0, "per_tensor", "adamw", {2, 256, 64, 704, 8}, 1e-6, "flat vs per_tensor");
  // the fused NF4 GEMM against dequantize-then-cuBLASLt: the same bf16 operands, fp32
  // accumulation in another order (1e-3: y rounds to bf16, a rare last-bit flip); odd shapes
  // (W rows not a multiple of 8, tiles cut by every edge) take its per-element path
  for (const char* op : {"frozen_linear_fwd", "frozen_linear_bwd"})
    for (const auto& dims : std::vector<std::vector<int64_t>>{{333, 256, 520},
                                                              {37, 201, 77},
                                                              {130, 136, 264},
                                                              {2048, 4096, 14336},
                                                              {8192, 14336, 4096}})
      compare(0, "nf4-scratch", 0, "nf4-fused", op, dims, 1e-3, "nf4 scratch vs fused");
}

// Every LoRA projection (and frozen GEMM) of Mistral-7B at its real width (q/o 4096->4096, k/v
// 4096->1024, gate/up 4096->14336, down 14336->4096) on CUDA against the CPU on the same inputs,
// forward and backward, every output: y, dx, dA, dB and the rank-r products x A^T (reduced over
// `in`) and dy B (reduced over `out`), whose reductions over 14336 the small shapes never exercise.
void real_widths() {
  const std::vector<std::vector<int64_t>> shapes = {{512, 4096, 4096, 16},
                                                    {512, 4096, 1024, 16},
                                                    {512, 4096, 14336, 16},
                                                    {512, 14336, 4096, 16},
                                                    {333, 14336, 4096, 16}};
  for (const auto& dims : shapes)
    for (const char* op : {"lora_linear_fwd", "lora_linear_bwd"})
      compare(-1, "fused", 0, "fused", op, dims, 1e-2, "Mistral-7B width cuda vs cpu");
  // the frozen GEMM with an NF4 weight, both CUDA variants against the CPU twin (the weight
  // dequantized by model/nf4.cpp, an fp32 GEMM), at every projection shape, and odd shapes
  const std::vector<std::vector<int64_t>> frozen = {
      {256, 4096, 4096}, {256, 4096, 1024}, {256, 4096, 14336}, {256, 14336, 4096}, {37, 201, 77}};
  for (const auto& dims : frozen)
    for (const char* op : {"frozen_linear_fwd", "frozen_linear_bwd"})
      for (const char* v : {"nf4-scratch", "nf4-fused"})
        compare(-1, v, 0, v, op, dims, 1e-2, std::string("Mistral-7B width cuda vs cpu ") + v);
}

// The tolerance of an op on CUDA against the CPU: 1e-2 (bf16 operands), 2e-2 for the attention
// gradients, 1e-4 for AdamW.
double cpu_tol(const std::string& op) {
  if (op == "attention_bwd") return 2e-2;
  if (op == "adamw") return 1e-4;
  return 1e-2;
}

void against_cpu() {
  for (const OpCase& c : op_bench_cases::kAll) {
    // the CPU default shape, given explicitly so both devices use it
    Bench probe(-1, c.op, c.variant, {}, kSeed);
    std::string text = probe.describe();
    std::vector<int64_t> dims;
    const char* p = std::strchr(text.c_str(), ' ');
    while (p && (p = std::strchr(p, '=')) != nullptr) dims.push_back(std::atoll(++p));
    compare(-1, c.variant, 0, c.variant, c.op, dims, cpu_tol(c.op),
            std::string("cuda vs cpu ") + c.variant);
  }
}

void mistral_defaults() {
  for (const OpCase& c : op_bench_cases::kAll) {
    Bench b(0, c.op, c.variant, {}, kSeed);
    std::string tag = std::string("Mistral-7B default ") + c.op + "/" + c.variant;
    if (!report_bool(tag + " created", b.status == 0, "")) continue;
    bool ran = lora4j_op_bench_run(b.h, 2) == 0;
    double flops = 0, bytes = 0;
    int64_t memory = 0;
    lora4j_op_bench_cost(b.h, &flops, &bytes, &memory);
    bool finite = ran;
    for (auto& kv : b.outputs(true))
      for (float x : kv.second) finite = finite && std::isfinite(x);
    report_bool(tag + " runs, finite", finite && bytes > 0,
                std::to_string(memory >> 20) + " MiB held");
  }
}

void errors() {
  lora4j_op_bench* h = nullptr;
  int s = lora4j_op_bench_create(99, "adamw", nullptr, nullptr, 0, 1, &h);
  report_bool(
      "device index out of range",
      s == LORA4J_EINVAL && std::strstr(lora4j_bench_last_error(), "out of range") != nullptr,
      lora4j_bench_last_error());
  int64_t dims[] = {1, 64, 4, 2, 48};
  s = lora4j_op_bench_create(0, "attention_fwd", "flash", dims, 5, 1, &h);
  report_bool(
      "flash with head_dim 48",
      s == LORA4J_EUNSUPPORTED && std::strstr(lora4j_bench_last_error(), "head_dim 48") != nullptr,
      lora4j_bench_last_error());
  s = lora4j_op_bench_create(0, "attention_fwd", "materialized", dims, 5, 1, &h);
  report_bool("materialized with head_dim 48 runs", s == 0 && lora4j_op_bench_run(h, 1) == 0,
              s ? lora4j_bench_last_error() : "");
  lora4j_op_bench_destroy(h);
}

}  // namespace

int main() {
  int32_t available = 0;
  char reason[512] = {0};
  lora4j_cuda_available(&available, reason, sizeof reason);
  if (!available) ct::skip(std::string("no CUDA device or backend: ") + reason);
  errors();
  variants();
  against_cpu();
  real_widths();
  mistral_defaults();
  std::printf(
      "[%s] %d checks (variants agree, cuda vs cpu, Mistral-7B defaults, errors), "
      "worst err/tol %.2f  %s\n",
      kSuite, g_checks, g_worst, ct::failures() ? "FAIL" : "PASS");
  if (ct::failures()) {
    std::printf("test_op_bench_cuda: %d check(s) FAILED\n", ct::failures());
    return 1;
  }
  std::printf("test_op_bench_cuda: all checks passed\n");
  return 0;
}
