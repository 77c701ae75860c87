// Kernels of the single-op benchmarks (cuda/op_bench.cpp) that the engine does not use: seeded
// input fills, conversions for reading outputs back, and the pieces of the baseline variants the
// engine's kernels are compared against (the softmax of materialized attention and its backward,
// the add of the separate LoRA path, the fused NF4 GEMM). Not in the training step.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda/kernels/kernels.h"

namespace lora4j {
namespace cuda {

// x[i] = bench_uniform(seed, tensor, i) * scale + offset (bench/op_bench.h), rounded to the type.
cudaError_t bench_fill(float* x, int64_t n, uint64_t seed, uint32_t tensor, float scale,
                       float offset, cudaStream_t s);
cudaError_t bench_fill(__nv_bfloat16* x, int64_t n, uint64_t seed, uint32_t tensor, float scale,
                       float offset, cudaStream_t s);
cudaError_t bench_fill(__half* x, int64_t n, uint64_t seed, uint32_t tensor, float scale,
                       float offset, cudaStream_t s);
// y = float(x)
cudaError_t bench_to_f32(const __nv_bfloat16* x, float* y, int64_t n, cudaStream_t s);
cudaError_t bench_to_f32(const __half* x, float* y, int64_t n, cudaStream_t s);

// Materialized causal attention, softmax of `rows` rows of S scaled scores: row r is query
// i = r % S and sees keys j <= i. p[r, j] = exp(s[r, j] - lse[r]) for j <= i, else 0 (bf16);
// lse[r] = log sum_{j <= i} exp(s[r, j]).
cudaError_t causal_softmax_rows(const float* s, __nv_bfloat16* p, float* lse, int64_t rows,
                                int64_t S, cudaStream_t st);
// Its backward: ds[r, j] = p[r, j] (dp[r, j] - sum_k p[r, k] dp[r, k])  (bf16).
cudaError_t causal_softmax_backward_rows(const __nv_bfloat16* p, const float* dp, __nv_bfloat16* ds,
                                         int64_t rows, int64_t S, cudaStream_t st);

// y += x (bf16, summed in fp32) and y += c * x (fp32).
cudaError_t add_inplace(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n, cudaStream_t s);
cudaError_t add_inplace(float* y, const float* x, float c, int64_t n, cudaStream_t s);

// The fused NF4 GEMMs (nf4_gemm.cu), W [out, in] in NF4: y = x W^T (bf16 out) and dx = dy W
// (fp32 out), the weight dequantized in the GEMM's operand path to the bf16 values
// nf4_dequantize writes. x, dy 16-byte aligned.
cudaError_t nf4_gemm_forward(const Nf4Params& w, const __nv_bfloat16* x, __nv_bfloat16* y,
                             int64_t n, int64_t in, int64_t out, cudaStream_t s);
cudaError_t nf4_gemm_backward_input(const Nf4Params& w, const __nv_bfloat16* dy, float* dx,
                                    int64_t n, int64_t in, int64_t out, cudaStream_t s);

}  // namespace cuda
}  // namespace lora4j
