// The engine interface every backend implements, and the pieces of the Mistral model that do
// not depend on the backend: validated shapes, the names of the frozen weights, the registry
// of LoRA parameters (names, shapes, offsets into one flat arena), batch validation.
//
// Errors inside the core are thrown as lora4j::Error (status code + message); the C API in
// src/api catches everything and turns it into a status and a thread-local message.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "lora4j.h"
#include "model/sampler.h"

namespace lora4j {

class Error : public std::runtime_error {
 public:
  Error(int code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

[[noreturn]] inline void fail(int code, const std::string& msg) { throw Error(code, msg); }
inline void check_arg(bool ok, const std::string& msg) {
  if (!ok) fail(LORA4J_EINVAL, msg);
}

// Projection slots in a layer, in PEFT/HF order: the LORA4J_SLOT_* of lora4j.h, whose target
// bit is 1u << slot.
enum Proj { Q = 0, K, V, O, GATE, UP, DOWN, NUM_PROJ };
static_assert(Q == LORA4J_SLOT_Q && K == LORA4J_SLOT_K && V == LORA4J_SLOT_V &&
                  O == LORA4J_SLOT_O && GATE == LORA4J_SLOT_GATE && UP == LORA4J_SLOT_UP &&
                  DOWN == LORA4J_SLOT_DOWN && NUM_PROJ == LORA4J_SLOT_INPUT_NORM,
              "Proj must match LORA4J_SLOT_*");
static_assert((1u << Q) == LORA4J_TARGET_Q && (1u << K) == LORA4J_TARGET_K &&
                  (1u << V) == LORA4J_TARGET_V && (1u << O) == LORA4J_TARGET_O &&
                  (1u << GATE) == LORA4J_TARGET_GATE && (1u << UP) == LORA4J_TARGET_UP &&
                  (1u << DOWN) == LORA4J_TARGET_DOWN,
              "LORA4J_TARGET_* must be 1u << slot");
const char* proj_module(int p);  // "self_attn.q_proj", ..., "mlp.down_proj"
const char* proj_short(int p);   // "q_proj", ...

struct ModelShape {
  lora4j_model_config c;
  explicit ModelShape(const lora4j_model_config& cfg);  // validates, throws EINVAL
  int64_t q_dim() const { return int64_t(c.num_heads) * c.head_dim; }
  int64_t kv_dim() const { return int64_t(c.num_kv_heads) * c.head_dim; }
  // Input and output features of projection p.
  int64_t proj_in(int p) const;
  int64_t proj_out(int p) const;
};

// One frozen tensor of the model: HF name and shape (published by lora4j_weight_info).
struct WeightSpec {
  std::string name;
  int64_t rows, cols;  // cols = 1 for vectors (norm weights): shape [rows]
  int layer;           // -1 for embedding, final norm, lm_head
  int slot;            // LORA4J_SLOT_*: Proj for the projections, then norms, embedding, head
  int64_t numel() const { return rows * cols; }
  int ndim() const {
    return slot == LORA4J_SLOT_INPUT_NORM || slot == LORA4J_SLOT_POST_ATTN_NORM ||
                   slot == LORA4J_SLOT_FINAL_NORM
               ? 1
               : 2;
  }
};
// Every frozen weight in the engine's fixed order (see lora4j_weight_count).
std::vector<WeightSpec> weight_specs(const ModelShape& shape);

// One LoRA tensor: PEFT key, shape, place in the flat arena.
struct LoraSpec {
  std::string name;  // base_model.model.model.layers.{i}.{module}.lora_{A,B}.weight
  int layer;
  int proj;
  bool is_b;
  int64_t rows, cols;  // A: [r, in]; B: [out, r]
  int64_t offset;      // element offset in the flat arena
  int64_t numel() const { return rows * cols; }
};
struct LoraLayout {
  int32_t rank = 0;
  float scale = 0;
  uint32_t targets = 0;
  std::vector<LoraSpec> tensors;                        // fixed order: layer, proj, A then B
  int64_t total = 0;                                    // elements in the arena
  const LoraSpec& find(const std::string& name) const;  // throws EINVAL naming it
  // Index of the A tensor of (layer, proj), or -1 when not targeted; B is index + 1.
  int index_of(int layer, int proj) const;
  std::vector<int> slot_index;  // [layer * NUM_PROJ + proj] -> index of A or -1
};
LoraLayout make_lora_layout(const ModelShape& shape, int32_t rank, float scale, uint32_t targets);

// One collective of the gradients reduced during the backward (lora4j_dist_reduce_in_backward):
// the flat-arena range [begin, end) holds every LoRA gradient of layers ready_after ..
// (some higher layer), so it is final once the backward has finished layer ready_after (the
// backward runs from the last layer to the first). ready_after -1: gradients of no layer,
// reduced after the whole backward.
struct GradBucket {
  int64_t begin, end;
  int ready_after;
};
// The buckets of a layout in the order the backward completes them: consecutive layers, from the
// last, gathered until a bucket holds at least bucket_elems elements (<= 0: one bucket per
// layer), the first layer closing the last bucket. Together they cover [0, total) exactly once.
// Each layer's tensors must be one contiguous range of the arena (make_lora_layout lays them out
// layer by layer); anything else is EINTERNAL.
std::vector<GradBucket> grad_buckets(const LoraLayout& layout, int num_layers,
                                     int64_t bucket_elems);

// Validates a batch against the shape; throws EINVAL naming the field and position.
// need_labels: labels must be present.
void validate_batch(const ModelShape& shape, const lora4j_batch* b, bool need_labels);

// Converts host data of the given dtype to fp32.
void to_f32(int32_t dtype, const void* src, float* dst, int64_t n);

// The index of the largest of v[0 .. n - 1], the lowest among equal maxima: best moves to i only
// where v[i] > v[best], in index order (Generator.argmax in Java), so no NaN after index 0 is
// chosen and a NaN at index 0 stays.
inline int32_t greedy_argmax(const float* v, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return best;
}

// The backend-neutral engine. Implementations: CpuEngine (src/cpu), CudaEngine (src/cuda).
class Engine {
 public:
  virtual ~Engine() = default;
  const ModelShape& shape() const { return shape_; }

  virtual void set_weight(const std::string& name, int32_t dtype, const void* data,
                          int64_t numel) = 0;
  virtual void get_weight(const std::string& name, float* out, int64_t numel) = 0;
  virtual void memory(int64_t* in_use, int64_t* peak) = 0;

  virtual void lora_attach(int32_t rank, float scale, uint32_t targets) = 0;
  virtual void lora_detach() = 0;
  virtual const LoraLayout* lora() const = 0;  // null when none attached
  virtual void lora_get(int32_t kind, const std::string& name, float* out, int64_t numel) = 0;
  virtual void lora_set(int32_t kind, const std::string& name, int32_t dtype, const void* data,
                        int64_t numel) = 0;
  virtual int64_t optimizer_step_count() const = 0;
  virtual void set_optimizer_step_count(int64_t step) = 0;
  virtual void lora_merge() = 0;

  virtual void zero_grad() = 0;
  virtual void forward_backward(const lora4j_batch& b, float grad_scale, double* loss_sum,
                                int64_t* tokens) = 0;
  virtual void optimizer_step(const lora4j_adamw& opt, lora4j_step_result* result) = 0;
  // Global L2 norm of the accumulated gradients. The default reads every gradient through
  // lora_get; backends override it with a device reduction.
  virtual double grad_norm();

  virtual void eval_loss(const lora4j_batch& b, double* loss_sum, int64_t* tokens) = 0;
  virtual void logits(const lora4j_batch& b, float* out) = 0;
  virtual void hidden_states(const lora4j_batch& b, float* out) = 0;
  virtual void decode_start(const int32_t* prompt, int32_t length, float* logits) = 0;
  virtual void decode_next(int32_t token, float* logits) = 0;
  // lora4j_decode_greedy (the C API has checked token, count >= 0 and the pointers). The default
  // runs decode_next and greedy_argmax step by step on the host.
  virtual void decode_greedy(int32_t token, int32_t count, int32_t eos_id, int32_t* out,
                             int32_t* produced);
  // lora4j_decode_sample (the C API has checked token, count >= 0, the sampling settings and
  // the pointers). The default runs decode_next and sample_token (model/sampler.h) step by step
  // on the host; *state is the generator's state, advanced by each draw.
  virtual void decode_sample(int32_t token, int32_t count, int32_t eos_id,
                             const SampleParams& params, int64_t* state, int32_t* out,
                             int32_t* produced);

  // A projection weight in NF4 (lora4j_engine_set_weight_nf4); the C API has validated `w`
  // (nf4_validate) and checked that `name` is a projection of numel w.numel.
  virtual void set_weight_nf4(const std::string& name, const lora4j_nf4_weight& w) = 0;
  // ---- the gradients as one buffer and collectives (issue 14) --------------------------------
  // Elements of the flat gradient arena (the attached adapter's total); throws ESTATE without one.
  int64_t grad_numel() const;
  // Copy the accumulated gradients out of / into the arena's order. The defaults go tensor by
  // tensor through lora_get / lora_set; backends override them with one copy.
  virtual void grad_get_flat(float* out, int64_t numel);
  virtual void grad_set_flat(const float* data, int64_t numel);
  // Joins a group of world ranks. The default is a group of one (world > 1: EUNSUPPORTED, the
  // backend has no collectives); the CUDA backend joins an NCCL communicator.
  virtual void dist_init(const uint8_t* id, int32_t id_bytes, int32_t world, int32_t rank);
  // Sum of the accumulated gradients over the group, in place (a group of one: nothing).
  virtual void dist_allreduce_grad();
  // out[r * numel ..]: rank r's accumulated gradients (a group of one: its own).
  virtual void dist_allgather_grad(float* out, int64_t numel);
  // values become their sums over the group (a group of one: unchanged).
  virtual void dist_allreduce_f64(double* values, int32_t count);
  // ---- worker rows for robust aggregation (issue 14; lora4j_workers_*) --------------------
  // Room for `rows` worker gradients (rows of grad_numel() fp32) where the gradients live (the
  // device on CUDA), kept until the next call; 0 frees it.
  virtual void workers_reserve(int32_t rows);
  // Collective: every rank's accumulated gradients into rows first .. first + world - 1 (rank r's
  // into row first + r), device to device.
  virtual void workers_gather(int32_t first);
  // Rows first .. first + count - 1 to / from host memory (count x grad_numel() values).
  virtual void workers_read(int32_t first, int32_t count, float* out);
  virtual void workers_write(int32_t first, int32_t count, const float* data);
  // The rule (aggregate.h) over rows 0 .. n - 1; the result replaces the accumulated gradients.
  // weights: n values for the mean, validated by the caller, or null. Returns the worker Krum
  // selected, else -1.
  virtual int32_t workers_aggregate(int32_t rule, int32_t f, int32_t n, const float* weights);
  // on: the next forward_backward reduces the accumulated gradients over the group during its
  // backward, bucket by bucket (grad_buckets) as the layers finish, and the dist_allreduce_grad
  // that follows only waits for those reductions. The default (a group of one, the CPU backend)
  // ignores it.
  virtual void dist_reduce_in_backward(bool on) {}

  // Aborts the group (lora4j_dist_abort). Thread-safe, unlike the rest of the engine: records
  // the reason and raises a flag; it never waits for nor touches a collective in progress. The
  // collectives check the flag (check_not_aborted) and fail with the reason; the CUDA engine also
  // polls it while it waits and then aborts its communicator from the waiting thread. The
  // plugin engine of the core overrides it to forward the abort to its backend.
  virtual void dist_abort(const std::string& reason);
  // The reason given to dist_abort, or "" when the group was not aborted.
  std::string abort_reason() const;

 protected:
  explicit Engine(const ModelShape& s) : shape_(s) {}
  // Throws EDEVICE naming `what` and the abort's reason when dist_abort was called.
  void check_not_aborted(const char* what) const;
  bool abort_requested() const { return aborted_.load(std::memory_order_acquire); }
  ModelShape shape_;
  // Throws unless rows first .. first + count - 1 lie within `reserved` worker rows.
  static void check_worker_rows(int32_t reserved, int32_t first, int32_t count);
  // The host worker rows of the default workers_* (the CPU backend's).
  std::vector<float> worker_rows_;
  int32_t worker_capacity_ = 0;

 private:
  std::atomic<bool> aborted_{false};
  mutable std::mutex abort_mutex_;
  std::string abort_reason_;
};

}  // namespace lora4j
