/* The single-op benchmarks on CUDA (lora4j_op_bench_* with device >= 0), Mistral-7B shapes by
 * default. Every op goes through the kernel launchers of kernels.h and the Gemm wrapper, with
 * the operand types the engine uses (bf16 activations, fp32 accumulators; the attention's q and
 * k in the type its launcher takes). The variants:
 *  - attention  flash: the engine's kernels (scores never stored), forward and backward as
 *               attention_forward / attention_backward select them (the wgmma kernels on sm_90
 *               for the calls they take, else mma.sync; LORA4J_ATTENTION=mma forces mma.sync);
 *               flash_mma: the mma.sync kernels on every device, the A/B partner of flash;
 * materialized: per head an fp32 [S, S] scores GEMM, the causal softmax kernel (P bf16, kept for
 * the backward), a P V GEMM; the backward dP, dS, dQ, dK, dV with GEMMs and one kernel
 * (bench_baselines.cu). The GEMMs are per head (Gemm has no batched form), so the materialized
 * variant also pays B x H launches per GEMM.
 *  - cross_entropy  fused: the engine's LM head loop, the logits of one chunk of tokens at a
 *               time (the engine's 128 MiB budget), each chunk's loss kernel on a second stream;
 *               fused_serial: the same chunks on one stream; materialized: the same kernels on
 *               all [n, V] logits at once. The logits are bf16, or fp32 under
 *               LORA4J_LM_HEAD_LOGITS=fp32, in every variant (as in the engine).
 *  - lora_linear  fused: the engine's projection (the low-rank product first, the frozen GEMM
 *               accumulating onto it in its epilogue; backward likewise); separate: frozen GEMM,
 *               low-rank GEMMs into a temporary, an add kernel.
 *  - frozen_linear  the frozen projection's GEMM alone, forward y = x W^T (y bf16) or input
 *               gradient dx = dy W (dx fp32): bf16: W bf16, one cuBLASLt GEMM (the 16-bit
 *               engine); nf4-scratch: W in NF4 (make_bench_nf4), dequantized into a bf16
 *               scratch of W's size by the engine's kernel, then the same GEMM (the QLoRA
 *               engine); nf4-fused: one kernel whose GEMM dequantizes the codes in its operand
 *               path (nf4_gemm.cu), no scratch.
 *  - adamw      flat: one launch over the arena (the engine); per_tensor: one per LoRA tensor.
 * Inputs come from bench_fill (the same numbers as on the CPU, rounded to the operand type).
 */
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/check.h"
#include "cuda/gemm.h"
#include "bench/cuda/bench_baselines.h"
#include "cuda/kernels/kernels.h"
#include "cuda/lm_head.h"
#include "model/engine.h"
#include "bench/op_bench.h"

