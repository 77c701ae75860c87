/* The single-op benchmarks on the CPU (fp32, all hardware threads), small shapes.
 *
 * Each op runs through the functions of cpu/ops.h the CPU engine uses; the second variant of an
 * op is built here from the same dense building blocks the way a framework without the fusion
 * would do it:
 *  - attention  flash: the engine's kernel (one query row of scores at a time, recomputed in
 *               the backward); materialized: every head's full [S, S] scores with GEMMs, a
 *               causal softmax over them, P kept for the backward (as an eager framework);
 *               flash_mma (forward and backward): the CUDA A/B partner of flash, the same kernel
 *               as flash here (the CPU has one flash kernel).
 *  - cross_entropy  fused: the engine's chunked LM head + loss; materialized: all [n, V] fp32
 *               logits, then the loss and its gradient row by row, then dh with one GEMM;
 *               fused_serial: the CUDA A/B partner of fused (its chunks without the loss
 *               kernels overlapped), the same computation as fused here.
 *  - lora_linear  fused: the engine's (the low-rank product accumulated into the frozen
 *               output); separate: frozen GEMM, low-rank GEMMs into a temporary, then an add.
 *  - frozen_linear  the frozen projection's GEMM alone, y = x W^T or dx = dy W: bf16: W from
 *               bench_uniform; nf4-scratch and nf4-fused: W the bench's NF4 weight dequantized
 *               by model/nf4.cpp (the engine's CPU twin), then the same fp32 GEMM: on the CPU
 *               the two NF4 variants are one computation, the twin of both CUDA variants.
 *  - adamw      flat: one update over the whole arena; per_tensor: one per LoRA tensor.
 * Inputs are bench_uniform() values, so the variants (and the CUDA side) see the same numbers.
 */
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "model/engine.h"
#include "bench/op_bench.h"
#include "model/nf4.h"

namespace lora4j {
namespace cpu {
namespace {

using Buf = std::vector<float>;

class CpuBench : public OpBench {
 protected:
  explicit CpuBench(const OpBenchSpec& s) : spec_(s), tp_(0) {}
  // A tensor of n values bench_uniform(seed, tensor, i) * scale + offset.
  Buf input(uint32_t tensor, int64_t n, float scale, float offset = 0.f) {
    Buf b(static_cast<size_t>(n));
    parallel_for(&tp_, 0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i)
        b[size_t(i)] = bench_uniform(spec_.seed, tensor, uint64_t(i)) * scale + offset;
    });
    memory += n * 4;
    return b;
  }
  Buf zeros(int64_t n) {
    memory += n * 4;
    return Buf(static_cast<size_t>(n), 0.f);
  }
  void expose(const char* name, const Buf* b) {
    outputs.push_back({name, int64_t(b->size())});
    exposed_.push_back(b);
  }

 public:
  void output(int i, float* out) override {
    const Buf& b = *exposed_[size_t(i)];
    std::memcpy(out, b.data(), b.size() * sizeof(float));
  }
  void run(int32_t iterations) override {
    for (int32_t k = 0; k < iterations; ++k) step();
  }
  virtual void step() = 0;

 protected:
  OpBenchSpec spec_;
  ThreadPool tp_;
  std::vector<const Buf*> exposed_;
};

// y[i] += c * x[i] over n values, on the pool.
void add_scaled(ThreadPool* tp, float* y, const float* x, float c, int64_t n) {
  parallel_for(tp, 0, n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] += c * x[i];
  });
}

