// The CPU backend: the whole Mistral + LoRA training step in fp32 on the ops of cpu/ops.h.
//
// Memory, llm.c style:
//  - frozen weights: one fp32 arena, one slice per HF tensor (bf16 upcast exactly);
//  - LoRA: four flat fp32 arenas laid out by LoraLayout: parameters, gradients, AdamW exp_avg,
//    exp_avg_sq (so the gradient norm and the optimizer are single loops over flat arrays);
//  - activations: sized from the largest batch shape seen (tokens = batch * seq) and reused.
//    The residual stream after every layer is always kept ((L + 1) x tokens x hidden). With
//    RECOMPUTE_NONE every layer keeps its own activations for the backward; with
//    RECOMPUTE_LAYER a single set is shared and each layer's forward is re-run from its kept
//    input just before its backward (RECOMPUTE_SELECTIVE and RECOMPUTE_ATTENTION the same here:
//    keeping the attention tensors saves time only on the CUDA backend). The forward is
//    deterministic, so the modes give bitwise-identical gradients.
//  - KV cache for decoding: keys (after RoPE) and values of max_seq_len positions per layer.
//
// One layer (x: residual stream [n, d]):
//   mid = x + o_proj(attention(rope(q_proj(rmsnorm1(x))), rope(k_proj(.)), v_proj(.)))
//   out = mid + down_proj(silu(gate_proj(rmsnorm2(mid))) * up_proj(rmsnorm2(mid)))
// every projection being a LoRA linear when the adapter targets it. Then the final RMSNorm and
// the LM head fused with the shifted cross-entropy (logits[t] predicts labels[t + 1]).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cpu/cpu_engine.h"
#include "cpu/ops.h"
#include "cpu/ops_internal.h"
#include "cpu/thread_pool.h"
#include "model/nf4.h"

namespace lora4j {
namespace {

using cpu::AttentionMask;
using Buf = std::vector<float>;

// What one layer keeps for its backward.
struct LayerActs {
  Buf ln1, rstd1, q, k, v, xa_q, xa_k, xa_v, att, lse, xa_o, mid, ln2, rstd2, gate, up, xa_gate,
      xa_up, h, xa_down;
  template <class F>
  void each(F&& f) {
    for (Buf* b : {&ln1,  &rstd1, &q,   &k,     &v,    &xa_q, &xa_k,    &xa_v,  &att, &lse,
                   &xa_o, &mid,   &ln2, &rstd2, &gate, &up,   &xa_gate, &xa_up, &h,   &xa_down})
      f(*b);
  }
};

int64_t bytes_of(const Buf& b) { return int64_t(b.capacity() * sizeof(float)); }

class CpuEngine final : public Engine {
 public:
  CpuEngine(const ModelShape& s, const lora4j_engine_options& opt)
      : Engine(s), tp_(opt.num_threads), recompute_(opt.recompute != LORA4J_RECOMPUTE_NONE) {
    specs_ = weight_specs(shape_);
    int64_t off = 0;
    const int L = shape_.c.num_layers;
    ln1_.assign(size_t(L), -1);
    ln2_.assign(size_t(L), -1);
    proj_.assign(size_t(L) * NUM_PROJ, -1);
    for (size_t i = 0; i < specs_.size(); ++i) {
      const WeightSpec& w = specs_[i];
      index_[w.name] = int(i);
      woff_.push_back(off);
      off += w.numel();
      switch (w.slot) {
        case LORA4J_SLOT_INPUT_NORM:
          ln1_[size_t(w.layer)] = int(i);
          break;
        case LORA4J_SLOT_POST_ATTN_NORM:
          ln2_[size_t(w.layer)] = int(i);
          break;
        case LORA4J_SLOT_EMBED:
          embed_ = int(i);
          break;
        case LORA4J_SLOT_FINAL_NORM:
          norm_ = int(i);
          break;
        case LORA4J_SLOT_LM_HEAD:
          head_ = int(i);
          break;
        default:
          proj_[size_t(w.layer) * NUM_PROJ + size_t(w.slot)] = int(i);
      }
    }
    weights_.assign(size_t(off), 0.0f);
    wset_.assign(specs_.size(), 0);
    note_memory();
  }

  // ---- frozen weights ----------------------------------------------------------------------
  void set_weight(const std::string& name, int32_t dtype, const void* data,
                  int64_t numel) override {
    const int i = weight_index(name);
    const WeightSpec& w = specs_[size_t(i)];
    check_arg(numel == w.numel(), "weight '" + name + "' has " + std::to_string(w.numel()) +
                                      " elements (" + shape_str(w) + "), got numel " +
                                      std::to_string(numel));
    to_f32(dtype, data, weights_.data() + woff_[size_t(i)], numel);
    wset_[size_t(i)] = 1;
    invalidate_cache();
  }

