// The single-op benchmarks (lora4j_op_bench_*) on the CPU, through the C API: the variants of
// every op compute the same function (same seed, fp32: norm-wise relative error <= 1e-5), the
// single-variant ops compute what they document on the documented inputs, the costs are
// reported, and every misuse comes back as a status with a message naming it.
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "lora4j_bench.h"
#include "bench/op_bench.h"
#include "model/nf4.h"
#include "op_bench_cases.h"
#include "op_bench_util.h"
#include "test_util.h"

using op_bench_util::Bench;
using testutil::check_err;
using testutil::check_true;

namespace {

constexpr double kTol = 1e-5;
constexpr uint64_t kSeed = 7;  // of the benchmarks not given a seed of their own

bool finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// Both variants on the same seed, `iterations` runs each; every output compared.
void compare_variants(const char* op, const char* a, const char* b,
                      const std::vector<int64_t>& dims, int iterations = 1) {
  Bench x(-1, op, a, dims, kSeed), y(-1, op, b, dims, kSeed);
  std::string tag = std::string(op) + " " + a + " vs " + b;
  for (int64_t d : dims) tag += " " + std::to_string(d);
  if (!check_true(tag + " created", x.status == LORA4J_OK && y.status == LORA4J_OK,
                  lora4j_bench_last_error()))
    return;
  check_true(tag + " run", lora4j_op_bench_run(x.h, iterations) == LORA4J_OK &&
                               lora4j_op_bench_run(y.h, iterations) == LORA4J_OK);
  auto ox = x.outputs(), oy = y.outputs();
  check_true(tag + " same outputs", ox.size() == oy.size() && !ox.empty());
  for (auto& kv : ox) {
    auto it = oy.find(kv.first);
    if (!check_true(tag + " has " + kv.first,
                    it != oy.end() && it->second.size() == kv.second.size()))
      continue;
    bool ok = finite(kv.second) && finite(it->second);
    check_err(tag + " " + kv.first,
              ok ? testutil::rel_err(it->second, kv.second, kv.second.size()) : NAN, kTol);
  }
}

void test_variants() {
  // the CPU default shapes, then odd ones
  compare_variants("attention_fwd", "flash", "materialized", {1, 256, 8, 2, 64});
  compare_variants("attention_fwd", "flash", "materialized", {2, 37, 6, 3, 24});
  compare_variants("attention_bwd", "flash", "materialized", {1, 256, 8, 2, 64});
  compare_variants("attention_bwd", "flash", "materialized", {2, 37, 6, 3, 24});
  compare_variants("cross_entropy", "fused", "materialized", {256, 128, 4096});
  compare_variants("cross_entropy", "fused", "materialized", {29, 40, 301});
  compare_variants("lora_linear_fwd", "fused", "separate", {256, 512, 512, 16});
  compare_variants("lora_linear_fwd", "fused", "separate", {33, 70, 45, 5});
  compare_variants("lora_linear_bwd", "fused", "separate", {256, 512, 512, 16});
  compare_variants("lora_linear_bwd", "fused", "separate", {33, 70, 45, 5}, 2);
  // (nf4-scratch and nf4-fused are one computation on the CPU, so not compared here: each is held
  // to the documented product in test_frozen_linear, and the CUDA pair in test_op_bench_cuda)
  compare_variants("adamw", "flat", "per_tensor", {4, 256, 64, 704, 8}, 3);
  compare_variants("adamw", "flat", "per_tensor", {2, 30, 10, 50, 3});
}

// The single-variant ops against the formulas on the documented inputs (bench_uniform).
void test_documented_inputs() {
  const uint64_t seed = 11;
  {
    const int64_t n = 5, I = 33;
    Bench b(-1, "swiglu_fwd", nullptr, {n, I}, seed);
    check_true("swiglu_fwd runs", b.status == LORA4J_OK && lora4j_op_bench_run(b.h, 1) == 0);
    std::vector<float> ref(size_t(n * I));
    for (int64_t i = 0; i < n * I; ++i) {
      float g = 2.f * lora4j::bench_uniform(seed, 1, uint64_t(i));
      float u = lora4j::bench_uniform(seed, 2, uint64_t(i));
      ref[size_t(i)] = g / (1.f + std::exp(-g)) * u;
    }
    auto o = b.outputs();
    check_err("swiglu_fwd h = silu(gate) * up", testutil::rel_err(o["h"], ref, ref.size()), kTol);
  }
  {
    const int64_t n = 3, d = 40;
    Bench b(-1, "rmsnorm_fwd", "", {n, d}, seed);
    check_true("rmsnorm_fwd runs", b.status == LORA4J_OK && lora4j_op_bench_run(b.h, 2) == 0);
    std::vector<float> ref(size_t(n * d));
    for (int64_t t = 0; t < n; ++t) {
      double ss = 0;
      for (int64_t i = 0; i < d; ++i) {
        double x = lora4j::bench_uniform(seed, 1, uint64_t(t * d + i));
        ss += x * x;
      }
      double rs = 1.0 / std::sqrt(ss / double(d) + lora4j::kBenchEps);
      for (int64_t i = 0; i < d; ++i)
        ref[size_t(t * d + i)] = float(lora4j::bench_uniform(seed, 1, uint64_t(t * d + i)) * rs *
                                       (0.1 * lora4j::bench_uniform(seed, 2, uint64_t(i)) + 1.0));
    }
    auto o = b.outputs();
    check_err("rmsnorm_fwd y", testutil::rel_err(o["y"], ref, ref.size()), kTol);
  }
  {
    // rope rotates pairs: the output differs from the input, its norm does not
    Bench f(-1, "rope_fwd", nullptr, {2, 9, 3, 16}, seed);
    check_true("rope_fwd runs", f.status == LORA4J_OK && lora4j_op_bench_run(f.h, 1) == 0);
    std::vector<float> x0(2 * 9 * 3 * 16);
    for (size_t i = 0; i < x0.size(); ++i) x0[i] = lora4j::bench_uniform(seed, 1, i);
    auto once = f.outputs()["y"];
    check_true("rope_fwd rotates", testutil::rel_err(once, x0, x0.size()) > 1e-2);
    double n0 = 0, n1 = 0;
    for (size_t i = 0; i < x0.size(); ++i)
      n0 += double(x0[i]) * x0[i], n1 += double(once[i]) * once[i];
    check_err("rope_fwd keeps the norm", std::fabs(std::sqrt(n1 / n0) - 1.0), kTol);
  }
}

// Every op runs with its defaults, reports a cost and finite outputs.
void test_all_ops_defaults() {
  const char* ops[] = {"attention_fwd",     "attention_bwd",   "cross_entropy",
                       "lora_linear_fwd",   "lora_linear_bwd", "frozen_linear_fwd",
                       "frozen_linear_bwd", "adamw",           "rmsnorm_fwd",
                       "rmsnorm_bwd",       "rope_fwd",        "rope_bwd",
                       "swiglu_fwd",        "swiglu_bwd"};
  for (const char* op : ops) {
    Bench b(-1, op, nullptr, {}, kSeed);
    if (!check_true(std::string(op) + " default shape created", b.status == LORA4J_OK,
                    lora4j_bench_last_error()))
      continue;
    check_true(std::string(op) + " runs twice", lora4j_op_bench_run(b.h, 2) == LORA4J_OK);
    double flops = -1, bytes = -1;
    int64_t memory = -1;
    lora4j_op_bench_cost(b.h, &flops, &bytes, &memory);
    bool gemm = std::strncmp(op, "attention", 9) == 0 || std::strncmp(op, "cross", 5) == 0 ||
                std::strncmp(op, "lora", 4) == 0 || std::strncmp(op, "frozen", 6) == 0;
    check_true(std::string(op) + " cost",
               (gemm ? flops > 0 : flops == 0) && bytes > 0 && memory >= int64_t(bytes / 7),
               std::to_string(flops) + " flops " + std::to_string(bytes) + " bytes " +
                   std::to_string(memory) + " held");
    auto o = b.outputs();
    bool ok = !o.empty();
    for (auto& kv : o) ok = ok && finite(kv.second) && !kv.second.empty();
    check_true(std::string(op) + " outputs finite", ok, b.describe());
  }
  Bench a(-1, "attention_fwd", "", {}, kSeed);
  check_true("default dims and variant in the description",
             a.describe() == "attention_fwd/flash B=1 S=256 H=8 KH=2 D=64 on cpu", a.describe());
  double flops = 0, bytes = 0;
  int64_t mem = 0;
  lora4j_op_bench_cost(a.h, &flops, &bytes, &mem);
  check_true("attention_fwd flops = 4 B H D S(S+1)/2",
             flops == 4.0 * 1 * 8 * 64 * 256.0 * 257.0 / 2.0, std::to_string(flops));
}

// The frozen GEMM on the documented inputs: y = x W^T and dx = dy W in double, with W from
// bench_uniform (bf16 variant) or the bench's NF4 weight dequantized here from its definition
// (code table value of the nibble, times nested_table[absmax code] * nested_absmax + offset,
// rounded to bf16), so the layout (high nibble first, block and nested block of each element)
// is checked on its own; the description carries the floors.
void test_frozen_linear() {
  const uint64_t seed = 13;
  const int64_t n = 9, in = 131, out = 70;  // odd: blocks straddle rows
  for (const char* variant : {"bf16", "nf4-scratch", "nf4-fused"}) {
    std::vector<double> w(size_t(out * in));
    const bool nf4 = variant[0] == 'n';
    const lora4j::BenchNf4 q = lora4j::make_bench_nf4(seed, 6, out * in);
    for (int64_t i = 0; i < out * in; ++i) {
      if (!nf4) {
        w[size_t(i)] = 0.02 * double(lora4j::bench_uniform(seed, 2, uint64_t(i)));
        continue;
      }
      const uint8_t byte = q.codes[size_t(i / 2)];
      const int code = i % 2 == 0 ? byte >> 4 : byte & 15;
      const int64_t b = i / 64;
      volatile float prod = q.nested_table[q.absmax_codes[size_t(b)]] *
                            q.nested_absmax[size_t(b / 256)];  // rounded: no FMA
      const float scale = prod + q.offset;
      w[size_t(i)] = double(lora4j::round_to_bf16(q.table[size_t(code)] * scale));
    }
    for (bool bwd : {false, true}) {
      const char* op = bwd ? "frozen_linear_bwd" : "frozen_linear_fwd";
      Bench b(-1, op, variant, {n, in, out}, seed);
      const std::string tag = std::string(op) + "/" + variant;
      if (!check_true(tag + " runs", b.status == LORA4J_OK && lora4j_op_bench_run(b.h, 1) == 0))
        continue;
      const int64_t rows_in = bwd ? out : in, rows_out = bwd ? in : out;
      std::vector<float> ref(size_t(n * rows_out));
      for (int64_t t = 0; t < n; ++t)
        for (int64_t o = 0; o < rows_out; ++o) {
          double acc = 0;
          for (int64_t k = 0; k < rows_in; ++k) {
            const double a = lora4j::bench_uniform(seed, bwd ? 5 : 1, uint64_t(t * rows_in + k));
            acc += a * (bwd ? w[size_t(k * in + o)] : w[size_t(o * in + k)]);
          }
          ref[size_t(t * rows_out + o)] = float(acc);
        }
      auto o = b.outputs();
      check_err(tag + " = the documented product",
                testutil::rel_err(o[bwd ? "dx" : "y"], ref, ref.size()), kTol);
      const std::string d = b.describe();
      check_true(
          tag + " description carries the floors",
          d.find("on cpu (floors ") != std::string::npos && d.find(" GFLOP, ") != std::string::npos,
          d);
    }
  }
}

void expect_error(const std::string& what, int status, int want, const std::string& needle) {
  std::string msg = lora4j_bench_last_error();
  check_true(what, status == want && msg.find(needle) != std::string::npos,
             "status " + std::to_string(status) + ": " + msg);
}

void test_errors() {
  lora4j_op_bench* h = nullptr;
  int64_t dims5[] = {1, 16, 4, 2, 8};
  expect_error("unknown op", lora4j_op_bench_create(-1, "attn", nullptr, nullptr, 0, 1, &h),
               LORA4J_EINVAL, "unknown op 'attn'; ops: attention_fwd");
  check_true("no handle after a failure", h == nullptr);
  expect_error("unknown variant",
               lora4j_op_bench_create(-1, "attention_fwd", "fast", nullptr, 0, 1, &h),
               LORA4J_EINVAL, "no variant 'fast'; variants: flash, materialized");
  expect_error("wrong number of dims",
               lora4j_op_bench_create(-1, "attention_fwd", nullptr, dims5, 3, 1, &h), LORA4J_EINVAL,
               "takes 5 dims (B, S, H, KH, D), got 3");
  int64_t zero[] = {1, 0, 4, 2, 8};
  expect_error("zero dim", lora4j_op_bench_create(-1, "attention_fwd", nullptr, zero, 5, 1, &h),
               LORA4J_EINVAL, "dim S of op 'attention_fwd' must be > 0, got 0");
  int64_t gqa[] = {1, 16, 6, 4, 8};
  expect_error("heads not a multiple of KV heads",
               lora4j_op_bench_create(-1, "attention_bwd", nullptr, gqa, 5, 1, &h), LORA4J_EINVAL,
               "multiple of KH");
  int64_t huge[] = {1 << 20, 1 << 20, 1 << 20, 1, 8};
  expect_error("dims too large",
               lora4j_op_bench_create(-1, "attention_fwd", nullptr, huge, 5, 1, &h), LORA4J_EINVAL,
               "too large");
  expect_error("null op", lora4j_op_bench_create(-1, nullptr, nullptr, nullptr, 0, 1, &h),
               LORA4J_EINVAL, "op is null");
  expect_error("null out", lora4j_op_bench_create(-1, "adamw", nullptr, nullptr, 0, 1, nullptr),
               LORA4J_EINVAL, "out is null");
  expect_error("bad device", lora4j_op_bench_create(-2, "adamw", nullptr, nullptr, 0, 1, &h),
               LORA4J_EINVAL, "device must be -1");
  int32_t available = 0;
  lora4j_cuda_available(&available, nullptr, 0);
  if (!available)
    expect_error("cuda without a usable device",
                 lora4j_op_bench_create(0, "adamw", nullptr, nullptr, 0, 1, &h),
                 LORA4J_EUNSUPPORTED, "CUDA");

  Bench b(-1, "rmsnorm_fwd", nullptr, {4, 8}, kSeed);
  expect_error("zero iterations", lora4j_op_bench_run(b.h, 0), LORA4J_EINVAL,
               "iterations must be >= 1");
  expect_error("null handle", lora4j_op_bench_run(nullptr, 1), LORA4J_EINVAL, "handle is null");
  char name[8];
  int64_t numel = 0;
  expect_error("output index", lora4j_op_bench_output_info(b.h, 1, name, 8, &numel), LORA4J_EINVAL,
               "output index 1 out of range [0, 1)");
  float out[4];
  expect_error("output size", lora4j_op_bench_output(b.h, 0, out, 4), LORA4J_EINVAL,
               "output 'y' has 32 elements, buffer holds 4");
  char small[8];
  expect_error("describe buffer", lora4j_op_bench_describe(b.h, small, 8), LORA4J_EINVAL,
               "too small");
  check_true("destroy null", lora4j_op_bench_destroy(nullptr) == LORA4J_OK);
}

}  // namespace

