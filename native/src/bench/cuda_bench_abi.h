/*
 * cuda_bench_abi.h -- the plain-C table between liblora4j_bench and liblora4j_cuda_bench (the
 * CUDA single-op benchmarks), for the same reason as api/backend_abi.h: the libraries may be
 * built apart, so only C crosses. liblora4j_cuda_bench exports lora4j_cuda_bench_entry.
 */
#ifndef LORA4J_CUDA_BENCH_ABI_H
#define LORA4J_CUDA_BENCH_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LORA4J_CUDA_BENCH_ABI_VERSION 1u

typedef struct lora4j_cuda_op_bench lora4j_cuda_op_bench;

typedef struct lora4j_cuda_bench_api {
  uint32_t abi_version;
  uint32_t table_size;
  const char* (*last_error)(void);
  /* Number of usable devices (0 with the reason in last_error). */
  int (*device_count)(int32_t* count);
  /* op, variant and dims resolved by the caller (bench/op_bench.cpp). */
  int (*create)(int32_t device_index, const char* op, const char* variant, const int64_t* dims,
                int32_t ndims, uint64_t seed, lora4j_cuda_op_bench** out);
  int (*destroy)(lora4j_cuda_op_bench* b);
  int (*run)(lora4j_cuda_op_bench* b, int32_t iterations);
  int (*cost)(lora4j_cuda_op_bench* b, double* bytes, int64_t* memory);
  int (*output_count)(lora4j_cuda_op_bench* b, int32_t* count);
  int (*output_info)(lora4j_cuda_op_bench* b, int32_t index, char* name, int32_t name_cap,
                     int64_t* numel);
  int (*output)(lora4j_cuda_op_bench* b, int32_t index, float* out);
} lora4j_cuda_bench_api;

typedef const lora4j_cuda_bench_api* (*lora4j_cuda_bench_entry_fn)(void);
#define LORA4J_CUDA_BENCH_ENTRY_SYMBOL "lora4j_cuda_bench_entry"

#ifdef __cplusplus
}
#endif
#endif
