// End-to-end CUDA engine against the Hugging Face + PEFT golden references (float64) in
// java/src/test/resources/hf-reference, through the C API of lora4j.h exactly as Java calls it:
// base and LoRA loss and logits, every LoRA gradient (both recompute modes), three AdamW steps,
// greedy generation, merge. Then the error paths: a bad device index, an absurd batch (out of
// memory, engine still usable), and 100 create/destroy cycles that must leave device memory
// where it started.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "cuda_test_util.h"
#include "lora4j.h"
#include "lora_state.h"
#include "safetensors_reader.h"

using testutil::lora_state;

namespace {

std::string g_root;

// Bounds at most ~5x what the H200 measured (benchmarks/results/2026-11-30-realwidth/engine.txt):
// loss 2.5e-4, logits 1.15e-2, hidden states 8.4e-3, LoRA gradients 2.5e-2, AdamW losses 5.7e-4
// (norm-wise over the three steps), grad norms 7.8e-3, final params 4.2e-2.
constexpr double kLossTol = 1.25e-3;

#define API(call)                                                          \
  do {                                                                     \
    int s_ = (call);                                                       \
    if (s_ != LORA4J_OK) {                                                 \
      std::printf("%s failed (%d): %s\n", #call, s_, lora4j_last_error()); \
      std::exit(2);                                                        \
    }                                                                      \
  } while (0)

struct Golden {
  std::string name, dir;
  testutil::Json ref;
  lora4j_model_config cfg{};
  std::shared_ptr<testutil::Safetensors> t;  // reference.safetensors
  std::vector<int32_t> ids, mask, labels;
  int B = 0, S = 0;
};

Golden load_case(const std::string& name) {
  Golden g;
  g.name = name;
  g.dir = g_root + "/" + name;
  g.ref = testutil::read_json(g.dir + "/reference.json");
  const testutil::Json& c = g.ref["config"];
  g.cfg.vocab_size = int(c["vocab_size"].num);
  g.cfg.hidden_size = int(c["hidden_size"].num);
  g.cfg.intermediate_size = int(c["intermediate_size"].num);
  g.cfg.num_layers = int(c["num_hidden_layers"].num);
  g.cfg.num_heads = int(c["num_attention_heads"].num);
  g.cfg.num_kv_heads = int(c["num_key_value_heads"].num);
  g.cfg.head_dim = c.has("head_dim") ? int(c["head_dim"].num) : g.cfg.hidden_size / g.cfg.num_heads;
  g.cfg.sliding_window = c.has("sliding_window") ? int(c["sliding_window"].num) : 0;
  g.cfg.max_seq_len = int(c["max_position_embeddings"].num);
  g.cfg.rms_norm_eps = float(c["rms_norm_eps"].num);
  g.cfg.rope_theta =
      c.has("rope_theta") ? c["rope_theta"].num : c["rope_parameters"]["rope_theta"].num;
  g.t = std::make_shared<testutil::Safetensors>(g.dir + "/reference.safetensors");
  g.ids = g.t->get("input_ids").as_int32();
  g.mask = g.t->get("attention_mask").as_int32();
  g.labels = g.t->get("labels").as_int32();
  g.B = int(g.t->get("input_ids").shape[0]);
  g.S = int(g.t->get("input_ids").shape[1]);
  return g;
}

lora4j_engine* make_engine(const Golden& g, int recompute, const lora4j_model_config* cfg = nullptr,
                           int device = LORA4J_DEVICE_CUDA) {
  lora4j_engine_options o{};
  o.device = device;
  o.device_index = 0;
  o.recompute = recompute;
  lora4j_engine* e = nullptr;
  API(lora4j_engine_create(cfg ? cfg : &g.cfg, &o, &e));
  testutil::Json idx = testutil::read_json(g.dir + "/model/model.safetensors.index.json");
  std::set<std::string> shards;
  for (auto& kv : idx["weight_map"].obj) shards.insert(kv.second.str);
  for (const std::string& s : shards) {
    testutil::Safetensors st(g.dir + "/model/" + s);
    for (const std::string& name : st.names()) {
      const testutil::Tensor& t = st.get(name);
      int dt = t.dtype == "BF16" ? LORA4J_DTYPE_BF16 : LORA4J_DTYPE_F32;
      if (t.dtype != "BF16" && t.dtype != "F32") {
        std::printf("dtype %s\n", t.dtype.c_str());
        std::exit(2);
      }
      API(lora4j_engine_set_weight(e, name.c_str(), dt, t.data, t.numel()));
    }
  }
  return e;
}

void load_adapter(const Golden& g, lora4j_engine* e, const std::string& adapter) {
  testutil::Safetensors st(g.dir + "/" + adapter + "/adapter_model.safetensors");
  for (const std::string& name : st.names()) {
    std::vector<float> v = st.get(name).as_float();
    API(lora4j_lora_set(e, LORA4J_STATE_PARAM, name.c_str(), LORA4J_DTYPE_F32, v.data(),
                        int64_t(v.size())));
  }
}

void attach(const Golden& g, lora4j_engine* e, const std::string& adapter) {
  const testutil::Json& l = g.ref["lora"];
  int r = int(l["r"].num);
  double alpha = l["alpha"].num;
  float scale = float(l["use_rslora"].b ? alpha / std::sqrt(double(r)) : alpha / r);
  static const char* names[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                "gate_proj", "up_proj", "down_proj"};
  uint32_t targets = 0;
  for (auto& t : l["targets"].arr)
    for (int i = 0; i < 7; ++i)
      if (t.str == names[i]) targets |= 1u << i;
  API(lora4j_lora_attach(e, r, scale, targets));
  load_adapter(g, e, adapter);
}

lora4j_batch batch_of(Golden& g) {
  lora4j_batch b{};
  b.batch = g.B;
  b.seq = g.S;
  b.input_ids = g.ids.data();
  b.attention_mask = g.mask.data();
  b.labels = g.labels.data();
  return b;
}

// The rows of v ([n, V] laid out row by row) where attention_mask == 1 (padded positions are not
// meaningful).
std::vector<float> masked_rows(const Golden& g, const std::vector<float>& v) {
  const int64_t V = g.cfg.vocab_size, n = int64_t(g.B) * g.S;
  std::vector<float> a;
  for (int64_t i = 0; i < n; ++i)
    if (g.mask[static_cast<size_t>(i)])
      a.insert(a.end(), v.begin() + i * V, v.begin() + (i + 1) * V);
  return a;
}
std::vector<float> logits_of(Golden& g, lora4j_engine* e) {
  lora4j_batch b = batch_of(g);
  const int64_t V = g.cfg.vocab_size, n = int64_t(g.B) * g.S;
  std::vector<float> out(static_cast<size_t>(n * V));
  API(lora4j_logits(e, &b, out.data(), n * V));
  return masked_rows(g, out);
}
double logits_err(Golden& g, lora4j_engine* e, const std::string& key) {
  return ct::rel_err(logits_of(g, e), masked_rows(g, g.t->get(key).as_float()));
}

double loss_err(Golden& g, lora4j_engine* e, const std::string& key) {
  lora4j_batch b = batch_of(g);
  double sum = 0;
  int64_t tokens = 0;
  API(lora4j_eval_loss(e, &b, &sum, &tokens));
  double ref = g.t->get(key).as_double()[0];
  std::printf("  %s %s: lora4j %.6f  reference %.6f\n", g.name.c_str(), key.c_str(), sum / tokens,
              ref);
  return std::fabs(sum / double(tokens) - ref) / std::fabs(ref);
}

// every LoRA gradient; prints each, returns the largest relative error
// all (nullable): receives every LoRA gradient, concatenated in lora_state's order.
double grads_err(Golden& g, lora4j_engine* e, const char* mode, std::vector<float>* all = nullptr) {
  lora4j_batch b = batch_of(g);
  int64_t n = 0;
  for (int r = 0; r < g.B; ++r)
    for (int t = 1; t < g.S; ++t)
      if (g.labels[static_cast<size_t>(r * g.S + t)] != -100) ++n;
  API(lora4j_zero_grad(e));
  double sum = 0;
  int64_t tokens = 0;
  API(lora4j_forward_backward(e, &b, float(1.0 / double(n)), &sum, &tokens));
  const auto grads = lora_state(e, LORA4J_STATE_GRAD);
  double worst = grads.empty() ? NAN : 0;  // no gradient read: nothing was checked
  if (all) all->clear();
  for (const auto& [name, got] : grads) {
    if (all) all->insert(all->end(), got.begin(), got.end());
    std::string key = "grad." + name;
    key = key.substr(0, key.size() - 7) + ".default.weight";
    double err = ct::rel_err(got, g.t->get(key).as_float());
    std::printf("  %s %s grad %s err=%.3e\n", g.name.c_str(), mode, name.c_str(), err);
    if (!(err <= worst)) worst = std::isnan(err) ? NAN : std::max(worst, err);
  }
  return worst;
}

// folded: with LORA4J_LORA_FOLD=1, so that q, k, v and gate, up fold their LoRA into the frozen
// GEMM at these small widths too (by default the fold waits for r to be a small part of in).
// qk_lo: LORA4J_QK_LO, the precision of the q/k GEMMs' input: null for the default (fp16),
// "e4m3" or "bf16" for the bf16 input plus its rounding residue in e4m3 (sm_89 on) or bf16.
// off: an engine switch set to 0 for the whole case (read at each engine's creation); or, with
// value, set to that value (LORA4J_RESIDUAL=bf16).
void golden(const std::string& case_name, bool folded = false, const char* qk_lo = nullptr,
            const char* off = nullptr, const char* value = "0") {
  Golden g = load_case(case_name);
  const std::string name = case_name + (folded ? " (LoRA folded)" : "") +
                           (qk_lo ? std::string(" (q/k residue ") + qk_lo + ")" : "") +
                           (off ? std::string(" (") + off + "=" + value + ")" : "");
  if (folded) setenv("LORA4J_LORA_FOLD", "1", 1);  // read at each attach
  if (qk_lo) setenv("LORA4J_QK_LO", qk_lo, 1);     // read at each engine's creation
  if (off) setenv(off, value, 1);
  const char* S = "golden";
  lora4j_engine* e = make_engine(g, LORA4J_RECOMPUTE_NONE);
  ct::report(S, name + " base loss", loss_err(g, e, "base.loss"), kLossTol);
  ct::report(S, name + " base logits", logits_err(g, e, "base.logits"), 2e-2);
  {
    // hidden states: index 0 embedding, k = output of layer k, last after the final norm
    lora4j_batch b = batch_of(g);
    const int64_t L = g.cfg.num_layers, n = int64_t(g.B) * g.S, d = g.cfg.hidden_size;
    std::vector<float> hs(static_cast<size_t>((L + 1) * n * d));
    API(lora4j_hidden_states(e, &b, hs.data(), int64_t(hs.size())));
    double worst = 0;
    for (int64_t l = 0; l <= L; ++l) {
      std::vector<float> ref = g.t->get("base.hidden." + std::to_string(l)).as_float(), a, r;
      for (int64_t i = 0; i < n; ++i)
        if (g.mask[static_cast<size_t>(i)])
          for (int64_t j = 0; j < d; ++j) {
            a.push_back(hs[static_cast<size_t>(l * n * d + i * d + j)]);
            r.push_back(ref[static_cast<size_t>(i * d + j)]);
          }
      double err = ct::rel_err(a, r);
      std::printf("  %s hidden state %lld err=%.3e\n", name.c_str(), (long long)l, err);
      worst = std::isnan(err) ? NAN : std::max(worst, err);
    }
    ct::report(S, name + " base hidden states (max over layers)", worst, 2e-2);
  }
  attach(g, e, "adapter_init");
  ct::report(S, name + " lora loss", loss_err(g, e, "lora.loss"), kLossTol);
  ct::report(S, name + " lora logits", logits_err(g, e, "lora.logits"), 2e-2);
  std::vector<float> grads_none;
  ct::report(S, name + " lora grads (max over tensors), recompute none",
             grads_err(g, e, "none", &grads_none), 3e-2);

  // three AdamW steps from adapter_init
  attach(g, e, "adapter_init");
  const testutil::Json& ad = g.ref["adamw"];
  lora4j_adamw opt{};
  opt.lr = float(ad["lr"].num);
  opt.beta1 = float(ad["betas"].arr[0].num);
  opt.beta2 = float(ad["betas"].arr[1].num);
  opt.eps = float(ad["eps"].num);
  opt.weight_decay = float(ad["weight_decay"].num);
  opt.max_grad_norm = float(ad["clip_norm"].num);
  std::vector<double> ref_losses = g.t->get("adamw.losses").as_double(),
                      ref_norms = g.t->get("adamw.grad_norms").as_double();
  std::vector<float> got_l, ref_l, got_n, ref_n;
  lora4j_batch b = batch_of(g);
  for (size_t s = 0; s < ref_losses.size(); ++s) {
    double loss = 0;
    lora4j_step_result res{};
    API(lora4j_train_step(e, &b, &opt, &loss, &res));
    std::printf("  %s adamw step %zu: loss %.6f (ref %.6f) grad_norm %.6f (ref %.6f) applied %d\n",
                name.c_str(), s, loss, ref_losses[s], res.grad_norm, ref_norms[s], res.applied);
    got_l.push_back(float(loss));
    ref_l.push_back(float(ref_losses[s]));
    got_n.push_back(float(res.grad_norm));
    ref_n.push_back(float(ref_norms[s]));
  }
  ct::report(S, name + " adamw 3 steps losses", ct::rel_err(got_l, ref_l), 3e-3);
  ct::report(S, name + " adamw 3 steps grad norms", ct::rel_err(got_n, ref_n), 3e-2);
  {
    // each step's norm on its own, as the Java GoldenTest checks it (the sixth session's
    // right-padding branch passed the line above and failed this on hd128's third step)
    double worst = 0;
    for (size_t s = 0; s < got_n.size(); ++s)
      worst = ct::worst_of(worst, std::fabs(double(got_n[s]) - ref_n[s]) / std::fabs(ref_n[s]));
    ct::report(S, name + " adamw grad norm, worst step", worst, 3e-2);
  }
  {
    std::vector<float> a, r;
    for (const auto& [nm, got] : lora_state(e, LORA4J_STATE_PARAM)) {
      std::string key = "adamw.final." + nm.substr(0, nm.size() - 7) + ".default.weight";
      if (!g.t->has(key)) key = "adamw.final." + nm;
      std::vector<float> ref = g.t->get(key).as_float();
      a.insert(a.end(), got.begin(), got.end());
      r.insert(r.end(), ref.begin(), ref.end());
    }
    // AdamW's first steps move each element by about lr * sign(g): elements whose gradient is
    // near zero flip with bf16 noise, so the parameters are held to a looser bound than losses.
    ct::report(S, name + " adamw 3 steps final params", ct::rel_err(a, r), 1e-1);
  }

  // greedy generation and merge with adapter_trained
  attach(g, e, "adapter_trained");
  std::vector<int32_t> prompt = g.t->get("generate.prompt").as_int32(),
                       full = g.t->get("generate.output").as_int32();
  int32_t max_new = int32_t(full.size() - prompt.size());
  std::vector<int32_t> out(static_cast<size_t>(max_new));
  int32_t produced = 0;
  API(lora4j_generate_greedy(e, prompt.data(), int32_t(prompt.size()), max_new, -1, out.data(),
                             &produced));
  int same = 0;
  std::string gs, rs;
  for (int32_t i = 0; i < max_new; ++i) {
    int32_t ref = full[prompt.size() + static_cast<size_t>(i)];
    if (i < produced && out[static_cast<size_t>(i)] == ref) ++same;
    gs += std::to_string(i < produced ? out[static_cast<size_t>(i)] : -1) + " ";
    rs += std::to_string(ref) + " ";
  }
  std::printf("  %s generate: lora4j [%s] reference [%s]\n", name.c_str(), gs.c_str(), rs.c_str());
  std::string detail = std::to_string(same) + "/" + std::to_string(max_new) + " tokens equal";
  // A next token whose top two logits are closer than the engine's own logit error may go either
  // way, and the rest of the sequence with it (tiny's third token: top two 0.009 apart in fp32;
  // hd128's tenth: 0.071 apart, flipped by the fp16 q/k input where the bf16-plus-residue input
  // had not). Both engines' logits, teacher-forced on the reference's tokens, give each step's
  // tie margin: twice the largest difference between this engine's logits and the CPU engine's
  // (fp32) at that step. Held: the reference's tokens up to the first step whose CPU top two are
  // within that margin, and at that step one of the two.
  {
    lora4j_engine* cpu = make_engine(g, LORA4J_RECOMPUTE_NONE, nullptr, LORA4J_DEVICE_CPU);
    attach(g, cpu, "adapter_trained");
    const int64_t V = g.cfg.vocab_size, T = int64_t(full.size()) - 1;
    std::vector<int32_t> ids(full.begin(), full.end() - 1), ones(static_cast<size_t>(T), 1);
    lora4j_batch pb{};
    pb.batch = 1;
    pb.seq = int32_t(T);
    pb.input_ids = ids.data();
    pb.attention_mask = ones.data();
    std::vector<float> lc(static_cast<size_t>(T * V)), lg(static_cast<size_t>(T * V));
    API(lora4j_logits(cpu, &pb, lc.data(), int64_t(lc.size())));
    API(lora4j_logits(e, &pb, lg.data(), int64_t(lg.size())));
    API(lora4j_engine_destroy(cpu));
    int32_t tie = max_new, tie_a = -1, tie_b = -1;
    float tie_gap = 0.f, tie_margin = 0.f;
    for (int32_t i = 0; i < max_new && tie == max_new; ++i) {
      const int64_t k = int64_t(prompt.size()) + i - 1;
      const float *c = lc.data() + k * V, *q = lg.data() + k * V;
      int32_t a = 0, b2 = -1;
      float margin = 0.f;
      for (int32_t v = 0; v < V; ++v) margin = std::max(margin, 2.f * std::fabs(q[v] - c[v]));
      for (int32_t v = 1; v < V; ++v)
        if (c[v] > c[a])
          b2 = a, a = v;
        else if (b2 < 0 || c[v] > c[b2])
          b2 = v;
      if (c[a] - c[b2] <= margin)
        tie = i, tie_a = a, tie_b = b2, tie_gap = c[a] - c[b2], tie_margin = margin;
    }
    bool ok = produced == max_new;
    for (int32_t i = 0; i < max_new && i < tie; ++i)
      ok = ok && out[static_cast<size_t>(i)] == full[prompt.size() + static_cast<size_t>(i)];
    if (tie < max_new)
      ok = ok && (out[static_cast<size_t>(tie)] == tie_a || out[static_cast<size_t>(tie)] == tie_b);
    char tie_text[160];
    std::snprintf(tie_text, sizeof tie_text,
                  ", first near tie at token %d (top two %.4f apart, "
                  "margin %.4f)",
                  tie, tie_gap, tie_margin);
    ct::report_bool(S, name + " greedy generation identical up to the first near tie", ok,
                    detail + (tie < max_new ? std::string(tie_text) : ", no near tie"));
  }
  API(lora4j_lora_merge(e));
  ct::report(S, name + " merged logits", logits_err(g, e, "merged.logits"), 2e-2);
  int64_t in_use = 0, peak = 0;
  API(lora4j_engine_memory(e, &in_use, &peak));
  std::printf("  %s device memory in use %lld peak %lld bytes\n", name.c_str(), (long long)in_use,
              (long long)peak);
  API(lora4j_engine_destroy(e));

  // recompute LAYER gives the same gradients; and SELECTIVE (the attention output and lse kept,
  // delta from the bf16 output); and ATTENTION (q, k, v kept too: the re-run skips their
  // projections and RoPE). With the residual stream in bf16 (LORA4J_RESIDUAL=bf16) the checkpoint
  // of a layer's input is the stream itself, so each re-run forms the activations the forward
  // formed: the gradients are recompute none's bits.
  const bool exact_ck =
      off && std::strcmp(off, "LORA4J_RESIDUAL") == 0 && std::strcmp(value, "bf16") == 0;
  const std::pair<int, const char*> modes[] = {{LORA4J_RECOMPUTE_LAYER, "layer"},
                                               {LORA4J_RECOMPUTE_SELECTIVE, "selective"},
                                               {LORA4J_RECOMPUTE_ATTENTION, "attention"}};
  for (const auto& [mode, label] : modes) {
    e = make_engine(g, mode);
    attach(g, e, "adapter_init");
    std::vector<float> grads;
    ct::report(S, name + " lora grads (max over tensors), recompute " + label,
               grads_err(g, e, label, &grads), 3e-2);
    if (exact_ck)
      ct::report_bool(
          S, name + " recompute " + label + ": recompute none's gradient bits",
          grads.size() == grads_none.size() &&
              std::memcmp(grads.data(), grads_none.data(), grads.size() * sizeof(float)) == 0,
          std::to_string(grads.size()) + " elements");
    API(lora4j_engine_destroy(e));
  }
  unsetenv("LORA4J_LORA_FOLD");
  unsetenv("LORA4J_QK_LO");
  if (off) unsetenv(off);
}

// LORA4J_RESIDUAL other than fp32 or bf16: the engine is not made, and the error names the
// variable and its value.
void residual_switch_refuses() {
  Golden g = load_case("tiny");
  setenv("LORA4J_RESIDUAL", "fp16", 1);
  lora4j_engine_options o{};
  o.device = LORA4J_DEVICE_CUDA;
  lora4j_engine* e = nullptr;
  const int rc = lora4j_engine_create(&g.cfg, &o, &e);
  const std::string msg = rc == LORA4J_OK ? "" : lora4j_last_error();
  unsetenv("LORA4J_RESIDUAL");
  if (e) lora4j_engine_destroy(e);
  ct::report_bool("golden", "LORA4J_RESIDUAL=fp16 refused, naming the variable",
                  rc == LORA4J_EINVAL && msg.find("LORA4J_RESIDUAL is 'fp16'") != std::string::npos,
                  "rc " + std::to_string(rc) + ": " + msg);
}

// Packed rows: two examples packed into one row (segment_ids, restarting position_ids) must
// give the loss and the LoRA gradients of the same two examples in separate (padded) rows.
void packing() {
  const char* S = "packing";
  Golden g = load_case("tiny");
  lora4j_engine* e = make_engine(g, LORA4J_RECOMPUTE_NONE);
  attach(g, e, "adapter_init");
  const int la = 10, lb = 12, L = lb;
  std::vector<int32_t> a_ids(g.ids.begin() + 2 * g.S, g.ids.begin() + 2 * g.S + la);
  std::vector<int32_t> b_ids(g.ids.begin(), g.ids.begin() + lb);
  std::vector<int32_t> a_lab(a_ids), b_lab(b_ids);
  a_lab[0] = -100;  // a label at position 0 is never used (nothing predicts it)
  b_lab[0] = -100;
  // packed: one row [a | b]
  std::vector<int32_t> p_ids, p_lab, p_pos, p_seg;
  for (int i = 0; i < la; ++i) {
    p_ids.push_back(a_ids[i]);
    p_lab.push_back(a_lab[i]);
    p_pos.push_back(i);
    p_seg.push_back(0);
  }
  for (int i = 0; i < lb; ++i) {
    p_ids.push_back(b_ids[i]);
    p_lab.push_back(b_lab[i]);
    p_pos.push_back(i);
    p_seg.push_back(1);
  }
  // separate: two rows of L, a right-padded
  std::vector<int32_t> u_ids(2 * L, 0), u_lab(2 * L, -100), u_mask(2 * L, 0);
  for (int i = 0; i < la; ++i) {
    u_ids[i] = a_ids[i];
    u_lab[i] = a_lab[i];
    u_mask[i] = 1;
  }
  for (int i = 0; i < lb; ++i) {
    u_ids[L + i] = b_ids[i];
    u_lab[L + i] = b_lab[i];
    u_mask[L + i] = 1;
  }
  auto run = [&](const lora4j_batch& b, double* loss, int64_t* tokens) {
    API(lora4j_zero_grad(e));
    API(lora4j_forward_backward(e, &b, 0.05f, loss, tokens));
    std::vector<float> all;
    for (const auto& t : lora_state(e, LORA4J_STATE_GRAD))
      all.insert(all.end(), t.second.begin(), t.second.end());
    return all;
  };
  lora4j_batch pb{};
  pb.batch = 1;
  pb.seq = la + lb;
  pb.input_ids = p_ids.data();
  pb.labels = p_lab.data();
  pb.position_ids = p_pos.data();
  pb.segment_ids = p_seg.data();
  lora4j_batch ub{};
  ub.batch = 2;
  ub.seq = L;
  ub.input_ids = u_ids.data();
  ub.labels = u_lab.data();
  ub.attention_mask = u_mask.data();
  double lp = 0, lu = 0;
  int64_t tp = 0, tu = 0;
  std::vector<float> gp = run(pb, &lp, &tp), gu = run(ub, &lu, &tu);
  std::printf("  packed loss %.6f over %lld tokens, separate %.6f over %lld\n", lp, (long long)tp,
              lu, (long long)tu);
  ct::report_bool(S, "packed row counts the same label tokens", tp == tu,
                  std::to_string(tp) + " vs " + std::to_string(tu));
  ct::report(S, "packed row loss = separate rows loss", std::fabs(lp - lu) / std::fabs(lu), 1e-6);
  // float atomics in the attention backward leave run-to-run noise near 1e-8
  ct::report_bool(S, "packed row grads read", !gp.empty() && gp.size() == gu.size(),
                  std::to_string(gp.size()) + " vs " + std::to_string(gu.size()));
  ct::report(S, "packed row grads = separate rows grads", ct::rel_err(gp, gu), 1e-7);
  API(lora4j_engine_destroy(e));
}

// The same random adapter on every engine (all attached alike; names from the first): A [r, in]
// normal with std 1/sqrt(in), B [out, r] with std b_std, or 1/sqrt(r) when b_std is 0.
template <size_t N>
void set_random_adapter(lora4j_engine* const (&engines)[N], std::mt19937& rng, float b_std) {
  int32_t count = 0;
  API(lora4j_lora_count(engines[0], &count));
  for (int32_t i = 0; i < count; ++i) {
    char nm[256];
    int64_t rows, cols;
    API(lora4j_lora_info(engines[0], i, nm, sizeof nm, &rows, &cols));
    const bool is_b = std::string(nm).find("lora_B") != std::string::npos;
    std::normal_distribution<float> nd(0.f,
                                       is_b && b_std > 0 ? b_std : 1.f / std::sqrt(float(cols)));
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (float& x : v) x = nd(rng);
    for (lora4j_engine* x : engines)
      API(lora4j_lora_set(x, LORA4J_STATE_PARAM, nm, LORA4J_DTYPE_F32, v.data(), rows * cols));
  }
}

// steps AdamW steps (lr 5e-2) on b by each engine of a pair, then e[0]'s parameters set on e[1]
// (through lora_set, whose refreshes are part of what the callers compare): AdamW moves elements
// by about lr * sign(g), so near-zero gradients may step apart in the two engines.
void adamw_steps_then_align(lora4j_engine* const (&e)[2], const lora4j_batch& b, int steps) {
  lora4j_adamw o{};
  o.lr = 5e-2f;
  o.beta1 = 0.9f;
  o.beta2 = 0.999f;
  o.eps = 1e-8f;
  for (int step = 0; step < steps; ++step)
    for (lora4j_engine* x : e) {
      double loss = 0;
      lora4j_step_result res{};
      API(lora4j_train_step(x, &b, &o, &loss, &res));
    }
  for (const auto& [nm, v] : lora_state(e[0], LORA4J_STATE_PARAM))
    API(lora4j_lora_set(e[1], LORA4J_STATE_PARAM, nm.c_str(), LORA4J_DTYPE_F32, v.data(),
                        int64_t(v.size())));
}

// LoRA input groups: the CUDA engine forms x A^T of q, k, v (and of gate, up) in one GEMM and
// adds their s (dy B) A input gradients in one GEMM after the group, over whichever of them are
// targeted. For several target sets and both recompute modes, with A and B large enough that the
// LoRA path carries as much of each projection as the frozen weight (a member's term left out or
// misplaced is then an O(1) error): loss and every LoRA gradient against the same engine with one
// GEMM per projection (LORA4J_LORA_GROUPS=0: the same roundings, only the GEMMs' summation order
// differs) and against the CPU engine (fp32; with LoRA this large the bf16 path is 1e-2 to 1e-1
// from it, measured the same with and without the groups).
void target_sets() {
  const char* S = "groups";
  Golden g = load_case("tiny");
  static const char* names[] = {"q", "k", "v", "o", "gate", "up", "down"};
  const uint32_t sets[] = {0x7F, 0x05, 0x02, 0x37, 0x60, 0x1B};  // all, q+v, k, qkv+gate+up, ...
  for (uint32_t targets : sets)
    for (int recompute : {LORA4J_RECOMPUTE_NONE, LORA4J_RECOMPUTE_LAYER}) {
      std::string label;
      for (int p = 0; p < 7; ++p)
        if (targets & (1u << p)) label += std::string(label.empty() ? "" : "+") + names[p];
      label += recompute ? ", recompute layer" : ", no recompute";
      // 0: grouped and folded, 1: one GEMM per projection (folded), 2: CPU, 3: grouped, not
      // folded (LORA4J_LORA_FOLD=0: a lora_B GEMM of its own per projection)
      lora4j_engine* e[4] = {make_engine(g, recompute), make_engine(g, recompute),
                             make_engine(g, recompute, nullptr, LORA4J_DEVICE_CPU),
                             make_engine(g, recompute)};
      const int r = 4;
      for (int k = 0; k < 4; ++k) {
        if (k == 1) setenv("LORA4J_LORA_GROUPS", "0", 1);  // both read at attach
        setenv("LORA4J_LORA_FOLD", k == 3 ? "0" : "1", 1);
        API(lora4j_lora_attach(e[k], r, 1.5f, targets));
        unsetenv("LORA4J_LORA_GROUPS");
        unsetenv("LORA4J_LORA_FOLD");
      }
      int32_t count = 0;
      API(lora4j_lora_count(e[0], &count));
      std::mt19937 rng(targets * 2 + uint32_t(recompute));
      set_random_adapter(e, rng, 0.f);  // B with std 1/sqrt(r): as large as the frozen path
      lora4j_batch b = batch_of(g);
      double loss[4];
      int64_t tokens[4];
      for (int k = 0; k < 4; ++k) {
        API(lora4j_zero_grad(e[k]));
        API(lora4j_forward_backward(e[k], &b, 0.01f, &loss[k], &tokens[k]));
      }
      // worst per-tensor relative error of engine k's gradients against engine ref's
      std::vector<std::pair<std::string, std::vector<float>>> grads[4];
      for (int k = 0; k < 4; ++k) grads[k] = lora_state(e[k], LORA4J_STATE_GRAD);
      auto worst = [&](int k, int ref) {
        double w = grads[k].size() == grads[ref].size() && !grads[k].empty() ? 0 : NAN;
        for (size_t i = 0; i < grads[k].size() && i < grads[ref].size(); ++i)
          w = ct::worst_of(w, ct::rel_err(grads[k][i].second, grads[ref][i].second));
        return w;
      };
      const std::string of = " of " + std::to_string(count) + " LoRA grads";
      // only a group of two or more targeted members runs differently with LORA4J_LORA_GROUPS=0
      // (one member alone is its own group either way: the same path, nothing to compare)
      const auto members = [&](uint32_t mask) { return __builtin_popcount(targets & mask); };
      if (members(0x07) >= 2 || members(0x30) >= 2) {
        ct::report(S, label + ": loss vs one GEMM per projection",
                   std::fabs(loss[0] - loss[1]) / std::fabs(loss[1]), 1e-4);
        ct::report(S, label + ": worst" + of + " vs one GEMM per projection", worst(0, 1), 2e-2);
      }
      // folded and not folded round differently (one fp32 sum, where lora_B's output was rounded
      // first): both are held to the CPU bounds, and their distance is printed
      ct::report(S, label + ": loss not folded vs CPU",
                 std::fabs(loss[3] - loss[2]) / std::fabs(loss[2]), 1e-3);
      ct::report(S, label + ": worst" + of + " not folded vs CPU", worst(3, 2), 1.5e-1);
      std::printf("  %s: folded vs not folded: loss %.3e, worst LoRA grad %.3e\n", label.c_str(),
                  std::fabs(loss[0] - loss[3]) / std::fabs(loss[3]), worst(0, 3));
      ct::report(S, label + ": loss vs CPU", std::fabs(loss[0] - loss[2]) / std::fabs(loss[2]),
                 1e-3);
      ct::report(S, label + ": worst" + of + " vs CPU", worst(0, 2), 1.5e-1);
      std::printf("  %s: one GEMM per projection vs CPU %.3e\n", label.c_str(), worst(1, 2));
      for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
    }
}

// The folded weights through an adapter's life (LORA4J_LORA_FOLD=1 against =0, tiny model): a
// frozen weight set after the attach (it is laid out again, its B beside it), read back bit for
// bit; a detach and an attach of another rank and target set (the spare columns cleared, the new
// B placed); an optimizer step (each B refreshed in its weight). After each, the folded engine's
// loss must match the unfolded one's, and the loss must have moved (so a stale B would show).
// B is small (std 0.05), as in an adapter early in training: the two paths then differ by the
// frozen GEMMs' summation order and the bf16 roundings it flips (measured up to 1.9e-4 at std
// 0.02), held to 5e-4, while each change moves the loss by at least ten times that, so a B
// missing from its folded weight would show.
void fold_lifecycle() {
  const char* S = "fold";
  Golden g = load_case("tiny");
  lora4j_engine* e[2] = {make_engine(g, LORA4J_RECOMPUTE_NONE),
                         make_engine(g, LORA4J_RECOMPUTE_NONE)};
  std::mt19937 rng(11);
  auto attach_random = [&](int r, uint32_t targets) {
    for (int k = 0; k < 2; ++k) {
      setenv("LORA4J_LORA_FOLD", k == 0 ? "1" : "0", 1);
      API(lora4j_lora_attach(e[k], r, 2.f, targets));
      unsetenv("LORA4J_LORA_FOLD");
    }
    set_random_adapter(e, rng, 0.05f);
  };
  lora4j_batch b = batch_of(g);
  auto losses = [&](double* l) {
    for (int k = 0; k < 2; ++k) {
      int64_t tokens = 0;
      API(lora4j_eval_loss(e[k], &b, &l[k], &tokens));
    }
  };
  double before = 0;
  auto check = [&](const std::string& what) {
    double l[2];
    losses(l);
    ct::report(S, what + ": loss folded vs not folded", std::fabs(l[0] - l[1]) / std::fabs(l[1]),
               5e-4);
    const double moved = std::fabs(l[1] - before) / std::fabs(before);
    ct::report_bool(S, what + ": the loss moved", moved > 5e-3,
                    "relative change " + std::to_string(moved));
    before = l[1];
  };
  attach_random(4, 0x7F);
  {
    double l[2];
    losses(l);
    before = l[1];
    ct::report(S, "attached: loss folded vs not folded", std::fabs(l[0] - l[1]) / std::fabs(l[1]),
               5e-4);
  }
  // a frozen q_proj and gate_proj of layer 0 set after the attach, read back
  const int64_t d = g.cfg.hidden_size;
  const std::pair<const char*, int64_t> set_after[] = {
      {"model.layers.0.self_attn.q_proj.weight", int64_t(g.cfg.num_heads) * g.cfg.head_dim},
      {"model.layers.0.mlp.gate_proj.weight", g.cfg.intermediate_size}};
  for (const auto& [nm, rows] : set_after) {
    const int64_t cols = d;
    std::normal_distribution<float> nd(0.f, 0.2f);
    std::vector<uint16_t> w(static_cast<size_t>(rows * cols));
    for (uint16_t& x : w) x = ct::to_bf16_bits(nd(rng));
    for (lora4j_engine* x : e)
      API(lora4j_engine_set_weight(x, nm, LORA4J_DTYPE_BF16, w.data(), rows * cols));
    std::vector<float> back(w.size());
    API(lora4j_engine_get_weight(e[0], nm, back.data(), int64_t(back.size())));
    size_t bad = 0;
    for (size_t i = 0; i < w.size(); ++i) bad += ct::to_bf16_bits(back[i]) != w[i];
    ct::report_bool(S, std::string("set after attach, read back bitwise: ") + nm, bad == 0,
                    std::to_string(bad) + " elements differ");
  }
  check("weights set after the attach");
  // another rank and target set: q + v and up
  for (lora4j_engine* x : e) API(lora4j_lora_detach(x));
  attach_random(8, 0x25);
  check("re-attached at r 8 on q, v, up");
  // optimizer steps: the new B must reach the folded weights
  adamw_steps_then_align(e, b, 2);
  check("after 2 AdamW steps");
  for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
}

void errors() {
  const char* S = "errors";
  Golden g = load_case("tiny");
  // bad device index
  {
    lora4j_engine_options o{};
    o.device = LORA4J_DEVICE_CUDA;
    o.device_index = 97;
    lora4j_engine* e = nullptr;
    int st = lora4j_engine_create(&g.cfg, &o, &e);
    ct::report_bool(S, "bad device index is an error", st != LORA4J_OK && e == nullptr,
                    "status=" + std::to_string(st) + " \"" + lora4j_last_error() + "\"");
  }
  // absurd batch: out of memory, then the engine still works
  {
    lora4j_model_config big = g.cfg;
    big.max_seq_len = 1 << 19;
    lora4j_engine* e = make_engine(g, LORA4J_RECOMPUTE_NONE, &big);
    attach(g, e, "adapter_init");
    const int B = 64, S2 = 1 << 19;
    std::vector<int32_t> ids(static_cast<size_t>(B) * S2, 5),
        labels(static_cast<size_t>(B) * S2, 7);
    lora4j_batch b{};
    b.batch = B;
    b.seq = S2;
    b.input_ids = ids.data();
    b.labels = labels.data();
    double sum = 0;
    int64_t tokens = 0;
    int st = lora4j_forward_backward(e, &b, 1e-6f, &sum, &tokens);
    ct::report_bool(S, "absurd batch (64 x 524288) is out of memory", st == LORA4J_ENOMEM,
                    "status=" + std::to_string(st) + " \"" + lora4j_last_error() + "\"");
    ids.clear();
    ids.shrink_to_fit();
    labels.clear();
    labels.shrink_to_fit();
    lora4j_batch small = batch_of(g);
    st = lora4j_eval_loss(e, &small, &sum, &tokens);
    ct::report_bool(S, "engine usable after out of memory", st == LORA4J_OK && std::isfinite(sum),
                    "status=" + std::to_string(st));
    API(lora4j_engine_destroy(e));
  }
  // 100 create/destroy cycles
  {
    auto cycle = [&] {
      lora4j_engine* e = make_engine(g, LORA4J_RECOMPUTE_NONE);
      attach(g, e, "adapter_init");
      lora4j_batch b = batch_of(g);
      double sum = 0;
      int64_t tokens = 0;
      API(lora4j_forward_backward(e, &b, 0.01f, &sum, &tokens));
      API(lora4j_engine_destroy(e));
    };
    cycle();  // first use loads modules and library state
    CT_CUDA(cudaDeviceSynchronize());
    size_t free0 = 0, total = 0, free1 = 0;
    CT_CUDA(cudaMemGetInfo(&free0, &total));
    for (int i = 0; i < 100; ++i) cycle();
    CT_CUDA(cudaDeviceSynchronize());
    CT_CUDA(cudaMemGetInfo(&free1, &total));
    long long diff = (long long)free0 - (long long)free1;
    ct::report_bool(S, "100 create/destroy cycles keep device memory", diff <= (2ll << 20),
                    "free before " + std::to_string(free0 >> 20) + " MiB, after " +
                        std::to_string(free1 >> 20) + " MiB, lost " + std::to_string(diff) +
                        " bytes");
  }
}

}  // namespace

// LORA4J_PHASE_TIMES: the engine writes, at destruction, one line per op of forward_backward
// (milliseconds per step, calls, share); the shares sum to 1, the ops sum to the step, the
// attention and every projection appear, and without the variable nothing is written.
double field(const std::string& line, const std::string& key) {
  size_t at = line.find("\"" + key + "\": ");
  return at == std::string::npos ? NAN : std::atof(line.c_str() + at + key.size() + 4);
}

void phase_times() {
  Golden g = load_case("hd128");
  const std::string path = "/tmp/lora4j-phase-times-" + std::to_string(getpid()) + ".jsonl";
  std::remove(path.c_str());
  auto steps = [&](int n) {
    lora4j_engine* e = make_engine(g, LORA4J_RECOMPUTE_LAYER);
    attach(g, e, "adapter_init");
    lora4j_batch b = batch_of(g);
    for (int i = 0; i < n; ++i) {
      double sum = 0;
      int64_t tokens = 0;
      API(lora4j_forward_backward(e, &b, 1.f, &sum, &tokens));
    }
    lora4j_engine_destroy(e);
  };
  steps(2);  // the variable unset
  FILE* f = std::fopen(path.c_str(), "r");
  ct::report_bool("phase", "nothing written without LORA4J_PHASE_TIMES", f == nullptr, "");
  if (f) std::fclose(f);
  setenv("LORA4J_PHASE_TIMES", path.c_str(), 1);
  steps(3);
  unsetenv("LORA4J_PHASE_TIMES");
  f = std::fopen(path.c_str(), "r");
  std::vector<std::string> lines;
  char buf[1024];
  while (f && std::fgets(buf, sizeof buf, f)) lines.emplace_back(buf);
  if (f) std::fclose(f);
  std::remove(path.c_str());
  bool head = !lines.empty() && lines[0].find("\"(step)\"") != std::string::npos;
  ct::report_bool("phase", "a step line first", head, std::to_string(lines.size()) + " lines");
  if (!head) return;
  // 3 steps run, the first left out (its GEMM plans)
  ct::report("phase", "steps counted (2 of 3)", std::fabs(field(lines[0], "steps") - 2), 0);
  double step = field(lines[0], "ms_per_step"), ms = 0, share = 0;
  std::set<std::string> names;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t a = lines[i].find(": \"") + 3, z = lines[i].find('"', a);
    names.insert(lines[i].substr(a, z - a));
    ms += field(lines[i], "ms_per_step");
    share += field(lines[i], "share");
  }
  // each figure is printed to 0.001 ms, so the rounded ops may miss the rounded step by up to
  // half a unit per printed figure
  const double rounding = 0.0005 * double(lines.size()) / step;
  ct::report("phase", "ops sum to the step", std::fabs(ms - step) / step, rounding + 1e-6);
  ct::report("phase", "shares sum to 1", std::fabs(share - 1), 1e-3);
  for (const char* want :
       {"attention forward", "attention backward", "rmsnorm forward", "rmsnorm backward",
        "rope forward", "rope backward", "swiglu forward", "swiglu backward", "embedding",
        "recompute checkpoint", "self_attn.q_proj", "mlp.down_proj dX", "lora_A forward", "dLoRA_A",
        "lm head loss kernels", "q/k weights to f16", "self_attn.qkv dX", "q/k/v dX operands"}) {
    // on a Hopper device down's input gradient and the SwiGLU backward are one op
    // (and the gate/up forward and the SwiGLU forward)
    const std::string fused = "mlp.down_proj dX + swiglu backward",
                      fused_fwd = "mlp.gate_proj + up_proj + swiglu forward";
    const bool in_fused =
        std::strcmp(want, "mlp.down_proj dX") == 0 || std::strcmp(want, "swiglu backward") == 0;
    const bool in_fused_fwd = std::strcmp(want, "swiglu forward") == 0;
    const std::string name = in_fused && names.count(fused)           ? fused
                             : in_fused_fwd && names.count(fused_fwd) ? fused_fwd
                                                                      : want;
    ct::report_bool("phase", "op listed: " + name, names.count(name) == 1, "");
  }
}

