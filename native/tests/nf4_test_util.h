// NF4 test data for the native tests: a weight in bitsandbytes' layout (lora4j_nf4_weight) with
// random codes and scales, plain or double-quantized, that owns its buffers; and the small model
// the engine tests run.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "lora4j.h"
#include "model/nf4.h"

namespace nf4test {

// The 16 NF4 values of bitsandbytes (QLoRA, appendix E), as fp32.
inline const float* nf4_table() { return lora4j::kNf4Table; }

struct Nf4Data {
  int64_t numel = 0;
  int32_t blocksize = 64, nested_blocksize = 256, dtype = LORA4J_DTYPE_BF16;
  bool nested = false;
  float offset = 0.f;
  std::vector<uint8_t> codes, absmax_codes;
  std::vector<float> table, absmax, nested_table, nested_absmax;

  lora4j_nf4_weight view() const {
    lora4j_nf4_weight w{};
    w.numel = numel;
    w.blocksize = blocksize;
    w.dtype = dtype;
    w.codes = codes.data();
    w.code_table = table.data();
    if (nested) {
      w.absmax_codes = absmax_codes.data();
      w.nested_table = nested_table.data();
      w.nested_absmax = nested_absmax.data();
      w.nested_blocksize = nested_blocksize;
      w.offset = offset;
    } else {
      w.absmax = absmax.data();
    }
    return w;
  }
};

// Random codes; scales around `scale` (plain), or double-quantized: a sorted 256-entry table in
// [-1, 1], codes, nested absmax values and an offset that keep every scale positive.
inline Nf4Data random_nf4(int64_t numel, int32_t blocksize, bool nested, uint64_t seed,
                          float scale = 0.05f, int32_t nested_blocksize = 256) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  Nf4Data d;
  d.numel = numel;
  d.blocksize = blocksize;
  d.nested = nested;
  d.nested_blocksize = nested_blocksize;
  d.table.assign(nf4_table(), nf4_table() + 16);
  d.codes.resize(size_t((numel + 1) / 2));
  for (uint8_t& c : d.codes) c = uint8_t(g() & 0xFF);
  const int64_t blocks = (numel + blocksize - 1) / blocksize;
  if (!nested) {
    d.absmax.resize(size_t(blocks));
    for (float& a : d.absmax) a = scale * (0.5f + u(g));
    return d;
  }
  d.nested_table.resize(256);
  for (int i = 0; i < 256; ++i) d.nested_table[size_t(i)] = -1.f + 2.f * float(i) / 255.f;
  d.absmax_codes.resize(size_t(blocks));
  for (uint8_t& c : d.absmax_codes) c = uint8_t(g() & 0xFF);
  d.nested_absmax.resize(size_t((blocks + nested_blocksize - 1) / nested_blocksize));
  for (float& a : d.nested_absmax) a = 0.4f * scale * (0.5f + u(g));
  d.offset = scale;  // offset > max |table * nested_absmax|: scales stay positive
  return d;
}

// The frozen weights of a model config as the core lists them (lora4j_weight_info): name,
// element count and projection slot (-1: not a projection).
struct Weight {
  std::string name;
  int64_t numel;
  int slot;
};

inline std::vector<Weight> weights(const lora4j_model_config& c) {
  auto ok = [](int status, const char* call) {
    if (status != LORA4J_OK) {
      std::printf("%s failed (%d): %s\n", call, status, lora4j_last_error());
      std::exit(2);
    }
  };
  std::vector<Weight> w;
  int32_t count = 0;
  ok(lora4j_weight_count(&c, &count), "lora4j_weight_count");
  for (int32_t i = 0; i < count; ++i) {
    char name[256];
    int32_t ndim = 0, layer = 0, slot = 0;
    int64_t shape[2] = {1, 1};
    ok(lora4j_weight_info(&c, i, name, sizeof name, &ndim, shape, &layer, &slot),
       "lora4j_weight_info");
    w.push_back({name, shape[0] * (ndim == 2 ? shape[1] : 1), slot});
  }
  return w;
}

}  // namespace nf4test