  // The CPU twin computes in fp32 anyway: an NF4 weight is held dequantized, exactly the values
  // set_weight would hold for lora4j_nf4_dequantize's result.
  void set_weight_nf4(const std::string& name, const lora4j_nf4_weight& nf4) override {
    const int i = weight_index(name);
    check_arg(nf4.numel == specs_[size_t(i)].numel(),
              "weight '" + name + "': NF4 numel " + std::to_string(nf4.numel) +
                  " != " + std::to_string(specs_[size_t(i)].numel()));
    nf4_dequantize(nf4, weights_.data() + woff_[size_t(i)], name);
    wset_[size_t(i)] = 1;
    invalidate_cache();
  }

  void get_weight(const std::string& name, float* out, int64_t numel) override {
    const int i = weight_index(name);
    const WeightSpec& w = specs_[size_t(i)];
    check_arg(numel == w.numel(), "weight '" + name + "' has " + std::to_string(w.numel()) +
                                      " elements (" + shape_str(w) + "), buffer holds " +
                                      std::to_string(numel));
    if (!wset_[size_t(i)]) fail(LORA4J_ESTATE, "weight '" + name + "' has not been set");
    std::memcpy(out, weights_.data() + woff_[size_t(i)], size_t(numel) * sizeof(float));
  }

  void memory(int64_t* in_use, int64_t* peak) override {
    note_memory();
    *in_use = bytes_now();
    *peak = peak_;
  }

  // ---- adapter -----------------------------------------------------------------------------
  void lora_attach(int32_t rank, float scale, uint32_t targets) override {
    auto layout = std::make_unique<LoraLayout>(make_lora_layout(shape_, rank, scale, targets));
    lora_.reset();
    for (Buf* b : {&params_, &grads_, &exp_avg_, &exp_avg_sq_}) Buf().swap(*b);
    const size_t n = size_t(layout->total);
    params_.assign(n, 0.0f);
    grads_.assign(n, 0.0f);
    exp_avg_.assign(n, 0.0f);
    exp_avg_sq_.assign(n, 0.0f);
    lora_ = std::move(layout);
    step_ = 0;
    invalidate_cache();
    note_memory();
  }

  void lora_detach() override {
    lora_.reset();
    for (Buf* b : {&params_, &grads_, &exp_avg_, &exp_avg_sq_}) Buf().swap(*b);
    invalidate_cache();
  }

  const LoraLayout* lora() const override { return lora_.get(); }

  void lora_get(int32_t kind, const std::string& name, float* out, int64_t numel) override {
    const LoraSpec& t = lora_tensor(name, numel);
    std::memcpy(out, state(kind).data() + t.offset, size_t(numel) * sizeof(float));
  }

  void lora_set(int32_t kind, const std::string& name, int32_t dtype, const void* data,
                int64_t numel) override {
    const LoraSpec& t = lora_tensor(name, numel);
    to_f32(dtype, data, state(kind).data() + t.offset, numel);
    if (kind == LORA4J_STATE_PARAM) invalidate_cache();
  }

  int64_t optimizer_step_count() const override { return step_; }
  void set_optimizer_step_count(int64_t step) override {
    check_arg(step >= 0, "step must be >= 0, got " + std::to_string(step));
    step_ = step;
  }

  // W += scale * B A for every targeted projection, then the adapter is removed.
  void lora_merge() override {
    require_lora("lora_merge");
    require_weights();
    const LoraLayout& l = *lora_;
    for (size_t t = 0; t < l.tensors.size(); t += 2) {
      const LoraSpec& a = l.tensors[t];
      const LoraSpec& b = l.tensors[t + 1];
      float* w =
          weights_.data() + woff_[size_t(proj_[size_t(a.layer) * NUM_PROJ + size_t(a.proj)])];
      const float* A = params_.data() + a.offset;
      const float* B = params_.data() + b.offset;
      const int64_t out = b.rows, in = a.cols, r = a.rows;
      const double s = l.scale;
      cpu::parallel_for(&tp_, 0, out, 8, [&](int64_t lo, int64_t hi) {
        std::vector<double> row(static_cast<size_t>(in));
        for (int64_t o = lo; o < hi; ++o) {
          std::fill(row.begin(), row.end(), 0.0);
          for (int64_t j = 0; j < r; ++j) {
            const double bj = B[o * r + j];
            const float* aj = A + j * in;
            for (int64_t i = 0; i < in; ++i) row[size_t(i)] += bj * aj[i];
          }
          float* wo = w + o * in;
          for (int64_t i = 0; i < in; ++i) wo[i] = float(double(wo[i]) + s * row[size_t(i)]);
        }
      });
    }
    lora_detach();
  }

  // ---- training ----------------------------------------------------------------------------
  void zero_grad() override { std::fill(grads_.begin(), grads_.end(), 0.0f); }

