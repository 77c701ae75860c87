#include <chrono>
#include <cstdio>
#include <vector>
#include <random>
#include "cpu/ops.h"
#include "cpu/ops_internal.h"
using namespace lora4j::cpu;
int main() {
  const int64_t V = 32000; std::vector<float> z(V), p(V); std::vector<double> ez(V);
  std::mt19937 g(1); std::normal_distribution<float> nd(0, 3);
  for (auto& x : z) x = nd(g);
  for (int pass = 0; pass < 2; ++pass) {
    allow_linear_avx2(pass == 0);
    float mx; double s = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < 2000; ++r) { s += detail::softmax_exp(z.data(), V, ez.data(), &mx); }
    auto t1 = std::chrono::steady_clock::now();
    for (int r = 0; r < 2000; ++r) detail::softmax_scale(ez.data(), V, 1.0, 0.5f, p.data());
    auto t2 = std::chrono::steady_clock::now();
    std::printf("%s: max+exp %.1f us/row, scale %.1f us/row (%g)\n", pass == 0 ? "avx2" : "base",
      std::chrono::duration<double, std::micro>(t1 - t0).count() / 2000,
      std::chrono::duration<double, std::micro>(t2 - t1).count() / 2000, s);
  }
}