// ---- attention --------------------------------------------------------------------------------
class Attention final : public CpuBench {
 public:
  Attention(const OpBenchSpec& s, bool backward)
      : CpuBench(s),
        bwd_(backward),
        mat_(s.variant == "materialized"),
        B(s.dim("B")),
        S(s.dim("S")),
        H(s.dim("H")),
        KH(s.dim("KH")),
        D(s.dim("D")) {
    const int64_t nq = B * S * H * D, nk = B * S * KH * D;
    q_ = input(1, nq, 1.f);
    k_ = input(2, nk, 1.f);
    v_ = input(3, nk, 1.f);
    out_ = zeros(nq);
    lse_ = zeros(B * H * S);
    if (mat_) {
      p_ = zeros(B * H * S * S);
      qh_ = zeros(S * D);
      kg_ = zeros(S * D);
      vg_ = zeros(S * D);
      oh_ = zeros(S * D);
    }
    floor(2 * nq + 2 * nk, 4);  // q, k, v, out
    floor(B * H * S, 4);        // lse
    if (bwd_) {
      dout_ = input(4, nq, 1.f);
      dq_ = zeros(nq);
      dk_ = zeros(nk);
      dv_ = zeros(nk);
      if (mat_) {
        dp_ = zeros(S * S);
        dkg_ = zeros(S * D);
        dvg_ = zeros(S * D);
      }
      floor(2 * nq + 2 * nk, 4);  // dout, dq, dk, dv
      forward();                  // what the backward reads: out, lse (and P)
      expose("dq", &dq_);
      expose("dk", &dk_);
      expose("dv", &dv_);
    } else {
      expose("out", &out_);
      expose("lse", &lse_);
    }
  }
  void step() override { bwd_ ? backward() : forward(); }

 private:
  // Copies head h of row b out of a [B, S, heads, D] tensor into [S, D], or back.
  void gather(const Buf& t, int64_t heads, int64_t b, int64_t h, Buf& dst) {
    for (int64_t i = 0; i < S; ++i)
      std::memcpy(&dst[size_t(i * D)], &t[size_t(((b * S + i) * heads + h) * D)],
                  size_t(D) * sizeof(float));
  }
  void scatter(const Buf& src, int64_t heads, int64_t b, int64_t h, Buf& t) {
    for (int64_t i = 0; i < S; ++i)
      std::memcpy(&t[size_t(((b * S + i) * heads + h) * D)], &src[size_t(i * D)],
                  size_t(D) * sizeof(float));
  }

  void forward() {
    if (!mat_) {
      attention_forward(&tp_, q_.data(), k_.data(), v_.data(), out_.data(), lse_.data(),
                        AttentionMask{}, B, S, H, KH, D);
      return;
    }
    const float scale = float(1.0 / std::sqrt(double(D)));
    Buf vt(static_cast<size_t>(S * D));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / KH);
        gather(q_, H, b, h, qh_);
        gather(k_, KH, b, g, kg_);
        gather(v_, KH, b, g, vg_);
        for (int64_t j = 0; j < S; ++j)
          for (int64_t e = 0; e < D; ++e) vt[size_t(e * S + j)] = vg_[size_t(j * D + e)];
        float* p = p_.data() + (b * H + h) * S * S;
        linear_forward(&tp_, qh_.data(), kg_.data(), p, S, D, S, false);  // scores
        float* lse = lse_.data() + (b * H + h) * S;
        parallel_for(&tp_, 0, S, 16, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) {
            float* row = p + i * S;
            float mx = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j <= i; ++j) mx = std::max(mx, row[j] * scale);
            float sum = 0.f;
            for (int64_t j = 0; j <= i; ++j) sum += std::exp(row[j] * scale - mx);
            float l = mx + std::log(sum);
            for (int64_t j = 0; j <= i; ++j) row[j] = std::exp(row[j] * scale - l);
            for (int64_t j = i + 1; j < S; ++j) row[j] = 0.f;
            lse[i] = l;
          }
        });
        linear_forward(&tp_, p, vt.data(), oh_.data(), S, S, D, false);  // P V
        scatter(oh_, H, b, h, out_);
      }
  }

  void backward() {
    if (!mat_) {
      attention_backward(&tp_, dout_.data(), q_.data(), k_.data(), v_.data(), out_.data(),
                         lse_.data(), dq_.data(), dk_.data(), dv_.data(), AttentionMask{}, B, S, H,
                         KH, D);
      return;
    }
    const float scale = float(1.0 / std::sqrt(double(D)));
    const int64_t group = H / KH;
    Buf doh(static_cast<size_t>(S * D));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / group;
        if (h % group == 0) {
          gather(k_, KH, b, g, kg_);
          gather(v_, KH, b, g, vg_);
          std::fill(dkg_.begin(), dkg_.end(), 0.f);
          std::fill(dvg_.begin(), dvg_.end(), 0.f);
        }
        gather(q_, H, b, h, qh_);
        gather(dout_, H, b, h, doh);
        const float* p = p_.data() + (b * H + h) * S * S;
        float* ds = dp_.data();
        linear_forward(&tp_, doh.data(), vg_.data(), ds, S, D, S, false);  // dP = dO V^T
        parallel_for(&tp_, 0, S, 16, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) {
            const float* pr = p + i * S;
            float* row = ds + i * S;
            float delta = 0.f;
            for (int64_t j = 0; j <= i; ++j) delta += pr[j] * row[j];
            for (int64_t j = 0; j < S; ++j) row[j] = scale * pr[j] * (row[j] - delta);
          }
        });
        linear_backward_input(&tp_, ds, kg_.data(), oh_.data(), S, D, S, false);  // dQ = dS K
        scatter(oh_, H, b, h, dq_);
        linear_backward_weight(&tp_, ds, qh_.data(), dkg_.data(), S, D, S);  // dK += dS^T Q
        linear_backward_weight(&tp_, p, doh.data(), dvg_.data(), S, D, S);   // dV += P^T dO
        if (h % group == group - 1) {
          scatter(dkg_, KH, b, g, dk_);
          scatter(dvg_, KH, b, g, dv_);
        }
      }
  }

  bool bwd_, mat_;
  int64_t B, S, H, KH, D;
  Buf q_, k_, v_, out_, lse_, dout_, dq_, dk_, dv_;
  Buf p_, qh_, kg_, vg_, oh_, dp_, dkg_, dvg_;
};