// The q/k GEMMs' input precision (hd128, base model), each engine against the float64 reference:
// fp16 input (the default, 11 significant bits), and bf16 input plus its rounding residue in e4m3
// or in bf16 (~12 and ~16 bits). Any perturbation of q and k moves which way the later bf16
// roundings fall, so two such engines' logits differ from each other by about as much as each
// differs from the reference (e4m3 against bf16: 8.0e-3 against 8.4e-3, measured on an H200):
// the engines are compared by their distance to the reference. Without any of them (bf16 input
// alone, 8 bits) that distance is 1.56e-2 against 8.4e-3 (NOTES "Numerics"); a residue dropped,
// of the wrong sign or scaled wrong, or an fp16 operand misread, errs by at least the bf16
// rounding and lands near or past 1.56e-2, so the fp16 and e4m3 engines must stay within 1.25x
// of the bf16 residue engine's distance and below 1.2e-2. Before sm_89 e4m3 is bf16 (no FP8).
void qk_precision() {
  Golden g = load_case("hd128");
  lora4j_engine* e[3];
  const char* modes[3] = {nullptr, "e4m3", "bf16"};
  double dist[3];
  for (int k = 0; k < 3; ++k) {
    if (modes[k]) setenv("LORA4J_QK_LO", modes[k], 1);
    e[k] = make_engine(g, LORA4J_RECOMPUTE_NONE);
    unsetenv("LORA4J_QK_LO");
    dist[k] = logits_err(g, e[k], "base.logits");
  }
  std::printf(
      "  hd128 base logits vs the reference: fp16 input %.3e, e4m3 residue %.3e, bf16 "
      "residue %.3e\n",
      dist[0], dist[1], dist[2]);
  ct::report("golden",
             "hd128 base logits' distance to the reference, q/k input fp16 / bf16 residue",
             dist[0] / dist[2], 1.25);
  ct::report("golden", "hd128 base logits, q/k input fp16, vs the reference", dist[0], 1.2e-2);
  ct::report("golden", "hd128 base logits' distance to the reference, q/k residue e4m3 / bf16",
             dist[1] / dist[2], 1.25);
  ct::report("golden", "hd128 base logits, q/k residue e4m3, vs the reference", dist[1], 1.2e-2);
  for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
}

