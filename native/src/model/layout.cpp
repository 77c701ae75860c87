// Backend-independent pieces of the Mistral model: shape validation, frozen-weight names,
// the LoRA registry (PEFT key names, shapes, flat-arena offsets), batch validation, dtype
// conversion. See engine.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "model/engine.h"

namespace lora4j {

namespace {
const char* const kModules[NUM_PROJ] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                        "mlp.down_proj"};
const char* const kShort[NUM_PROJ] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                      "gate_proj", "up_proj", "down_proj"};

void positive(int64_t v, const char* key) {
  if (v <= 0)
    fail(LORA4J_EINVAL, std::string("config.") + key + " must be > 0, got " + std::to_string(v));
}
}  // namespace

const char* proj_module(int p) { return kModules[p]; }
const char* proj_short(int p) { return kShort[p]; }

ModelShape::ModelShape(const lora4j_model_config& cfg) : c(cfg) {
  positive(c.vocab_size, "vocab_size");
  positive(c.hidden_size, "hidden_size");
  positive(c.intermediate_size, "intermediate_size");
  positive(c.num_layers, "num_hidden_layers");
  positive(c.num_heads, "num_attention_heads");
  positive(c.num_kv_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  positive(c.max_seq_len, "max_seq_len");
  if (c.head_dim % 2 != 0)
    fail(LORA4J_EINVAL, "config.head_dim must be even for RoPE, got " + std::to_string(c.head_dim));
  if (c.num_heads % c.num_kv_heads != 0)
    fail(LORA4J_EINVAL, "config.num_attention_heads (" + std::to_string(c.num_heads) +
                            ") must be a multiple of num_key_value_heads (" +
                            std::to_string(c.num_kv_heads) + ")");
  if (c.sliding_window < 0)
    fail(LORA4J_EINVAL,
         "config.sliding_window must be >= 0 (0 = none), got " + std::to_string(c.sliding_window));
  if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rms_norm_eps))
    fail(LORA4J_EINVAL, "config.rms_norm_eps must be a positive finite number");
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta))
    fail(LORA4J_EINVAL, "config.rope_theta must be a positive finite number");
}

int64_t ModelShape::proj_in(int p) const {
  switch (p) {
    case O:
      return q_dim();
    case DOWN:
      return c.intermediate_size;
    default:
      return c.hidden_size;
  }
}

int64_t ModelShape::proj_out(int p) const {
  switch (p) {
    case Q:
      return q_dim();
    case K:
    case V:
      return kv_dim();
    case GATE:
    case UP:
      return c.intermediate_size;
    default:
      return c.hidden_size;  // O, DOWN
  }
}

std::vector<WeightSpec> weight_specs(const ModelShape& s) {
  std::vector<WeightSpec> w;
  w.push_back(
      {"model.embed_tokens.weight", s.c.vocab_size, s.c.hidden_size, -1, LORA4J_SLOT_EMBED});
  for (int l = 0; l < s.c.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    w.push_back({p + "input_layernorm.weight", s.c.hidden_size, 1, l, LORA4J_SLOT_INPUT_NORM});
    for (int j = 0; j < NUM_PROJ; ++j)
      w.push_back({p + kModules[j] + ".weight", s.proj_out(j), s.proj_in(j), l, j});
    w.push_back(
        {p + "post_attention_layernorm.weight", s.c.hidden_size, 1, l, LORA4J_SLOT_POST_ATTN_NORM});
  }
  w.push_back({"model.norm.weight", s.c.hidden_size, 1, -1, LORA4J_SLOT_FINAL_NORM});
  w.push_back({"lm_head.weight", s.c.vocab_size, s.c.hidden_size, -1, LORA4J_SLOT_LM_HEAD});
  return w;
}

const LoraSpec& LoraLayout::find(const std::string& name) const {
  for (const LoraSpec& t : tensors)
    if (t.name == name) return t;
  fail(LORA4J_EINVAL, "no LoRA tensor named '" + name + "' in the attached adapter");
}

