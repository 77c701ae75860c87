// Loading a backend library (liblora4j_cuda.so) and driving it through its plain-C table.
// See backend_abi.h for why only C crosses the boundary. Every non-zero status that comes back
// becomes a lora4j::Error with the backend's message, so the C API reports it like any other.
#include "api/plugin.h"

#include "api/plugin_open.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <vector>

namespace lora4j {
namespace {

std::mutex g_path_mutex;
std::string g_path;

struct Loaded {
  const lora4j_backend_api* api = nullptr;
  std::string error;
};

Loaded load() {
  Loaded r;
  std::string set_path;
  {
    std::lock_guard<std::mutex> lock(g_path_mutex);
    set_path = g_path;
  }
  OpenedPlugin p =
      open_plugin(plugin_paths(set_path, "LORA4J_CUDA_LIBRARY",
                               reinterpret_cast<const void*>(&cuda_backend), "liblora4j_cuda.so"),
                  LORA4J_BACKEND_ENTRY_SYMBOL);
  if (!p.handle) {
    r.error = "the CUDA backend library liblora4j_cuda.so could not be loaded (" + p.why + ")";
    return r;
  }
  auto api = static_cast<const lora4j_backend_api*>(p.table);
  if (!api) {
    r.error = p.path + " is not a lora4j backend (no " LORA4J_BACKEND_ENTRY_SYMBOL ")";
    dlclose(p.handle);
    return r;
  }
  if (api->abi_version != LORA4J_BACKEND_ABI_VERSION ||
      api->table_size != sizeof(lora4j_backend_api)) {
    r.error = p.path + " has backend ABI version " + std::to_string(api->abi_version) +
              " (table of " + std::to_string(api->table_size) + " bytes); this liblora4j needs " +
              std::to_string(LORA4J_BACKEND_ABI_VERSION) + " (" +
              std::to_string(sizeof(lora4j_backend_api)) +
              " bytes): use the liblora4j_cuda.so built with it";
    dlclose(p.handle);
    return r;
  }
  r.api = api;  // kept loaded for the life of the process
  return r;
}

// Turns a backend status into a lora4j::Error carrying the backend's message.
void check(const lora4j_backend_api* api, int status) {
  if (status != LORA4J_OK) fail(status, api->last_error());
}

class PluginEngine final : public Engine {
 public:
  PluginEngine(const lora4j_backend_api* api, const ModelShape& s, const lora4j_engine_options& o)
      : Engine(s), api_(api) {
    check(api_, api_->engine_create(&shape_.c, &o, &h_));
  }
  ~PluginEngine() override {
    if (h_) api_->engine_destroy(h_);
  }
  void set_weight(const std::string& name, int32_t dtype, const void* data,
                  int64_t numel) override {
    check(api_, api_->set_weight(h_, name.c_str(), dtype, data, numel));
  }
  void get_weight(const std::string& name, float* out, int64_t numel) override {
    check(api_, api_->get_weight(h_, name.c_str(), out, numel));
  }
  void memory(int64_t* in_use, int64_t* peak) override {
    check(api_, api_->memory(h_, in_use, peak));
  }
  void lora_attach(int32_t rank, float scale, uint32_t targets) override {
    LoraLayout l = make_lora_layout(shape_, rank, scale, targets);  // validates first
    check(api_, api_->lora_attach(h_, rank, scale, targets));
    layout_ = std::make_unique<LoraLayout>(std::move(l));
  }
  void lora_detach() override {
    check(api_, api_->lora_detach(h_));
    layout_.reset();
  }
  const LoraLayout* lora() const override { return layout_.get(); }
  void lora_get(int32_t kind, const std::string& name, float* out, int64_t numel) override {
    check(api_, api_->lora_get(h_, kind, name.c_str(), out, numel));
  }
  void lora_set(int32_t kind, const std::string& name, int32_t dtype, const void* data,
                int64_t numel) override {
    check(api_, api_->lora_set(h_, kind, name.c_str(), dtype, data, numel));
  }
  int64_t optimizer_step_count() const override {
    int64_t s = 0;
    check(api_, api_->optimizer_get_step(h_, &s));
    return s;
  }
  void set_optimizer_step_count(int64_t step) override {
    check(api_, api_->optimizer_set_step(h_, step));
  }
  void lora_merge() override {
    check(api_, api_->lora_merge(h_));
    layout_.reset();
  }
  void zero_grad() override { check(api_, api_->zero_grad(h_)); }
  void forward_backward(const lora4j_batch& b, float grad_scale, double* loss_sum,
                        int64_t* tokens) override {
    check(api_, api_->forward_backward(h_, &b, grad_scale, loss_sum, tokens));
  }
  void optimizer_step(const lora4j_adamw& o, lora4j_step_result* r) override {
    check(api_, api_->optimizer_step(h_, &o, r));
  }
  double grad_norm() override {
    double n = 0;
    check(api_, api_->grad_norm(h_, &n));
    return n;
  }
  void eval_loss(const lora4j_batch& b, double* loss_sum, int64_t* tokens) override {
    check(api_, api_->eval_loss(h_, &b, loss_sum, tokens));
  }
  void logits(const lora4j_batch& b, float* out) override {
    check(api_, api_->logits(h_, &b, out));
  }
  void hidden_states(const lora4j_batch& b, float* out) override {
    check(api_, api_->hidden_states(h_, &b, out));
  }
  void decode_start(const int32_t* prompt, int32_t length, float* logits) override {
    check(api_, api_->decode_start(h_, prompt, length, logits));
  }
  void decode_next(int32_t token, float* logits) override {
    check(api_, api_->decode_next(h_, token, logits));
  }
  void decode_greedy(int32_t token, int32_t count, int32_t eos_id, int32_t* out,
                     int32_t* produced) override {
    check(api_, api_->decode_greedy(h_, token, count, eos_id, out, produced));
  }
  void decode_sample(int32_t token, int32_t count, int32_t eos_id, const SampleParams& p,
                     int64_t* state, int32_t* out, int32_t* produced) override {
    check(api_, api_->decode_sample(h_, token, count, eos_id, p.temperature, p.top_k, p.top_p,
                                    state, out, produced));
  }
  void set_weight_nf4(const std::string& name, const lora4j_nf4_weight& w) override {
    check(api_, api_->set_weight_nf4(h_, name.c_str(), &w));
  }
  void grad_get_flat(float* out, int64_t numel) override {
    check(api_, api_->grad_get_flat(h_, out, numel));
  }
  void grad_set_flat(const float* data, int64_t numel) override {
    check(api_, api_->grad_set_flat(h_, data, numel));
  }
  void dist_init(const uint8_t* id, int32_t id_bytes, int32_t world, int32_t rank) override {
    check(api_, api_->dist_init(h_, id, id_bytes, world, rank));
  }
  void dist_allreduce_grad() override { check(api_, api_->dist_allreduce_grad(h_)); }
  void dist_allgather_grad(float* out, int64_t numel) override {
    check(api_, api_->dist_allgather_grad(h_, out, numel));
  }
  void dist_allreduce_f64(double* values, int32_t count) override {
    check(api_, api_->dist_allreduce_f64(h_, values, count));
  }
  void workers_reserve(int32_t rows) override { check(api_, api_->workers_reserve(h_, rows)); }
  void workers_gather(int32_t first) override { check(api_, api_->workers_gather(h_, first)); }
  void workers_read(int32_t first, int32_t count, float* out) override {
    check(api_, api_->workers_read(h_, first, count, out));
  }
  void workers_write(int32_t first, int32_t count, const float* data) override {
    check(api_, api_->workers_write(h_, first, count, data));
  }
  int32_t workers_aggregate(int32_t rule, int32_t f, int32_t n, const float* weights) override {
    int32_t selected = -1;
    check(api_, api_->workers_aggregate(h_, rule, f, n, weights, &selected));
    return selected;
  }
  void dist_reduce_in_backward(bool on) override {
    check(api_, api_->dist_reduce_in_backward(h_, on ? 1 : 0));
  }
  void dist_abort(const std::string& reason) override {
    Engine::dist_abort(reason);
    check(api_, api_->dist_abort(h_, reason.c_str()));
  }

 private:
  const lora4j_backend_api* api_;
  lora4j_backend_engine* h_ = nullptr;
  std::unique_ptr<LoraLayout> layout_;
};

}  // namespace

const lora4j_backend_api* cuda_backend(std::string* error) {
  static Loaded loaded;
  static std::once_flag once;
  std::call_once(once, [] { loaded = load(); });
  if (!loaded.api && error) *error = loaded.error;
  return loaded.api;
}

void check_backend(const lora4j_backend_api* api, int status) { check(api, status); }

void set_cuda_backend_path(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_path_mutex);
  g_path = path;
}

std::unique_ptr<Engine> make_plugin_engine(const lora4j_backend_api* api, const ModelShape& shape,
                                           const lora4j_engine_options& options) {
  return std::make_unique<PluginEngine>(api, shape, options);
}

}  // namespace lora4j
