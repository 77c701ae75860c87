// Helpers shared by the native tests: a result printer that counts failures, norm-wise
// relative errors, seeded random fills.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace testutil {

inline int& failures() {
  static int f = 0;
  return f;
}

// The larger of a running worst error w and a new error e, NaN once either is NaN (std::max
// returns w for a NaN e, and `if (!(e <= w)) w = e` lets a later finite e replace a NaN w).
inline double worst_of(double w, double e) {
  return std::isnan(w) || std::isnan(e) ? NAN : std::max(w, e);
}

// Prints one line per comparison: name, measured error, tolerance, verdict.
inline bool check_err(const std::string& name, double err, double tol) {
  bool ok = std::isfinite(err) && err <= tol;
  std::printf("%-72s err %.3e  tol %.1e  %s\n", name.c_str(), err, tol, ok ? "ok" : "FAIL");
  if (!ok) ++failures();
  return ok;
}

inline bool check_true(const std::string& name, bool ok, const std::string& detail = "") {
  std::printf("%-72s %s%s%s\n", name.c_str(), ok ? "ok" : "FAIL", detail.empty() ? "" : "  ",
              detail.c_str());
  if (!ok) ++failures();
  return ok;
}

// ||got - ref|| / ||ref|| (0 when both are zero).
template <class A, class B>
double rel_err(const A& got, const B& ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = double(got[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  if (den == 0) return std::sqrt(num);
  return std::sqrt(num / den);
}

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  float uniform(float lo = -1, float hi = 1) {
    return lo + (hi - lo) * float(std::uniform_real_distribution<double>(0, 1)(g));
  }
  void fill(std::vector<float>& v, float lo = -1, float hi = 1) {
    for (float& x : v) x = uniform(lo, hi);
  }
  int64_t below(int64_t n) { return int64_t(g() % uint64_t(n)); }
};

inline int finish(const char* what) {
  if (failures() == 0) {
    std::printf("%s: all checks passed\n", what);
    return 0;
  }
  std::printf("%s: %d check(s) FAILED\n", what, failures());
  return 1;
}

}  // namespace testutil
