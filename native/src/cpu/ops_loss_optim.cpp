// The LM head fused with masked cross-entropy, and AdamW (fp32 CPU reference).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu/ops.h"
#include "cpu/ops_internal.h"
#include "cpu/thread_pool.h"

namespace lora4j {
namespace cpu {

/* ---- one token's softmax over the vocabulary (the LM head's) ------------------------------------
 * mx = max z; ez[v] = exp(double(z[v] - mx)) and their sum; p[v] = float(ez[v] / sum) * scale.
 * The baseline computes them one by one with libm's exp (the former loop's bits). Where the CPU
 * has AVX2 and FMA (and linear_uses_avx2()), 8 floats / 4 doubles at a time, with exp as below:
 * x = n ln2 + r (n = round(x / ln2), ln2 split in two so n ln2 is exact), exp(r) by its Taylor
 * series to degree 13 (|r| <= ln2 / 2: truncation under 2e-16 relative), times 2^n built in the
 * exponent bits. x <= 0 here; below -708 (where exp leaves the normal doubles: libm returns
 * subnormals under 3e-308, nothing a float softmax or a sum of at least 1 can hold) it returns 0.
 * The maximum and the scaled probabilities are exact operations, so only exp's last bits and the
 * order of the sum (4 lanes) differ from the baseline.
 */
namespace {

float row_max_base(const float* z, int64_t V) {
  float mx = z[0];
  for (int64_t v = 1; v < V; ++v) mx = std::max(mx, z[v]);
  return mx;
}
double row_exp_base(const float* z, int64_t V, float mx, double* ez) {
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += (ez[v] = std::exp(double(z[v] - mx)));
  return sum;
}
void row_softmax_base(const double* ez, int64_t V, double sum, float scale, float* p) {
  for (int64_t v = 0; v < V; ++v) p[v] = float(ez[v] / sum) * scale;
}

#ifdef LORA4J_CPU_AVX2_KERNELS
typedef double d4 __attribute__((vector_size(32)));
typedef long long i4 __attribute__((vector_size(32)));

LORA4J_CPU_AVX2 float row_max_avx2(const float* z, int64_t V) {
  if (V < 8) return row_max_base(z, V);
  v8 m;
  std::memcpy(&m, z, sizeof m);
  int64_t v = 8;
  for (; v + 8 <= V; v += 8) {
    v8 x;
    std::memcpy(&x, z + v, sizeof x);
    m = m > x ? m : x;
  }
  float mx = m[0];
  for (int j = 1; j < 8; ++j) mx = std::max(mx, m[j]);
  for (; v < V; ++v) mx = std::max(mx, z[v]);
  return mx;
}

LORA4J_CPU_AVX2 inline d4 exp_d4(d4 x) {
  const d4 lim = {-708.0, -708.0, -708.0, -708.0};
  const d4 magic = {6755399441055744.0, 6755399441055744.0, 6755399441055744.0,
                    6755399441055744.0};  // 1.5 * 2^52: adding it rounds to an integer
  const d4 xc = x < lim ? lim : x;
  const d4 t = xc * 1.4426950408889634 + magic;
  const d4 n = t - magic;
  d4 r = xc - n * 0.6931471803691238;                   // ln 2's high part: n times it is exact
  r = r - n * 1.9082149292705877e-10;                   // and its low part
  d4 q = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;  // 1/13!, 1/12!
  q = q * r + 1.0 / 39916800.0;
  q = q * r + 1.0 / 3628800.0;
  q = q * r + 1.0 / 362880.0;
  q = q * r + 1.0 / 40320.0;
  q = q * r + 1.0 / 5040.0;
  q = q * r + 1.0 / 720.0;
  q = q * r + 1.0 / 120.0;
  q = q * r + 1.0 / 24.0;
  q = q * r + 1.0 / 6.0;
  q = q * r + 0.5;
  q = q * r + 1.0;
  q = q * r + 1.0;
  i4 ti, mi;  // t's and magic's bits: their difference is n
  std::memcpy(&ti, &t, sizeof ti);
  std::memcpy(&mi, &magic, sizeof mi);
  const i4 e = ((ti - mi) + 1023) << 52;  // the bits of 2^n
  d4 scale;
  std::memcpy(&scale, &e, sizeof scale);
  const d4 y = q * scale;
  const d4 zero = {0, 0, 0, 0};
  return x < lim ? zero : y;
}

LORA4J_CPU_AVX2 double row_exp_avx2(const float* z, int64_t V, float mx, double* ez) {
  d4 acc = {0, 0, 0, 0};
  int64_t v = 0;
  for (; v + 4 <= V; v += 4) {
    v4 zf;
    std::memcpy(&zf, z + v, sizeof zf);
    const d4 e = exp_d4(__builtin_convertvector(zf - mx, d4));
    std::memcpy(ez + v, &e, sizeof e);
    acc += e;
  }
  double sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  for (; v < V; ++v) {
    const d4 x = {double(z[v] - mx), 0, 0, 0};
    sum += (ez[v] = exp_d4(x)[0]);
  }
  return sum;
}

LORA4J_CPU_AVX2 void row_softmax_avx2(const double* ez, int64_t V, double sum, float scale,
                                      float* p) {
  int64_t v = 0;
  for (; v + 4 <= V; v += 4) {
    d4 e;
    std::memcpy(&e, ez + v, sizeof e);
    const v4 q = __builtin_convertvector(e / sum, v4) * scale;
    std::memcpy(p + v, &q, sizeof q);
  }
  for (; v < V; ++v) p[v] = float(ez[v] / sum) * scale;
}
#endif

}  // namespace

namespace detail {
double softmax_exp(const float* z, int64_t V, double* ez, float* mx) {
#ifdef LORA4J_CPU_AVX2_KERNELS
  if (linear_uses_avx2()) {
    *mx = row_max_avx2(z, V);
    return row_exp_avx2(z, V, *mx, ez);
  }
#endif
  *mx = row_max_base(z, V);
  return row_exp_base(z, V, *mx, ez);
}
void softmax_scale(const double* ez, int64_t V, double sum, float scale, float* p) {
#ifdef LORA4J_CPU_AVX2_KERNELS
  if (linear_uses_avx2()) return row_softmax_avx2(ez, V, sum, scale, p);
#endif
  row_softmax_base(ez, V, sum, scale, p);
}
}  // namespace detail

/* ---- LM head + cross-entropy -------------------------------------------------------------------
 * For every token t whose target is not -100:
 *   z = h_t W^T  (V logits),  loss_t = logsumexp(z) - z[target_t]
 *   d loss_t / d z = softmax(z) - onehot(target_t),   d loss_t / d h_t = (softmax(z) - onehot) W
 * Tokens are processed kTok at a time (the logits of one chunk, kTok x V floats, are all that
 * is ever materialized), each block of W being reused by the counted tokens of the chunk, whose
 * rows are gathered for the frozen products' tiles (detail::linear_rows for the logits, with
 * detail::dot's order of sums; detail::linear_input_rows for dh, summed over v in order).
 * Uncounted tokens are skipped entirely (their dh rows are zero). The loss of each chunk is kept
 * apart and the chunks are summed in order, so the result does not depend on the thread count.
 */
void lm_head_cross_entropy(ThreadPool* tp, const float* h, const float* w, const int32_t* target,
                           int64_t n, int64_t d, int64_t V, float grad_scale, double* loss_sum,
                           int64_t* count, float* dh) {
  constexpr int64_t kTok = 48;
  const int64_t chunks = (n + kTok - 1) / kTok;
  std::vector<double> chunk_loss(size_t(chunks), 0.0);
  std::vector<int64_t> chunk_count(size_t(chunks), 0);
  parallel_for(tp, 0, chunks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> z(size_t(kTok * V)), hb(size_t(kTok * d)), db(dh ? size_t(kTok * d) : 0);
    std::vector<double> ez(static_cast<size_t>(V));  // one token's exp(z - max)
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t t0 = c * kTok, t1 = std::min(n, t0 + kTok);
      if (dh) std::memset(dh + t0 * d, 0, size_t((t1 - t0) * d) * sizeof(float));
      int64_t tok[kTok];
      int64_t m = 0;
      for (int64_t t = t0; t < t1; ++t)
        if (target[t] != -100) tok[m++] = t;
      if (m == 0) continue;
      for (int64_t a = 0; a < m; ++a)
        std::memcpy(hb.data() + a * d, h + tok[a] * d, size_t(d) * sizeof(float));
      detail::linear_rows(hb.data(), w, z.data(), 0, m, d, V, false);
      double loss = 0;
      for (int64_t a = 0; a < m; ++a) {
        float* za = z.data() + a * V;
        float mx;
        const double sum = detail::softmax_exp(za, V, ez.data(), &mx);
        const double lse = double(mx) + std::log(sum);
        const int32_t y = target[tok[a]];
        loss += lse - double(za[y]);
        if (dh) {  // za becomes grad_scale * (softmax - onehot), softmax = exp(z - max) / sum
          detail::softmax_scale(ez.data(), V, sum, grad_scale, za);
          za[y] -= grad_scale;
        }
      }
      chunk_loss[size_t(c)] = loss;
      chunk_count[size_t(c)] = m;
      if (dh) {
        detail::linear_input_rows(z.data(), w, db.data(), 0, m, d, V, false);
        for (int64_t a = 0; a < m; ++a)
          std::memcpy(dh + tok[a] * d, db.data() + a * d, size_t(d) * sizeof(float));
      }
    }
  });
  for (int64_t c = 0; c < chunks; ++c) {
    *loss_sum += chunk_loss[size_t(c)];
    *count += chunk_count[size_t(c)];
  }
}

