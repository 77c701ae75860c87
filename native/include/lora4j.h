/*
 * lora4j.h -- the whole native boundary of lora4j.
 *
 * Everything the JVM sees of the native core is declared here: plain C, opaque handles,
 * fixed-width integers, host pointers. No C++ type crosses this line.
 *
 * Conventions
 *  - Every function returns an int status: LORA4J_OK (0) or one of the LORA4J_E* codes.
 *    On failure lora4j_last_error() returns a message for the calling thread that names the
 *    argument, tensor or device call that failed. Nothing here aborts or exits; the only
 *    output is three warnings on standard error (LORA4J_ATTENTION not one of its values, a
 *    LORA4J_PHASE_TIMES file that cannot be written, a CUDA graph that could not be captured).
 *  - Handles are created by *_create and released by *_destroy. Destroying NULL is a no-op.
 *    Passing a destroyed handle is undefined on the C side; the Java owners guard against it.
 *  - Tensors are named with Hugging Face names:
 *      frozen weights: "model.embed_tokens.weight", "model.layers.{i}.self_attn.q_proj.weight",
 *                      "model.layers.{i}.input_layernorm.weight", "model.norm.weight",
 *                      "lm_head.weight", ...
 *      LoRA parameters: PEFT's saved key names,
 *                      "base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight"
 *                      "base_model.model.model.layers.{i}.mlp.down_proj.lora_B.weight"
 *  - All float buffers exchanged with the engine are row-major, contiguous, host memory.
 *  - Token tensors are int32 [batch * seq], row-major.
 */
#ifndef LORA4J_H
#define LORA4J_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ------------------------------------------------------------------------ */
#define LORA4J_OK 0
#define LORA4J_EINVAL 1       /* an argument is invalid: null pointer, wrong size, bad name */
#define LORA4J_ESTATE 2       /* the call is not valid in the engine's state (weights missing...) */
#define LORA4J_ENOMEM 3       /* host or device memory could not be allocated */
#define LORA4J_EDEVICE 4      /* the device, its driver or a device library reported an error */
#define LORA4J_EUNSUPPORTED 5 /* the backend is not available or does not support the request */
#define LORA4J_EINTERNAL 6    /* a bug: an invariant of the core did not hold */
#define LORA4J_EFAULTY 7      /* more workers sent non-finite gradients than the rule tolerates */

/* ---- devices ------------------------------------------------------------------------------ */
#define LORA4J_DEVICE_CPU 0
#define LORA4J_DEVICE_CUDA 1

/* ---- dtypes of host buffers handed to the engine ------------------------------------------ */
#define LORA4J_DTYPE_F32 0
#define LORA4J_DTYPE_BF16 1
#define LORA4J_DTYPE_F16 2

/* ---- LoRA target bits ------------------------------------------------------------------- */
#define LORA4J_TARGET_Q 1u
#define LORA4J_TARGET_K 2u
#define LORA4J_TARGET_V 4u
#define LORA4J_TARGET_O 8u
#define LORA4J_TARGET_GATE 16u
#define LORA4J_TARGET_UP 32u
#define LORA4J_TARGET_DOWN 64u

/* ---- slots of the frozen weights (lora4j_weight_info) -------------------------------------- */
/* 0..6: the seven projections of a decoder layer, in target order: the projection in slot p is
 * the one target bit 1u << p adapts (LORA4J_TARGET_Q == 1u << LORA4J_SLOT_Q, ...). */
#define LORA4J_SLOT_Q 0
#define LORA4J_SLOT_K 1
#define LORA4J_SLOT_V 2
#define LORA4J_SLOT_O 3
#define LORA4J_SLOT_GATE 4
#define LORA4J_SLOT_UP 5
#define LORA4J_SLOT_DOWN 6
#define LORA4J_SLOT_INPUT_NORM 7     /* model.layers.{i}.input_layernorm.weight [hidden] */
#define LORA4J_SLOT_POST_ATTN_NORM 8 /* model.layers.{i}.post_attention_layernorm.weight */
#define LORA4J_SLOT_EMBED 9          /* model.embed_tokens.weight [vocab, hidden] */
#define LORA4J_SLOT_FINAL_NORM 10    /* model.norm.weight [hidden] */
#define LORA4J_SLOT_LM_HEAD 11       /* lm_head.weight [vocab, hidden] */