int LoraLayout::index_of(int layer, int proj) const {
  return slot_index[size_t(layer) * NUM_PROJ + size_t(proj)];
}

LoraLayout make_lora_layout(const ModelShape& s, int32_t rank, float scale, uint32_t targets) {
  check_arg(rank > 0, "LoRA rank must be > 0, got " + std::to_string(rank));
  check_arg(std::isfinite(scale), "LoRA scale must be finite");
  check_arg(targets != 0 && (targets & ~0x7Fu) == 0,
            "LoRA targets must be a non-empty set of q,k,v,o,gate,up,down bits, got " +
                std::to_string(targets));
  LoraLayout l;
  l.rank = rank;
  l.scale = scale;
  l.targets = targets;
  l.slot_index.assign(size_t(s.c.num_layers) * NUM_PROJ, -1);
  int64_t off = 0;
  for (int layer = 0; layer < s.c.num_layers; ++layer) {
    for (int p = 0; p < NUM_PROJ; ++p) {
      if (!(targets & (1u << p))) continue;
      std::string base =
          "base_model.model.model.layers." + std::to_string(layer) + "." + kModules[p] + ".lora_";
      l.slot_index[size_t(layer) * NUM_PROJ + size_t(p)] = int(l.tensors.size());
      LoraSpec a{base + "A.weight", layer, p, false, rank, s.proj_in(p), off};
      off += a.numel();
      LoraSpec b{base + "B.weight", layer, p, true, s.proj_out(p), rank, off};
      off += b.numel();
      l.tensors.push_back(a);
      l.tensors.push_back(b);
    }
  }
  l.total = off;
  return l;
}

void validate_batch(const ModelShape& s, const lora4j_batch* b, bool need_labels) {
  check_arg(b->batch > 0, "batch.batch must be > 0, got " + std::to_string(b->batch));
  check_arg(b->seq > 0, "batch.seq must be > 0, got " + std::to_string(b->seq));
  check_arg(b->seq <= s.c.max_seq_len, "batch.seq " + std::to_string(b->seq) +
                                           " exceeds the engine's max_seq_len " +
                                           std::to_string(s.c.max_seq_len));
  check_arg(b->input_ids != nullptr, "batch.input_ids is null");
  check_arg(!need_labels || b->labels != nullptr, "batch.labels is null");
  int64_t n = int64_t(b->batch) * b->seq;
  for (int64_t i = 0; i < n; ++i) {
    int32_t t = b->input_ids[i];
    if (t < 0 || t >= s.c.vocab_size)
      fail(LORA4J_EINVAL, "batch.input_ids[" + std::to_string(i / b->seq) + "][" +
                              std::to_string(i % b->seq) + "] = " + std::to_string(t) +
                              " is outside the vocabulary [0, " + std::to_string(s.c.vocab_size) +
                              ")");
    if (b->labels) {
      int32_t y = b->labels[i];
      if (y != -100 && (y < 0 || y >= s.c.vocab_size))
        fail(LORA4J_EINVAL, "batch.labels[" + std::to_string(i / b->seq) + "][" +
                                std::to_string(i % b->seq) + "] = " + std::to_string(y) +
                                " is neither -100 nor a token id");
    }
    if (b->attention_mask) {
      int32_t m = b->attention_mask[i];
      if (m != 0 && m != 1)
        fail(LORA4J_EINVAL, "batch.attention_mask[" + std::to_string(i / b->seq) + "][" +
                                std::to_string(i % b->seq) + "] = " + std::to_string(m) +
                                " must be 0 or 1");
    }
    if (b->position_ids) {
      int32_t p = b->position_ids[i];
      if (p < 0 || p >= s.c.max_seq_len)
        fail(LORA4J_EINVAL, "batch.position_ids[" + std::to_string(i / b->seq) + "][" +
                                std::to_string(i % b->seq) + "] = " + std::to_string(p) +
                                " outside [0, max_seq_len)");
    }
  }
}