/* ---- global gradient norm ----------------------------------------------------------------------
 * sum of g^2 in double, over fixed chunks combined in order (thread-count independent).
 */
double sum_squares(ThreadPool* tp, const float* g, int64_t n) {
  constexpr int64_t kChunk = 8192;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(size_t(chunks), 0.0);
  parallel_for(tp, 0, chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double s = 0;
      for (int64_t i = c * kChunk, e = std::min(n, (c + 1) * kChunk); i < e; ++i)
        s += double(g[i]) * g[i];
      part[size_t(c)] = s;
    }
  });
  double total = 0;
  for (double s : part) total += s;
  return total;
}

/* ---- AdamW --------------------------------------------------------------------------------------
 * torch.optim.AdamW (single-tensor path), step t >= 1, per element, in double:
 *   g  = grad_mult * grad                     (grad_mult: the clipping factor)
 *   p  = p * (1 - lr * wd)                    (decoupled weight decay)
 *   m  = m + (1 - b1) * (g - m)               (torch's lerp)
 *   v  = b2 * v + (1 - b2) * g^2
 *   p  = p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * The fp32 hyperparameters are widened to the double of their shortest decimal form (0.999f
 * becomes 0.999, not 0.99900001287), which is the number the user wrote in Java or Python;
 * otherwise 1 - beta2 would be off by 1.3e-5 relative against torch's double arithmetic.
 */