namespace lora4j {
namespace cuda {
namespace {

// The element type of the attention launcher's q and k (fp16 or bf16).
using QK = std::remove_const_t<std::remove_pointer_t<decltype(AttentionParams::q)>>;

constexpr size_t kWorkspace = 32u << 20;

class CudaBench : public OpBench {
 public:
  explicit CudaBench(const OpBenchSpec& s) : spec_(s) {
    check_device_index(s.device_index);
    dev_ = s.device_index;
    LORA4J_CU(cudaSetDevice(dev_));
    LORA4J_CU(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~CudaBench() override {
    cudaSetDevice(dev_);
    if (stream_) cudaStreamSynchronize(stream_);
    for (void* p : allocs_) cudaFree(p);
    if (stream_) cudaStreamDestroy(stream_);
  }
  void run(int32_t iterations) override {
    LORA4J_CU(cudaSetDevice(dev_));
    for (int32_t k = 0; k < iterations; ++k) step();
    LORA4J_CU(cudaStreamSynchronize(stream_));
  }
  void output(int i, float* out) override {
    LORA4J_CU(cudaSetDevice(dev_));
    readers_[size_t(i)](out);
  }

 protected:
  virtual void step() = 0;

  template <class T>
  T* alloc(int64_t n, const char* what) {
    void* p = nullptr;
    size_t bytes = size_t(n > 0 ? n : 1) * sizeof(T);
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      fail(e == cudaErrorMemoryAllocation ? LORA4J_ENOMEM : LORA4J_EDEVICE,
           "cudaMalloc of " + std::to_string(bytes) + " bytes for " + what + " (" +
               op_bench_label(spec_) + ") failed: " + cudaGetErrorString(e));
    }
    allocs_.push_back(p);
    memory += int64_t(bytes);
    return static_cast<T*>(p);
  }
  // A device tensor of n seeded values (bench_fill).
  template <class T>
  T* input(uint32_t tensor, int64_t n, float scale, const char* what, float offset = 0.f) {
    T* p = alloc<T>(n, what);
    LORA4J_CU(bench_fill(p, n, spec_.seed, tensor, scale, offset, stream_));
    return p;
  }
  template <class T>
  T* zeros(int64_t n, const char* what) {
    T* p = alloc<T>(n, what);
    LORA4J_CU(cudaMemsetAsync(p, 0, size_t(n) * sizeof(T), stream_));
    return p;
  }
  void init_gemm() {
    gemm_.init(stream_, alloc<char>(int64_t(kWorkspace), "cuBLASLt workspace"), kWorkspace);
  }
  void sync() { LORA4J_CU(cudaStreamSynchronize(stream_)); }

  // A host -> device copy ordered on stream_ and complete on return (a plain cudaMemcpy from
  // pageable memory may return before its DMA lands, and stream_ does not wait for it).
  void to_device(void* dst, const void* src, size_t bytes) {
    LORA4J_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    sync();
  }
  void expose(const char* name, const float* p, int64_t n) {
    outputs.push_back({name, n});
    readers_.push_back([this, p, n](float* out) {
      LORA4J_CU(
          cudaMemcpyAsync(out, p, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost, stream_));
      sync();
    });
  }
  template <class T>  // bf16 or fp16, converted on the device
  void expose(const char* name, const T* p, int64_t n) {
    outputs.push_back({name, n});
    readers_.push_back([this, p, n](float* out) {
      float* tmp = nullptr;
      LORA4J_CU(cudaMalloc(&tmp, size_t(n) * sizeof(float)));
      std::unique_ptr<float, decltype(&cudaFree)> guard(tmp, &cudaFree);
      LORA4J_CU(bench_to_f32(p, tmp, n, stream_));
      LORA4J_CU(
          cudaMemcpyAsync(out, tmp, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost, stream_));
      sync();
    });
  }
  void expose_reader(const char* name, int64_t n, std::function<void(float*)> reader) {
    outputs.push_back({name, n});
    readers_.push_back(std::move(reader));
  }

  OpBenchSpec spec_;
  int dev_ = 0;
  cudaStream_t stream_ = nullptr;
  Gemm gemm_;

 private:
  std::vector<void*> allocs_;
  std::vector<std::function<void(float*)>> readers_;
};

// ---- attention ----------------------------------------------------------------------------------
class Attention final : public CudaBench {
 public:
  Attention(const OpBenchSpec& s, bool backward)
      : CudaBench(s),
        bwd_(backward),
        mat_(s.variant == "materialized"),
        mma_only_(s.variant == "flash_mma"),
        B(s.dim("B")),
        S(s.dim("S")),
        H(s.dim("H")),
        KH(s.dim("KH")),
        D(s.dim("D")),
        scale_(float(1.0 / std::sqrt(double(D)))) {
    if (!mat_ && !attention_supports(int(D)))
      fail(LORA4J_EUNSUPPORTED,
           "the flash attention kernels do not support head_dim " + std::to_string(D));
    const int64_t nq = B * S * H * D, nk = B * S * KH * D, rows = B * H * S;
    if (mat_) {
      init_gemm();
      qb_ = input<bf16>(1, nq, 1.f, "q");
      kb_ = input<bf16>(2, nk, 1.f, "k");
      scores_ = alloc<float>(rows * S, "scores");
      p_ = alloc<bf16>(rows * S, "probabilities");
    } else {
      q_ = input<QK>(1, nq, 1.f, "q");
      k_ = input<QK>(2, nk, 1.f, "k");
      // The engine's forward writes no fp32 copy of the output (its backward's delta comes from
      // the bf16 output, LORA4J_ATTN_O_BF16); LORA4J_OPS_ATTN_O32=1 adds the copy (and the
      // backward reads it), as the benchmark ran before the twenty-seventh session.
      const char* o32 = std::getenv("LORA4J_OPS_ATTN_O32");
      if (o32 && std::strcmp(o32, "1") == 0) o32_ = alloc<float>(nq, "fp32 output");
    }
    v_ = input<bf16>(3, nk, 1.f, "v");
    if (!mat_) pack_rows();
    o_ = alloc<bf16>(nq, "output");
    lse_ = alloc<float>(rows, "lse");
    const int qk_size = mat_ ? 2 : int(sizeof(QK));
    floor(nq + nk, qk_size);  // q, k
    floor(nk + nq, 2);        // v, out
    floor(rows, 4);           // lse
    if (bwd_) {
      dout_ = input<bf16>(4, nq, 1.f, "dout");
      dq_ = alloc<bf16>(nq, "dq");
      dk_ = alloc<bf16>(nk, "dk");
      dv_ = alloc<bf16>(nk, "dv");
      if (mat_) {
        ds_ = alloc<bf16>(rows * S, "dS");
        dk32_ = alloc<float>(nk, "fp32 dk");
        dv32_ = alloc<float>(nk, "fp32 dv");
      } else {
        dq_acc_ = alloc<float>(nq, "dq accumulator");
        delta_ = alloc<float>(rows, "delta");
      }
      floor(2 * nq + 2 * nk, 2);  // dout, dq, dk, dv
      forward();
      sync();
      expose("dq", dq_, nq);
      expose("dk", dk_, nk);
      expose("dv", dv_, nk);
    } else {
      expose("out", o_, nq);
      expose("lse", static_cast<const float*>(lse_), rows);
    }
  }

