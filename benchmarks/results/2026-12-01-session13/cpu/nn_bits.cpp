#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
using namespace lora4j::cpu;
// FNV-1a of the outputs' bytes of linear_backward_input (gemm_nn: dx = dy W), some rows of dy zero
// (masked tokens: every 3rd and 7th row), both kernel sets, accumulate off and on; then timings.
static unsigned long long fnv(const std::vector<float>& v) {
  unsigned long long h = 1469598103934665603ull;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * 4; ++i) { h ^= p[i]; h *= 1099511628211ull; }
  return h;
}
int main() {
  std::mt19937 g(7); std::normal_distribution<float> nd(0, 1);
  ThreadPool tp(2);
  struct S { long n, in, out; } shapes[] = {{97, 128, 290}, {64, 384, 128}, {200, 16, 4096}, {7, 300, 5}, {50, 128, 32000}, {13, 136, 7}, {101, 520, 300}};
  for (auto sh : shapes) {
    std::vector<float> dy(sh.n * sh.out), w(sh.out * sh.in), x0(sh.n * sh.in);
    for (auto& v : dy) v = nd(g); for (auto& v : w) v = nd(g); for (auto& v : x0) v = nd(g);
    for (long i = 0; i < sh.n; ++i) if (i % 3 == 1 || i % 7 == 4) std::fill_n(dy.data() + i * sh.out, sh.out, 0.f);
    for (int pass = 0; pass < 2; ++pass) {
      allow_linear_avx2(pass == 1);
      std::vector<float> x(x0.size(), 5.f), xa = x0;
      linear_backward_input(&tp, dy.data(), w.data(), x.data(), sh.n, sh.in, sh.out, false);
      linear_backward_input(&tp, dy.data(), w.data(), xa.data(), sh.n, sh.in, sh.out, true);
      std::printf("n=%ld in=%ld out=%ld %s: %016llx %016llx\n", sh.n, sh.in, sh.out, pass ? "avx2" : "base", fnv(x), fnv(xa));
    }
  }
  allow_linear_avx2(true);
  for (int masked = 0; masked < 2; ++masked) {
    std::vector<float> dy(512 * 32000), w(32000 * 128), x(512 * 128);
    for (auto& v : dy) v = nd(g); for (auto& v : w) v = nd(g);
    if (masked) for (long i = 0; i < 512; ++i) if (i % 3 == 1 || i % 7 == 4) std::fill_n(dy.data() + i * 32000, 32000, 0.f);
    double best = 1e9;
    for (int r = 0; r < 7; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      linear_backward_input(&tp, dy.data(), w.data(), x.data(), 512, 128, 32000, false);
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("lm head backward 512 x 32000 x 128%s: %.2f ms (best of 7)\n", masked ? ", rows 3k+1 and 7k+4 masked" : "", best);
  }
}
