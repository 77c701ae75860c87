/*
 * NF4 dequantization (QLoRA, bitsandbytes' format; see lora4j_nf4_weight in lora4j.h):
 *     w[i] = bf16(code_table[c_i] * scale[i / blocksize])
 * c_i: the high nibble of byte i / 2 for even i, the low nibble for odd i. scale[b] = absmax[b],
 * or with double quantization nested_table[absmax_codes[b]] * nested_absmax[b / nested_bs]
 * + offset. Every product and sum is rounded to fp32 on its own (__fmul_rn, __fadd_rn: no FMA
 * contraction), so the result is the CPU twin's (model/nf4.cpp) to the bit; an fp16 weight dtype
 * rounds to fp16 first, as lora4j_engine_set_weight of fp16 data would reach bf16.
 *
 * The engine keeps its projection weights in this form on the device and dequantizes one weight
 * into a reused bf16 scratch buffer just before the GEMM that reads it (forward, and the input
 * gradient's GEMM in the backward). Memory-bound: 0.5 byte read and 2 bytes written per element.
 * Each thread turns 4 code bytes into 8 weights with one 16-byte store.
 */
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/nf4.cuh"

namespace lora4j {
namespace cuda {

namespace {

__global__ void nf4_dequantize_kernel(Nf4Params p, bf16* out) {
  __shared__ float table[16];
  __shared__ float nested[256];
  for (int i = threadIdx.x; i < 16; i += blockDim.x) table[i] = p.code_table[i];
  if (!p.absmax)
    for (int i = threadIdx.x; i < 256; i += blockDim.x) nested[i] = p.nested_table[i];
  __syncthreads();
  const int64_t groups = p.numel / 8;           // whole groups of 8 elements (4 code bytes)
  const bool one_block = p.blocksize % 8 == 0;  // a group never straddles two scale blocks
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < groups;
       g += int64_t(gridDim.x) * blockDim.x) {
    const uint32_t bytes = *reinterpret_cast<const uint32_t*>(p.codes + 4 * g);
    __align__(16) bf16 v[8];
    float scale = one_block ? nf4_scale(p, nested, (8 * g) / p.blocksize) : 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t byte = (bytes >> (8 * j)) & 0xFFu;  // little-endian: byte 4g + j
      const int64_t i = 8 * g + 2 * j;
      if (!one_block) scale = nf4_scale(p, nested, i / p.blocksize);
      v[2 * j] = nf4_value(p, table, int(byte >> 4), scale);
      if (!one_block) scale = nf4_scale(p, nested, (i + 1) / p.blocksize);
      v[2 * j + 1] = nf4_value(p, table, int(byte & 0x0Fu), scale);
    }
    *reinterpret_cast<uint4*>(out + 8 * g) = *reinterpret_cast<const uint4*>(v);
  }
  // the tail: numel % 8 elements, one per thread of the first block
  if (blockIdx.x == 0) {
    const int64_t i = groups * 8 + threadIdx.x;
    if (threadIdx.x < 8 && i < p.numel) {
      const uint8_t byte = p.codes[i >> 1];
      const int code = (i & 1) ? (byte & 0x0F) : (byte >> 4);
      out[i] = nf4_value(p, table, code, nf4_scale(p, nested, i / p.blocksize));
    }
  }
}

}  // namespace

cudaError_t nf4_dequantize(const Nf4Params& p, bf16* out, cudaStream_t s) {
  if (p.numel <= 0) return cudaSuccess;
  if (reinterpret_cast<uintptr_t>(p.codes) % 4 != 0 || reinterpret_cast<uintptr_t>(out) % 16 != 0)
    return cudaErrorMisalignedAddress;
  const int threads = 256;
  nf4_dequantize_kernel<<<grid_for(std::max<int64_t>(p.numel / 8, 1), threads), threads, 0, s>>>(
      p, out);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