  void forward_backward(const lora4j_batch& b, float grad_scale, double* loss_sum,
                        int64_t* tokens) override {
    require_lora("forward_backward");
    require_weights();
    forward(b);
    const int64_t n = n_, d = shape_.c.hidden_size;
    double loss = 0;
    int64_t count = 0;
    cpu::lm_head_cross_entropy(&tp_, normed_.data(), W(head_), targets_.data(), n, d,
                               shape_.c.vocab_size, grad_scale, &loss, &count, dln_.data());
    cpu::rmsnorm_backward(&tp_, dln_.data(), res(shape_.c.num_layers), W(norm_), rstdf_.data(),
                          dres_.data(), n, d, false);
    for (int l = shape_.c.num_layers - 1; l >= 0; --l) {
      LayerActs& a = acts(l);
      if (recompute_) layer_forward(l, res(l), rec_out_.data(), a);
      layer_backward(l, res(l), a, l > 0);
    }
    *loss_sum = loss;
    *tokens = count;
  }

  // The global L2 norm in one pass over the flat gradients, the same sum optimizer_step takes
  // (Engine's default copies each tensor out through lora_get).
  double grad_norm() override {
    require_lora("grad_norm");
    return std::sqrt(cpu::sum_squares(&tp_, grads_.data(), int64_t(grads_.size())));
  }

  void optimizer_step(const lora4j_adamw& o, lora4j_step_result* result) override {
    require_lora("optimizer_step");
    check_arg(std::isfinite(o.lr) && o.lr >= 0, "adamw.lr must be finite and >= 0");
    check_arg(o.beta1 >= 0 && o.beta1 < 1, "adamw.beta1 must be in [0, 1)");
    check_arg(o.beta2 >= 0 && o.beta2 < 1, "adamw.beta2 must be in [0, 1)");
    check_arg(std::isfinite(o.eps) && o.eps >= 0, "adamw.eps must be finite and >= 0");
    check_arg(std::isfinite(o.weight_decay) && o.weight_decay >= 0,
              "adamw.weight_decay must be finite and >= 0");
    check_arg(!std::isnan(o.max_grad_norm), "adamw.max_grad_norm is NaN");
    const int64_t n = int64_t(grads_.size());
    const double norm = std::sqrt(cpu::sum_squares(&tp_, grads_.data(), n));
    result->grad_norm = norm;
    if (!std::isfinite(norm)) {  // skipped: moments and step untouched
      zero_grad();
      result->applied = 0;
      result->step = step_;
      return;
    }
    // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped to 1
    double mult = 1.0;
    if (o.max_grad_norm > 0) mult = std::min(1.0, double(o.max_grad_norm) / (norm + 1e-6));
    ++step_;
    cpu::adamw_update(&tp_, params_.data(), grads_.data(), exp_avg_.data(), exp_avg_sq_.data(), n,
                      float(mult), o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, step_);
    zero_grad();
    invalidate_cache();
    result->applied = 1;
    result->step = step_;
  }

  // ---- inference ---------------------------------------------------------------------------
  void eval_loss(const lora4j_batch& b, double* loss_sum, int64_t* tokens) override {
    require_weights();
    forward(b);
    double loss = 0;
    int64_t count = 0;
    cpu::lm_head_cross_entropy(&tp_, normed_.data(), W(head_), targets_.data(), n_,
                               shape_.c.hidden_size, shape_.c.vocab_size, 1.0f, &loss, &count,
                               nullptr);
    *loss_sum = loss;
    *tokens = count;
  }

  void logits(const lora4j_batch& b, float* out) override {
    require_weights();
    forward(b);
    cpu::linear_forward(&tp_, normed_.data(), W(head_), out, n_, shape_.c.hidden_size,
                        shape_.c.vocab_size, false);
  }

  // HF convention: entry 0 the embedding output, entry k < L the output of layer k, entry L
  // the output of the last layer after the final RMSNorm.
  void hidden_states(const lora4j_batch& b, float* out) override {
    require_weights();
    forward(b);
    const int64_t nd = n_ * shape_.c.hidden_size;
    const int L = shape_.c.num_layers;
    for (int l = 0; l < L; ++l) std::memcpy(out + l * nd, res(l), size_t(nd) * sizeof(float));
    std::memcpy(out + int64_t(L) * nd, normed_.data(), size_t(nd) * sizeof(float));
  }

