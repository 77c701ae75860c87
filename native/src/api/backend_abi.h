/*
 * backend_abi.h -- the plugin boundary between liblora4j (the core) and a backend library that
 * it loads with dlopen (liblora4j_cuda.so).
 *
 * Plain C on purpose: the two libraries may be built on different machines with different
 * compilers, so nothing but C types crosses here -- opaque handles, fixed-width integers, the
 * structs of lora4j.h, and function pointers. No C++ object, STL type or exception. Every
 * function returns a lora4j status code (LORA4J_OK or LORA4J_E*); after a non-zero status the
 * backend's last_error() gives the message for the calling thread.
 *
 * A backend exports exactly one symbol, lora4j_backend_entry, which returns its table. The core
 * refuses a table whose abi_version differs from LORA4J_BACKEND_ABI_VERSION (with a message
 * naming both versions and the library's path). Bump the version whenever a field is added,
 * removed or changes meaning.
 */
#ifndef LORA4J_BACKEND_ABI_H
#define LORA4J_BACKEND_ABI_H

#include <stdint.h>

#include "lora4j.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LORA4J_BACKEND_ABI_VERSION 6u

typedef struct lora4j_backend_engine lora4j_backend_engine;

typedef struct lora4j_backend_api {
  uint32_t abi_version; /* LORA4J_BACKEND_ABI_VERSION of the backend's build */
  uint32_t table_size;  /* sizeof(lora4j_backend_api) of the backend's build */
  const char* name;     /* "cuda" */

  /* Message of the last failure on the calling thread (never NULL). */
  const char* (*last_error)(void);
  /* Number of usable devices (0 with the reason in last_error when none). */
  int (*device_count)(int32_t* count);

  /* ---- engine: the semantics of the lora4j.h functions of the same names. The core has
   * validated every argument (names excepted) before it calls these. */
  int (*engine_create)(const lora4j_model_config* config, const lora4j_engine_options* options,
                       lora4j_backend_engine** out);
  int (*engine_destroy)(lora4j_backend_engine* e);
  int (*set_weight)(lora4j_backend_engine* e, const char* name, int32_t dtype, const void* data,
                    int64_t numel);
  int (*get_weight)(lora4j_backend_engine* e, const char* name, float* out, int64_t numel);
  int (*memory)(lora4j_backend_engine* e, int64_t* in_use, int64_t* peak);
  int (*lora_attach)(lora4j_backend_engine* e, int32_t rank, float scale, uint32_t targets);
  int (*lora_detach)(lora4j_backend_engine* e);
  int (*lora_get)(lora4j_backend_engine* e, int32_t kind, const char* name, float* out,
                  int64_t numel);
  int (*lora_set)(lora4j_backend_engine* e, int32_t kind, const char* name, int32_t dtype,
                  const void* data, int64_t numel);
  int (*optimizer_get_step)(lora4j_backend_engine* e, int64_t* step);
  int (*optimizer_set_step)(lora4j_backend_engine* e, int64_t step);
  int (*lora_merge)(lora4j_backend_engine* e);
  int (*zero_grad)(lora4j_backend_engine* e);
  int (*forward_backward)(lora4j_backend_engine* e, const lora4j_batch* batch, float grad_scale,
                          double* loss_sum, int64_t* tokens);
  int (*grad_norm)(lora4j_backend_engine* e, double* norm);
  int (*optimizer_step)(lora4j_backend_engine* e, const lora4j_adamw* adamw,
                        lora4j_step_result* result);
  int (*eval_loss)(lora4j_backend_engine* e, const lora4j_batch* batch, double* loss_sum,
                   int64_t* tokens);
  int (*logits)(lora4j_backend_engine* e, const lora4j_batch* batch, float* out);
  int (*hidden_states)(lora4j_backend_engine* e, const lora4j_batch* batch, float* out);
  int (*decode_start)(lora4j_backend_engine* e, const int32_t* prompt, int32_t length,
                      float* logits);
  int (*decode_next)(lora4j_backend_engine* e, int32_t token, float* logits);

  /* ---- NF4 frozen weights (lora4j_engine_set_weight_nf4); the core has validated
   * the weight and its name. */
  int (*set_weight_nf4)(lora4j_backend_engine* e, const char* name,
                        const lora4j_nf4_weight* weight);

  /* ---- the gradients as one buffer and collectives, with
   * the semantics of the lora4j.h functions of the same names (lora4j_grad_get_flat, ...,
   * lora4j_dist_allreduce_f64); the core has checked the arguments' ranges. dist_unique_id
   * makes a new NCCL unique id (LORA4J_DIST_ID_BYTES bytes). */
  int (*grad_get_flat)(lora4j_backend_engine* e, float* out, int64_t numel);
  int (*grad_set_flat)(lora4j_backend_engine* e, const float* data, int64_t numel);
  int (*dist_unique_id)(uint8_t* id, int32_t id_bytes);
  int (*dist_init)(lora4j_backend_engine* e, const uint8_t* id, int32_t id_bytes, int32_t world,
                   int32_t rank);
  int (*dist_allreduce_grad)(lora4j_backend_engine* e);
  int (*dist_allgather_grad)(lora4j_backend_engine* e, float* out, int64_t numel);
  int (*dist_allreduce_f64)(lora4j_backend_engine* e, double* values, int32_t count);

  /* ---- worker rows of robust aggregation (ABI 3), the semantics of lora4j_workers_*; the core
   * has checked rows <= LORA4J_MAX_WORKERS, the rule's tolerance, n <= LORA4J_MAX_WORKERS and
   * the mean's weights (NULL for the other rules); the backend checks the rows against what is
   * reserved. workers_aggregate writes Krum's selection (else -1) to *selected. */
  int (*workers_reserve)(lora4j_backend_engine* e, int32_t rows);
  int (*workers_gather)(lora4j_backend_engine* e, int32_t first);
  int (*workers_read)(lora4j_backend_engine* e, int32_t first, int32_t count, float* out);
  int (*workers_write)(lora4j_backend_engine* e, int32_t first, int32_t count, const float* data);
  int (*workers_aggregate)(lora4j_backend_engine* e, int32_t rule, int32_t f, int32_t n,
                           const float* weights, int32_t* selected);
  /* ---- version 3: lora4j_dist_reduce_in_backward (the core has checked on is 0 or 1). */
  int (*dist_reduce_in_backward)(lora4j_backend_engine* e, int32_t on);
  /* ---- version 3: lora4j_dist_abort. Thread-safe, unlike every other entry: called from any
   * thread while another may wait inside a collective of e; reason is non-NULL. */
  int (*dist_abort)(lora4j_backend_engine* e, const char* reason);
  /* version 4 adds no entry: lora4j_engine_options, which engine_create receives, gained
   * offload_checkpoints (the core has checked it is 0 or 1). */
  /* ---- version 5: lora4j_decode_greedy (the core has checked token, count >= 0 and the
   * pointers, and set *produced to 0). */
  int (*decode_greedy)(lora4j_backend_engine* e, int32_t token, int32_t count, int32_t eos_id,
                       int32_t* out, int32_t* produced);
  /* ---- version 6: lora4j_decode_sample (the core has checked token, count >= 0, the sampling
   * settings and the pointers, and set *produced to 0). */
  int (*decode_sample)(lora4j_backend_engine* e, int32_t token, int32_t count, int32_t eos_id,
                       double temperature, int32_t top_k, double top_p, int64_t* state,
                       int32_t* out, int32_t* produced);
} lora4j_backend_api;

/* The one symbol a backend library exports. */
typedef const lora4j_backend_api* (*lora4j_backend_entry_fn)(void);
#define LORA4J_BACKEND_ENTRY_SYMBOL "lora4j_backend_entry"

#ifdef __cplusplus
}
#endif
#endif /* LORA4J_BACKEND_ABI_H */
