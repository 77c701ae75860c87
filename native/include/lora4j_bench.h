/*
 * lora4j_bench.h -- the single-op benchmarks, for JMH and the native benchmark driver.
 *
 * Not part of the product: liblora4j and liblora4j_cuda contain none of this. The benchmarks live
 * in liblora4j_bench (the op table and the CPU implementations) and liblora4j_cuda_bench (the CUDA
 * implementations, opened by liblora4j_bench with dlopen when a CUDA device is asked for), built
 * beside the product libraries and packed only into the benchmarks module's jar.
 *
 * Conventions as in lora4j.h: every function returns a status (LORA4J_OK or LORA4J_E*), and
 * lora4j_bench_last_error() gives the calling thread's message after a failure.
 */
#ifndef LORA4J_BENCH_H
#define LORA4J_BENCH_H

#include <stdint.h>

#include "lora4j.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The message of the calling thread's last failure in this library. */
const char* lora4j_bench_last_error(void);
/* Path of liblora4j_cuda_bench.so (before the first CUDA benchmark). Without it the library is
 * looked for in LORA4J_CUDA_BENCH_LIBRARY, beside liblora4j_bench, then on the loader's path. */
int lora4j_bench_set_cuda_library(const char* path);

/* One op of the training step in one of its variants, on inputs the benchmark allocates on the
 * device and fills with seeded random numbers (the same numbers for every variant and device),
 * for JMH and the native driver to time and for tests to check that the variants of an op
 * compute the same function. Ops, their dims (in this order) and variants (the first is the
 * default, taken when variant is NULL or ""):
 *   attention_fwd, attention_bwd  B, S, H, KH, D   flash | materialized | flash_mma  (causal,
 *                                                  GQA; flash_mma: the mma.sync kernels where
 *                                                  flash takes the wgmma ones)
 *   cross_entropy                 n, d, V          fused | materialized | fused_serial  (LM
 *                                                  head + loss, forward + backward; fused_serial:
 *                                                  fused's chunks one after another on one
 *                                                  stream, where fused overlaps each chunk's
 *                                                  loss kernel with the next chunk's GEMM)
 *   lora_linear_fwd, _bwd         n, in, out, r    fused | separate
 *   frozen_linear_fwd, _bwd       n, in, out       bf16 | nf4-scratch | nf4-fused  (the frozen
 *                                                  GEMM y = x W^T / dx = dy W with a bf16 or
 *                                                  NF4 weight; its description adds the floors)
 *   adamw                         L, d, kvd, I, r  flat | per_tensor       (r on all 7 proj.)
 *   rmsnorm_fwd, rmsnorm_bwd      n, d             default
 *   rope_fwd, rope_bwd            B, S, H, D       default
 *   swiglu_fwd, swiglu_bwd        n, I             default
 * ndims == 0 takes the device's default shape: Mistral-7B v0.3 at 4 x 2048 tokens on CUDA
 * (hidden 4096, 32 heads, 8 KV heads, head_dim 128, MLP 14336, vocab 32768, r 16), small
 * shapes on the CPU. device: -1 = CPU, >= 0 = that CUDA device. */
typedef struct lora4j_op_bench lora4j_op_bench;
int lora4j_op_bench_create(int32_t device, const char* op, const char* variant, const int64_t* dims,
                           int32_t ndims, uint64_t seed, lora4j_op_bench** out);
int lora4j_op_bench_destroy(lora4j_op_bench* bench);
/* Runs the op `iterations` (>= 1) times and returns when the device has finished. Ops that
 * update state (adamw, the gradient accumulators of lora_linear_bwd, rope in place) continue
 * from where the previous run left them. */
int lora4j_op_bench_run(lora4j_op_bench* bench, int32_t iterations);
/* Per run: flops (the op's algorithmic count, the same for every variant; 0 for the memory-bound
 * element-wise ops) and bytes (the floor: each input read and each output written once, at the
 * element size the device stores it in). memory: bytes the benchmark holds on its device,
 * scratch included (the materialized scores or logits). */
int lora4j_op_bench_cost(lora4j_op_bench* bench, double* flops, double* bytes, int64_t* memory);
/* "attention_fwd/flash B=4 S=2048 H=32 KH=8 D=128 on cuda:0", NUL-terminated. */
int lora4j_op_bench_describe(lora4j_op_bench* bench, char* text, int32_t text_cap);
/* The op's outputs (out, lse / dq, dk, dv / loss, dh / ...): their number, the name and element
 * count of the i-th, and a copy of it as fp32. */
int lora4j_op_bench_output_count(lora4j_op_bench* bench, int32_t* count);
int lora4j_op_bench_output_info(lora4j_op_bench* bench, int32_t index, char* name, int32_t name_cap,
                                int64_t* numel);
int lora4j_op_bench_output(lora4j_op_bench* bench, int32_t index, float* out, int64_t numel);

#ifdef __cplusplus
}
#endif
#endif /* LORA4J_BENCH_H */
