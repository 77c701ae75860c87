// Paired A/B timing of two engines in one process (bench_cuda with LORA4J_BENCH_AB): engine a
// is made as the environment says, engine b with a few variables set (the engine's switches,
// such as LORA4J_DOWN_DX_FOLD=0), both from the same weights; their training steps alternate
// a b b a a b ..., so both see the same clock and power state, which moves a build's step time by
// 2-5 ms between calls and by ~1 ms within one. Each pair gives one ratio b / a; the median of
// the ratios, their middle half and a sign test of how many pairs b was lower in tell a change of
// a few tenths of a percent from noise, where separate runs cannot. Plain C++ (no CUDA), so the
// CPU tests cover it (test_bench_paired).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace lora4j::bench {

struct Assignment {
  std::string name, value;
};

// "NAME=VALUE[,NAME=VALUE...]" into assignments (an empty VALUE is allowed: the variable set to
// ""). An empty spec, an entry without '=' or with an empty or malformed NAME is an error that
// names the entry.
inline bool parse_assignments(const std::string& spec, std::vector<Assignment>* out,
                              std::string* err) {
  out->clear();
  if (spec.empty()) {
    *err = "LORA4J_BENCH_AB is empty: give NAME=VALUE[,NAME=VALUE...]";
    return false;
  }
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = spec.find(',', start);
    const std::string entry =
        spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t eq = entry.find('=');
    bool ok = eq != std::string::npos && eq > 0;
    for (size_t i = 0; ok && i < eq; ++i) {
      const char c = entry[i];
      ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (i > 0 && c >= '0' && c <= '9');
    }
    if (!ok) {
      *err = "LORA4J_BENCH_AB: '" + entry + "' is not NAME=VALUE";
      out->clear();
      return false;
    }
    out->push_back({entry.substr(0, eq), entry.substr(eq + 1)});
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return true;
}

// Sets the assignments for its lifetime; each variable gets its previous value back, or is unset
// again when it had none.
class EnvScope {
 public:
  explicit EnvScope(const std::vector<Assignment>& a) {
    for (const Assignment& x : a) {
      const char* old = std::getenv(x.name.c_str());
      saved_.push_back({x.name, old ? std::make_pair(true, std::string(old))
                                    : std::make_pair(false, std::string())});
      setenv(x.name.c_str(), x.value.c_str(), 1);
    }
  }
  ~EnvScope() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second.first)
        setenv(it->first.c_str(), it->second.second.c_str(), 1);
      else
        unsetenv(it->first.c_str());
    }
  }
  EnvScope(const EnvScope&) = delete;
  EnvScope& operator=(const EnvScope&) = delete;

 private:
  std::vector<std::pair<std::string, std::pair<bool, std::string>>> saved_;
};

// Pair i runs a first when i is even (a b, b a, a b, ...): a drift within the run falls on both.
inline bool a_first(int i) { return i % 2 == 0; }

// The value at quantile q (0..1) of sorted values, linear between neighbours.
inline double quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const size_t i = size_t(pos);
  const double f = pos - double(i);
  return i + 1 < v.size() ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

// Two-sided sign test: the probability of a split at least as uneven as k of n under a fair
// coin (ties dropped by the caller). 1 for n = 0.
inline double sign_test_p(int k, int n) {
  if (n <= 0) return 1.0;
  const int m = std::min(k, n - k);
  double tail = 0, c = 1;  // c = C(n, i)
  for (int i = 0; i <= m; ++i) {
    tail += c;
    c = c * double(n - i) / double(i + 1);
  }
  return std::min(1.0, 2.0 * tail * std::pow(0.5, n));
}

struct PairSummary {
  int pairs = 0;
  double median_a = NAN, median_b = NAN;
  double ratio = NAN, ratio_lo = NAN, ratio_hi = NAN;  // b / a: median, quartiles
  int b_lower = 0, ties = 0;
  double p_sign = 1.0;
};

// a[i], b[i]: pair i's two values (times or energies). Pairs with a non-finite or non-positive
// value are left out.
inline PairSummary summarize_pairs(const std::vector<double>& a, const std::vector<double>& b) {
  PairSummary s;
  std::vector<double> ra, rb, ratio;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (!(std::isfinite(a[i]) && std::isfinite(b[i]) && a[i] > 0 && b[i] > 0)) continue;
    ra.push_back(a[i]);
    rb.push_back(b[i]);
    ratio.push_back(b[i] / a[i]);
    if (b[i] < a[i])
      ++s.b_lower;
    else if (b[i] == a[i])
      ++s.ties;
  }
  s.pairs = int(ratio.size());
  if (ratio.empty()) return s;
  s.median_a = quantile(ra, 0.5);
  s.median_b = quantile(rb, 0.5);
  s.ratio = quantile(ratio, 0.5);
  s.ratio_lo = quantile(ratio, 0.25);
  s.ratio_hi = quantile(ratio, 0.75);
  s.p_sign = sign_test_p(s.b_lower, s.pairs - s.ties);
  return s;
}

// s as the text of a JSON string: quotes, backslashes and control characters become spaces
// (the specs and error messages it carries need no more).
inline std::string json_text(const std::string& s) {
  std::string q;
  for (char c : s) q += c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  return q;
}

// v with prec decimals, or null when it is not finite (no NVML: no energy), for JSON.
inline std::string json_number(double v, int prec) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

// One side of a train_step_pair line: ,"a_U":..,"b_U":..,"ratio_U":..,"ratio_U_q":[lo,hi],
// "LOWER":count,"p_sign_U":.. (U = s for time, j for energy).
inline std::string pair_fields(const PairSummary& p, const char* unit, const char* lower,
                               int prec) {
  const std::string u = unit;
  return ",\"a_" + u + "\":" + json_number(p.median_a, prec) + ",\"b_" + u +
         "\":" + json_number(p.median_b, prec) + ",\"ratio_" + u + "\":" + json_number(p.ratio, 5) +
         ",\"ratio_" + u + "_q\":[" + json_number(p.ratio_lo, 5) + "," +
         json_number(p.ratio_hi, 5) + "],\"" + lower + "\":" + std::to_string(p.b_lower) +
         ",\"p_sign_" + u + "\":" + json_number(p.p_sign, 4);
}

}  // namespace lora4j::bench
