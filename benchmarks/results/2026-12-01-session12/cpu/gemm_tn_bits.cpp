#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
using namespace lora4j::cpu;
int main() {
  std::mt19937 g(3); std::normal_distribution<float> nd(0, 1);
  ThreadPool tp(2);
  struct S { long n, in, out; } shapes[] = {{97, 531, 290}, {64, 4096, 16}, {200, 16, 4096}, {7, 300, 5}};
  for (auto sh : shapes) {
    std::vector<float> dy(sh.n * sh.out), x(sh.n * sh.in), w0(sh.out * sh.in);
    for (auto& v : dy) v = nd(g); for (auto& v : x) v = nd(g); for (auto& v : w0) v = nd(g);
    for (long i = 2; i < sh.n; i += 5) std::fill_n(dy.data() + i * sh.out, sh.out, 0.f);
    std::vector<float> ref = w0;  // the former loop: for i, for o: if c != 0: y[o] += (1 * c) * x_i
    for (long i = 0; i < sh.n; ++i) for (long o = 0; o < sh.out; ++o) { float c = dy[i * sh.out + o]; if (c != 0.f) { float k = 1.0f * c; for (long j = 0; j < sh.in; ++j) ref[o * sh.in + j] += k * x[i * sh.in + j]; } }
    for (int pass = 0; pass < 2; ++pass) {
      allow_linear_avx2(pass == 1);
      std::vector<float> y = w0;
      linear_backward_weight(&tp, dy.data(), x.data(), y.data(), sh.n, sh.in, sh.out);
      long diff = 0; for (size_t k = 0; k < y.size(); ++k) diff += std::memcmp(&y[k], &ref[k], 4) != 0;
      std::printf("n=%ld in=%ld out=%ld %s: %ld of %zu elements differ from the former loop\n", sh.n, sh.in, sh.out, pass ? "avx2" : "base", diff, y.size());
    }
  }
}