/* ---- recompute modes ---------------------------------------------------------------------- */
#define LORA4J_RECOMPUTE_NONE 0
#define LORA4J_RECOMPUTE_LAYER 1
/* per layer, but the attention output and its log-sum-exp are kept: the backward re-runs every
 * layer op except the attention forward (on the CUDA backend; the CPU backend recomputes the
 * layer as with LORA4J_RECOMPUTE_LAYER, the same function). */
#define LORA4J_RECOMPUTE_SELECTIVE 2
/* as SELECTIVE, and the rotated q, k and v are kept too: the backward re-runs only the norms,
 * the o projection and the MLP of each layer (CUDA backend; the CPU backend as LAYER). Keeps
 * 2 x rows x (2 x heads + 2 x kv_heads) x head_dim bytes more per layer than LAYER: meant with
 * offload_checkpoints, which holds them in host memory. */
#define LORA4J_RECOMPUTE_ATTENTION 3

/* ---- kinds of per-parameter state tensors ------------------------------------------------- */
#define LORA4J_STATE_PARAM 0      /* the fp32 master LoRA weight */
#define LORA4J_STATE_GRAD 1       /* its accumulated gradient */
#define LORA4J_STATE_EXP_AVG 2    /* AdamW first moment */
#define LORA4J_STATE_EXP_AVG_SQ 3 /* AdamW second moment */

typedef struct lora4j_engine lora4j_engine;

/* Shapes of a Mistral decoder. */
typedef struct lora4j_model_config {
  int32_t vocab_size;
  int32_t hidden_size;
  int32_t intermediate_size;
  int32_t num_layers;
  int32_t num_heads;
  int32_t num_kv_heads;
  int32_t head_dim;
  int32_t sliding_window; /* 0: none; else query i sees key j iff i - W < j <= i */
  int32_t max_seq_len;    /* largest position the engine must handle (RoPE table, KV cache) */
  float rms_norm_eps;
  double rope_theta;
} lora4j_model_config;

/* Engine options fixed at creation. */
typedef struct lora4j_engine_options {
  int32_t device;       /* LORA4J_DEVICE_* */
  int32_t device_index; /* CUDA ordinal; ignored on CPU */
  int32_t num_threads;  /* CPU worker threads; 0 = all hardware threads */
  int32_t recompute;    /* LORA4J_RECOMPUTE_* */
  /* 1: with recompute, what the backward keeps of each layer (its input, and with SELECTIVE /
   * ATTENTION its attention output and lse, with ATTENTION its q, k and v) waits in pinned host
   * memory instead of device memory, copied out while the next layers compute and back one layer
   * ahead of the backward (CUDA backend; the device keeps two layers' worth). The same values, bit
   * for bit. Ignored without recompute and on the CPU backend. */
  int32_t offload_checkpoints;
} lora4j_engine_options;

/* One batch. Rows are [batch, seq]; all pointers are int32 [batch * seq] host arrays.
 * attention_mask: 1 = real token, 0 = padding (never attended as a key). NULL = all real.
 * labels:         -100 = not counted. NULL only where no loss is computed.
 * position_ids:   NULL = 0..seq-1 in every row. Packed rows restart positions per example.
 * segment_ids:    NULL = one sequence per row. Otherwise attention only between equal ids
 *                 (packing: examples in one row never see each other). */
typedef struct lora4j_batch {
  int32_t batch;
  int32_t seq;
  const int32_t* input_ids;
  const int32_t* attention_mask;
  const int32_t* labels;
  const int32_t* position_ids;
  const int32_t* segment_ids;
} lora4j_batch;

/* AdamW as torch.optim.AdamW, with global-norm clipping before the update. */
typedef struct lora4j_adamw {
  float lr;
  float beta1;
  float beta2;
  float eps;
  float weight_decay;
  float max_grad_norm; /* <= 0: no clipping */
} lora4j_adamw;

