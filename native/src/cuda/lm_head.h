// The fused LM head + masked cross-entropy, chunk by chunk over the tokens, so the logits of the
// whole batch never exist: per chunk one GEMM to the logits, the cross-entropy kernel (loss per
// token, fp32; bf16 logit gradients written over the logits in place), one GEMM to dh. The
// engine and the single-op benchmark both run exactly this.
//
// The logits are bf16 by default: Hugging Face's LM head under bf16 autocast gives bf16 logits,
// which its loss then upcasts, so the loss and the gradients see the same rounded values; half
// the bytes of fp32 logits, so a chunk holds twice the tokens in the same memory, the GEMM writes
// half as much and the loss kernel reads half. LORA4J_LM_HEAD_LOGITS=fp32 keeps them fp32 (more
// than Hugging Face carries; the benchmarks' A/B).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/check.h"
#include "cuda/gemm.h"
#include "cuda/kernels/kernels.h"

namespace lora4j {
namespace cuda {

// bf16 (default) or fp32 logits on the loss path, from LORA4J_LM_HEAD_LOGITS ("bf16" or
// "fp32"; anything else is refused).
inline bool lm_head_bf16_logits() {
  const char* env = std::getenv("LORA4J_LM_HEAD_LOGITS");
  if (!env || !*env || std::strcmp(env, "bf16") == 0) return true;
  if (std::strcmp(env, "fp32") == 0) return false;
  fail(LORA4J_EINVAL, std::string("LORA4J_LM_HEAD_LOGITS must be bf16 or fp32, not '") + env + "'");
}

// The bytes of one chunk's logits scratch: 128 MiB, 1/8 of the fp32 logits of 8192 tokens at
// vocab 32768 (2048 tokens of bf16 logits). Measured on the H200 (bench_ops cross_entropy, 8192
// tokens, vocab 32768, fp32 logits, eighth session): 960-token chunks 7.75 ms, 2048-token ones
// 7.44, the whole batch at once 7.50: fewer, larger chunks are faster, down to about 4.
// LORA4J_LM_HEAD_CHUNK_MIB sets another budget (the benchmarks' sweep of chunk sizes).
constexpr int64_t kLmHeadBudgetBytes = int64_t(128) << 20;
inline int64_t lm_head_budget_bytes() {
  const char* env = std::getenv("LORA4J_LM_HEAD_CHUNK_MIB");
  const long long mib = env ? std::atoll(env) : 0;
  return mib > 0 ? int64_t(mib) << 20 : kLmHeadBudgetBytes;
}
// Tokens per chunk: the fewest chunks whose logits (elem_bytes each) fit budget_bytes, with the
// tokens split evenly between them (so no short last chunk runs a GEMM of a few rows).
inline int64_t lm_head_chunk_tokens(int64_t n, int64_t V, int64_t elem_bytes,
                                    int64_t budget_bytes = lm_head_budget_bytes()) {
  if (n <= 0) return 1;
  const int64_t most = std::max<int64_t>(1, std::min<int64_t>(n, budget_bytes / (V * elem_bytes)));
  const int64_t chunks = (n + most - 1) / most;
  return std::max<int64_t>(1, (n + chunks - 1) / chunks);
}
// The floats of scratch one chunk of `chunk` tokens needs (logits of elem_bytes each).
inline int64_t lm_head_scratch_floats(int64_t chunk, int64_t V, int64_t elem_bytes) {
  return (chunk * V * elem_bytes + 3) / 4;
}

// h [n, d] bf16, w [V, d] bf16, tgt [n] (-100: not counted). loss[t] per token (0 when not
// counted); dh (nullable) [n, d] fp32 = d (grad_scale * sum of counted losses) / d h.
// logits: scratch for one chunk's logits (bf16 when bf16_logits, else fp32: see
// lm_head_scratch_floats). The GEMMs run on gemm's stream, s.
// logits2 and aux (both or neither): a second scratch and a second stream; the chunks then
// alternate between the two scratches and each chunk's cross-entropy kernel runs on aux while the
// next chunk's logits GEMM runs on s (the kernel is memory-bound, the GEMM compute-bound), so the
// loss kernels hide under the GEMMs. The same values either way; when the function returns,
// everything it queued is ordered before s's next work.
inline void lm_head_loss(Gemm& gemm, const bf16* h, const bf16* w, const int32_t* tgt, int64_t n,
                         int64_t d, int64_t V, float grad_scale, float* loss, float* dh,
                         bool bf16_logits, void* logits, int64_t chunk, cudaStream_t s,
                         void* logits2 = nullptr, cudaStream_t aux = nullptr) {
  // the bf16 gradients of row t start at the row's own first byte: row stride V or 2V bf16
  const int64_t ldg = bf16_logits ? V : 2 * V;
  auto logits_gemm = [&](void* buf, int64_t c0, int64_t c) {
    gemm.run(false, true, c, V, d, h + c0 * d, d, w, d, buf, !bf16_logits, V, 1.f, 0.f, "lm_head");
  };
  auto loss_kernel = [&](void* buf, int64_t c0, int64_t c, cudaStream_t st) {
    bf16* g = dh ? static_cast<bf16*>(buf) : nullptr;
    if (bf16_logits)
      LORA4J_CU(cross_entropy_chunk(static_cast<const bf16*>(buf), tgt + c0, c, V, grad_scale,
                                    loss + c0, g, ldg, st));
    else
      LORA4J_CU(cross_entropy_chunk(static_cast<const float*>(buf), tgt + c0, c, V, grad_scale,
                                    loss + c0, g, ldg, st));
  };
  auto dh_gemm = [&](void* buf, int64_t c0, int64_t c) {
    gemm.run(false, false, c, d, V, static_cast<const bf16*>(buf), ldg, w, d, dh + c0 * d, true, d,
             1.f, 0.f, "lm_head backward");
  };
  const bool overlap = logits2 && aux && n > chunk;
  if (!overlap) {
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
      const int64_t c = std::min(chunk, n - c0);
      logits_gemm(logits, c0, c);
      loss_kernel(logits, c0, c, s);
      if (dh) dh_gemm(logits, c0, c);
    }
    return;
  }
  // Per scratch b: made[b] after its logits GEMM (s), done[b] after its cross-entropy (aux).
  // On s: F0, F1, B0, F2, B1, ...: F(i) reuses the scratch of chunk i - 2, whose B (or, without
  // dh, whose cross-entropy) s has waited for.
  struct Events {
    cudaEvent_t e[4] = {};
    ~Events() {
      for (cudaEvent_t x : e)
        if (x) cudaEventDestroy(x);
    }
  } ev;
  for (cudaEvent_t& x : ev.e) LORA4J_CU(cudaEventCreateWithFlags(&x, cudaEventDisableTiming));
  // When a call below throws, what is already queued on aux finishes before the exception
  // leaves: it writes the scratches and the losses, which the caller's next work on s would
  // otherwise reuse beside it (on the normal path s waits for it through the done events).
  struct Settle {
    cudaStream_t a;
    bool armed = true;
    ~Settle() {
      if (armed) cudaStreamSynchronize(a);
    }
  } settle{aux};
  cudaEvent_t made[2] = {ev.e[0], ev.e[1]}, done[2] = {ev.e[2], ev.e[3]};
  void* buf[2] = {logits, logits2};
  const int64_t chunks = (n + chunk - 1) / chunk;
  auto backward = [&](int64_t i) {  // dh rows of chunk i, on s, after its cross-entropy
    const int b = int(i % 2);
    LORA4J_CU(cudaStreamWaitEvent(s, done[b], 0));
    if (!dh) return;
    const int64_t c0 = i * chunk;
    dh_gemm(buf[b], c0, std::min(chunk, n - c0));
  };
  for (int64_t i = 0; i < chunks; ++i) {
    const int b = int(i % 2);
    const int64_t c0 = i * chunk, c = std::min(chunk, n - c0);
    logits_gemm(buf[b], c0, c);
    LORA4J_CU(cudaEventRecord(made[b], s));
    LORA4J_CU(cudaStreamWaitEvent(aux, made[b], 0));
    loss_kernel(buf[b], c0, c, aux);
    LORA4J_CU(cudaEventRecord(done[b], aux));
    if (i > 0) backward(i - 1);
  }
  backward(chunks - 1);
  settle.armed = false;
}

}  // namespace cuda
}  // namespace lora4j
