// The fused LM head + masked cross-entropy, chunk by chunk over the tokens, so the fp32 logits of
// the whole batch never exist: per chunk one GEMM to fp32 logits, the cross-entropy kernel (loss
// per token; bf16 logit gradients written over the logits in place), one GEMM to dh. The engine
// and the single-op benchmark both run exactly this.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "cuda/check.h"
#include "cuda/gemm.h"
#include "cuda/kernels/kernels.h"

namespace lora4j {
namespace cuda {

// Tokens per chunk such that the chunk's fp32 logits fit in budget_bytes. The default, 120 MiB,
// is under 1/8 of the fp32 logits of 8192 tokens at vocab 32000 or 32768 (1.0 / 1.07 GB).
// Measured on the H200 (bench_ops cross_entropy, 8192 tokens, vocab 32768): chunks cut to whole
// 128-row tiles (896 tokens, 10 chunks) ran 8.08 ms against 7.72 for 960 (9 chunks): fewer,
// larger chunks beat tile-aligned ones here.
// LORA4J_LM_HEAD_CHUNK_MIB sets another budget (the benchmarks' sweep of chunk sizes).
inline int64_t lm_head_budget_bytes() {
  const char* env = std::getenv("LORA4J_LM_HEAD_CHUNK_MIB");
  const long long mib = env ? std::atoll(env) : 0;
  return (mib > 0 ? int64_t(mib) : int64_t(120)) << 20;
}
inline int64_t lm_head_chunk_tokens(int64_t n, int64_t V,
                                    int64_t budget_bytes = lm_head_budget_bytes()) {
  return std::max<int64_t>(1, std::min<int64_t>(n, budget_bytes / (V * 4)));
}

// h [n, d] bf16, w [V, d] bf16, tgt [n] (-100: not counted). loss[t] per token (0 when not
// counted); dh (nullable) [n, d] fp32 = d (grad_scale * sum of counted losses) / d h.
// logits: scratch of chunk * V floats. The GEMMs run on gemm's stream, s.
// logits2 and aux (both or neither): a second scratch of chunk * V floats and a second stream;
// the chunks then alternate between the two scratches and each chunk's cross-entropy kernel runs
// on aux while the next chunk's logits GEMM runs on s (the kernel is memory-bound, the GEMM
// compute-bound), so the loss kernels hide under the GEMMs. The same values either way; when the
// function returns, everything it queued is ordered before s's next work.
inline void lm_head_loss(Gemm& gemm, const bf16* h, const bf16* w, const int32_t* tgt, int64_t n,
                         int64_t d, int64_t V, float grad_scale, float* loss, float* dh,
                         float* logits, int64_t chunk, cudaStream_t s, float* logits2 = nullptr,
                         cudaStream_t aux = nullptr) {
  const bool overlap = logits2 && aux && n > chunk;
  if (!overlap) {
    bf16* g = dh ? reinterpret_cast<bf16*>(logits) : nullptr;  // row t at t * 2V bf16
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
      const int64_t c = std::min(chunk, n - c0);
      gemm.run(false, true, c, V, d, h + c0 * d, d, w, d, logits, true, V, 1.f, 0.f, "lm_head");
      LORA4J_CU(cross_entropy_chunk(logits, tgt + c0, c, V, grad_scale, loss + c0, g, 2 * V, s));
      if (g)
        gemm.run(false, false, c, d, V, g, 2 * V, w, d, dh + c0 * d, true, d, 1.f, 0.f,
                 "lm_head backward");
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
  float* buf[2] = {logits, logits2};
  const int64_t chunks = (n + chunk - 1) / chunk;
  auto backward = [&](int64_t i) {  // dh rows of chunk i, on s, after its cross-entropy
    const int b = int(i % 2);
    LORA4J_CU(cudaStreamWaitEvent(s, done[b], 0));
    if (!dh) return;
    const int64_t c0 = i * chunk, c = std::min(chunk, n - c0);
    gemm.run(false, false, c, d, V, reinterpret_cast<bf16*>(buf[b]), 2 * V, w, d, dh + c0 * d, true,
             d, 1.f, 0.f, "lm_head backward");
  };
  for (int64_t i = 0; i < chunks; ++i) {
    const int b = int(i % 2);
    const int64_t c0 = i * chunk, c = std::min(chunk, n - c0);
    gemm.run(false, true, c, V, d, h + c0 * d, d, w, d, buf[b], true, V, 1.f, 0.f, "lm_head");
    LORA4J_CU(cudaEventRecord(made[b], s));
    LORA4J_CU(cudaStreamWaitEvent(aux, made[b], 0));
    LORA4J_CU(cross_entropy_chunk(buf[b], tgt + c0, c, V, grad_scale, loss + c0,
                                  dh ? reinterpret_cast<bf16*>(buf[b]) : nullptr, 2 * V, aux));
    LORA4J_CU(cudaEventRecord(done[b], aux));
    if (i > 0) backward(i - 1);
  }
  backward(chunks - 1);
  settle.armed = false;
}

}  // namespace cuda
}  // namespace lora4j