 private:
  void step() override { bwd_ ? backward() : forward(); }

  AttentionParams params() const {
    AttentionParams p =
        dense_attention_params(q_, k_, v_, o_, lse_, int(B), int(S), int(H), int(KH), int(D));
    p.o_f32 = o32_;
    p.scale = scale_;
    p.segments = seg_;
    p.seg_start = seg_start_;
    p.seg_end = seg_end_;
    return p;
  }
  // LORA4J_OPS_ATTN_SEGMENT=L (flash variants): every row packed from examples of L tokens, each
  // third one half as long (as --packing lays them: ids 1, 2, ... in runs), so the kernels take
  // their packed-row path. A timing knob only: the FLOP column still counts whole causal rows.
  void pack_rows() {
    const char* env = std::getenv("LORA4J_OPS_ATTN_SEGMENT");
    const int64_t L = env ? std::atoll(env) : 0;
    if (L <= 0) return;
    std::vector<int32_t> seg(size_t(B * S)), start(seg.size()), end(seg.size());
    for (int64_t b = 0; b < B; ++b) {
      int32_t id = 1;
      for (int64_t i = 0, left = L; i < S; ++i) {
        seg[size_t(b * S + i)] = id;
        if (--left == 0) left = (++id % 3 == 0) ? std::max<int64_t>(1, L / 2) : L;
      }
    }
    const bool runs = cuda::segment_runs(seg.data(), B, S, start.data(), end.data());
    seg_ = alloc<int32_t>(B * S, "segment ids");
    to_device(seg_, seg.data(), seg.size() * sizeof(int32_t));
    if (runs) {
      seg_start_ = alloc<int32_t>(B * S, "segment starts");
      seg_end_ = alloc<int32_t>(B * S, "segment ends");
      to_device(seg_start_, start.data(), start.size() * sizeof(int32_t));
      to_device(seg_end_, end.data(), end.size() * sizeof(int32_t));
    }
  }
  // head h of row b in a [B, S, heads, D] tensor: offset of its first element (row stride
  // heads * D)
  int64_t at(int64_t heads, int64_t b, int64_t h) const { return (b * S * heads + h) * D; }
  int64_t sq(int64_t b, int64_t h) const { return (b * H + h) * S * S; }

  void forward() {
    if (!mat_) {
      LORA4J_CU(mma_only_ ? attention_forward_mma(params(), stream_)
                          : attention_forward(params(), stream_));
      return;
    }
    const int64_t group = H / KH;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        gemm_.run(false, true, S, S, D, qb_ + at(H, b, h), H * D, kb_ + at(KH, b, h / group),
                  KH * D, scores_ + sq(b, h), true, S, scale_, 0.f, "scores Q K^T");
    LORA4J_CU(causal_softmax_rows(scores_, p_, lse_, B * H * S, S, stream_));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        gemm_.run(false, false, S, D, S, p_ + sq(b, h), S, v_ + at(KH, b, h / group), KH * D,
                  o_ + at(H, b, h), false, H * D, 1.f, 0.f, "P V");
  }

