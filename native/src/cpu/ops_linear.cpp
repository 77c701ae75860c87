// Dense and LoRA linear layers (fp32 CPU reference).
//
//   linear:  y[n, out] = x[n, in] W[out, in]^T          (torch.nn.functional.linear, no bias)
//   LoRA:    y = x W^T + s * (x A^T) B^T,  A [r, in], B [out, r], s = alpha / r (or rsLoRA)
//
// Backward of y = x W^T:  dx = dy W,  dW = dy^T x. For LoRA with u = x A^T [n, r]:
//   dB = s * dy^T u,   t = dy B,   dA = s * t^T x,   dx = dy W + s * t A.
//
// Three loop shapes cover everything, each parallel over a dimension whose outputs are
// disjoint so no two threads ever write the same float:
//   gemm_nt: y[i, o] = alpha * <x_i, w_o>       parallel over rows i; contiguous dot products
//   gemm_nn: y[i, :] += alpha * sum_o a[i, o] w_o   parallel over rows i; contiguous axpys
//   gemm_tn: y[o, :] += alpha * sum_i a[i, o] x_i   parallel over rows o; contiguous axpys
// Every output element is computed in the same order whatever the number of threads, so the
// results are bitwise reproducible.
#include <algorithm>
#include <cstring>

#include "cpu/ops.h"
#include "cpu/ops_internal.h"
#include "cpu/thread_pool.h"

namespace lora4j {
namespace cpu {

using detail::axpy;
using detail::dot;

namespace {

constexpr int64_t kRowGrain = 16;   // rows per task
constexpr int64_t kColBlock = 128;  // outputs per block (a block of W stays in cache)

// y[n, out] = (accumulate ? y : 0) + alpha * x[n, in] w[out, in]^T
void gemm_nt(ThreadPool* tp, const float* x, const float* w, float* y, int64_t n, int64_t in,
             int64_t out, float alpha, bool accumulate) {
  parallel_for(tp, 0, n, kRowGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t ob = 0; ob < out; ob += kColBlock) {
      int64_t oe = std::min(out, ob + kColBlock);
      int64_t i = lo;
      for (; i + 4 <= hi; i += 4) {  // four rows share each row of w
        const float* x0 = x + i * in;
        const float* x1 = x0 + in;
        const float* x2 = x1 + in;
        const float* x3 = x2 + in;
        for (int64_t o = ob; o < oe; ++o) {
          const float* wo = w + o * in;
          float s0 = alpha * dot(x0, wo, in), s1 = alpha * dot(x1, wo, in);
          float s2 = alpha * dot(x2, wo, in), s3 = alpha * dot(x3, wo, in);
          float* yo = y + i * out + o;
          if (accumulate) {
            yo[0] += s0;
            yo[out] += s1;
            yo[2 * out] += s2;
            yo[3 * out] += s3;
          } else {
            yo[0] = s0;
            yo[out] = s1;
            yo[2 * out] = s2;
            yo[3 * out] = s3;
          }
        }
      }
      for (; i < hi; ++i) {
        const float* xi = x + i * in;
        for (int64_t o = ob; o < oe; ++o) {
          float s = alpha * dot(xi, w + o * in, in);
          if (accumulate)
            y[i * out + o] += s;
          else
            y[i * out + o] = s;
        }
      }
    }
  });
}

// y[n, in] = (accumulate ? y : 0) + alpha * a[n, out] w[out, in]
void gemm_nn(ThreadPool* tp, const float* a, const float* w, float* y, int64_t n, int64_t in,
             int64_t out, float alpha, bool accumulate) {
  parallel_for(tp, 0, n, kRowGrain, [&](int64_t lo, int64_t hi) {
    if (!accumulate) std::memset(y + lo * in, 0, size_t((hi - lo) * in) * sizeof(float));
    for (int64_t o = 0; o < out; ++o) {
      const float* wo = w + o * in;
      for (int64_t i = lo; i < hi; ++i) {
        float c = a[i * out + o];
        if (c != 0.0f) axpy(y + i * in, wo, alpha * c, in);
      }
    }
  });
}

// y[out, in] += alpha * a[n, out]^T x[n, in]
void gemm_tn(ThreadPool* tp, const float* a, const float* x, float* y, int64_t n, int64_t in,
             int64_t out, float alpha) {
  parallel_for(tp, 0, out, kRowGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = 0; i < n; ++i) {
      const float* xi = x + i * in;
      const float* ai = a + i * out;
      for (int64_t o = lo; o < hi; ++o) {
        float c = ai[o];
        if (c != 0.0f) axpy(y + o * in, xi, alpha * c, in);
      }
    }
  });
}

}  // namespace

void linear_forward(ThreadPool* tp, const float* x, const float* w, float* y, int64_t n, int64_t in,
                    int64_t out, bool accumulate) {
  gemm_nt(tp, x, w, y, n, in, out, 1.0f, accumulate);
}

void linear_backward_input(ThreadPool* tp, const float* dy, const float* w, float* dx, int64_t n,
                           int64_t in, int64_t out, bool accumulate) {
  gemm_nn(tp, dy, w, dx, n, in, out, 1.0f, accumulate);
}

void linear_backward_weight(ThreadPool* tp, const float* dy, const float* x, float* dw, int64_t n,
                            int64_t in, int64_t out) {
  gemm_tn(tp, dy, x, dw, n, in, out, 1.0f);
}

void lora_linear_forward(ThreadPool* tp, const float* x, const float* w, const float* a,
                         const float* b, float scale, float* xa, float* y, int64_t n, int64_t in,
                         int64_t out, int64_t r) {
  gemm_nt(tp, x, w, y, n, in, out, 1.0f, false);
  if (a == nullptr || b == nullptr) return;
  gemm_nt(tp, x, a, xa, n, in, r, 1.0f, false);   // u = x A^T
  gemm_nt(tp, xa, b, y, n, r, out, scale, true);  // y += s * u B^T
}

void lora_linear_backward(ThreadPool* tp, const float* dy, const float* x, const float* w,
                          const float* a, const float* b, const float* xa, float scale, float* dx,
                          float* da, float* db, float* tmp, int64_t n, int64_t in, int64_t out,
                          int64_t r) {
  gemm_nn(tp, dy, w, dx, n, in, out, 1.0f, false);  // dx = dy W
  if (a == nullptr || b == nullptr) return;
  if (db) gemm_tn(tp, dy, xa, db, n, r, out, scale);  // dB += s * dy^T u
  gemm_nn(tp, dy, b, tmp, n, r, out, 1.0f, false);    // t = dy B   [n, r]; du = s t
  gemm_nn(tp, tmp, a, dx, n, in, r, scale, true);     // dx += s t A
  if (da) gemm_tn(tp, tmp, x, da, n, in, r, scale);   // dA += s t^T x
}

}  // namespace cpu
}  // namespace lora4j