  void decode_start(const int32_t* prompt, int32_t length, float* logits) override {
    require_weights();
    check_arg(length >= 1 && length <= shape_.c.max_seq_len,
              "prompt length " + std::to_string(length) + " outside [1, max_seq_len " +
                  std::to_string(shape_.c.max_seq_len) + "]");
    const int64_t kv = shape_.kv_dim();
    const int L = shape_.c.num_layers;
    if (kcache_.empty()) {
      kcache_.assign(size_t(L) * size_t(shape_.c.max_seq_len) * size_t(kv), 0.0f);
      vcache_.assign(kcache_.size(), 0.0f);
    }
    lora4j_batch b{};
    b.batch = 1;
    b.seq = length;
    b.input_ids = prompt;
    prepare(b);
    embed(prompt);
    for (int l = 0; l < L; ++l) {
      LayerActs& a = acts(l);
      layer_forward(l, res(l), res(l + 1), a);
      std::memcpy(kcache_.data() + cache_off(l, 0), a.k.data(),
                  size_t(length * kv) * sizeof(float));
      std::memcpy(vcache_.data() + cache_off(l, 0), a.v.data(),
                  size_t(length * kv) * sizeof(float));
    }
    head_last(res(L) + int64_t(length - 1) * shape_.c.hidden_size, logits);
    cache_len_ = length;
    note_memory();
  }

  void decode_next(int32_t token, float* logits) override {
    require_weights();
    if (cache_len_ < 0)
      fail(LORA4J_ESTATE,
           "no decoding in progress (call decode_start first; "
           "changing weights or the adapter ends a decoding)");
    if (cache_len_ >= shape_.c.max_seq_len)
      fail(LORA4J_ESTATE, "the KV cache is full (max_seq_len " +
                              std::to_string(shape_.c.max_seq_len) + " positions)");
    check_arg(token >= 0 && token < shape_.c.vocab_size,
              "token " + std::to_string(token) + " outside the vocabulary");
    const ModelShape& s = shape_;
    const int64_t d = s.c.hidden_size, I = s.c.intermediate_size, H = s.c.num_heads,
                  KH = s.c.num_kv_heads, D = s.c.head_dim, kv = s.kv_dim(), qd = s.q_dim();
    const int32_t pos = int32_t(cache_len_);
    const int64_t r = lora_ ? lora_->rank : 1;
    Buf x(W(embed_) + int64_t(token) * d, W(embed_) + int64_t(token + 1) * d);
    auto sz = [](int64_t k) { return static_cast<size_t>(k); };
    Buf ln(sz(d)), q(sz(qd)), att(sz(qd)), mid(sz(d)), gate(sz(I)), up(sz(I)), h(sz(I)),
        down(sz(d)), xa(sz(r)), sc(sz(pos + 1));
    float rstd;
    const float scale = float(1.0 / std::sqrt(double(D)));
    const int64_t j0 =
        s.c.sliding_window > 0 ? std::max<int64_t>(0, pos - s.c.sliding_window + 1) : 0;
    for (int l = 0; l < s.c.num_layers; ++l) {
      float* kc = kcache_.data() + cache_off(l, 0);
      float* vc = vcache_.data() + cache_off(l, 0);
      cpu::rmsnorm_forward(nullptr, x.data(), W(ln1_[size_t(l)]), ln.data(), &rstd, 1, d,
                           s.c.rms_norm_eps);
      proj_forward(l, Q, ln.data(), xa.data(), q.data(), 1);
      proj_forward(l, K, ln.data(), xa.data(), kc + pos * kv, 1);
      proj_forward(l, V, ln.data(), xa.data(), vc + pos * kv, 1);
      cpu::rope_forward(nullptr, q.data(), &pos, 1, H, D, s.c.rope_theta);
      cpu::rope_forward(nullptr, kc + pos * kv, &pos, 1, KH, D, s.c.rope_theta);
      // attention of the one new query over the cached keys (same arithmetic as
      // cpu::attention_forward)
      for (int64_t hh = 0; hh < H; ++hh) {
        const int64_t g = hh / (H / KH);
        const float* qh = q.data() + hh * D;
        float* oh = att.data() + hh * D;
        float mx = -INFINITY;
        for (int64_t j = j0; j <= pos; ++j) {
          sc[size_t(j)] = cpu::detail::dot(qh, kc + j * kv + g * D, D) * scale;
          mx = std::max(mx, sc[size_t(j)]);
        }
        double sum = 0;
        for (int64_t j = j0; j <= pos; ++j) {
          sc[size_t(j)] = std::exp(sc[size_t(j)] - mx);
          sum += sc[size_t(j)];
        }
        const float inv = float(1.0 / sum);
        std::fill(oh, oh + D, 0.0f);
        for (int64_t j = j0; j <= pos; ++j) {
          const float p = sc[size_t(j)] * inv;
          const float* vj = vc + j * kv + g * D;
          for (int64_t e = 0; e < D; ++e) oh[e] += p * vj[e];
        }
      }
      proj_forward(l, O, att.data(), xa.data(), mid.data(), 1);
      for (int64_t e = 0; e < d; ++e) mid[size_t(e)] += x[size_t(e)];
      cpu::rmsnorm_forward(nullptr, mid.data(), W(ln2_[size_t(l)]), ln.data(), &rstd, 1, d,
                           s.c.rms_norm_eps);
      proj_forward(l, GATE, ln.data(), xa.data(), gate.data(), 1);
      proj_forward(l, UP, ln.data(), xa.data(), up.data(), 1);
      cpu::swiglu_forward(nullptr, gate.data(), up.data(), h.data(), I);
      proj_forward(l, DOWN, h.data(), xa.data(), down.data(), 1);
      for (int64_t e = 0; e < d; ++e) x[size_t(e)] = down[size_t(e)] + mid[size_t(e)];
    }
    head_last(x.data(), logits);
    ++cache_len_;
  }

