// CPU reference ops (fp32): the building blocks of the CPU engine and the twins the CUDA
// kernels are tested against. Every op is a plain function over contiguous row-major float
// arrays the caller owns; forward and backward side by side. Work is split over the engine's
// worker threads through the ThreadPool argument (null = run on the calling thread).
//
// Shapes use: n = tokens (batch * seq), d = features, H = query heads, KH = KV heads,
// D = head_dim, B = batch, S = seq, V = vocab, r = LoRA rank.
#pragma once

#include <cstdint>
#include <functional>

namespace lora4j {
namespace cpu {

class ThreadPool;  // defined in cpu/thread_pool.h

// ---- dense algebra -------------------------------------------------------------------------
// y[n, out] (+)= x[n, in] * w[out, in]^T.  accumulate=false overwrites y.
void linear_forward(ThreadPool* tp, const float* x, const float* w, float* y, int64_t n, int64_t in,
                    int64_t out, bool accumulate);
// dx[n, in] (+)= dy[n, out] * w[out, in]
void linear_backward_input(ThreadPool* tp, const float* dy, const float* w, float* dx, int64_t n,
                           int64_t in, int64_t out, bool accumulate);
// dw[out, in] += dy[n, out]^T * x[n, in]
void linear_backward_weight(ThreadPool* tp, const float* dy, const float* x, float* dw, int64_t n,
                            int64_t in, int64_t out);

// Whether the dense products above run their AVX2 + FMA kernels (x86-64 CPUs that have both;
// the others run the baseline kernels, same order of sums, no FMA). allow_linear_avx2(false)
// makes every later call take the baseline ones (tests, to check both on one machine).
bool linear_uses_avx2();
void allow_linear_avx2(bool allow);

// ---- LoRA linear ---------------------------------------------------------------------------
// y = x W^T + scale * (x A^T) B^T, with A [r, in], B [out, r]. xa [n, r] receives x A^T (kept
// for the backward). A, B may be null (no adapter on this projection): then y = x W^T.
void lora_linear_forward(ThreadPool* tp, const float* x, const float* w, const float* a,
                         const float* b, float scale, float* xa, float* y, int64_t n, int64_t in,
                         int64_t out, int64_t r);
// From dy [n, out]: dx [n, in] = dy W + scale * (dy B) A (overwritten); dA [r, in] +=
// scale * (dy B)^T x; dB [out, r] += scale * dy^T xa. tmp: scratch of n * r floats.
// A, B, dA, dB null: only dx through W. dx null: no input gradient, only dA and dB.
void lora_linear_backward(ThreadPool* tp, const float* dy, const float* x, const float* w,
                          const float* a, const float* b, const float* xa, float scale, float* dx,
                          float* da, float* db, float* tmp, int64_t n, int64_t in, int64_t out,
                          int64_t r);

// ---- RMSNorm -------------------------------------------------------------------------------
// y = x * rsqrt(mean(x^2) + eps) * w over the last dim d; rstd [n] keeps the rsqrt.
void rmsnorm_forward(ThreadPool* tp, const float* x, const float* w, float* y, float* rstd,
                     int64_t n, int64_t d, float eps);
// dx [n, d] = d(y)/d(x) applied to dy (w frozen: no weight gradient). accumulate adds to dx.
void rmsnorm_backward(ThreadPool* tp, const float* dy, const float* x, const float* w,
                      const float* rstd, float* dx, int64_t n, int64_t d, bool accumulate);

// ---- RoPE ----------------------------------------------------------------------------------
// Hugging Face rotate_half convention: pairs (i, i + D/2). Angles: position * inv_freq[i] in
// fp32 with inv_freq[i] = 1 / theta^(2i / D) computed in fp32 (as Hugging Face does).
// x [n, heads, D] rotated in place; positions [n]. backward rotates by the negative angle.
void rope_forward(ThreadPool* tp, float* x, const int32_t* positions, int64_t n, int64_t heads,
                  int64_t D, double theta);
void rope_backward(ThreadPool* tp, float* dx, const int32_t* positions, int64_t n, int64_t heads,
                   int64_t D, double theta);

// ---- attention -----------------------------------------------------------------------------
// Which keys a query sees. Query i of row b sees key j iff j <= i, mask[b, j] != 0 (when mask
// is given), segment[b, i] == segment[b, j] (when segments are given: packed examples never
// see each other), and i - j < window (when window > 0: Mistral's sliding window).
struct AttentionMask {
  const int32_t* key_mask = nullptr;  // [B, S]
  const int32_t* segments = nullptr;  // [B, S]
  int32_t window = 0;
};
// q [B, S, H, D], k, v [B, S, KH, D]; out [B, S, H, D]; lse [B, H, S] receives the log-sum-exp
// of the scaled scores per query (for the backward). Query head h reads KV head h / (H / KH).
// Scores are scaled by 1 / sqrt(D). A query that sees no key gets out = 0, lse = -inf.
void attention_forward(ThreadPool* tp, const float* q, const float* k, const float* v, float* out,
                       float* lse, const AttentionMask& m, int64_t B, int64_t S, int64_t H,
                       int64_t KH, int64_t D);
// From dout [B, S, H, D]: dq [B, S, H, D], dk, dv [B, S, KH, D] (all overwritten).
void attention_backward(ThreadPool* tp, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, float* dq, float* dk,
                        float* dv, const AttentionMask& m, int64_t B, int64_t S, int64_t H,
                        int64_t KH, int64_t D);

// ---- SwiGLU --------------------------------------------------------------------------------
// h = silu(gate) * up, elementwise over n values.
void swiglu_forward(ThreadPool* tp, const float* gate, const float* up, float* h, int64_t n);
void swiglu_backward(ThreadPool* tp, const float* dh, const float* gate, const float* up,
                     float* dgate, float* dup, int64_t n);

// ---- LM head fused with masked cross-entropy -----------------------------------------------
// For each token t with target[t] != -100: loss_t = logsumexp(h_t W^T) - (h_t W^T)[target].
// The logits are computed a chunk of tokens at a time and never for all n at once.
// loss_sum += sum of loss_t; count += number of counted tokens. When dh is not null it
// receives grad_scale * d(sum loss_t)/d h  [n, d] (rows of uncounted tokens are zero).
void lm_head_cross_entropy(ThreadPool* tp, const float* h, const float* w, const int32_t* target,
                           int64_t n, int64_t d, int64_t V, float grad_scale, double* loss_sum,
                           int64_t* count, float* dh);

// ---- AdamW ---------------------------------------------------------------------------------
// Sum of squares of g[0..n) in double (for the global gradient norm).
double sum_squares(ThreadPool* tp, const float* g, int64_t n);
// torch.optim.AdamW on a flat array: p -= lr * wd * p (decoupled, applied to params where
// decay is true); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m / (1-b1^t)) /
// (sqrt(v / (1-b2^t)) + eps). g is multiplied by grad_mult first (the clipping factor).
void adamw_update(ThreadPool* tp, float* p, const float* g, float* m, float* v, int64_t n,
                  float grad_mult, float lr, float beta1, float beta2, float eps,
                  float weight_decay, int64_t step);

}  // namespace cpu
}  // namespace lora4j