namespace {
double decimal_double(float f) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf - 1, f);  // shortest round-trip form
  if (res.ec != std::errc()) return double(f);
  *res.ptr = 0;
  return std::strtod(buf, nullptr);
}
}  // namespace

void adamw_update(ThreadPool* tp, float* p, const float* g, float* m, float* v, int64_t n,
                  float grad_mult, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int64_t step) {
  const double b1 = decimal_double(beta1), b2 = decimal_double(beta2);
  const double dlr = decimal_double(lr), wd = decimal_double(weight_decay);
  const double deps = decimal_double(eps);
  const double bc1 = 1.0 - std::pow(b1, double(step));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, double(step)));
  const double step_size = dlr / bc1;
  const double decay = 1.0 - dlr * wd;
  const double mult = grad_mult;
  parallel_for(tp, 0, n, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const double gi = double(g[i]) * mult;
      double pi = double(p[i]) * decay;
      double mi = double(m[i]);
      mi = mi + (1.0 - b1) * (gi - mi);
      const double vi = b2 * double(v[i]) + (1.0 - b2) * gi * gi;
      const double denom = std::sqrt(vi) / bc2_sqrt + deps;
      pi -= step_size * mi / denom;
      p[i] = float(pi);
      m[i] = float(mi);
      v[i] = float(vi);
    }
  });
}

}  // namespace cpu
}  // namespace lora4j