  // ---- the gradients as one buffer (issue 14): the arena itself ------------------------------
  void grad_get_flat(float* out, int64_t numel) override {
    check_arg(numel == grad_numel(),
              "numel " + std::to_string(numel) + " differs from the gradient arena's " +
                  std::to_string(grad_numel()) + " elements (lora4j_grad_flat_numel)");
    std::copy(grads_.begin(), grads_.end(), out);
  }
  void grad_set_flat(const float* data, int64_t numel) override {
    check_arg(numel == grad_numel(),
              "numel " + std::to_string(numel) + " differs from the gradient arena's " +
                  std::to_string(grad_numel()) + " elements (lora4j_grad_flat_numel)");
    std::copy(data, data + numel, grads_.begin());
  }

 private:
  // ---- helpers -----------------------------------------------------------------------------
  static std::string shape_str(const WeightSpec& w) {
    return w.ndim() == 1 ? "[" + std::to_string(w.rows) + "]"
                         : "[" + std::to_string(w.rows) + ", " + std::to_string(w.cols) + "]";
  }

  int weight_index(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end())
      fail(LORA4J_EINVAL, "unknown weight '" + name + "': not a tensor of this Mistral model");
    return it->second;
  }

  const float* W(int idx) const { return weights_.data() + woff_[size_t(idx)]; }

  void require_weights() const {
    for (size_t i = 0; i < specs_.size(); ++i)
      if (!wset_[i])
        fail(LORA4J_ESTATE, "weight '" + specs_[i].name +
                                "' has not been set (every weight must be set before a forward)");
  }

  void require_lora(const char* what) const {
    if (!lora_)
      fail(LORA4J_ESTATE, std::string("no LoRA adapter is attached (") + what + " needs one)");
  }

  const LoraSpec& lora_tensor(const std::string& name, int64_t numel) const {
    if (!lora_) fail(LORA4J_ESTATE, "no LoRA adapter is attached (tensor '" + name + "')");
    const LoraSpec& t = lora_->find(name);
    check_arg(numel == t.numel(), "LoRA tensor '" + name + "' has " + std::to_string(t.numel()) +
                                      " elements ([" + std::to_string(t.rows) + ", " +
                                      std::to_string(t.cols) + "]), got numel " +
                                      std::to_string(numel));
    return t;
  }

  Buf& state(int32_t kind) {
    switch (kind) {
      case LORA4J_STATE_PARAM:
        return params_;
      case LORA4J_STATE_GRAD:
        return grads_;
      case LORA4J_STATE_EXP_AVG:
        return exp_avg_;
      case LORA4J_STATE_EXP_AVG_SQ:
        return exp_avg_sq_;
      default:
        fail(LORA4J_EINVAL, "unknown LoRA state kind " + std::to_string(kind) +
                                " (0 param, 1 grad, 2 exp_avg, 3 exp_avg_sq)");
    }
  }

  void invalidate_cache() { cache_len_ = -1; }

  int64_t cache_off(int l, int64_t pos) const {
    return (int64_t(l) * shape_.c.max_seq_len + pos) * shape_.kv_dim();
  }

  int64_t bytes_now() {
    int64_t b = 0;
    for (Buf* x :
         {&weights_, &params_, &grads_, &exp_avg_, &exp_avg_sq_, &res_,    &normed_, &rstdf_,
          &rec_out_, &dres_,   &dmid_,  &dln_,     &dtmp_,       &datt_,   &dq_,     &dk_,
          &dv_,      &dh_,     &dgate_, &dup_,     &dxa_,        &kcache_, &vcache_})
      b += bytes_of(*x);
    for (LayerActs& a : acts_) a.each([&](Buf& x) { b += bytes_of(x); });
    b += int64_t(targets_.capacity() + positions_.capacity()) * 4;
    return b;
  }
  void note_memory() { peak_ = std::max(peak_, bytes_now()); }

  LayerActs& acts(int l) { return acts_[recompute_ ? 0 : size_t(l)]; }
  float* res(int l) { return res_.data() + int64_t(l) * n_ * shape_.c.hidden_size; }

