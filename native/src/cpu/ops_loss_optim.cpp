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
        float mx = za[0];
        for (int64_t v = 1; v < V; ++v) mx = std::max(mx, za[v]);
        double sum = 0;
        for (int64_t v = 0; v < V; ++v) sum += (ez[size_t(v)] = std::exp(double(za[v] - mx)));
        const double lse = double(mx) + std::log(sum);
        const int32_t y = target[tok[a]];
        loss += lse - double(za[y]);
        if (dh) {  // za becomes grad_scale * (softmax - onehot), softmax = exp(z - max) / sum
          for (int64_t v = 0; v < V; ++v) za[v] = float(ez[size_t(v)] / sum) * grad_scale;
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