/* What one optimizer step did. */
typedef struct lora4j_step_result {
  double grad_norm; /* global L2 norm of the gradients before clipping */
  int32_t applied;  /* 1 when the update was applied; 0 when skipped (gradients not finite) */
  int64_t step;     /* optimizer steps applied so far (the AdamW bias-correction count) */
} lora4j_step_result;

/* ---- errors and version --------------------------------------------------------------------- */
const char* lora4j_last_error(void);
int lora4j_version(int32_t* major, int32_t* minor, int32_t* patch);
/* 1 when the CUDA backend library loads and at least one device is present, else 0; *reason
 * receives a message saying why not (buffer of reason_cap bytes, may be NULL). */
int lora4j_cuda_available(int32_t* available, char* reason, int32_t reason_cap);
/* Path of liblora4j_cuda.so to load (before the first CUDA call). Without it the library is
 * looked for at $LORA4J_CUDA_LIBRARY, beside liblora4j, then on the loader's path. */
int lora4j_cuda_set_library(const char* path);

/* ---- the model's frozen weights ----------------------------------------------------------- */
/* The frozen weights a model of this config has, in the engine's fixed order: the embedding;
 * per layer the input norm, q, k, v, o, gate, up, down and the post-attention norm; the final
 * norm; the LM head. The config is validated as lora4j_engine_create validates it; no engine
 * is needed. This is the one definition of the weights' names and shapes: callers read it
 * rather than writing it again (the Java side checks and writes checkpoints from it). The
 * LoRA factors of a projection of shape [out, in] are A [r, in] and B [out, r].
 * weight_info: the Hugging Face name (NUL-terminated, name_cap bytes); ndim (1 for the norm
 * weights, else 2) and shape[0..ndim) (shape has room for 2; a projection is [out, in]); the
 * decoder layer (-1 outside the layers); the slot (LORA4J_SLOT_*). */
int lora4j_weight_count(const lora4j_model_config* config, int32_t* count);
int lora4j_weight_info(const lora4j_model_config* config, int32_t index, char* name,
                       int32_t name_cap, int32_t* ndim, int64_t* shape, int32_t* layer,
                       int32_t* slot);

/* ---- engine lifecycle ----------------------------------------------------------------------- */
int lora4j_engine_create(const lora4j_model_config* config, const lora4j_engine_options* options,
                         lora4j_engine** out);
int lora4j_engine_destroy(lora4j_engine* engine);

/* Copies one frozen weight from host memory (converted to the backend's compute type). The
 * name must be one of the model's and numel its exact element count. All weights must be set
 * before any forward call. */
int lora4j_engine_set_weight(lora4j_engine* engine, const char* name, int32_t dtype,
                             const void* data, int64_t numel);
/* Reads one frozen weight back as fp32 (after a merge it includes the folded adapter). */
int lora4j_engine_get_weight(lora4j_engine* engine, const char* name, float* out, int64_t numel);
/* Bytes of device (or host, for CPU) memory held by the engine now and at peak. */
int lora4j_engine_memory(lora4j_engine* engine, int64_t* in_use, int64_t* peak);

/* ---- 4-bit frozen weights: NF4 as bitsandbytes stores it --------------------------------- */
/* A projection weight [out, in] quantized to 4 bits (QLoRA). Row-major elements are cut into
 * blocks of `blocksize` (bitsandbytes: 64); each block has a scale, its absmax. Element i is the
 * 4-bit code c_i in byte i / 2 of `codes`, in the HIGH nibble when i is even (the earlier
 * element) and in the low nibble when i is odd; it stands for
 *     w_i = code_table[c_i] * scale[i / blocksize]      (fp32 product)
 * rounded to `dtype` (LORA4J_DTYPE_BF16, F16 or F32: bitsandbytes' quant_state "dtype", the type
 * its dequantize_4bit returns). The scales are either plain fp32 (`absmax`, one per block), or
 * double-quantized (absmax NULL): scale[b] = nested_table[absmax_codes[b]]
 * * nested_absmax[b / nested_blocksize] + offset, all fp32 (bitsandbytes' compress_statistics:
 * blocks of 256 over the absmax values less their mean `offset`, with an 8-bit code table).
 * The tensors are those of a bitsandbytes checkpoint: codes = `weight` (uint8), code_table =
 * `weight.quant_map`, absmax / absmax_codes = `weight.absmax`, nested_table =
 * `weight.nested_quant_map`, nested_absmax = `weight.nested_absmax`, offset = nested_offset. */