  void backward() {
    if (!mat_) {
      AttentionBackwardParams bp;
      bp.f = params();
      bp.dout = dout_;
      bp.dq = dq_;
      bp.dk = dk_;
      bp.dv = dv_;
      bp.dq_accum = dq_acc_;
      bp.delta = delta_;
      bp.out_f32 = o32_;
      LORA4J_CU(mma_only_ ? attention_backward_mma(bp, stream_) : attention_backward(bp, stream_));
      return;
    }
    const int64_t group = H / KH;
    float* dp = scores_;  // the scores' buffer holds dP in the backward
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        gemm_.run(false, true, S, S, D, dout_ + at(H, b, h), H * D, v_ + at(KH, b, h / group),
                  KH * D, dp + sq(b, h), true, S, 1.f, 0.f, "dP = dO V^T");
    LORA4J_CU(causal_softmax_backward_rows(p_, dp, ds_, B * H * S, S, stream_));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / group;
        const float beta = (h % group == 0) ? 0.f : 1.f;  // the group's first head overwrites
        gemm_.run(false, false, S, D, S, ds_ + sq(b, h), S, kb_ + at(KH, b, g), KH * D,
                  dq_ + at(H, b, h), false, H * D, scale_, 0.f, "dQ = dS K");
        gemm_.run(true, false, S, D, S, ds_ + sq(b, h), S, qb_ + at(H, b, h), H * D,
                  dk32_ + at(KH, b, g), true, KH * D, scale_, beta, "dK += dS^T Q");
        gemm_.run(true, false, S, D, S, p_ + sq(b, h), S, dout_ + at(H, b, h), H * D,
                  dv32_ + at(KH, b, g), true, KH * D, 1.f, beta, "dV += P^T dO");
      }
    LORA4J_CU(f32_to_bf16(dk32_, dk_, B * S * KH * D, stream_));
    LORA4J_CU(f32_to_bf16(dv32_, dv_, B * S * KH * D, stream_));
  }

  bool bwd_, mat_, mma_only_;
  int64_t B, S, H, KH, D;
  float scale_;
  QK *q_ = nullptr, *k_ = nullptr;
  bf16 *qb_ = nullptr, *kb_ = nullptr, *v_ = nullptr, *o_ = nullptr, *p_ = nullptr,
       *dout_ = nullptr, *dq_ = nullptr, *dk_ = nullptr, *dv_ = nullptr, *ds_ = nullptr;
  float *o32_ = nullptr, *lse_ = nullptr, *scores_ = nullptr, *dq_acc_ = nullptr, *delta_ = nullptr,
        *dk32_ = nullptr, *dv32_ = nullptr;
  int32_t *seg_ = nullptr, *seg_start_ = nullptr, *seg_end_ = nullptr;
};

// ---- LM head + cross-entropy (forward and backward) ----------------------------------------
class CrossEntropy final : public CudaBench {
 public:
  explicit CrossEntropy(const OpBenchSpec& s)
      : CudaBench(s), n(s.dim("n")), d(s.dim("d")), V(s.dim("V")) {
    init_gemm();
    // fused: the engine's chunks and two scratches, each chunk's loss kernel on a second stream
    // beside the next chunk's GEMM (lm_head.h); fused_serial: the same chunks one after the
    // other on one stream; materialized: the logits of all n tokens
    bf16_logits_ = lm_head_bf16_logits();
    const int64_t elem = bf16_logits_ ? 2 : 4;
    chunk_ = s.variant == "materialized" ? n : lm_head_chunk_tokens(n, V, elem);
    const bool overlap = s.variant == "fused" && n > chunk_;
    h_ = input<bf16>(1, n * d, 1.f, "h");
    w_ = input<bf16>(2, V * d, 0.05f, "lm_head");
    std::vector<int32_t> tgt(static_cast<size_t>(n));
    int64_t counted = 0;
    for (int64_t t = 0; t < n; ++t) {
      tgt[size_t(t)] = bench_target(s.seed, uint64_t(t), V);
      counted += tgt[size_t(t)] != -100;
    }
    grad_scale_ = counted ? float(1.0 / double(counted)) : 0.f;
    tgt_ = alloc<int32_t>(n, "targets");
    to_device(tgt_, tgt.data(), size_t(n) * 4);
    logits_ = alloc<float>(lm_head_scratch_floats(chunk_, V, elem),
                           "logits (their bf16 gradients overwrite them)");
    if (overlap) {
      logits2_ = alloc<float>(lm_head_scratch_floats(chunk_, V, elem), "the second chunk's logits");
      LORA4J_CU(cudaStreamCreateWithFlags(&aux_, cudaStreamNonBlocking));
    }
    loss_ = alloc<float>(n, "token losses");
    dh_ = alloc<float>(n * d, "dh");
    floor(n * d + V * d, 2);  // h, W
    floor(n, 4);              // targets
    floor(n + n * d, 4);      // losses, dh
    sync();
    expose_reader("loss", 1, [this](float* out) {  // the sum of the counted tokens' losses
      std::vector<float> l(static_cast<size_t>(n));
      LORA4J_CU(cudaMemcpyAsync(l.data(), loss_, size_t(n) * 4, cudaMemcpyDeviceToHost, stream_));
      sync();
      double sum = 0;
      for (float x : l) sum += double(x);
      out[0] = float(sum);
    });
    expose("dh", static_cast<const float*>(dh_), n * d);
  }
  ~CrossEntropy() override {
    if (aux_) {
      cudaStreamSynchronize(aux_);
      cudaStreamDestroy(aux_);
    }
  }

