// The core's sampler (model/sampler.h) against bits the Java side gives: the weights'
// exponential (SamplerTest pins Sampler.expScaled to the same table), SplittableRandom's outputs
// and bounded draws (with rejections), and a few draws whose answer is known. The Java tests
// (NativeSamplerTest) compare whole draws with dev.lora4j.Sampler over many logits.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "model/sampler.h"
#include "test_util.h"

namespace {

double bits_to_double(uint64_t b) {
  double d;
  std::memcpy(&d, &b, sizeof d);
  return d;
}
uint64_t double_to_bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

// {d, 2^40 e^d} as Sampler.expScaled gives them (Java, JDK 17), bit for bit
const uint64_t kExp[][2] = {
    {0x0000000000000000ull, 0x4270000000000000ull},  // d = 0.0
    {0x8000000000000000ull, 0x4270000000000000ull},  // d = -0.0
    {0x81a56e1fc2f8f359ull, 0x4270000000000000ull},  // d = -1.0E-300
    {0xbfd62e42fefa39eeull, 0x4266a09e667e50d1ull},  // d = -0.3465735902799726
    {0xbfd62e42fefa39efull, 0x4266a09e667e50d0ull},  // d = -0.34657359027997264
    {0xbfe0000000000000ull, 0x426368b2fc6f95afull},  // d = -0.5
    {0xbff0000000000000ull, 0x42578b56362ca968ull},  // d = -1.0
    {0xc005bf0a8b145769ull, 0x4230e49787e20548ull},  // d = -2.718281828459045
    {0xc015000000000000ull, 0x41f57e6bfe8dcc17ull},  // d = -5.25
    {0xc024000000000000ull, 0x4187cd79b5644bf5ull},  // d = -10.0
    {0xc02bb9d3beb8c86bull, 0x4130000000000000ull},  // d = -13.862943611198906
    {0xc0341f9add373963ull, 0x409f4c3baeb287efull},  // d = -20.123456789
    {0xc03b000000000000ull, 0x4000885298767e9bull},  // d = -27.0
    {0xc03bbae147ae147bull, 0x3fefde6097b0621cull},  // d = -27.73
    {0xc03bcccccccccccaull, 0x3fedb6d21217f050ull},  // d = -27.79999999999999
    {0xc03bcccccccccccdull, 0x3fedb6d21217eff7ull},  // d = -27.8
    {0xbf12599ed7c6fbd2ull, 0x426fff6d3459f97bull},  // d = -7.0E-5
    {0xc00aaaaaaaaaaaabull, 0x422243dc957d03ecull},  // d = -3.3333333333333335
    {0xbfe62e42fefa39efull, 0x4260000000000000ull},  // d = -0.6931471805599453
    {0xc029000000000000ull, 0x414f42ed3f68e691ull},  // d = -12.5
};

}  // namespace

int main() {
  using testutil::check_true;
  for (const auto& e : kExp) {
    const double d = bits_to_double(e[0]), got = lora4j::sample_exp_scaled(d);
    check_true("exp_scaled(" + std::to_string(d) + ") has Sampler.expScaled's bits",
               double_to_bits(got) == e[1], std::to_string(got));
  }

  // new SplittableRandom(42).nextLong() x 3
  int64_t s = 42;
  const uint64_t want[3] = {0xbdd732262feb6e95ull, 0x28efe333b266f103ull, 0x47526757130f9f52ull};
  bool same = true;
  for (uint64_t w : want) same = same && lora4j::splitmix_next(s) == w;
  check_true("splitmix_next: SplittableRandom(42)'s outputs", same);
  // new SplittableRandom(-7).nextLong(bound) in turn; 2^62 + 1 rejects about half its candidates
  const int64_t b62 = (int64_t(1) << 62) + 1;
  const int64_t draws[6][2] = {
      {1000003, 189923},          {1048576, 103082},           {b62, 1470244344096974945ll},
      {b62, 61458756966673181ll}, {b62, 259590277590618208ll}, {b62, 3698233144557401260ll}};
  s = -7;
  same = true;
  for (const auto& d : draws) same = same && lora4j::splitmix_below(s, d[0]) == d[1];
  check_true("splitmix_below: SplittableRandom(-7)'s bounded draws", same);
  check_true("splitmix_below: the state SplitMix64 reaches (rejected candidates drawn too)",
             s == 3326683750974675147ll, std::to_string(s));

  // draws whose answer is known
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  lora4j::SampleParams p;
  p.temperature = 0.8;
  p.top_p = 0.9;
  int64_t st = 1;
  int seen1 = 0, seen3 = 0, other = 0;
  const float with_inf[5] = {1e30f, inf, 0, inf, nan};
  for (int i = 0; i < 2000; ++i) {
    const int32_t t = lora4j::sample_token(with_inf, 5, p, st);
    seen1 += t == 1, seen3 += t == 3, other += t != 1 && t != 3;
  }
  check_true("+inf tokens share the draw", other == 0 && seen1 > 800 && seen3 > 800,
             std::to_string(seen1) + " / " + std::to_string(seen3));
  const float missing[5] = {nan, -inf, 0.5f, nan, 0.25f};
  p.top_p = 1;
  other = 0;
  for (int i = 0; i < 2000; ++i) {
    const int32_t t = lora4j::sample_token(missing, 5, p, st);
    other += t != 2 && t != 4;
  }
  check_true("NaN and -inf are never drawn", other == 0);
  const float none[2] = {nan, -inf};
  const int64_t before = st;
  check_true("nothing to draw: the greedy token, the state untouched",
             lora4j::sample_token(none, 2, p, st) == 0 && st == before);
  const float logits[4] = {5, 4, 0, -1};
  p.temperature = 1;
  p.top_p = 0.5;
  bool only0 = true;
  for (int i = 0; i < 200; ++i) only0 = only0 && lora4j::sample_token(logits, 4, p, st) == 0;
  check_true("top-p 0.5 of {5, 4, 0, -1}: token 0 alone", only0);
  p.top_p = 1;
  p.top_k = 1;
  bool argmax = true;
  for (int i = 0; i < 200; ++i) argmax = argmax && lora4j::sample_token(logits, 4, p, st) == 0;
  check_true("top-k 1: the largest", argmax);
  return testutil::finish("test_sampler");
}