// The fp16 q/k input is taken only for layers whose bounds the engine checked (CudaEngine::
// qk_f16_ok): an input_layernorm weight with sqrt(d) max |w| past 32768 sends its layer to the
// residue path. With every layer's norm weight given one such element, the default engine and
// one made with LORA4J_QK_LO=e4m3 must compute the same logits bit for bit; before the change they
// differ (the fp16 path ran), so the comparison can tell the two paths apart.
void qk_f16_bounds() {
  Golden g = load_case("hd128");
  lora4j_engine* e[2];
  for (int k = 0; k < 2; ++k) {
    if (k == 1) setenv("LORA4J_QK_LO", "e4m3", 1);
    e[k] = make_engine(g, LORA4J_RECOMPUTE_NONE);
    unsetenv("LORA4J_QK_LO");
  }
  auto differ = [&] {
    const std::vector<float> a = logits_of(g, e[0]), b = logits_of(g, e[1]);
    return a.size() != b.size() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) != 0;
  };
  ct::report_bool("golden", "hd128 fp16 q/k input differs from the e4m3 residue path", differ(),
                  "");
  const int64_t d = g.cfg.hidden_size;
  const float big = 1.25f * 32768.f / std::sqrt(float(d));  // sqrt(d) * big past the bound
  for (int l = 0; l < g.cfg.num_layers; ++l) {
    const std::string name = "model.layers." + std::to_string(l) + ".input_layernorm.weight";
    std::vector<float> w(static_cast<size_t>(d));
    API(lora4j_engine_get_weight(e[0], name.c_str(), w.data(), d));
    w[0] = big;
    for (lora4j_engine* x : e)
      API(lora4j_engine_set_weight(x, name.c_str(), LORA4J_DTYPE_F32, w.data(), d));
  }
  ct::report_bool("golden",
                  "hd128 with norm weights past the fp16 bound: the default engine takes the "
                  "e4m3 residue path (logits bitwise equal)",
                  !differ(), "");
  for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
}

