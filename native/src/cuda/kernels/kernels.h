// Host-side launchers of the lora4j CUDA kernels. Every launcher validates nothing beyond what
// it needs to pick a kernel, launches on the given stream and returns cudaGetLastError(); the
// engine turns a non-success code into a lora4j::Error naming the launcher.
//
// Conventions: row-major contiguous buffers; bf16 activations and weights, fp32 accumulators,
// residual stream and gradients of the residual stream in fp32. n = tokens, d = features.
#pragma once
#include <cmath>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace lora4j {
namespace cuda {

using bf16 = __nv_bfloat16;
using f16 = __half;

// ---- one row times a weight (gemv.cu) ---------------------------------------------------
// One row times a row-major weight: y[n] = alpha * sum_k x[k] w[n, k] + beta * c[n] for
// n < N, w [N, K] with row stride ldw; x and w bf16, or both fp16 (f16); y and c fp32 (y_f32) or
// bf16; c may be y itself and is not read when beta is 0 (null: y). fp32 accumulation in a fixed
// order: one warp per n (each warp takes n, n + warps, ...); lane l takes the 8-element chunks l, l
// + 32, ... in turn, each chunk's products summed in element order by fmaf from 0 and added to the
// lane's sum; then the warp's butterfly sum (xor 16, 8, 4, 2, 1); then fmaf(beta, c, alpha * sum).
// With GemvParams::split, few rows (N <= kGemvSplitMaxRows: a LoRA A product at decode, 16-48
// rows at rank 16, where a warp a row left the GPU nearly idle, 9.7 us a product at 7B) take
// kGemvSplitWarps warps a row instead: lane l of warp w takes the chunks 32 w + l, 32 w + l + 32 S,
// ... (S warps) in turn, each warp's butterfly as above, then the warps' sums added in warp order
// (s0 + s1, + s2, ...) before the fmaf. gemv_row_warps(N, split) says which order a call takes
// (1: the warp-a-row order, which gemv_pairs' sums keep).
// Needs K, ldw multiples of 8 and x, w 16-byte aligned (gemv_accepts); cudaErrorInvalidValue
// otherwise.
constexpr int64_t kGemvSplitMaxRows = 256;
constexpr int kGemvSplitWarps = 8;
constexpr int gemv_row_warps(int64_t N, bool split) {
  return split && N <= kGemvSplitMaxRows ? kGemvSplitWarps : 1;
}
struct GemvParams {
  const void* x = nullptr;
  const void* w = nullptr;
  int64_t ldw = 0, N = 0, K = 0;
  bool f16 = false;
  const void* c = nullptr;
  void* y = nullptr;
  bool y_f32 = true;
  float alpha = 1.f, beta = 0.f;
  // launched with programmatic dependent launch (common.cuh): its blocks start as the kernel
  // before it ends and wait there for its output (a decode step's chain of kernels)
  bool pdl = false;
  // few rows (gemv_row_warps(N, true) > 1) in the split order; false: the warp-a-row order at
  // every N
  bool split = false;
  // K2 > 0: a second pair summed as K's continuation, as if x had K2 more elements x2 and each row
  // n of w K2 more w2[n, :] (row stride ldw2): chunk K / 8 + j of the lane order is x2 / w2's
  // chunk j, so the sums are those of the concatenated operands (a folded weight's). A decode
  // step's unfolded LoRA term (xa, B) this way. The warp-a-row order only (not with split rows).
  const void* x2 = nullptr;
  const void* w2 = nullptr;
  int64_t ldw2 = 0, K2 = 0;
};
bool gemv_accepts(const GemvParams& p);
cudaError_t gemv(const GemvParams& p, cudaStream_t s);

// A decode step's products of one row in one launch, with what follows each in the layer: up to
// kGemvPairSegments segments, each a weight (or two) times its own x, summed as gemv sums a row
// (the same bits), a warp taking two rows at a time:
//   kRope:   w0 [N, K] fp16 times x fp16, N = heads x D; each head's rows f and f + D/2 rotated by
//            the angle pos[0] inv_freq[f] (rope_cos_sin / rope_rotate: rope_forward's bits on the
//            fp32 sums) and stored in fp16 to y [N] (q, or k into the cache);
//   kPair:   w0 [N, K] bf16 times x bf16, N even, stored in bf16 to y [N] (v into the cache);
//   kSwiglu: w0 (gate) and w1 (up) [N, K] bf16 times x bf16, each sum rounded to bf16, then
//            y[n] = swiglu_fwd_one(gate, up) in bf16 (h).
// alpha 1 and no C: the sums gemv stores with alpha 1, beta 0. Needs K and the strides multiples
// of 8, x and the weights 16-byte aligned (gemv_pairs_accepts); cudaErrorInvalidValue otherwise.
constexpr int kGemvPairSegments = 3;
enum class GemvPairKind : int { kRope = 0, kPair = 1, kSwiglu = 2 };
struct GemvPairSegment {
  GemvPairKind kind = GemvPairKind::kPair;
  const void* x = nullptr;
  const void* w0 = nullptr;
  const void* w1 = nullptr;  // kSwiglu only
  int64_t ldw0 = 0, ldw1 = 0, N = 0, K = 0;
  bool f16 = false;  // kRope: true (fp16 x and w0); the others bf16
  void* y = nullptr;
  int D = 0;  // kRope: head size
};
// The folded RMSNorm (GemvPairsParams::norm): x's row of d is normalized by every block as
// rmsnorm_forward does it (the same bits as its y and fp16 copy, neither stored) and the segments
// read it from shared memory, bf16 or fp16 as each segment's f16 says, in place of their x (null
// then); every segment's K is d. x is the residual stream, fp32 or bf16 (x_bf16).
struct GemvPairsNorm {
  const void* x = nullptr;
  bool x_bf16 = false;
  const bf16* w = nullptr;
  float eps = 0.f;
  int64_t d = 0;
};
struct GemvPairsParams {
  GemvPairSegment seg[kGemvPairSegments];
  int count = 0;
  const int32_t* pos = nullptr;     // kRope: the row's position (device)
  const float* inv_freq = nullptr;  // kRope: [D / 2] (device)
  bool pdl = false;                 // as GemvParams::pdl
  GemvPairsNorm norm;               // norm.x set: the row's RMSNorm in the same launch
};
bool gemv_pairs_accepts(const GemvPairsParams& p);
cudaError_t gemv_pairs(const GemvPairsParams& p, cudaStream_t s);

// ---- greedy decoding on the device (greedy.cu) ------------------------------------------------
// out[0], ids[0] = the index of the largest of logits[0 .. n - 1], the lowest among equal maxima,
// as greedy_argmax (model/engine.h) picks it on the host (NaN never chosen after index 0; a NaN at
// index 0 stays); pos[0] = next_pos. One block. The next decode step reads ids and pos.
cudaError_t greedy_argmax_feed(const float* logits, int32_t n, int32_t* out, int32_t* ids,
                               int32_t* pos, int32_t next_pos, cudaStream_t s);
// ids[0] = token, pos[0] = position, in stream order (a kernel's arguments, no host copy).
cudaError_t decode_feed(int32_t* ids, int32_t* pos, int32_t token, int32_t position,
                        cudaStream_t s);

// ---- sampled decoding on the device (sample.cu) ----------------------------------------------
// out[0], ids[0] = the token drawn from logits[0 .. n - 1] with temperature (> 0), top_k (>= 0)
// and top_p (in (0, 1]), as model/sampler.cpp's sample_token draws it from the generator state
// *state (advanced on the device; its value after the draw also into *state_out); pos[0] =
// next_pos. w (n int64) and key (n uint32) are its scratch. One block.
cudaError_t sample_feed(const float* logits, int32_t n, double temperature, int32_t top_k,
                        double top_p, int64_t* state, int64_t* w, uint32_t* key, int32_t* out,
                        int64_t* state_out, int32_t* ids, int32_t* pos, int32_t next_pos,
                        cudaStream_t s);

// ---- conversion / elementwise (convert.cu) ------------------------------------------------
// y = bf16(x), round to nearest even, and y = float(x). 8 values a thread where x and y are
// 16-byte aligned, one a thread otherwise (the _scalar forms, taken everywhere with
// LORA4J_CONVERT=scalar); the same bits either way.
cudaError_t f32_to_bf16(const float* x, bf16* y, int64_t n, cudaStream_t s);
cudaError_t f32_to_bf16_scalar(const float* x, bf16* y, int64_t n, cudaStream_t s);
cudaError_t bf16_to_f32(const bf16* x, float* y, int64_t n, cudaStream_t s);
cudaError_t bf16_to_f32_scalar(const bf16* x, float* y, int64_t n, cudaStream_t s);
// dst[i, j] = fp16(src[i, j]), i < rows, j < cols, row strides lds and ldd (>= cols; columns
// past cols are not written): a bf16 weight or LoRA product as the operand of an fp16 GEMM.
// Values past fp16's range (65504) become infinite, those under 2^-14 in magnitude subnormal:
// the engine takes this path only for weights it has checked (CudaEngine::qk_f16_ok).
cudaError_t bf16_to_f16_2d(const bf16* src, int64_t lds, f16* dst, int64_t ldd, int64_t rows,
                           int64_t cols, cudaStream_t s);
cudaError_t bf16_to_f16_2d_scalar(const bf16* src, int64_t lds, f16* dst, int64_t ldd, int64_t rows,
                                  int64_t cols, cudaStream_t s);
bool bf16_to_f16_2d_is_vectorized(const bf16* src, int64_t lds, const f16* dst, int64_t ldd,
                                  int64_t cols);
// dst[i, j] = bf16(scale * src[i, j]), i < rows, j < cols, row strides lds and ldd (>= cols;
// columns past cols are not written): the q/k/v input gradient's operands laid side by side
// (CudaEngine::qkv_dx). A copy when scale is 1; exact when it is a power of two.
cudaError_t bf16_copy_2d(const bf16* src, int64_t lds, bf16* dst, int64_t ldd, int64_t rows,
                         int64_t cols, float scale, cudaStream_t s);
cudaError_t bf16_copy_2d_scalar(const bf16* src, int64_t lds, bf16* dst, int64_t ldd, int64_t rows,
                                int64_t cols, float scale, cudaStream_t s);
bool bf16_copy_2d_is_vectorized(const bf16* src, int64_t lds, const bf16* dst, int64_t ldd,
                                int64_t cols);
// w[out, in] = bf16(w + scale * b[out, r] a[r, in])  (LoRA merge, fp32 masters)
cudaError_t lora_merge_weight(bf16* w, const float* a, const float* b, float scale, int64_t out,
                              int64_t in, int64_t r, cudaStream_t s);

// dst.p[i][0 .. len) += src[i len .. (i + 1) len) for i < count (1 .. kMax), in one launch: a
// group's dLoRA_A, computed as one GEMM over its members' (dy B) side by side, added onto each
// member's gradient (their A gradients are not adjacent in the arena)
struct F32Slices {
  static constexpr int kMax = 4;
  float* p[kMax];
};
cudaError_t add_f32_slices(const float* src, int64_t len, const F32Slices& dst, int count,
                           cudaStream_t s);

// Device-to-device copies of a table in one launch: copy i moves rows x width bytes from src (row
// pitch spitch bytes) to dst (row pitch dpitch bytes), as cudaMemcpy2DAsync would. The table
// (count entries, 1 .. kMaxCopies) is in device memory; copies must not overlap one another.
// Each copy moves 16-, 8-, 4-, 2- or 1-byte units, the largest its pointers, pitches and width
// are all multiples of (copy2d_unit). The optimizer step's refresh of the LoRA copies (Mistral-7B,
// all seven targets: ~420 copies of 16 to 460 KB) is one such launch instead of one call each.
struct Copy2D {
  const void* src;
  void* dst;
  int64_t spitch, dpitch, width, rows;
};
constexpr int kMaxCopies = 65535;
// (on the host too: the tests check which unit a copy takes)
#ifdef __CUDACC__
#define LORA4J_HOST_DEVICE __host__ __device__
#else
#define LORA4J_HOST_DEVICE
#endif
LORA4J_HOST_DEVICE inline int copy2d_unit(const Copy2D& c) {
  const uint64_t bits = uint64_t(reinterpret_cast<uintptr_t>(c.src)) |
                        uint64_t(reinterpret_cast<uintptr_t>(c.dst)) | uint64_t(c.spitch) |
                        uint64_t(c.dpitch) | uint64_t(c.width);
  int u = 16;
  while (u > 1 && bits % uint64_t(u) != 0) u /= 2;
  return u;
}
cudaError_t copy2d_batched(const Copy2D* table, int count, cudaStream_t s);

// ---- embedding (embedding.cu) -------------------------------------------------------------
// out[t, :] = float(table[ids[t], :]), or the bf16 row itself (the residual stream in bf16)
cudaError_t embedding_forward(const int32_t* ids, const bf16* table, float* out, int64_t n,
                              int64_t d, cudaStream_t s);
cudaError_t embedding_forward(const int32_t* ids, const bf16* table, bf16* out, int64_t n,
                              int64_t d, cudaStream_t s);

// ---- RMSNorm (rmsnorm.cu) -----------------------------------------------------------------
// y = bf16(x * rsqrt(mean(x^2) + eps) * w); rstd[t] keeps the rsqrt. y_lo (nullable) receives
// the rounding residue bf16(exact - y), so that y + y_lo carries ~16 significant bits: GEMMs
// whose output must be more exact than one bf16 operand allows run on both halves.
// ldy: the row stride of y and y_lo (0: d), at least d; columns d .. ldy - 1 are not written
// (the engine keeps the LoRA products x A^T there, beside the rows they came from).
// lo8 (p nullable): the same residue in e4m3 (saturating, round to nearest), multiplied by
// lo8.scale first (a power of two, so the product is exact), row stride lo8.ld (0: d, a multiple
// of 4 for the vectorized kernel): the operand of an FP8 GEMM for that second half.
struct Lo8 {
  uint8_t* p = nullptr;
  float scale = 1.f;
  int64_t ld = 0;
};
// y16 (p nullable): the output again in fp16, rounded once from the fp32 value (11 significant
// bits against bf16's 8), row stride y16.ld (0: d, a multiple of 4 for the vectorized kernel):
// the operand of the q and k GEMMs in fp16.
struct Y16 {
  f16* p = nullptr;
  int64_t ld = 0;
};
// x is the residual stream, TX = float or bf16 (the same arithmetic on float(x); both forms of
// this and of every rmsnorm entry below are instantiated in rmsnorm.cu). pdl: launched with
// programmatic dependent launch (common.cuh; the weight is read before the wait).
template <class TX>
cudaError_t rmsnorm_forward(const TX* x, const bf16* w, bf16* y, float* rstd, int64_t n, int64_t d,
                            float eps, cudaStream_t s, bf16* y_lo = nullptr, int64_t ldy = 0,
                            Lo8 lo8 = {}, Y16 y16 = {}, bool pdl = false);
// A decode step's RMSNorm and the LoRA A product of the group that reads its output, in one
// launch: for one row x (fp32, or bf16 with x_bf16), y, rstd and y16 (nullable) as
// rmsnorm_forward gives them (no residues), and xa[j] for j < m = bf16(alpha * A[j, :] y) as gemv
// gives it in the split order (GemvParams::split, beta 0; A [m, d] bf16, row stride lda), with
// xa16 (nullable) = fp16 of each xa as bf16_to_f16_2d makes it: the bits of those three calls in
// turn, where they took three launches (m blocks here, each normalizing the row again; 1.5 us
// less a launch than a gemv at 7B is worth it only with the launch gone). Needs d a multiple of 8,
// at most kRmsnormLoraAMaxD, m in [1, kGemvSplitMaxRows], the pointers rmsnorm_forward's
// vectorized kernel and gemv need (rmsnorm_lora_a_accepts); cudaErrorInvalidValue otherwise.
constexpr int64_t kRmsnormLoraAMaxD = 6144;  // d floats + d bf16 of shared memory: 36 KiB
struct RmsnormLoraAParams {
  const void* x = nullptr;
  bool x_bf16 = false;
  const bf16* w = nullptr;
  bf16* y = nullptr;
  float* rstd = nullptr;
  f16* y16 = nullptr;
  int64_t d = 0;
  float eps = 0.f;
  const bf16* A = nullptr;
  int64_t lda = 0, m = 0;
  float alpha = 1.f;
  bf16* xa = nullptr;
  f16* xa16 = nullptr;
  bool pdl = false;  // as GemvParams::pdl
};
bool rmsnorm_lora_a_accepts(const RmsnormLoraAParams& p);
cudaError_t rmsnorm_lora_a(const RmsnormLoraAParams& p, cudaStream_t s);
// The largest power of two S with amax * S <= 448 (e4m3's largest finite value); 1 for an amax
// of 0 or one that is not finite; 2^100 for an amax so small (below ~1.3e-36) that 448 / amax
// overflows. A power of two, so scaling by S and by 1 / S is exact.
__host__ __device__ inline float e4m3_pow2_scale(float amax) {
  if (!(amax > 0.f) || !(amax <= 3.0e38f)) return 1.f;
  const float q = 448.f / amax;
  if (!(q <= 3.0e38f)) return 0x1p100f;
  int e = 0;
  frexpf(q, &e);  // q in [2^(e - 1), 2^e)
  float s = ldexpf(1.f, e - 1);
  if (amax * s > 448.f) s *= 0.5f;
  return s;
}
// out[i, j] = e4m3(w[i, j] * S) (saturating, round to nearest) for the [rows, cols] matrix w
// with row stride ld (out contiguous), S = e4m3_pow2_scale(max |w|); scales[0] receives max |w|,
// scales[kE4m3InvScale] 1 / S (device memory, kE4m3InvScale + 1 floats, 16-byte aligned;
// stream-ordered, no host synchronization). 1 / S sits 16 bytes in because cuBLASLt refuses FP8
// scale pointers that are not 16-byte aligned (status 15, measured on CUDA 13.0).
constexpr int kE4m3InvScale = 4;
cudaError_t e4m3_quantize(const bf16* w, int64_t rows, int64_t cols, int64_t ld, uint8_t* out,
                          float* scales, cudaStream_t s);
// Whether e4m3_quantize takes 8 columns per access (cols and ld multiples of 8, w 16-byte and out
// 8-byte aligned) or one (the tests' check of both).
bool e4m3_quantize_is_vectorized(const bf16* w, int64_t cols, int64_t ld, const uint8_t* out);
// dx (+)= d y / d x applied to dy (fp32). accumulate adds into dx (the residual gradient).
// dx_bf16 (nullable) receives bf16(dx) as well: the operand of the next backward GEMMs.
// x fp32 or bf16, as the forward's.
template <class TX>
cudaError_t rmsnorm_backward(const float* dy, const TX* x, const bf16* w, const float* rstd,
                             float* dx, int64_t n, int64_t d, bool accumulate, cudaStream_t s,
                             bf16* dx_bf16 = nullptr);

// ---- RoPE (rope.cu) -------------------------------------------------------------------------
// forward: x [n, heads, D] fp32 (the q or k GEMM output) rotated (HF rotate_half) into y in fp16,
// the attention scores' operand type; inv_freq [D/2] fp32 on the device.
// backward: the bf16 gradient rotated in place by the negative angle; rope_backward_f32: the
// fp32 gradient g (the attention backward's dq_accum) rotated into bf16 dx, rounded once.
// The backward's ld: dx's token stride in elements (0: heads D; larger when dx is a slice of
// wider rows, as q, k and v's gradients side by side in the engine's dqkv_).
cudaError_t rope_forward(const float* x, f16* y, const int32_t* pos, const float* inv_freq,
                         int64_t n, int64_t heads, int D, cudaStream_t s);
cudaError_t rope_backward(bf16* dx, const int32_t* pos, const float* inv_freq, int64_t n,
                          int64_t heads, int D, cudaStream_t s, int64_t ld = 0);
cudaError_t rope_backward_f32(const float* g, bf16* dx, const int32_t* pos, const float* inv_freq,
                              int64_t n, int64_t heads, int D, cudaStream_t s, int64_t ld = 0);

// ---- SwiGLU (swiglu.cu) ---------------------------------------------------------------------
cudaError_t swiglu_forward(const bf16* gate, const bf16* up, bf16* h, int64_t n, cudaStream_t s);
// dh fp32; dgate, dup bf16 (operands of the next GEMMs)
cudaError_t swiglu_backward(const float* dh, const bf16* gate, const bf16* up, bf16* dgate,
                            bf16* dup, int64_t n, cudaStream_t s);

// The down projection's input gradient and the SwiGLU backward in one kernel (Hopper, sm_90a:
// swiglu_dx_sm90.cu): dh = dy W (+ s T A) is never written to global memory; the kernel applies
// swiglu_bwd_one to it (fp32), gate and up,
// writing dgate and dup (in place when dgate = gate, dup = up: each element is read and written
// by one thread).
//   dy [n, d] bf16, row stride ldy; W = down's frozen weight [d, I] (row stride ldw);
//   T = dy B [n, r] bf16 (row stride ldt) and A = down's lora_A [r, I] (row stride I), r <= 64,
//   or r = 0 without LoRA; gate, up, dgate, dup [n, I] bf16.
// The products are bf16 with fp32 accumulation, as the GEMM and the LoRA sum of the unfused path
// (swiglu_backward_lora after a GEMM into fp32 dh), in another order.
struct SwigluDxParams {
  const bf16* dy = nullptr;
  int64_t ldy = 0;
  const bf16* w = nullptr;
  int64_t ldw = 0;
  const bf16* t = nullptr;
  int64_t ldt = 0;
  const bf16* a = nullptr;
  int r = 0;
  float s = 1.f;
  const bf16* gate = nullptr;
  const bf16* up = nullptr;
  bf16* dgate = nullptr;
  bf16* dup = nullptr;
  int64_t n = 0, d = 0, I = 0;
  // the kernel's form (tile width and stages: swiglu_dx_sm90.cu), 1 ..
  // kSwigluDxForms; 0: LORA4J_SWIGLU_DX_FORM, else the default
  int form = 0;
};
constexpr int kSwigluDxMaxRank = 64;
constexpr int kSwigluDxForms = 2;
// Built (sm_90a code in the library), an sm_90 device, and a call it takes: d, I, ldy, ldw and
// ldt multiples of 8, 16-byte aligned dy, W, T, A, gate, up, dgate, dup, r <= kSwigluDxMaxRank.
bool swiglu_dx_fused_accepts(const SwigluDxParams& p);
// cudaErrorNotSupported for a call swiglu_dx_fused_accepts refuses.
cudaError_t swiglu_dx_fused(const SwigluDxParams& p, cudaStream_t s);
#ifdef LORA4J_HAVE_SM90A
bool swiglu_dx_sm90_accepts(const SwigluDxParams& p);
cudaError_t swiglu_dx_sm90(const SwigluDxParams& p, cudaStream_t s);
#endif
// The gate and up projections' forward with the SwiGLU forward as their epilogue
// (swiglu_gu_sm90.cu): gate = x W_gate^T, up = x W_up^T rounded to bf16 as the GEMMs' outputs,
// h = SwiGLU(gate, up), all three [n, I] with row stride I. x [n, K] (row stride ldx), W_gate and
// W_up [I, K] (row strides ldwg, ldwu).
struct SwigluGuParams {
  const bf16* x = nullptr;
  int64_t ldx = 0;
  const bf16* wg = nullptr;
  const bf16* wu = nullptr;
  int64_t ldwg = 0, ldwu = 0;
  bf16* gate = nullptr;
  bf16* up = nullptr;
  bf16* h = nullptr;
  int64_t n = 0, K = 0, I = 0;
};
// Built (sm_90a code in the library), an sm_90 device, and a call it takes: K, I and the row
// strides multiples of 8, every pointer 16-byte aligned.
bool swiglu_gu_fused_accepts(const SwigluGuParams& p);
// cudaErrorNotSupported for a call swiglu_gu_fused_accepts refuses.
cudaError_t swiglu_gu_fused(const SwigluGuParams& p, cudaStream_t s);
#ifdef LORA4J_HAVE_SM90A
bool swiglu_gu_sm90_accepts(const SwigluGuParams& p);
cudaError_t swiglu_gu_sm90(const SwigluGuParams& p, cudaStream_t s);
#endif

// The backward with down's LoRA input gradient added to dh first: dh[i, j] + s sum_k t[i, k]
// A[k, j] (t = dy B [tokens, r] bf16, row stride ldt; A = lora_A of down [r, I] bf16), then as
// swiglu_backward; dh itself is not written. In place as swiglu_backward (dgate = gate, dup = up).
// Ranks up to kSwigluLoraMaxRank take the vectorized kernel (with the alignment of
// swiglu_backward's and I % 8 == 0), larger ones the scalar kernel.
constexpr int kSwigluLoraMaxRank = 128;
cudaError_t swiglu_backward_lora(const float* dh, const bf16* t, int64_t ldt, const bf16* A, int r,
                                 float s, const bf16* gate, const bf16* up, bf16* dgate, bf16* dup,
                                 int64_t tokens, int64_t I, cudaStream_t st);
bool swiglu_backward_lora_is_vectorized(const float* dh, const bf16* A, int r, const bf16* gate,
                                        const bf16* up, const bf16* dgate, const bf16* dup,
                                        int64_t I);
cudaError_t swiglu_backward_lora_scalar(const float* dh, const bf16* t, int64_t ldt, const bf16* A,
                                        int r, float s, const bf16* gate, const bf16* up,
                                        bf16* dgate, bf16* dup, int64_t tokens, int64_t I,
                                        cudaStream_t st);

// A LoRA projection's "dy B" and "dLoRA_B" in one read of dy [n, O] (row stride ldy, bf16):
// t[i, :] = bf16(dy[i, :] B) (row stride ldt) and dB += dy^T xa, with B the projection's lora_B
// [O, r] (row stride r), xa [n, r] (row stride ldxa) and dB [O, r] fp32. Tensor cores, then a
// fixed-order sum of the partials (the same bits from run to run). slots: the blocks the device
// holds at once (lora_dy_pair_slots; the row shares are sized to one wave of them, and the same
// slots give the same bits). scratch: device memory of lora_dy_pair_scratch_floats(n, O, r,
// slots) floats (enough for any call of at most n rows). Taken when lora_dy_pair_supported
// holds (r of 8, 16 or 32, O % 8 == 0, ldy >= O and ldy % 8 == 0, ldxa % 8 == 0, dy, B and xa
// 16-byte aligned); otherwise cudaErrorInvalidValue (the engine then runs the two GEMMs).
bool lora_dy_pair_supported(const bf16* dy, int64_t ldy, int64_t O, int r, const bf16* B,
                            const bf16* xa, int64_t ldxa);
size_t lora_dy_pair_scratch_floats(int64_t n, int64_t O, int r, int slots);
// SM count x resident blocks per SM of the rank-r kernel on device (0 where it cannot run)
int lora_dy_pair_slots(int r, int device);
// The kernel's dynamic shared memory at rank r (8, 16, 32): the caller checks it against the
// device's opt-in limit per block (90 KB at r 16 and 104 KB at r 32 fit sm_80 and sm_90, not
// the 99 KB of sm_86 / sm_89 at r 32).
size_t lora_dy_pair_smem_bytes(int r);
cudaError_t lora_dy_pair(const bf16* dy, int64_t ldy, int64_t n, int64_t O, const bf16* B, int r,
                         const bf16* xa, int64_t ldxa, bf16* t, int64_t ldt, float* dB,
                         float* scratch, int slots, cudaStream_t s);
// Several projections' passes in one launch (q, k and v, whose gradients lie side by side at
// one row stride in the engine's dqkv_): their column blocks share one grid and one wave of row
// shares, and one finish kernel sums every projection's partials. Each projection: its dy
// (columns of rows of ldy), width O, B, xa (row stride ldxa), t (row stride ldt) and dB. T is
// the same bits as lora_dy_pair gives for the projection alone (its rows' sums do not depend on
// the row shares); dB may differ in the last bits (its partials are summed over the shares).
constexpr int kLoraDyPairMaxProj = 3;
struct LoraDyPairProj {
  const bf16* dy;
  int64_t O;
  const bf16* B;
  const bf16* xa;
  bf16* t;
  float* dB;
};
bool lora_dy_pair_multi_supported(const LoraDyPairProj* a, int count, int64_t ldy, int r,
                                  int64_t ldxa);
size_t lora_dy_pair_multi_scratch_floats(int64_t n, const int64_t* O, int count, int r, int slots);
cudaError_t lora_dy_pair_multi(const LoraDyPairProj* a, int count, int64_t ldy, int64_t n, int r,
                               int64_t ldxa, int64_t ldt, float* scratch, int slots,
                               cudaStream_t s);

// y = residual + xa B^T (lora_b.cu): an unfolded projection's LoRA up-projection onto the fp32
// residual stream, before the frozen GEMM adds x W^T onto y. xa [n, r] bf16 (row stride ldxa,
// a multiple of 8; 16-byte aligned), B [O, r] bf16 (16-byte aligned), residual (nullable: 0) and
// y [n, O] fp32 (row stride O; y may be residual). r of 8, 16 or 32, O a multiple of 4 (r <= 16)
// or 2 (r 32), residual and y aligned to that many floats; otherwise lora_b_residual_supported
// is false and lora_b_residual returns cudaErrorInvalidValue (the engine runs the GEMM).
bool lora_b_residual_supported(const bf16* xa, int64_t ldxa, const bf16* B, int r,
                               const float* residual, const float* y, int64_t O);
cudaError_t lora_b_residual(const bf16* xa, int64_t ldxa, const bf16* B, int r,
                            const float* residual, float* y, int64_t n, int64_t O, cudaStream_t s);
// The residual stream in bf16 (lora_b.cu): y = bf16((float(residual) + xa B^T) + z), rounded
// once, z [n, O] fp32 the frozen GEMM's x W^T (cuBLASLt's C and D share one type, so the GEMM
// cannot read an fp32 sum and write bf16 itself). r 0 (xa and B unused): y = bf16(residual + z).
// Otherwise xa, B and r as lora_b_residual's; residual and y [n, O] bf16 (y may be residual),
// aligned to cols_for(r) elements x 2 bytes, z to that many floats; r of 0, 8, 16 or 32 and O a
// multiple of 4 (r <= 16) or 2 (r 32); else lora_b_residual_bf16_supported is false and the
// launcher returns cudaErrorInvalidValue (the engine then forms xa B^T into z with a GEMM and
// calls it with r 0).
bool lora_b_residual_bf16_supported(const bf16* xa, int64_t ldxa, const bf16* B, int r,
                                    const bf16* residual, const float* z, const bf16* y, int64_t O);
cudaError_t lora_b_residual_bf16(const bf16* xa, int64_t ldxa, const bf16* B, int r,
                                 const bf16* residual, const float* z, bf16* y, int64_t n,
                                 int64_t O, cudaStream_t s);

// ---- element-wise kernels: the path the launchers above take (tests) -----------------------
// swiglu, rmsnorm and rope each have a vectorized kernel (16-byte accesses) and a scalar one
// (one element or pair per thread) with the same per-element arithmetic, hence the same bits.
// A launcher takes the vectorized kernel when *_is_vectorized() holds for its arguments (every
// pointer 16-byte aligned, null ones included; rmsnorm: d % 4 == 0 and d <= 8192 forward, 6144
// backward; rope: (D / 2) % 4 == 0 forward and fp32 backward (its bf16 output 8-byte aligned),
// (D / 2) % 8 == 0 bf16 backward), else the scalar one.
bool swiglu_forward_is_vectorized(const bf16* gate, const bf16* up, const bf16* h);
bool swiglu_backward_is_vectorized(const float* dh, const bf16* gate, const bf16* up,
                                   const bf16* dgate, const bf16* dup);
template <class TX>
bool rmsnorm_forward_is_vectorized(const TX* x, const bf16* w, const bf16* y, int64_t d,
                                   const bf16* y_lo = nullptr, int64_t ldy = 0, Lo8 lo8 = {},
                                   Y16 y16 = {});
template <class TX>
bool rmsnorm_backward_is_vectorized(const float* dy, const TX* x, const bf16* w, const float* dx,
                                    int64_t d, const bf16* dx_bf16 = nullptr);
bool rope_forward_is_vectorized(const float* x, const f16* y, int D);
bool rope_backward_is_vectorized(const bf16* dx, int D, int64_t ld = 0);
bool rope_backward_f32_is_vectorized(const float* g, const bf16* dx, int D, int64_t ld = 0);
// The scalar kernels whatever the arguments: the bitwise reference of test_ops_cuda.
cudaError_t swiglu_forward_scalar(const bf16* gate, const bf16* up, bf16* h, int64_t n,
                                  cudaStream_t s);
cudaError_t swiglu_backward_scalar(const float* dh, const bf16* gate, const bf16* up, bf16* dgate,
                                   bf16* dup, int64_t n, cudaStream_t s);
template <class TX>
cudaError_t rmsnorm_forward_scalar(const TX* x, const bf16* w, bf16* y, float* rstd, int64_t n,
                                   int64_t d, float eps, cudaStream_t s, bf16* y_lo = nullptr,
                                   int64_t ldy = 0, Lo8 lo8 = {}, Y16 y16 = {}, bool pdl = false);
template <class TX>
cudaError_t rmsnorm_backward_scalar(const float* dy, const TX* x, const bf16* w, const float* rstd,
                                    float* dx, int64_t n, int64_t d, bool accumulate,
                                    cudaStream_t s, bf16* dx_bf16 = nullptr);
cudaError_t rope_forward_scalar(const float* x, f16* y, const int32_t* pos, const float* inv_freq,
                                int64_t n, int64_t heads, int D, cudaStream_t s);
cudaError_t rope_backward_scalar(bf16* dx, const int32_t* pos, const float* inv_freq, int64_t n,
                                 int64_t heads, int D, cudaStream_t s, int64_t ld = 0);
cudaError_t rope_backward_f32_scalar(const float* g, bf16* dx, const int32_t* pos,
                                     const float* inv_freq, int64_t n, int64_t heads, int D,
                                     cudaStream_t s, int64_t ld = 0);

// ---- attention of a decode step (attention_decode.cu) ---------------------------------------
// One query row (a decode step: the query at position Sk - 1) against the KV cache: q [H, D] fp16
// (rotated, unscaled), k [Sk, KH, D] fp16 and v bf16 with row stride kv_stride elements, o [H, D]
// bf16; query head h reads kv head h / (H / KH); key j is seen iff j > Sk - 1 - window (window 0:
// all). The keys are shared out among blocks of kDecodeAttentionKeysPerSplit (at most
// kDecodeAttentionMaxSplits shares) when part is given (kDecodeAttentionMaxSplits * H * (D + 2)
// floats of scratch), else one share; a second kernel merges the shares. No lse (a decode step has
// no backward). D 64 or 128, H / KH <= 8 (attention_decode_accepts); cudaErrorInvalidValue
// otherwise.
constexpr int kDecodeAttentionKeysPerSplit = 32;
// At most 48 shares: at ~2,750 keys (7B, H200) 48 shares of 58 keys take 4.69 ms a decode step,
// 64 of 43 5.04, 32 of 86 4.80, 43 of 64 4.78 (forty-second session, call 6); 32 keys a share
// against 16, 24, 64 and 128 at a short prompt (calls 5, 6: 16 and 24 level, 64 +0.13 ms).
constexpr int kDecodeAttentionMaxSplits = 48;
struct DecodeAttentionParams {
  const f16* q = nullptr;
  const f16* k = nullptr;
  const bf16* v = nullptr;
  bf16* o = nullptr;
  int H = 0, KH = 0, D = 0, Sk = 0, window = 0;
  int64_t kv_stride = 0;
  float scale = 0.f;
  float* part = nullptr;
  bool pdl = false;  // both kernels launched with programmatic dependent launch (common.cuh)
};
bool attention_decode_accepts(const DecodeAttentionParams& p);
cudaError_t attention_decode(const DecodeAttentionParams& p, cudaStream_t s);

// ---- attention (attention.cu) ---------------------------------------------------------------
struct AttentionParams {
  // q and k are fp16: the scores S = Q K^T are the most error-sensitive product of the layer
  // and fp16 keeps 3 more mantissa bits than bf16 at the same speed (rotated q/k are O(1..100),
  // far inside fp16's range). The gradient products use bf16 copies made in shared memory.
  const f16* q = nullptr;  // [B, Sq, H, D]   (batch stride q_bstride elements)
  const f16* k = nullptr;  // [B, Skv, KH, D] (batch stride kv_bstride elements)
  const bf16* v = nullptr;
  bf16* o = nullptr;       // [B, Sq, H, D]
  float* lse = nullptr;    // [B, H, Sq] natural-log log-sum-exp of the scaled scores
  float* o_f32 = nullptr;  // optional fp32 copy of the output (kept for the backward's delta)
  int B = 0, Sq = 0, Sk = 0, H = 0, KH = 0, D = 0;
  int64_t q_bstride = 0, kv_bstride = 0;
  int q_offset = 0;                   // query i sits at position q_offset + i among the keys
  const int32_t* key_mask = nullptr;  // [B, Sk] 0 = padding; null = all real
  const int32_t* segments = nullptr;  // [B, Sk] packed examples; null = one per row
  // With segments, for the Hopper kernels: each position's segment as a run of positions,
  // [B, Sk] each (segment_runs): seg_start the run's first position, seg_end one past its last.
  // Null: the call goes to the mma.sync kernels, which read segments alone.
  const int32_t* seg_start = nullptr;
  const int32_t* seg_end = nullptr;
  int window = 0;   // 0 = none; else query i sees key j iff i - W < j
  float scale = 0;  // 1/sqrt(D)
  // Hopper forward: a consumer warpgroup none of whose rows sees the second half of the block's
  // last key tile (warpgroup 0 on the causal diagonal) computes that tile over its first 64 keys
  // only (full rows: S and P V; packed rows and windows: P V); true: the whole tile (the A/B;
  // the same bits either way).
  bool whole_last_tile = false;
  // Hopper forward: the output is written through shared memory by the copy engine (bulk tensor
  // stores) when o and o_f32 are 16-byte aligned; true: from registers (the A/B; the same bits).
  bool direct_store = false;
  // Hopper forward, hd128: the persistent form's block count. 0, the default: one block per SM
  // when the query blocks outnumber the SMs; N > 0, N blocks (fewer than the query blocks); -1,
  // one block per query block (the A/B, and the tests' grids: the same bits in every form). No
  // call with an fp32 copy of the output takes the persistent form.
  int fwd_grid = 0;
};
// The layout of rows with no gaps: q and o [B, S, H, D], k and v [B, S, KH, D], queries and keys
// at the same S positions. The caller sets the scale and any masks, segments or window.
inline AttentionParams dense_attention_params(const f16* q, const f16* k, const bf16* v, bf16* o,
                                              float* lse, int B, int S, int H, int KH, int D) {
  AttentionParams p;
  p.q = q;
  p.k = k;
  p.v = v;
  p.o = o;
  p.lse = lse;
  p.B = B;
  p.Sq = p.Sk = S;
  p.H = H;
  p.KH = KH;
  p.D = D;
  p.q_bstride = int64_t(S) * H * D;
  p.kv_bstride = int64_t(S) * KH * D;
  return p;
}
struct AttentionBackwardParams {
  AttentionParams f;           // q_offset must be 0 and Sq == Sk
  const bf16* dout = nullptr;  // [B, S, H, D]
  bf16* dq = nullptr;          // [B, S, H, D]; null: dQ is left in dq_accum (fp32) for the
                               // caller, who converts it (rope_backward_f32)
  bf16* dk = nullptr;          // [B, S, KH, D]
  bf16* dv = nullptr;
  // dk's and dv's token stride in elements: 0 = KH D (batch stride f.kv_bstride); else token
  // (b, i) of either starts at (b S + i) dkv_ld (even): slices of wider rows (the engine's
  // q / k / v gradients side by side, dqkv_)
  int64_t dkv_ld = 0;
  float* dq_accum = nullptr;  // [B, S, H, D] fp32 scratch (zeroed by the backward itself)
  float* delta = nullptr;     // [B, H, S] fp32 scratch
  // optional fp32 forward output: delta = rowsum(dO * O) then matches the P and dP of the
  // kernel to fp32 precision instead of bf16 (dS = P (dP - delta) cancels when attention is
  // peaked, and a bf16 O costs several percent on dq and dk there).
  const float* out_f32 = nullptr;
};
bool attention_supports(int D);
// Packed rows as runs: when every segment id of each row of seg ([B, S]) occupies one run of
// consecutive positions (as the trainer packs them: 1, 2, 3, ..., then 0 for the padding),
// writes each position's run start (its first position) and end (one past its last) and returns
// true; else returns false (an id that recurs after another one's run) and the arrays are
// unspecified. Then seg[b, q] == seg[b, k] for k <= q exactly when k >= start[b, q], and for
// k <= q exactly when q < end[b, k]: the Hopper kernels' segment test.
bool segment_runs(const int32_t* seg, int64_t B, int64_t S, int32_t* start, int32_t* end);
// The forward takes one of two kernels: the Hopper kernel (wgmma + bulk tensor copies, built for
// sm_90a in attention_sm90.cu) when the build has it, the device is sm_90 and the call is one it
// accepts (head_dim 64 or 128, causal with GQA and any q_offset, no key mask, segments only with
// their runs (seg_start, seg_end), any window, 16-byte aligned tensors); else the
// mma.sync kernel (sm_80 and later, every case). LORA4J_ATTENTION=mma forces the mma.sync kernel;
// =wgmma makes a call the Hopper kernel cannot take fail with cudaErrorNotSupported; unset or =auto
// chooses as above; any other value fails every call with cudaErrorInvalidValue (and says so on
// stderr).
enum class AttentionKernel { kMma, kWgmma };
cudaError_t attention_forward(const AttentionParams& p, cudaStream_t s);
// The kernel attention_forward takes for p on the current device, LORA4J_ATTENTION included.
AttentionKernel attention_forward_kernel(const AttentionParams& p);
// The two kernels directly (tests and benchmarks); the Hopper one returns cudaErrorNotSupported
// for a call it cannot take.
cudaError_t attention_forward_mma(const AttentionParams& p, cudaStream_t s);
cudaError_t attention_forward_wgmma(const AttentionParams& p, cudaStream_t s);
bool attention_wgmma_built();                            // the library holds sm_90a code
bool attention_wgmma_accepts(const AttentionParams& p);  // built, sm_90 device, supported call
// attention_sm90.cu (present when attention_wgmma_built()).
bool attention_sm90_device();
bool attention_sm90_accepts(const AttentionParams& p);
cudaError_t attention_forward_sm90(const AttentionParams& p, cudaStream_t s);
// The backward likewise takes the Hopper kernel (attn_bwd_sm90_kernel, attention_sm90.cu) for the
// calls the Hopper forward takes (and Sq == Sk, q_offset 0, as every backward), else the
// mma.sync kernel; LORA4J_ATTENTION chooses as for the forward. Both share the delta pre-pass,
// the zeroed fp32 dq_accum they add dQ into and its conversion to bf16 dq; dK and dV are summed
// over the query heads of a KV group inside one block and written once.
cudaError_t attention_backward(const AttentionBackwardParams& p, cudaStream_t s);
AttentionKernel attention_backward_kernel(const AttentionBackwardParams& p);
cudaError_t attention_backward_mma(const AttentionBackwardParams& p, cudaStream_t s);
cudaError_t attention_backward_wgmma(const AttentionBackwardParams& p, cudaStream_t s);
bool attention_wgmma_accepts_backward(const AttentionBackwardParams& p);
// attention_sm90.cu: the main kernel only (the caller runs the pre-pass and the conversion).
bool attention_sm90_backward_accepts(const AttentionBackwardParams& p);
cudaError_t attention_backward_sm90(const AttentionBackwardParams& p, cudaStream_t s);

// ---- LM head cross-entropy (cross_entropy.cu) ----------------------------------------------
// logits [n, V] fp32 or bf16 (one chunk of tokens); target [n] (-100 = not counted).
// loss[t] = logsumexp(logits[t]) - logits[t, target[t]] (0 when not counted), in fp32;
// dlogits (nullable) = grad_scale * (softmax - onehot) in bf16, zero rows when not counted;
// row t at dlogits + t * ldd. dlogits may be the logits buffer itself: in place, with ldd = 2V
// over fp32 logits and ldd = V over bf16 ones.
cudaError_t cross_entropy_chunk(const float* logits, const int32_t* target, int64_t n, int64_t V,
                                float grad_scale, float* loss, bf16* dlogits, int64_t ldd,
                                cudaStream_t s);
cudaError_t cross_entropy_chunk(const bf16* logits, const int32_t* target, int64_t n, int64_t V,
                                float grad_scale, float* loss, bf16* dlogits, int64_t ldd,
                                cudaStream_t s);
// Whether the bf16 form holds each row in registers (one read of the logits) for these
// arguments: V a multiple of 8 and at most 32768, 16-byte aligned rows; otherwise it reads each
// row in three passes. (The tests use it to know which kernel they checked.)
bool cross_entropy_bf16_in_registers(int64_t V, int64_t ldd, const void* logits,
                                     const void* dlogits);

// ---- optimizer (adamw.cu) -------------------------------------------------------------------
// out[0] = sum of g^2 (double), flag[0] = 1 if any g is not finite (both zeroed here first).
cudaError_t grad_sumsq(const float* g, int64_t n, double* out, int* flag, cudaStream_t s);
// torch.optim.AdamW over a flat array; bc1 = 1 - b1^t, bc2 = 1 - b2^t computed by the caller.
cudaError_t adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float grad_mult,
                         float lr, float beta1, float beta2, float eps, float weight_decay,
                         double bc1, double bc2, cudaStream_t s);

// ---- NF4 weights (nf4.cu) -------------------------------------------------------------------
// The device copy of a lora4j_nf4_weight (lora4j.h); every pointer is device memory. codes must
// be 4-byte aligned and out 16-byte aligned (cudaMalloc'd buffers are).
struct Nf4Params {
  const uint8_t* codes = nullptr;         // (numel + 1) / 2 bytes, earlier element high nibble
  const float* code_table = nullptr;      // 16
  const float* absmax = nullptr;          // [blocks], or null: double-quantized
  const uint8_t* absmax_codes = nullptr;  // [blocks]
  const float* nested_table = nullptr;    // 256
  const float* nested_absmax = nullptr;   // [ceil(blocks / nested_blocksize)]
  int nested_blocksize = 256;
  float offset = 0.f;
  int64_t numel = 0;
  int blocksize = 64;
  bool half_first = false;  // the weight's dtype is fp16: round to fp16, then to bf16
};
// out[numel] = bf16(code_table[c_i] * scale[i / blocksize]) (see nf4.cu).
cudaError_t nf4_dequantize(const Nf4Params& p, bf16* out, cudaStream_t s);

}  // namespace cuda
}  // namespace lora4j