  // Sizes the activations for n tokens (grown, never shrunk) and records the batch.
  void ensure_acts(int64_t B, int64_t S) {
    const ModelShape& s = shape_;
    const int64_t n = B * S, d = s.c.hidden_size, I = s.c.intermediate_size, qd = s.q_dim(),
                  kv = s.kv_dim(), r = lora_ ? lora_->rank : 0, H = s.c.num_heads;
    const int L = s.c.num_layers;
    B_ = B;
    S_ = S;
    n_ = n;
    if (n <= cap_n_ && r <= cap_r_) return;
    cap_n_ = std::max(cap_n_, n);
    cap_r_ = std::max(cap_r_, r);
    const size_t N = size_t(cap_n_), R = size_t(std::max<int64_t>(cap_r_, 1));
    acts_.resize(recompute_ ? 1 : size_t(L));
    for (LayerActs& a : acts_) {
      a.ln1.resize(N * size_t(d));
      a.rstd1.resize(N);
      a.q.resize(N * size_t(qd));
      a.k.resize(N * size_t(kv));
      a.v.resize(N * size_t(kv));
      a.xa_q.resize(N * R);
      a.xa_k.resize(N * R);
      a.xa_v.resize(N * R);
      a.att.resize(N * size_t(qd));
      a.lse.resize(N * size_t(H));
      a.xa_o.resize(N * R);
      a.mid.resize(N * size_t(d));
      a.ln2.resize(N * size_t(d));
      a.rstd2.resize(N);
      a.gate.resize(N * size_t(I));
      a.up.resize(N * size_t(I));
      a.xa_gate.resize(N * R);
      a.xa_up.resize(N * R);
      a.h.resize(N * size_t(I));
      a.xa_down.resize(N * R);
    }
    res_.resize(size_t(L + 1) * N * size_t(d));
    normed_.resize(N * size_t(d));
    rstdf_.resize(N);
    if (recompute_) rec_out_.resize(N * size_t(d));
    dres_.resize(N * size_t(d));
    dmid_.resize(N * size_t(d));
    dln_.resize(N * size_t(d));
    dtmp_.resize(N * size_t(std::max(d, I)));
    datt_.resize(N * size_t(qd));
    dq_.resize(N * size_t(qd));
    dk_.resize(N * size_t(kv));
    dv_.resize(N * size_t(kv));
    dh_.resize(N * size_t(I));
    dgate_.resize(N * size_t(I));
    dup_.resize(N * size_t(I));
    dxa_.resize(N * R);
    targets_.resize(N);
    positions_.resize(N);
    note_memory();
  }

  // Activations, positions, shifted targets and the attention mask for batch b.
  void prepare(const lora4j_batch& b) {
    ensure_acts(b.batch, b.seq);
    const int64_t B = b.batch, S = b.seq;
    for (int64_t r = 0; r < B; ++r)
      for (int64_t t = 0; t < S; ++t) {
        const int64_t i = r * S + t;
        positions_[size_t(i)] = b.position_ids ? b.position_ids[i] : int32_t(t);
        targets_[size_t(i)] = (b.labels && t + 1 < S) ? b.labels[i + 1] : -100;
      }
    mask_ = AttentionMask();
    mask_.key_mask = b.attention_mask;
    mask_.segments = b.segment_ids;
    mask_.window = shape_.c.sliding_window;
  }

  void embed(const int32_t* ids) {
    const int64_t d = shape_.c.hidden_size;
    const float* E = W(embed_);
    float* x = res(0);
    for (int64_t i = 0; i < n_; ++i)
      std::memcpy(x + i * d, E + int64_t(ids[i]) * d, size_t(d) * sizeof(float));
  }

  // Embedding, every layer, final norm (into normed_).
  void forward(const lora4j_batch& b) {
    prepare(b);
    embed(b.input_ids);
    const int L = shape_.c.num_layers;
    for (int l = 0; l < L; ++l) layer_forward(l, res(l), res(l + 1), acts(l));
    cpu::rmsnorm_forward(&tp_, res(L), W(norm_), normed_.data(), rstdf_.data(), n_,
                         shape_.c.hidden_size, shape_.c.rms_norm_eps);
  }

  // LoRA pointers of (layer, proj) in an arena, or null when not targeted.
  const float* lora_a(const Buf& arena, int l, int p) const {
    if (!lora_) return nullptr;
    int i = lora_->index_of(l, p);
    return i < 0 ? nullptr : arena.data() + lora_->tensors[size_t(i)].offset;
  }
  const float* lora_b(const Buf& arena, int l, int p) const {
    if (!lora_) return nullptr;
    int i = lora_->index_of(l, p);
    return i < 0 ? nullptr : arena.data() + lora_->tensors[size_t(i) + 1].offset;
  }