// ---- LM head + cross-entropy ---------------------------------------------------------------
class CrossEntropy final : public CpuBench {
 public:
  explicit CrossEntropy(const OpBenchSpec& s)
      : CpuBench(s),
        mat_(s.variant == "materialized"),
        n(s.dim("n")),
        d(s.dim("d")),
        V(s.dim("V")) {
    h_ = input(1, n * d, 1.f);
    w_ = input(2, V * d, 0.05f);
    tgt_.resize(size_t(n));
    int64_t counted = 0;
    for (int64_t t = 0; t < n; ++t) {
      tgt_[size_t(t)] = bench_target(s.seed, uint64_t(t), V);
      counted += tgt_[size_t(t)] != -100;
    }
    memory += n * 4;
    grad_scale_ = counted ? float(1.0 / double(counted)) : 0.f;
    dh_ = zeros(n * d);
    loss_ = zeros(1);
    if (mat_) logits_ = zeros(n * V);
    floor(n * d + V * d + n, 4);  // h, W, targets
    floor(n * d + n, 4);          // dh, per-token losses
    expose("loss", &loss_);
    expose("dh", &dh_);
  }
  void step() override {
    double sum = 0;
    int64_t count = 0;
    if (!mat_) {
      lm_head_cross_entropy(&tp_, h_.data(), w_.data(), tgt_.data(), n, d, V, grad_scale_, &sum,
                            &count, dh_.data());
      loss_[0] = float(sum);
      return;
    }
    float* z = logits_.data();
    linear_forward(&tp_, h_.data(), w_.data(), z, n, d, V, false);
    std::vector<double> loss(static_cast<size_t>(n), 0.0);
    parallel_for(&tp_, 0, n, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        float* row = z + t * V;
        const int32_t y = tgt_[size_t(t)];
        if (y < 0) {
          std::fill(row, row + V, 0.f);
          continue;
        }
        float mx = row[0];
        for (int64_t v = 1; v < V; ++v) mx = std::max(mx, row[v]);
        double se = 0;
        for (int64_t v = 0; v < V; ++v) se += std::exp(double(row[v] - mx));
        const double lse = double(mx) + std::log(se);
        loss[size_t(t)] = lse - double(row[y]);
        for (int64_t v = 0; v < V; ++v)
          row[v] = grad_scale_ * float(std::exp(double(row[v]) - lse));
        row[y] -= grad_scale_;
      }
    });
    for (double l : loss) sum += l;
    loss_[0] = float(sum);
    linear_backward_input(&tp_, z, w_.data(), dh_.data(), n, d, V, false);  // dh = dz W
  }

 private:
  bool mat_;
  int64_t n, d, V;
  Buf h_, w_, dh_, loss_, logits_;
  std::vector<int32_t> tgt_;
  float grad_scale_ = 0;
};

