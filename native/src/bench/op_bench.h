// Single-op benchmarks (lora4j_op_bench_* in lora4j.h): one op of the training step, in one of
// its variants, on inputs the benchmark allocates and fills itself, run as often as asked.
//
// The op table (names, dims, variants, the CPU and Mistral-7B default shapes and the FLOP
// counts) lives here and in op_bench.cpp, in the core; each backend implements the ops
// (cpu/op_bench_cpu.cpp, cuda/op_bench.cpp). The FLOPs of an op are the same for all of its
// variants (the algorithmic count: causal attention counts the visible half of the scores), so
// "TFLOP/s" compares variants exactly as their times do. The byte floor is counted by the
// backend from the tensors the op must read and write once, at the element size it stores them
// in; it ignores scratch (the materialized scores, the fp32 logits), which is what the slower
// variants pay for.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lora4j.h"

#if defined(__CUDACC__)
#define LORA4J_HD __host__ __device__
#else
#define LORA4J_HD
#endif

namespace lora4j {

// A seeded uniform number in [-1, 1) for element i of tensor `tensor`: a hash, so every device
// (and every variant) sees the same inputs for the same seed, whatever order fills them.
LORA4J_HD inline float bench_uniform(uint64_t seed, uint32_t tensor, uint64_t i) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + (uint64_t(tensor) << 40) + i + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return float(int64_t(z >> 40) - (int64_t(1) << 23)) * (1.0f / float(1 << 23));
}
// Target token t of the cross-entropy benchmarks: every 8th is -100 (not counted).
LORA4J_HD inline int32_t bench_target(uint64_t seed, uint64_t t, int64_t vocab) {
  if (t % 8 == 7) return -100;
  float u = bench_uniform(seed, 99, t) * 0.5f + 0.5f;  // [0, 1)
  int64_t v = int64_t(u * float(vocab));
  return int32_t(v < vocab ? v : vocab - 1);
}

// Fixed hyper-parameters of the benchmarked ops.
constexpr double kBenchRopeTheta = 1e6;  // Mistral-7B v0.3
constexpr float kBenchEps = 1e-5f;
constexpr float kBenchLoraScale = 2.0f;  // alpha 32, r 16

// A validated request: op and variant from the table, dims complete.
struct OpBenchSpec {
  std::string op;
  std::string variant;
  std::vector<int64_t> dims;
  uint64_t seed = 0;
  int device_index = 0;  // CUDA ordinal; ignored on the CPU
  // dims[i] by the name the table gives it ("B", "S", ...); throws EINTERNAL if absent.
  int64_t dim(const char* name) const;
};

class OpBench {
 public:
  struct Output {
    std::string name;
    int64_t numel;
  };
  virtual ~OpBench() = default;
  // Runs the op `iterations` times and returns when the device is done.
  virtual void run(int32_t iterations) = 0;
  // Copies output i (in `outputs`) as fp32 into out[outputs[i].numel].
  virtual void output(int i, float* out) = 0;

  std::vector<Output> outputs;
  double flops = 0;    // per run of the op (set by the C API from the table)
  double bytes = 0;    // byte floor per run (set by the backend)
  int64_t memory = 0;  // bytes the benchmark holds on its device (inputs, outputs, scratch)
  std::string description;

 protected:
  // Adds a tensor of n elements of `size` bytes each to the byte floor.
  void floor(int64_t n, int size) { bytes += double(n) * double(size); }
};

// Fills in the device's default dims when spec.dims is empty, checks op, variant and dims
// (throws EINVAL naming what is wrong and listing what is valid).
void resolve_op_bench(OpBenchSpec& spec, bool cuda);
// The op's FLOPs per run (the same for every variant).
double op_bench_flops(const OpBenchSpec& spec);
// "attention_fwd/flash B=4 S=2048 H=32 KH=8 D=128"
std::string op_bench_label(const OpBenchSpec& spec);
// The LoRA tensors of the adamw op, as (offset, numel) in one flat arena: for each of L layers,
// q, k, v, o, gate, up, down (Mistral's in/out features from d, kvd, I), A [r, in] then B [out, r].
std::vector<std::pair<int64_t, int64_t>> op_bench_lora_tensors(const OpBenchSpec& spec);
// The NF4 weight [out, in] of the frozen_linear benchmarks' nf4 variants, in bitsandbytes'
// layout as its checkpoints hold it: blocks of 64, double-quantized (uint8 absmax codes into a
// sorted 256-entry table, one nested absmax per 256 blocks, plus an offset), the 16 NF4 values
// as code table. Every byte and scale comes from bench_uniform(seed, tensor.., i): random codes
// (the GEMMs cost the same for any codes), block scales in [0.005, 0.035]. The same numbers on
// every device; each backend dequantizes it with its own code (model/nf4.cpp, cuda/kernels).
struct BenchNf4 {
  int64_t numel = 0;
  std::vector<uint8_t> codes, absmax_codes;
  std::vector<float> table, nested_table, nested_absmax;
  float offset = 0.f;
  lora4j_nf4_weight view() const;
  // Bytes of the quantized form (codes, absmax codes, tables, nested absmax): the weight's
  // share of the byte floor.
  int64_t bytes() const;
};
BenchNf4 make_bench_nf4(uint64_t seed, uint32_t tensor, int64_t numel);
// True for the frozen_linear variants that read an NF4 weight.
inline bool op_bench_nf4(const OpBenchSpec& s) { return s.variant.rfind("nf4", 0) == 0; }

// The CPU implementations (cpu/op_bench_cpu.cpp), on all hardware threads.
std::unique_ptr<OpBench> make_cpu_op_bench(const OpBenchSpec& spec);

}  // namespace lora4j
