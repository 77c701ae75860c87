// Small inline kernels shared by the CPU ops (not part of the op interface).
#pragma once

#include <cstdint>

namespace lora4j {
namespace cpu {
namespace detail {

// sum_k a[k] * b[k] in fp32 with 8 independent partial sums (vectorizes without -ffast-math
// and keeps the rounding error of long dot products small).
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[k + j] * b[k + j];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

// y[k] += c * x[k]
inline void axpy(float* y, const float* x, float c, int64_t n) {
  for (int64_t k = 0; k < n; ++k) y[k] += c * x[k];
}

}  // namespace detail
}  // namespace cpu
}  // namespace lora4j