  void proj_forward(int l, int p, const float* x, float* xa, float* y, int64_t n) {
    cpu::lora_linear_forward(n > 1 ? &tp_ : nullptr, x, W(proj_[size_t(l) * NUM_PROJ + size_t(p)]),
                             lora_a(params_, l, p), lora_b(params_, l, p),
                             lora_ ? lora_->scale : 0.0f, xa, y, n, shape_.proj_in(p),
                             shape_.proj_out(p), lora_ ? lora_->rank : 0);
  }

  void proj_backward(int l, int p, const float* dy, const float* x, const float* xa, float* dx) {
    cpu::lora_linear_backward(
        &tp_, dy, x, W(proj_[size_t(l) * NUM_PROJ + size_t(p)]), lora_a(params_, l, p),
        lora_b(params_, l, p), xa, lora_ ? lora_->scale : 0.0f, dx,
        const_cast<float*>(lora_a(grads_, l, p)), const_cast<float*>(lora_b(grads_, l, p)),
        dxa_.data(), n_, shape_.proj_in(p), shape_.proj_out(p), lora_ ? lora_->rank : 0);
  }

  void layer_forward(int l, const float* x, float* out, LayerActs& a) {
    const ModelShape& s = shape_;
    const int64_t n = n_, d = s.c.hidden_size, I = s.c.intermediate_size;
    const float eps = s.c.rms_norm_eps;
    cpu::rmsnorm_forward(&tp_, x, W(ln1_[size_t(l)]), a.ln1.data(), a.rstd1.data(), n, d, eps);
    proj_forward(l, Q, a.ln1.data(), a.xa_q.data(), a.q.data(), n);
    proj_forward(l, K, a.ln1.data(), a.xa_k.data(), a.k.data(), n);
    proj_forward(l, V, a.ln1.data(), a.xa_v.data(), a.v.data(), n);
    cpu::rope_forward(&tp_, a.q.data(), positions_.data(), n, s.c.num_heads, s.c.head_dim,
                      s.c.rope_theta);
    cpu::rope_forward(&tp_, a.k.data(), positions_.data(), n, s.c.num_kv_heads, s.c.head_dim,
                      s.c.rope_theta);
    cpu::attention_forward(&tp_, a.q.data(), a.k.data(), a.v.data(), a.att.data(), a.lse.data(),
                           mask_, B_, S_, s.c.num_heads, s.c.num_kv_heads, s.c.head_dim);
    proj_forward(l, O, a.att.data(), a.xa_o.data(), a.mid.data(), n);
    for (int64_t i = 0; i < n * d; ++i) a.mid[size_t(i)] += x[i];
    cpu::rmsnorm_forward(&tp_, a.mid.data(), W(ln2_[size_t(l)]), a.ln2.data(), a.rstd2.data(), n, d,
                         eps);
    proj_forward(l, GATE, a.ln2.data(), a.xa_gate.data(), a.gate.data(), n);
    proj_forward(l, UP, a.ln2.data(), a.xa_up.data(), a.up.data(), n);
    cpu::swiglu_forward(&tp_, a.gate.data(), a.up.data(), a.h.data(), n * I);
    proj_forward(l, DOWN, a.h.data(), a.xa_down.data(), out, n);
    for (int64_t i = 0; i < n * d; ++i) out[i] += a.mid[size_t(i)];
  }