 private:
  void step() override {
    lm_head_loss(gemm_, h_, w_, tgt_, n, d, V, grad_scale_, loss_, dh_, bf16_logits_, logits_,
                 chunk_, stream_, logits2_, aux_);
  }

  int64_t n, d, V, chunk_ = 1;
  bool bf16_logits_ = true;
  float grad_scale_ = 0;
  bf16 *h_ = nullptr, *w_ = nullptr;
  int32_t* tgt_ = nullptr;
  float *logits_ = nullptr, *logits2_ = nullptr, *loss_ = nullptr, *dh_ = nullptr;
  cudaStream_t aux_ = nullptr;
};

// ---- LoRA linear ----------------------------------------------------------------------------
class LoraLinear final : public CudaBench {
 public:
  LoraLinear(const OpBenchSpec& s, bool backward)
      : CudaBench(s),
        bwd_(backward),
        sep_(s.variant == "separate"),
        n(s.dim("n")),
        in(s.dim("in")),
        out(s.dim("out")),
        r(s.dim("r")) {
    init_gemm();
    x_ = input<bf16>(1, n * in, 1.f, "x");
    w_ = input<bf16>(2, out * in, 0.02f, "W");
    a_ = input<bf16>(3, r * in, 0.02f, "lora_A");
    b_ = input<bf16>(4, out * r, 0.1f, "lora_B");
    xa_ = alloc<bf16>(n * r, "x A^T");
    floor(out * in + r * in + out * r, 2);  // W, A, B
    if (!bwd_) {
      y_ = alloc<bf16>(n * out, "y");
      if (sep_) u_ = alloc<bf16>(n * out, "low-rank output");
      floor(n * in + n * out, 2);  // x, y
      sync();
      expose("y", y_, n * out);
      expose("xa", xa_, n * r);  // x A^T [n, r]: the rank-r product, reduced over `in`
      return;
    }
    gemm_.run(false, true, n, r, in, x_, in, a_, in, xa_, false, r, 1.f, 0.f, "x A^T");
    dy_ = input<bf16>(5, n * out, 1.f, "dy");
    dx_ = alloc<float>(n * in, "dx");
    da_ = zeros<float>(r * in, "dA");
    db_ = zeros<float>(out * r, "dB");
    t_ = alloc<bf16>(n * r, "dy B");
    if (sep_) dxl_ = alloc<float>(n * in, "low-rank dx");
    floor(n * out + n * in + n * r, 2);   // dy, x, xa
    floor(n * in + r * in + out * r, 4);  // dx, dA, dB
    sync();
    expose("dx", static_cast<const float*>(dx_), n * in);
    expose("dA", static_cast<const float*>(da_), r * in);
    expose("dB", static_cast<const float*>(db_), out * r);
    expose("xa", xa_, n * r);  // x A^T [n, r], reduced over `in`
    expose("dyB", t_, n * r);  // dy B [n, r], reduced over `out`
  }