typedef struct lora4j_nf4_weight {
  int64_t numel;               /* elements of the weight */
  int32_t blocksize;           /* elements per scale; even, >= 2 */
  int32_t dtype;               /* LORA4J_DTYPE_* the dequantized weight is rounded to */
  const uint8_t* codes;        /* (numel + 1) / 2 bytes */
  const float* code_table;     /* 16 values */
  const float* absmax;         /* [blocks] fp32 scales, or NULL when double-quantized */
  const uint8_t* absmax_codes; /* [blocks] 8-bit codes of the scales (absmax NULL) */
  const float* nested_table;   /* 256 values (absmax NULL) */
  const float* nested_absmax;  /* [ceil(blocks / nested_blocksize)] (absmax NULL) */
  int32_t nested_blocksize;    /* scales per nested block, >= 1 (absmax NULL) */
  float offset;                /* added to every dequantized scale (absmax NULL) */
} lora4j_nf4_weight;

/* Gives one projection weight (slots 0..6) to the engine in NF4; numel must be the weight's.
 * The engine computes with exactly the weight lora4j_nf4_dequantize gives, as if it had been
 * set with lora4j_engine_set_weight in `dtype`: the CPU engine holds it dequantized (fp32); the
 * CUDA engine keeps the 4-bit codes and scales on the device and dequantizes one weight at a time
 * into a reused scratch buffer just before each GEMM that needs it. lora4j_engine_get_weight
 * returns the dequantized weight; lora4j_lora_merge turns a merged NF4 weight into a 16-bit one. */
int lora4j_engine_set_weight_nf4(lora4j_engine* engine, const char* name,
                                 const lora4j_nf4_weight* weight);
/* The dequantized weight (see lora4j_nf4_weight) as fp32 values of `dtype`: out [numel]. The
 * arguments are checked as lora4j_engine_set_weight_nf4 checks them. No engine is needed. */
int lora4j_nf4_dequantize(const lora4j_nf4_weight* weight, float* out);

/* ---- LoRA adapter -----------------------------------------------------------------------------
 */
/* Attaches a zero-initialized adapter of the given rank on the target bits with the given
 * scale (alpha/r, or alpha/sqrt(r) with rsLoRA). Replaces any adapter attached before.
 * Callers then set A (and B, when not zero) with lora4j_lora_set. */
int lora4j_lora_attach(lora4j_engine* engine, int32_t rank, float scale, uint32_t targets);
/* Removes the adapter (weights unchanged). */
int lora4j_lora_detach(lora4j_engine* engine);
/* Number of LoRA tensors, and the PEFT key name and shape of the i-th (in a fixed order:
 * layer, then q,k,v,o,gate,up,down, then A before B). */
int lora4j_lora_count(lora4j_engine* engine, int32_t* count);
int lora4j_lora_info(lora4j_engine* engine, int32_t index, char* name, int32_t name_cap,
                     int64_t* rows, int64_t* cols);
/* Reads or writes one state tensor (LORA4J_STATE_*) of one LoRA parameter, fp32. */
int lora4j_lora_get(lora4j_engine* engine, int32_t kind, const char* name, float* out,
                    int64_t numel);
int lora4j_lora_set(lora4j_engine* engine, int32_t kind, const char* name, int32_t dtype,
                    const void* data, int64_t numel);
/* The AdamW step count (for resume). */
int lora4j_optimizer_get_step(lora4j_engine* engine, int64_t* step);
int lora4j_optimizer_set_step(lora4j_engine* engine, int64_t step);
/* Folds scale * B A into every targeted frozen weight and detaches the adapter. */
int lora4j_lora_merge(lora4j_engine* engine);

/* ---- training ----------------------------------------------------------------------------- */
/* Zeroes the accumulated gradients. */
int lora4j_zero_grad(lora4j_engine* engine);
/* Forward and backward on one batch. Adds grad_scale * d(sum of token losses)/d(LoRA params)
 * to the accumulated gradients. With grad_scale = 1 / (label tokens of the whole optimizer
 * step) accumulation over micro-batches gives the gradient of the mean loss of the step.
 * loss_sum receives the sum of the counted tokens' cross-entropies, tokens their count. */
