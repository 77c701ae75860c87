// The C API refuses bad input with the right status and a message naming what is wrong, and
// never crashes: null handles and pointers, unknown names, wrong sizes, out-of-vocabulary
// tokens, missing weights, bad configurations, calls in the wrong state. Also: a step with
// non-finite gradients is skipped without touching the optimizer state.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "lora4j.h"
#include "test_util.h"
#include "model_config.h"

using testutil::check_true;

namespace {

void expect(const std::string& what, int rc, int code, const std::string& needle) {
  std::string msg = lora4j_last_error();
  bool ok = rc == code && msg.find(needle) != std::string::npos;
  check_true(
      what, ok,
      "status " + std::to_string(rc) + " (want " + std::to_string(code) + "), message: " + msg);
}

void expect_ok(const std::string& what, int rc) {
  check_true(what, rc == LORA4J_OK, rc == LORA4J_OK ? "" : lora4j_last_error());
}

// All HF weight names and sizes of testutil::tiny_config().
std::vector<std::pair<std::string, int64_t>> weight_list(const lora4j_model_config& c) {
  std::vector<std::pair<std::string, int64_t>> w;
  int64_t d = c.hidden_size, I = c.intermediate_size, q = int64_t(c.num_heads) * c.head_dim,
          kv = int64_t(c.num_kv_heads) * c.head_dim;
  w.push_back({"model.embed_tokens.weight", c.vocab_size * d});
  for (int l = 0; l < c.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    w.push_back({p + "input_layernorm.weight", d});
    w.push_back({p + "self_attn.q_proj.weight", q * d});
    w.push_back({p + "self_attn.k_proj.weight", kv * d});
    w.push_back({p + "self_attn.v_proj.weight", kv * d});
    w.push_back({p + "self_attn.o_proj.weight", d * q});
    w.push_back({p + "mlp.gate_proj.weight", I * d});
    w.push_back({p + "mlp.up_proj.weight", I * d});
    w.push_back({p + "mlp.down_proj.weight", d * I});
    w.push_back({p + "post_attention_layernorm.weight", d});
  }
  w.push_back({"model.norm.weight", d});
  w.push_back({"lm_head.weight", c.vocab_size * d});
  return w;
}

}  // namespace

