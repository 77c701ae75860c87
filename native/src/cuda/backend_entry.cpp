// The plugin entry of liblora4j_cuda: the one exported symbol, lora4j_backend_entry, and the
// table of plain C functions behind it (api/backend_abi.h). Each function runs the C++ engine
// inside a guard that turns every exception into a status code and a thread-local message, so
// no exception, C++ object or STL type ever reaches the core.
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "api/backend_abi.h"
#include "cuda/backend.h"
#include "model/status.h"

struct lora4j_backend_engine {
  std::unique_ptr<lora4j::Engine> impl;
};

namespace lora4j {
namespace cuda {
namespace {

thread_local std::string t_error;

template <class F>
int guard(F&& f) noexcept {
  return run_status(&t_error, "", "internal error in the CUDA backend: ", f);
}

Engine& E(lora4j_backend_engine* e) {
  if (!e || !e->impl) fail(LORA4J_EINVAL, "engine handle is null");
  return *e->impl;
}

const char* last_error() { return t_error.c_str(); }

int device_count_c(int32_t* count) {
  return guard([&] {
    std::string why;
    *count = device_count(&why);
    t_error = why;
  });
}

int engine_create(const lora4j_model_config* c, const lora4j_engine_options* o,
                  lora4j_backend_engine** out) {
  return guard([&] {
    auto h = std::make_unique<lora4j_backend_engine>();
    h->impl.reset(make_engine(*c, *o));
    *out = h.release();
  });
}
int engine_destroy(lora4j_backend_engine* e) {
  return guard([&] { delete e; });
}
int set_weight(lora4j_backend_engine* e, const char* name, int32_t dtype, const void* data,
               int64_t numel) {
  return guard([&] { E(e).set_weight(name, dtype, data, numel); });
}
int get_weight(lora4j_backend_engine* e, const char* name, float* out, int64_t numel) {
  return guard([&] { E(e).get_weight(name, out, numel); });
}
int memory(lora4j_backend_engine* e, int64_t* in_use, int64_t* peak) {
  return guard([&] { E(e).memory(in_use, peak); });
}
int lora_attach(lora4j_backend_engine* e, int32_t rank, float scale, uint32_t targets) {
  return guard([&] { E(e).lora_attach(rank, scale, targets); });
}
int lora_detach(lora4j_backend_engine* e) {
  return guard([&] { E(e).lora_detach(); });
}
int lora_get(lora4j_backend_engine* e, int32_t kind, const char* name, float* out, int64_t numel) {
  return guard([&] { E(e).lora_get(kind, name, out, numel); });
}
int lora_set(lora4j_backend_engine* e, int32_t kind, const char* name, int32_t dtype,
             const void* data, int64_t numel) {
  return guard([&] { E(e).lora_set(kind, name, dtype, data, numel); });
}
int optimizer_get_step(lora4j_backend_engine* e, int64_t* step) {
  return guard([&] { *step = E(e).optimizer_step_count(); });
}
int optimizer_set_step(lora4j_backend_engine* e, int64_t step) {
  return guard([&] { E(e).set_optimizer_step_count(step); });
}
int lora_merge(lora4j_backend_engine* e) {
  return guard([&] { E(e).lora_merge(); });
}
int zero_grad(lora4j_backend_engine* e) {
  return guard([&] { E(e).zero_grad(); });
}
int forward_backward(lora4j_backend_engine* e, const lora4j_batch* b, float grad_scale,
                     double* loss_sum, int64_t* tokens) {
  return guard([&] { E(e).forward_backward(*b, grad_scale, loss_sum, tokens); });
}
int grad_norm(lora4j_backend_engine* e, double* norm) {
  return guard([&] { *norm = E(e).grad_norm(); });
}
int optimizer_step(lora4j_backend_engine* e, const lora4j_adamw* o, lora4j_step_result* r) {
  return guard([&] { E(e).optimizer_step(*o, r); });
}
int eval_loss(lora4j_backend_engine* e, const lora4j_batch* b, double* loss_sum, int64_t* tokens) {
  return guard([&] { E(e).eval_loss(*b, loss_sum, tokens); });
}
int logits(lora4j_backend_engine* e, const lora4j_batch* b, float* out) {
  return guard([&] { E(e).logits(*b, out); });
}
int hidden_states(lora4j_backend_engine* e, const lora4j_batch* b, float* out) {
  return guard([&] { E(e).hidden_states(*b, out); });
}
int decode_start(lora4j_backend_engine* e, const int32_t* prompt, int32_t length,
                 float* logits_out) {
  return guard([&] { E(e).decode_start(prompt, length, logits_out); });
}
int decode_next(lora4j_backend_engine* e, int32_t token, float* logits_out) {
  return guard([&] { E(e).decode_next(token, logits_out); });
}
int decode_greedy(lora4j_backend_engine* e, int32_t token, int32_t count, int32_t eos_id,
                  int32_t* out, int32_t* produced) {
  return guard([&] { E(e).decode_greedy(token, count, eos_id, out, produced); });
}
int decode_sample(lora4j_backend_engine* e, int32_t token, int32_t count, int32_t eos_id,
                  double temperature, int32_t top_k, double top_p, int64_t* state, int32_t* out,
                  int32_t* produced) {
  return guard([&] {
    lora4j::SampleParams p;
    p.temperature = temperature;
    p.top_k = top_k;
    p.top_p = top_p;
    E(e).decode_sample(token, count, eos_id, p, state, out, produced);
  });
}

int set_weight_nf4(lora4j_backend_engine* e, const char* name, const lora4j_nf4_weight* w) {
  return guard([&] { E(e).set_weight_nf4(name, *w); });
}

int grad_get_flat(lora4j_backend_engine* e, float* out, int64_t numel) {
  return guard([&] { E(e).grad_get_flat(out, numel); });
}
int grad_set_flat(lora4j_backend_engine* e, const float* data, int64_t numel) {
  return guard([&] { E(e).grad_set_flat(data, numel); });
}
int dist_unique_id(uint8_t* id, int32_t id_bytes) {
  return guard([&] { make_unique_id(id, id_bytes); });
}
int dist_init(lora4j_backend_engine* e, const uint8_t* id, int32_t id_bytes, int32_t world,
              int32_t rank) {
  return guard([&] { E(e).dist_init(id, id_bytes, world, rank); });
}
int dist_allreduce_grad(lora4j_backend_engine* e) {
  return guard([&] { E(e).dist_allreduce_grad(); });
}
int dist_allgather_grad(lora4j_backend_engine* e, float* out, int64_t numel) {
  return guard([&] { E(e).dist_allgather_grad(out, numel); });
}
int dist_allreduce_f64(lora4j_backend_engine* e, double* values, int32_t count) {
  return guard([&] { E(e).dist_allreduce_f64(values, count); });
}
int dist_reduce_in_backward(lora4j_backend_engine* e, int32_t on) {
  return guard([&] { E(e).dist_reduce_in_backward(on != 0); });
}

int workers_reserve(lora4j_backend_engine* e, int32_t rows) {
  return guard([&] { E(e).workers_reserve(rows); });
}
int workers_gather(lora4j_backend_engine* e, int32_t first) {
  return guard([&] { E(e).workers_gather(first); });
}
int workers_read(lora4j_backend_engine* e, int32_t first, int32_t count, float* out) {
  return guard([&] { E(e).workers_read(first, count, out); });
}
int workers_write(lora4j_backend_engine* e, int32_t first, int32_t count, const float* data) {
  return guard([&] { E(e).workers_write(first, count, data); });
}
int workers_aggregate(lora4j_backend_engine* e, int32_t rule, int32_t f, int32_t n,
                      const float* weights, int32_t* selected) {
  return guard([&] { *selected = E(e).workers_aggregate(rule, f, n, weights); });
}
int dist_abort(lora4j_backend_engine* e, const char* reason) {
  return guard([&] { E(e).dist_abort(reason); });
}

const lora4j_backend_api kApi = {
    LORA4J_BACKEND_ABI_VERSION,
    sizeof(lora4j_backend_api),
    "cuda",
    last_error,
    device_count_c,
    engine_create,
    engine_destroy,
    set_weight,
    get_weight,
    memory,
    lora_attach,
    lora_detach,
    lora_get,
    lora_set,
    optimizer_get_step,
    optimizer_set_step,
    lora_merge,
    zero_grad,
    forward_backward,
    grad_norm,
    optimizer_step,
    eval_loss,
    logits,
    hidden_states,
    decode_start,
    decode_next,
    set_weight_nf4,
    grad_get_flat,
    grad_set_flat,
    dist_unique_id,
    dist_init,
    dist_allreduce_grad,
    dist_allgather_grad,
    dist_allreduce_f64,
    workers_reserve,
    workers_gather,
    workers_read,
    workers_write,
    workers_aggregate,
    dist_reduce_in_backward,
    dist_abort,
    decode_greedy,
    decode_sample,
};

}  // namespace
}  // namespace cuda
}  // namespace lora4j

extern "C" __attribute__((visibility("default"))) const lora4j_backend_api* lora4j_backend_entry(
    void) {
  return &lora4j::cuda::kApi;
}