int lora4j_forward_backward(lora4j_engine* engine, const lora4j_batch* batch, float grad_scale,
                            double* loss_sum, int64_t* tokens);
/* Global L2 norm of the accumulated gradients (nothing applied): lets a caller inspect a step
 * before deciding to apply it. */
int lora4j_grad_norm(lora4j_engine* engine, double* norm);
/* Clips, checks finiteness, applies AdamW to every LoRA parameter, zeroes the gradients. */
int lora4j_optimizer_step(lora4j_engine* engine, const lora4j_adamw* adamw,
                          lora4j_step_result* result);
/* One whole optimizer step on one batch: zero_grad, forward_backward with 1/tokens, step.
 * loss receives the mean loss before the update. */
int lora4j_train_step(lora4j_engine* engine, const lora4j_batch* batch, const lora4j_adamw* adamw,
                      double* loss, lora4j_step_result* result);

/* ---- inference -------------------------------------------------------------------------- */
/* Sum of token cross-entropies and their count, no gradients. */
int lora4j_eval_loss(lora4j_engine* engine, const lora4j_batch* batch, double* loss_sum,
                     int64_t* tokens);
/* Logits fp32 [batch * seq * vocab]. */
int lora4j_logits(lora4j_engine* engine, const lora4j_batch* batch, float* out, int64_t numel);
/* Hidden states fp32 [(num_layers + 1) * batch * seq * hidden]: index 0 is the embedding output,
 * index k the output of layer k, the last one after the final RMSNorm (as Hugging Face). */
int lora4j_hidden_states(lora4j_engine* engine, const lora4j_batch* batch, float* out,
                         int64_t numel);
/* Incremental decoding of one sequence with a KV cache. decode_start runs the prompt and writes
 * the logits of its last position; decode_next appends one token and writes the next logits.
 * logits: fp32 [vocab]. The cache holds at most max_seq_len positions. */
int lora4j_decode_start(lora4j_engine* engine, const int32_t* prompt, int32_t length,
                        float* logits);
int lora4j_decode_next(lora4j_engine* engine, int32_t token, float* logits);
/* Greedy decoding of up to count tokens, continuing a decode_start: appends token to the cache
 * (as decode_next does), takes the argmax of the logits (the lowest index among equal maxima) as
 * out[0], appends it, takes out[1], and so on; stops after eos_id (< 0: none) or count tokens.
 * *produced receives their number; the cache then holds token and out[0 .. produced - 2] (the
 * last token is the next call's token); count 0 does nothing. The same tokens as decode_next
 * and the argmax of each logits, without the logits crossing to the caller; the backend may keep
 * the tokens on the device between the steps of one call. */
int lora4j_decode_greedy(lora4j_engine* engine, int32_t token, int32_t count, int32_t eos_id,
                         int32_t* out, int32_t* produced);
/* Sampled decoding of up to count tokens, continuing a decode_start, as decode_greedy does but
 * each token drawn from its step's logits as lora4j_sample draws it (temperature > 0, top_k >= 0,
 * 0 < top_p <= 1; *state the generator's state, advanced by each draw). The same tokens as
 * decode_next and lora4j_sample step by step; the backend may keep the logits on the device. */
int lora4j_decode_sample(lora4j_engine* engine, int32_t token, int32_t count, int32_t eos_id,
                         double temperature, int32_t top_k, double top_p, int64_t* state,
                         int32_t* out, int32_t* produced);
/* One token drawn from logits[0 .. n - 1] with temperature (> 0, +inf allowed), top_k (>= 0; 0:
 * every token) and top_p (in (0, 1]), as the Java dev.lora4j.Sampler defines it (integer weights
 * floor(2^40 E((x - max) / T)); NaN and -inf never drawn; the top-k by descending logit, equal
 * logits by index; the nucleus the shortest prefix of that order reaching ceil(top_p z); one
 * bounded draw of a SplitMix64 generator, Java's SplittableRandom with its default gamma, whose
 * 64-bit state *state is advanced). Every logit NaN or -inf: the greedy token, state untouched. */