 private:
  void step() override {
    const float s = kBenchLoraScale;
    if (!bwd_ && !sep_) {
      gemm_.run(false, true, n, r, in, x_, in, a_, in, xa_, false, r, 1.f, 0.f, "lora_A forward");
      gemm_.run(false, true, n, out, r, xa_, r, b_, r, y_, false, out, s, 0.f, "lora_B forward");
      gemm_.run(false, true, n, out, in, x_, in, w_, in, y_, false, out, 1.f, 1.f, "frozen");
    } else if (!bwd_) {
      gemm_.run(false, true, n, out, in, x_, in, w_, in, y_, false, out, 1.f, 0.f, "frozen");
      gemm_.run(false, true, n, r, in, x_, in, a_, in, xa_, false, r, 1.f, 0.f, "lora_A forward");
      gemm_.run(false, true, n, out, r, xa_, r, b_, r, u_, false, out, s, 0.f, "lora_B forward");
      LORA4J_CU(add_inplace(y_, u_, n * out, stream_));
    } else {
      if (sep_)
        gemm_.run(false, false, n, in, out, dy_, out, w_, in, dx_, true, in, 1.f, 0.f,
                  "dX through frozen W");
      gemm_.run(true, false, out, r, n, dy_, out, xa_, r, db_, true, r, s, 1.f, "dLoRA_B");
      gemm_.run(false, false, n, r, out, dy_, out, b_, r, t_, false, r, 1.f, 0.f, "dy B");
      gemm_.run(true, false, r, in, n, t_, r, x_, in, da_, true, in, s, 1.f, "dLoRA_A");
      if (sep_) {
        gemm_.run(false, false, n, in, r, t_, r, a_, in, dxl_, true, in, s, 0.f, "dX through LoRA");
        LORA4J_CU(add_inplace(dx_, dxl_, 1.f, n * in, stream_));
      } else {
        gemm_.run(false, false, n, in, r, t_, r, a_, in, dx_, true, in, s, 0.f, "dX through LoRA");
        gemm_.run(false, false, n, in, out, dy_, out, w_, in, dx_, true, in, 1.f, 1.f,
                  "dX through frozen W");
      }
    }
  }

  bool bwd_, sep_;
  int64_t n, in, out, r;
  bf16 *x_ = nullptr, *w_ = nullptr, *a_ = nullptr, *b_ = nullptr, *xa_ = nullptr, *y_ = nullptr,
       *u_ = nullptr, *dy_ = nullptr, *t_ = nullptr;
  float *dx_ = nullptr, *da_ = nullptr, *db_ = nullptr, *dxl_ = nullptr;
};

// ---- frozen linear (bf16 or NF4 weight) ------------------------------------------------------
class FrozenLinear final : public CudaBench {
 public:
  FrozenLinear(const OpBenchSpec& s, bool backward)
      : CudaBench(s),
        bwd_(backward),
        nf4_(op_bench_nf4(s)),
        fused_(s.variant == "nf4-fused"),
        n(s.dim("n")),
        in(s.dim("in")),
        out(s.dim("out")) {
    if (!fused_) init_gemm();
    if (nf4_) {
      const BenchNf4 q = make_bench_nf4(s.seed, 6, out * in);
      p_.codes = upload(q.codes, "NF4 codes");
      p_.code_table = upload(q.table, "NF4 code table");
      p_.absmax_codes = upload(q.absmax_codes, "NF4 absmax codes");
      p_.nested_table = upload(q.nested_table, "NF4 nested table");
      p_.nested_absmax = upload(q.nested_absmax, "NF4 nested absmax");
      const lora4j_nf4_weight v = q.view();
      p_.nested_blocksize = v.nested_blocksize;
      p_.offset = v.offset;
      p_.numel = v.numel;
      p_.blocksize = v.blocksize;
      floor(q.bytes(), 1);
      if (!fused_) w_ = alloc<bf16>(out * in, "bf16 dequantization scratch");
    } else {
      w_ = input<bf16>(2, out * in, 0.02f, "W");
      floor(out * in, 2);
    }
    if (!bwd_) {
      x_ = input<bf16>(1, n * in, 1.f, "x");
      y_ = alloc<bf16>(n * out, "y");
      floor(n * in + n * out, 2);
      sync();
      expose("y", y_, n * out);
    } else {
      dy_ = input<bf16>(5, n * out, 1.f, "dy");
      dx_ = alloc<float>(n * in, "dx");
      floor(n * out, 2);
      floor(n * in, 4);
      sync();
      expose("dx", static_cast<const float*>(dx_), n * in);
    }
  }

 private:
  template <class T>
  const T* upload(const std::vector<T>& v, const char* what) {
    T* p = alloc<T>(int64_t(v.size()), what);
    to_device(p, v.data(), v.size() * sizeof(T));
    return p;
  }
  void step() override {
    if (fused_) {
      LORA4J_CU(bwd_ ? nf4_gemm_backward_input(p_, dy_, dx_, n, in, out, stream_)
                     : nf4_gemm_forward(p_, x_, y_, n, in, out, stream_));
      return;
    }
    if (nf4_) LORA4J_CU(nf4_dequantize(p_, w_, stream_));
    if (bwd_)
      gemm_.run(false, false, n, in, out, dy_, out, w_, in, dx_, true, in, 1.f, 0.f,
                "dX through frozen W");
    else
      gemm_.run(false, true, n, out, in, x_, in, w_, in, y_, false, out, 1.f, 0.f, "frozen");
  }