// ---- LoRA linear ----------------------------------------------------------------------------
class LoraLinear final : public CpuBench {
 public:
  LoraLinear(const OpBenchSpec& s, bool backward)
      : CpuBench(s),
        bwd_(backward),
        sep_(s.variant == "separate"),
        n(s.dim("n")),
        in(s.dim("in")),
        out(s.dim("out")),
        r(s.dim("r")) {
    x_ = input(1, n * in, 1.f);
    w_ = input(2, out * in, 0.02f);
    a_ = input(3, r * in, 0.02f);
    b_ = input(4, out * r, 0.1f);
    xa_ = zeros(n * r);
    floor(out * in + r * in + out * r, 4);  // W, A, B
    if (!bwd_) {
      y_ = zeros(n * out);
      if (sep_) u_ = zeros(n * out);
      floor(n * in + n * out, 4);  // x, y
      expose("y", &y_);
      expose("xa", &xa_);  // x A^T [n, r]: the rank-r product, reduced over `in`
      return;
    }
    linear_forward(&tp_, x_.data(), a_.data(), xa_.data(), n, in, r, false);  // kept by forward
    dy_ = input(5, n * out, 1.f);
    dx_ = zeros(n * in);
    da_ = zeros(r * in);
    db_ = zeros(out * r);
    t_ = zeros(n * r);
    if (sep_) {
      dxl_ = zeros(n * in);
      da_t_ = zeros(r * in);
      db_t_ = zeros(out * r);
    }
    floor(n * out + n * in + n * r, 4);   // dy, x, xa
    floor(n * in + r * in + out * r, 4);  // dx, dA, dB
    expose("dx", &dx_);
    expose("dA", &da_);
    expose("dB", &db_);
    expose("xa", &xa_);  // x A^T [n, r], reduced over `in`
    expose("dyB", &t_);  // dy B [n, r], reduced over `out`
  }
  void step() override {
    const float s = kBenchLoraScale;
    if (!bwd_) {
      if (!sep_) {
        lora_linear_forward(&tp_, x_.data(), w_.data(), a_.data(), b_.data(), s, xa_.data(),
                            y_.data(), n, in, out, r);
        return;
      }
      linear_forward(&tp_, x_.data(), w_.data(), y_.data(), n, in, out, false);
      linear_forward(&tp_, x_.data(), a_.data(), xa_.data(), n, in, r, false);
      linear_forward(&tp_, xa_.data(), b_.data(), u_.data(), n, r, out, false);
      add_scaled(&tp_, y_.data(), u_.data(), s, n * out);
      return;
    }
    if (!sep_) {
      lora_linear_backward(&tp_, dy_.data(), x_.data(), w_.data(), a_.data(), b_.data(), xa_.data(),
                           s, dx_.data(), da_.data(), db_.data(), t_.data(), n, in, out, r);
      return;
    }
    linear_backward_input(&tp_, dy_.data(), w_.data(), dx_.data(), n, in, out, false);
    std::fill(db_t_.begin(), db_t_.end(), 0.f);
    linear_backward_weight(&tp_, dy_.data(), xa_.data(), db_t_.data(), n, r, out);  // dy^T xa
    add_scaled(&tp_, db_.data(), db_t_.data(), s, out * r);
    linear_backward_input(&tp_, dy_.data(), b_.data(), t_.data(), n, r, out, false);  // dy B
    std::fill(da_t_.begin(), da_t_.end(), 0.f);
    linear_backward_weight(&tp_, t_.data(), x_.data(), da_t_.data(), n, in, r);  // (dy B)^T x
    add_scaled(&tp_, da_.data(), da_t_.data(), s, r * in);
    linear_backward_input(&tp_, t_.data(), a_.data(), dxl_.data(), n, in, r, false);  // dy B A
    add_scaled(&tp_, dx_.data(), dxl_.data(), s, n * in);
  }

