// The C API of lora4j.h: argument checks, the thread-local error message, backend dispatch.
// Every entry point runs its body inside guard(), which turns any exception into a status
// code and a message, so nothing thrown in the core ever reaches the JVM.
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <vector>

#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "lora4j.h"
#include "model/engine.h"
#include "model/status.h"
#include "cpu/cpu_engine.h"
#include "api/plugin.h"
#include "model/nf4.h"
#include "model/aggregate.h"

struct lora4j_engine {
  std::unique_ptr<lora4j::Engine> impl;
};

using lora4j::check_arg;

namespace {

thread_local std::string g_last_error;

template <class F>
int guard(const char* fn, F&& body) {
  int status = lora4j::run_status(&g_last_error, std::string(fn) + ": ", "internal error: ", body);
  if (status == LORA4J_OK) g_last_error.clear();
  return status;
}

lora4j::Engine& eng(lora4j_engine* e) {
  if (e == nullptr || !e->impl) lora4j::fail(LORA4J_EINVAL, "engine handle is null");
  return *e->impl;
}

using lora4j::nonnull;
using lora4j::str;

// The first of n values of a float dtype that is not finite (NaN or infinite), or -1 (also for a
// dtype that is not LORA4J_DTYPE_*: the engine names that). Scanned in chunks whose test
// vectorizes (an exponent of all ones), the chunk with one searched again for its index.
template <class T, T kExp>
int64_t first_nonfinite_bits(const T* p, int64_t n) {
  constexpr int64_t kChunk = int64_t(1) << 14;
  for (int64_t s = 0; s < n; s += kChunk) {
    const int64_t e = std::min(n, s + kChunk);
    unsigned bad = 0;
    for (int64_t k = s; k < e; ++k) bad |= unsigned((p[k] & kExp) == kExp);
    if (bad)
      for (int64_t k = s; k < e; ++k)
        if ((p[k] & kExp) == kExp) return k;
  }
  return -1;
}
int64_t first_nonfinite(int32_t dtype, const void* data, int64_t n) {
  switch (dtype) {
    case LORA4J_DTYPE_BF16:
      return first_nonfinite_bits<uint16_t, 0x7F80u>(static_cast<const uint16_t*>(data), n);
    case LORA4J_DTYPE_F16:
      return first_nonfinite_bits<uint16_t, 0x7C00u>(static_cast<const uint16_t*>(data), n);
    case LORA4J_DTYPE_F32:
      return first_nonfinite_bits<uint32_t, 0x7F800000u>(static_cast<const uint32_t*>(data), n);
    default:
      return -1;
  }
}
// "NaN" or "infinite", for value k of a float dtype that first_nonfinite found
std::string nonfinite_kind(int32_t dtype, const void* data, int64_t k) {
  uint32_t mant = 0;
  if (dtype == LORA4J_DTYPE_BF16) mant = static_cast<const uint16_t*>(data)[k] & 0x7Fu;
  if (dtype == LORA4J_DTYPE_F16) mant = static_cast<const uint16_t*>(data)[k] & 0x3FFu;
  if (dtype == LORA4J_DTYPE_F32) mant = static_cast<const uint32_t*>(data)[k] & 0x7FFFFFu;
  return mant ? "NaN" : "infinite";
}

// A prompt for decoding: 1..max_seq_len tokens, each in the vocabulary.
void check_prompt(lora4j::Engine& e, const int32_t* prompt, int32_t length) {
  nonnull(prompt, "prompt");
  lora4j::check_arg(length >= 1 && length <= e.shape().c.max_seq_len,
                    "prompt length " + std::to_string(length) + " outside [1, " +
                        std::to_string(e.shape().c.max_seq_len) + "]");
  for (int32_t i = 0; i < length; ++i)
    lora4j::check_arg(prompt[i] >= 0 && prompt[i] < e.shape().c.vocab_size,
                      "prompt token " + std::to_string(prompt[i]) + " at position " +
                          std::to_string(i) + " outside the vocabulary");
}

// A CUDA engine needs a usable device: without one (no GPU, no driver, a driver
// too old for the runtime) the request is unsupported on this machine, with the driver's reason.
void require_cuda_device(const lora4j_backend_api* api) {
  int32_t n = 0;
  if (api->device_count(&n) != LORA4J_OK || n <= 0)
    lora4j::fail(LORA4J_EUNSUPPORTED, std::string("no usable CUDA device: ") + api->last_error());
}

}  // namespace

