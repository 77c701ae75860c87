// The parts of the aggregation rules (aggregate.h) that the host loops (aggregate.cpp) and the
// CUDA kernels (cuda/kernels/aggregate.cu) must share to compute the same thing: the order of
// values, the chunks in which sums over coordinates are taken, Krum's choice from the pairwise
// distances and centered clipping's radius and weights from the distances to the centre. Kept
// in one header so that the two implementations cannot drift apart.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "lora4j.h"

#ifdef __CUDACC__
#define LORA4J_AGG_HD __host__ __device__
#else
#define LORA4J_AGG_HD
#endif

namespace lora4j {
namespace agg {

// Coordinates per chunk: every sum over coordinates is a sum of per-chunk partial sums taken in
// chunk order (fixed, so the result does not depend on threads or blocks).
constexpr int64_t kChunk = int64_t(1) << 15;
// Rounds of centered clipping.
constexpr int kCenteredClipIterations = 3;

// The rule without the LORA4J_AGG_MIX flag, and whether the flag is set.
inline int32_t base_rule(int32_t rule) { return rule & ~int32_t(LORA4J_AGG_MIX); }
inline bool mixes(int32_t rule) { return (rule & LORA4J_AGG_MIX) != 0; }

// The rule's name as the command line writes it ("trimmed-mean"), without the mixing flag.
inline const char* rule_label(int32_t rule) {
  switch (base_rule(rule)) {
    case LORA4J_AGG_MEAN:
      return "mean";
    case LORA4J_AGG_MEDIAN:
      return "median";
    case LORA4J_AGG_TRIMMED_MEAN:
      return "trimmed-mean";
    case LORA4J_AGG_KRUM:
      return "krum";
    case LORA4J_AGG_CENTERED_CLIP:
      return "centered-clip";
    default:
      return "unknown";
  }
}

// The robust rules (all but the mean) first set aside every worker whose gradient has a value
// that is not finite (NaN or +-inf): such a worker is faulty beyond doubt, so it is dropped and
// counted against the rule's tolerance, and the rule runs on the other n - d workers (in their
// order). Returns the f the rule then uses (trimmed mean and Krum: f - d, which keeps their
// conditions 2f < n and n > 2f + 2 true; median and centered clipping have no f: 0), or -1 when
// d is more than the rule tolerates (trimmed mean and Krum: d > f; median and centered
// clipping: 2d >= n), which refuses the step.
inline int32_t f_after_nonfinite(int32_t rule, int32_t f, int32_t n, int32_t d) {
  switch (base_rule(rule)) {
    case LORA4J_AGG_TRIMMED_MEAN:
    case LORA4J_AGG_KRUM:
      return d > f ? -1 : f - d;
    default:
      return 2 * int64_t(d) >= n ? -1 : 0;
  }
}

// The message of a step refused by f_after_nonfinite.
inline std::string nonfinite_refusal(int32_t rule, int32_t f, int32_t n, int32_t d) {
  const bool takes_f =
      base_rule(rule) == LORA4J_AGG_TRIMMED_MEAN || base_rule(rule) == LORA4J_AGG_KRUM;
  return std::to_string(d) + " of " + std::to_string(n) +
         " workers sent gradients that are not finite, more than " + rule_label(rule) +
         (takes_f ? ":" + std::to_string(f) + " tolerates (f = " + std::to_string(f) + ")"
                  : " tolerates (fewer than half)");
}

// Nearest-neighbour mixing (LORA4J_AGG_MIX) runs on the m = n - d finite workers and allows for
// the faulty workers the rule still tolerates among them: trimmed-mean:f f - d (f_left, from
// f_after_nonfinite), median and centered clipping (n - 1) / 2 - d. So each mixture averages
// n - (n - 1) / 2 workers for the median, whatever d.
inline int32_t mixing_f(int32_t rule, int32_t f_left, int32_t n, int32_t d) {
  return base_rule(rule) == LORA4J_AGG_TRIMMED_MEAN ? f_left : (n - 1) / 2 - d;
}

// The neighbours each of m rows is mixed with, from the m x m squared distances d (row-major;
// +inf where non-finite): the row itself and its m - fm - 1 nearest others, nearer first and ties
// to the lower index. Returned as bit masks (bit k of mask[i]: row k is in row i's mixture; m is
// at most LORA4J_MAX_WORKERS = 64). A mixture is the mean of its rows' values summed in index
// order, in double, rounded once to float.
inline std::vector<uint64_t> mix_neighbours(int32_t m, int32_t fm, const double* d) {
  static_assert(LORA4J_MAX_WORKERS <= 64, "a neighbour mask is one 64-bit word");
  std::vector<uint64_t> mask(static_cast<size_t>(m), 0);
  const int32_t keep = m - fm;
  std::vector<int32_t> others;
  for (int32_t i = 0; i < m; ++i) {
    others.clear();
    for (int32_t k = 0; k < m; ++k)
      if (k != i) others.push_back(k);
    const double* di = d + size_t(i) * size_t(m);
    std::stable_sort(others.begin(), others.end(),
                     [di](int32_t a, int32_t b) { return di[a] < di[b]; });
    uint64_t bits = uint64_t(1) << i;
    for (int32_t k = 0; k + 1 < keep; ++k) bits |= uint64_t(1) << others[size_t(k)];
    mask[size_t(i)] = bits;
  }
  return mask;
}

// A total order on floats: NaN above everything (+inf included; NaNs are equivalent), and -0
// below +0. Sorting with it gives one sequence for a given multiset of values whatever the
// algorithm, so the median and trimmed mean are the same bits on the CPU and the GPU.
LORA4J_AGG_HD inline bool order_less(float a, float b) {
  if (a != a) return false;  // a is NaN
  if (b != b) return true;   // b is NaN
  if (a < b) return true;
  if (b < a) return false;
#ifdef __CUDA_ARCH__
  return (__float_as_uint(a) >> 31) > (__float_as_uint(b) >> 31);
#else
  return std::signbit(a) && !std::signbit(b);
#endif
}

// Krum's choice from the n x n squared distances d (row-major, +inf where non-finite): the
// worker whose n - f - 2 smallest distances to others have the smallest sum; ties go to the
// lowest index, a non-finite sum counts as +inf.
inline int32_t krum_pick(int32_t n, int32_t f, const double* d) {
  const int32_t m = n - f - 2;  // neighbours counted
  int32_t best = 0;
  double best_score = std::numeric_limits<double>::infinity();
  bool found = false;
  std::vector<double> row;
  for (int32_t i = 0; i < n; ++i) {
    row.clear();
    for (int32_t k = 0; k < n; ++k)
      if (k != i) row.push_back(d[size_t(i) * size_t(n) + size_t(k)]);
    std::sort(row.begin(), row.end());
    double s = 0;
    for (int32_t k = 0; k < m; ++k) s += row[size_t(k)];
    if (!std::isfinite(s)) s = std::numeric_limits<double>::infinity();
    if (!found || s < best_score) {
      best = i;
      best_score = s;
      found = true;
    }
  }
  return best;
}

// Centered clipping's radius: the median of the workers' distances to the starting point.
// Not positive or not finite: clipping is skipped and the median is the result.
inline double centered_clip_tau(std::vector<double> dist) {
  const size_t n = dist.size();
  std::sort(dist.begin(), dist.end());
  return n % 2 == 1 ? dist[n / 2] : 0.5 * (dist[n / 2 - 1] + dist[n / 2]);
}

// The weight of each worker in one round of centered clipping: 1 within tau of the centre,
// tau / distance beyond it, 0 at a non-finite distance.
inline std::vector<double> centered_clip_weights(const std::vector<double>& dist, double tau) {
  std::vector<double> c(dist.size());
  for (size_t i = 0; i < dist.size(); ++i) {
    const double di = dist[i];
    c[i] = !std::isfinite(di) ? 0.0 : (di <= tau ? 1.0 : tau / di);
  }
  return c;
}

// Sums per-chunk partial sums (part[c * stride + k], chunks in order) into totals[k]; a
// non-finite total becomes +inf, sqrt_total takes the square root (a distance, not a square).
inline void sum_chunks(const double* part, int64_t chunks, int64_t stride, int64_t count,
                       bool sqrt_total, double* totals) {
  for (int64_t k = 0; k < count; ++k) {
    double s = 0;
    for (int64_t c = 0; c < chunks; ++c) s += part[c * stride + k];
    if (!std::isfinite(s))
      s = std::numeric_limits<double>::infinity();
    else if (sqrt_total)
      s = std::sqrt(s);
    totals[k] = s;
  }
}

}  // namespace agg
}  // namespace lora4j
