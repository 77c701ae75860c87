// The Java Sampler's definition in C++ (sampler.h); each step names the Java method it follows.
// Built with -ffp-contract=off: the weights' arithmetic must round each product and sum alone.
#include "model/sampler.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "model/engine.h"

namespace lora4j {
namespace {

constexpr int kWeightBits = 40;
constexpr int kBucketsPerUnit = 16;
constexpr double kLastDistance = 27.8;
constexpr int kBuckets = 446;  // ceil(27.8 * 16) + 1, as the Java class computes it
constexpr double kCandidateDistance = 27.9;
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kRound = 6755399441055744.0;  // 0x1.8p52
constexpr float kInf = std::numeric_limits<float>::infinity();

}  // namespace

// Sampler.expScaled
double sample_exp_scaled(double d) {
  double kd = (d * kLog2e + kRound) - kRound;
  double r = (d - kd * kLn2Hi) - kd * kLn2Lo;
  double r2 = r * r, r4 = r2 * r2;
  double p = (1 + r) + r2 * (1.0 / 2 + r * (1.0 / 6)) +
             r4 * ((1.0 / 24 + r * (1.0 / 120)) + r2 * (1.0 / 720 + r * (1.0 / 5040)) +
                   r4 * (1.0 / 40320 + r * (1.0 / 362880)));
  int e = kWeightBits + int(kd);
  uint64_t bits = uint64_t(e + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

namespace {

// Sampler.weightAt / weight
int64_t weight_at(double d) { return d < -kLastDistance ? 0 : int64_t(sample_exp_scaled(d)); }
int64_t weight(float x, float max, double t) {
  if (max == kInf) return x == kInf ? 1 : 0;
  if (!(x > -kInf)) return 0;
  return weight_at((double(x) - max) / t);
}

// Sampler.orderKey: ascending keys = descending values (NaN as -inf), equal values by index
int64_t order_key(float x, int32_t i) {
  if (x != x) x = -kInf;
  int32_t b;
  std::memcpy(&b, &x, sizeof b);
  int32_t ascending = b ^ ((b >> 31) & 0x7fffffff);
  return int64_t(uint64_t(uint32_t(~ascending)) << 32 | uint32_t(i));
}
// the index order_key carries in its low half
int32_t key_index(int64_t key) { return int32_t(uint32_t(uint64_t(key))); }

// Sampler.need: ceil(p z) in [1, z]
int64_t need_of(int64_t z, double p) {
  return std::max<int64_t>(1, std::min<int64_t>(z, int64_t(std::ceil(p * double(z)))));
}

// A thread's buffers for its draws, kept from one draw to the next: at 32,768 tokens a draw's
// vectors come to ~0.7 MB, which allocated and zeroed anew each draw cost as much as the draw's
// arithmetic.
struct Scratch {
  std::vector<int64_t> keys, w;
  std::vector<int32_t> idx, top, by_index;
  std::vector<int16_t> bucket;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// Sampler.topOrder: the k smallest keys in ascending order (keys are distinct, so any selection
// gives the heap's result), their token indices into top
void top_order(const float* x, int32_t n, int32_t k, std::vector<int32_t>& top) {
  std::vector<int64_t>& keys = scratch().keys;
  keys.resize(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) keys[size_t(i)] = order_key(x[i], i);
  std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end());
  std::sort(keys.begin(), keys.begin() + k);
  top.resize(static_cast<size_t>(k));
  for (int32_t j = 0; j < k; ++j) top[size_t(j)] = key_index(keys[size_t(j)]);
}

// Sampler.sampleTopK
int32_t sample_top_k(const float* logits, const std::vector<int32_t>& top, float max, double t,
                     double top_p, int64_t& state) {
  const int32_t k = int32_t(top.size());
  std::vector<int64_t>& w = scratch().w;
  w.resize(static_cast<size_t>(k));
  int64_t z = 0;
  for (int32_t j = 0; j < k; ++j) z += w[size_t(j)] = weight(logits[top[size_t(j)]], max, t);
  int32_t cut = k;
  if (top_p < 1) {
    int64_t need = need_of(z, top_p), cum = 0;
    for (int32_t j = 0; j < k; ++j) {
      cum += w[size_t(j)];
      if (cum >= need) {
        cut = j + 1;
        break;
      }
    }
  }
  std::vector<int32_t>& by_index = scratch().by_index;  // positions j of the nucleus, by index
  by_index.resize(static_cast<size_t>(cut));
  for (int32_t j = 0; j < cut; ++j) by_index[size_t(j)] = j;
  std::sort(by_index.begin(), by_index.end(),
            [&](int32_t a, int32_t b) { return top[size_t(a)] < top[size_t(b)]; });
  int64_t total = 0;
  for (int32_t j = 0; j < cut; ++j) total += w[size_t(j)];
  int64_t u = splitmix_below(state, total);
  for (int32_t at : by_index) {
    u -= w[size_t(at)];
    if (u < 0) return top[size_t(at)];
  }
  fail(LORA4J_EINTERNAL, "sample: the draw passed the nucleus' total weight");
}

// Sampler.sampleAll
int32_t sample_all(const float* logits, int32_t v, float max, double t, double top_p,
                   int64_t& state) {
  Scratch& sc = scratch();
  sc.idx.resize(static_cast<size_t>(v));
  int32_t* const idx = sc.idx.data();
  int32_t n = 0;
  if (max == kInf) {
    for (int32_t i = 0; i < v; ++i) {
      idx[size_t(n)] = i;
      n += logits[i] == kInf ? 1 : 0;
    }
  } else {
    const double lo = std::max(max - kCandidateDistance * t, -double(FLT_MAX));
    for (int32_t i = 0; i < v; ++i) {
      idx[size_t(n)] = i;
      n += double(logits[i]) >= lo ? 1 : 0;
    }
  }
  sc.w.resize(static_cast<size_t>(n));
  sc.bucket.resize(static_cast<size_t>(n));
  int64_t* const w = sc.w.data();
  int16_t* const bucket = sc.bucket.data();
  int64_t mass[kBuckets] = {};
  const bool inf = max == kInf, nucleus = top_p < 1;
  int64_t z = 0;
  for (int32_t j = 0; j < n; ++j) {
    int64_t wj;
    int b;
    if (inf) {
      wj = 1;
      b = 0;
    } else {
      double d = (double(logits[idx[size_t(j)]]) - max) / t;
      wj = weight_at(d);
      double q = -d * kBucketsPerUnit;
      b = q >= kBuckets - 1 ? kBuckets - 1 : int(q);
    }
    w[size_t(j)] = wj;
    z += wj;
    if (nucleus) {
      bucket[size_t(j)] = int16_t(b);
      mass[size_t(b)] += wj;
    }
  }
  if (!nucleus) {
    int64_t u = splitmix_below(state, z);
    for (int32_t j = 0; j < n; ++j) {
      u -= w[size_t(j)];
      if (u < 0) return idx[size_t(j)];
    }
    fail(LORA4J_EINTERNAL, "sample: the draw passed the total weight");
  }
  const int64_t need = need_of(z, top_p);
  int64_t cum = 0;
  int last = 0;
  for (; last < kBuckets - 1 && cum + mass[size_t(last)] < need; ++last) cum += mass[size_t(last)];
  std::vector<int64_t>& keys = sc.keys;
  keys.clear();
  for (int32_t j = 0; j < n; ++j)
    if (bucket[size_t(j)] == last) keys.push_back(order_key(logits[idx[size_t(j)]], 0) | j);
  // The shortest prefix of the bucket's keys in ascending order whose weight reaches need: where
  // Sampler sorts the bucket, halves by selection (the keys are distinct, so the first h of the
  // order are the same set however they are found) until few are left, then sorts those: a
  // random model's logits put most of the vocabulary in one bucket.
  auto take = [&](size_t from, size_t to) {  // keys [from, to) into the nucleus
    for (size_t q = from; q < to; ++q) {
      const int32_t j = key_index(keys[q]);
      cum += w[size_t(j)];
      bucket[size_t(j)] = -1;
    }
  };
  size_t lo = 0, hi = keys.size();
  while (hi - lo > 64) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(keys.begin() + lo, keys.begin() + mid, keys.begin() + hi);
    int64_t below = 0;  // the weight of the first mid - lo keys of [lo, hi) in the order
    for (size_t q = lo; q < mid; ++q) below += w[size_t(key_index(keys[q]))];
    if (cum + below >= need) {
      hi = mid;  // the boundary is among them
    } else {
      take(lo, mid);
      lo = mid;
    }
  }
  std::sort(keys.begin() + lo, keys.begin() + hi);
  for (size_t q = lo; q < hi && cum < need; ++q) take(q, q + 1);
  int64_t u = splitmix_below(state, cum);
  for (int32_t j = 0; j < n; ++j) {
    u -= bucket[size_t(j)] < last ? w[size_t(j)] : 0;
    if (u < 0) return idx[size_t(j)];
  }
  fail(LORA4J_EINTERNAL, "sample: the draw passed the nucleus' total weight");
}

}  // namespace

uint64_t splitmix_next(int64_t& state) {
  uint64_t z = uint64_t(state) + 0x9e3779b97f4a7c15ull;
  state = int64_t(z);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int64_t splitmix_below(int64_t& state, int64_t bound) {
  const uint64_t m = uint64_t(bound) - 1;
  uint64_t r = splitmix_next(state);
  if ((uint64_t(bound) & m) == 0) return int64_t(r & m);
  // Java: for (u = r >>> 1; u + m - (r = u % bound) < 0; u = next() >>> 1);
  for (uint64_t u = r >> 1;; u = splitmix_next(state) >> 1) {
    r = u % uint64_t(bound);
    if (int64_t(u + m - r) >= 0) return int64_t(r);
  }
}

int32_t sample_token(const float* logits, int32_t n, const SampleParams& p, int64_t& state) {
  const double t = p.temperature;
  const int32_t k = p.top_k > 0 ? std::min(p.top_k, n) : n;
  if (k < n) {
    std::vector<int32_t>& top = scratch().top;
    top_order(logits, n, k, top);
    const float max = logits[top[0]];
    if (!(max > -kInf)) return greedy_argmax(logits, n);
    return sample_top_k(logits, top, max, t, p.top_p, state);
  }
  float max = -kInf;
  for (int32_t i = 0; i < n; ++i)
    if (logits[i] > max) max = logits[i];
  if (max == -kInf) return greedy_argmax(logits, n);
  return sample_all(logits, n, max, t, p.top_p, state);
}

}  // namespace lora4j