// Two engines for an A/B of an engine switch read at the engine's creation: e[0] as the
// environment says, e[1] made with `off` set to 0; both attached at rank, scale and targets.
void switch_pair(const Golden& g, int recompute, const char* off, int rank, float scale,
                 uint32_t targets, lora4j_engine* (&e)[2]) {
  for (int k = 0; k < 2; ++k) {
    if (k == 1) setenv(off, "0", 1);
    e[k] = make_engine(g, recompute);
    unsetenv(off);
    API(lora4j_lora_attach(e[k], rank, scale, targets));
  }
}

// One forward_backward of b on each engine of a pair, from zeroed gradients: each one's loss,
// counted tokens and LoRA gradients, and the worst per-tensor relative difference between the
// two engines' gradients (NaN when their lists differ or are empty).
struct PairStep {
  double loss[2] = {0, 0};
  int64_t tokens[2] = {0, 0};
  std::vector<std::pair<std::string, std::vector<float>>> grads[2];
  double worst = NAN;
};
PairStep pair_step(lora4j_engine* const (&e)[2], const lora4j_batch& b) {
  PairStep r;
  for (int k = 0; k < 2; ++k) {
    API(lora4j_zero_grad(e[k]));
    API(lora4j_forward_backward(e[k], &b, 0.01f, &r.loss[k], &r.tokens[k]));
    r.grads[k] = lora_state(e[k], LORA4J_STATE_GRAD);
  }
  r.worst = r.grads[0].size() == r.grads[1].size() && !r.grads[0].empty() ? 0 : NAN;
  for (size_t i = 0; i < r.grads[0].size() && i < r.grads[1].size(); ++i)
    r.worst = ct::worst_of(r.worst, ct::rel_err(r.grads[0][i].second, r.grads[1][i].second));
  return r;
}