int main() {
  lora4j_model_config cfg = testutil::tiny_config();
  lora4j_engine_options opt{};
  lora4j_engine* e = nullptr;

  // ---- creation ----
  expect("create: null config", lora4j_engine_create(nullptr, &opt, &e), LORA4J_EINVAL, "config");
  expect("create: null out", lora4j_engine_create(&cfg, &opt, nullptr), LORA4J_EINVAL, "out");
  {
    lora4j_model_config bad = cfg;
    bad.hidden_size = 0;
    expect("create: hidden_size 0", lora4j_engine_create(&bad, &opt, &e), LORA4J_EINVAL,
           "hidden_size");
    bad = cfg;
    bad.num_kv_heads = 3;
    expect("create: heads not a multiple of kv heads", lora4j_engine_create(&bad, &opt, &e),
           LORA4J_EINVAL, "num_key_value_heads");
    bad = cfg;
    bad.head_dim = 5;
    expect("create: odd head_dim", lora4j_engine_create(&bad, &opt, &e), LORA4J_EINVAL, "head_dim");
    bad = cfg;
    bad.rope_theta = -1;
    expect("create: negative rope_theta", lora4j_engine_create(&bad, &opt, &e), LORA4J_EINVAL,
           "rope_theta");
    bad = cfg;
    bad.sliding_window = -2;
    expect("create: negative sliding_window", lora4j_engine_create(&bad, &opt, &e), LORA4J_EINVAL,
           "sliding_window");
    lora4j_engine_options o2 = opt;
    o2.device = 7;
    expect("create: unknown device", lora4j_engine_create(&cfg, &o2, &e), LORA4J_EINVAL,
           "options.device");
    o2 = opt;
    o2.recompute = 9;
    expect("create: unknown recompute mode", lora4j_engine_create(&cfg, &o2, &e), LORA4J_EINVAL,
           "recompute");
    o2 = opt;
    o2.offload_checkpoints = 2;
    expect("create: offload_checkpoints not 0 or 1", lora4j_engine_create(&cfg, &o2, &e),
           LORA4J_EINVAL, "offload_checkpoints");
    o2 = opt;
    o2.num_threads = -1;
    expect("create: negative num_threads", lora4j_engine_create(&cfg, &o2, &e), LORA4J_EINVAL,
           "num_threads");
  }
  check_true("create failures leave *out null", e == nullptr);

  // ---- the model's frozen weights, without an engine ----
  {
    std::vector<std::pair<std::string, int64_t>> want = weight_list(cfg);
    int32_t n = 0;
    expect_ok("weight_count", lora4j_weight_count(&cfg, &n));
    check_true("weight_count = embedding + 2 x 9 + norm + head", n == int32_t(want.size()),
               std::to_string(n));
    // slot of each entry of weight_list's order
    const int32_t layer_slots[9] = {
        LORA4J_SLOT_INPUT_NORM, LORA4J_SLOT_Q,    LORA4J_SLOT_K,
        LORA4J_SLOT_V,          LORA4J_SLOT_O,    LORA4J_SLOT_GATE,
        LORA4J_SLOT_UP,         LORA4J_SLOT_DOWN, LORA4J_SLOT_POST_ATTN_NORM};
    bool all = n == int32_t(want.size());
    std::string bad;
    for (int32_t i = 0; all && i < n; ++i) {
      char nm[128];
      int32_t ndim = 0, layer = -9, slot = -9;
      int64_t shape[2] = {0, 0};
      int rc = lora4j_weight_info(&cfg, i, nm, sizeof nm, &ndim, shape, &layer, &slot);
      int32_t want_layer = i == 0 || i >= n - 2 ? -1 : (i - 1) / 9;
      int32_t want_slot = i == 0       ? LORA4J_SLOT_EMBED
                          : i == n - 2 ? LORA4J_SLOT_FINAL_NORM
                          : i == n - 1 ? LORA4J_SLOT_LM_HEAD
                                       : layer_slots[(i - 1) % 9];
      bool norm = want_slot == LORA4J_SLOT_INPUT_NORM || want_slot == LORA4J_SLOT_POST_ATTN_NORM ||
                  want_slot == LORA4J_SLOT_FINAL_NORM;
      int64_t numel = ndim == 1 ? shape[0] : shape[0] * shape[1];
      bool ok = rc == LORA4J_OK && want[size_t(i)].first == nm && want[size_t(i)].second == numel &&
                ndim == (norm ? 1 : 2) && layer == want_layer && slot == want_slot;
      if (ok && slot == LORA4J_SLOT_O)  // [out, in]: hidden x heads * head_dim
        ok = shape[0] == cfg.hidden_size && shape[1] == int64_t(cfg.num_heads) * cfg.head_dim;
      if (ok && slot == LORA4J_SLOT_K)
        ok = shape[0] == int64_t(cfg.num_kv_heads) * cfg.head_dim && shape[1] == cfg.hidden_size;
      if (ok && slot == LORA4J_SLOT_DOWN)
        ok = shape[0] == cfg.hidden_size && shape[1] == cfg.intermediate_size;
      if (ok && slot == LORA4J_SLOT_LM_HEAD)
        ok = shape[0] == cfg.vocab_size && shape[1] == cfg.hidden_size;
      if (!ok) {
        all = false;
        bad = "index " + std::to_string(i) + ": " + nm + " ndim " + std::to_string(ndim) + " [" +
              std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + "] layer " +
              std::to_string(layer) + " slot " + std::to_string(slot) + " " + lora4j_last_error();
      }
    }
    check_true("weight_info: every name, shape, layer and slot", all, bad);
    char nm[128];
    int32_t ndim, layer, slot;
    int64_t shape[2];
    expect("weight_count: null config", lora4j_weight_count(nullptr, &n), LORA4J_EINVAL, "config");
    expect("weight_count: null count", lora4j_weight_count(&cfg, nullptr), LORA4J_EINVAL, "count");
    lora4j_model_config odd = cfg;
    odd.head_dim = 5;
    expect("weight_count: invalid config", lora4j_weight_count(&odd, &n), LORA4J_EINVAL,
           "head_dim");
    expect(
        "weight_info: index out of range",
        lora4j_weight_info(&cfg, int32_t(want.size()), nm, sizeof nm, &ndim, shape, &layer, &slot),
        LORA4J_EINVAL, "index " + std::to_string(want.size()));
    expect("weight_info: name buffer too small",
           lora4j_weight_info(&cfg, 0, nm, 8, &ndim, shape, &layer, &slot), LORA4J_EINVAL,
           "too small");
    expect("weight_info: null shape",
           lora4j_weight_info(&cfg, 0, nm, sizeof nm, &ndim, nullptr, &layer, &slot), LORA4J_EINVAL,
           "shape");
  }
  expect_ok("destroy(NULL) is a no-op", lora4j_engine_destroy(nullptr));
  opt.num_threads = 2;
  expect_ok("create", lora4j_engine_create(&cfg, &opt, &e));

  // ---- null handle ----
  int32_t ids[6] = {1, 2, 3, 4, 5, 6}, labels[6] = {-100, 2, 3, 4, 5, 6};
  lora4j_batch b{};
  b.batch = 1;
  b.seq = 6;
  b.input_ids = ids;
  b.labels = labels;
  double sum = 0;
  int64_t tokens = 0, step = 0;
  float one = 1;
  std::vector<float> logits(6 * 37);
  expect("set_weight: null engine", lora4j_engine_set_weight(nullptr, "lm_head.weight", 0, &one, 1),
         LORA4J_EINVAL, "engine handle is null");
  expect("forward_backward: null engine", lora4j_forward_backward(nullptr, &b, 1, &sum, &tokens),
         LORA4J_EINVAL, "engine handle is null");
  expect("logits: null engine", lora4j_logits(nullptr, &b, logits.data(), 6 * 37), LORA4J_EINVAL,
         "engine handle is null");
  expect("optimizer_get_step: null engine", lora4j_optimizer_get_step(nullptr, &step),
         LORA4J_EINVAL, "engine handle is null");
  expect("decode_next: null engine", lora4j_decode_next(nullptr, 1, logits.data()), LORA4J_EINVAL,
         "engine handle is null");

  // ---- weights ----
  expect("forward before weights are set", lora4j_logits(e, &b, logits.data(), 6 * 37),
         LORA4J_ESTATE, "model.embed_tokens.weight");
  std::vector<float> w(37 * 16, 0.01f);
  expect("set_weight: unknown name",
         lora4j_engine_set_weight(e, "model.layers.9.mlp.up_proj.weight", LORA4J_DTYPE_F32,
                                  w.data(), 10),
         LORA4J_EINVAL, "model.layers.9.mlp.up_proj.weight");
  expect("set_weight: wrong numel",
         lora4j_engine_set_weight(e, "lm_head.weight", LORA4J_DTYPE_F32, w.data(), 37 * 16 - 1),
         LORA4J_EINVAL, "lm_head.weight");
  expect("set_weight: null name",
         lora4j_engine_set_weight(e, nullptr, LORA4J_DTYPE_F32, w.data(), 1), LORA4J_EINVAL,
         "name");
  expect("set_weight: null data",
         lora4j_engine_set_weight(e, "lm_head.weight", LORA4J_DTYPE_F32, nullptr, 37 * 16),
         LORA4J_EINVAL, "data");
  expect("set_weight: unknown dtype",
         lora4j_engine_set_weight(e, "lm_head.weight", 9, w.data(), 37 * 16), LORA4J_EINVAL,
         "dtype");
  {
    // a weight that is not finite: refused by name and element (row and column of a matrix), in
    // each float dtype, and nothing set (the forward still names the weight as missing)
    std::vector<float> f(37 * 16, 0.01f);
    f[size_t(3 * 16 + 5)] = std::numeric_limits<float>::quiet_NaN();
    expect(
        "set_weight: a NaN (f32)",
        lora4j_engine_set_weight(e, "lm_head.weight", LORA4J_DTYPE_F32, f.data(), 37 * 16),
        LORA4J_EINVAL,
        "'lm_head.weight' holds a value that is not finite (NaN) at element 53 (row 3, column 5)");
    std::vector<uint16_t> h(37 * 16, 0x3F80);  // 1.0 in bf16
    h[size_t(36 * 16 + 15)] = 0xFF80;          // -inf in bf16
    expect("set_weight: an infinity (bf16)",
           lora4j_engine_set_weight(e, "lm_head.weight", LORA4J_DTYPE_BF16, h.data(), 37 * 16),
           LORA4J_EINVAL, "not finite (infinite) at element 591 (row 36, column 15)");
    std::vector<uint16_t> n16(16, 0x3C00);  // 1.0 in fp16
    n16[7] = 0x7E00;                        // NaN in fp16
    expect("set_weight: a NaN (f16, a norm: element only)",
           lora4j_engine_set_weight(e, "model.norm.weight", LORA4J_DTYPE_F16, n16.data(), 16),
           LORA4J_EINVAL,
           "'model.norm.weight' holds a value that is not finite (NaN) at element 7");
    n16[7] = 0x7BFF;  // fp16's largest finite value: accepted
    expect_ok("set_weight: fp16's largest value",
              lora4j_engine_set_weight(e, "model.norm.weight", LORA4J_DTYPE_F16, n16.data(), 16));
  }
  expect("get_weight: not set yet",
         lora4j_engine_get_weight(e, "model.layers.0.input_layernorm.weight", w.data(), 16),
         LORA4J_ESTATE, "model.layers.0.input_layernorm.weight");
  testutil::Rng rng(5);
  auto all = weight_list(cfg);
  for (size_t i = 0; i + 1 < all.size(); ++i) {
    std::vector<float> v(size_t(all[i].second));
    rng.fill(v, -0.3f, 0.3f);
    if (all[i].first.find("norm") != std::string::npos)
      for (auto& x : v) x = 1.0f;
    lora4j_engine_set_weight(e, all[i].first.c_str(), LORA4J_DTYPE_F32, v.data(),
                             int64_t(v.size()));
  }
  expect("forward with one weight missing names it", lora4j_logits(e, &b, logits.data(), 6 * 37),
         LORA4J_ESTATE, "lm_head.weight");
  {
    std::vector<float> v(37 * 16);
    rng.fill(v, -0.3f, 0.3f);
    expect_ok("set last weight",
              lora4j_engine_set_weight(e, "lm_head.weight", LORA4J_DTYPE_F32, v.data(), 37 * 16));
    std::vector<float> back(37 * 16);
    expect_ok("get_weight", lora4j_engine_get_weight(e, "lm_head.weight", back.data(), 37 * 16));
    check_true("get_weight returns what was set", back == v);
    expect("get_weight: wrong numel", lora4j_engine_get_weight(e, "lm_head.weight", back.data(), 5),
           LORA4J_EINVAL, "lm_head.weight");
  }
  expect_ok("logits", lora4j_logits(e, &b, logits.data(), 6 * 37));
  expect("logits: wrong buffer size", lora4j_logits(e, &b, logits.data(), 6 * 37 + 1),
         LORA4J_EINVAL, "logits buffer");
  expect("hidden_states: wrong buffer size", lora4j_hidden_states(e, &b, logits.data(), 3),
         LORA4J_EINVAL, "hidden-state buffer");

  // ---- batches ----
  {
    lora4j_batch bb = b;
    int32_t bad_ids[6] = {1, 2, 37, 4, 5, 6};
    bb.input_ids = bad_ids;
    expect("batch: token id = vocab_size", lora4j_eval_loss(e, &bb, &sum, &tokens), LORA4J_EINVAL,
           "input_ids[0][2]");
    bad_ids[2] = -1;
    expect("batch: negative token id", lora4j_logits(e, &bb, logits.data(), 6 * 37), LORA4J_EINVAL,
           "input_ids[0][2]");
    bb = b;
    bb.labels = nullptr;
    expect("eval_loss: labels missing", lora4j_eval_loss(e, &bb, &sum, &tokens), LORA4J_EINVAL,
           "labels");
    bb = b;
    int32_t bad_labels[6] = {-100, 2, 3, 99, 5, 6};
    bb.labels = bad_labels;
    expect("batch: label out of vocab", lora4j_eval_loss(e, &bb, &sum, &tokens), LORA4J_EINVAL,
           "labels[0][3]");
    bb = b;
    int32_t mask[6] = {1, 1, 2, 1, 1, 1};
    bb.attention_mask = mask;
    expect("batch: attention_mask value 2", lora4j_eval_loss(e, &bb, &sum, &tokens), LORA4J_EINVAL,
           "attention_mask[0][2]");
    bb = b;
    int32_t pos[6] = {0, 1, 2, 12, 4, 5};
    bb.position_ids = pos;
    expect("batch: position id >= max_seq_len", lora4j_eval_loss(e, &bb, &sum, &tokens),
           LORA4J_EINVAL, "position_ids[0][3]");
    bb = b;
    bb.seq = 13;
    expect("batch: seq > max_seq_len", lora4j_eval_loss(e, &bb, &sum, &tokens), LORA4J_EINVAL,
           "max_seq_len");
    bb = b;
    bb.batch = 0;
    expect("batch: batch 0", lora4j_eval_loss(e, &bb, &sum, &tokens), LORA4J_EINVAL, "batch.batch");
    bb = b;
    bb.input_ids = nullptr;
    expect("batch: null input_ids", lora4j_eval_loss(e, &bb, &sum, &tokens), LORA4J_EINVAL,
           "input_ids");
    expect("eval_loss: null batch", lora4j_eval_loss(e, nullptr, &sum, &tokens), LORA4J_EINVAL,
           "batch");
  }

  // ---- adapter ----
  float out4[4];
  lora4j_adamw adam{0.01f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f};
  lora4j_step_result res{};
  expect("forward_backward without adapter", lora4j_forward_backward(e, &b, 1, &sum, &tokens),
         LORA4J_ESTATE, "adapter");
  expect("optimizer_step without adapter", lora4j_optimizer_step(e, &adam, &res), LORA4J_ESTATE,
         "adapter");
  expect("lora_get without adapter", lora4j_lora_get(e, LORA4J_STATE_PARAM, "x", out4, 4),
         LORA4J_ESTATE, "adapter");
  expect("lora_merge without adapter", lora4j_lora_merge(e), LORA4J_ESTATE, "adapter");
  expect("lora_info without adapter", lora4j_lora_info(e, 0, nullptr, 0, nullptr, nullptr),
         LORA4J_ESTATE, "adapter");
  expect("attach: rank 0", lora4j_lora_attach(e, 0, 2.0f, LORA4J_TARGET_Q), LORA4J_EINVAL, "rank");
  expect("attach: no targets", lora4j_lora_attach(e, 4, 2.0f, 0), LORA4J_EINVAL, "targets");
  expect("attach: unknown target bit", lora4j_lora_attach(e, 4, 2.0f, 0x80u), LORA4J_EINVAL,
         "targets");
  expect("attach: NaN scale", lora4j_lora_attach(e, 4, std::nanf(""), LORA4J_TARGET_Q),
         LORA4J_EINVAL, "scale");
  expect_ok("attach q,v rank 2", lora4j_lora_attach(e, 2, 2.0f, LORA4J_TARGET_Q | LORA4J_TARGET_V));
  int32_t count = 0;
  expect_ok("lora_count", lora4j_lora_count(e, &count));
  check_true("lora_count = 2 layers x 2 projections x (A, B)", count == 8);
  char name[128];
  int64_t rows = 0, cols = 0;
  expect("lora_info: index out of range", lora4j_lora_info(e, 8, name, 128, &rows, &cols),
         LORA4J_EINVAL, "index 8");
  expect("lora_info: name buffer too small", lora4j_lora_info(e, 0, name, 8, &rows, &cols),
         LORA4J_EINVAL, "too small");
  expect_ok("lora_info 0", lora4j_lora_info(e, 0, name, 128, &rows, &cols));
  check_true(
      "lora_info 0 is layer 0 q_proj A [2, 16]",
      std::string(name) == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" &&
          rows == 2 && cols == 16,
      name);
  const char* qa = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  std::vector<float> a(32);
  expect("lora_set: unknown name",
         lora4j_lora_set(e, LORA4J_STATE_PARAM,
                         "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight",
                         LORA4J_DTYPE_F32, a.data(), 32),
         LORA4J_EINVAL, "k_proj.lora_A");
  expect("lora_set: wrong numel",
         lora4j_lora_set(e, LORA4J_STATE_PARAM, qa, LORA4J_DTYPE_F32, a.data(), 31), LORA4J_EINVAL,
         "q_proj.lora_A");
  expect("lora_set: unknown state kind", lora4j_lora_set(e, 7, qa, LORA4J_DTYPE_F32, a.data(), 32),
         LORA4J_EINVAL, "kind");
  expect("lora_get: null out", lora4j_lora_get(e, LORA4J_STATE_GRAD, qa, nullptr, 32),
         LORA4J_EINVAL, "out");
  expect("lora_get: wrong numel", lora4j_lora_get(e, LORA4J_STATE_EXP_AVG_SQ, qa, a.data(), 33),
         LORA4J_EINVAL, "q_proj.lora_A");
  expect("optimizer_set_step: negative", lora4j_optimizer_set_step(e, -1), LORA4J_EINVAL, "step");
  {
    // a LoRA weight or AdamW moment that is not finite is refused by element (a gradient may be
    // set so: "lora_set grad" below)
    std::vector<float> bad(32, 0.1f);
    bad[9] = std::numeric_limits<float>::infinity();
    expect("lora_set: an infinite weight",
           lora4j_lora_set(e, LORA4J_STATE_PARAM, qa, LORA4J_DTYPE_F32, bad.data(), 32),
           LORA4J_EINVAL,
           "LoRA weight '" + std::string(qa) +
               "' holds a value that is not finite (infinite) at element 9");
    bad[9] = std::numeric_limits<float>::quiet_NaN();
    expect("lora_set: a NaN second moment",
           lora4j_lora_set(e, LORA4J_STATE_EXP_AVG_SQ, qa, LORA4J_DTYPE_F32, bad.data(), 32),
           LORA4J_EINVAL, "AdamW second moment");
  }
  rng.fill(a, -0.2f, 0.2f);
  expect_ok("lora_set A",
            lora4j_lora_set(e, LORA4J_STATE_PARAM, qa, LORA4J_DTYPE_F32, a.data(), 32));
  expect(
      "forward_backward: labels missing",
      [&] {
        lora4j_batch bb = b;
        bb.labels = nullptr;
        return lora4j_forward_backward(e, &bb, 1, &sum, &tokens);
      }(),
      LORA4J_EINVAL, "labels");
  expect("forward_backward: NaN grad_scale",
         lora4j_forward_backward(e, &b, std::nanf(""), &sum, &tokens), LORA4J_EINVAL, "grad_scale");
  {
    lora4j_batch bb = b;
    int32_t none[6] = {-100, -100, -100, -100, -100, -100};
    bb.labels = none;
    expect("train_step: no label token", lora4j_train_step(e, &bb, &adam, &sum, &res),
           LORA4J_EINVAL, "no label");
  }
  lora4j_adamw bad = adam;
  bad.beta2 = 1.0f;
  expect("optimizer_step: beta2 = 1", lora4j_optimizer_step(e, &bad, &res), LORA4J_EINVAL, "beta2");
  bad = adam;
  bad.lr = -1;
  expect("optimizer_step: negative lr", lora4j_optimizer_step(e, &bad, &res), LORA4J_EINVAL, "lr");
  expect("optimizer_step: null adamw", lora4j_optimizer_step(e, nullptr, &res), LORA4J_EINVAL,
         "adamw");

  // ---- a step whose gradients are not finite is skipped ----
  expect_ok("train_step", lora4j_train_step(e, &b, &adam, &sum, &res));
  check_true("train_step applied, step 1", res.applied == 1 && res.step == 1);
  // q's lora_B (B starts at zero, so A's first gradient and moments are zero; B's are not, so
  // "untouched" below compares values the step would change)
  const char* qb = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
  std::vector<float> p0(32), m0(32), v0(32);
  expect_ok("lora_get param", lora4j_lora_get(e, LORA4J_STATE_PARAM, qb, p0.data(), 32));
  expect_ok("lora_get exp_avg", lora4j_lora_get(e, LORA4J_STATE_EXP_AVG, qb, m0.data(), 32));
  expect_ok("lora_get exp_avg_sq", lora4j_lora_get(e, LORA4J_STATE_EXP_AVG_SQ, qb, v0.data(), 32));
  check_true("moments nonzero after a step",
             std::any_of(m0.begin(), m0.end(), [](float x) { return x != 0.f; }) &&
                 std::any_of(v0.begin(), v0.end(), [](float x) { return x != 0.f; }));
  expect_ok("forward_backward", lora4j_forward_backward(e, &b, 0.2f, &sum, &tokens));
  std::vector<float> g(32);
  expect_ok("lora_get grad", lora4j_lora_get(e, LORA4J_STATE_GRAD, qa, g.data(), 32));
  g[3] = std::numeric_limits<float>::infinity();
  expect_ok("lora_set grad",
            lora4j_lora_set(e, LORA4J_STATE_GRAD, qa, LORA4J_DTYPE_F32, g.data(), 32));
  expect_ok("optimizer_step with an infinite gradient", lora4j_optimizer_step(e, &adam, &res));
  std::vector<float> p1(32, NAN), m1(32, NAN), v1(32, NAN), g1(32, NAN);
  expect_ok("lora_get param", lora4j_lora_get(e, LORA4J_STATE_PARAM, qb, p1.data(), 32));
  expect_ok("lora_get exp_avg", lora4j_lora_get(e, LORA4J_STATE_EXP_AVG, qb, m1.data(), 32));
  expect_ok("lora_get exp_avg_sq", lora4j_lora_get(e, LORA4J_STATE_EXP_AVG_SQ, qb, v1.data(), 32));
  expect_ok("lora_get grad", lora4j_lora_get(e, LORA4J_STATE_GRAD, qa, g1.data(), 32));
  expect_ok("optimizer_get_step", lora4j_optimizer_get_step(e, &step));
  check_true("non-finite step skipped: applied 0, step count unchanged, norm not finite",
             res.applied == 0 && res.step == 1 && step == 1 && !std::isfinite(res.grad_norm));
  check_true("non-finite step skipped: params and moments untouched, grads zeroed",
             p1 == p0 && m1 == m0 && v1 == v0 && g1 == std::vector<float>(32, 0.0f));

  // ---- decoding ----
  std::vector<float> lg(37);
  expect("decode_next before decode_start", lora4j_decode_next(e, 1, lg.data()), LORA4J_ESTATE,
         "decode_start");
  expect("decode_start: empty prompt", lora4j_decode_start(e, ids, 0, lg.data()), LORA4J_EINVAL,
         "prompt length");
  int32_t badp[2] = {1, 40};
  expect("decode_start: token out of vocab", lora4j_decode_start(e, badp, 2, lg.data()),
         LORA4J_EINVAL, "vocabulary");
  expect("decode_start: null logits", lora4j_decode_start(e, ids, 2, nullptr), LORA4J_EINVAL,
         "logits");
  expect_ok("decode_start", lora4j_decode_start(e, ids, 6, lg.data()));
  expect("decode_next: token out of vocab", lora4j_decode_next(e, 37, lg.data()), LORA4J_EINVAL,
         "vocabulary");
  for (int i = 0; i < 6; ++i)
    expect_ok("decode_next " + std::to_string(i), lora4j_decode_next(e, 1, lg.data()));
  expect("decode_next: KV cache full", lora4j_decode_next(e, 1, lg.data()), LORA4J_ESTATE, "full");
  int32_t gen[16], produced = 0;
  expect("generate_greedy: prompt + max_new > max_seq_len",
         lora4j_generate_greedy(e, ids, 6, 7, -1, gen, &produced), LORA4J_EINVAL, "max_seq_len");
  expect_ok("generate_greedy", lora4j_generate_greedy(e, ids, 6, 6, -1, gen, &produced));
  check_true("generate_greedy produced 6", produced == 6);
  // decode_greedy: the tokens of generate_greedy after its first, in whole call, in chunks, and as
  // decode_next with the argmax of each logits; its argument errors; eos; a full cache
  auto argmax = [](const std::vector<float>& v) {  // the first of the largest
    return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
  };
  int32_t first = 0, whole[8] = {}, two[8] = {}, step_by_step[8] = {}, n1 = 0, n2 = 0, n3 = 0;
  expect_ok("decode_start", lora4j_decode_start(e, ids, 6, lg.data()));
  first = argmax(lg);
  expect_ok("decode_greedy 5", lora4j_decode_greedy(e, first, 5, -1, whole, &n1));
  expect_ok("decode_start", lora4j_decode_start(e, ids, 6, lg.data()));
  expect_ok("decode_greedy 2", lora4j_decode_greedy(e, first, 2, -1, two, &n2));
  expect_ok("decode_greedy 3 more", lora4j_decode_greedy(e, two[1], 3, -1, two + 2, &n3));
  expect_ok("decode_start", lora4j_decode_start(e, ids, 6, lg.data()));
  for (int32_t k = 0, t = first; k < 5; ++k) {
    expect_ok("decode_next", lora4j_decode_next(e, t, lg.data()));
    t = step_by_step[k] = argmax(lg);
  }
  check_true("decode_greedy: generate_greedy's tokens, in a single call, in two, and step by step",
             first == gen[0] && n1 == 5 && n2 == 2 && n3 == 3 &&
                 std::equal(whole, whole + 5, gen + 1) && std::equal(two, two + 5, gen + 1) &&
                 std::equal(step_by_step, step_by_step + 5, gen + 1));
  expect("decode_greedy: token out of vocab", lora4j_decode_greedy(e, 37, 1, -1, whole, &n1),
         LORA4J_EINVAL, "vocabulary");
  expect("decode_greedy: count < 0", lora4j_decode_greedy(e, first, -1, -1, whole, &n1),
         LORA4J_EINVAL, "count");
  expect("decode_greedy: null out", lora4j_decode_greedy(e, first, 1, -1, nullptr, &n1),
         LORA4J_EINVAL, "out");
  expect("decode_greedy: null produced", lora4j_decode_greedy(e, first, 1, -1, whole, nullptr),
         LORA4J_EINVAL, "produced");
  expect_ok("decode_start", lora4j_decode_start(e, ids, 6, lg.data()));
  expect_ok("decode_greedy to eos", lora4j_decode_greedy(e, first, 5, gen[3], whole, &n1));
  const int32_t at_eos = int32_t(std::find(gen + 1, gen + 6, gen[3]) - (gen + 1)) + 1;
  check_true("decode_greedy stops after eos_id", n1 == at_eos && whole[n1 - 1] == gen[3]);
  expect_ok("decode_start", lora4j_decode_start(e, ids, 6, lg.data()));
  expect("decode_greedy past the KV cache", lora4j_decode_greedy(e, first, 7, -1, whole, &n1),
         LORA4J_ESTATE, "full");
  // decode_sample: in a single call, in two (the state carried over), and as decode_next with
  // lora4j_sample of each logits, the same tokens and the same final state; its argument errors;
  // a full cache
  {
    const double t = 1.5, p = 0.9;
    const int32_t k = 0;
    int64_t s1 = 7, s2 = 7, s3 = 7;
    int32_t one[5] = {}, parts[5] = {}, steps[5] = {}, m1 = 0, m2 = 0, m3 = 0;
    expect_ok("decode_start", lora4j_decode_start(e, ids, 6, lg.data()));
    expect_ok("decode_sample 5", lora4j_decode_sample(e, 3, 5, -1, t, k, p, &s1, one, &m1));
    expect_ok("decode_start", lora4j_decode_start(e, ids, 6, lg.data()));
    expect_ok("decode_sample 2", lora4j_decode_sample(e, 3, 2, -1, t, k, p, &s2, parts, &m2));
    expect_ok("decode_sample 3 more",
              lora4j_decode_sample(e, parts[1], 3, -1, t, k, p, &s2, parts + 2, &m3));
    expect_ok("decode_start", lora4j_decode_start(e, ids, 6, lg.data()));
    for (int32_t i = 0, tok = 3; i < 5; ++i) {
      expect_ok("decode_next", lora4j_decode_next(e, tok, lg.data()));
      expect_ok("sample", lora4j_sample(lg.data(), 37, t, k, p, &s3, &tok));
      steps[i] = tok;
    }
    check_true("decode_sample: the same tokens and state in one call, in two, step by step",
               m1 == 5 && m2 == 2 && m3 == 3 && std::equal(one, one + 5, parts) &&
                   std::equal(one, one + 5, steps) && s1 == s2 && s2 == s3 && s1 != 7);
    int64_t s = 7;
    int32_t tok = 0;
    expect("decode_sample: temperature 0",
           lora4j_decode_sample(e, 3, 1, -1, 0.0, 0, 1.0, &s, one, &m1), LORA4J_EINVAL,
           "temperature");
    expect("decode_sample: top_p 0", lora4j_decode_sample(e, 3, 1, -1, 1.0, 0, 0.0, &s, one, &m1),
           LORA4J_EINVAL, "top_p");
    expect("decode_sample: top_k < 0",
           lora4j_decode_sample(e, 3, 1, -1, 1.0, -1, 1.0, &s, one, &m1), LORA4J_EINVAL, "top_k");
    expect("decode_sample: null state",
           lora4j_decode_sample(e, 3, 1, -1, 1.0, 0, 1.0, nullptr, one, &m1), LORA4J_EINVAL,
           "state");
    expect("decode_sample: token out of vocab",
           lora4j_decode_sample(e, 37, 1, -1, 1.0, 0, 1.0, &s, one, &m1), LORA4J_EINVAL,
           "vocabulary");
    expect("sample: NaN temperature", lora4j_sample(lg.data(), 37, std::nan(""), 0, 1.0, &s, &tok),
           LORA4J_EINVAL, "temperature");
    expect("sample: n 0", lora4j_sample(lg.data(), 0, 1.0, 0, 1.0, &s, &tok), LORA4J_EINVAL, "n");
    expect("sample: null token", lora4j_sample(lg.data(), 37, 1.0, 0, 1.0, &s, nullptr),
           LORA4J_EINVAL, "token");
    expect_ok("decode_start", lora4j_decode_start(e, ids, 6, lg.data()));
    expect("decode_sample past the KV cache",
           lora4j_decode_sample(e, 3, 7, -1, 1.0, 0, 1.0, &s, one, &m1), LORA4J_ESTATE, "full");
  }
  expect_ok("lora_set", lora4j_lora_set(e, LORA4J_STATE_PARAM, qa, LORA4J_DTYPE_F32, a.data(), 32));
  expect("decode_next after the adapter changed", lora4j_decode_next(e, 1, lg.data()),
         LORA4J_ESTATE, "decode_start");

  // ---- memory, merge ----
  int64_t in_use = 0, peak = 0;
  expect_ok("memory", lora4j_engine_memory(e, &in_use, &peak));
  check_true("memory: 0 < in_use <= peak", in_use > 0 && in_use <= peak,
             std::to_string(in_use) + " / " + std::to_string(peak));
  expect("memory: null peak", lora4j_engine_memory(e, &in_use, nullptr), LORA4J_EINVAL, "peak");
  expect_ok("lora_merge", lora4j_lora_merge(e));
  expect_ok("lora_count after merge", lora4j_lora_count(e, &count));
  check_true("merge detaches the adapter", count == 0);
  lora4j_engine_destroy(e);
  return testutil::finish("test_api_errors");
}