int lora4j_sample(const float* logits, int32_t n, double temperature, int32_t top_k, double top_p,
                  int64_t* state, int32_t* token);
/* Greedy generation: up to max_new tokens after the prompt, stopping after eos_id (< 0: none).
 * out receives the new tokens, *produced their number (decode_start, then decode_greedy). */
int lora4j_generate_greedy(lora4j_engine* engine, const int32_t* prompt, int32_t length,
                           int32_t max_new, int32_t eos_id, int32_t* out, int32_t* produced);

/* ---- gradients as one buffer, robust aggregation, collectives (issue 14) ------------------ */
/* Aggregation rules of lora4j_aggregate (what each tolerates: native/src/model/aggregate.h). */
#define LORA4J_AGG_MEAN 0
#define LORA4J_AGG_MEDIAN 1
#define LORA4J_AGG_TRIMMED_MEAN 2
#define LORA4J_AGG_KRUM 3
#define LORA4J_AGG_CENTERED_CLIP 4
/* OR'd into LORA4J_AGG_MEDIAN, _TRIMMED_MEAN or _CENTERED_CLIP: nearest-neighbour mixing before
 * the rule (Allouah et al., 2023): every worker's gradient is first replaced by the mean of its
 * own and its nearest others' (Euclidean distance), n - f of them in all, f the faulty workers the
 * rule tolerates (trimmed-mean:f: f; median and centered-clip: (n - 1) / 2). The honest workers'
 * mixtures then lie close together, which shrinks the bias one faulty worker leaves in the rule;
 * the tolerance stays the rule's. With the mean or Krum: LORA4J_EINVAL. */
#define LORA4J_AGG_MIX 256
/* Bytes of a collective group's unique id (NCCL's ncclUniqueId). */
#define LORA4J_DIST_ID_BYTES 128

/* The accumulated LoRA gradients as one fp32 buffer in the flat arena's order (the tensors of
 * lora4j_lora_info one after another): *numel their total element count (an adapter must be
 * attached); get copies them out, set replaces them (numel must equal the total). */
int lora4j_grad_flat_numel(lora4j_engine* engine, int64_t* numel);
int lora4j_grad_get_flat(lora4j_engine* engine, float* out, int64_t numel);
int lora4j_grad_set_flat(lora4j_engine* engine, const float* data, int64_t numel);
/* Applies an aggregation rule (LORA4J_AGG_*) to the gradients of n workers: workers holds n rows
 * of numel fp32 values; out receives numel values. f: the faulty workers tolerated
 * (trimmed-mean and krum; ignored by the others). weights: n values for the mean (the workers'
 * label tokens), NULL for equal weights; the other rules ignore them. selected: the worker Krum
 * chose, else -1 (may be NULL). Deterministic: the same bits for the same inputs on every
 * machine and thread count. A rule outside its tolerance (median and centered-clip need n >= 3,
 * trimmed-mean 2f < n, krum n > 2f + 2) is LORA4J_EINVAL with a message naming it. No engine.
 * Non-finite workers: the robust rules (all but the mean) set aside every worker with a NaN or
 * infinite value and run on the others, counting the d set aside against the tolerance:
 * trimmed-mean:f and krum:f use f - d and refuse d > f, median and centered-clip refuse 2d >= n;
 * a refusal is LORA4J_EFAULTY with a message naming the rule, d and n, and out is not written.
 * The mean keeps them (its result is then not finite); with LORA4J_AGG_MIX, mixing runs on the
 * others with the d set aside counted against its f too. */
int lora4j_aggregate(int32_t rule, int32_t f, int32_t n, int64_t numel, const float* workers,
                     const float* weights, float* out, int32_t* selected);
/* A new unique id for a collective group (NCCL's, from the CUDA backend): rank 0 makes it and
 * hands it to the others (the Java side's rendezvous); id receives LORA4J_DIST_ID_BYTES bytes. */
int lora4j_dist_unique_id(uint8_t* id, int32_t id_bytes);
/* Joins the engine to a group of world ranks as rank (collective: every rank calls it with the
 * same id). world 1 needs no id (NULL). The CPU backend has no collectives: world > 1 is
 * LORA4J_EUNSUPPORTED there. */