  // dres_ holds d loss / d (output of layer l); on return (need_dx) d loss / d (its input).
  // Without need_dx (layer 0: its input gradient would reach only the frozen embedding) q, k and
  // v's input gradients are skipped, and, as on the CUDA engine, the attention backward without
  // LoRA on q, k and v and the second norm's backward without LoRA on o as well.
  void layer_backward(int l, const float* x, LayerActs& a, bool need_dx) {
    const ModelShape& s = shape_;
    const int64_t n = n_, d = s.c.hidden_size, I = s.c.intermediate_size;
    auto add = [&](float* y, const float* v, int64_t m) {
      for (int64_t i = 0; i < m; ++i) y[i] += v[i];
    };
    // MLP block: out = mid + down(silu(gate(ln2)) * up(ln2))
    proj_backward(l, DOWN, dres_.data(), a.h.data(), a.xa_down.data(), dh_.data());
    cpu::swiglu_backward(&tp_, dh_.data(), a.gate.data(), a.up.data(), dgate_.data(), dup_.data(),
                         n * I);
    auto lora = [&](int p) { return lora_a(params_, l, p) != nullptr; };
    const bool need_att = need_dx || lora(Q) || lora(K) || lora(V);
    const bool need_mid = need_att || lora(O);
    proj_backward(l, GATE, dgate_.data(), a.ln2.data(), a.xa_gate.data(),
                  need_mid ? dln_.data() : nullptr);
    proj_backward(l, UP, dup_.data(), a.ln2.data(), a.xa_up.data(),
                  need_mid ? dtmp_.data() : nullptr);
    if (!need_mid) return;
    add(dln_.data(), dtmp_.data(), n * d);
    std::memcpy(dmid_.data(), dres_.data(), size_t(n * d) * sizeof(float));
    cpu::rmsnorm_backward(&tp_, dln_.data(), a.mid.data(), W(ln2_[size_t(l)]), a.rstd2.data(),
                          dmid_.data(), n, d, true);
    // attention block: mid = x + o(attention(rope(q(ln1)), rope(k(ln1)), v(ln1)))
    proj_backward(l, O, dmid_.data(), a.att.data(), a.xa_o.data(),
                  need_att ? datt_.data() : nullptr);
    if (!need_att) return;
    cpu::attention_backward(&tp_, datt_.data(), a.q.data(), a.k.data(), a.v.data(), a.att.data(),
                            a.lse.data(), dq_.data(), dk_.data(), dv_.data(), mask_, B_, S_,
                            s.c.num_heads, s.c.num_kv_heads, s.c.head_dim);
    cpu::rope_backward(&tp_, dq_.data(), positions_.data(), n, s.c.num_heads, s.c.head_dim,
                       s.c.rope_theta);
    cpu::rope_backward(&tp_, dk_.data(), positions_.data(), n, s.c.num_kv_heads, s.c.head_dim,
                       s.c.rope_theta);
    if (!need_dx) {
      proj_backward(l, Q, dq_.data(), a.ln1.data(), a.xa_q.data(), nullptr);
      proj_backward(l, K, dk_.data(), a.ln1.data(), a.xa_k.data(), nullptr);
      proj_backward(l, V, dv_.data(), a.ln1.data(), a.xa_v.data(), nullptr);
      return;
    }
    proj_backward(l, Q, dq_.data(), a.ln1.data(), a.xa_q.data(), dln_.data());
    proj_backward(l, K, dk_.data(), a.ln1.data(), a.xa_k.data(), dtmp_.data());
    add(dln_.data(), dtmp_.data(), n * d);
    proj_backward(l, V, dv_.data(), a.ln1.data(), a.xa_v.data(), dtmp_.data());
    add(dln_.data(), dtmp_.data(), n * d);
    std::memcpy(dres_.data(), dmid_.data(), size_t(n * d) * sizeof(float));
    cpu::rmsnorm_backward(&tp_, dln_.data(), x, W(ln1_[size_t(l)]), a.rstd1.data(), dres_.data(), n,
                          d, true);
  }

  // Final norm and LM head of one position (decoding).
  void head_last(const float* x, float* logits) {
    const int64_t d = shape_.c.hidden_size;
    Buf h(static_cast<size_t>(d));
    float rstd;
    cpu::rmsnorm_forward(nullptr, x, W(norm_), h.data(), &rstd, 1, d, shape_.c.rms_norm_eps);
    // one row of logits: parallel over the vocabulary
    const float* Wh = W(head_);
    cpu::parallel_for(&tp_, 0, shape_.c.vocab_size, 256, [&](int64_t lo, int64_t hi) {
      cpu::linear_forward(nullptr, h.data(), Wh + lo * d, logits + lo, 1, d, hi - lo, false);
    });
  }

  cpu::ThreadPool tp_;
  bool recompute_;
  // frozen weights
  std::vector<WeightSpec> specs_;
  std::unordered_map<std::string, int> index_;
  std::vector<int64_t> woff_;
  std::vector<char> wset_;
  Buf weights_;
  int embed_ = -1, norm_ = -1, head_ = -1;
  std::vector<int> ln1_, ln2_, proj_;
  // adapter and optimizer
  std::unique_ptr<LoraLayout> lora_;
  Buf params_, grads_, exp_avg_, exp_avg_sq_;
  int64_t step_ = 0;
  // activations of the current batch
  int64_t B_ = 0, S_ = 0, n_ = 0, cap_n_ = 0, cap_r_ = 0;
  std::vector<LayerActs> acts_;
  Buf res_, normed_, rstdf_, rec_out_;
  Buf dres_, dmid_, dln_, dtmp_, datt_, dq_, dk_, dv_, dh_, dgate_, dup_, dxa_;
  std::vector<int32_t> targets_, positions_;
  AttentionMask mask_;
  // decoding
  Buf kcache_, vcache_;
  int64_t cache_len_ = -1;
  int64_t peak_ = 0;
};

}  // namespace

std::unique_ptr<Engine> make_cpu_engine(const ModelShape& shape,
                                        const lora4j_engine_options& options) {
  check_arg(options.num_threads >= 0,
            "options.num_threads must be >= 0 (0 = all hardware threads), got " +
                std::to_string(options.num_threads));
  return std::make_unique<CpuEngine>(shape, options);
}

}  // namespace lora4j
