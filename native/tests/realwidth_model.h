// The random Mistral models of the real-width tests (test_realwidth_cuda, test_realwidth_cpu):
// the widths of Mistral-7B v0.3 / v0.1 and a Mistral-NeMo-like family, weights from a seeded
// hash (bench_uniform: the same numbers on every machine), random non-zero adapters, batches
// with padding or packing.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <cstdint>
#include <cstring>
#include "lora4j.h"
#include "model_config.h"
#include "bench/op_bench.h"  // bench_uniform

namespace realwidth {

inline uint16_t bf16_bits(float f) {  // round to nearest even
  uint32_t x;
  std::memcpy(&x, &f, 4);
  x += 0x7FFFu + ((x >> 16) & 1u);
  return uint16_t(x >> 16);
}

#define RW_API(call)                                                       \
  do {                                                                     \
    int s_ = (call);                                                       \
    if (s_ != LORA4J_OK) {                                                 \
      std::printf("%s failed (%d): %s\n", #call, s_, lora4j_last_error()); \
      std::exit(2);                                                        \
    }                                                                      \
  } while (0)

// An engine on device (LORA4J_DEVICE_*, ordinal 0) with the given recompute mode and
// offload_checkpoints.
inline lora4j_engine* create_engine(const lora4j_model_config& c, int device, int recompute,
                                    int offload = 0) {
  lora4j_engine_options o{};
  o.device = device;
  o.device_index = 0;
  o.recompute = recompute;
  o.offload_checkpoints = offload;
  lora4j_engine* e = nullptr;
  RW_API(lora4j_engine_create(&c, &o, &e));
  return e;
}

inline lora4j_model_config mistral7b_v03(int layers) {
  return testutil::model_config(32768, 4096, 14336, layers, 32, 8, 128, 32768, 1e6);
}
// v0.1: vocab 32000, rope 1e4, sliding window. The checkpoint's window is 4096; here it is 1024
// so that a 2048-token row actually crosses it.
inline lora4j_model_config mistral7b_v01_window(int layers, int window) {
  lora4j_model_config c = mistral7b_v03(layers);
  c.vocab_size = 32000;
  c.rope_theta = 1e4;
  c.sliding_window = window;
  return c;
}
inline lora4j_model_config nemo_like(int layers) {
  lora4j_model_config c = mistral7b_v03(layers);
  c.vocab_size = 131072;
  c.hidden_size = 5120;
  return c;
}

struct WeightDef {
  std::string name;
  int64_t numel;
  float std;  // 0: norm weight (1 + small noise)
};
inline std::vector<WeightDef> weight_defs(const lora4j_model_config& c) {
  const int64_t d = c.hidden_size, I = c.intermediate_size, qd = int64_t(c.num_heads) * c.head_dim,
                kvd = int64_t(c.num_kv_heads) * c.head_dim, V = c.vocab_size;
  std::vector<WeightDef> w;
  w.push_back({"model.embed_tokens.weight", V * d, 0.02f});
  for (int l = 0; l < c.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    w.push_back({p + "input_layernorm.weight", d, 0.f});
    w.push_back({p + "self_attn.q_proj.weight", qd * d, 0.02f});
    w.push_back({p + "self_attn.k_proj.weight", kvd * d, 0.02f});
    w.push_back({p + "self_attn.v_proj.weight", kvd * d, 0.02f});
    w.push_back({p + "self_attn.o_proj.weight", d * qd, 0.02f});
    w.push_back({p + "mlp.gate_proj.weight", I * d, 0.02f});
    w.push_back({p + "mlp.up_proj.weight", I * d, 0.02f});
    w.push_back({p + "mlp.down_proj.weight", d * I, 0.02f});
    w.push_back({p + "post_attention_layernorm.weight", d, 0.f});
  }
  w.push_back({"model.norm.weight", d, 0.f});
  w.push_back({"lm_head.weight", V * d, 0.02f});
  return w;
}

// bf16 bits of a uniform number with the given std (or 1 + 0.1 * uniform for norms).
inline std::vector<uint16_t> random_bf16(uint64_t seed, uint32_t tensor, int64_t n, float std) {
  std::vector<uint16_t> out(static_cast<size_t>(n));
  const float a = std * std::sqrt(3.f);
  for (int64_t i = 0; i < n; ++i) {
    float u = lora4j::bench_uniform(seed, tensor, uint64_t(i));
    out[size_t(i)] = bf16_bits(std > 0 ? a * u : 1.f + 0.1f * u);
  }
  return out;
}

struct Batch {
  int B = 0, S = 0;
  std::vector<int32_t> ids, mask, labels, pos, seg;
  lora4j_batch view() const {
    lora4j_batch b{};
    b.batch = B;
    b.seq = S;
    b.input_ids = ids.data();
    b.attention_mask = mask.empty() ? nullptr : mask.data();
    b.labels = labels.data();
    b.position_ids = pos.empty() ? nullptr : pos.data();
    b.segment_ids = seg.empty() ? nullptr : seg.data();
    return b;
  }
  bool real(int64_t i) const { return mask.empty() || mask[size_t(i)] != 0; }
};

enum class Shape { PLAIN, PADDED, PACKED };

// Random tokens; the first 16 labels of each row are -100 (a prompt); PADDED: row r > 0 holds
// S - 300 * r real tokens, right-padded; PACKED: each row holds three examples of different
// lengths, positions restarting, segment ids 0, 1, 2.
inline Batch make_batch(uint64_t seed, int B, int S, int vocab, Shape shape) {
  Batch b;
  b.B = B;
  b.S = S;
  const size_t n = size_t(B) * size_t(S);
  b.ids.resize(n);
  b.labels.resize(n);
  for (size_t i = 0; i < n; ++i) {
    float u = lora4j::bench_uniform(seed, 77, i) * 0.5f + 0.5f;
    b.ids[i] = std::min(int32_t(u * float(vocab)), vocab - 1);
    b.labels[i] = (i % size_t(S)) < 16 ? -100 : b.ids[i];
  }
  if (shape == Shape::PADDED) {
    b.mask.assign(n, 1);
    for (int r = 1; r < B; ++r)
      for (int t = std::max(1, S - 300 * r); t < S; ++t) {
        size_t i = size_t(r) * size_t(S) + size_t(t);
        b.mask[i] = 0;
        b.ids[i] = 0;
        b.labels[i] = -100;
      }
  }
  if (shape == Shape::PACKED) {
    b.pos.resize(n);
    b.seg.resize(n);
    const int cut1 = S / 5, cut2 = S / 5 + S / 2;
    for (int r = 0; r < B; ++r)
      for (int t = 0; t < S; ++t) {
        size_t i = size_t(r) * size_t(S) + size_t(t);
        int start = t < cut1 ? 0 : (t < cut2 ? cut1 : cut2);
        b.pos[i] = t - start;
        b.seg[i] = t < cut1 ? 0 : (t < cut2 ? 1 : 2);
        if (t - start < 8) b.labels[i] = -100;  // each example's first tokens: its prompt
      }
  }
  return b;
}

// Same random weights and adapter on every engine.
// Attaches LoRA r 16 (alpha 32) on all seven projections to every engine, the same random
// non-zero values on each: A within PEFT's Kaiming-uniform bound 1/sqrt(in), B with std 0.02 (a
// trained adapter's size).
inline void random_adapter(const std::vector<lora4j_engine*>& engines, uint64_t seed,
                           uint32_t targets = 127u) {
  const int r = 16;
  const float scale = 32.f / float(r);
  for (lora4j_engine* e : engines) RW_API(lora4j_lora_attach(e, r, scale, targets));
  int32_t count = 0;
  RW_API(lora4j_lora_count(engines[0], &count));
  for (int32_t i = 0; i < count; ++i) {
    char name[256];
    int64_t rows, cols;
    RW_API(lora4j_lora_info(engines[0], i, name, sizeof name, &rows, &cols));
    bool is_a = std::string(name).find("lora_A") != std::string::npos;
    float bound = is_a ? 1.f / std::sqrt(float(cols)) : 0.02f * std::sqrt(3.f);
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (size_t k = 0; k < v.size(); ++k)
      v[k] = bound * lora4j::bench_uniform(seed, uint32_t(1000 + i), k);
    for (lora4j_engine* e : engines)
      RW_API(lora4j_lora_set(e, LORA4J_STATE_PARAM, name, LORA4J_DTYPE_F32, v.data(),
                             int64_t(v.size())));
  }
}

inline void load_all(const lora4j_model_config& c, const std::vector<lora4j_engine*>& engines,
                     uint64_t seed, uint32_t targets = 127u) {
  std::vector<WeightDef> defs = weight_defs(c);
  for (size_t t = 0; t < defs.size(); ++t) {
    std::vector<uint16_t> w = random_bf16(seed, uint32_t(t), defs[t].numel, defs[t].std);
    for (lora4j_engine* e : engines)
      RW_API(lora4j_engine_set_weight(e, defs[t].name.c_str(), LORA4J_DTYPE_BF16, w.data(),
                                      defs[t].numel));
  }
  random_adapter(engines, seed + 1, targets);
}

}  // namespace realwidth
