// Small inline kernels shared by the CPU ops (not part of the op interface).
#pragma once

#include <cstdint>

// The CPU kernels compiled twice, for the baseline and (chosen at run time where the CPU has
// both) for AVX2 + FMA: LORA4J_CPU_AVX2 marks the second kind, which exists on x86-64 with GCC
// or Clang only (LORA4J_CPU_AVX2_KERNELS). v4 / v8: 4 or 8 floats as one vector (GCC vector
// extensions), computed lane by lane with the scalar code's roundings.
#if defined(__x86_64__) && defined(__GNUC__)
#define LORA4J_CPU_AVX2_KERNELS 1
#define LORA4J_CPU_AVX2 __attribute__((target("avx2,fma")))
#else
#define LORA4J_CPU_AVX2
#endif

namespace lora4j {
namespace cpu {

typedef float v4 __attribute__((vector_size(16)));
typedef float v8 __attribute__((vector_size(32)));

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

// The frozen products' tiles (ops_linear.cpp) over rows [lo, hi) on the calling thread, for ops
// that split the work their own way (the LM head's token chunks):
//   y[i, :out] (+)= x_i W^T            (gemm_nt's; W [out, in], y row stride out)
//   y[i, :in]  (+)= a_i W              (gemm_nn's; a row stride out, y row stride in)
void linear_rows(const float* x, const float* w, float* y, int64_t lo, int64_t hi, int64_t in,
                 int64_t out, bool accumulate);
void linear_input_rows(const float* a, const float* w, float* y, int64_t lo, int64_t hi, int64_t in,
                       int64_t out, bool accumulate);

// One token's softmax over V logits (ops_loss_optim.cpp; AVX2 + FMA where linear_uses_avx2()):
// *mx = max z, ez[v] = exp(double(z[v] - *mx)), returns their sum; softmax_scale writes
// p[v] = float(ez[v] / sum) * scale (p may be z).
double softmax_exp(const float* z, int64_t V, double* ez, float* mx);
void softmax_scale(const double* ez, int64_t V, double sum, float scale, float* p);

}  // namespace detail
}  // namespace cpu
}  // namespace lora4j
