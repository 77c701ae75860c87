// The model shapes the native tests build engines of: one builder, so that a new field of
// lora4j_model_config gets its test default in one place.
#pragma once
#include "lora4j.h"

namespace testutil {

// A Mistral-shaped config: RMSNorm eps 1e-5, no sliding window, RoPE theta (default 1e4).
inline lora4j_model_config model_config(int vocab, int hidden, int intermediate, int layers,
                                        int heads, int kv_heads, int head_dim, int max_seq,
                                        double rope_theta = 1e4) {
  lora4j_model_config c{};
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.sliding_window = 0;
  c.max_seq_len = max_seq;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = rope_theta;
  return c;
}

// The smallest model of the tests: vocabulary 37, hidden 16, intermediate 24, 2 layers, 4 heads
// of 4 (2 KV heads), 12 positions.
inline lora4j_model_config tiny_config() { return model_config(37, 16, 24, 2, 4, 2, 4, 12); }

}  // namespace testutil