  bool bwd_, nf4_, fused_;
  int64_t n, in, out;
  Nf4Params p_;
  bf16 *w_ = nullptr, *x_ = nullptr, *y_ = nullptr, *dy_ = nullptr;
  float* dx_ = nullptr;
};

// ---- AdamW --------------------------------------------------------------------------------------
class AdamW final : public CudaBench {
 public:
  explicit AdamW(const OpBenchSpec& s)
      : CudaBench(s), per_tensor_(s.variant == "per_tensor"), tensors_(op_bench_lora_tensors(s)) {
    total_ = tensors_.back().first + tensors_.back().second;
    p_ = input<float>(1, total_, 0.02f, "params");
    g_ = input<float>(2, total_, 1e-3f, "grads");
    m_ = zeros<float>(total_, "exp_avg");
    v_ = zeros<float>(total_, "exp_avg_sq");
    floor(total_ * 7, 4);  // read p, g, m, v; write p, m, v
    sync();
    expose("param", static_cast<const float*>(p_), total_);
    expose("exp_avg_sq", static_cast<const float*>(v_), total_);
  }

 private:
  void step() override {
    ++t_;
    const float b1 = 0.9f, b2 = 0.999f;
    const double bc1 = 1.0 - std::pow(double(b1), double(t_));
    const double bc2 = 1.0 - std::pow(double(b2), double(t_));
    auto update = [&](int64_t off, int64_t n) {
      LORA4J_CU(adamw_update(p_ + off, g_ + off, m_ + off, v_ + off, n, 1.f, 1e-4f, b1, b2, 1e-8f,
                             0.01f, bc1, bc2, stream_));
    };
    if (!per_tensor_) {
      update(0, total_);
      return;
    }
    for (const auto& t : tensors_) update(t.first, t.second);
  }

  bool per_tensor_;
  std::vector<std::pair<int64_t, int64_t>> tensors_;
  int64_t total_ = 0, t_ = 0;
  float *p_ = nullptr, *g_ = nullptr, *m_ = nullptr, *v_ = nullptr;
};

// ---- RMSNorm, RoPE, SwiGLU -------------------------------------------------------------------
class RmsNorm final : public CudaBench {
 public:
  RmsNorm(const OpBenchSpec& s, bool backward)
      : CudaBench(s), bwd_(backward), n(s.dim("n")), d(s.dim("d")) {
    x_ = input<float>(1, n * d, 1.f, "x");
    w_ = input<bf16>(2, d, 0.1f, "weight", 1.f);
    y_ = alloc<bf16>(n * d, "y");
    rstd_ = alloc<float>(n, "rstd");
    if (bwd_) {
      LORA4J_CU(rmsnorm_forward(x_, w_, y_, rstd_, n, d, kBenchEps, stream_));
      dy_ = input<float>(3, n * d, 1.f, "dy");
      dx_ = alloc<float>(n * d, "dx");
      dxb_ = alloc<bf16>(n * d, "bf16 dx");
      floor(3 * n * d + n, 4);  // dy, x, dx; rstd
      floor(n * d + d, 2);      // bf16 dx, w
      sync();
      expose("dx", static_cast<const float*>(dx_), n * d);
    } else {
      floor(n * d + n, 4);  // x, rstd
      floor(n * d + d, 2);  // y, w
      sync();
      expose("y", y_, n * d);
    }
  }