// An A/B of an engine switch (switch_pair, rank 8, scale 1.5) over target sets, each with no
// recompute and with per-layer recompute: a random adapter (seed + recompute + mask, B's std
// b_std), one pair_step, then check(step, label, engines) before the engines go.
struct TargetSet {
  uint32_t mask;
  const char* name;
};
template <class F>
void switch_cases(Golden& g, const char* sw, std::initializer_list<TargetSet> sets, uint32_t seed,
                  float b_std, F check) {
  for (const TargetSet& t : sets)
    for (int recompute : {LORA4J_RECOMPUTE_NONE, LORA4J_RECOMPUTE_LAYER}) {
      lora4j_engine* e[2];
      switch_pair(g, recompute, sw, 8, 1.5f, t.mask, e);
      std::mt19937 rng(uint32_t(seed + recompute + t.mask));
      set_random_adapter(e, rng, b_std);
      const PairStep r = pair_step(e, batch_of(g));
      check(r, std::string(t.name) + (recompute ? ", recompute layer" : ", no recompute"), e);
      for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
    }
}

// q, k and v's input gradients as one GEMM (CudaEngine::qkv_dx, the default) against three GEMMs
// and the group's LoRA term (LORA4J_QKV_DX_FOLD=0), hd128, rank 8 and scale 1.5 (s T rounded to
// bf16 once; the fold's K a multiple of 8, so its operand copies take the vectorized path), A and
// B as large as target_sets makes them (the LoRA path carries as much of each projection as the
// frozen weight), LoRA on all seven projections and on o, gate, up and down only (q, k and v
// without LoRA: the fold without the T columns), no recompute and per-layer recompute: the same
// products summed in another order, so every LoRA gradient within 2e-2 of the other engine's
// (target_sets' bound for the groups' own A/B); a term dropped or misplaced is an O(1) error in
// layer 0's gradients (the fold runs in layer 1's backward, whose dx reaches layer 0).
void qkv_dx_fold() {
  Golden g = load_case("hd128");
  switch_cases(g, "LORA4J_QKV_DX_FOLD", {{0x7Fu, "all seven"}, {0x78u, "o, gate, up, down"}}, 17,
               0.f, [](const PairStep& r, const std::string& label, lora4j_engine* const(&)[2]) {
                 ct::report("golden",
                            "hd128 q/k/v dX as one GEMM vs three, worst LoRA grad, " + label,
                            r.worst, 2e-2);
               });
}

