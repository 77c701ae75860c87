// NF4 weights as bitsandbytes stores them (lora4j_nf4_weight in lora4j.h): validation, the
// block scales (undoing the double quantization) and the dequantized weight. This is the CPU
// reference of the format: the CPU engine holds its result, the CUDA kernel (cuda/kernels/nf4.cu)
// is tested against it, and the C API's lora4j_nf4_dequantize returns it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lora4j.h"

namespace lora4j {

// The 16 values of the NF4 code (QLoRA, appendix E; bitsandbytes' table), as fp32. The engine
// takes the table of each weight from its checkpoint (quant_map); this one makes weights for the
// benchmarks and tests.
constexpr float kNf4Table[16] = {-1.0f,
                                 -0.6961928009986877f,
                                 -0.5250730514526367f,
                                 -0.39491748809814453f,
                                 -0.28444138169288635f,
                                 -0.18477343022823334f,
                                 -0.09105003625154495f,
                                 0.0f,
                                 0.07958029955625534f,
                                 0.16093020141124725f,
                                 0.24611230194568634f,
                                 0.33791524171829224f,
                                 0.44070982933044434f,
                                 0.5626170039176941f,
                                 0.7229568362236023f,
                                 1.0f};

// Number of scale blocks of a weight: ceil(numel / blocksize).
inline int64_t nf4_blocks(const lora4j_nf4_weight& w) {
  return (w.numel + w.blocksize - 1) / w.blocksize;
}
// Number of nested absmax values: ceil(blocks / nested_blocksize) (0 when not double-quantized).
inline int64_t nf4_nested_blocks(const lora4j_nf4_weight& w) {
  if (w.absmax) return 0;
  return (nf4_blocks(w) + w.nested_blocksize - 1) / w.nested_blocksize;
}
// Bytes of the packed codes: (numel + 1) / 2.
inline int64_t nf4_code_bytes(int64_t numel) { return (numel + 1) / 2; }

// Throws EINVAL naming `what` (the weight's name) when a field is invalid: numel <= 0, a
// blocksize that is odd or < 2, a dtype other than BF16/F16/F32, a null pointer among the ones
// the form needs, a code table value that is not finite, a nested_blocksize < 1, a non-finite
// offset, or a scale (plain or dequantized) that is not finite.
void nf4_validate(const lora4j_nf4_weight& w, const std::string& what);

// scale[b] for every block b (fp32, exactly as bitsandbytes computes it). No validation.
void nf4_scales(const lora4j_nf4_weight& w, float* scales);

// out[i] = round_to_dtype(code_table[code_i] * scale[i / blocksize]) as fp32 (no validation);
// scales from nf4_scales.
void nf4_dequantize_with(const lora4j_nf4_weight& w, const float* scales, float* out);

// nf4_validate, nf4_scales, nf4_dequantize_with.
void nf4_dequantize(const lora4j_nf4_weight& w, float* out, const std::string& what);

// fp32 -> bf16 -> fp32 and fp32 -> fp16 -> fp32, round to nearest even (as torch's .to()).
float round_to_bf16(float f);
float round_to_f16(float f);

}  // namespace lora4j
