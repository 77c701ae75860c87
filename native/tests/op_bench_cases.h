// Every (op, variant) pair of the single-op benchmarks, in the order of the op table
// (model/op_bench.cpp; single-variant ops name theirs "default"): the cases bench_ops times and
// test_op_bench_cuda checks. An op or variant added to the table is added here.
#pragma once

#include <cstdint>

namespace op_bench_cases {

struct OpCase {
  const char* op;
  const char* variant;
};

inline constexpr OpCase kAll[] = {
    {"attention_fwd", "flash"},
    {"attention_fwd", "materialized"},
    {"attention_fwd", "flash_mma"},
    {"attention_bwd", "flash"},
    {"attention_bwd", "materialized"},
    {"attention_bwd", "flash_mma"},
    {"cross_entropy", "fused"},
    {"cross_entropy", "materialized"},
    {"cross_entropy", "fused_serial"},
    {"lora_linear_fwd", "fused"},
    {"lora_linear_fwd", "separate"},
    {"lora_linear_bwd", "fused"},
    {"lora_linear_bwd", "separate"},
    {"frozen_linear_fwd", "bf16"},
    {"frozen_linear_fwd", "nf4-scratch"},
    {"frozen_linear_fwd", "nf4-fused"},
    {"frozen_linear_bwd", "bf16"},
    {"frozen_linear_bwd", "nf4-scratch"},
    {"frozen_linear_bwd", "nf4-fused"},
    {"adamw", "flat"},
    {"adamw", "per_tensor"},
    {"rmsnorm_fwd", "default"},
    {"rmsnorm_bwd", "default"},
    {"rope_fwd", "default"},
    {"rope_bwd", "default"},
    {"swiglu_fwd", "default"},
    {"swiglu_bwd", "default"},
};

// The shapes (n, in, out) bench_ops times the frozen_linear ops at: Mistral-7B's projections
// q/o 4096->4096, k/v 4096->1024, gate/up 4096->14336, down 14336->4096, at 2048 tokens (1 x
// 2048) and 8192 tokens (4 x 2048).
inline constexpr int64_t kFrozenShapes[8][3] = {
    {2048, 4096, 4096}, {2048, 4096, 1024}, {2048, 4096, 14336}, {2048, 14336, 4096},
    {8192, 4096, 4096}, {8192, 4096, 1024}, {8192, 4096, 14336}, {8192, 14336, 4096},
};

// The same projections at 256 tokens, where bench_ops times the frozen_linear ops on the CPU
// (--device -1) when they are named: q/o, gate/up, down.
inline constexpr int64_t kCpuFrozenShapes[3][3] = {
    {256, 4096, 4096}, {256, 4096, 14336}, {256, 14336, 4096}};

}  // namespace op_bench_cases