void to_f32(int32_t dtype, const void* src, float* dst, int64_t n) {
  switch (dtype) {
    case LORA4J_DTYPE_F32:
      std::memcpy(dst, src, size_t(n) * sizeof(float));
      return;
    case LORA4J_DTYPE_BF16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint32_t bits = uint32_t(h[i]) << 16;
        std::memcpy(&dst[i], &bits, 4);
      }
      return;
    }
    case LORA4J_DTYPE_F16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint32_t x = h[i], sign = (x & 0x8000u) << 16, exp = (x >> 10) & 0x1F, man = x & 0x3FF;
        uint32_t bits;
        if (exp == 0) {
          if (man == 0) {
            bits = sign;
          } else {  // subnormal: normalize
            int e = -1;
            do {
              ++e;
              man <<= 1;
            } while (!(man & 0x400));
            bits = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3FF) << 13;
          }
        } else if (exp == 31) {
          bits = sign | 0x7F800000u | man << 13;
        } else {
          bits = sign | (exp + 112) << 23 | man << 13;
        }
        std::memcpy(&dst[i], &bits, 4);
      }
      return;
    }
    default:
      fail(LORA4J_EINVAL, "unknown dtype code " + std::to_string(dtype));
  }
}

void Engine::decode_greedy(int32_t token, int32_t count, int32_t eos_id, int32_t* out,
                           int32_t* produced) {
  std::vector<float> logits(size_t(shape_.c.vocab_size));
  *produced = 0;
  for (int32_t k = 0; k < count; ++k) {
    decode_next(token, logits.data());
    token = greedy_argmax(logits.data(), shape_.c.vocab_size);
    out[k] = token;
    *produced = k + 1;
    if (token == eos_id) break;
  }
}

void Engine::decode_sample(int32_t token, int32_t count, int32_t eos_id, const SampleParams& params,
                           int64_t* state, int32_t* out, int32_t* produced) {
  std::vector<float> logits(size_t(shape_.c.vocab_size));
  *produced = 0;
  for (int32_t k = 0; k < count; ++k) {
    decode_next(token, logits.data());
    token = sample_token(logits.data(), shape_.c.vocab_size, params, *state);
    out[k] = token;
    *produced = k + 1;
    if (token == eos_id) break;
  }
}

double Engine::grad_norm() {
  const LoraLayout* l = lora();
  if (!l) fail(LORA4J_ESTATE, "no adapter is attached");
  double sum = 0;
  std::vector<float> buf;
  for (const LoraSpec& t : l->tensors) {
    buf.resize(size_t(t.numel()));
    lora_get(LORA4J_STATE_GRAD, t.name, buf.data(), t.numel());
    for (float g : buf) sum += double(g) * double(g);
  }
  return std::sqrt(sum);
}

int64_t Engine::grad_numel() const {
  const LoraLayout* l = lora();
  if (!l) fail(LORA4J_ESTATE, "no adapter is attached");
  return l->total;
}

namespace {
void check_flat_numel(const Engine& e, int64_t numel) {
  const int64_t total = e.grad_numel();
  check_arg(numel == total, "numel " + std::to_string(numel) +
                                " differs from the gradient arena's " + std::to_string(total) +
                                " elements (lora4j_grad_flat_numel)");
}
}  // namespace

void Engine::grad_get_flat(float* out, int64_t numel) {
  check_flat_numel(*this, numel);
  for (const LoraSpec& t : lora()->tensors)
    lora_get(LORA4J_STATE_GRAD, t.name, out + t.offset, t.numel());
}

void Engine::grad_set_flat(const float* data, int64_t numel) {
  check_flat_numel(*this, numel);
  for (const LoraSpec& t : lora()->tensors) {
    lora_set(LORA4J_STATE_GRAD, t.name, LORA4J_DTYPE_F32, data + t.offset, t.numel());
  }
}