int lora4j_dist_init(lora4j_engine* engine, const uint8_t* id, int32_t id_bytes, int32_t world,
                     int32_t rank);
/* Collectives over the engine's group (a group of one: nothing to exchange).
 * allreduce_grad: the accumulated gradients become their sum over the ranks, in place.
 * allgather_grad: out (world * numel fp32, host) receives every rank's accumulated gradients,
 *   rank r's at out + r * numel, numel = lora4j_grad_flat_numel.
 * allreduce_f64: values (count doubles, host) become their sums over the ranks. */
int lora4j_dist_allreduce_grad(lora4j_engine* engine);
int lora4j_dist_allgather_grad(lora4j_engine* engine, float* out, int64_t numel);
int lora4j_dist_allreduce_f64(lora4j_engine* engine, double* values, int32_t count);
/* on 1: the engine's NEXT lora4j_forward_backward also sums the accumulated gradients (those of
 * earlier passes included) over the group while its backward runs: each bucket of layers is
 * all-reduced as soon as the backward has finished it, on a second stream, overlapped with the
 * backward of the layers below (buckets of about LORA4J_DIST_BUCKET_MB MiB, default 25, 0: one
 * per layer; every rank must set the same, lora4j_dist_init checks it). The
 * lora4j_dist_allreduce_grad that must follow then only waits for those reductions. Arm only the
 * step's last pass, on every rank (the same collectives in the same order). on 0 disarms. A group
 * of one, and the CPU backend, accept it and ignore it. */
int lora4j_dist_reduce_in_backward(lora4j_engine* engine, int32_t on);

/* Worker rows: the per-worker gradients of robust aggregation kept where the engine keeps its
 * gradients (device memory on CUDA, so a step's aggregation never goes through the host). A
 * step with n workers: reserve n rows once; per round, compute one micro-batch's gradients and
 * gather them into the next rows; then aggregate, which replaces the accumulated gradients with
 * the rule's result (the same rules, tolerances and results as lora4j_aggregate: median,
 * trimmed mean and the mean bit for bit on every backend, Krum's choice and centered clipping
 * up to the order of sums over coordinates). An adapter must be attached.
 * reserve: room for rows (<= LORA4J_MAX_WORKERS) rows of lora4j_grad_flat_numel values; 0 frees
 *   it; the rows' contents are undefined after it.
 * gather: collective over the engine's group (every rank calls it with the same first): rank
 *   r's accumulated gradients go to row first + r (a group of one: its own into row first).
 * read / write: rows first .. first + count - 1 to / from host memory (count * numel values),
 *   e.g. to corrupt a worker on purpose (fault injection) or to inspect one.
 * aggregate: the rule over rows 0 .. n - 1 (n <= the reserved rows); weights and selected as
 *   for lora4j_aggregate, non-finite workers and LORA4J_EFAULTY too. Deterministic: every rank
 *   of a group computes the same bits. */
#define LORA4J_MAX_WORKERS 64
int lora4j_workers_reserve(lora4j_engine* engine, int32_t rows);
int lora4j_workers_gather(lora4j_engine* engine, int32_t first);
int lora4j_workers_read(lora4j_engine* engine, int32_t first, int32_t count, float* out);
int lora4j_workers_write(lora4j_engine* engine, int32_t first, int32_t count, const float* data);
int lora4j_workers_aggregate(lora4j_engine* engine, int32_t rule, int32_t f, int32_t n,
                             const float* weights, int32_t* selected);

/* Aborts the engine's collective group, for a rank that learnt (from outside the collectives,
 * e.g. a lost heartbeat) that another rank is gone. Thread-safe: may be called from any thread,
 * also while another thread waits inside a collective of this engine; it does not wait for that
 * call. The waiting collective (CUDA: within milliseconds) and every later one fail with
 * LORA4J_EDEVICE and a message containing reason (non-NULL, UTF-8). A group of one (the CPU
 * backend) records the reason: its later collectives fail likewise. The engine stays usable for
 * everything but collectives, and lora4j_engine_destroy works as usual. */
int lora4j_dist_abort(lora4j_engine* engine, const char* reason);

#ifdef __cplusplus
}
#endif
#endif /* LORA4J_H */