// dq, dk and dv written by the attention backward and RoPE straight into their columns of the
// fold's operand (CudaEngine::qkv_direct_, the default) against buffers of their own copied there
// (LORA4J_QKV_DX_DIRECT=0): the same values reach the same kernels and GEMMs, so the loss and
// every LoRA gradient are the same bits, with LoRA on all seven projections, on o, gate, up and
// down (the fold without T's columns), and on q alone (no fold: the gradients in rows of their
// own width, in the fold buffer's space), no recompute and per-layer recompute. The default
// engine's device memory in use is lower by the three buffers it no longer takes.
void qkv_dx_direct() {
  Golden g = load_case("hd128");
  const int64_t n = int64_t(g.B) * g.S, qd = int64_t(g.cfg.num_heads) * g.cfg.head_dim,
                kvd = int64_t(g.cfg.num_kv_heads) * g.cfg.head_dim;
  const int64_t bufs = n * (qd + 2 * kvd) * 2;  // bf16
  switch_cases(
      g, "LORA4J_QKV_DX_DIRECT", {{0x7Fu, "all seven"}, {0x78u, "o, gate, up, down"}, {0x01u, "q"}},
      23, 0.5f, [&](const PairStep& r, const std::string& label, lora4j_engine* const(&e)[2]) {
        ct::report("golden",
                   "hd128 q/k/v gradients into the fold's operand vs copied, loss " + label,
                   std::fabs(r.loss[0] - r.loss[1]), 0);
        ct::report(
            "golden",
            "hd128 q/k/v gradients into the fold's operand vs copied, worst LoRA grad " + label,
            r.worst, 0);
        int64_t in_use[2] = {0, 0}, peak = 0;
        for (int k = 0; k < 2; ++k) API(lora4j_engine_memory(e[k], &in_use[k], &peak));
        const int64_t saved = in_use[1] - in_use[0];
        ct::report_bool("golden", "memory in use lower by dq, dk and dv's buffers, " + label,
                        saved >= bufs && saved <= bufs + 3 * 256,
                        std::to_string(saved) + " bytes, want " + std::to_string(bufs));
      });
}

// q, k and v's weights in one allocation per layer with rows for the group's A after them, read
// in place by the q/k/v input-gradient GEMM (CudaEngine::pack_qkv, the default), against the
// weights apart and copied into wqkv_ every layer (LORA4J_QKV_WBLOCK=0). The GEMM sees the same
// values (cuBLASLt may choose another algorithm for the other row stride), so every LoRA gradient
// within 1e-2 of the other engine's; A and B are as large as the frozen path (set_random_adapter),
// so A rows left stale in the block are an O(1) error. Checked: attached; after two AdamW steps
// (the optimizer's refresh of A reaches the block; the default engine's parameters copied to the
// other first); re-attached at rank 16 (the block grows its A rows); merged (logits bitwise
// equal) and attached again. Memory in use after the first attach is higher by the blocks' A rows
// alone: layers x 3 r rows of the weights' row stride (hidden, or hidden + 3 r where B is folded
// beside W), in bf16.
void qkv_wblock() {
  const char* S = "qkv block";
  Golden g = load_case("hd128");
  const int64_t d = g.cfg.hidden_size, L = g.cfg.num_layers;
  lora4j_engine* e[2];
  switch_pair(g, LORA4J_RECOMPUTE_NONE, "LORA4J_QKV_WBLOCK", 8, 1.5f, 0x7Fu, e);
  std::mt19937 rng(41);
  set_random_adapter(e, rng, 0.f);
  int64_t in_use[2] = {0, 0}, peak = 0;
  for (int k = 0; k < 2; ++k) API(lora4j_engine_memory(e[k], &in_use[k], &peak));
  const int64_t extra = in_use[0] - in_use[1], rows = L * 3 * 8;
  ct::report_bool(S, "memory in use higher by the blocks' A rows alone",
                  extra == rows * d * 2 || extra == rows * (d + 24) * 2,
                  std::to_string(extra) + " bytes, want " + std::to_string(rows * d * 2) + " or " +
                      std::to_string(rows * (d + 24) * 2));
  const lora4j_batch b = batch_of(g);
  auto compare = [&](const std::string& what) {
    const PairStep r = pair_step(e, b);
    ct::report(S, "hd128 q/k/v weights in one block vs copied, worst LoRA grad, " + what, r.worst,
               1e-2);
    ct::report(S, "hd128 q/k/v weights in one block vs copied, loss, " + what,
               std::fabs(r.loss[0] - r.loss[1]) / std::fabs(r.loss[1]), 1e-4);
  };
  compare("attached");
  adamw_steps_then_align(e, b, 2);
  compare("after 2 AdamW steps");
  for (lora4j_engine* x : e) API(lora4j_lora_attach(x, 16, 2.f, 0x7Fu));
  set_random_adapter(e, rng, 0.f);
  compare("re-attached at rank 16");
  for (lora4j_engine* x : e) API(lora4j_lora_merge(x));
  const std::vector<float> l0 = logits_of(g, e[0]), l1 = logits_of(g, e[1]);
  ct::report_bool(
      S, "merged: logits bitwise equal",
      l0.size() == l1.size() && std::memcmp(l0.data(), l1.data(), l0.size() * sizeof(float)) == 0,
      "");
  for (lora4j_engine* x : e) API(lora4j_lora_attach(x, 8, 1.5f, 0x7Fu));
  set_random_adapter(e, rng, 0.f);
  compare("attached after a merge");
  for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
}

// The optimizer step's refresh copies in one launch (copy2d_batched over a table, the default)
// against one cudaMemcpy(2D)Async call each (LORA4J_REFRESH_BATCH=0): hd128, all seven targets at
// rank 8 (stacked A matrices, the q/k/v blocks' A rows and folded B columns all in use), both
// engines given the same random gradients (lora4j_grad_set_flat) before each of four AdamW steps
// at lr 5e-2. After each step the parameters and the logits must be bitwise equal: both paths copy
// the same bytes, so a copy the table left out or took from a stale pointer would keep an old A or
// B in the GEMMs' operands and move the logits. Then a re-attach at rank 16 (every buffer new: the
// table is uploaded again) and two more steps. The default engine holds the table (layers x 7 x 3
// entries of 48 bytes) and the other none, so the switch is seen to separate the two paths.
void refresh_batch() {
  const char* S = "refresh batch";
  Golden g = load_case("hd128");
  const int64_t L = g.cfg.num_layers;
  lora4j_engine* e[2];
  std::mt19937 rng(53);
  lora4j_adamw o{};
  o.lr = 5e-2f;
  o.beta1 = 0.9f;
  o.beta2 = 0.999f;
  o.eps = 1e-8f;
  std::normal_distribution<float> nd(0.f, 1e-2f);
  auto steps = [&](int count, const std::string& label) {
    int64_t numel = 0;
    API(lora4j_grad_flat_numel(e[0], &numel));
    std::vector<float> grad(static_cast<size_t>(numel));
    for (int k = 0; k < count; ++k) {
      for (float& x : grad) x = nd(rng);
      for (lora4j_engine* x : e) {
        lora4j_step_result res{};
        API(lora4j_zero_grad(x));
        API(lora4j_grad_set_flat(x, grad.data(), numel));
        API(lora4j_optimizer_step(x, &o, &res));
      }
      const auto p0 = lora_state(e[0], LORA4J_STATE_PARAM),
                 p1 = lora_state(e[1], LORA4J_STATE_PARAM);
      int64_t pbits = p0.size() == p1.size() && !p0.empty() ? 0 : -1;
      for (size_t i = 0; pbits >= 0 && i < p0.size(); ++i)
        for (size_t j = 0; j < p0[i].second.size(); ++j)
          pbits += std::memcmp(&p0[i].second[j], &p1[i].second[j], 4) != 0;
      const std::vector<float> l0 = logits_of(g, e[0]), l1 = logits_of(g, e[1]);
      int64_t lbits = l0.size() == l1.size() && !l0.empty() ? 0 : -1;
      for (size_t j = 0; lbits >= 0 && j < l0.size(); ++j)
        lbits += std::memcmp(&l0[j], &l1[j], 4) != 0;
      const std::string what = label + ", step " + std::to_string(k + 1);
      ct::report_bool(S, "hd128 one launch vs one call per copy, parameters bitwise, " + what,
                      pbits == 0, std::to_string(pbits) + " elements differ");
      ct::report_bool(S, "hd128 one launch vs one call per copy, logits bitwise, " + what,
                      lbits == 0, std::to_string(lbits) + " differ");
    }
  };
  switch_pair(g, LORA4J_RECOMPUTE_NONE, "LORA4J_REFRESH_BATCH", 8, 1.5f, 0x7Fu, e);
  set_random_adapter(e, rng, 0.f);
  int64_t in_use[2] = {0, 0}, peak = 0;
  for (int k = 0; k < 2; ++k) API(lora4j_engine_memory(e[k], &in_use[k], &peak));
  const int64_t table = L * 7 * 3 * 48;
  ct::report_bool(S, "memory in use higher by the copy table alone", in_use[0] - in_use[1] == table,
                  std::to_string(in_use[0] - in_use[1]) + " bytes, want " + std::to_string(table));
  steps(4, "rank 8");
  for (lora4j_engine* x : e) API(lora4j_lora_attach(x, 16, 2.f, 0x7Fu));
  set_random_adapter(e, rng, 0.f);
  steps(2, "re-attached at rank 16");
  for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
}

