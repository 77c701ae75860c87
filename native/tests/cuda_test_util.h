// Helpers of the CUDA tests: random data, bf16 rounding, NaN poisoning, norm-wise relative
// error, one printed line per comparison. Every comparison line has the form
//   [suite] name  err=<relative error>  tol=<tolerance>  PASS|FAIL
// and scripts/gpu/run.sh collects those lines into its summary table.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "lora4j.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace ct {

inline int& failures() {
  static int f = 0;
  return f;
}

// The larger of a running worst error w and a new error e, NaN once either is NaN (std::max
// returns w for a NaN e, and `if (!(e <= w)) w = e` lets a later finite e replace a NaN w).
inline double worst_of(double w, double e) {
  return std::isnan(w) || std::isnan(e) ? NAN : std::max(w, e);
}

#define CT_CUDA(call)                                                                         \
  do {                                                                                        \
    cudaError_t e_ = (call);                                                                  \
    if (e_ != cudaSuccess) {                                                                  \
      std::printf("CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, \
                  #call);                                                                     \
      std::exit(2);                                                                           \
    }                                                                                         \
  } while (0)

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  float normal(float s = 1.f) { return std::normal_distribution<float>(0.f, s)(g); }
  float uniform(float a, float b) { return std::uniform_real_distribution<float>(a, b)(g); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
};

inline uint16_t to_bf16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t lsb = (x >> 16) & 1u;
  x += 0x7FFFu + lsb;
  return uint16_t(x >> 16);
}
inline float from_bf16_bits(uint16_t h) {
  uint32_t x = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
inline float round_bf16(float f) { return from_bf16_bits(to_bf16_bits(f)); }

inline float round_f16(float f) { return __half2float(__float2half_rn(f)); }

// Device buffer with host mirror helpers.
template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    CT_CUDA(cudaMalloc(&p, std::max<size_t>(1, n) * sizeof(T)));
  }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  void poison() { CT_CUDA(cudaMemset(p, 0xFF, n * sizeof(T))); }  // NaN in fp32 and bf16
  void zero() { CT_CUDA(cudaMemset(p, 0, n * sizeof(T))); }
};

// fp32 host <-> bf16 device
inline void up_bf16(Dev<__nv_bfloat16>& d, const std::vector<float>& h) {
  std::vector<uint16_t> b(h.size());
  for (size_t i = 0; i < h.size(); ++i) b[i] = to_bf16_bits(h[i]);
  CT_CUDA(cudaMemcpy(d.p, b.data(), b.size() * 2, cudaMemcpyHostToDevice));
}
inline std::vector<float> down_bf16(const Dev<__nv_bfloat16>& d) {
  std::vector<uint16_t> b(d.n);
  CT_CUDA(cudaMemcpy(b.data(), d.p, b.size() * 2, cudaMemcpyDeviceToHost));
  std::vector<float> h(d.n);
  for (size_t i = 0; i < h.size(); ++i) h[i] = from_bf16_bits(b[i]);
  return h;
}
// fp32 host <-> fp16 device
inline void up_f16(Dev<__half>& d, const std::vector<float>& h) {
  std::vector<__half> b(h.size());
  for (size_t i = 0; i < h.size(); ++i) b[i] = __float2half_rn(h[i]);
  CT_CUDA(cudaMemcpy(d.p, b.data(), b.size() * 2, cudaMemcpyHostToDevice));
}
inline std::vector<float> down_f16(const Dev<__half>& d) {
  std::vector<__half> b(d.n);
  CT_CUDA(cudaMemcpy(b.data(), d.p, b.size() * 2, cudaMemcpyDeviceToHost));
  std::vector<float> h(d.n);
  for (size_t i = 0; i < h.size(); ++i) h[i] = __half2float(b[i]);
  return h;
}
template <class T>
inline void up(Dev<T>& d, const std::vector<T>& h) {
  CT_CUDA(cudaMemcpy(d.p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
}
template <class T>
inline std::vector<T> down(const Dev<T>& d) {
  std::vector<T> h(d.n);
  CT_CUDA(cudaMemcpy(h.data(), d.p, h.size() * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

// ||got - ref|| / ||ref||; NaN anywhere or an infinity that does not match gives NaN.
// Elements where ref is -inf and got is -inf count as equal.
// floor > 0: the denominator is at least floor * sqrt(n), for references that cancel to
// (near) zero exactly, such as dq and dk of a query that sees a single key.
// The op names of a LORA4J_PHASE_TIMES file (written when its engine was destroyed: one JSON
// line per op, its name the first quoted value); the file removed.
inline std::set<std::string> phase_op_names(const std::string& path) {
  std::set<std::string> names;
  FILE* f = std::fopen(path.c_str(), "r");
  char buf[1024];
  while (f && std::fgets(buf, sizeof buf, f)) {
    const std::string line(buf);
    size_t a = line.find(": \"");
    if (a == std::string::npos) continue;
    a += 3;
    names.insert(line.substr(a, line.find('"', a) - a));
  }
  if (f) std::fclose(f);
  std::remove(path.c_str());
  return names;
}

inline double rel_err(const std::vector<float>& got, const std::vector<float>& ref,
                      double floor = 0) {
  double num = 0, den = 0;
  if (got.size() != ref.size()) return NAN;
  for (size_t i = 0; i < got.size(); ++i) {
    float g = got[i], r = ref[i];
    if (std::isnan(g) || std::isnan(r)) return NAN;
    if (std::isinf(r) || std::isinf(g)) {
      if (g == r) continue;
      return NAN;
    }
    num += double(g - r) * double(g - r);
    den += double(r) * double(r);
  }
  den = std::max(den, floor * floor * double(ref.size()));
  if (den == 0) return num == 0 ? 0.0 : INFINITY;
  return std::sqrt(num / den);
}

inline bool report(const char* suite, const std::string& name, double err, double tol) {
  bool ok = std::isfinite(err) && err <= tol;
  std::printf("[%s] %-58s err=%.3e  tol=%.0e  %s\n", suite, name.c_str(), err, tol,
              ok ? "PASS" : "FAIL");
  std::fflush(stdout);
  if (!ok) ++failures();
  return ok;
}
inline bool report_bool(const char* suite, const std::string& name, bool ok,
                        const std::string& detail) {
  std::printf("[%s] %-58s %s  %s\n", suite, name.c_str(), detail.c_str(), ok ? "PASS" : "FAIL");
  std::fflush(stdout);
  if (!ok) ++failures();
  return ok;
}

// 77: ctest's skip code (see SKIP_RETURN_CODE in the CMake). With LORA4J_REQUIRE_GPU=1 (the
// GPU script) a missing device or backend is a failure, never a skip.
inline void skip(const std::string& why) {
  const char* req = std::getenv("LORA4J_REQUIRE_GPU");
  if (req && std::string(req) == "1") {
    std::printf("FAIL: LORA4J_REQUIRE_GPU=1 but %s\n", why.c_str());
    std::exit(1);
  }
  std::printf("SKIP: %s\n", why.c_str());
  std::exit(77);
}
inline void skip_without_gpu() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) skip("no CUDA device");
}

// Skips without a device (skip_without_gpu); with one, a CUDA backend that does not load is a
// failure: exits 1 naming the suite and the reason.
inline void require_cuda_backend(const char* suite) {
  skip_without_gpu();
  int32_t avail = 0;
  char reason[512] = {0};
  int st = lora4j_cuda_available(&avail, reason, sizeof reason);
  if (st != LORA4J_OK || !avail) {
    std::printf("[%s] CUDA backend not available: %s  FAIL\n", suite,
                st != LORA4J_OK ? lora4j_last_error() : reason);
    std::exit(1);
  }
}

}  // namespace ct
