// NF4 weights (see nf4.h and lora4j_nf4_weight in lora4j.h): the plain CPU definition.
#include "model/nf4.h"

#include <cmath>
#include <cstring>

#include "model/engine.h"

namespace lora4j {
namespace {

// a * b and a + b rounded to fp32 each: the volatile keeps the compiler from fusing a product
// and a sum into one FMA (which rounds once), so the results are bitsandbytes' to the bit on
// every instruction set (-march=native included).
inline float mul_rn(float a, float b) {
  volatile float p = a * b;
  return p;
}
inline float add_rn(float a, float b) {
  volatile float s = a + b;
  return s;
}

}  // namespace

float round_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7F800000u) == 0x7F800000u) {  // inf stays, NaN stays NaN
    if (x & 0x7FFFFFu) x |= 0x00400000u;
    x &= 0xFFFF0000u;
  } else {
    x += 0x7FFFu + ((x >> 16) & 1u);
    x &= 0xFFFF0000u;
  }
  float r;
  std::memcpy(&r, &x, 4);
  return r;
}

// Rounds to the nearest fp16 value (ties to even), overflow to infinity, as a float.
float round_to_f16(float f) {
  if (!std::isfinite(f)) return f;
  const float a = std::fabs(f);
  if (a >= 65520.0f) return std::copysign(INFINITY, f);  // beyond max + half an ulp
  // fp16 has 11 significant bits down to 2^-14, then a fixed quantum of 2^-24 (subnormals).
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  const int exp_unbiased = e - 1;
  const int quantum_exp = exp_unbiased < -14 ? -24 : exp_unbiased - 10;
  const float q = std::ldexp(1.0f, quantum_exp);
  // a / q is exact (power of two); nearbyint rounds half to even in the default mode.
  const float r = std::nearbyint(a / q) * q;
  return std::copysign(r, f);
}

void nf4_validate(const lora4j_nf4_weight& w, const std::string& what) {
  const std::string n = "NF4 weight '" + what + "': ";
  check_arg(w.numel > 0, n + "numel must be > 0, got " + std::to_string(w.numel));
  check_arg(w.blocksize >= 2 && w.blocksize % 2 == 0,
            n + "blocksize must be even and >= 2, got " + std::to_string(w.blocksize));
  check_arg(
      w.dtype == LORA4J_DTYPE_BF16 || w.dtype == LORA4J_DTYPE_F16 || w.dtype == LORA4J_DTYPE_F32,
      n + "dtype must be LORA4J_DTYPE_BF16, F16 or F32, got " + std::to_string(w.dtype));
  check_arg(w.codes != nullptr, n + "codes is null");
  check_arg(w.code_table != nullptr, n + "code_table is null");
  for (int i = 0; i < 16; ++i)
    check_arg(std::isfinite(w.code_table[i]),
              n + "code_table[" + std::to_string(i) + "] is not finite");
  if (!w.absmax) {
    check_arg(w.absmax_codes != nullptr, n + "absmax and absmax_codes are both null");
    check_arg(w.nested_table != nullptr, n + "nested_table is null (double-quantized scales)");
    check_arg(w.nested_absmax != nullptr, n + "nested_absmax is null (double-quantized scales)");
    check_arg(w.nested_blocksize >= 1,
              n + "nested_blocksize must be >= 1, got " + std::to_string(w.nested_blocksize));
    check_arg(std::isfinite(w.offset), n + "offset is not finite");
    for (int i = 0; i < 256; ++i)
      check_arg(std::isfinite(w.nested_table[i]),
                n + "nested_table[" + std::to_string(i) + "] is not finite");
    const int64_t nb = nf4_nested_blocks(w);
    for (int64_t i = 0; i < nb; ++i)
      check_arg(std::isfinite(w.nested_absmax[i]),
                n + "nested_absmax[" + std::to_string(i) + "] is not finite");
  }
  std::vector<float> scales(static_cast<size_t>(nf4_blocks(w)));
  nf4_scales(w, scales.data());
  for (size_t b = 0; b < scales.size(); ++b)
    check_arg(std::isfinite(scales[b]),
              n + "the scale (absmax) of block " + std::to_string(b) + " is not finite");
}

void nf4_scales(const lora4j_nf4_weight& w, float* scales) {
  const int64_t blocks = nf4_blocks(w);
  if (w.absmax) {
    std::memcpy(scales, w.absmax, size_t(blocks) * sizeof(float));
    return;
  }
  for (int64_t b = 0; b < blocks; ++b) {
    scales[b] =
        add_rn(mul_rn(w.nested_table[w.absmax_codes[b]], w.nested_absmax[b / w.nested_blocksize]),
               w.offset);
  }
}

void nf4_dequantize_with(const lora4j_nf4_weight& w, const float* scales, float* out) {
  for (int64_t i = 0; i < w.numel; ++i) {
    const uint8_t byte = w.codes[i >> 1];
    const int code = (i & 1) ? (byte & 0x0F) : (byte >> 4);
    const float v = w.code_table[code] * scales[i / w.blocksize];  // one product: no FMA
    out[i] = w.dtype == LORA4J_DTYPE_BF16  ? round_to_bf16(v)
             : w.dtype == LORA4J_DTYPE_F16 ? round_to_f16(v)
                                           : v;
  }
}

void nf4_dequantize(const lora4j_nf4_weight& w, float* out, const std::string& what) {
  nf4_validate(w, what);
  std::vector<float> scales(static_cast<size_t>(nf4_blocks(w)));
  nf4_scales(w, scales.data());
  nf4_dequantize_with(w, scales.data(), out);
}

}  // namespace lora4j