 private:
  bool bwd_, sep_;
  int64_t n, in, out, r;
  Buf x_, w_, a_, b_, xa_, y_, u_, dy_, dx_, da_, db_, t_, dxl_, da_t_, db_t_;
};

// ---- frozen linear (bf16 or NF4 weight) ------------------------------------------------------
class FrozenLinear final : public CpuBench {
 public:
  FrozenLinear(const OpBenchSpec& s, bool backward)
      : CpuBench(s), bwd_(backward), n(s.dim("n")), in(s.dim("in")), out(s.dim("out")) {
    if (op_bench_nf4(s)) {
      const BenchNf4 q = make_bench_nf4(s.seed, 6, out * in);
      w_ = zeros(out * in);
      nf4_dequantize(q.view(), w_.data(), "the frozen_linear weight");
    } else {
      w_ = input(2, out * in, 0.02f);
    }
    floor(out * in, 4);  // W as the CPU holds it (fp32)
    if (!bwd_) {
      x_ = input(1, n * in, 1.f);
      y_ = zeros(n * out);
      floor(n * in + n * out, 4);
      expose("y", &y_);
    } else {
      dy_ = input(5, n * out, 1.f);
      dx_ = zeros(n * in);
      floor(n * out + n * in, 4);
      expose("dx", &dx_);
    }
  }
  void step() override {
    if (bwd_)
      linear_backward_input(&tp_, dy_.data(), w_.data(), dx_.data(), n, in, out, false);
    else
      linear_forward(&tp_, x_.data(), w_.data(), y_.data(), n, in, out, false);
  }

 private:
  bool bwd_;
  int64_t n, in, out;
  Buf w_, x_, y_, dy_, dx_;
};

// ---- AdamW --------------------------------------------------------------------------------------
class AdamW final : public CpuBench {
 public:
  explicit AdamW(const OpBenchSpec& s)
      : CpuBench(s), per_tensor_(s.variant == "per_tensor"), tensors_(op_bench_lora_tensors(s)) {
    total_ = tensors_.back().first + tensors_.back().second;
    p_ = input(1, total_, 0.02f);
    g_ = input(2, total_, 1e-3f);
    m_ = zeros(total_);
    v_ = zeros(total_);
    floor(total_ * 7, 4);  // read p, g, m, v; write p, m, v
    expose("param", &p_);
    expose("exp_avg_sq", &v_);
  }
  void step() override {
    ++t_;
    if (!per_tensor_) {
      update(0, total_);
      return;
    }
    for (const auto& t : tensors_) update(t.first, t.second);
  }

 private:
  void update(int64_t off, int64_t n) {
    adamw_update(&tp_, p_.data() + off, g_.data() + off, m_.data() + off, v_.data() + off, n, 1.f,
                 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, t_);
  }
  bool per_tensor_;
  std::vector<std::pair<int64_t, int64_t>> tensors_;
  int64_t total_ = 0, t_ = 0;
  Buf p_, g_, m_, v_;
};

// ---- RMSNorm, RoPE, SwiGLU -------------------------------------------------------------------
class RmsNorm final : public CpuBench {
 public:
  RmsNorm(const OpBenchSpec& s, bool backward)
      : CpuBench(s), bwd_(backward), n(s.dim("n")), d(s.dim("d")) {
    x_ = input(1, n * d, 1.f);
    w_ = input(2, d, 0.1f, 1.f);
    y_ = zeros(n * d);
    rstd_ = zeros(n);
    if (bwd_) {
      rmsnorm_forward(&tp_, x_.data(), w_.data(), y_.data(), rstd_.data(), n, d, kBenchEps);
      dy_ = input(3, n * d, 1.f);
      dx_ = zeros(n * d);
      floor(3 * n * d + d + n, 4);  // dy, x, w, rstd; dx
      expose("dx", &dx_);
    } else {
      floor(2 * n * d + d + n, 4);  // x, w; y, rstd
      expose("y", &y_);
    }
  }
  void step() override {
    if (bwd_)
      rmsnorm_backward(&tp_, dy_.data(), x_.data(), w_.data(), rstd_.data(), dx_.data(), n, d,
                       false);
    else
      rmsnorm_forward(&tp_, x_.data(), w_.data(), y_.data(), rstd_.data(), n, d, kBenchEps);
  }