// The attention backward's delta from the bf16 output (the default) against the fp32 copy the
// forward writes with LORA4J_ATTN_O_BF16=0, hd128 with a random adapter, no recompute and
// per-layer recompute: every LoRA gradient within 2e-2 of the other engine's (delta moves by
// bf16's rounding of O, as in Hugging Face's attention backward; the golden cases check the
// default against the float64 reference), and the default engine's device memory in use after
// the step below the other's by the fp32 copies it no longer keeps: n x q_dim floats per layer
// without recompute, one layer's with recompute (each take rounded up to 256 bytes at most).
void attn_o_bf16() {
  const char* S = "attn O bf16";
  Golden g = load_case("hd128");
  for (int recompute : {LORA4J_RECOMPUTE_NONE, LORA4J_RECOMPUTE_LAYER}) {
    lora4j_engine* e[2];
    switch_pair(g, recompute, "LORA4J_ATTN_O_BF16", 8, 2.f, 0x7Fu, e);
    std::mt19937 rng(uint32_t(31 + recompute));
    set_random_adapter(e, rng, 0.f);
    lora4j_batch b = batch_of(g);
    std::vector<std::pair<std::string, std::vector<float>>> grads[2];
    int64_t in_use[2] = {0, 0};
    for (int k = 0; k < 2; ++k) {
      double loss = 0;
      int64_t tokens = 0, peak = 0;
      API(lora4j_zero_grad(e[k]));
      API(lora4j_forward_backward(e[k], &b, 0.01f, &loss, &tokens));
      grads[k] = lora_state(e[k], LORA4J_STATE_GRAD);
      API(lora4j_engine_memory(e[k], &in_use[k], &peak));
    }
    double worst = grads[0].size() == grads[1].size() && !grads[0].empty() ? 0 : NAN;
    for (size_t i = 0; i < grads[0].size() && i < grads[1].size(); ++i)
      worst = ct::worst_of(worst, ct::rel_err(grads[0][i].second, grads[1][i].second));
    const std::string label = recompute ? "recompute layer" : "no recompute";
    ct::report(S, "hd128 delta from bf16 O vs from the fp32 copy, worst LoRA grad, " + label, worst,
               2e-2);
    const int64_t layers = recompute ? 1 : g.cfg.num_layers;
    const int64_t copy = int64_t(g.B) * g.S * g.cfg.num_heads * g.cfg.head_dim * 4;
    const int64_t saved = in_use[1] - in_use[0];
    ct::report_bool(S, "memory in use lower by the fp32 copies of O, " + label,
                    saved >= layers * copy && saved <= layers * (copy + 256),
                    std::to_string(saved) + " bytes, want " + std::to_string(layers * copy));
    for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
  }
}

// The op names of the phase times of two forward_backward calls on b by an engine made with
// LORA4J_PHASE_TIMES and, when off is given, that switch set to 0.
std::set<std::string> ops_run(Golden& g, lora4j_batch& b, const char* off) {
  const std::string path = "/tmp/lora4j-ops-run-" + std::to_string(getpid()) + ".jsonl";
  std::remove(path.c_str());
  setenv("LORA4J_PHASE_TIMES", path.c_str(), 1);
  if (off) setenv(off, "0", 1);
  lora4j_engine* e = make_engine(g, LORA4J_RECOMPUTE_NONE);
  unsetenv("LORA4J_PHASE_TIMES");
  if (off) unsetenv(off);
  attach(g, e, "adapter_init");
  for (int i = 0; i < 2; ++i) {
    double sum = 0;
    int64_t tokens = 0;
    API(lora4j_forward_backward(e, &b, 1.f, &sum, &tokens));
  }
  lora4j_engine_destroy(e);  // writes the file
  return ct::phase_op_names(path);
}

// q, k and v's LoRA pair passes in one launch (CudaEngine::qkv_pair, the default) against one
// launch each (LORA4J_QKV_PAIR_ONE=0), hd128 with LoRA on all seven projections, no recompute and
// per-layer recompute: T is the same bits either way, so the loss is too and every LoRA gradient
// but q's, k's and v's lora_B is; those sum the same partials over other row shares (within
// 1e-5). The phase times name the one launch on the default engine and not on the other.
void qkv_pair_one() {
  const char* S = "qkv pair";
  Golden g = load_case("hd128");
  for (int recompute : {LORA4J_RECOMPUTE_NONE, LORA4J_RECOMPUTE_LAYER}) {
    lora4j_engine* e[2];
    switch_pair(g, recompute, "LORA4J_QKV_PAIR_ONE", 8, 1.5f, 0x7Fu, e);
    std::mt19937 rng(uint32_t(53 + recompute));
    set_random_adapter(e, rng, 0.5f);
    const PairStep r = pair_step(e, batch_of(g));
    const std::string label = recompute ? "recompute layer" : "no recompute";
    ct::report(S, "hd128 q/k/v pair passes in one launch vs three, loss, " + label,
               std::fabs(r.loss[0] - r.loss[1]), 0);
    ct::report(S, "hd128 q/k/v pair passes in one launch vs three, worst LoRA grad, " + label,
               r.worst, 1e-5);
    double others = 0;  // every gradient but q's, k's and v's lora_B: the same bits
    for (size_t i = 0; i < r.grads[0].size() && i < r.grads[1].size(); ++i) {
      const std::string& nm = r.grads[0][i].first;
      const bool qkv_b =
          nm.find("lora_B") != std::string::npos &&
          (nm.find("q_proj") != std::string::npos || nm.find("k_proj") != std::string::npos ||
           nm.find("v_proj") != std::string::npos);
      if (!qkv_b)
        others = std::max(others, ct::rel_err(r.grads[0][i].second, r.grads[1][i].second));
    }
    ct::report(S, "hd128 q/k/v pair passes in one launch vs three, other LoRA grads, " + label,
               others, 0);
    for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
  }
  lora4j_batch b = batch_of(g);
  const std::string one = "dy B + dLoRA_B, self_attn.q_proj + k_proj + v_proj",
                    q = "dy B + dLoRA_B, self_attn.q_proj";
  std::set<std::string> on = ops_run(g, b, nullptr), off = ops_run(g, b, "LORA4J_QKV_PAIR_ONE");
  // (layer 0, whose input gradient is not needed, does not fold and runs them one by one)
  ct::report_bool(S, "the default engine runs q, k and v's pair passes as one launch",
                  on.count(one) > 0, "");
  ct::report_bool(S, "LORA4J_QKV_PAIR_ONE=0: one launch each", off.count(q) && !off.count(one), "");
}

