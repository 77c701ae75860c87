/* Exact scaled dot-product attention (fp32 CPU reference), causal, with grouped-query heads,
 * Mistral's sliding window, key padding and packed segments.
 *
 * For query i of row b and head h (KV head g = h / (H / KH)), over the keys j it sees
 * (j <= i; i - j < W when W > 0; key_mask[b, j] != 0; segment[b, i] == segment[b, j]):
 *   s_j = <q_i, k_j> / sqrt(D),  p_j = exp(s_j - lse_i),  lse_i = log sum_j exp(s_j)
 *   out_i = sum_j p_j v_j
 * The scores of one query are materialized (S floats); nothing is approximated.
 *
 * Backward, with Delta_i = <dout_i, out_i> and dp_ij = <dout_i, v_j>:
 *   ds_ij = p_ij (dp_ij - Delta_i)
 *   dq_i = 1/sqrt(D) sum_j ds_ij k_j
 *   dk_j = 1/sqrt(D) sum_{h in group, i} ds_ij q_i,   dv_j = sum_{h in group, i} p_ij dout_i
 * Two passes so that every output has one writer: dq parallel over queries, dk/dv parallel
 * over keys (p recomputed from lse). A query that sees no key has out = 0, lse = -inf and
 * contributes nothing to the backward.
 */
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/ops.h"
#include "cpu/ops_internal.h"
#include "cpu/thread_pool.h"

namespace lora4j {
namespace cpu {

using detail::axpy;
using detail::dot;

namespace {

struct Visibility {
  const AttentionMask& m;
  int64_t S;
  // First key a query i may see (window), ignoring the other conditions.
  int64_t first_key(int64_t i) const {
    return m.window > 0 ? std::max<int64_t>(0, i - m.window + 1) : 0;
  }
  // Last query that may see key j (window), ignoring the other conditions.
  int64_t last_query(int64_t j) const {
    return m.window > 0 ? std::min<int64_t>(S - 1, j + m.window - 1) : S - 1;
  }
  bool key_ok(int64_t b, int64_t j) const {
    return m.key_mask == nullptr || m.key_mask[b * S + j] != 0;
  }
  bool same_segment(int64_t b, int64_t i, int64_t j) const {
    return m.segments == nullptr || m.segments[b * S + i] == m.segments[b * S + j];
  }
};

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

void attention_forward(ThreadPool* tp, const float* q, const float* k, const float* v, float* out,
                       float* lse, const AttentionMask& m, int64_t B, int64_t S, int64_t H,
                       int64_t KH, int64_t D) {
  const Visibility vis{m, S};
  const int64_t group = H / KH;
  const float scale = float(1.0 / std::sqrt(double(D)));
  // items (b, h, i), i fastest: lse is [B, H, S]
  parallel_for(tp, 0, B * H * S, 8, [&](int64_t lo, int64_t hi) {
    std::vector<float> s(static_cast<size_t>(S));
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t i = item % S, h = (item / S) % H, b = item / (S * H);
      const int64_t g = h / group;
      const float* qi = q + ((b * S + i) * H + h) * D;
      float* oi = out + ((b * S + i) * H + h) * D;
      std::memset(oi, 0, size_t(D) * sizeof(float));
      const int64_t j0 = vis.first_key(i);
      float mx = kNegInf;
      for (int64_t j = j0; j <= i; ++j) {
        if (!vis.key_ok(b, j) || !vis.same_segment(b, i, j)) {
          s[size_t(j)] = kNegInf;
          continue;
        }
        s[size_t(j)] = dot(qi, k + ((b * S + j) * KH + g) * D, D) * scale;
        // a NaN score becomes the max, so the row's output and lse are NaN (std::max would skip
        // it, and a row of NaN scores would pass for one that sees no key: out 0)
        if (!(s[size_t(j)] <= mx)) mx = s[size_t(j)];
      }
      if (mx == kNegInf) {  // sees no key
        lse[item] = kNegInf;
        continue;
      }
      double sum = 0;
      for (int64_t j = j0; j <= i; ++j) {
        if (s[size_t(j)] == kNegInf) continue;
        float p = std::exp(s[size_t(j)] - mx);
        s[size_t(j)] = p;
        sum += p;
      }
      const float inv = float(1.0 / sum);
      for (int64_t j = j0; j <= i; ++j) {
        if (s[size_t(j)] == kNegInf) continue;
        axpy(oi, v + ((b * S + j) * KH + g) * D, s[size_t(j)] * inv, D);
      }
      lse[item] = mx + float(std::log(sum));
    }
  });
}

void attention_backward(ThreadPool* tp, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, float* dq, float* dk,
                        float* dv, const AttentionMask& m, int64_t B, int64_t S, int64_t H,
                        int64_t KH, int64_t D) {
  const Visibility vis{m, S};
  const int64_t group = H / KH;
  const float scale = float(1.0 / std::sqrt(double(D)));
  // Delta[b, h, i] = <dout_i, out_i>
  std::vector<float> delta(size_t(B * H * S));
  parallel_for(tp, 0, B * H * S, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t i = item % S, h = (item / S) % H, b = item / (S * H);
      const int64_t off = ((b * S + i) * H + h) * D;
      delta[size_t(item)] = dot(dout + off, out + off, D);
    }
  });
  // pass 1: dq, parallel over queries
  parallel_for(tp, 0, B * H * S, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t i = item % S, h = (item / S) % H, b = item / (S * H);
      const int64_t g = h / group;
      const int64_t off = ((b * S + i) * H + h) * D;
      float* dqi = dq + off;
      std::memset(dqi, 0, size_t(D) * sizeof(float));
      const float l = lse[item];
      if (l == kNegInf) continue;
      const float* qi = q + off;
      const float* doi = dout + off;
      for (int64_t j = vis.first_key(i); j <= i; ++j) {
        if (!vis.key_ok(b, j) || !vis.same_segment(b, i, j)) continue;
        const int64_t koff = ((b * S + j) * KH + g) * D;
        const float p = std::exp(dot(qi, k + koff, D) * scale - l);
        const float ds = p * (dot(doi, v + koff, D) - delta[size_t(item)]);
        axpy(dqi, k + koff, ds * scale, D);
      }
    }
  });
  // pass 2: dk, dv, parallel over keys (b, g, j)
  parallel_for(tp, 0, B * KH * S, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t j = item % S, g = (item / S) % KH, b = item / (S * KH);
      const int64_t koff = ((b * S + j) * KH + g) * D;
      float* dkj = dk + koff;
      float* dvj = dv + koff;
      std::memset(dkj, 0, size_t(D) * sizeof(float));
      std::memset(dvj, 0, size_t(D) * sizeof(float));
      if (!vis.key_ok(b, j)) continue;
      const float* kj = k + koff;
      const float* vj = v + koff;
      const int64_t i1 = vis.last_query(j);
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t i = j; i <= i1; ++i) {
          if (!vis.same_segment(b, i, j)) continue;
          const int64_t litem = (b * H + h) * S + i;
          const float l = lse[litem];
          if (l == kNegInf) continue;
          const int64_t off = ((b * S + i) * H + h) * D;
          const float p = std::exp(dot(q + off, kj, D) * scale - l);
          const float ds = p * (dot(dout + off, vj, D) - delta[size_t(litem)]);
          axpy(dvj, dout + off, p, D);
          axpy(dkj, q + off, ds * scale, D);
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace lora4j