 private:
  bool bwd_;
  int64_t n, d;
  Buf x_, w_, y_, rstd_, dy_, dx_;
};

class Rope final : public CpuBench {
 public:
  Rope(const OpBenchSpec& s, bool backward)
      : CpuBench(s), bwd_(backward), B(s.dim("B")), S(s.dim("S")), H(s.dim("H")), D(s.dim("D")) {
    x_ = input(bwd_ ? 2 : 1, B * S * H * D, 1.f);
    pos_.resize(size_t(B * S));
    for (int64_t t = 0; t < B * S; ++t) pos_[size_t(t)] = int32_t(t % S);
    memory += B * S * 4;
    floor(2 * B * S * H * D + B * S, 4);  // read and write x; positions
    expose(bwd_ ? "dx" : "y", &x_);
  }
  // In place: every run rotates the tensor once more.
  void step() override {
    if (bwd_)
      rope_backward(&tp_, x_.data(), pos_.data(), B * S, H, D, kBenchRopeTheta);
    else
      rope_forward(&tp_, x_.data(), pos_.data(), B * S, H, D, kBenchRopeTheta);
  }

 private:
  bool bwd_;
  int64_t B, S, H, D;
  Buf x_;
  std::vector<int32_t> pos_;
};

class SwiGlu final : public CpuBench {
 public:
  SwiGlu(const OpBenchSpec& s, bool backward)
      : CpuBench(s), bwd_(backward), n(s.dim("n") * s.dim("I")) {
    gate_ = input(1, n, 2.f);
    up_ = input(2, n, 1.f);
    if (bwd_) {
      dh_ = input(3, n, 1.f);
      dgate_ = zeros(n);
      dup_ = zeros(n);
      floor(5 * n, 4);
      expose("dgate", &dgate_);
      expose("dup", &dup_);
    } else {
      h_ = zeros(n);
      floor(3 * n, 4);
      expose("h", &h_);
    }
  }
  void step() override {
    if (bwd_)
      swiglu_backward(&tp_, dh_.data(), gate_.data(), up_.data(), dgate_.data(), dup_.data(), n);
    else
      swiglu_forward(&tp_, gate_.data(), up_.data(), h_.data(), n);
  }

 private:
  bool bwd_;
  int64_t n;
  Buf gate_, up_, h_, dh_, dgate_, dup_;
};

}  // namespace
}  // namespace cpu

std::unique_ptr<OpBench> make_cpu_op_bench(const OpBenchSpec& s) {
  const std::string& op = s.op;
  if (op == "attention_fwd") return std::make_unique<cpu::Attention>(s, false);
  if (op == "attention_bwd") return std::make_unique<cpu::Attention>(s, true);
  if (op == "cross_entropy") return std::make_unique<cpu::CrossEntropy>(s);
  if (op == "lora_linear_fwd") return std::make_unique<cpu::LoraLinear>(s, false);
  if (op == "lora_linear_bwd") return std::make_unique<cpu::LoraLinear>(s, true);
  if (op == "frozen_linear_fwd") return std::make_unique<cpu::FrozenLinear>(s, false);
  if (op == "frozen_linear_bwd") return std::make_unique<cpu::FrozenLinear>(s, true);
  if (op == "adamw") return std::make_unique<cpu::AdamW>(s);
  if (op == "rmsnorm_fwd") return std::make_unique<cpu::RmsNorm>(s, false);
  if (op == "rmsnorm_bwd") return std::make_unique<cpu::RmsNorm>(s, true);
  if (op == "rope_fwd") return std::make_unique<cpu::Rope>(s, false);
  if (op == "rope_bwd") return std::make_unique<cpu::Rope>(s, true);
  if (op == "swiglu_fwd") return std::make_unique<cpu::SwiGlu>(s, false);
  if (op == "swiglu_bwd") return std::make_unique<cpu::SwiGlu>(s, true);
  fail(LORA4J_EINTERNAL, "op '" + op + "' has no CPU implementation");
}

}  // namespace lora4j
