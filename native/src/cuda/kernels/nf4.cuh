// One NF4 element and one block scale on the device, rounded as bitsandbytes' dequantize_4bit
// does (every product and sum rounded to fp32 on its own: __fmul_rn, __fadd_rn, no FMA), shared
// by the dequantization kernel (nf4.cu) and the fused NF4 GEMM of the single-op benchmarks, so
// both give the CPU twin's (model/nf4.cpp) weights to the bit.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/kernels/kernels.h"

namespace lora4j {
namespace cuda {

// scale[b]: absmax[b], or nested_table[absmax_codes[b]] * nested_absmax[b / nested_bs] + offset
// (nested_table: the 256-entry table, copied to shared memory by the caller).
__device__ __forceinline__ float nf4_scale(const Nf4Params& p, const float* nested_table,
                                           int64_t b) {
  if (p.absmax) return p.absmax[b];
  const float v =
      __fmul_rn(nested_table[p.absmax_codes[b]], p.nested_absmax[b / p.nested_blocksize]);
  return __fadd_rn(v, p.offset);
}

// The element of code `code` in a block of scale `scale` as bf16 (table: the 16 NF4 values,
// copied to shared memory by the caller); an fp16 weight dtype rounds to fp16 first.
__device__ __forceinline__ bf16 nf4_value(const Nf4Params& p, const float* table, int code,
                                          float scale) {
  float v = __fmul_rn(table[code], scale);
  if (p.half_first) v = __half2float(__float2half_rn(v));
  return __float2bfloat16_rn(v);
}

}  // namespace cuda
}  // namespace lora4j