extern "C" {

const char* lora4j_last_error(void) { return g_last_error.c_str(); }

int lora4j_version(int32_t* major, int32_t* minor, int32_t* patch) {
  return guard("lora4j_version", [&] {
    *nonnull(major, "major") = 0;
    *nonnull(minor, "minor") = 1;
    *nonnull(patch, "patch") = 0;
  });
}

int lora4j_cuda_available(int32_t* available, char* reason, int32_t reason_cap) {
  return guard("lora4j_cuda_available", [&] {
    nonnull(available, "available");
    std::string why;
    const lora4j_backend_api* api = lora4j::cuda_backend(&why);
    *available = 0;
    if (api) {
      int32_t n = 0;
      int st = api->device_count(&n);
      *available = st == LORA4J_OK && n > 0 ? 1 : 0;
      if (!*available) why = api->last_error();
    }
    if (reason && reason_cap > 0) {
      std::strncpy(reason, why.c_str(), size_t(reason_cap) - 1);
      reason[reason_cap - 1] = 0;
    }
  });
}

int lora4j_cuda_set_library(const char* path) {
  return guard("lora4j_cuda_set_library",
               [&] { lora4j::set_cuda_backend_path(str(path, "path")); });
}

int lora4j_weight_count(const lora4j_model_config* config, int32_t* count) {
  return guard("lora4j_weight_count", [&] {
    nonnull(count, "count");
    lora4j::ModelShape shape(*nonnull(config, "config"));
    *count = int32_t(lora4j::weight_specs(shape).size());
  });
}

int lora4j_weight_info(const lora4j_model_config* config, int32_t index, char* name,
                       int32_t name_cap, int32_t* ndim, int64_t* shape, int32_t* layer,
                       int32_t* slot) {
  return guard("lora4j_weight_info", [&] {
    lora4j::ModelShape ms(*nonnull(config, "config"));
    std::vector<lora4j::WeightSpec> specs = lora4j::weight_specs(ms);
    check_arg(index >= 0 && size_t(index) < specs.size(), "index " + std::to_string(index) +
                                                              " out of range [0, " +
                                                              std::to_string(specs.size()) + ")");
    const lora4j::WeightSpec& w = specs[size_t(index)];
    nonnull(name, "name");
    nonnull(ndim, "ndim");
    nonnull(shape, "shape");
    nonnull(layer, "layer");
    nonnull(slot, "slot");
    check_arg(name_cap > int32_t(w.name.size()), "name buffer too small for " + w.name);
    std::memcpy(name, w.name.c_str(), w.name.size() + 1);
    *ndim = w.ndim();
    shape[0] = w.rows;
    if (w.ndim() == 2) shape[1] = w.cols;
    *layer = w.layer;
    *slot = w.slot;
  });
}

int lora4j_engine_create(const lora4j_model_config* config, const lora4j_engine_options* options,
                         lora4j_engine** out) {
  return guard("lora4j_engine_create", [&] {
    nonnull(out, "out");
    *out = nullptr;
    lora4j::ModelShape shape(*nonnull(config, "config"));
    lora4j_engine_options opt{};
    if (options) opt = *options;
    check_arg(opt.recompute == LORA4J_RECOMPUTE_NONE || opt.recompute == LORA4J_RECOMPUTE_LAYER ||
                  opt.recompute == LORA4J_RECOMPUTE_SELECTIVE ||
                  opt.recompute == LORA4J_RECOMPUTE_ATTENTION,
              "options.recompute must be 0 (none), 1 (per layer), 2 (per layer, attention "
              "output kept) or 3 (per layer, attention inputs and output kept), got " +
                  std::to_string(opt.recompute));
    check_arg(opt.offload_checkpoints == 0 || opt.offload_checkpoints == 1,
              "options.offload_checkpoints must be 0 or 1, got " +
                  std::to_string(opt.offload_checkpoints));
    auto handle = std::make_unique<lora4j_engine>();
    if (opt.device == LORA4J_DEVICE_CPU) {
      handle->impl = lora4j::make_cpu_engine(shape, opt);
    } else if (opt.device == LORA4J_DEVICE_CUDA) {
      std::string why;
      const lora4j_backend_api* api = lora4j::cuda_backend(&why);
      if (!api) lora4j::fail(LORA4J_EUNSUPPORTED, why);
      require_cuda_device(api);
      handle->impl = lora4j::make_plugin_engine(api, shape, opt);
    } else {
      lora4j::fail(LORA4J_EINVAL,
                   "options.device must be 0 (cpu) or 1 (cuda), got " + std::to_string(opt.device));
    }
    *out = handle.release();
  });
}

int lora4j_engine_destroy(lora4j_engine* engine) {
  return guard("lora4j_engine_destroy", [&] { delete engine; });
}

int lora4j_engine_set_weight(lora4j_engine* engine, const char* name, int32_t dtype,
                             const void* data, int64_t numel) {
  return guard("lora4j_engine_set_weight", [&] {
    lora4j::Engine& e = eng(engine);
    const std::string n = str(name, "name");
    nonnull(data, "data");
    // a weight that is not finite would reach the loss as NaN (or, in a query, a row of NaN
    // scores), which the trainer's guard would blame on the data: refused here, by element
    const int64_t bad = numel > 0 ? first_nonfinite(dtype, data, numel) : -1;
    if (bad >= 0) {
      std::string where = "element " + std::to_string(bad);
      for (const lora4j::WeightSpec& w : lora4j::weight_specs(e.shape()))
        if (w.name == n && w.ndim() == 2)
          where += " (row " + std::to_string(bad / w.cols) + ", column " +
                   std::to_string(bad % w.cols) + ")";
      lora4j::fail(LORA4J_EINVAL, "weight '" + n + "' holds a value that is not finite (" +
                                      nonfinite_kind(dtype, data, bad) + ") at " + where);
    }
    e.set_weight(n, dtype, data, numel);
  });
}

int lora4j_engine_set_weight_nf4(lora4j_engine* engine, const char* name,
                                 const lora4j_nf4_weight* weight) {
  return guard("lora4j_engine_set_weight_nf4", [&] {
    lora4j::Engine& e = eng(engine);
    const std::string n = str(name, "name");
    const lora4j_nf4_weight& w = *nonnull(weight, "weight");
    const lora4j::WeightSpec* spec = nullptr;
    std::vector<lora4j::WeightSpec> specs = lora4j::weight_specs(e.shape());
    for (const lora4j::WeightSpec& s : specs)
      if (s.name == n) spec = &s;
    if (spec == nullptr) lora4j::fail(LORA4J_EINVAL, "no frozen weight named '" + n + "'");
    check_arg(spec->slot < lora4j::NUM_PROJ,
              "weight '" + n +
                  "' is not a projection: only the seven projections of a layer "
                  "may be NF4 (embeddings, norms and the LM head stay 16-bit)");
    check_arg(w.numel == spec->numel(), "weight '" + n + "' has " + std::to_string(spec->numel()) +
                                            " elements (" + std::to_string(spec->rows) + " x " +
                                            std::to_string(spec->cols) + "), got numel " +
                                            std::to_string(w.numel));
    lora4j::nf4_validate(w, n);
    e.set_weight_nf4(n, w);
  });
}

int lora4j_nf4_dequantize(const lora4j_nf4_weight* weight, float* out) {
  return guard("lora4j_nf4_dequantize", [&] {
    lora4j::nf4_dequantize(*nonnull(weight, "weight"), nonnull(out, "out"), "(argument)");
  });
}

int lora4j_engine_get_weight(lora4j_engine* engine, const char* name, float* out, int64_t numel) {
  return guard("lora4j_engine_get_weight",
               [&] { eng(engine).get_weight(str(name, "name"), nonnull(out, "out"), numel); });
}

int lora4j_engine_memory(lora4j_engine* engine, int64_t* in_use, int64_t* peak) {
  return guard("lora4j_engine_memory",
               [&] { eng(engine).memory(nonnull(in_use, "in_use"), nonnull(peak, "peak")); });
}

int lora4j_lora_attach(lora4j_engine* engine, int32_t rank, float scale, uint32_t targets) {
  return guard("lora4j_lora_attach", [&] { eng(engine).lora_attach(rank, scale, targets); });
}

int lora4j_lora_detach(lora4j_engine* engine) {
  return guard("lora4j_lora_detach", [&] { eng(engine).lora_detach(); });
}

int lora4j_lora_count(lora4j_engine* engine, int32_t* count) {
  return guard("lora4j_lora_count", [&] {
    const lora4j::LoraLayout* l = eng(engine).lora();
    *nonnull(count, "count") = l ? int32_t(l->tensors.size()) : 0;
  });
}

int lora4j_lora_info(lora4j_engine* engine, int32_t index, char* name, int32_t name_cap,
                     int64_t* rows, int64_t* cols) {
  return guard("lora4j_lora_info", [&] {
    const lora4j::LoraLayout* l = eng(engine).lora();
    if (!l) lora4j::fail(LORA4J_ESTATE, "no adapter is attached");
    check_arg(index >= 0 && size_t(index) < l->tensors.size(),
              "index " + std::to_string(index) + " out of range [0, " +
                  std::to_string(l->tensors.size()) + ")");
    const lora4j::LoraSpec& s = l->tensors[size_t(index)];
    nonnull(name, "name");
    check_arg(name_cap > int32_t(s.name.size()), "name buffer too small for " + s.name);
    std::memcpy(name, s.name.c_str(), s.name.size() + 1);
    *nonnull(rows, "rows") = s.rows;
    *nonnull(cols, "cols") = s.cols;
  });
}

int lora4j_lora_get(lora4j_engine* engine, int32_t kind, const char* name, float* out,
                    int64_t numel) {
  return guard("lora4j_lora_get",
               [&] { eng(engine).lora_get(kind, str(name, "name"), nonnull(out, "out"), numel); });
}

int lora4j_lora_set(lora4j_engine* engine, int32_t kind, const char* name, int32_t dtype,
                    const void* data, int64_t numel) {
  return guard("lora4j_lora_set", [&] {
    const std::string n = str(name, "name");
    nonnull(data, "data");
    // a weight or an AdamW moment that is not finite is refused by element; a gradient may be
    // (a faulty worker's, which the robust aggregation and the optimizer's skip handle)
    const char* what = kind == LORA4J_STATE_PARAM        ? "weight"
                       : kind == LORA4J_STATE_EXP_AVG    ? "AdamW first moment"
                       : kind == LORA4J_STATE_EXP_AVG_SQ ? "AdamW second moment"
                                                         : nullptr;
    const int64_t bad = what && numel > 0 ? first_nonfinite(dtype, data, numel) : -1;
    if (bad >= 0)
      lora4j::fail(LORA4J_EINVAL,
                   std::string("LoRA ") + what + " '" + n + "' holds a value that is not finite (" +
                       nonfinite_kind(dtype, data, bad) + ") at element " + std::to_string(bad));
    eng(engine).lora_set(kind, n, dtype, data, numel);
  });
}

int lora4j_optimizer_get_step(lora4j_engine* engine, int64_t* step) {
  return guard("lora4j_optimizer_get_step",
               [&] { *nonnull(step, "step") = eng(engine).optimizer_step_count(); });
}

int lora4j_optimizer_set_step(lora4j_engine* engine, int64_t step) {
  return guard("lora4j_optimizer_set_step", [&] {
    check_arg(step >= 0, "step must be >= 0, got " + std::to_string(step));
    eng(engine).set_optimizer_step_count(step);
  });
}

int lora4j_lora_merge(lora4j_engine* engine) {
  return guard("lora4j_lora_merge", [&] { eng(engine).lora_merge(); });
}

int lora4j_zero_grad(lora4j_engine* engine) {
  return guard("lora4j_zero_grad", [&] { eng(engine).zero_grad(); });
}

int lora4j_forward_backward(lora4j_engine* engine, const lora4j_batch* batch, float grad_scale,
                            double* loss_sum, int64_t* tokens) {
  return guard("lora4j_forward_backward", [&] {
    lora4j::Engine& e = eng(engine);
    nonnull(batch, "batch");
    lora4j::validate_batch(e.shape(), batch, true);
    check_arg(std::isfinite(grad_scale), "grad_scale is not finite");
    e.forward_backward(*batch, grad_scale, nonnull(loss_sum, "loss_sum"),
                       nonnull(tokens, "tokens"));
  });
}

int lora4j_grad_norm(lora4j_engine* engine, double* norm) {
  return guard("lora4j_grad_norm", [&] { *nonnull(norm, "norm") = eng(engine).grad_norm(); });
}

int lora4j_optimizer_step(lora4j_engine* engine, const lora4j_adamw* adamw,
                          lora4j_step_result* result) {
  return guard("lora4j_optimizer_step", [&] {
    eng(engine).optimizer_step(*nonnull(adamw, "adamw"), nonnull(result, "result"));
  });
}

int lora4j_train_step(lora4j_engine* engine, const lora4j_batch* batch, const lora4j_adamw* adamw,
                      double* loss, lora4j_step_result* result) {
  return guard("lora4j_train_step", [&] {
    lora4j::Engine& e = eng(engine);
    nonnull(batch, "batch");
    nonnull(adamw, "adamw");
    nonnull(loss, "loss");
    nonnull(result, "result");
    lora4j::validate_batch(e.shape(), batch, true);
    int64_t n = 0;
    for (int64_t r = 0; r < batch->batch; ++r)
      for (int64_t t = 1; t < batch->seq; ++t)
        if (batch->labels[r * batch->seq + t] != -100) ++n;
    if (n == 0) lora4j::fail(LORA4J_EINVAL, "batch has no label token to train on");
    e.zero_grad();
    double sum = 0;
    int64_t tokens = 0;
    e.forward_backward(*batch, float(1.0 / double(n)), &sum, &tokens);
    *loss = sum / double(tokens);
    e.optimizer_step(*adamw, result);
  });
}

int lora4j_eval_loss(lora4j_engine* engine, const lora4j_batch* batch, double* loss_sum,
                     int64_t* tokens) {
  return guard("lora4j_eval_loss", [&] {
    lora4j::Engine& e = eng(engine);
    nonnull(batch, "batch");
    lora4j::validate_batch(e.shape(), batch, true);
    e.eval_loss(*batch, nonnull(loss_sum, "loss_sum"), nonnull(tokens, "tokens"));
  });
}

int lora4j_logits(lora4j_engine* engine, const lora4j_batch* batch, float* out, int64_t numel) {
  return guard("lora4j_logits", [&] {
    lora4j::Engine& e = eng(engine);
    nonnull(batch, "batch");
    lora4j::validate_batch(e.shape(), batch, false);
    int64_t want = int64_t(batch->batch) * batch->seq * e.shape().c.vocab_size;
    check_arg(numel == want, "logits buffer holds " + std::to_string(numel) +
                                 " floats, batch needs " + std::to_string(want));
    e.logits(*batch, nonnull(out, "out"));
  });
}

int lora4j_hidden_states(lora4j_engine* engine, const lora4j_batch* batch, float* out,
                         int64_t numel) {
  return guard("lora4j_hidden_states", [&] {
    lora4j::Engine& e = eng(engine);
    nonnull(batch, "batch");
    lora4j::validate_batch(e.shape(), batch, false);
    int64_t want =
        int64_t(e.shape().c.num_layers + 1) * batch->batch * batch->seq * e.shape().c.hidden_size;
    check_arg(numel == want, "hidden-state buffer holds " + std::to_string(numel) +
                                 " floats, batch needs " + std::to_string(want));
    e.hidden_states(*batch, nonnull(out, "out"));
  });
}

int lora4j_decode_start(lora4j_engine* engine, const int32_t* prompt, int32_t length,
                        float* logits) {
  return guard("lora4j_decode_start", [&] {
    lora4j::Engine& e = eng(engine);
    check_prompt(e, prompt, length);
    e.decode_start(prompt, length, nonnull(logits, "logits"));
  });
}

int lora4j_decode_next(lora4j_engine* engine, int32_t token, float* logits) {
  return guard("lora4j_decode_next", [&] {
    lora4j::Engine& e = eng(engine);
    check_arg(token >= 0 && token < e.shape().c.vocab_size,
              "token " + std::to_string(token) + " outside the vocabulary");
    e.decode_next(token, nonnull(logits, "logits"));
  });
}

int lora4j_generate_greedy(lora4j_engine* engine, const int32_t* prompt, int32_t length,
                           int32_t max_new, int32_t eos_id, int32_t* out, int32_t* produced) {
  return guard("lora4j_generate_greedy", [&] {
    lora4j::Engine& e = eng(engine);
    nonnull(prompt, "prompt");
    nonnull(out, "out");
    nonnull(produced, "produced");
    check_arg(max_new >= 0, "max_new must be >= 0");
    check_arg(int64_t(length) + max_new <= e.shape().c.max_seq_len,
              "prompt (" + std::to_string(length) + ") + max_new (" + std::to_string(max_new) +
                  ") exceeds max_seq_len " + std::to_string(e.shape().c.max_seq_len));
    *produced = 0;
    if (max_new == 0) return;
    std::vector<float> logits(size_t(e.shape().c.vocab_size));
    check_prompt(e, prompt, length);
    e.decode_start(prompt, length, logits.data());
    out[0] = lora4j::greedy_argmax(logits.data(), e.shape().c.vocab_size);
    *produced = 1;
    if (out[0] == eos_id || max_new == 1) return;
    int32_t more = 0;
    e.decode_greedy(out[0], max_new - 1, eos_id, out + 1, &more);
    *produced = 1 + more;
  });
}

int lora4j_decode_greedy(lora4j_engine* engine, int32_t token, int32_t count, int32_t eos_id,
                         int32_t* out, int32_t* produced) {
  return guard("lora4j_decode_greedy", [&] {
    lora4j::Engine& e = eng(engine);
    check_arg(token >= 0 && token < e.shape().c.vocab_size,
              "token " + std::to_string(token) + " outside the vocabulary");
    check_arg(count >= 0, "count must be >= 0");
    nonnull(out, "out");
    nonnull(produced, "produced");
    *produced = 0;
    e.decode_greedy(token, count, eos_id, out, produced);
  });
}

// the sampling settings lora4j_sample and lora4j_decode_sample accept
static lora4j::SampleParams sample_params(double temperature, int32_t top_k, double top_p) {
  check_arg(temperature > 0, "temperature must be > 0, got " + std::to_string(temperature));
  check_arg(top_k >= 0, "top_k must be >= 0, got " + std::to_string(top_k));
  check_arg(top_p > 0 && top_p <= 1, "top_p must be in (0, 1], got " + std::to_string(top_p));
  lora4j::SampleParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  return p;
}

int lora4j_decode_sample(lora4j_engine* engine, int32_t token, int32_t count, int32_t eos_id,
                         double temperature, int32_t top_k, double top_p, int64_t* state,
                         int32_t* out, int32_t* produced) {
  return guard("lora4j_decode_sample", [&] {
    lora4j::Engine& e = eng(engine);
    check_arg(token >= 0 && token < e.shape().c.vocab_size,
              "token " + std::to_string(token) + " outside the vocabulary");
    check_arg(count >= 0, "count must be >= 0");
    const lora4j::SampleParams p = sample_params(temperature, top_k, top_p);
    nonnull(state, "state");
    nonnull(out, "out");
    nonnull(produced, "produced");
    *produced = 0;
    e.decode_sample(token, count, eos_id, p, state, out, produced);
  });
}

int lora4j_sample(const float* logits, int32_t n, double temperature, int32_t top_k, double top_p,
                  int64_t* state, int32_t* token) {
  return guard("lora4j_sample", [&] {
    nonnull(logits, "logits");
    check_arg(n >= 1, "n must be >= 1");
    const lora4j::SampleParams p = sample_params(temperature, top_k, top_p);
    nonnull(state, "state");
    *nonnull(token, "token") = lora4j::sample_token(logits, n, p, *state);
  });
}

int lora4j_grad_flat_numel(lora4j_engine* engine, int64_t* numel) {
  return guard("lora4j_grad_flat_numel",
               [&] { *nonnull(numel, "numel") = eng(engine).grad_numel(); });
}

int lora4j_grad_get_flat(lora4j_engine* engine, float* out, int64_t numel) {
  return guard("lora4j_grad_get_flat",
               [&] { eng(engine).grad_get_flat(nonnull(out, "out"), numel); });
}

int lora4j_grad_set_flat(lora4j_engine* engine, const float* data, int64_t numel) {
  return guard("lora4j_grad_set_flat",
               [&] { eng(engine).grad_set_flat(nonnull(data, "data"), numel); });
}

int lora4j_aggregate(int32_t rule, int32_t f, int32_t n, int64_t numel, const float* workers,
                     const float* weights, float* out, int32_t* selected) {
  return guard("lora4j_aggregate", [&] {
    lora4j::check_aggregation(rule, f, n);
    check_arg(numel >= 1, "numel must be >= 1");
    nonnull(workers, "workers");
    nonnull(out, "out");
    check_arg(out + numel <= workers || out >= workers + int64_t(n) * numel,
              "out overlaps workers");
    int32_t k = lora4j::aggregate(rule, f, n, numel, workers, weights, out);
    if (selected) *selected = k;
  });
}

int lora4j_dist_unique_id(uint8_t* id, int32_t id_bytes) {
  return guard("lora4j_dist_unique_id", [&] {
    nonnull(id, "id");
    check_arg(id_bytes == LORA4J_DIST_ID_BYTES, "id_bytes must be LORA4J_DIST_ID_BYTES (" +
                                                    std::to_string(LORA4J_DIST_ID_BYTES) + ")");
    std::string why;
    const lora4j_backend_api* api = lora4j::cuda_backend(&why);
    if (!api) {
      lora4j::fail(LORA4J_EUNSUPPORTED,
                   "a collective group needs the CUDA backend, which did not load: " + why);
    }
    lora4j::check_backend(api, api->dist_unique_id(id, id_bytes));
  });
}

int lora4j_dist_init(lora4j_engine* engine, const uint8_t* id, int32_t id_bytes, int32_t world,
                     int32_t rank) {
  return guard("lora4j_dist_init", [&] {
    lora4j::Engine& e = eng(engine);
    check_arg(world >= 1, "world must be >= 1, got " + std::to_string(world));
    check_arg(rank >= 0 && rank < world,
              "rank " + std::to_string(rank) + " is outside [0, " + std::to_string(world) + ")");
    if (world > 1) {
      nonnull(id, "id");
      check_arg(id_bytes == LORA4J_DIST_ID_BYTES, "id_bytes must be LORA4J_DIST_ID_BYTES (" +
                                                      std::to_string(LORA4J_DIST_ID_BYTES) + ")");
    }
    e.dist_init(id, id_bytes, world, rank);
  });
}

int lora4j_dist_allreduce_grad(lora4j_engine* engine) {
  return guard("lora4j_dist_allreduce_grad", [&] { eng(engine).dist_allreduce_grad(); });
}

int lora4j_dist_allgather_grad(lora4j_engine* engine, float* out, int64_t numel) {
  return guard("lora4j_dist_allgather_grad",
               [&] { eng(engine).dist_allgather_grad(nonnull(out, "out"), numel); });
}

int lora4j_dist_allreduce_f64(lora4j_engine* engine, double* values, int32_t count) {
  return guard("lora4j_dist_allreduce_f64", [&] {
    check_arg(count >= 0, "count must be >= 0");
    if (count > 0) nonnull(values, "values");
    eng(engine).dist_allreduce_f64(values, count);
  });
}

int lora4j_workers_reserve(lora4j_engine* engine, int32_t rows) {
  return guard("lora4j_workers_reserve", [&] {
    check_arg(rows >= 0 && rows <= LORA4J_MAX_WORKERS,
              "rows must be in [0, LORA4J_MAX_WORKERS = " + std::to_string(LORA4J_MAX_WORKERS) +
                  "], got " + std::to_string(rows));
    eng(engine).workers_reserve(rows);
  });
}

int lora4j_workers_gather(lora4j_engine* engine, int32_t first) {
  return guard("lora4j_workers_gather", [&] {
    check_arg(first >= 0, "first must be >= 0, got " + std::to_string(first));
    eng(engine).workers_gather(first);
  });
}

int lora4j_workers_read(lora4j_engine* engine, int32_t first, int32_t count, float* out) {
  return guard("lora4j_workers_read", [&] {
    check_arg(first >= 0 && count >= 1, "first must be >= 0 and count >= 1");
    eng(engine).workers_read(first, count, nonnull(out, "out"));
  });
}

int lora4j_workers_write(lora4j_engine* engine, int32_t first, int32_t count, const float* data) {
  return guard("lora4j_workers_write", [&] {
    check_arg(first >= 0 && count >= 1, "first must be >= 0 and count >= 1");
    eng(engine).workers_write(first, count, nonnull(data, "data"));
  });
}

int lora4j_workers_aggregate(lora4j_engine* engine, int32_t rule, int32_t f, int32_t n,
                             const float* weights, int32_t* selected) {
  return guard("lora4j_workers_aggregate", [&] {
    lora4j::check_aggregation(rule, f, n);
    check_arg(n <= LORA4J_MAX_WORKERS, "n = " + std::to_string(n) +
                                           " workers is above LORA4J_MAX_WORKERS (" +
                                           std::to_string(LORA4J_MAX_WORKERS) + ")");
    if (rule == LORA4J_AGG_MEAN) lora4j::check_mean_weights(weights, n);
    int32_t k =
        eng(engine).workers_aggregate(rule, f, n, rule == LORA4J_AGG_MEAN ? weights : nullptr);
    if (selected) *selected = k;
  });
}

int lora4j_dist_reduce_in_backward(lora4j_engine* engine, int32_t on) {
  return guard("lora4j_dist_reduce_in_backward", [&] {
    lora4j::Engine& e = eng(engine);
    check_arg(on == 0 || on == 1, "on must be 0 or 1, got " + std::to_string(on));
    e.dist_reduce_in_backward(on == 1);
  });
}

int lora4j_dist_abort(lora4j_engine* engine, const char* reason) {
  return guard("lora4j_dist_abort", [&] { eng(engine).dist_abort(str(reason, "reason")); });
}

}  // extern "C"
