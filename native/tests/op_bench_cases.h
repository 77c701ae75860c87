// Every (op, variant) pair of the single-op benchmarks, in the order of the op table
// (model/op_bench.cpp; single-variant ops name theirs "default"): the cases bench_ops times and
// test_op_bench_cuda checks. An op or variant added to the table is added here.
#pragma once

namespace op_bench_cases {

struct OpCase {
  const char* op;
  const char* variant;
};

inline constexpr OpCase kAll[] = {
    {"attention_fwd", "flash"},        {"attention_fwd", "materialized"},
    {"attention_fwd", "flash_mma"},    {"attention_bwd", "flash"},
    {"attention_bwd", "materialized"}, {"cross_entropy", "fused"},
    {"cross_entropy", "materialized"}, {"lora_linear_fwd", "fused"},
    {"lora_linear_fwd", "separate"},   {"lora_linear_bwd", "fused"},
    {"lora_linear_bwd", "separate"},   {"adamw", "flat"},
    {"adamw", "per_tensor"},           {"rmsnorm_fwd", "default"},
    {"rmsnorm_bwd", "default"},        {"rope_fwd", "default"},
    {"rope_bwd", "default"},           {"swiglu_fwd", "default"},
    {"swiglu_bwd", "default"},
};

}  // namespace op_bench_cases
