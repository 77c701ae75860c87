// The CUDA engine against the CPU engine at the widths users train: Mistral-7B v0.3 (hidden 4096,
// MLP 14336, 32 heads, 8 KV heads, head_dim 128, vocab 32768), v0.1 (vocab 32000, sliding
// window), and a Mistral-NeMo-like family (hidden 5120, vocab 131072), with 1-2 layers, random
// weights (std 0.02, as transformers initialises them), and random non-zero adapters (r 16,
// alpha 32) on all seven projections. The CPU engine computes in fp32 and matches Hugging Face +
// PEFT at these widths (within 1.5e-5 per LoRA gradient), so it is the reference here.
//
// Compared, for every case and both recompute modes: the loss, the logits of the real tokens,
// and EVERY LoRA gradient tensor (norm-wise relative error, reported per kind as the worst over
// layers, with the ratio of the gradient norms). The bounds are set from what Hugging Face's own
// bf16 autocast gets at these shapes (2.2e-2 to 3.9e-2 per LoRA gradient on the 2-layer 7B-width
// model): a gradient may be off by at most 5e-2, i.e. no more than about 1.3x that.
//
// Cases: seq 1024 x 2 rows (2 layers), padding, packed rows, sliding window, seq 4096, and the
// NeMo-like widths. With LORA4J_REALWIDTH_STEPS=N (run by scripts/gpu/run.sh) it then trains N
// AdamW steps of the 2-layer 7B-width model on both engines and prints loss and gradient norm
// side by side.
// Skips (exit 77) without a GPU; fails if the CUDA backend does not load.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "lora4j.h"
#include "model/op_bench.h"  // bench_uniform: a seeded hash, the same numbers everywhere