// The items after `key` in a message "...; key a, b, c".
std::vector<std::string> listed(const std::string& msg, const std::string& key) {
  std::vector<std::string> out;
  size_t p = msg.find(key);
  if (p == std::string::npos) return out;
  std::string rest = msg.substr(p + key.size());
  for (size_t a = 0; a <= rest.size();) {
    size_t z = rest.find(", ", a);
    if (z == std::string::npos) z = rest.size();
    out.push_back(rest.substr(a, z - a));
    a = z + 2;
  }
  return out;
}

// op_bench_cases::kAll (what bench_ops times and the CUDA test checks) names every (op, variant)
// of the op table and nothing else: a variant added to the table and not to kAll is never timed
// (the table's own errors list its ops and each op's variants).
void test_cases_cover_the_table() {
  lora4j_op_bench* h = nullptr;
  lora4j_op_bench_create(-1, "no-such-op", nullptr, nullptr, 0, 1, &h);
  std::vector<std::string> ops = listed(lora4j_bench_last_error(), "; ops: ");
  check_true("the op table lists its ops", ops.size() >= 14, lora4j_bench_last_error());
  std::vector<std::string> table, cases;
  for (const std::string& op : ops) {
    lora4j_op_bench_create(-1, op.c_str(), "no-such-variant", nullptr, 0, 1, &h);
    for (const std::string& v : listed(lora4j_bench_last_error(), "; variants: "))
      table.push_back(op + "/" + v);
  }
  for (const auto& c : op_bench_cases::kAll) cases.push_back(std::string(c.op) + "/" + c.variant);
  std::string t, k;
  for (const auto& x : table) t += x + " ";
  for (const auto& x : cases) k += x + " ";
  check_true("op_bench_cases::kAll is the op table, in its order", table == cases,
             "table: " + t + "| kAll: " + k);
}

int main() {
  test_cases_cover_the_table();
  test_errors();
  test_variants();
  test_documented_inputs();
  test_frozen_linear();
  test_all_ops_defaults();
  return testutil::finish("test_op_bench");
}