 private:
  void step() override {
    if (bwd_)
      LORA4J_CU(rmsnorm_backward(dy_, x_, w_, rstd_, dx_, n, d, false, stream_, dxb_));
    else
      LORA4J_CU(rmsnorm_forward(x_, w_, y_, rstd_, n, d, kBenchEps, stream_));
  }
  bool bwd_;
  int64_t n, d;
  float *x_ = nullptr, *rstd_ = nullptr, *dy_ = nullptr, *dx_ = nullptr;
  bf16 *w_ = nullptr, *y_ = nullptr, *dxb_ = nullptr;
};

class Rope final : public CudaBench {
 public:
  Rope(const OpBenchSpec& s, bool backward)
      : CudaBench(s),
        bwd_(backward),
        n(s.dim("B") * s.dim("S")),
        H(s.dim("H")),
        D(int(s.dim("D"))) {
    std::vector<int32_t> pos(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) pos[size_t(t)] = int32_t(t % s.dim("S"));
    std::vector<float> inv(static_cast<size_t>(D / 2));
    for (int i = 0; i < D / 2; ++i)  // fp32 as the engine and transformers compute it
      inv[size_t(i)] =
          1.0f / float(std::pow(double(float(kBenchRopeTheta)), double(float(2 * i) / float(D))));
    pos_ = alloc<int32_t>(n, "positions");
    inv_ = alloc<float>(D / 2, "inv_freq");
    to_device(pos_, pos.data(), size_t(n) * 4);
    to_device(inv_, inv.data(), inv.size() * 4);
    floor(n, 4);
    const int64_t e = n * H * D;
    if (bwd_) {
      dx_ = input<bf16>(2, e, 1.f, "dx");
      floor(2 * e, 2);  // in place
      sync();
      expose("dx", dx_, e);
    } else {
      x_ = input<float>(1, e, 1.f, "x");
      y_ = alloc<f16>(e, "y");
      floor(e, 4);  // fp32 GEMM output in
      floor(e, 2);  // fp16 out
      sync();
      expose("y", y_, e);
    }
  }

 private:
  void step() override {
    if (bwd_)
      LORA4J_CU(rope_backward(dx_, pos_, inv_, n, H, D, stream_));
    else
      LORA4J_CU(rope_forward(x_, y_, pos_, inv_, n, H, D, stream_));
  }
  bool bwd_;
  int64_t n, H;
  int D;
  int32_t* pos_ = nullptr;
  float *inv_ = nullptr, *x_ = nullptr;
  f16* y_ = nullptr;
  bf16* dx_ = nullptr;
};

class SwiGlu final : public CudaBench {
 public:
  SwiGlu(const OpBenchSpec& s, bool backward)
      : CudaBench(s), bwd_(backward), n(s.dim("n") * s.dim("I")) {
    gate_ = input<bf16>(1, n, 2.f, "gate");
    up_ = input<bf16>(2, n, 1.f, "up");
    if (bwd_) {
      dh_ = input<float>(3, n, 1.f, "dh");
      dgate_ = alloc<bf16>(n, "dgate");
      dup_ = alloc<bf16>(n, "dup");
      floor(n, 4);
      floor(4 * n, 2);
      sync();
      expose("dgate", dgate_, n);
      expose("dup", dup_, n);
    } else {
      h_ = alloc<bf16>(n, "h");
      floor(3 * n, 2);
      sync();
      expose("h", h_, n);
    }
  }

 private:
  void step() override {
    if (bwd_)
      LORA4J_CU(swiglu_backward(dh_, gate_, up_, dgate_, dup_, n, stream_));
    else
      LORA4J_CU(swiglu_forward(gate_, up_, h_, n, stream_));
  }
  bool bwd_;
  int64_t n;
  bf16 *gate_ = nullptr, *up_ = nullptr, *h_ = nullptr, *dgate_ = nullptr, *dup_ = nullptr;
  float* dh_ = nullptr;
};

OpBench* make_bench(const OpBenchSpec& s) {
  const std::string& op = s.op;
  if (op == "attention_fwd") return new Attention(s, false);
  if (op == "attention_bwd") return new Attention(s, true);
  if (op == "cross_entropy") return new CrossEntropy(s);
  if (op == "lora_linear_fwd") return new LoraLinear(s, false);
  if (op == "lora_linear_bwd") return new LoraLinear(s, true);
  if (op == "frozen_linear_fwd") return new FrozenLinear(s, false);
  if (op == "frozen_linear_bwd") return new FrozenLinear(s, true);
  if (op == "adamw") return new AdamW(s);
  if (op == "rmsnorm_fwd") return new RmsNorm(s, false);
  if (op == "rmsnorm_bwd") return new RmsNorm(s, true);
  if (op == "rope_fwd") return new Rope(s, false);
  if (op == "rope_bwd") return new Rope(s, true);
  if (op == "swiglu_fwd") return new SwiGlu(s, false);
  if (op == "swiglu_bwd") return new SwiGlu(s, true);
  fail(LORA4J_EINTERNAL, "op '" + op + "' has no CUDA implementation");
}

}  // namespace
}  // namespace cuda
}  // namespace lora4j

namespace lora4j {
namespace cuda {
OpBench* make_op_bench(const OpBenchSpec& spec) { return make_bench(spec); }
}  // namespace cuda
}  // namespace lora4j
