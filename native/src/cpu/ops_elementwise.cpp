// RMSNorm, RoPE and SwiGLU (fp32 CPU reference), forward and backward side by side.
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace lora4j {
namespace cpu {

/* ---- RMSNorm ----------------------------------------------------------------------------------
 * y = x * r * w,  r = 1 / sqrt(mean(x^2) + eps), per row of d features (Mistral's RMSNorm:
 * the mean of squares is taken in higher precision, here double; the product is x * r first,
 * then times the weight, as Hugging Face does).
 * Backward (w frozen): with g = w * dy,
 *   dx = r * g - x * r^3 / d * sum_k(g_k x_k)
 */
void rmsnorm_forward(ThreadPool* tp, const float* x, const float* w, float* y, float* rstd,
                     int64_t n, int64_t d, float eps) {
  parallel_for(tp, 0, n, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const float* xi = x + i * d;
      double ss = 0;
      for (int64_t k = 0; k < d; ++k) ss += double(xi[k]) * xi[k];
      float r = float(1.0 / std::sqrt(ss / double(d) + double(eps)));
      rstd[i] = r;
      float* yi = y + i * d;
      for (int64_t k = 0; k < d; ++k) yi[k] = (xi[k] * r) * w[k];
    }
  });
}

void rmsnorm_backward(ThreadPool* tp, const float* dy, const float* x, const float* w,
                      const float* rstd, float* dx, int64_t n, int64_t d, bool accumulate) {
  parallel_for(tp, 0, n, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const float* xi = x + i * d;
      const float* dyi = dy + i * d;
      float* dxi = dx + i * d;
      double dotp = 0;
      for (int64_t k = 0; k < d; ++k) dotp += double(w[k]) * dyi[k] * xi[k];
      double r = rstd[i];
      float c = float(r * r * r * dotp / double(d));
      float rf = rstd[i];
      for (int64_t k = 0; k < d; ++k) {
        float g = rf * (w[k] * dyi[k]) - c * xi[k];
        dxi[k] = accumulate ? dxi[k] + g : g;
      }
    }
  });
}

/* ---- RoPE --------------------------------------------------------------------------------------
 * Hugging Face rotate_half: for each head and i < D/2, with a = angle(pos, i):
 *   y[i]       = x[i] cos a - x[i + D/2] sin a
 *   y[i + D/2] = x[i + D/2] cos a + x[i] sin a
 * The angles are computed exactly as transformers does, in fp32:
 *   inv_freq[i] = 1 / theta^(float(2i) / D)   (fp32 power of fp32 operands, then fp32 1/x)
 *   a = float(pos) * inv_freq[i]              (one fp32 product)
 * and cos/sin of that fp32 angle rounded to fp32. This matters for rope_theta 1e6, head_dim
 * 128, where an fp64 inv_freq differs visibly from the reference.
 * Backward: the rotation is orthogonal, so dx = R(-a) dy (same formulas with sin negated).
 */
namespace {

std::vector<float> rope_inv_freq(int64_t D, double theta) {
  std::vector<float> inv(size_t(D / 2));
  float base = float(theta);
  for (int64_t i = 0; i < D / 2; ++i) {
    float e = float(2 * i) / float(D);
    float p = float(std::pow(double(base), double(e)));  // correctly rounded fp32 power
    inv[size_t(i)] = 1.0f / p;
  }
  return inv;
}

void rope_apply(ThreadPool* tp, float* x, const int32_t* positions, int64_t n, int64_t heads,
                int64_t D, double theta, float sign) {
  std::vector<float> inv = rope_inv_freq(D, theta);
  int64_t half = D / 2;
  parallel_for(tp, 0, n, 8, [&](int64_t lo, int64_t hi) {
    std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
    for (int64_t t = lo; t < hi; ++t) {
      float pos = float(positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        float a = pos * inv[size_t(i)];
        c[size_t(i)] = float(std::cos(double(a)));
        s[size_t(i)] = sign * float(std::sin(double(a)));
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* xh = x + (t * heads + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          float x1 = xh[i], x2 = xh[i + half];
          xh[i] = x1 * c[size_t(i)] - x2 * s[size_t(i)];
          xh[i + half] = x2 * c[size_t(i)] + x1 * s[size_t(i)];
        }
      }
    }
  });
}

}  // namespace

void rope_forward(ThreadPool* tp, float* x, const int32_t* positions, int64_t n, int64_t heads,
                  int64_t D, double theta) {
  rope_apply(tp, x, positions, n, heads, D, theta, 1.0f);
}

void rope_backward(ThreadPool* tp, float* dx, const int32_t* positions, int64_t n, int64_t heads,
                   int64_t D, double theta) {
  rope_apply(tp, dx, positions, n, heads, D, theta, -1.0f);
}

/* ---- SwiGLU ------------------------------------------------------------------------------------
 * h = silu(g) * u, silu(g) = g * sigmoid(g).
 * dg = dh * u * sigmoid(g) * (1 + g * (1 - sigmoid(g))),  du = dh * silu(g).
 */
void swiglu_forward(ThreadPool* tp, const float* gate, const float* up, float* h, int64_t n) {
  parallel_for(tp, 0, n, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      float g = gate[i];
      float sig = 1.0f / (1.0f + std::exp(-g));
      h[i] = (g * sig) * up[i];
    }
  });
}

void swiglu_backward(ThreadPool* tp, const float* dh, const float* gate, const float* up,
                     float* dgate, float* dup, int64_t n) {
  parallel_for(tp, 0, n, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      float g = gate[i];
      float sig = 1.0f / (1.0f + std::exp(-g));
      float silu = g * sig;
      dgate[i] = dh[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
      dup[i] = dh[i] * silu;
    }
  });
}

}  // namespace cpu
}  // namespace lora4j