// down's input gradient and the SwiGLU backward in one kernel (swiglu_dx_fused, the default on
// a Hopper device) against the GEMM into fp32 dh with the SwiGLU backward after it
// (LORA4J_SWIGLU_DX_FUSED=0): hd128, rank 8, scale 1.5, LoRA on all seven projections, on o,
// gate, up and down, and on the six but down (the kernel without s T A), no recompute and
// per-layer recompute. The forward is untouched, so the loss is the same bits; dh is the same
// products summed in another order, so every LoRA gradient within 2e-2 of the other engine's
// (the bound of the q/k/v fold, the same kind of change). The phase times name the fused op on
// an sm_90 device only, and never on the other engine.
void swiglu_dx_fused_ab() {
  const char* S = "swiglu dx";
  Golden g = load_case("hd128");
  switch_cases(g, "LORA4J_SWIGLU_DX_FUSED",
               {{0x7Fu, "all seven"}, {0x78u, "o, gate, up, down"}, {0x3Fu, "all but down"}}, 61,
               0.5f, [&](const PairStep& r, const std::string& label, lora4j_engine* const(&)[2]) {
                 ct::report(S, "hd128 down dX + SwiGLU backward fused vs not, loss, " + label,
                            std::fabs(r.loss[0] - r.loss[1]), 0);
                 ct::report(
                     S, "hd128 down dX + SwiGLU backward fused vs not, worst LoRA grad, " + label,
                     r.worst, 2e-2);
               });
  int dev = 0, major = 0, minor = 0;
  CT_CUDA(cudaGetDevice(&dev));
  CT_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  CT_CUDA(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  const bool sm90 = major == 9 && minor == 0;
  lora4j_batch b = batch_of(g);
  const std::string fused = "mlp.down_proj dX + swiglu backward";
  std::set<std::string> on = ops_run(g, b, nullptr), off = ops_run(g, b, "LORA4J_SWIGLU_DX_FUSED");
  ct::report_bool(S, "the default engine runs the fused op on an sm_90 device (and only there)",
                  (on.count(fused) > 0) == sm90, sm90 ? "sm_90" : "not sm_90");
  ct::report_bool(
      S, "LORA4J_SWIGLU_DX_FUSED=0: the GEMM and the SwiGLU backward apart",
      !off.count(fused) && off.count("swiglu backward") && off.count("mlp.down_proj dX"), "");
}

// The gate/up forward with the SwiGLU forward in one kernel (swiglu_gu_fused, the default on a
// Hopper device) against the two GEMMs and the SwiGLU forward after them (LORA4J_SWIGLU_GU_FUSED
// =0): hd128 at rank 8 (the LoRA fold takes gate and up there, so the kernel runs with their B
// beside W), LoRA on all seven projections, on o, gate, up and down, and on q, k, v, o and down
// (gate and up without LoRA: K = hidden), no recompute and per-layer recompute. gate and up are
// the same products rounded to bf16 as the GEMMs' outputs, summed in another order, so an
// element may land one bf16 step apart: the loss within 1e-3 and every LoRA gradient within 2e-2
// of the other engine's. The phase times name the fused op on an sm_90 device only, and never on
// the other engine.
void swiglu_gu_fused_ab() {
  const char* S = "swiglu gu";
  Golden g = load_case("hd128");
  switch_cases(
      g, "LORA4J_SWIGLU_GU_FUSED",
      {{0x7Fu, "all seven"}, {0x78u, "o, gate, up, down"}, {0x4Fu, "all but gate, up"}}, 67, 0.5f,
      [&](const PairStep& r, const std::string& label, lora4j_engine* const(&)[2]) {
        ct::report(S, "hd128 gate/up + SwiGLU forward fused vs not, loss, " + label,
                   std::fabs(r.loss[0] - r.loss[1]), 1e-3);
        ct::report(S, "hd128 gate/up + SwiGLU forward fused vs not, worst LoRA grad, " + label,
                   r.worst, 2e-2);
      });
  int dev = 0, major = 0, minor = 0;
  CT_CUDA(cudaGetDevice(&dev));
  CT_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  CT_CUDA(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  const bool sm90 = major == 9 && minor == 0;
  lora4j_batch b = batch_of(g);
  const std::string fused = "mlp.gate_proj + up_proj + swiglu forward";
  // (the golden adapter's rank 16 folds at hd128's width only when told to)
  setenv("LORA4J_LORA_FOLD", "1", 1);
  std::set<std::string> on = ops_run(g, b, nullptr), off = ops_run(g, b, "LORA4J_SWIGLU_GU_FUSED");
  unsetenv("LORA4J_LORA_FOLD");
  ct::report_bool(S, "the default engine runs the fused op on an sm_90 device (and only there)",
                  (on.count(fused) > 0) == sm90, sm90 ? "sm_90" : "not sm_90");
  ct::report_bool(S, "LORA4J_SWIGLU_GU_FUSED=0: the GEMMs and the SwiGLU forward apart",
                  !off.count(fused) && off.count("swiglu forward") && off.count("mlp.gate_proj"),
                  "");
}

// Packed rows as the trainer collates them (Collation.pack: examples numbered 1, 2, 3 in their
// segment ids, positions restarting at 0, each example's first label -100, then a padding run
// of segment 0 with mask 0 and label -100) over hd128's ids and labels: the default engine, whose
// prepare() gives the segments' runs to the Hopper attention kernels (the padding's mask dropped
// in the loss calls, as for any right-padded batch), against one made with
// LORA4J_SEGMENT_RUNS=0 (the mma.sync kernels with the segment ids; the mask dropped there too),
// with and without recompute: the same tokens, the loss within 1e-3 and every LoRA gradient
// within 3e-2 (two attention kernels that round differently, as in right_pad_unmasked; a key of
// another example seen, or one of the example's own missed, moves the loss by far more). The
// phase times name the runs on the default path and the segments with the switch off.
void packed_segment_runs() {
  const char* S = "segment runs";
  Golden g = load_case("hd128");
  const int B = g.B, T = g.S;
  std::vector<int32_t> ids(g.ids.begin(), g.ids.end()), labels(g.labels.begin(), g.labels.end());
  std::vector<int32_t> mask(size_t(B) * T, 1), pos(size_t(B) * T, 0), seg(size_t(B) * T, 0);
  // examples of 60, 80 and 40 tokens in row 0, 130 and 50 in row 1; 20 positions of padding
  const std::vector<std::vector<int>> lens = {{60, 80, 40}, {130, 50}};
  for (int r = 0; r < B; ++r) {
    int at = 0, id = 0;
    for (int len : lens[size_t(r % 2)]) {
      ++id;
      for (int t = 0; t < len && at + t < T; ++t) {
        const size_t i = size_t(r) * T + size_t(at + t);
        seg[i] = id;
        pos[i] = t;
        if (t == 0) labels[i] = -100;
      }
      at += len;
    }
    for (int t = std::min(at, T); t < T; ++t) {
      const size_t i = size_t(r) * T + size_t(t);
      ids[i] = 0;
      mask[i] = 0;
      labels[i] = -100;
    }
  }
  lora4j_batch b{};
  b.batch = B;
  b.seq = T;
  b.input_ids = ids.data();
  b.attention_mask = mask.data();
  b.labels = labels.data();
  b.position_ids = pos.data();
  b.segment_ids = seg.data();
  for (int recompute : {LORA4J_RECOMPUTE_NONE, LORA4J_RECOMPUTE_LAYER}) {
    lora4j_engine* e[2];
    switch_pair(g, recompute, "LORA4J_SEGMENT_RUNS", 8, 2.f, 0x7Fu, e);
    std::mt19937 rng(uint32_t(71 + recompute));
    set_random_adapter(e, rng, 0.f);
    const PairStep r = pair_step(e, b);
    const std::string label = recompute ? "recompute layer" : "no recompute";
    ct::report_bool(S, "the same counted tokens, " + label,
                    r.tokens[0] == r.tokens[1] && r.tokens[0] > 0,
                    std::to_string(r.tokens[0]) + " and " + std::to_string(r.tokens[1]));
    ct::report(S, "loss on the runs vs on the segment ids, " + label,
               std::fabs(r.loss[0] - r.loss[1]) / std::fabs(r.loss[1]), 1e-3);
    ct::report(S, "worst LoRA grad on the runs vs on the segment ids, " + label, r.worst, 3e-2);
    for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
  }
  std::set<std::string> on = ops_run(g, b, nullptr), off = ops_run(g, b, "LORA4J_SEGMENT_RUNS");
  ct::report_bool(
      S, "the default engine gives the packed batch's runs to the attention",
      on.count("attention forward, segment runs") && on.count("attention backward, segment runs"),
      "");
  ct::report_bool(S, "LORA4J_SEGMENT_RUNS=0: the segment ids alone",
                  off.count("attention forward, segments") &&
                      off.count("attention backward, segments") &&
                      !off.count("attention forward, segment runs"),
                  "");
}

// A right-padded batch's mask dropped in the loss calls (CudaEngine::prepare): the golden batches
// (a right-padded row, its padding labelled -100) through the default engine and one made with
// LORA4J_RIGHT_PAD_UNMASKED=0, with and without recompute: the same tokens; at hd128 (the Hopper
// kernels against the masked mma.sync ones, which round differently) the loss within 1e-3 and
// every LoRA gradient within 3e-2, the bound the golden cases hold each path to against Hugging
// Face's float64 gradients (on the H200 each path's worst tensor lay 2.4-2.6e-2 from the
// reference and the two paths 2.3-2.5e-2 from each other: bf16 rounding at hd128's small
// gradients); at tiny (mma.sync both ways, head_dim 16) within 1e-5 and 1e-3. logits() keeps the
// mask (the two engines' logits bit for bit); the phase times name the key mask only where it is
// used: with the switch off, a left-padded batch, a right-padded one whose padding's targets
// count.
void right_pad_unmasked_case(const std::string& name, double loss_tol, double grad_tol) {
  const char* S = "right pad";
  Golden g = load_case(name);
  bool right = false;
  for (int r = 0; r < g.B; ++r) right = right || g.mask[size_t(r * g.S + g.S - 1)] == 0;
  ct::report_bool(S, name + "'s batch has a right-padded row", right, "");
  for (int recompute : {LORA4J_RECOMPUTE_NONE, LORA4J_RECOMPUTE_LAYER}) {
    lora4j_engine* e[2];
    switch_pair(g, recompute, "LORA4J_RIGHT_PAD_UNMASKED", 8, 2.f, 0x7Fu, e);
    std::mt19937 rng(uint32_t(53 + recompute));
    set_random_adapter(e, rng, 0.f);
    lora4j_batch b = batch_of(g);
    const PairStep r = pair_step(e, b);
    const std::string label = name + ", " + (recompute ? "recompute layer" : "no recompute");
    ct::report_bool(S, "the same counted tokens, " + label,
                    r.tokens[0] == r.tokens[1] && r.tokens[0] > 0,
                    std::to_string(r.tokens[0]) + " and " + std::to_string(r.tokens[1]));
    ct::report(S, "loss unmasked vs masked, " + label,
               std::fabs(r.loss[0] - r.loss[1]) / std::fabs(r.loss[1]), loss_tol);
    ct::report(S, "worst LoRA grad unmasked vs masked, " + label, r.worst, grad_tol);
    if (recompute == LORA4J_RECOMPUTE_NONE) {
      const int64_t n = int64_t(g.B) * g.S, V = g.cfg.vocab_size;
      std::vector<float> lg[2];
      for (int k = 0; k < 2; ++k) {
        lg[k].resize(size_t(n * V));
        API(lora4j_logits(e[k], &b, lg[k].data(), n * V));
      }
      ct::report_bool(S, "logits() keeps the mask: the two engines' logits bit for bit, " + name,
                      std::memcmp(lg[0].data(), lg[1].data(), lg[0].size() * 4) == 0, "");
    }
    for (lora4j_engine* x : e) API(lora4j_engine_destroy(x));
  }
}

void right_pad_unmasked() {
  const char* S = "right pad";
  right_pad_unmasked_case("tiny", 1e-5, 1e-3);
  right_pad_unmasked_case("hd128", 1e-3, 3e-2);
  Golden g = load_case("hd128");
  lora4j_batch b = batch_of(g);
  const std::string kf = "attention forward, key mask", kb = "attention backward, key mask";
  std::set<std::string> on = ops_run(g, b, nullptr),
                        off = ops_run(g, b, "LORA4J_RIGHT_PAD_UNMASKED");
  ct::report_bool(S, "the default engine runs the right-padded batch unmasked",
                  on.count("attention forward") && !on.count(kf) && !on.count(kb), "");
  ct::report_bool(S, "LORA4J_RIGHT_PAD_UNMASKED=0: the key mask", off.count(kf) && off.count(kb),
                  "");
  // the padded row turned left-padded: zeros first
  std::vector<int32_t> ids(g.ids.begin(), g.ids.end()), mask(g.mask.begin(), g.mask.end()),
      labels(g.labels.begin(), g.labels.end());
  for (int r = 0; r < g.B; ++r) {
    const size_t o = size_t(r) * size_t(g.S);
    const int valid = int(std::count(mask.begin() + o, mask.begin() + o + g.S, 1));
    for (auto* v : {&ids, &mask, &labels})
      std::rotate(v->begin() + o, v->begin() + o + valid, v->begin() + o + g.S);
  }
  lora4j_batch left = b;
  left.input_ids = ids.data();
  left.attention_mask = mask.data();
  left.labels = labels.data();
  std::set<std::string> l = ops_run(g, left, nullptr);
  ct::report_bool(S, "a left-padded batch keeps the key mask", l.count(kf) && l.count(kb), "");
  // the right-padded batch with its padding's targets counted
  std::vector<int32_t> counted(g.labels.begin(), g.labels.end());
  for (size_t i = 0; i < counted.size(); ++i)
    if (g.mask[i] == 0) counted[i] = g.ids[i];
  lora4j_batch pc = b;
  pc.labels = counted.data();
  std::set<std::string> c = ops_run(g, pc, nullptr);
  ct::report_bool(S, "padding whose targets count keeps the key mask", c.count(kf) && c.count(kb),
                  "");
}

int main() {
  ct::require_cuda_backend("engine");
  const char* root = std::getenv("LORA4J_TESTDATA");
  g_root = root ? root : "../../java/src/test/resources/hf-reference";
  for (const char* c : {"tiny", "tiny-sliding", "hd128"}) golden(c);
  for (const char* c : {"tiny", "hd128"}) golden(c, true);
  golden("hd128", false, "e4m3");
  golden("hd128", false, "bf16");
  // every case's batch is right-padded: the loss calls above took the unmasked kernels; these
  // hold the masked ones to the same references
  for (const char* c : {"tiny-sliding", "hd128"})
    golden(c, false, nullptr, "LORA4J_RIGHT_PAD_UNMASKED");
  // the residual stream in bf16 (LORA4J_RESIDUAL=bf16): the same contract in every mode
  for (const char* c : {"tiny", "tiny-sliding", "hd128"})
    golden(c, false, nullptr, "LORA4J_RESIDUAL", "bf16");
  residual_switch_refuses();
  qk_precision();
  qk_f16_bounds();
  qkv_dx_fold();
  qkv_dx_direct();
  qkv_wblock();
  refresh_batch();
  qkv_pair_one();
  swiglu_dx_fused_ab();
  swiglu_gu_fused_ab();
  attn_o_bf16();
  right_pad_unmasked();
  packed_segment_runs();
  packing();
  target_sets();
  fold_lifecycle();
  errors();
  phase_times();
  std::printf("test_engine_cuda: %d failure(s)\n", ct::failures());
  return ct::failures() == 0 ? 0 : 1;
}
