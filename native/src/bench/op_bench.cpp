// The op table of the single-op benchmarks: names, dims, variants, default shapes, FLOPs.
#include "bench/op_bench.h"

#include <algorithm>
#include <cmath>

#include "model/engine.h"
#include "model/nf4.h"

namespace lora4j {
namespace {

struct OpInfo {
  const char* name;
  std::vector<const char*> dims;
  std::vector<const char*> variants;  // the first is the default
  std::vector<int64_t> cpu_dims;      // small, for the CPU reference
  std::vector<int64_t> cuda_dims;     // Mistral-7B v0.3, 4 x 2048 tokens
};

const std::vector<OpInfo>& table() {
  static const std::vector<OpInfo> ops = {
      {"attention_fwd",
       {"B", "S", "H", "KH", "D"},
       {"flash", "materialized", "flash_mma"},
       {1, 256, 8, 2, 64},
       {4, 2048, 32, 8, 128}},
      {"attention_bwd",
       {"B", "S", "H", "KH", "D"},
       {"flash", "materialized", "flash_mma"},
       {1, 256, 8, 2, 64},
       {4, 2048, 32, 8, 128}},
      {"cross_entropy",
       {"n", "d", "V"},
       {"fused", "materialized", "fused_serial"},
       {256, 128, 4096},
       {8192, 4096, 32768}},
      {"lora_linear_fwd",
       {"n", "in", "out", "r"},
       {"fused", "separate"},
       {256, 512, 512, 16},
       {8192, 4096, 4096, 16}},
      {"lora_linear_bwd",
       {"n", "in", "out", "r"},
       {"fused", "separate"},
       {256, 512, 512, 16},
       {8192, 4096, 4096, 16}},
      {"frozen_linear_fwd",
       {"n", "in", "out"},
       {"bf16", "nf4-scratch", "nf4-fused"},
       {256, 512, 384},
       {8192, 4096, 4096}},
      {"frozen_linear_bwd",
       {"n", "in", "out"},
       {"bf16", "nf4-scratch", "nf4-fused"},
       {256, 512, 384},
       {8192, 4096, 4096}},
      {"adamw",
       {"L", "d", "kvd", "I", "r"},
       {"flat", "per_tensor"},
       {4, 256, 64, 704, 8},
       {32, 4096, 1024, 14336, 16}},
      {"rmsnorm_fwd", {"n", "d"}, {"default"}, {256, 512}, {8192, 4096}},
      {"rmsnorm_bwd", {"n", "d"}, {"default"}, {256, 512}, {8192, 4096}},
      {"rope_fwd", {"B", "S", "H", "D"}, {"default"}, {1, 256, 8, 64}, {4, 2048, 32, 128}},
      {"rope_bwd", {"B", "S", "H", "D"}, {"default"}, {1, 256, 8, 64}, {4, 2048, 32, 128}},
      {"swiglu_fwd", {"n", "I"}, {"default"}, {256, 1408}, {8192, 14336}},
      {"swiglu_bwd", {"n", "I"}, {"default"}, {256, 1408}, {8192, 14336}},
  };
  return ops;
}

const OpInfo* find(const std::string& op) {
  for (const OpInfo& o : table())
    if (op == o.name) return &o;
  return nullptr;
}

std::string join(const std::vector<const char*>& v) {
  std::string s;
  for (const char* x : v) s += (s.empty() ? "" : ", ") + std::string(x);
  return s;
}

}  // namespace

// Elements of the op's largest tensor (scratch included), in double: sizes that overflow the
// index arithmetic are refused before anything is allocated.
static double largest_tensor(const OpBenchSpec& s) {
  std::vector<double> d(s.dims.begin(), s.dims.end());
  const std::string& op = s.op;
  if (op.rfind("attention", 0) == 0)  // B S H D and the materialized B H S S
    return d[0] * d[1] * d[2] * std::max(d[1], d[4]);
  if (op == "cross_entropy") return std::max(d[0], d[1]) * d[2] + d[0] * d[1];
  if (op.rfind("lora_linear", 0) == 0)
    return std::max(d[0], d[1]) * std::max(d[1], d[2]) + d[0] * d[2];
  if (op.rfind("frozen_linear", 0) == 0)
    return std::max(std::max(d[0] * d[1], d[0] * d[2]), d[1] * d[2]);
  if (op == "adamw") return d[0] * d[4] * (10 * d[1] + 2 * d[2] + 3 * d[3]);
  double p = 1;
  for (double x : d) p *= x;
  return p;
}

int64_t OpBenchSpec::dim(const char* name) const {
  const OpInfo* o = find(op);
  if (o)
    for (size_t i = 0; i < o->dims.size() && i < dims.size(); ++i)
      if (std::string(o->dims[i]) == name) return dims[i];
  fail(LORA4J_EINTERNAL, "op " + op + " has no dim " + name);
}

void resolve_op_bench(OpBenchSpec& spec, bool cuda) {
  const OpInfo* o = find(spec.op);
  if (!o) {
    std::vector<const char*> names;
    for (const OpInfo& x : table()) names.push_back(x.name);
    fail(LORA4J_EINVAL, "unknown op '" + spec.op + "'; ops: " + join(names));
  }
  if (spec.variant.empty()) spec.variant = o->variants[0];
  bool known = false;
  for (const char* v : o->variants) known = known || spec.variant == v;
  if (!known)
    fail(LORA4J_EINVAL, "op '" + spec.op + "' has no variant '" + spec.variant +
                            "'; variants: " + join(o->variants));
  if (spec.dims.empty()) spec.dims = cuda ? o->cuda_dims : o->cpu_dims;
  check_arg(spec.dims.size() == o->dims.size(),
            "op '" + spec.op + "' takes " + std::to_string(o->dims.size()) + " dims (" +
                join(o->dims) + "), got " + std::to_string(spec.dims.size()));
  for (size_t i = 0; i < spec.dims.size(); ++i)
    check_arg(spec.dims[i] > 0, "dim " + std::string(o->dims[i]) + " of op '" + spec.op +
                                    "' must be > 0, got " + std::to_string(spec.dims[i]));
  check_arg(largest_tensor(spec) < std::ldexp(1.0, 40),
            "the dims of op '" + spec.op + "' are too large");
  if (spec.op.rfind("attention", 0) == 0)
    check_arg(spec.dim("H") % spec.dim("KH") == 0, "H (" + std::to_string(spec.dim("H")) +
                                                       ") must be a multiple of KH (" +
                                                       std::to_string(spec.dim("KH")) + ")");
  if (spec.op.rfind("rope", 0) == 0)
    check_arg(spec.dim("D") % 2 == 0, "D of op '" + spec.op + "' must be even");
}

double op_bench_flops(const OpBenchSpec& s) {
  const std::string& op = s.op;
  if (op == "attention_fwd" || op == "attention_bwd") {
    // two GEMMs over the visible (causal) half of the scores; the backward has five (the
    // scores recomputed, dP, dV, dQ, dK): 2.5x, as flash-attention counts it
    double S = double(s.dim("S"));
    double f = 4.0 * double(s.dim("B")) * double(s.dim("H")) * double(s.dim("D")) * S * (S + 1) / 2;
    return op == "attention_fwd" ? f : 2.5 * f;
  }
  if (op == "cross_entropy")  // logits GEMM and dh GEMM
    return 4.0 * double(s.dim("n")) * double(s.dim("d")) * double(s.dim("V"));
  if (op == "lora_linear_fwd" || op == "lora_linear_bwd") {
    double n = double(s.dim("n")), in = double(s.dim("in")), out = double(s.dim("out")),
           r = double(s.dim("r"));
    // frozen GEMM; the low-rank GEMMs: forward x A^T and xa B^T; backward dB, dy B, dA, dx
    return 2 * n * in * out + (op == "lora_linear_fwd" ? 2.0 : 4.0) * n * r * (in + out);
  }
  if (op == "frozen_linear_fwd" || op == "frozen_linear_bwd")  // y = x W^T or dx = dy W
    return 2.0 * double(s.dim("n")) * double(s.dim("in")) * double(s.dim("out"));
  return 0;  // memory-bound element-wise ops: only the bytes matter
}

namespace {
constexpr int32_t kBenchNf4Block = 64, kBenchNf4Nested = 256;

uint8_t bench_byte(uint64_t seed, uint32_t tensor, uint64_t i) {
  const int v = int((bench_uniform(seed, tensor, i) * 0.5f + 0.5f) * 256.f);
  return uint8_t(std::min(v, 255));
}
}  // namespace

BenchNf4 make_bench_nf4(uint64_t seed, uint32_t tensor, int64_t numel) {
  BenchNf4 q;
  q.numel = numel;
  q.table.assign(lora4j::kNf4Table, lora4j::kNf4Table + 16);
  q.codes.resize(size_t((numel + 1) / 2));
  for (size_t i = 0; i < q.codes.size(); ++i) q.codes[i] = bench_byte(seed, tensor, i);
  const int64_t blocks = (numel + kBenchNf4Block - 1) / kBenchNf4Block;
  q.absmax_codes.resize(size_t(blocks));
  for (int64_t b = 0; b < blocks; ++b) q.absmax_codes[size_t(b)] = bench_byte(seed, tensor + 1, b);
  q.nested_table.resize(256);
  for (int j = 0; j < 256; ++j) q.nested_table[size_t(j)] = float(2 * j - 255) / 255.f;
  q.nested_absmax.resize(size_t((blocks + kBenchNf4Nested - 1) / kBenchNf4Nested));
  for (size_t j = 0; j < q.nested_absmax.size(); ++j)  // [0.005, 0.015]
    q.nested_absmax[j] = 0.01f * (1.f + 0.5f * bench_uniform(seed, tensor + 2, j));
  q.offset = 0.02f;  // scales nested_table * nested_absmax + offset in [0.005, 0.035]
  return q;
}

lora4j_nf4_weight BenchNf4::view() const {
  lora4j_nf4_weight w{};
  w.numel = numel;
  w.blocksize = kBenchNf4Block;
  w.dtype = LORA4J_DTYPE_BF16;
  w.codes = codes.data();
  w.code_table = table.data();
  w.absmax_codes = absmax_codes.data();
  w.nested_table = nested_table.data();
  w.nested_absmax = nested_absmax.data();
  w.nested_blocksize = kBenchNf4Nested;
  w.offset = offset;
  return w;
}

int64_t BenchNf4::bytes() const {
  return int64_t(codes.size() + absmax_codes.size()) +
         4 * int64_t(table.size() + nested_table.size() + nested_absmax.size());
}

std::vector<std::pair<int64_t, int64_t>> op_bench_lora_tensors(const OpBenchSpec& s) {
  const int64_t d = s.dim("d"), kvd = s.dim("kvd"), I = s.dim("I"), r = s.dim("r");
  const int64_t io[7][2] = {{d, d}, {d, kvd}, {d, kvd}, {d, d}, {d, I}, {d, I}, {I, d}};
  std::vector<std::pair<int64_t, int64_t>> t;
  int64_t off = 0;
  for (int64_t l = 0; l < s.dim("L"); ++l)
    for (const auto& p : io)
      for (int64_t numel : {r * p[0], p[1] * r}) {
        t.push_back({off, numel});
        off += numel;
      }
  return t;
}

std::string op_bench_label(const OpBenchSpec& s) {
  const OpInfo* o = find(s.op);
  std::string label = s.op + "/" + s.variant;
  for (size_t i = 0; o && i < o->dims.size() && i < s.dims.size(); ++i)
    label += " " + std::string(o->dims[i]) + "=" + std::to_string(s.dims[i]);
  return label;
}

}  // namespace lora4j