void Engine::dist_init(const uint8_t*, int32_t, int32_t world, int32_t rank) {
  check_arg(world >= 1 && rank >= 0 && rank < world,
            "rank " + std::to_string(rank) + " is not in a group of " + std::to_string(world));
  if (world > 1) {
    fail(LORA4J_EUNSUPPORTED, "this backend has no collectives: a group of " +
                                  std::to_string(world) +
                                  " ranks needs the CUDA backend (NCCL); the CPU backend trains "
                                  "alone (world size 1, virtual workers for robust aggregation)");
  }
}

std::vector<GradBucket> grad_buckets(const LoraLayout& layout, int num_layers,
                                     int64_t bucket_elems) {
  // each layer's range of the arena, checked to be contiguous and in layer order
  std::vector<int64_t> lo(size_t(num_layers), -1), hi(size_t(num_layers), -1),
      numel(size_t(num_layers), 0);
  for (const LoraSpec& t : layout.tensors) {
    if (t.layer < 0 || t.layer >= num_layers)
      fail(LORA4J_EINTERNAL, "LoRA tensor '" + t.name + "' has no layer of the model");
    const size_t l = size_t(t.layer);
    lo[l] = lo[l] < 0 ? t.offset : std::min(lo[l], t.offset);
    hi[l] = std::max(hi[l], t.offset + t.numel());
    numel[l] += t.numel();
  }
  int64_t next = -1;  // where the layer above begins
  for (int l = num_layers - 1; l >= 0; --l) {
    const size_t i = size_t(l);
    if (lo[i] < 0) continue;
    if (hi[i] - lo[i] != numel[i] || (next >= 0 && hi[i] != next))
      fail(LORA4J_EINTERNAL, "the LoRA gradients of layer " + std::to_string(l) +
                                 " are not one range of the flat arena just below the next "
                                 "layer's; buckets cannot be formed");
    next = lo[i];
  }
  std::vector<GradBucket> out;
  int64_t top = -1;  // end of the bucket being gathered, -1: none open
  int64_t low = layout.total, high = 0;
  for (int l = num_layers - 1; l >= 0; --l) {
    const size_t i = size_t(l);
    if (lo[i] < 0) continue;
    if (top < 0) top = hi[i];
    low = std::min(low, lo[i]);
    high = std::max(high, hi[i]);
    int below = l - 1;  // the next layer that holds LoRA tensors, or -1
    while (below >= 0 && lo[size_t(below)] < 0) --below;
    if (below < 0 || top - lo[i] >= bucket_elems) {
      out.push_back({lo[i], top, l});
      top = -1;
    }
  }
  // what no layer holds (nothing in today's layout): reduced after the whole backward
  if (out.empty()) {
    if (layout.total > 0) out.push_back({0, layout.total, -1});
  } else {
    if (high < layout.total) out.push_back({high, layout.total, -1});
    if (low > 0) out.push_back({0, low, -1});
  }
  return out;
}

void Engine::dist_allreduce_grad() {
  grad_numel();
  check_not_aborted("the all-reduce of the gradients");
}

void Engine::dist_allgather_grad(float* out, int64_t numel) {
  check_not_aborted("the all-gather of the gradients");
  grad_get_flat(out, numel);
}

void Engine::dist_allreduce_f64(double*, int32_t count) {
  check_arg(count >= 0, "count must be >= 0");
  check_not_aborted("the all-reduce of the step's sums");
}

void Engine::dist_abort(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(abort_mutex_);
    if (!aborted_.load(std::memory_order_relaxed)) abort_reason_ = reason;
  }
  aborted_.store(true, std::memory_order_release);
}

std::string Engine::abort_reason() const {
  std::lock_guard<std::mutex> lock(abort_mutex_);
  return abort_reason_;
}

void Engine::check_not_aborted(const char* what) const {
  if (!abort_requested()) return;
  fail(LORA4J_EDEVICE,
       std::string(what) + " cannot run: the group was aborted (" + abort_reason() + ")");
}

}  // namespace lora4j