namespace {

const char* kSuite = "realwidth";
constexpr double kLossTol = 1.5e-4, kLogitsTol = 2e-2, kGradTol = 5e-2;

#define API(call)                                                                   \
  do {                                                                              \
    int s_ = (call);                                                                \
    if (s_ != LORA4J_OK) {                                                          \
      std::printf("%s failed (%d): %s\n", #call, s_, lora4j_last_error());          \
      std::exit(2);                                                                 \
    }                                                                               \
  } while (0)

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

lora4j_model_config mistral7b_v03(int layers) {
  lora4j_model_config c{};
  c.vocab_size = 32768;
  c.hidden_size = 4096;
  c.intermediate_size = 14336;
  c.num_layers = layers;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 128;
  c.sliding_window = 0;
  c.max_seq_len = 32768;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 1e6;
  return c;
}
// v0.1: vocab 32000, rope 1e4, sliding window. The checkpoint's window is 4096; here it is 1024
// so that a 2048-token row actually crosses it.
lora4j_model_config mistral7b_v01_window(int layers, int window) {
  lora4j_model_config c = mistral7b_v03(layers);
  c.vocab_size = 32000;
  c.rope_theta = 1e4;
  c.sliding_window = window;
  return c;
}
lora4j_model_config nemo_like(int layers) {
  lora4j_model_config c = mistral7b_v03(layers);
  c.vocab_size = 131072;
  c.hidden_size = 5120;
  return c;
}

struct WeightDef {
  std::string name;
  int64_t numel;
  float std;     // 0: norm weight (1 + small noise)
};
std::vector<WeightDef> weight_defs(const lora4j_model_config& c) {
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
std::vector<uint16_t> random_bf16(uint64_t seed, uint32_t tensor, int64_t n, float std) {
  std::vector<uint16_t> out(static_cast<size_t>(n));
  const float a = std * std::sqrt(3.f);
  for (int64_t i = 0; i < n; ++i) {
    float u = lora4j::bench_uniform(seed, tensor, uint64_t(i));
    out[size_t(i)] = ct::to_bf16_bits(std > 0 ? a * u : 1.f + 0.1f * u);
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
Batch make_batch(uint64_t seed, int B, int S, int vocab, Shape shape) {
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

lora4j_engine* create(const lora4j_model_config& c, int device, int recompute) {
  lora4j_engine_options o{};
  o.device = device;
  o.device_index = 0;
  o.recompute = recompute;
  lora4j_engine* e = nullptr;
  API(lora4j_engine_create(&c, &o, &e));
  return e;
}

// Same random weights and adapter on every engine.
void load_all(const lora4j_model_config& c, const std::vector<lora4j_engine*>& engines,
              uint64_t seed) {
  std::vector<WeightDef> defs = weight_defs(c);
  for (size_t t = 0; t < defs.size(); ++t) {
    std::vector<uint16_t> w = random_bf16(seed, uint32_t(t), defs[t].numel, defs[t].std);
    for (lora4j_engine* e : engines)
      API(lora4j_engine_set_weight(e, defs[t].name.c_str(), LORA4J_DTYPE_BF16, w.data(),
                                   defs[t].numel));
  }
  const int r = 16;
  const float scale = 32.f / float(r);
  for (lora4j_engine* e : engines) API(lora4j_lora_attach(e, r, scale, 127u));
  int32_t count = 0;
  API(lora4j_lora_count(engines[0], &count));
  for (int32_t i = 0; i < count; ++i) {
    char name[256];
    int64_t rows, cols;
    API(lora4j_lora_info(engines[0], i, name, sizeof name, &rows, &cols));
    // A: PEFT's Kaiming-uniform bound 1/sqrt(in); B: non-zero, std 0.02 (a trained adapter's size)
    bool is_a = std::string(name).find("lora_A") != std::string::npos;
    float bound = is_a ? 1.f / std::sqrt(float(cols)) : 0.02f * std::sqrt(3.f);
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (size_t k = 0; k < v.size(); ++k)
      v[k] = bound * lora4j::bench_uniform(seed + 1, uint32_t(1000 + i), k);
    for (lora4j_engine* e : engines)
      API(lora4j_lora_set(e, LORA4J_STATE_PARAM, name, LORA4J_DTYPE_F32, v.data(),
                          int64_t(v.size())));
  }
}

struct Result {
  double loss = 0;
  int64_t tokens = 0;
  std::vector<float> logits;  // real tokens only
  std::map<std::string, std::vector<float>> grads;
  std::vector<std::string> order;
};

Result run(lora4j_engine* e, const Batch& b, const lora4j_model_config& c) {
  Result r;
  lora4j_batch v = b.view();
  const int64_t n = int64_t(b.B) * b.S, V = c.vocab_size;
  std::vector<float> all(static_cast<size_t>(n * V));
  API(lora4j_logits(e, &v, all.data(), n * V));
  for (int64_t i = 0; i < n; ++i)
    if (b.real(i))
      r.logits.insert(r.logits.end(), all.begin() + i * V, all.begin() + (i + 1) * V);
  int64_t counted = 0;
  for (int row = 0; row < b.B; ++row)
    for (int t = 1; t < b.S; ++t)
      if (b.labels[size_t(row) * size_t(b.S) + size_t(t)] != -100) ++counted;
  API(lora4j_zero_grad(e));
  double sum = 0;
  API(lora4j_forward_backward(e, &v, float(1.0 / double(counted)), &sum, &r.tokens));
  r.loss = sum / double(r.tokens);
  int32_t count = 0;
  API(lora4j_lora_count(e, &count));
  for (int32_t i = 0; i < count; ++i) {
    char name[256];
    int64_t rows, cols;
    API(lora4j_lora_info(e, i, name, sizeof name, &rows, &cols));
    std::vector<float> g(static_cast<size_t>(rows * cols));
    API(lora4j_lora_get(e, LORA4J_STATE_GRAD, name, g.data(), rows * cols));
    r.grads[name] = std::move(g);
    r.order.push_back(name);
  }
  return r;
}

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s);
}

// "base_model.model.model.layers.3.mlp.down_proj.lora_B.weight" -> "down_proj.lora_B"
std::string kind_of(const std::string& name) {
  size_t lora = name.find(".lora_");
  size_t proj = name.rfind('.', lora - 1);
  return name.substr(proj + 1, lora - proj - 1) + name.substr(lora, 7);
}

void compare(const std::string& tag, const Result& got, const Result& ref) {
  ct::report_bool(kSuite, tag + " counts the same label tokens", got.tokens == ref.tokens,
                  std::to_string(got.tokens) + " vs " + std::to_string(ref.tokens));
  std::printf("  %s loss cuda %.6f cpu %.6f\n", tag.c_str(), got.loss, ref.loss);
  ct::report(kSuite, tag + " loss", std::fabs(got.loss - ref.loss) / std::fabs(ref.loss), kLossTol);
  ct::report(kSuite, tag + " logits", ct::rel_err(got.logits, ref.logits), kLogitsTol);
  std::map<std::string, std::pair<double, double>> worst;  // kind -> (err, norm ratio there)
  std::vector<std::string> kinds;
  for (const std::string& name : ref.order) {
    auto it = got.grads.find(name);
    double err = it == got.grads.end() ? NAN : ct::rel_err(it->second, ref.grads.at(name));
    double ratio = it == got.grads.end() ? NAN : norm(it->second) / norm(ref.grads.at(name));
    std::string k = kind_of(name);
    bool fresh = !worst.count(k);
    if (fresh) kinds.push_back(k);
    auto& w = worst[k];
    if (fresh || std::isnan(err) || err > w.first) w = {err, ratio};
  }
  for (const std::string& k : kinds)
    ct::report(kSuite, tag + " grad " + k + " (norm ratio " +
                           std::to_string(worst[k].second).substr(0, 5) + ")",
               worst[k].first, kGradTol);
}

struct Case {
  std::string name;
  lora4j_model_config cfg;
  int B, S;
  Shape shape;
};

void run_case(const Case& k) {
  auto t0 = std::chrono::steady_clock::now();
  lora4j_engine* cpu = create(k.cfg, LORA4J_DEVICE_CPU, LORA4J_RECOMPUTE_NONE);
  lora4j_engine* none = create(k.cfg, LORA4J_DEVICE_CUDA, LORA4J_RECOMPUTE_NONE);
  lora4j_engine* layer = create(k.cfg, LORA4J_DEVICE_CUDA, LORA4J_RECOMPUTE_LAYER);
  load_all(k.cfg, {cpu, none, layer}, 42);
  Batch b = make_batch(7, k.B, k.S, k.cfg.vocab_size, k.shape);
  auto t1 = std::chrono::steady_clock::now();
  Result ref = run(cpu, b, k.cfg);
  double cpu_s = seconds_since(t1);
  Result g_none = run(none, b, k.cfg);
  Result g_layer = run(layer, b, k.cfg);
  std::printf("  %s: %d x %d tokens, cpu reference %.1f s, total %.1f s\n", k.name.c_str(), k.B,
              k.S, cpu_s, seconds_since(t0));
  compare(k.name + " recompute none", g_none, ref);
  compare(k.name + " recompute layer", g_layer, ref);
  API(lora4j_engine_destroy(cpu));
  API(lora4j_engine_destroy(none));
  API(lora4j_engine_destroy(layer));
}

// N AdamW steps of the 2-layer 7B-width model on both engines, from the same weights and
// adapter, on a fixed set of four batches visited in turn; loss and gradient norm side by side.
void trajectory(int steps) {
  lora4j_model_config c = mistral7b_v03(2);
  lora4j_engine* cpu = create(c, LORA4J_DEVICE_CPU, LORA4J_RECOMPUTE_NONE);
  lora4j_engine* gpu = create(c, LORA4J_DEVICE_CUDA, LORA4J_RECOMPUTE_NONE);
  load_all(c, {cpu, gpu}, 43);
  std::vector<Batch> data;
  for (int i = 0; i < 4; ++i) data.push_back(make_batch(100 + uint64_t(i), 1, 128, c.vocab_size, Shape::PLAIN));
  lora4j_adamw o{};
  o.lr = 1e-3f;
  o.beta1 = 0.9f;
  o.beta2 = 0.999f;
  o.eps = 1e-8f;
  o.weight_decay = 0.01f;
  o.max_grad_norm = 1.0f;
  std::vector<float> lc, lg, nc, ng;
  std::printf("  trajectory: 2-layer 7B widths, 1 x 128 tokens, AdamW lr 1e-3, clip 1.0\n");
  std::printf("  %4s %12s %12s %14s %14s\n", "step", "loss cpu", "loss cuda", "gnorm cpu", "gnorm cuda");
  for (int s = 0; s < steps; ++s) {
    lora4j_batch v = data[size_t(s) % data.size()].view();
    double l1 = 0, l2 = 0;
    lora4j_step_result r1{}, r2{};
    API(lora4j_train_step(cpu, &v, &o, &l1, &r1));
    API(lora4j_train_step(gpu, &v, &o, &l2, &r2));
    std::printf("  %4d %12.6f %12.6f %14.6e %14.6e\n", s + 1, l1, l2, r1.grad_norm, r2.grad_norm);
    lc.push_back(float(l1));
    lg.push_back(float(l2));
    nc.push_back(float(r1.grad_norm));
    ng.push_back(float(r2.grad_norm));
  }
  ct::report(kSuite, "trajectory " + std::to_string(steps) + " steps: losses", ct::rel_err(lg, lc), kLossTol);
  ct::report(kSuite, "trajectory " + std::to_string(steps) + " steps: grad norms", ct::rel_err(ng, nc), kGradTol);
  API(lora4j_engine_destroy(cpu));
  API(lora4j_engine_destroy(gpu));
}

}  // namespace

int main() {
  ct::skip_without_gpu();
  int32_t avail = 0;
  char reason[512];
  API(lora4j_cuda_available(&avail, reason, sizeof reason));
  if (!avail) {
    std::printf("[%s] CUDA backend not available: %s  FAIL\n", kSuite, reason);
    return 1;
  }
  std::vector<Case> cases = {
      {"7b-v0.3 2L 2x1024", mistral7b_v03(2), 2, 1024, Shape::PLAIN},
      {"7b-v0.3 1L 3x512 padded", mistral7b_v03(1), 3, 512, Shape::PADDED},
      {"7b-v0.3 1L 2x512 packed", mistral7b_v03(1), 2, 512, Shape::PACKED},
      {"7b-v0.1 1L 1x2048 window 1024", mistral7b_v01_window(1, 1024), 1, 2048, Shape::PLAIN},
      {"7b-v0.3 1L 1x4096", mistral7b_v03(1), 1, 4096, Shape::PLAIN},
      {"nemo-like 1L 1x512", nemo_like(1), 1, 512, Shape::PLAIN},
  };
  const char* only = std::getenv("LORA4J_REALWIDTH_CASES");  // substring filter
  for (const Case& k : cases)
    if (!only || k.name.find(only) != std::string::npos) run_case(k);
  const char* steps = std::getenv("LORA4J_REALWIDTH_STEPS");
  if (steps && std::atoi(steps) > 0) trajectory(std::atoi(steps));
  std::printf("test_realwidth_cuda: %d failure(s)\n", ct::failures());
  return ct::failures() == 0 ? 0 : 1;
}
