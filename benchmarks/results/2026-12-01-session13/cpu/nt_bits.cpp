#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
using namespace lora4j::cpu;
// FNV-1a of the outputs' bytes of linear_forward (gemm_nt) and lora_linear-free shapes, both kernel sets,
// accumulate off and on; then a timing of the LM head shape.
static unsigned long long fnv(const std::vector<float>& v) {
  unsigned long long h = 1469598103934665603ull;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * 4; ++i) { h ^= p[i]; h *= 1099511628211ull; }
  return h;
}
int main() {
  std::mt19937 g(5); std::normal_distribution<float> nd(0, 1);
  ThreadPool tp(2);
  struct S { long n, in, out; } shapes[] = {{97, 128, 290}, {64, 384, 128}, {200, 16, 4096}, {7, 300, 5}, {50, 128, 32000}, {13, 136, 7}};
  for (auto sh : shapes) {
    std::vector<float> x(sh.n * sh.in), w(sh.out * sh.in), y0(sh.n * sh.out);
    for (auto& v : x) v = nd(g); for (auto& v : w) v = nd(g); for (auto& v : y0) v = nd(g);
    for (int pass = 0; pass < 2; ++pass) {
      allow_linear_avx2(pass == 1);
      std::vector<float> y(y0.size()), ya = y0;
      linear_forward(&tp, x.data(), w.data(), y.data(), sh.n, sh.in, sh.out, false);
      linear_forward(&tp, x.data(), w.data(), ya.data(), sh.n, sh.in, sh.out, true);
      std::printf("n=%ld in=%ld out=%ld %s: %016llx %016llx\n", sh.n, sh.in, sh.out, pass ? "avx2" : "base", fnv(y), fnv(ya));
    }
  }
  allow_linear_avx2(true);
  std::vector<float> x(512 * 128), w(32000 * 128), y(512 * 32000);
  for (auto& v : x) v = nd(g); for (auto& v : w) v = nd(g);
  double best = 1e9;
  for (int r = 0; r < 7; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    linear_forward(&tp, x.data(), w.data(), y.data(), 512, 128, 32000, false);
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::printf("lm head 512 x 128 x 32000: %.2f ms (best of 7)\n", best);
  std::vector<float> x2(512 * 128), w2(384 * 128), y2(512 * 384);
  for (auto& v : x2) v = nd(g); for (auto& v : w2) v = nd(g);
  best = 1e9;
  for (int r = 0; r < 50; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    linear_forward(&tp, x2.data(), w2.data(), y2.data(), 512, 128, 384, false);
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::printf("gate 512 x 128 x 384: %.3f ms (best of 50)\n", best);
}
