// Every CUDA kernel, forward and backward, against its fp32 CPU twin (cpu/ops.h) on fresh
// random inputs, odd shapes included. Outputs are poisoned with NaN before each launch so an
// unwritten element fails the comparison. Tolerance: norm-wise relative error 1e-2 (bf16).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <cuda_fp8.h>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "cuda/kernels/kernels.h"
#include "cuda_test_util.h"
#include "model/engine.h"

using namespace lora4j;
using bf = __nv_bfloat16;
using ct::Dev;

namespace {

constexpr double kTol = 1e-2;
cpu::ThreadPool* g_tp = nullptr;

std::vector<float> randn(ct::Rng& r, size_t n, float s = 1.f, bool bf16 = true) {
  std::vector<float> v(n);
  for (auto& x : v) x = bf16 ? ct::round_bf16(r.normal(s)) : r.normal(s);
  return v;
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::printf("launch %s failed: %s\n", what, cudaGetErrorString(e));
    std::exit(2);
  }
  CT_CUDA(cudaDeviceSynchronize());
}

void test_rmsnorm(ct::Rng& r, int64_t n, int64_t d) {
  auto x = randn(r, static_cast<size_t>(n * d), 1.5f, false);
  auto w = randn(r, static_cast<size_t>(d));
  auto dy = randn(r, static_cast<size_t>(n * d), 1.f, false);
  Dev<float> dx_(x.size()), drstd(n), ddy(dy.size()), ddx(x.size());
  Dev<bf> dw(w.size()), dyo(x.size());
  ct::up(dx_, x);
  ct::up_bf16(dw, w);
  ct::up(ddy, dy);
  Dev<bf> dylo(x.size());
  dyo.poison();
  dylo.poison();
  drstd.poison();
  ddx.poison();
  check(cuda::rmsnorm_forward(dx_.p, dw.p, dyo.p, drstd.p, n, d, 1e-5f, 0, dylo.p),
        "rmsnorm_forward");
  check(cuda::rmsnorm_backward(ddy.p, dx_.p, dw.p, drstd.p, ddx.p, n, d, false, 0),
        "rmsnorm_backward");
  std::vector<float> y(x.size()), rstd(static_cast<size_t>(n)), gx(x.size());
  cpu::rmsnorm_forward(g_tp, x.data(), w.data(), y.data(), rstd.data(), n, d, 1e-5f);
  cpu::rmsnorm_backward(g_tp, dy.data(), x.data(), w.data(), rstd.data(), gx.data(), n, d, false);
  std::string tag = "n=" + std::to_string(n) + " d=" + std::to_string(d);
  ct::report("rmsnorm", "forward y " + tag, ct::rel_err(ct::down_bf16(dyo), y), kTol);
  ct::report("rmsnorm", "forward rstd " + tag, ct::rel_err(ct::down(drstd), rstd), kTol);
  // hi + lo carries ~16 bits: within fp32 rounding of the CPU's result, far below bf16's 4e-3
  {
    auto hi = ct::down_bf16(dyo), lo = ct::down_bf16(dylo);
    for (size_t i = 0; i < hi.size(); ++i) hi[i] += lo[i];
    ct::report("rmsnorm", "forward y hi+lo " + tag, ct::rel_err(hi, y), 3e-5);
  }
  ct::report("rmsnorm", "backward dx " + tag, ct::rel_err(ct::down(ddx), gx), kTol);
  // accumulating form with the bf16 copy: dx = dx0 + grad
  auto dx0 = randn(r, static_cast<size_t>(n * d), 1.f, false);
  ct::up(ddx, dx0);
  Dev<bf> dxb(x.size());
  dxb.poison();
  check(cuda::rmsnorm_backward(ddy.p, dx_.p, dw.p, drstd.p, ddx.p, n, d, true, 0, dxb.p),
        "rmsnorm_backward accumulate");
  std::vector<float> acc = dx0;
  for (size_t i = 0; i < acc.size(); ++i) acc[i] += gx[i];
  ct::report("rmsnorm", "backward dx accumulate " + tag, ct::rel_err(ct::down(ddx), acc), kTol);
  ct::report("rmsnorm", "backward dx bf16 copy " + tag, ct::rel_err(ct::down_bf16(dxb), acc), kTol);
}

void check_path(const char* suite, const std::string& tag, bool vectorized, bool want);

// The bf16 residual stream's forms (x bf16): the same bits as the fp32 kernels on x's values
// held in fp32, vectorized and scalar alike, and the CPU twin on those values.
void test_rmsnorm_bf16(ct::Rng& r, int64_t n, int64_t d, int64_t off) {
  auto x = randn(r, static_cast<size_t>(n * d), 1.5f, true);  // bf16 values
  auto w = randn(r, static_cast<size_t>(d));
  auto dy = randn(r, static_cast<size_t>(n * d), 1.f, false);
  auto dx0 = randn(r, static_cast<size_t>(n * d), 1.f, false);
  Dev<bf> xb(x.size() + size_t(off)), dw(w.size()), y16(x.size()), y32(x.size()), ys(x.size());
  Dev<bf> b16(x.size()), b32(x.size());
  Dev<float> x32(x.size()), ddy(dy.size()), rs16(n), rs32(n), rss(n), g16(x.size()), g32(x.size()),
      gs(x.size());
  {
    std::vector<float> padded(size_t(off), 0.f);
    padded.insert(padded.end(), x.begin(), x.end());
    ct::up_bf16(xb, padded);
  }
  const bf* xp = xb.p + off;
  ct::up(x32, x);
  ct::up_bf16(dw, w);
  ct::up(ddy, dy);
  for (auto* p : {&y16, &y32, &ys, &b16, &b32}) p->poison();
  for (auto* p : {&rs16, &rs32, &rss}) p->poison();
  ct::up(g16, dx0);
  ct::up(g32, dx0);
  ct::up(gs, dx0);
  const std::string tag =
      "n=" + std::to_string(n) + " d=" + std::to_string(d) + (off ? " x misaligned" : "");
  check_path("rmsnorm", "forward, bf16 x " + tag,
             cuda::rmsnorm_forward_is_vectorized(xp, dw.p, y16.p, d), off == 0 && d % 4 == 0);
  check(cuda::rmsnorm_forward(xp, dw.p, y16.p, rs16.p, n, d, 1e-5f, 0), "rmsnorm_forward bf16");
  check(cuda::rmsnorm_forward(x32.p, dw.p, y32.p, rs32.p, n, d, 1e-5f, 0), "rmsnorm_forward");
  check(cuda::rmsnorm_forward_scalar(xp, dw.p, ys.p, rss.p, n, d, 1e-5f, 0),
        "rmsnorm_forward_scalar bf16");
  check(cuda::rmsnorm_backward(ddy.p, xp, dw.p, rs16.p, g16.p, n, d, true, 0, b16.p),
        "rmsnorm_backward bf16");
  check(cuda::rmsnorm_backward(ddy.p, x32.p, dw.p, rs32.p, g32.p, n, d, true, 0, b32.p),
        "rmsnorm_backward");
  check(cuda::rmsnorm_backward_scalar(ddy.p, xp, dw.p, rss.p, gs.p, n, d, true, 0),
        "rmsnorm_backward_scalar bf16");
  auto bits_differ = [](const std::vector<float>& a, const std::vector<float>& b) {
    int64_t k = 0;
    for (size_t i = 0; i < a.size(); ++i) k += std::memcmp(&a[i], &b[i], 4) != 0;
    return double(k) / double(a.size());
  };
  const auto fy = ct::down_bf16(y16), fg = ct::down(g16);
  ct::report("rmsnorm", "bf16 x: forward y = fp32 kernel's bits " + tag,
             bits_differ(fy, ct::down_bf16(y32)), 0.0);
  ct::report("rmsnorm", "bf16 x: rstd = fp32 kernel's bits " + tag,
             bits_differ(ct::down(rs16), ct::down(rs32)), 0.0);
  ct::report("rmsnorm", "bf16 x: forward y vectorized = scalar " + tag,
             bits_differ(fy, ct::down_bf16(ys)), 0.0);
  ct::report("rmsnorm", "bf16 x: backward dx = fp32 kernel's bits " + tag,
             bits_differ(fg, ct::down(g32)), 0.0);
  ct::report("rmsnorm", "bf16 x: backward dx bf16 copy = fp32 kernel's bits " + tag,
             bits_differ(ct::down_bf16(b16), ct::down_bf16(b32)), 0.0);
  ct::report("rmsnorm", "bf16 x: backward dx vectorized = scalar " + tag,
             bits_differ(fg, ct::down(gs)), 0.0);
  std::vector<float> y(x.size()), rstd(static_cast<size_t>(n)), gx(x.size());
  cpu::rmsnorm_forward(g_tp, x.data(), w.data(), y.data(), rstd.data(), n, d, 1e-5f);
  cpu::rmsnorm_backward(g_tp, dy.data(), x.data(), w.data(), rstd.data(), gx.data(), n, d, false);
  for (size_t i = 0; i < gx.size(); ++i) gx[i] += dx0[i];
  ct::report("rmsnorm", "bf16 x: forward y vs the CPU twin " + tag, ct::rel_err(fy, y), kTol);
  ct::report("rmsnorm", "bf16 x: backward dx vs the CPU twin " + tag, ct::rel_err(fg, gx), kTol);
}

std::vector<float> rope_inv(int D, double theta) {
  std::vector<float> inv(static_cast<size_t>(D / 2));
  for (int i = 0; i < D / 2; ++i)
    inv[static_cast<size_t>(i)] =
        1.0f / float(std::pow(double(float(theta)), double(float(2 * i) / float(D))));
  return inv;
}

void test_rope(ct::Rng& r, int64_t n, int64_t heads, int D, double theta) {
  auto x = randn(r, static_cast<size_t>(n * heads * D), 1.f, false);
  std::vector<int32_t> pos(static_cast<size_t>(n));
  for (auto& p : pos) p = r.integer(0, 8191);
  Dev<float> dx32(x.size());
  Dev<__half> dy16(x.size());
  Dev<bf> dx(x.size());
  Dev<int32_t> dpos(pos.size());
  Dev<float> dinv(static_cast<size_t>(D / 2));
  ct::up(dx32, x);
  ct::up(dpos, pos);
  ct::up(dinv, rope_inv(D, theta));
  dy16.poison();
  check(cuda::rope_forward(dx32.p, dy16.p, dpos.p, dinv.p, n, heads, D, 0), "rope_forward");
  std::vector<float> y = x;
  cpu::rope_forward(g_tp, y.data(), pos.data(), n, heads, D, theta);
  std::string tag = "n=" + std::to_string(n) + " heads=" + std::to_string(heads) +
                    " D=" + std::to_string(D) + " theta=" + std::to_string(int64_t(theta));
  // fp32 in, one fp16 rounding out: ~3e-4, eight times under a bf16 rounding
  ct::report("rope", "forward fp32 -> fp16 " + tag, ct::rel_err(ct::down_f16(dy16), y), 1e-3);
  x = randn(r, static_cast<size_t>(n * heads * D));
  ct::up_bf16(dx, x);
  check(cuda::rope_backward(dx.p, dpos.p, dinv.p, n, heads, D, 0), "rope_backward");
  std::vector<float> g = x;
  cpu::rope_backward(g_tp, g.data(), pos.data(), n, heads, D, theta);
  ct::report("rope", "backward " + tag, ct::rel_err(ct::down_bf16(dx), g), kTol);
  // the fp32 gradient (the attention backward's dq_accum) in, one bf16 rounding out
  x = randn(r, static_cast<size_t>(n * heads * D));
  ct::up(dx32, x);
  dx.poison();
  check(cuda::rope_backward_f32(dx32.p, dx.p, dpos.p, dinv.p, n, heads, D, 0), "rope_backward_f32");
  g = x;
  cpu::rope_backward(g_tp, g.data(), pos.data(), n, heads, D, theta);
  ct::report("rope", "backward fp32 -> bf16 " + tag, ct::rel_err(ct::down_bf16(dx), g), kTol);
}

void test_swiglu(ct::Rng& r, int64_t n) {
  auto g = randn(r, static_cast<size_t>(n), 2.f), u = randn(r, static_cast<size_t>(n)),
       dh = randn(r, static_cast<size_t>(n), 1, false);
  Dev<bf> dg(n), du(n), dh_out(n), ddg(n), ddu(n);
  Dev<float> ddh(n);
  ct::up_bf16(dg, g);
  ct::up_bf16(du, u);
  ct::up(ddh, dh);
  dh_out.poison();
  ddg.poison();
  ddu.poison();
  check(cuda::swiglu_forward(dg.p, du.p, dh_out.p, n, 0), "swiglu_forward");
  check(cuda::swiglu_backward(ddh.p, dg.p, du.p, ddg.p, ddu.p, n, 0), "swiglu_backward");
  std::vector<float> h(static_cast<size_t>(n)), rg(static_cast<size_t>(n)),
      ru(static_cast<size_t>(n));
  cpu::swiglu_forward(g_tp, g.data(), u.data(), h.data(), n);
  cpu::swiglu_backward(g_tp, dh.data(), g.data(), u.data(), rg.data(), ru.data(), n);
  std::string tag = "n=" + std::to_string(n);
  ct::report("swiglu", "forward " + tag, ct::rel_err(ct::down_bf16(dh_out), h), kTol);
  ct::report("swiglu", "backward dgate " + tag, ct::rel_err(ct::down_bf16(ddg), rg), kTol);
  ct::report("swiglu", "backward dup " + tag, ct::rel_err(ct::down_bf16(ddu), ru), kTol);
}

struct AttnCase {
  int B, S, H, KH, D, window;
  bool padding, segments;
  // segments: mean length (0: about S / 3); trail: ids from 1 with a run of 0 at the end (the
  // trainer's packed rows, their padding's mask dropped); recur: ids 0, 1, 0, 1, ... (not runs)
  int seg_mean = 0;
  bool trail = false, recur = false;
};

// The first element further from the reference than bf16 rounding explains (or NaN), for the
// log of a failing comparison.
std::string first_mismatch(const std::vector<float>& got, const std::vector<float>& ref) {
  for (size_t i = 0; i < got.size() && i < ref.size(); ++i) {
    float g = got[i], r = ref[i];
    if (std::isnan(g) || std::isnan(r) || std::fabs(g - r) > 2e-2 + 2e-2 * std::fabs(r)) {
      char b[128];
      std::snprintf(b, sizeof b, "first mismatch at %zu: got %.6g, want %.6g", i, g, r);
      return b;
    }
  }
  return "no single element off by more than 2e-2 + 2e-2 |ref|";
}
bool report_diff(const std::string& name, const std::vector<float>& got,
                 const std::vector<float>& ref, double tol, double floor = 0) {
  bool ok = ct::report("attention", name, ct::rel_err(got, ref, floor), tol);
  if (!ok) std::printf("    %s: %s\n", name.c_str(), first_mismatch(got, ref).c_str());
  return ok;
}

bool is_sm90() {
  int dev = 0, major = 0, minor = 0;
  CT_CUDA(cudaGetDevice(&dev));
  CT_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  CT_CUDA(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  return major == 9 && minor == 0;
}
bool forced_mma() {
  const char* v = std::getenv("LORA4J_ATTENTION");
  return v && std::string(v) == "mma";
}

// The calls the Hopper kernels take (attention_sm90.cu): on an sm_90 device the forward, and the
// backward where bp is given, must choose them (a build without them, or a selection that misses
// them, fails here).
void check_selection(const cuda::AttentionParams& p, bool wgmma_class, const std::string& tag,
                     const cuda::AttentionBackwardParams* bp = nullptr) {
  if (!is_sm90() || forced_mma()) return;
  const std::string built = std::string("built=") + (cuda::attention_wgmma_built() ? "yes" : "no");
  const std::string want = wgmma_class ? " (want wgmma)" : " (want mma)";
  const bool chosen = cuda::attention_forward_kernel(p) == cuda::AttentionKernel::kWgmma;
  const bool accepts = cuda::attention_wgmma_accepts(p);
  ct::report_bool("attention", "kernel choice on sm_90 " + tag, wgmma_class ? chosen : !chosen,
                  built + " accepts=" + (accepts ? "yes" : "no") +
                      " chosen=" + (chosen ? "wgmma" : "mma") + want);
  if (!bp) return;
  const bool bchosen = cuda::attention_backward_kernel(*bp) == cuda::AttentionKernel::kWgmma;
  const bool baccepts = cuda::attention_wgmma_accepts_backward(*bp);
  ct::report_bool("attention", "bwd kernel choice on sm_90 " + tag,
                  wgmma_class ? bchosen : !bchosen,
                  built + " accepts=" + (baccepts ? "yes" : "no") +
                      " chosen=" + (bchosen ? "wgmma" : "mma") + want);
}

// Runs the backward through each kernel that takes bp0 (mma.sync always; wgmma where it accepts
// bp0) into fresh poisoned dq, dk, dv and scratch, against the CPU twin's gradients.
void backward_both(const cuda::AttentionBackwardParams& bp0, const std::vector<float>& gq,
                   const std::vector<float>& gk, const std::vector<float>& gv,
                   const std::string& tag) {
  const cuda::AttentionParams& p = bp0.f;
  const size_t nq = static_cast<size_t>(int64_t(p.B) * p.Sq * p.H * p.D),
               nk = static_cast<size_t>(int64_t(p.B) * p.Sk * p.KH * p.D),
               rows = static_cast<size_t>(int64_t(p.B) * p.H * p.Sq);
  for (int kernel = 0; kernel < 2; ++kernel) {
    if (kernel == 1 && !cuda::attention_wgmma_accepts_backward(bp0)) continue;
    const char* name = kernel == 0 ? "mma" : "wgmma";
    Dev<bf> dq(nq), dk(nk), dv(nk);
    Dev<float> acc(nq), delta(rows);
    dq.poison();
    dk.poison();
    dv.poison();
    acc.poison();
    delta.poison();
    cuda::AttentionBackwardParams bp = bp0;
    bp.dq = dq.p;
    bp.dk = dk.p;
    bp.dv = dv.p;
    bp.dq_accum = acc.p;
    bp.delta = delta.p;
    check(kernel == 0 ? cuda::attention_backward_mma(bp, 0) : cuda::attention_backward_wgmma(bp, 0),
          kernel == 0 ? "attention_backward_mma" : "attention_backward_wgmma");
    const std::string k = std::string("bwd-") + name;
    report_diff(k + " dq " + tag, ct::down_bf16(dq), gq, kTol, 1e-3);
    report_diff(k + " dk " + tag, ct::down_bf16(dk), gk, kTol, 1e-3);
    report_diff(k + " dv " + tag, ct::down_bf16(dv), gv, kTol);
    // dk and dv into their columns of rows that hold q's, k's and v's gradients and 48 more
    // columns (the engine's dqkv_, dkv_ld): the same bits, the other columns untouched
    const int64_t qw = int64_t(p.H) * p.D, kw = int64_t(p.KH) * p.D, ld = qw + 2 * kw + 48,
                  n = int64_t(p.B) * p.Sk;
    Dev<bf> wide(static_cast<size_t>(n * ld));
    wide.poison();
    bp.dk = wide.p + qw;
    bp.dv = wide.p + qw + kw;
    bp.dkv_ld = ld;
    check(kernel == 0 ? cuda::attention_backward_mma(bp, 0) : cuda::attention_backward_wgmma(bp, 0),
          "attention_backward (dkv_ld)");
    const std::vector<float> hw = ct::down_bf16(wide), hk = ct::down_bf16(dk),
                             hv = ct::down_bf16(dv);
    size_t differ = 0, touched = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < ld; ++c) {
        const float x = hw[static_cast<size_t>(i * ld + c)];
        if (c < qw || c >= qw + 2 * kw) {
          touched += !std::isnan(x);
          continue;
        }
        const float want = c < qw + kw ? hk[static_cast<size_t>(i * kw + c - qw)]
                                       : hv[static_cast<size_t>(i * kw + c - qw - kw)];
        differ += std::memcmp(&x, &want, sizeof x) != 0;
      }
    ct::report("attention", k + " dk dv at a row stride = contiguous " + tag, double(differ), 0);
    ct::report("attention", k + " dk dv at a row stride: other columns untouched " + tag,
               double(touched), 0);
  }
}

// Runs the forward through each kernel that takes p (mma.sync always; wgmma where it accepts p)
// into fresh poisoned outputs; the rows [row0, row0 + p.Sq) of the reference o / lse (laid out
// [B, rows, H, D] and [B, H, rows]) are compared.
void forward_both(const cuda::AttentionParams& p0, const std::vector<float>& o_ref,
                  const std::vector<float>& lse_ref, int rows, int row0, const std::string& tag) {
  const int64_t B = p0.B, Sq = p0.Sq, H = p0.H, D = p0.D;
  std::vector<float> want_o(static_cast<size_t>(B * Sq * H * D)),
      want_lse(static_cast<size_t>(B * H * Sq));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Sq; ++i) {
      for (int64_t c = 0; c < H * D; ++c)
        want_o[static_cast<size_t>((b * Sq + i) * H * D + c)] =
            o_ref[static_cast<size_t>((b * rows + row0 + i) * H * D + c)];
      for (int64_t h = 0; h < H; ++h)
        want_lse[static_cast<size_t>((b * H + h) * Sq + i)] =
            lse_ref[static_cast<size_t>((b * H + h) * rows + row0 + i)];
    }
  for (int kernel = 0; kernel < 2; ++kernel) {
    if (kernel == 1 && !cuda::attention_wgmma_accepts(p0)) continue;
    const char* name = kernel == 0 ? "mma" : "wgmma";
    Dev<bf> o(want_o.size());
    Dev<float> lse(want_lse.size()), o32(want_o.size());
    o.poison();
    lse.poison();
    o32.poison();
    cuda::AttentionParams p = p0;
    p.o = o.p;
    p.lse = lse.p;
    p.o_f32 = o32.p;
    check(kernel == 0 ? cuda::attention_forward_mma(p, 0) : cuda::attention_forward_wgmma(p, 0),
          kernel == 0 ? "attention_forward_mma" : "attention_forward_wgmma");
    const std::string k = std::string("fwd-") + name;
    report_diff(k + " out " + tag, ct::down_bf16(o), want_o, kTol);
    report_diff(k + " out32 " + tag, ct::down(o32), want_o, kTol);
    report_diff(k + " lse " + tag, ct::down(lse), want_lse, kTol);
  }
}

// Fraction of the n elements at offset whose bits differ between a and b.
template <class T>
double bit_diff(const Dev<T>& a, const Dev<T>& b, size_t offset, size_t n) {
  std::vector<T> ha(n), hb(n);
  CT_CUDA(cudaMemcpy(ha.data(), a.p + offset, n * sizeof(T), cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hb.data(), b.p + offset, n * sizeof(T), cudaMemcpyDeviceToHost));
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad += std::memcmp(&ha[i], &hb[i], sizeof(T)) != 0;
  return n ? double(bad) / double(n) : 0.0;
}

void test_attention(ct::Rng& r, const AttnCase& c) {
  const int64_t B = c.B, S = c.S, H = c.H, KH = c.KH, D = c.D;
  auto q = randn(r, static_cast<size_t>(B * S * H * D)),
       k = randn(r, static_cast<size_t>(B * S * KH * D)),
       v = randn(r, static_cast<size_t>(B * S * KH * D)),
       dout = randn(r, static_cast<size_t>(B * S * H * D));
  std::vector<int32_t> mask(static_cast<size_t>(B * S), 1), seg(static_cast<size_t>(B * S), 0);
  if (c.padding)
    for (int64_t b = 0; b < B; ++b) {
      int pad = std::min<int>(int(S) - 1, r.integer(0, int(S / 4) + 1));
      for (int64_t j = 0; j < pad; ++j)
        mask[static_cast<size_t>(b * S + ((b % 2) ? j : S - 1 - j))] =
            0;  // left pad odd rows, right even
    }
  if (c.segments)
    for (int64_t b = 0; b < B; ++b) {
      int id = c.trail ? 1 : 0;
      const int mean = c.seg_mean > 0 ? c.seg_mean : int(S / 3) + 2;
      for (int64_t j = 0; j < S; ++j) {
        if (j > 0 && r.integer(0, mean - 1) == 0) id = c.recur ? 1 - id : id + 1;
        seg[static_cast<size_t>(b * S + j)] = id;
      }
      if (c.trail)
        for (int64_t j = S - r.integer(0, int(S / 4)); j < S; ++j)
          seg[static_cast<size_t>(b * S + j)] = 0;
    }
  // q and k are fp16 on the device (the scores' operand type); the CPU twin gets the same values
  for (auto& x : q) x = ct::round_f16(x);
  for (auto& x : k) x = ct::round_f16(x);
  Dev<__half> dq(q.size()), dk(k.size());
  Dev<bf> dv(v.size()), dout_(dout.size()), dq_g(q.size()), dk_g(k.size()), dv_g(v.size()),
      dd_o(q.size());
  Dev<float> dlse(static_cast<size_t>(B * H * S)), dacc(q.size()),
      ddelta(static_cast<size_t>(B * H * S));
  Dev<int32_t> dmask(mask.size()), dseg(seg.size());
  ct::up_f16(dq, q);
  ct::up_f16(dk, k);
  ct::up_bf16(dv, v);
  ct::up_bf16(dout_, dout);
  ct::up(dmask, mask);
  ct::up(dseg, seg);
  dd_o.poison();
  dlse.poison();
  dq_g.poison();
  dk_g.poison();
  dv_g.poison();
  dacc.poison();
  ddelta.poison();
  cuda::AttentionParams p = cuda::dense_attention_params(dq.p, dk.p, dv.p, dd_o.p, dlse.p, int(B),
                                                         int(S), int(H), int(KH), int(D));
  p.key_mask = c.padding ? dmask.p : nullptr;
  p.segments = c.segments ? dseg.p : nullptr;
  // the segments' runs, for the Hopper kernels (where the ids form runs)
  std::vector<int32_t> run_start(seg.size()), run_end(seg.size());
  const bool runs =
      c.segments && cuda::segment_runs(seg.data(), B, S, run_start.data(), run_end.data());
  Dev<int32_t> drs(seg.size()), dre(seg.size());
  if (runs) {
    ct::up(drs, run_start);
    ct::up(dre, run_end);
    p.seg_start = drs.p;
    p.seg_end = dre.p;
  }
  p.window = c.window;
  p.scale = float(1.0 / std::sqrt(double(D)));
  Dev<float> do32(q.size());
  do32.poison();
  p.o_f32 = (c.S % 2) ? do32.p : nullptr;  // odd S: the fp32-output / fp32-delta path
  check(cuda::attention_forward(p, 0), "attention_forward");
  cuda::AttentionBackwardParams bp;
  bp.f = p;
  bp.dout = dout_.p;
  bp.dq = dq_g.p;
  bp.dk = dk_g.p;
  bp.dv = dv_g.p;
  bp.dq_accum = dacc.p;
  bp.delta = ddelta.p;
  bp.out_f32 = p.o_f32;
  check(cuda::attention_backward(bp, 0), "attention_backward");

  // CPU twin on the same (bf16-rounded) inputs; out rounded to bf16 as the GPU keeps it
  cpu::AttentionMask m;
  m.key_mask = c.padding ? mask.data() : nullptr;
  m.segments = c.segments ? seg.data() : nullptr;
  m.window = c.window;
  std::vector<float> o(q.size()), lse(static_cast<size_t>(B * H * S)), gq(q.size()), gk(k.size()),
      gv(v.size());
  cpu::attention_forward(g_tp, q.data(), k.data(), v.data(), o.data(), lse.data(), m, B, S, H, KH,
                         D);
  cpu::attention_backward(g_tp, dout.data(), q.data(), k.data(), v.data(), o.data(), lse.data(),
                          gq.data(), gk.data(), gv.data(), m, B, S, H, KH, D);
  char tag[160];
  std::snprintf(tag, sizeof tag, "B=%d S=%d H=%d KH=%d D=%d W=%d%s%s%s", c.B, c.S, c.H, c.KH, c.D,
                c.window, c.padding ? " pad" : "",
                !c.segments ? ""
                : c.recur   ? " seg(recurring)"
                : c.trail   ? " seg(packed)"
                            : " seg",
                c.segments && c.seg_mean ? (" mean " + std::to_string(c.seg_mean)).c_str() : "");
  if (c.segments)
    ct::report_bool("attention", std::string("segments as runs ") + tag, runs == !c.recur,
                    runs ? "runs" : "not runs");
  // segments that form runs and windows bound each row's keys from below and each key's queries
  // from above: the Hopper kernels take both (a key mask, or segments that are not runs, not)
  const bool wgmma_class = (D == 64 || D == 128) && !c.padding && (!c.segments || runs);
  check_selection(p, wgmma_class, tag, &bp);
  forward_both(p, o, lse, int(S), 0, tag);
  backward_both(bp, gq, gk, gv, tag);
  ct::report("attention", std::string("fwd out ") + tag, ct::rel_err(ct::down_bf16(dd_o), o), kTol);
  if (wgmma_class && is_sm90() && !forced_mma()) {
    // the Hopper forward's half last tile and output through shared memory against the whole
    // tile and the output written from registers: the same bits
    cuda::AttentionParams w = p;
    Dev<bf> o2(q.size());
    Dev<float> lse2(static_cast<size_t>(B * H * S)), o2_32(q.size());
    o2.poison();
    lse2.poison();
    o2_32.poison();
    w.o = o2.p;
    w.lse = lse2.p;
    w.o_f32 = p.o_f32 ? o2_32.p : nullptr;
    w.whole_last_tile = true;
    w.direct_store = true;
    check(cuda::attention_forward(w, 0), "attention_forward (whole last tile, direct store)");
    CT_CUDA(cudaDeviceSynchronize());
    double diff = bit_diff(dd_o, o2, 0, o2.n) + bit_diff(dlse, lse2, 0, lse2.n);
    if (p.o_f32) diff += bit_diff(do32, o2_32, 0, o2_32.n);
    ct::report("attention", std::string("fwd half tile, staged = whole, direct, bits ") + tag, diff,
               0);
    // the persistent form (hd128, no fp32 copy) at grids of 1 and 3 blocks and one block per
    // query block, against the default grid (one block per SM, or one per query block when
    // they are fewer): the same bits
    for (int grid : {-1, 1, 3}) {
      cuda::AttentionParams pg = p;
      o2.poison();
      lse2.poison();
      pg.o = o2.p;
      pg.lse = lse2.p;
      pg.o_f32 = nullptr;
      pg.fwd_grid = grid;
      check(cuda::attention_forward(pg, 0), "attention_forward (grid)");
      CT_CUDA(cudaDeviceSynchronize());
      ct::report("attention",
                 "fwd grid " + std::to_string(grid) + " = default grid, bits " + std::string(tag),
                 bit_diff(dd_o, o2, 0, o2.n) + bit_diff(dlse, lse2, 0, lse2.n), 0);
    }
  }
  if (p.o_f32)
    ct::report("attention", std::string("fwd out32 ") + tag, ct::rel_err(ct::down(do32), o), kTol);
  ct::report("attention", std::string("fwd lse ") + tag, ct::rel_err(ct::down(dlse), lse), kTol);
  ct::report("attention", std::string("bwd dq ") + tag, ct::rel_err(ct::down_bf16(dq_g), gq, 1e-3),
             kTol);
  ct::report("attention", std::string("bwd dk ") + tag, ct::rel_err(ct::down_bf16(dk_g), gk, 1e-3),
             kTol);
  ct::report("attention", std::string("bwd dv ") + tag, ct::rel_err(ct::down_bf16(dv_g), gv), kTol);
}

// cuda::segment_runs on hand-made rows: each position's run, and the refusal of an id that
// recurs after another run.
void test_segment_runs() {
  // row 0: the trainer's packing (1, 1, 2, 3, 3, 3, then padding 0, 0); row 1: one segment
  const std::vector<int32_t> seg = {1, 1, 2, 3, 3, 3, 0, 0, 5, 5, 5, 5, 5, 5, 5, 5};
  std::vector<int32_t> st(seg.size(), -1), en(seg.size(), -1);
  const bool ok = cuda::segment_runs(seg.data(), 2, 8, st.data(), en.data());
  const std::vector<int32_t> want_st = {0, 0, 2, 3, 3, 3, 6, 6, 0, 0, 0, 0, 0, 0, 0, 0};
  const std::vector<int32_t> want_en = {2, 2, 3, 6, 6, 6, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
  ct::report_bool("attention", "segment_runs: starts and ends of packed rows",
                  ok && st == want_st && en == want_en, "");
  const std::vector<int32_t> again = {1, 1, 2, 1};  // 1 recurs after 2's run
  std::vector<int32_t> st2(4), en2(4);
  ct::report_bool("attention", "segment_runs: an id that recurs is not a run",
                  !cuda::segment_runs(again.data(), 1, 4, st2.data(), en2.data()), "");
  const std::vector<int32_t> rows = {1, 1, 2, 2, 1, 1};  // ids are per row: {1, 1, 2}, {2, 1, 1}
  std::vector<int32_t> st3(6), en3(6);
  ct::report_bool("attention", "segment_runs: an id of one row may appear in another",
                  cuda::segment_runs(rows.data(), 2, 3, st3.data(), en3.data()) &&
                      st3 == std::vector<int32_t>{0, 0, 2, 0, 1, 1} &&
                      en3 == std::vector<int32_t>{2, 2, 3, 1, 3, 3},
                  "");
}

// Decoding: the last nq queries of a row of S keys (q_offset = S - nq) against the last rows of
// the full causal attention on the CPU (with a sliding window of W positions when W > 0), through
// both forward kernels.
void test_attention_decode(ct::Rng& r, int B, int S, int H, int KH, int D, int nq, int W = 0) {
  auto q = randn(r, static_cast<size_t>(int64_t(B) * S * H * D)),
       k = randn(r, static_cast<size_t>(int64_t(B) * S * KH * D)),
       v = randn(r, static_cast<size_t>(int64_t(B) * S * KH * D));
  for (auto& x : q) x = ct::round_f16(x);
  for (auto& x : k) x = ct::round_f16(x);
  std::vector<float> qtail(static_cast<size_t>(int64_t(B) * nq * H * D));
  for (int64_t b = 0; b < B; ++b)
    std::copy_n(q.data() + (b * S + S - nq) * H * D, int64_t(nq) * H * D,
                qtail.data() + b * nq * H * D);
  Dev<__half> dq(qtail.size()), dk(k.size());
  Dev<bf> dv(v.size());
  ct::up_f16(dq, qtail);
  ct::up_f16(dk, k);
  ct::up_bf16(dv, v);
  cuda::AttentionParams p;
  p.q = dq.p;
  p.k = dk.p;
  p.v = dv.p;
  p.B = B;
  p.Sq = nq;
  p.Sk = S;
  p.H = H;
  p.KH = KH;
  p.D = D;
  p.q_bstride = int64_t(nq) * H * D;
  p.kv_bstride = int64_t(S) * KH * D;
  p.q_offset = S - nq;
  p.scale = float(1.0 / std::sqrt(double(D)));
  p.window = W;
  cpu::AttentionMask m;
  m.window = W;
  std::vector<float> o(q.size()), lse(static_cast<size_t>(int64_t(B) * H * S));
  cpu::attention_forward(g_tp, q.data(), k.data(), v.data(), o.data(), lse.data(), m, B, S, H, KH,
                         D);
  char tag[160];
  std::snprintf(tag, sizeof tag, "B=%d S=%d H=%d KH=%d D=%d decode %d W=%d", B, S, H, KH, D, nq, W);
  check_selection(p, D == 64 || D == 128, tag);
  forward_both(p, o, lse, S, S - nq, tag);
}

// The cross-entropy kernel against cpu::lm_head_cross_entropy with W = identity (then the
// logits are h and d loss / d h is the gradient of the logits).
void test_cross_entropy(ct::Rng& r, int64_t n, int64_t V) {
  auto z = randn(r, static_cast<size_t>(n * V), 3.f, false);
  std::vector<int32_t> tgt(static_cast<size_t>(n));
  for (auto& t : tgt) t = r.integer(0, 4) == 0 ? -100 : r.integer(0, int(V) - 1);
  const float gs = 1.f / 37.f;
  Dev<float> dz(z.size()), dloss(static_cast<size_t>(n));
  Dev<int32_t> dt(tgt.size());
  Dev<bf> dgrad(z.size());
  ct::up(dz, z);
  ct::up(dt, tgt);
  dloss.poison();
  dgrad.poison();
  check(cuda::cross_entropy_chunk(dz.p, dt.p, n, V, gs, dloss.p, dgrad.p, V, 0), "cross_entropy");
  std::vector<float> eye(static_cast<size_t>(V * V), 0.f), dh(z.size());
  for (int64_t i = 0; i < V; ++i) eye[static_cast<size_t>(i * V + i)] = 1.f;
  double ref_sum = 0;
  int64_t ref_count = 0;
  cpu::lm_head_cross_entropy(g_tp, z.data(), eye.data(), tgt.data(), n, V, V, gs, &ref_sum,
                             &ref_count, dh.data());
  auto loss = ct::down(dloss);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    if (tgt[static_cast<size_t>(i)] != -100) sum += loss[static_cast<size_t>(i)];
  std::string tag = "n=" + std::to_string(n) + " V=" + std::to_string(V);
  ct::report("cross_entropy", "loss sum " + tag, std::fabs(sum - ref_sum) / std::fabs(ref_sum),
             kTol);
  ct::report("cross_entropy", "dlogits " + tag, ct::rel_err(ct::down_bf16(dgrad), dh), kTol);
  // in place, as the engine runs it: the bf16 gradients of row t overwrite its fp32 logits
  // (row stride 2V bf16); must match the separate-buffer result bit for bit
  auto sep = ct::down_bf16(dgrad), sep_loss = ct::down(dloss);
  dloss.poison();
  check(cuda::cross_entropy_chunk(dz.p, dt.p, n, V, gs, dloss.p, reinterpret_cast<bf*>(dz.p), 2 * V,
                                  0),
        "cross_entropy in place");
  std::vector<uint16_t> raw(static_cast<size_t>(n * V * 2));
  CT_CUDA(cudaMemcpy(raw.data(), dz.p, raw.size() * 2, cudaMemcpyDeviceToHost));
  std::vector<float> inplace(static_cast<size_t>(n * V));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < V; ++i)
      inplace[static_cast<size_t>(t * V + i)] =
          ct::from_bf16_bits(raw[static_cast<size_t>(t * 2 * V + i)]);
  ct::report_bool("cross_entropy", "in place = separate buffer " + tag,
                  inplace == sep && ct::down(dloss) == sep_loss, "bitwise");
}

// The bf16-logit form (the engine's default) against a float64 softmax of the same bf16
// values: per-token losses, bf16 gradients, rows not counted exactly zero, and in place (the
// gradients over the logits, ldd = V) bit for bit the separate-buffer result. `regs` says which
// kernel the sizes must select (the row held in registers, or the three-pass loop).
void test_cross_entropy_bf16(ct::Rng& r, int64_t n, int64_t V, float scale, bool regs) {
  auto z = randn(r, static_cast<size_t>(n * V), scale, true);  // bf16 values
  std::vector<int32_t> tgt(static_cast<size_t>(n));
  for (auto& t : tgt) t = r.integer(0, 4) == 0 ? -100 : r.integer(0, int(V) - 1);
  tgt[0] = int32_t(V - 1);  // the last column, in the last vector of a row
  const float gs = 1.f / 37.f;
  std::vector<float> ref_loss(static_cast<size_t>(n), 0.f), ref_g(z.size(), 0.f);
  for (int64_t t = 0; t < n; ++t) {
    const int32_t y = tgt[size_t(t)];
    if (y < 0) continue;
    const float* zt = z.data() + t * V;
    double mx = -INFINITY, se = 0;
    for (int64_t i = 0; i < V; ++i) mx = std::max(mx, double(zt[i]));
    for (int64_t i = 0; i < V; ++i) se += std::exp(double(zt[i]) - mx);
    const double lse = mx + std::log(se);
    ref_loss[size_t(t)] = float(lse - double(zt[y]));
    for (int64_t i = 0; i < V; ++i)
      ref_g[size_t(t * V + i)] = float(gs * (std::exp(double(zt[i]) - lse) - (i == y ? 1 : 0)));
  }
  Dev<bf> dz(z.size()), dgrad(z.size());
  Dev<float> dloss(static_cast<size_t>(n));
  Dev<int32_t> dt(tgt.size());
  ct::up_bf16(dz, z);
  ct::up(dt, tgt);
  dloss.poison();
  dgrad.poison();
  const std::string tag = "n=" + std::to_string(n) + " V=" + std::to_string(V);
  ct::report_bool("cross_entropy", "bf16 kernel choice " + tag,
                  cuda::cross_entropy_bf16_in_registers(V, V, dz.p, dgrad.p) == regs,
                  regs ? "row in registers" : "three passes");
  check(cuda::cross_entropy_chunk(static_cast<const bf*>(dz.p), dt.p, n, V, gs, dloss.p, dgrad.p, V,
                                  0),
        "cross_entropy bf16");
  const auto loss = ct::down(dloss), g = ct::down_bf16(dgrad);
  double worst = 0, lmax = 0;
  for (size_t t = 0; t < loss.size(); ++t) {
    worst = ct::worst_of(worst, std::fabs(double(loss[t]) - double(ref_loss[t])));
    lmax = std::max(lmax, std::fabs(double(ref_loss[t])));
  }
  ct::report("cross_entropy", "bf16 logits: token losses " + tag, worst / std::max(lmax, 1.0),
             1e-5);
  ct::report("cross_entropy", "bf16 logits: dlogits " + tag, ct::rel_err(g, ref_g), kTol);
  bool zeros = true;
  for (int64_t t = 0; t < n; ++t)
    if (tgt[size_t(t)] < 0) {
      zeros = zeros && loss[size_t(t)] == 0.f;
      for (int64_t i = 0; i < V; ++i) zeros = zeros && g[size_t(t * V + i)] == 0.f;
    }
  ct::report_bool("cross_entropy", "bf16 logits: rows not counted are zero " + tag, zeros, "");
  dloss.poison();
  check(
      cuda::cross_entropy_chunk(static_cast<const bf*>(dz.p), dt.p, n, V, gs, dloss.p, dz.p, V, 0),
      "cross_entropy bf16 in place");
  ct::report_bool("cross_entropy", "bf16 logits: in place = separate buffer " + tag,
                  ct::down_bf16(dz) == g && ct::down(dloss) == loss, "bitwise");
}

void test_adamw(ct::Rng& r, int64_t n) {
  auto p = randn(r, static_cast<size_t>(n), 1, false),
       g = randn(r, static_cast<size_t>(n), 0.1f, false);
  auto m = randn(r, static_cast<size_t>(n), 0.01f, false),
       v = randn(r, static_cast<size_t>(n), 0.01f, false);
  for (auto& x : v) x = std::fabs(x);
  Dev<float> dp(static_cast<size_t>(n)), dg(static_cast<size_t>(n)), dm(static_cast<size_t>(n)),
      dv(static_cast<size_t>(n));
  Dev<double> dsum(1);
  Dev<int> dflag(1);
  ct::up(dp, p);
  ct::up(dg, g);
  ct::up(dm, m);
  ct::up(dv, v);
  dsum.poison();
  dflag.poison();
  check(cuda::grad_sumsq(dg.p, n, dsum.p, dflag.p, 0), "grad_sumsq");
  double ss = ct::down(dsum)[0];
  int flag = ct::down(dflag)[0];
  double ref = cpu::sum_squares(g_tp, g.data(), n);
  std::string tag = "n=" + std::to_string(n);
  ct::report("adamw", "grad sum of squares " + tag, std::fabs(ss - ref) / ref, 1e-6);
  ct::report_bool("adamw", "finite flag clear " + tag, flag == 0, "flag=" + std::to_string(flag));
  const int64_t step = 3;
  const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f, mult = 0.7f;
  check(cuda::adamw_update(dp.p, dg.p, dm.p, dv.p, n, mult, lr, b1, b2, eps, wd,
                           1.0 - std::pow(double(b1), double(step)),
                           1.0 - std::pow(double(b2), double(step)), 0),
        "adamw_update");
  cpu::adamw_update(g_tp, p.data(), g.data(), m.data(), v.data(), n, mult, lr, b1, b2, eps, wd,
                    step);
  ct::report("adamw", "param " + tag, ct::rel_err(ct::down(dp), p), 1e-5);
  ct::report("adamw", "exp_avg " + tag, ct::rel_err(ct::down(dm), m), 1e-5);
  ct::report("adamw", "exp_avg_sq " + tag, ct::rel_err(ct::down(dv), v), 1e-5);
  // one non-finite gradient raises the flag
  float inf = INFINITY;
  CT_CUDA(cudaMemcpy(dg.p + n / 2, &inf, sizeof inf, cudaMemcpyHostToDevice));
  check(cuda::grad_sumsq(dg.p, n, dsum.p, dflag.p, 0), "grad_sumsq");
  flag = ct::down(dflag)[0];
  ct::report_bool("adamw", "non-finite flag set " + tag, flag == 1, "flag=" + std::to_string(flag));
}

// TO float: the fp32 stream's gather; bf16 (LORA4J_RESIDUAL=bf16): the table's bits themselves.
template <class TO>
void test_embedding(ct::Rng& r, int64_t n, int64_t V, int64_t d) {
  auto table = randn(r, static_cast<size_t>(V * d));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = r.integer(0, int(V) - 1);
  Dev<bf> dt(table.size());
  Dev<int32_t> di(ids.size());
  Dev<TO> dout(static_cast<size_t>(n * d));
  ct::up_bf16(dt, table);
  ct::up(di, ids);
  dout.poison();
  check(cuda::embedding_forward(di.p, dt.p, dout.p, n, d, 0), "embedding_forward");
  std::vector<float> ref(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i)
    std::copy_n(table.data() + ids[static_cast<size_t>(i)] * d, d, ref.data() + i * d);
  std::vector<float> got;
  if constexpr (std::is_same_v<TO, float>)
    got = ct::down(dout);
  else
    got = ct::down_bf16(dout);
  ct::report("embedding",
             std::string(std::is_same_v<TO, float> ? "gather" : "gather into bf16") +
                 " n=" + std::to_string(n) + " d=" + std::to_string(d),
             ct::rel_err(got, ref), 0.0);
}

// add_f32_slices: each destination slice receives its share of src, the same fp32 additions as
// on the host (bit for bit); outside 1 .. kMax slices the launcher refuses.
void test_add_f32_slices(ct::Rng& r, int64_t len, int count) {
  auto src = randn(r, static_cast<size_t>(len * count));
  Dev<float> ds(src.size());
  ct::up(ds, src);
  std::vector<std::vector<float>> dst;
  std::vector<std::unique_ptr<Dev<float>>> dd;
  cuda::F32Slices sl{};
  for (int i = 0; i < count; ++i) {
    dst.push_back(randn(r, static_cast<size_t>(len)));
    dd.push_back(std::make_unique<Dev<float>>(static_cast<size_t>(len)));
  }
  for (int i = 0; i < count; ++i) {
    ct::up(*dd[size_t(i)], dst[size_t(i)]);
    sl.p[i] = dd[size_t(i)]->p;
  }
  check(cuda::add_f32_slices(ds.p, len, sl, count, 0), "add_f32_slices");
  int64_t differ = 0;
  for (int i = 0; i < count; ++i) {
    auto got = ct::down(*dd[size_t(i)]);
    for (int64_t j = 0; j < len; ++j) {
      float want = dst[size_t(i)][size_t(j)] + src[size_t(i * len + j)];
      differ += std::memcmp(&want, &got[size_t(j)], 4) != 0;
    }
  }
  ct::report("add_f32", "slices len=" + std::to_string(len) + " count=" + std::to_string(count),
             double(differ) / double(len * count), 0.0);
}
void test_add_f32_refusals() {
  cuda::F32Slices sl{};
  ct::report_bool("add_f32", "add_f32_slices refuses 0 and kMax + 1 slices",
                  cuda::add_f32_slices(nullptr, 16, sl, 0, 0) == cudaErrorInvalidValue &&
                      cuda::add_f32_slices(nullptr, 16, sl, cuda::F32Slices::kMax + 1, 0) ==
                          cudaErrorInvalidValue,
                  "");
}

// copy2d_batched against the same copies done on the host (its CPU twin: memcpy row by row): a
// table of copies between random offsets and row pitches of one source and one destination
// buffer, whose units cover 16, 8, 4, 2 and 1 bytes (copy2d_unit, checked per case), with the
// optimizer's shapes among them (a rank-16 B into a folded weight: 32-byte rows at a pitch of
// (4096 + 48) x 2 bytes, 14336 rows; a stacked A: one 131 KB row). Every byte of the destination
// is compared, so a copy that writes past its rows or columns fails as well; the launch's refusals
// (a negative count, more than kMaxCopies) and a count of 0 (nothing written) are checked too.
void test_copy2d_batched(ct::Rng& r) {
  struct Case {
    int64_t soff, spitch, doff, dpitch, width, rows;
    int unit;
  };
  const std::vector<Case> cases = {
      {0, 32, 64, (4096 + 48) * 2, 32, 14336, 16},  // B into a folded gate / up weight
      {4096, 8192, 32, 8192, 8192, 16, 16},         // A rows into a q/k/v block
      {16, 16 * 4096 * 2, 0, 16 * 4096 * 2, 16 * 4096 * 2, 1, 16},  // a stacked A, one row
      {8, 24, 16, 40, 24, 37, 8},
      {4, 12, 12, 20, 12, 51, 4},
      {2, 18, 6, 34, 14, 29, 2},
      {1, 33, 3, 45, 31, 17, 1},
      {0, 16, 0, 16, 0, 9, 16},    // width 0: nothing
      {6, 100, 2, 100, 98, 0, 2},  // no rows: nothing
  };
  int64_t sbytes = 0, dbytes = 0;
  std::vector<int64_t> sbase, dbase;
  for (const Case& c : cases) {  // each copy its own regions, 256-byte aligned bases
    sbase.push_back(sbytes);
    dbase.push_back(dbytes);
    sbytes += (c.soff + std::max<int64_t>(c.rows, 1) * c.spitch + 255) / 256 * 256;
    dbytes += (c.doff + std::max<int64_t>(c.rows, 1) * c.dpitch + 255) / 256 * 256;
  }
  std::vector<uint8_t> hs(size_t(sbytes), 0), hd(size_t(dbytes), 0);
  for (auto& b : hs) b = uint8_t(r.integer(0, 255));
  for (auto& b : hd) b = uint8_t(r.integer(0, 255));
  Dev<uint8_t> ds(static_cast<size_t>(sbytes)), dd(static_cast<size_t>(dbytes));
  CT_CUDA(cudaMemcpy(ds.p, hs.data(), hs.size(), cudaMemcpyHostToDevice));
  CT_CUDA(cudaMemcpy(dd.p, hd.data(), hd.size(), cudaMemcpyHostToDevice));
  std::vector<cuda::Copy2D> table;
  bool units_ok = true;
  std::string units;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    cuda::Copy2D k{
        ds.p + sbase[i] + c.soff, dd.p + dbase[i] + c.doff, c.spitch, c.dpitch, c.width, c.rows};
    units += " " + std::to_string(cuda::copy2d_unit(k));
    units_ok = units_ok && cuda::copy2d_unit(k) == c.unit;
    table.push_back(k);
    for (int64_t row = 0; row < c.rows; ++row)  // the twin
      std::memcpy(hd.data() + dbase[i] + c.doff + row * c.dpitch,
                  hs.data() + sbase[i] + c.soff + row * c.spitch, size_t(c.width));
  }
  ct::report_bool("copy2d", "copy2d_unit: 16 16 16 8 4 2 1 16 2", units_ok, units);
  Dev<cuda::Copy2D> dt(table.size());
  CT_CUDA(
      cudaMemcpy(dt.p, table.data(), table.size() * sizeof(cuda::Copy2D), cudaMemcpyHostToDevice));
  check(cuda::copy2d_batched(dt.p, int(table.size()), 0), "copy2d_batched");
  check(cuda::copy2d_batched(dt.p, 0, 0), "copy2d_batched with no copies");
  CT_CUDA(cudaDeviceSynchronize());
  std::vector<uint8_t> got(hd.size());
  CT_CUDA(cudaMemcpy(got.data(), dd.p, got.size(), cudaMemcpyDeviceToHost));
  int64_t differ = 0;
  for (size_t i = 0; i < got.size(); ++i) differ += got[i] != hd[i];
  ct::report("copy2d",
             "copy2d_batched: " + std::to_string(table.size()) +
                 " copies against the host's, every destination byte",
             double(differ) / double(got.size()), 0.0);
  ct::report_bool("copy2d", "copy2d_batched refuses a negative count and kMaxCopies + 1",
                  cuda::copy2d_batched(dt.p, -1, 0) == cudaErrorInvalidValue &&
                      cuda::copy2d_batched(dt.p, cuda::kMaxCopies + 1, 0) == cudaErrorInvalidValue,
                  "");
}

// ---- vectorized element-wise kernels against the scalar ones, bit for bit ----------------------
// swiglu, rmsnorm and rope launch a vectorized kernel where *_is_vectorized() holds and the scalar
// kernel otherwise; both must give the same bits (the same arithmetic per element). Each case
// runs the launcher and the *_scalar entry on the same fresh inputs into separate poisoned
// outputs; err is the fraction of elements whose bits differ (tol 0), and the path the launcher
// takes is checked against the one the case expects (a 16-byte-misaligned offset, a row or head
// size off the vector width: scalar). At Mistral-7B shapes the two kernels are also timed.

// Fast reproducible fill (splitmix64): the 117 M-element SwiGLU buffers in well under a second.
struct Fill {
  uint64_t s;
  explicit Fill(uint64_t seed) : s(seed) {}
  uint64_t bits() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // uniform in (-scale, scale), cubed so that small magnitudes are common as well
  float value(float scale) {
    float u = float(int64_t(bits() >> 40) - (int64_t(1) << 23)) / float(1 << 23);
    return scale * u * u * u;
  }
};
template <class T>
void fill_dev(Dev<T>& d, size_t offset, size_t n, Fill& f, float scale) {
  std::vector<T> h(n);
  for (auto& x : h) {
    float v = f.value(scale);
    if constexpr (std::is_same_v<T, float>)
      x = v;
    else if constexpr (std::is_same_v<T, bf>)
      x = __float2bfloat16_rn(v);
    else
      x = __float2half_rn(v);
  }
  CT_CUDA(cudaMemcpy(d.p + offset, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
}
template <class T>
void copy_dev(Dev<T>& dst, const Dev<T>& src) {
  CT_CUDA(cudaMemcpy(dst.p, src.p, src.n * sizeof(T), cudaMemcpyDeviceToDevice));
}
void check_path(const char* suite, const std::string& tag, bool vectorized, bool want) {
  ct::report_bool(suite, "path " + tag, vectorized == want,
                  std::string(vectorized ? "vectorized" : "scalar") +
                      (want ? " (want vectorized)" : " (want scalar)"));
}
// Milliseconds per call of fn (best of 3 runs of 10 calls after a warm-up call).
template <class Fn>
double time_ms(Fn fn) {
  cudaEvent_t a, b;
  CT_CUDA(cudaEventCreate(&a));
  CT_CUDA(cudaEventCreate(&b));
  check(fn(), "timed call");
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    CT_CUDA(cudaEventRecord(a));
    for (int i = 0; i < 10; ++i) fn();
    CT_CUDA(cudaEventRecord(b));
    CT_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    CT_CUDA(cudaEventElapsedTime(&ms, a, b));
    best = std::min(best, double(ms) / 10);
  }
  check(cudaGetLastError(), "timed calls");
  CT_CUDA(cudaEventDestroy(a));
  CT_CUDA(cudaEventDestroy(b));
  return best;
}
// bytes: what one call must move at least; the floor is that at 4.3 TB/s (H200 copy bandwidth).
template <class Vec, class Sca>
void report_time(const char* suite, const std::string& name, double bytes, Vec vec, Sca sca) {
  double tv = time_ms(vec), ts = time_ms(sca);
  std::printf("[%s] timing %-50s vectorized %.4f ms  scalar %.4f ms  floor %.4f ms (%.0f MB)\n",
              suite, name.c_str(), tv, ts, bytes / 4.3e12 * 1e3, bytes * 1e-6);
  std::fflush(stdout);
}

// off: element offset of every buffer (0 keeps cudaMalloc's 256-byte alignment; 1 breaks it).
void vec_swiglu(uint64_t seed, int64_t n, int64_t off, bool want_vector, bool timing) {
  const size_t N = size_t(n + off), o = size_t(off), m = size_t(n);
  Fill f(seed);
  Dev<bf> g(N), u(N), h_v(N), h_s(N), dg_v(N), du_v(N), dg_s(N), du_s(N);
  Dev<float> dh(N);
  fill_dev(g, o, m, f, 8.f);
  fill_dev(u, o, m, f, 3.f);
  fill_dev(dh, o, m, f, 2.f);
  for (auto* d : {&h_v, &h_s, &dg_v, &du_v, &dg_s, &du_s}) d->poison();
  std::string tag = "n=" + std::to_string(n) + " offset=" + std::to_string(off);
  check_path("swiglu", "forward " + tag,
             cuda::swiglu_forward_is_vectorized(g.p + o, u.p + o, h_v.p + o), want_vector);
  check_path(
      "swiglu", "backward " + tag,
      cuda::swiglu_backward_is_vectorized(dh.p + o, g.p + o, u.p + o, dg_v.p + o, du_v.p + o),
      want_vector);
  check(cuda::swiglu_forward(g.p + o, u.p + o, h_v.p + o, n, 0), "swiglu_forward");
  check(cuda::swiglu_forward_scalar(g.p + o, u.p + o, h_s.p + o, n, 0), "swiglu_forward_scalar");
  ct::report("swiglu", "vectorized = scalar forward h " + tag, bit_diff(h_v, h_s, o, m), 0);
  check(cuda::swiglu_backward(dh.p + o, g.p + o, u.p + o, dg_v.p + o, du_v.p + o, n, 0),
        "swiglu_backward");
  check(cuda::swiglu_backward_scalar(dh.p + o, g.p + o, u.p + o, dg_s.p + o, du_s.p + o, n, 0),
        "swiglu_backward_scalar");
  ct::report("swiglu", "vectorized = scalar backward dgate " + tag, bit_diff(dg_v, dg_s, o, m), 0);
  ct::report("swiglu", "vectorized = scalar backward dup " + tag, bit_diff(du_v, du_s, o, m), 0);
  if (timing) {
    const double e = double(n);
    report_time(
        "swiglu", "forward " + tag, e * 6,
        [&] { return cuda::swiglu_forward(g.p + o, u.p + o, h_v.p + o, n, 0); },
        [&] { return cuda::swiglu_forward_scalar(g.p + o, u.p + o, h_s.p + o, n, 0); });
    report_time(
        "swiglu", "backward " + tag, e * 12,
        [&] {
          return cuda::swiglu_backward(dh.p + o, g.p + o, u.p + o, dg_v.p + o, du_v.p + o, n, 0);
        },
        [&] {
          return cuda::swiglu_backward_scalar(dh.p + o, g.p + o, u.p + o, dg_s.p + o, du_s.p + o, n,
                                              0);
        });
  }
  // in place, as the engine runs it (dgate = gate, dup = up)
  check(cuda::swiglu_backward(dh.p + o, g.p + o, u.p + o, g.p + o, u.p + o, n, 0),
        "swiglu_backward in place");
  ct::report("swiglu", "vectorized in place = scalar dgate " + tag, bit_diff(g, dg_s, o, m), 0);
  ct::report("swiglu", "vectorized in place = scalar dup " + tag, bit_diff(u, du_s, o, m), 0);
}

// The SwiGLU backward with down's LoRA input gradient folded in (swiglu_backward_lora): its
// dgate and dup must equal, bit for bit, swiglu_backward_scalar run on dh + s t A formed on the
// host with the kernel's own order (fmaf over k from 0, then fmaf(s, sum, dh)); the vectorized
// and scalar kernels alike, in place too; and lie within bf16 rounding of a double reference.
// want_vec: the path the launcher should take.
void swiglu_lora(uint64_t seed, int64_t tokens, int64_t I, int r, int64_t ldt, bool want_vec,
                 bool timing) {
  const size_t m = size_t(tokens * I);
  Fill f(seed);
  Dev<bf> g(m), u(m), g2(m), u2(m), dg_v(m), du_v(m), dg_s(m), du_s(m), dg_r(m), du_r(m),
      t(size_t(tokens * ldt)), A(size_t(r) * size_t(I));
  Dev<float> dh(m), dh2(m);
  fill_dev(g, 0, m, f, 8.f);
  fill_dev(u, 0, m, f, 3.f);
  fill_dev(dh, 0, m, f, 2.f);
  fill_dev(t, 0, t.n, f, 1.f);
  fill_dev(A, 0, A.n, f, 0.1f);
  for (auto* d : {&dg_v, &du_v, &dg_s, &du_s, &dg_r, &du_r}) d->poison();
  const float sc = 2.f;
  const std::string tag = "tokens=" + std::to_string(tokens) + " I=" + std::to_string(I) +
                          " r=" + std::to_string(r) + " ldt=" + std::to_string(ldt);
  check_path("swiglu", "backward with LoRA dX " + tag,
             cuda::swiglu_backward_lora_is_vectorized(dh.p, A.p, r, g.p, u.p, dg_v.p, du_v.p, I),
             want_vec);
  check(cuda::swiglu_backward_lora(dh.p, t.p, ldt, A.p, r, sc, g.p, u.p, dg_v.p, du_v.p, tokens, I,
                                   0),
        "swiglu_backward_lora");
  check(cuda::swiglu_backward_lora_scalar(dh.p, t.p, ldt, A.p, r, sc, g.p, u.p, dg_s.p, du_s.p,
                                          tokens, I, 0),
        "swiglu_backward_lora_scalar");
  // the host's dh + s t A, in the kernels' order, through the plain scalar backward
  auto host_bf = [](const Dev<bf>& d) {
    std::vector<bf> h(d.n);
    CT_CUDA(cudaMemcpy(h.data(), d.p, d.n * sizeof(bf), cudaMemcpyDeviceToHost));
    std::vector<float> out(d.n);
    for (size_t i = 0; i < d.n; ++i) out[i] = __bfloat162float(h[i]);
    return out;
  };
  const std::vector<float> th = host_bf(t), ah = host_bf(A), gh = host_bf(g), uh = host_bf(u);
  std::vector<float> dhh(m), dh2h(m);
  CT_CUDA(cudaMemcpy(dhh.data(), dh.p, m * sizeof(float), cudaMemcpyDeviceToHost));
  std::vector<float> ref_dg(m), ref_du(m);
  for (int64_t i = 0; i < tokens; ++i)
    for (int64_t j = 0; j < I; ++j) {
      float acc = 0.f;
      double accd = 0;
      for (int k = 0; k < r; ++k) {
        acc = std::fmaf(th[size_t(i * ldt + k)], ah[size_t(k * I + j)], acc);
        accd += double(th[size_t(i * ldt + k)]) * double(ah[size_t(k * I + j)]);
      }
      const size_t e = size_t(i * I + j);
      dh2h[e] = std::fmaf(sc, acc, dhh[e]);
      const double d = double(dhh[e]) + double(sc) * accd, a = gh[e], b = uh[e];
      const double sg = 1.0 / (1.0 + std::exp(-a));
      ref_dg[e] = float(d * b * sg * (1.0 + a * (1.0 - sg)));
      ref_du[e] = float(d * a * sg);
    }
  CT_CUDA(cudaMemcpy(dh2.p, dh2h.data(), m * sizeof(float), cudaMemcpyHostToDevice));
  check(cuda::swiglu_backward_scalar(dh2.p, g.p, u.p, dg_r.p, du_r.p, int64_t(m), 0),
        "swiglu_backward_scalar on the folded dh");
  ct::report("swiglu", "with LoRA dX = backward of dh + s t A, dgate " + tag,
             bit_diff(dg_v, dg_r, 0, m), 0);
  ct::report("swiglu", "with LoRA dX = backward of dh + s t A, dup " + tag,
             bit_diff(du_v, du_r, 0, m), 0);
  ct::report("swiglu", "with LoRA dX vectorized = scalar dgate " + tag, bit_diff(dg_v, dg_s, 0, m),
             0);
  ct::report("swiglu", "with LoRA dX vectorized = scalar dup " + tag, bit_diff(du_v, du_s, 0, m),
             0);
  ct::report("swiglu", "with LoRA dX vs double, dgate " + tag, ct::rel_err(host_bf(dg_v), ref_dg),
             1e-2);
  ct::report("swiglu", "with LoRA dX vs double, dup " + tag, ct::rel_err(host_bf(du_v), ref_du),
             1e-2);
  // in place, as the engine runs it (dgate = gate, dup = up)
  copy_dev(g2, g);
  copy_dev(u2, u);
  check(
      cuda::swiglu_backward_lora(dh.p, t.p, ldt, A.p, r, sc, g2.p, u2.p, g2.p, u2.p, tokens, I, 0),
      "swiglu_backward_lora in place");
  ct::report("swiglu", "with LoRA dX in place = out of place, dgate " + tag,
             bit_diff(g2, dg_v, 0, m), 0);
  ct::report("swiglu", "with LoRA dX in place = out of place, dup " + tag, bit_diff(u2, du_v, 0, m),
             0);
  if (timing)  // the fused kernel against the plain backward (what the fold adds to it)
    report_time(
        "swiglu", "backward with LoRA dX (vectorized) vs plain (scalar column) " + tag,
        double(m) * 12,
        [&] {
          return cuda::swiglu_backward_lora(dh.p, t.p, ldt, A.p, r, sc, g.p, u.p, dg_v.p, du_v.p,
                                            tokens, I, 0);
        },
        [&] { return cuda::swiglu_backward(dh.p, g.p, u.p, dg_s.p, du_s.p, int64_t(m), 0); });
}

// e4m3 byte -> float on the host
float e4m3_value(uint8_t b) {
  __nv_fp8_e4m3 v;
  v.__x = b;
  return float(v);
}

// RMSNorm's e4m3 residue (Lo8, the q/k residue GEMMs' operand): the vectorized and scalar
// kernels write the same bytes; each byte, divided by the scale, is the bf16 residue the same
// kernel writes (y_lo) within e4m3's rounding (2^-4 relative, 2^-10 / scale absolute below its
// normal range) and bf16's (2^-9 relative); nothing saturates with the engine's scale (from the
// bound 2^-8 sqrt(d) max |w|); columns past d of a wider row stay untouched.
void rmsnorm_lo8(uint64_t seed, int64_t n, int64_t d, int64_t ld8, float wscale, bool want_vec) {
  Fill f(seed);
  Dev<float> x(size_t(n * d)), rstd(static_cast<size_t>(n));
  Dev<bf> w(static_cast<size_t>(d)), y(size_t(n * d)), lo_v(size_t(n * d)), lo_s(size_t(n * d));
  Dev<uint8_t> l8_v(size_t(n * ld8)), l8_s(size_t(n * ld8));
  fill_dev(x, 0, x.n, f, 4.f);
  fill_dev(w, 0, w.n, f, wscale);
  l8_v.zero();
  l8_s.zero();
  std::vector<bf> wh(static_cast<size_t>(d));
  CT_CUDA(cudaMemcpy(wh.data(), w.p, size_t(d) * sizeof(bf), cudaMemcpyDeviceToHost));
  float wmax = 0.f;
  for (const bf& v : wh) wmax = std::max(wmax, std::fabs(__bfloat162float(v)));
  const float sc = cuda::e4m3_pow2_scale(std::ldexp(std::sqrt(float(d)) * wmax, -8));
  const std::string tag = "n=" + std::to_string(n) + " d=" + std::to_string(d) +
                          " ld=" + std::to_string(ld8) + " scale=" + std::to_string(sc);
  const cuda::Lo8 v8{l8_v.p, sc, ld8}, s8{l8_s.p, sc, ld8};
  check_path("rmsnorm", "forward with e4m3 residue " + tag,
             cuda::rmsnorm_forward_is_vectorized(x.p, w.p, y.p, d, lo_v.p, d, v8), want_vec);
  check(cuda::rmsnorm_forward(x.p, w.p, y.p, rstd.p, n, d, 1e-5f, 0, lo_v.p, d, v8),
        "rmsnorm_forward with Lo8");
  check(cuda::rmsnorm_forward_scalar(x.p, w.p, y.p, rstd.p, n, d, 1e-5f, 0, lo_s.p, d, s8),
        "rmsnorm_forward_scalar with Lo8");
  std::vector<uint8_t> hv(l8_v.n), hs(l8_s.n);
  CT_CUDA(cudaMemcpy(hv.data(), l8_v.p, hv.size(), cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hs.data(), l8_s.p, hs.size(), cudaMemcpyDeviceToHost));
  std::vector<bf> lo(size_t(n * d));
  CT_CUDA(cudaMemcpy(lo.data(), lo_v.p, lo.size() * sizeof(bf), cudaMemcpyDeviceToHost));
  size_t differ = 0, outside = 0;
  double worst = 0, largest = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < ld8; ++j) {
      const size_t k = size_t(t * ld8 + j);
      differ += hv[k] != hs[k];
      if (j >= d) {
        outside += hv[k] != 0;
        continue;
      }
      const double got = double(e4m3_value(hv[k])) / sc;
      const double want = __bfloat162float(lo[size_t(t * d + j)]);
      const double bound = std::fabs(want) * (0x1p-4 + 0x1p-8) + 0x1p-10 / sc;
      worst = ct::worst_of(worst, std::fabs(got - want) / bound);
      largest = ct::worst_of(largest, double(std::fabs(e4m3_value(hv[k]))));
    }
  ct::report("rmsnorm", "e4m3 residue vectorized = scalar " + tag,
             double(differ) / double(hv.size()), 0);
  ct::report("rmsnorm", "e4m3 residue / scale vs the bf16 residue (in units of its bound) " + tag,
             worst, 1.0);
  ct::report("rmsnorm", "e4m3 residue below saturation (largest |byte value|) " + tag, largest,
             447.0);
  ct::report("rmsnorm", "e4m3 residue leaves columns past d alone " + tag, double(outside), 0.0);
}

// RMSNorm's fp16 copy of its output (Y16, the q/k GEMMs' operand): the vectorized and scalar
// kernels write the same bits; each value is the fp16 rounding of the normed value, checked
// against float64 from the same inputs within fp16's half ulp (2^-11 relative) plus fp32's
// arithmetic (a few 2^-24); the bf16 output is unchanged by it; columns past d stay untouched.
void rmsnorm_y16(uint64_t seed, int64_t n, int64_t d, int64_t ld16, float wscale, bool want_vec) {
  Fill f(seed);
  Dev<float> x(size_t(n * d)), rstd(static_cast<size_t>(n));
  Dev<bf> w(static_cast<size_t>(d)), y(size_t(n * d)), y_s(size_t(n * d)), y_plain(size_t(n * d));
  Dev<__half> v16(size_t(n * ld16)), s16(size_t(n * ld16));
  fill_dev(x, 0, x.n, f, 4.f);
  fill_dev(w, 0, w.n, f, wscale);
  v16.zero();
  s16.zero();
  const std::string tag =
      "n=" + std::to_string(n) + " d=" + std::to_string(d) + " ld=" + std::to_string(ld16);
  const cuda::Y16 vy{v16.p, ld16}, sy{s16.p, ld16};
  check_path("rmsnorm", "forward with fp16 copy " + tag,
             cuda::rmsnorm_forward_is_vectorized(x.p, w.p, y.p, d, nullptr, d, {}, vy), want_vec);
  check(cuda::rmsnorm_forward(x.p, w.p, y_plain.p, rstd.p, n, d, 1e-5f, 0), "rmsnorm_forward");
  check(cuda::rmsnorm_forward(x.p, w.p, y.p, rstd.p, n, d, 1e-5f, 0, nullptr, d, {}, vy),
        "rmsnorm_forward with Y16");
  check(cuda::rmsnorm_forward_scalar(x.p, w.p, y_s.p, rstd.p, n, d, 1e-5f, 0, nullptr, d, {}, sy),
        "rmsnorm_forward_scalar with Y16");
  std::vector<__half> hv(v16.n), hs(s16.n);
  CT_CUDA(cudaMemcpy(hv.data(), v16.p, hv.size() * 2, cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hs.data(), s16.p, hs.size() * 2, cudaMemcpyDeviceToHost));
  const std::vector<float> xh = ct::down(x), wh = ct::down_bf16(w);
  size_t differ = 0, outside = 0;
  double worst = 0;
  for (int64_t t = 0; t < n; ++t) {
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += double(xh[size_t(t * d + j)]) * xh[size_t(t * d + j)];
    const double r = 1.0 / std::sqrt(ss / double(d) + 1e-5);
    for (int64_t j = 0; j < ld16; ++j) {
      const size_t k = size_t(t * ld16 + j);
      differ += std::memcmp(&hv[k], &hs[k], 2) != 0;
      const double got = __half2float(hv[k]);
      if (j >= d) {
        outside += got != 0.0;
        continue;
      }
      const double want = double(xh[size_t(t * d + j)]) * r * wh[size_t(j)];
      worst = ct::worst_of(
          worst, std::fabs(got - want) / (std::fabs(want) * (0x1p-11 + 0x1p-20) + 0x1p-25));
    }
  }
  ct::report("rmsnorm", "fp16 copy vectorized = scalar " + tag, double(differ), 0);
  ct::report("rmsnorm", "fp16 copy vs float64 (in units of fp16's half ulp) " + tag, worst, 1.0);
  ct::report("rmsnorm", "fp16 copy leaves columns past d alone " + tag, double(outside), 0);
  ct::report("rmsnorm", "bf16 output the same with the fp16 copy " + tag,
             bit_diff(y, y_plain, 0, y.n), 0);
  ct::report("rmsnorm", "bf16 output the same with the fp16 copy, scalar " + tag,
             bit_diff(y_s, y_plain, 0, y.n), 0);
}

// bf16_to_f16_2d: every value of the [rows, cols] block converted as the host converts it (the
// bf16 value, exact in fp32, rounded to the nearest fp16), the vectorized and scalar kernels the
// same bits, nothing written past cols of a row; values past fp16's range become infinite, tiny
// ones subnormal.
void bf16_to_f16_case(uint64_t seed, int64_t rows, int64_t cols, int64_t lds, int64_t ldd,
                      float scale, bool want_vec) {
  Fill f(seed);
  Dev<bf> src(size_t(rows * lds));
  Dev<__half> dv(size_t(rows * ldd)), ds(size_t(rows * ldd));
  fill_dev(src, 0, src.n, f, scale);
  dv.zero();
  ds.zero();
  const std::string tag = "rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                          " lds=" + std::to_string(lds) + " ldd=" + std::to_string(ldd);
  check_path("convert", "bf16_to_f16_2d " + tag,
             cuda::bf16_to_f16_2d_is_vectorized(src.p, lds, dv.p, ldd, cols), want_vec);
  check(cuda::bf16_to_f16_2d(src.p, lds, dv.p, ldd, rows, cols, 0), "bf16_to_f16_2d");
  check(cuda::bf16_to_f16_2d_scalar(src.p, lds, ds.p, ldd, rows, cols, 0), "bf16_to_f16_2d_scalar");
  std::vector<bf> sh(src.n);
  std::vector<__half> hv(dv.n), hs(ds.n);
  CT_CUDA(cudaMemcpy(sh.data(), src.p, sh.size() * 2, cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hv.data(), dv.p, hv.size() * 2, cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hs.data(), ds.p, hs.size() * 2, cudaMemcpyDeviceToHost));
  size_t wrong = 0, differ = 0, outside = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < ldd; ++j) {
      const size_t k = size_t(i * ldd + j);
      differ += std::memcmp(&hv[k], &hs[k], 2) != 0;
      if (j >= cols) {
        outside += __half2float(hv[k]) != 0.f;
        continue;
      }
      const __half want = __float2half_rn(__bfloat162float(sh[size_t(i * lds + j)]));
      wrong += std::memcmp(&hv[k], &want, 2) != 0;
    }
  ct::report("convert", "bf16_to_f16_2d as the host rounds " + tag, double(wrong), 0);
  ct::report("convert", "bf16_to_f16_2d vectorized = scalar " + tag, double(differ), 0);
  ct::report("convert", "bf16_to_f16_2d leaves columns past cols alone " + tag, double(outside), 0);
}

// bf16_copy_2d: every value of the [rows, cols] block as the host computes it (bf16 of scale
// times the bf16 value, in fp32), the vectorized and scalar kernels the same bits, nothing written
// past cols of a row; scale 1 copies and 2 scales exactly.
void bf16_copy_case(uint64_t seed, int64_t rows, int64_t cols, int64_t lds, int64_t ldd,
                    float scale, bool want_vec) {
  Fill f(seed);
  Dev<bf> src(size_t(rows * lds)), dv(size_t(rows * ldd)), ds(size_t(rows * ldd));
  fill_dev(src, 0, src.n, f, 3.f);
  dv.zero();
  ds.zero();
  const std::string tag = "rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                          " lds=" + std::to_string(lds) + " ldd=" + std::to_string(ldd) +
                          " scale=" + std::to_string(scale);
  check_path("convert", "bf16_copy_2d " + tag,
             cuda::bf16_copy_2d_is_vectorized(src.p, lds, dv.p, ldd, cols), want_vec);
  check(cuda::bf16_copy_2d(src.p, lds, dv.p, ldd, rows, cols, scale, 0), "bf16_copy_2d");
  check(cuda::bf16_copy_2d_scalar(src.p, lds, ds.p, ldd, rows, cols, scale, 0),
        "bf16_copy_2d_scalar");
  std::vector<bf> sh(src.n), hv(dv.n), hs(ds.n);
  CT_CUDA(cudaMemcpy(sh.data(), src.p, sh.size() * 2, cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hv.data(), dv.p, hv.size() * 2, cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hs.data(), ds.p, hs.size() * 2, cudaMemcpyDeviceToHost));
  size_t wrong = 0, differ = 0, outside = 0, moved = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < ldd; ++j) {
      const size_t k = size_t(i * ldd + j);
      differ += std::memcmp(&hv[k], &hs[k], 2) != 0;
      if (j >= cols) {
        outside += __bfloat162float(hv[k]) != 0.f;
        continue;
      }
      const float x = __bfloat162float(sh[size_t(i * lds + j)]);
      const bf want = __float2bfloat16_rn(scale * x);
      wrong += std::memcmp(&hv[k], &want, 2) != 0;
      moved += scale == 1.f && std::memcmp(&hv[k], &sh[size_t(i * lds + j)], 2) != 0;
    }
  ct::report("convert", "bf16_copy_2d as the host computes it " + tag, double(wrong), 0);
  ct::report("convert", "bf16_copy_2d vectorized = scalar " + tag, double(differ), 0);
  ct::report("convert", "bf16_copy_2d leaves columns past cols alone " + tag, double(outside), 0);
  ct::report("convert", "bf16_copy_2d with scale 1 copies the bits " + tag, double(moved), 0);
}

// f32_to_bf16 (8 values a thread where x and y are 16-byte aligned) against the host's rounding
// and against f32_to_bf16_scalar, bit for bit: n values from x + xoff into y + yoff, with
// rounding ties, subnormals, infinities and NaN among the random values; y's values outside the
// n written stay as they were.
void f32_to_bf16_case(uint64_t seed, int64_t n, int64_t xoff, int64_t yoff) {
  ct::Rng r(seed);
  std::vector<float> x(static_cast<size_t>(n + xoff));
  for (size_t i = 0; i < x.size(); ++i) {
    float v = r.normal(3.f);
    switch (i % 11) {
      case 3: {  // a tie: the bf16 value's low bit even or odd, the 16 bits below exactly half
        uint32_t u;
        std::memcpy(&u, &v, 4);
        u = (u & 0xFFFF0000u) | 0x8000u;
        std::memcpy(&v, &u, 4);
        break;
      }
      case 5:
        v *= 1e-39f;  // subnormal
        break;
      case 7:
        v = i % 2 ? INFINITY : -INFINITY;
        break;
      case 9:
        v = i % 4 == 1 ? NAN : 3.4e38f;  // NaN; rounds past bf16's largest value
        break;
      default:
        break;
    }
    x[i] = v;
  }
  Dev<float> dx(x.size());
  Dev<bf> dy(static_cast<size_t>(n + yoff + 8)), ds(dy.n);
  ct::up(dx, x);
  dy.poison();
  ds.poison();
  check(cuda::f32_to_bf16(dx.p + xoff, dy.p + yoff, n, 0), "f32_to_bf16");
  check(cuda::f32_to_bf16_scalar(dx.p + xoff, ds.p + yoff, n, 0), "f32_to_bf16_scalar");
  std::vector<uint16_t> hy(dy.n), hs(ds.n);
  CT_CUDA(cudaMemcpy(hy.data(), dy.p, hy.size() * 2, cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hs.data(), ds.p, hs.size() * 2, cudaMemcpyDeviceToHost));
  size_t wrong = 0, differ = 0, outside = 0;
  for (size_t k = 0; k < hy.size(); ++k) {
    differ += hy[k] != hs[k];
    const int64_t i = int64_t(k) - yoff;
    if (i < 0 || i >= n) {
      outside += hy[k] != 0xFFFFu;
      continue;
    }
    const float v = x[static_cast<size_t>(i + xoff)];
    if (std::isnan(v))  // a NaN stays a NaN (which one is the device's choice)
      wrong += (hy[k] & 0x7F80u) != 0x7F80u || (hy[k] & 0x7Fu) == 0;
    else
      wrong += hy[k] != ct::to_bf16_bits(v);
  }
  const std::string tag =
      "n=" + std::to_string(n) + " x+" + std::to_string(xoff) + " y+" + std::to_string(yoff);
  ct::report("convert", "f32_to_bf16 as the host rounds " + tag, double(wrong), 0);
  ct::report("convert", "f32_to_bf16 = f32_to_bf16_scalar " + tag, double(differ), 0);
  ct::report("convert", "f32_to_bf16 writes only its n values " + tag, double(outside), 0);
}

// bf16_to_f32 (8 values a thread where x and y are 16-byte aligned) against the host's exact
// widening and bf16_to_f32_scalar, bit for bit (every 16-bit pattern among the inputs: subnormals
// stay, a NaN stays a NaN), y's values outside the n written untouched.
void bf16_to_f32_case(uint64_t seed, int64_t n, int64_t xoff, int64_t yoff) {
  ct::Rng r(seed);
  std::vector<uint16_t> x(static_cast<size_t>(n + xoff));
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = i < 65536 ? uint16_t(i * 40503u) : uint16_t(r.integer(0, 65535));
  Dev<bf> dx(x.size());
  Dev<float> dy(static_cast<size_t>(n + yoff + 8)), ds(dy.n);
  CT_CUDA(cudaMemcpy(dx.p, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  dy.poison();
  ds.poison();
  check(cuda::bf16_to_f32(dx.p + xoff, dy.p + yoff, n, 0), "bf16_to_f32");
  check(cuda::bf16_to_f32_scalar(dx.p + xoff, ds.p + yoff, n, 0), "bf16_to_f32_scalar");
  std::vector<uint32_t> hy(dy.n), hs(ds.n);
  CT_CUDA(cudaMemcpy(hy.data(), dy.p, hy.size() * 4, cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hs.data(), ds.p, hs.size() * 4, cudaMemcpyDeviceToHost));
  auto is_nan = [](uint32_t u) { return (u & 0x7F800000u) == 0x7F800000u && (u & 0x7FFFFFu); };
  size_t wrong = 0, differ = 0, outside = 0;
  for (size_t k = 0; k < hy.size(); ++k) {
    differ += hy[k] != hs[k] && !(is_nan(hy[k]) && is_nan(hs[k]));
    const int64_t i = int64_t(k) - yoff;
    if (i < 0 || i >= n) {
      outside += hy[k] != 0xFFFFFFFFu;
      continue;
    }
    const uint32_t want = uint32_t(x[static_cast<size_t>(i + xoff)]) << 16;
    wrong += is_nan(want) ? !is_nan(hy[k]) : hy[k] != want;  // a NaN stays a NaN
  }
  const std::string tag =
      "n=" + std::to_string(n) + " x+" + std::to_string(xoff) + " y+" + std::to_string(yoff);
  ct::report("convert", "bf16_to_f32 widens exactly " + tag, double(wrong), 0);
  ct::report("convert", "bf16_to_f32 = bf16_to_f32_scalar " + tag, double(differ), 0);
  ct::report("convert", "bf16_to_f32 writes only its n values " + tag, double(outside), 0);
}

// e4m3_quantize: the bytes of e4m3(w * S) with S = e4m3_pow2_scale(max |w|) computed on the host
// from the same bf16 values (the [rows, cols] block of a matrix with row stride ld), max |w| and
// 1 / S in the two scale floats.
void e4m3_quantize_case(uint64_t seed, int64_t rows, int64_t cols, int64_t ld, float scale,
                        bool want_vec) {
  Fill f(seed);
  Dev<bf> w(size_t(rows * ld));
  Dev<uint8_t> out(size_t(rows * cols));
  Dev<float> scales(cuda::kE4m3InvScale + 1);
  fill_dev(w, 0, w.n, f, scale);
  out.poison();
  scales.poison();
  check_path("fp8", "e4m3_quantize rows=" + std::to_string(rows) + " cols=" + std::to_string(cols),
             cuda::e4m3_quantize_is_vectorized(w.p, cols, ld, out.p), want_vec);
  check(cuda::e4m3_quantize(w.p, rows, cols, ld, out.p, scales.p, 0), "e4m3_quantize");
  std::vector<bf> wh(w.n);
  CT_CUDA(cudaMemcpy(wh.data(), w.p, w.n * sizeof(bf), cudaMemcpyDeviceToHost));
  float amax = 0.f;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      amax = std::max(amax, std::fabs(__bfloat162float(wh[size_t(i * ld + j)])));
  const float s = cuda::e4m3_pow2_scale(amax);
  std::vector<uint8_t> oh(out.n);
  CT_CUDA(cudaMemcpy(oh.data(), out.p, oh.size(), cudaMemcpyDeviceToHost));
  float sh[cuda::kE4m3InvScale + 1];
  CT_CUDA(cudaMemcpy(sh, scales.p, sizeof sh, cudaMemcpyDeviceToHost));
  size_t bad = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const uint8_t want = uint8_t(__nv_cvt_float_to_fp8(
          __bfloat162float(wh[size_t(i * ld + j)]) * s, __NV_SATFINITE, __NV_E4M3));
      bad += oh[size_t(i * cols + j)] != want;
    }
  const std::string tag = "rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                          " ld=" + std::to_string(ld);
  ct::report("fp8", "e4m3_quantize bytes vs host " + tag, double(bad) / double(oh.size()), 0);
  ct::report("fp8", "e4m3_quantize max |w| " + tag, std::fabs(double(sh[0]) - double(amax)), 0);
  ct::report("fp8", "e4m3_quantize 1 / S " + tag,
             std::fabs(double(sh[cuda::kE4m3InvScale]) - 1.0 / double(s)), 0);
  ct::report_bool("fp8", "e4m3_quantize S a power of two with max |w| S in (224, 448] " + tag,
                  amax * s <= 448.f && amax * s > 224.f, std::to_string(amax * s));
}

// The pair pass's products in float64 from host copies: T = dy B [n, r] and D = dy^T xa [O, r],
// with dy the columns [col, col + O) of rows of ldy and xa the columns [xoff, xoff + r) of rows
// of ldxa.
void dy_products_f64(const std::vector<float>& dy, int64_t ldy, int64_t col, int64_t n, int64_t O,
                     const std::vector<float>& B, int r, const std::vector<float>& xa, int64_t ldxa,
                     int64_t xoff, std::vector<double>& T, std::vector<double>& D) {
  T.assign(size_t(n * r), 0.0);
  D.assign(size_t(O * r), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < O; ++o) {
      const double d = dy[size_t(i * ldy + col + o)];
      if (d == 0.0) continue;
      for (int c = 0; c < r; ++c) {
        T[size_t(i * r + c)] += d * double(B[size_t(o * r + c)]);
        D[size_t(o * r + c)] += d * double(xa[size_t(i * ldxa + xoff + c)]);
      }
    }
}

// lora_dy_pair against float64 on the host from the same bf16 values: t = dy B (bf16, in the
// columns [t_off, t_off + r) of rows of ldt) and dB += dy^T xa (onto a random dB); the columns of
// t outside the slice untouched; a second run from the same inputs the same bits. slots: the
// resident blocks the row shares are sized to (-1: this device's, as the engine passes them).
// ldy > 0: dy is the columns [dy_off, dy_off + O) of rows of ldy, the others NaN (a read of
// them would show in every result).
void lora_dy_pair_case(uint64_t seed, int64_t n, int64_t O, int r, int64_t ldxa, int64_t xa_off,
                       int64_t ldt, int64_t t_off, int slots = -1, int64_t ldy = 0,
                       int64_t dy_off = 0) {
  if (slots < 0) slots = cuda::lora_dy_pair_slots(r, 0);
  if (ldy == 0) ldy = O;
  Fill f(seed);
  Dev<bf> dyw(size_t(n * ldy)), B(size_t(O * r)), xa(size_t(n * ldxa)), t(size_t(n * ldt)),
      t2(size_t(n * ldt));
  Dev<float> dB(size_t(O * r)), dB2(size_t(O * r)),
      scratch(cuda::lora_dy_pair_scratch_floats(n, O, r, slots));
  Dev<bf> dy(size_t(n * O));
  fill_dev(dy, 0, dy.n, f, 1.f);
  dyw.poison();
  CT_CUDA(cudaMemcpy2D(dyw.p + dy_off, size_t(ldy) * sizeof(bf), dy.p, size_t(O) * sizeof(bf),
                       size_t(O) * sizeof(bf), size_t(n), cudaMemcpyDeviceToDevice));
  fill_dev(B, 0, B.n, f, 0.5f);
  fill_dev(xa, 0, xa.n, f, 2.f);
  fill_dev(dB, 0, dB.n, f, 1.f);
  CT_CUDA(cudaMemcpy(dB2.p, dB.p, dB.n * sizeof(float), cudaMemcpyDeviceToDevice));
  t.poison();
  t2.poison();
  scratch.poison();
  const std::vector<float> dB0 = ct::down(dB);
  const std::string tag = "n=" + std::to_string(n) + " O=" + std::to_string(O) +
                          " r=" + std::to_string(r) + " ldxa=" + std::to_string(ldxa) +
                          " ldt=" + std::to_string(ldt) + " slots=" + std::to_string(slots) +
                          (ldy != O ? " ldy=" + std::to_string(ldy) : std::string());
  const bool ok = cuda::lora_dy_pair_supported(dyw.p + dy_off, ldy, O, r, B.p, xa.p + xa_off, ldxa);
  ct::report_bool("lora_dy", "lora_dy_pair applies " + tag, ok, "");
  if (!ok) return;
  for (int run = 0; run < 2; ++run) {
    check(cuda::lora_dy_pair(dyw.p + dy_off, ldy, n, O, B.p, r, xa.p + xa_off, ldxa,
                             (run ? t2.p : t.p) + t_off, ldt, run ? dB2.p : dB.p, scratch.p, slots,
                             0),
          "lora_dy_pair");
    CT_CUDA(cudaDeviceSynchronize());
  }
  const std::vector<float> hdy = ct::down_bf16(dy), hB = ct::down_bf16(B), hxa = ct::down_bf16(xa);
  std::vector<double> T, D;
  dy_products_f64(hdy, O, 0, n, O, hB, r, hxa, ldxa, xa_off, T, D);
  const std::vector<float> ht = ct::down_bf16(t), ht2 = ct::down_bf16(t2);
  std::vector<float> got_t(T.size()), want_t(T.size()), want_b(D.size());
  size_t outside = 0, differ = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < ldt; ++c) {
      const size_t k = size_t(i * ldt + c);
      const bool in = c >= t_off && c < t_off + r;
      if (!in) {
        outside += !std::isnan(ht[k]);  // still the poison
        continue;
      }
      got_t[size_t(i * r + c - t_off)] = ht[k];
      want_t[size_t(i * r + c - t_off)] = float(T[size_t(i * r + c - t_off)]);
      differ += std::memcmp(&ht[k], &ht2[k], sizeof(float)) != 0;
    }
  for (size_t k = 0; k < D.size(); ++k) want_b[k] = float(D[k] + double(dB0[k]));
  const std::vector<float> got_b = ct::down(dB), got_b2 = ct::down(dB2);
  for (size_t k = 0; k < got_b.size(); ++k)
    differ += std::memcmp(&got_b[k], &got_b2[k], sizeof(float)) != 0;
  // t is rounded to bf16 (2^-9 relative); dB is fp32 sums of exact bf16 products
  ct::report("lora_dy", "dy B vs float64 " + tag, ct::rel_err(got_t, want_t), 1e-2);
  ct::report("lora_dy", "dLoRA_B (accumulated) vs float64 " + tag, ct::rel_err(got_b, want_b),
             1e-5);
  ct::report("lora_dy", "columns of t outside the slice untouched " + tag, double(outside), 0);
  ct::report("lora_dy", "second run the same bits " + tag, double(differ), 0);
}

// lora_dy_pair_multi over projections whose dy lie side by side in rows of ldy (the engine's
// q, k and v in dqkv_, with xa and t slices of a group): each projection's t the same bits as
// lora_dy_pair gives for it alone, each dB within 1e-5 of float64 (and of the single call: the
// same partials summed over other row shares), a second run the same bits, the columns of t
// outside the slices untouched.
void lora_dy_pair_multi_case(uint64_t seed, int64_t n, std::vector<int64_t> O, int r,
                             int slots = -1) {
  if (slots < 0) slots = cuda::lora_dy_pair_slots(r, 0);
  const int count = int(O.size());
  int64_t ldy = 0;
  for (int64_t o : O) ldy += o;
  ldy += int64_t(count) * r;             // s T's columns, as in dqkv_ (not read)
  const int64_t w = int64_t(count) * r;  // xa's and t's row stride (the group's slices)
  Fill f(seed);
  Dev<bf> dy(size_t(n * ldy)), xa(size_t(n * w)), t(size_t(n * w)), t2(size_t(n * w)),
      t1(size_t(n * w));
  using DevF = std::unique_ptr<Dev<float>>;
  std::vector<std::unique_ptr<Dev<bf>>> B;
  std::vector<DevF> dB, dB2, dB1;
  fill_dev(dy, 0, dy.n, f, 1.f);
  fill_dev(xa, 0, xa.n, f, 2.f);
  for (int k = 0; k < count; ++k) {
    const size_t m = size_t(O[size_t(k)] * r);
    B.push_back(std::make_unique<Dev<bf>>(m));
    fill_dev(*B.back(), 0, m, f, 0.5f);
    dB.push_back(std::make_unique<Dev<float>>(m));
    fill_dev(*dB.back(), 0, m, f, 1.f);
    for (auto* v : {&dB2, &dB1}) {
      v->push_back(std::make_unique<Dev<float>>(m));
      CT_CUDA(cudaMemcpy(v->back()->p, dB.back()->p, m * sizeof(float), cudaMemcpyDeviceToDevice));
    }
  }
  for (auto* x : {&t, &t2, &t1}) x->poison();
  Dev<float> scratch(cuda::lora_dy_pair_multi_scratch_floats(n, O.data(), count, r, slots)),
      scratch1(
          cuda::lora_dy_pair_scratch_floats(n, *std::max_element(O.begin(), O.end()), r, slots));
  std::vector<std::vector<float>> dB0;
  for (auto& x : dB) dB0.push_back(ct::down(*x));
  std::string tag = "n=" + std::to_string(n) + " O=";
  for (int64_t o : O) tag += std::to_string(o) + ",";
  tag += " r=" + std::to_string(r) + " ldy=" + std::to_string(ldy);
  auto projs = [&](bf* tt, std::vector<DevF>& d) {
    std::vector<cuda::LoraDyPairProj> a;
    int64_t col = 0;
    for (int k = 0; k < count; ++k) {
      a.push_back({dy.p + col, O[size_t(k)], B[size_t(k)]->p, xa.p + int64_t(k) * r,
                   tt + int64_t(k) * r, d[size_t(k)]->p});
      col += O[size_t(k)];
    }
    return a;
  };
  const auto a = projs(t.p, dB), a2 = projs(t2.p, dB2), a1 = projs(t1.p, dB1);
  const bool ok = cuda::lora_dy_pair_multi_supported(a.data(), count, ldy, r, w);
  ct::report_bool("lora_dy", "lora_dy_pair_multi applies " + tag, ok, "");
  if (!ok) return;
  check(cuda::lora_dy_pair_multi(a.data(), count, ldy, n, r, w, w, scratch.p, slots, 0),
        "lora_dy_pair_multi");
  check(cuda::lora_dy_pair_multi(a2.data(), count, ldy, n, r, w, w, scratch.p, slots, 0),
        "lora_dy_pair_multi");
  for (int k = 0; k < count; ++k)
    check(cuda::lora_dy_pair(a1[size_t(k)].dy, ldy, n, O[size_t(k)], a1[size_t(k)].B, r,
                             a1[size_t(k)].xa, w, a1[size_t(k)].t, w, a1[size_t(k)].dB, scratch1.p,
                             slots, 0),
          "lora_dy_pair");
  CT_CUDA(cudaDeviceSynchronize());
  const std::vector<float> hdy = ct::down_bf16(dy), hxa = ct::down_bf16(xa), ht = ct::down_bf16(t),
                           ht2 = ct::down_bf16(t2), ht1 = ct::down_bf16(t1);
  size_t t_differ = 0, runs_differ = 0, outside = 0;
  for (size_t i = 0; i < ht.size(); ++i) {
    t_differ += std::memcmp(&ht[i], &ht1[i], sizeof(float)) != 0;
    runs_differ += std::memcmp(&ht[i], &ht2[i], sizeof(float)) != 0;
    outside += std::isnan(ht[i]);  // every column of t is some projection's slice
  }
  double worst_b = 0, worst_b1 = 0, worst_t = 0;
  int64_t col = 0;
  for (int k = 0; k < count; ++k) {
    const int64_t Ok = O[size_t(k)];
    const std::vector<float> hB = ct::down_bf16(*B[size_t(k)]);
    std::vector<double> T, D;
    dy_products_f64(hdy, ldy, col, n, Ok, hB, r, hxa, w, int64_t(k) * r, T, D);
    std::vector<float> got_t(T.size()), want_t(T.size()), want_b(D.size());
    for (int64_t i = 0; i < n; ++i)
      for (int c = 0; c < r; ++c) {
        got_t[size_t(i * r + c)] = ht[size_t(i * w + int64_t(k) * r + c)];
        want_t[size_t(i * r + c)] = float(T[size_t(i * r + c)]);
      }
    for (size_t j = 0; j < D.size(); ++j) want_b[j] = float(D[j] + double(dB0[size_t(k)][j]));
    const std::vector<float> gb = ct::down(*dB[size_t(k)]), gb2 = ct::down(*dB2[size_t(k)]),
                             gb1 = ct::down(*dB1[size_t(k)]);
    for (size_t j = 0; j < gb.size(); ++j)
      runs_differ += std::memcmp(&gb[j], &gb2[j], sizeof(float)) != 0;
    worst_t = std::max(worst_t, ct::rel_err(got_t, want_t));
    worst_b = std::max(worst_b, ct::rel_err(gb, want_b));
    worst_b1 = std::max(worst_b1, ct::rel_err(gb, gb1));
    col += Ok;
  }
  ct::report("lora_dy", "multi: dy B vs float64 " + tag, worst_t, 1e-2);
  ct::report("lora_dy", "multi: dy B the same bits as one projection at a time " + tag,
             double(t_differ), 0);
  ct::report("lora_dy", "multi: dLoRA_B (accumulated) vs float64 " + tag, worst_b, 1e-5);
  ct::report("lora_dy", "multi: dLoRA_B vs one projection at a time " + tag, worst_b1, 1e-5);
  ct::report("lora_dy", "multi: second run the same bits " + tag, double(runs_differ), 0);
  ct::report("lora_dy", "multi: every column of t written " + tag, double(outside), 0);
}

void vec_rmsnorm(uint64_t seed, int64_t n, int64_t d, int64_t off, bool want_fwd, bool want_bwd,
                 bool timing) {
  const size_t N = size_t(n * d + off), o = size_t(off), m = size_t(n * d);
  Fill f(seed);
  Dev<float> x(N), dy(N), dx0(N), rstd_v(static_cast<size_t>(n)), rstd_s(static_cast<size_t>(n)),
      dx_v(N), dx_s(N);
  Dev<bf> w(static_cast<size_t>(d + off)), y_v(N), y_s(N), lo_v(N), lo_s(N), dxb_v(N), dxb_s(N);
  fill_dev(x, o, m, f, 4.f);
  fill_dev(dy, o, m, f, 1.f);
  fill_dev(dx0, o, m, f, 1.f);
  fill_dev(w, o, size_t(d), f, 2.f);
  for (auto* b : {&y_v, &y_s, &lo_v, &lo_s, &dxb_v, &dxb_s}) b->poison();
  rstd_v.poison();
  rstd_s.poison();
  std::string tag =
      "n=" + std::to_string(n) + " d=" + std::to_string(d) + " offset=" + std::to_string(off);
  const float eps = 1e-5f;
  float *xo = x.p + o, *dyo = dy.p + o;
  bf* wo = w.p + o;
  check_path("rmsnorm", "forward " + tag,
             cuda::rmsnorm_forward_is_vectorized(xo, wo, y_v.p + o, d, lo_v.p + o), want_fwd);
  check_path("rmsnorm", "backward " + tag,
             cuda::rmsnorm_backward_is_vectorized(dyo, xo, wo, dx_v.p + o, d, dxb_v.p + o),
             want_bwd);
  // forward with the residue, then without (y only)
  check(cuda::rmsnorm_forward(xo, wo, y_v.p + o, rstd_v.p, n, d, eps, 0, lo_v.p + o),
        "rmsnorm_forward");
  check(cuda::rmsnorm_forward_scalar(xo, wo, y_s.p + o, rstd_s.p, n, d, eps, 0, lo_s.p + o),
        "rmsnorm_forward_scalar");
  ct::report("rmsnorm", "vectorized = scalar forward y " + tag, bit_diff(y_v, y_s, o, m), 0);
  ct::report("rmsnorm", "vectorized = scalar forward y_lo " + tag, bit_diff(lo_v, lo_s, o, m), 0);
  ct::report("rmsnorm", "vectorized = scalar forward rstd " + tag,
             bit_diff(rstd_v, rstd_s, 0, size_t(n)), 0);
  y_v.poison();
  check(cuda::rmsnorm_forward(xo, wo, y_v.p + o, rstd_v.p, n, d, eps, 0), "rmsnorm_forward");
  ct::report("rmsnorm", "vectorized = scalar forward y (no y_lo) " + tag, bit_diff(y_v, y_s, o, m),
             0);
  // backward: plain, then accumulating into dx0 with the bf16 copy (as the engine runs it)
  dx_v.poison();
  dx_s.poison();
  check(cuda::rmsnorm_backward(dyo, xo, wo, rstd_s.p, dx_v.p + o, n, d, false, 0),
        "rmsnorm_backward");
  check(cuda::rmsnorm_backward_scalar(dyo, xo, wo, rstd_s.p, dx_s.p + o, n, d, false, 0),
        "rmsnorm_backward_scalar");
  ct::report("rmsnorm", "vectorized = scalar backward dx " + tag, bit_diff(dx_v, dx_s, o, m), 0);
  copy_dev(dx_v, dx0);
  copy_dev(dx_s, dx0);
  check(cuda::rmsnorm_backward(dyo, xo, wo, rstd_s.p, dx_v.p + o, n, d, true, 0, dxb_v.p + o),
        "rmsnorm_backward accumulate");
  check(
      cuda::rmsnorm_backward_scalar(dyo, xo, wo, rstd_s.p, dx_s.p + o, n, d, true, 0, dxb_s.p + o),
      "rmsnorm_backward_scalar accumulate");
  ct::report("rmsnorm", "vectorized = scalar backward dx accumulate " + tag,
             bit_diff(dx_v, dx_s, o, m), 0);
  ct::report("rmsnorm", "vectorized = scalar backward dx bf16 copy " + tag,
             bit_diff(dxb_v, dxb_s, o, m), 0);
  if (timing) {
    const double e = double(n) * double(d);
    report_time(
        "rmsnorm", "forward (y, y_lo) " + tag, e * 8,
        [&] {
          return cuda::rmsnorm_forward(xo, wo, y_v.p + o, rstd_v.p, n, d, eps, 0, lo_v.p + o);
        },
        [&] {
          return cuda::rmsnorm_forward_scalar(xo, wo, y_s.p + o, rstd_s.p, n, d, eps, 0,
                                              lo_s.p + o);
        });
    report_time(
        "rmsnorm", "forward (y) " + tag, e * 6,
        [&] { return cuda::rmsnorm_forward(xo, wo, y_v.p + o, rstd_v.p, n, d, eps, 0); },
        [&] { return cuda::rmsnorm_forward_scalar(xo, wo, y_s.p + o, rstd_s.p, n, d, eps, 0); });
    report_time(
        "rmsnorm", "backward accumulate + bf16 " + tag, e * 18,
        [&] {
          return cuda::rmsnorm_backward(dyo, xo, wo, rstd_s.p, dx_v.p + o, n, d, true, 0,
                                        dxb_v.p + o);
        },
        [&] {
          return cuda::rmsnorm_backward_scalar(dyo, xo, wo, rstd_s.p, dx_s.p + o, n, d, true, 0,
                                               dxb_s.p + o);
        });
  }
}

// The forward with a row stride ldy > d (the engine's normed inputs keep the LoRA products
// x A^T in columns d .. ldy - 1): each row of y and y_lo equals the contiguous scalar output's row
// bit for bit, on the vectorized path (want_vec) or the scalar one, and the columns past d are
// never written (they stay poisoned).
void strided_rmsnorm(uint64_t seed, int64_t n, int64_t d, int64_t ldy, bool want_vec) {
  const size_t m = size_t(n * d), ms = size_t(n * ldy);
  Fill f(seed);
  Dev<float> x(m), rstd_s(static_cast<size_t>(n)), rstd_v(static_cast<size_t>(n)),
      rstd_q(static_cast<size_t>(n));
  Dev<bf> w(static_cast<size_t>(d)), y_s(m), lo_s(m), y_v(ms), lo_v(ms), y_q(ms), lo_q(ms);
  fill_dev(x, 0, m, f, 4.f);
  fill_dev(w, 0, size_t(d), f, 2.f);
  for (auto* b : {&y_s, &lo_s, &y_v, &lo_v, &y_q, &lo_q}) b->poison();
  const std::string tag =
      "n=" + std::to_string(n) + " d=" + std::to_string(d) + " ldy=" + std::to_string(ldy);
  const float eps = 1e-5f;
  check_path("rmsnorm", "forward strided " + tag,
             cuda::rmsnorm_forward_is_vectorized(x.p, w.p, y_v.p, d, lo_v.p, ldy), want_vec);
  check(cuda::rmsnorm_forward_scalar(x.p, w.p, y_s.p, rstd_s.p, n, d, eps, 0, lo_s.p),
        "rmsnorm_forward_scalar");
  check(cuda::rmsnorm_forward(x.p, w.p, y_v.p, rstd_v.p, n, d, eps, 0, lo_v.p, ldy),
        "rmsnorm_forward strided");
  check(cuda::rmsnorm_forward_scalar(x.p, w.p, y_q.p, rstd_q.p, n, d, eps, 0, lo_q.p, ldy),
        "rmsnorm_forward_scalar strided");
  auto host = [](const Dev<bf>& b) {
    std::vector<uint16_t> h(b.n);
    CT_CUDA(cudaMemcpy(h.data(), b.p, b.n * 2, cudaMemcpyDeviceToHost));
    return h;
  };
  const std::vector<uint16_t> ys = host(y_s), ls = host(lo_s);
  for (const char* which : {"launcher", "scalar"}) {
    const bool launcher = which[0] == 'l';
    const std::vector<uint16_t> yv = host(launcher ? y_v : y_q), lv = host(launcher ? lo_v : lo_q);
    size_t bad = 0, written = 0;
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < d; ++i) {
        bad += yv[size_t(t * ldy + i)] != ys[size_t(t * d + i)];
        bad += lv[size_t(t * ldy + i)] != ls[size_t(t * d + i)];
      }
      for (int64_t i = d; i < ldy; ++i)
        written += (yv[size_t(t * ldy + i)] != 0xFFFF) + (lv[size_t(t * ldy + i)] != 0xFFFF);
    }
    ct::report("rmsnorm", std::string("strided ") + which + " rows = contiguous scalar " + tag,
               double(bad) / double(2 * m), 0);
    ct::report_bool("rmsnorm", std::string("strided ") + which + " leaves columns past d " + tag,
                    written == 0, std::to_string(written) + " written");
  }
  ct::report("rmsnorm", "strided rstd = contiguous " + tag, bit_diff(rstd_v, rstd_s, 0, size_t(n)),
             0);
}

// off_x, off_y: element offsets of the forward's fp32 input and fp16 output and of the
// backward's bf16 gradient (off_x).
void vec_rope(uint64_t seed, int64_t n, int64_t heads, int D, int64_t off_x, int64_t off_y,
              bool want_fwd, bool want_bwd, bool timing) {
  const size_t m = size_t(n * heads * D);
  Fill f(seed);
  Dev<float> x(m + size_t(off_x)), inv(static_cast<size_t>(D / 2));
  Dev<__half> y_v(m + size_t(off_y)), y_s(m + size_t(off_y));
  Dev<bf> g_v(m + size_t(off_x)), g_s(m + size_t(off_x));
  Dev<int32_t> pos(static_cast<size_t>(n));
  fill_dev(x, size_t(off_x), m, f, 40.f);
  fill_dev(g_v, size_t(off_x), m, f, 2.f);
  copy_dev(g_s, g_v);
  std::vector<int32_t> hp(static_cast<size_t>(n));
  for (auto& p : hp) p = int32_t(f.bits() % 8192);
  ct::up(pos, hp);
  ct::up(inv, rope_inv(D, 1e6));
  y_v.poison();
  y_s.poison();
  std::string tag = "n=" + std::to_string(n) + " heads=" + std::to_string(heads) +
                    " D=" + std::to_string(D) + " offsets=" + std::to_string(off_x) + "," +
                    std::to_string(off_y);
  float* xo = x.p + off_x;
  __half* yv = y_v.p + off_y;
  __half* ys = y_s.p + off_y;
  bf* gv = g_v.p + off_x;
  bf* gs = g_s.p + off_x;
  check_path("rope", "forward " + tag, cuda::rope_forward_is_vectorized(xo, yv, D), want_fwd);
  check_path("rope", "backward " + tag, cuda::rope_backward_is_vectorized(gv, D), want_bwd);
  check(cuda::rope_forward(xo, yv, pos.p, inv.p, n, heads, D, 0), "rope_forward");
  check(cuda::rope_forward_scalar(xo, ys, pos.p, inv.p, n, heads, D, 0), "rope_forward_scalar");
  ct::report("rope", "vectorized = scalar forward " + tag, bit_diff(y_v, y_s, size_t(off_y), m), 0);
  check(cuda::rope_backward(gv, pos.p, inv.p, n, heads, D, 0), "rope_backward");
  check(cuda::rope_backward_scalar(gs, pos.p, inv.p, n, heads, D, 0), "rope_backward_scalar");
  ct::report("rope", "vectorized = scalar backward " + tag, bit_diff(g_v, g_s, size_t(off_x), m),
             0);
  // fp32 in (x at off_x), bf16 out at off_y: vectorized where x is 16- and the output 8-byte
  // aligned and (D / 2) % 4 == 0
  Dev<bf> h_v(m + size_t(off_y)), h_s(m + size_t(off_y));
  h_v.poison();
  h_s.poison();
  bf* hv = h_v.p + off_y;
  check_path("rope", "backward fp32 " + tag, cuda::rope_backward_f32_is_vectorized(xo, hv, D),
             (D / 2) % 4 == 0 && off_x % 4 == 0 && off_y % 4 == 0);
  check(cuda::rope_backward_f32(xo, hv, pos.p, inv.p, n, heads, D, 0), "rope_backward_f32");
  check(cuda::rope_backward_f32_scalar(xo, h_s.p + off_y, pos.p, inv.p, n, heads, D, 0),
        "rope_backward_f32_scalar");
  ct::report("rope", "vectorized = scalar backward fp32 " + tag,
             bit_diff(h_v, h_s, size_t(off_y), m), 0);
  if (timing) {
    const double e = double(m);
    report_time(
        "rope", "forward " + tag, e * 6,
        [&] { return cuda::rope_forward(xo, yv, pos.p, inv.p, n, heads, D, 0); },
        [&] { return cuda::rope_forward_scalar(xo, ys, pos.p, inv.p, n, heads, D, 0); });
    report_time(
        "rope", "backward " + tag, e * 4,
        [&] { return cuda::rope_backward(gv, pos.p, inv.p, n, heads, D, 0); },
        [&] { return cuda::rope_backward_scalar(gs, pos.p, inv.p, n, heads, D, 0); });
  }
}

// RoPE's backward into a slice of wider rows (row stride ld, the columns [off, off + heads D)):
// the same bits as into rows of their own width, through the kernel the stride allows
// (vectorized where ld keeps every row aligned), and the other columns untouched.
void rope_strided(uint64_t seed, int64_t n, int64_t heads, int D, int64_t ld, int64_t off) {
  const int64_t w = heads * D;
  const size_t m = size_t(n * w), mw = size_t(n * ld);
  Fill f(seed);
  Dev<float> g32(m), inv(static_cast<size_t>(D / 2));
  Dev<bf> g(m), gw(mw), h(m), hw(mw);
  Dev<int32_t> pos(static_cast<size_t>(n));
  fill_dev(g32, 0, m, f, 40.f);
  fill_dev(g, 0, m, f, 2.f);
  std::vector<int32_t> hp(static_cast<size_t>(n));
  for (auto& p : hp) p = int32_t(f.bits() % 8192);
  ct::up(pos, hp);
  ct::up(inv, rope_inv(D, 1e6));
  gw.poison();
  hw.poison();
  h.poison();
  CT_CUDA(cudaMemcpy2D(gw.p + off, size_t(ld) * sizeof(bf), g.p, size_t(w) * sizeof(bf),
                       size_t(w) * sizeof(bf), size_t(n), cudaMemcpyDeviceToDevice));
  const std::string tag = "n=" + std::to_string(n) + " heads=" + std::to_string(heads) +
                          " D=" + std::to_string(D) + " ld=" + std::to_string(ld) +
                          " offset=" + std::to_string(off);
  check_path("rope", "backward strided " + tag,
             cuda::rope_backward_is_vectorized(gw.p + off, D, ld),
             (D / 2) % 8 == 0 && off % 8 == 0 && ld % 8 == 0);
  check_path("rope", "backward fp32 strided " + tag,
             cuda::rope_backward_f32_is_vectorized(g32.p, hw.p + off, D, ld),
             (D / 2) % 4 == 0 && off % 4 == 0 && ld % 4 == 0);
  check(cuda::rope_backward(g.p, pos.p, inv.p, n, heads, D, 0), "rope_backward");
  check(cuda::rope_backward(gw.p + off, pos.p, inv.p, n, heads, D, 0, ld), "rope_backward strided");
  check(cuda::rope_backward_f32(g32.p, h.p, pos.p, inv.p, n, heads, D, 0), "rope_backward_f32");
  check(cuda::rope_backward_f32(g32.p, hw.p + off, pos.p, inv.p, n, heads, D, 0, ld),
        "rope_backward_f32 strided");
  const std::vector<float> hg = ct::down_bf16(g), hgw = ct::down_bf16(gw), hh = ct::down_bf16(h),
                           hhw = ct::down_bf16(hw);
  size_t differ = 0, differ32 = 0, touched = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < ld; ++c) {
      const size_t k = size_t(i * ld + c);
      if (c < off || c >= off + w) {
        touched += !std::isnan(hgw[k]) + !std::isnan(hhw[k]);
        continue;
      }
      const size_t j = size_t(i * w + c - off);
      differ += std::memcmp(&hgw[k], &hg[j], sizeof(float)) != 0;
      differ32 += std::memcmp(&hhw[k], &hh[j], sizeof(float)) != 0;
    }
  ct::report("rope", "backward strided = contiguous " + tag, double(differ), 0);
  ct::report("rope", "backward fp32 strided = contiguous " + tag, double(differ32), 0);
  ct::report("rope", "backward strided: other columns untouched " + tag, double(touched), 0);
  ct::report_bool(
      "rope", "backward refuses a stride under heads D " + tag,
      cuda::rope_backward(gw.p, pos.p, inv.p, n, heads, D, 0, w - 2) == cudaErrorInvalidValue, "");
}

// lora_b_residual against float64 on the host from the same bf16 values: y = residual + xa B^T
// (xa the columns [xa_off, xa_off + r) of rows of ldxa); without a residual; in place (y is the
// residual).
void lora_b_residual_case(uint64_t seed, int64_t n, int64_t O, int r, int64_t ldxa, int64_t xa_off,
                          int mode) {  // 0: residual, 1: none, 2: in place
  Fill f(seed);
  Dev<bf> xa(size_t(n * ldxa)), B(size_t(O * r));
  Dev<float> res(size_t(n * O)), y(size_t(n * O));
  fill_dev(xa, 0, xa.n, f, 2.f);
  fill_dev(B, 0, B.n, f, 0.5f);
  fill_dev(res, 0, res.n, f, 4.f);
  y.poison();
  const std::vector<float> hres = ct::down(res);
  const float* rp = mode == 1 ? nullptr : res.p;
  float* yp = mode == 2 ? res.p : y.p;
  const std::string tag = "n=" + std::to_string(n) + " O=" + std::to_string(O) +
                          " r=" + std::to_string(r) + " ldxa=" + std::to_string(ldxa) +
                          (mode == 0   ? ""
                           : mode == 1 ? " no residual"
                                       : " in place");
  const bool ok = cuda::lora_b_residual_supported(xa.p + xa_off, ldxa, B.p, r, rp, yp, O);
  ct::report_bool("lora_b", "lora_b_residual applies " + tag, ok, "");
  if (!ok) return;
  check(cuda::lora_b_residual(xa.p + xa_off, ldxa, B.p, r, rp, yp, n, O, 0), "lora_b_residual");
  const std::vector<float> hxa = ct::down_bf16(xa), hB = ct::down_bf16(B);
  const std::vector<float> got = ct::down(mode == 2 ? res : y);
  std::vector<float> ref(size_t(n * O));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < O; ++j) {
      double acc = 0.0;
      for (int k = 0; k < r; ++k)
        acc += double(hxa[size_t(i * ldxa + xa_off + k)]) * double(hB[size_t(j * r + k)]);
      ref[size_t(i * O + j)] = float((mode == 1 ? 0.0 : double(hres[size_t(i * O + j)])) + acc);
    }
  ct::report("lora_b", "y = residual + xa B^T vs float64 " + tag, ct::rel_err(got, ref), 1e-6);
}

// lora_b_residual_bf16: y = bf16((residual + xa B^T) + z), residual and y bf16, z fp32. Held
// to (1) the fp32 form's bits: lora_b_residual on float(residual), then + z in fp32 on the host
// and rounded to bf16, the same operations in the same order, must give the same bits; (2)
// float64: within one bf16 ulp of the exact sum plus the fp32 sum's own error bound (r + 2
// roundings of at most 2^-24 of the terms' magnitudes: where the terms cancel, that exceeds an
// ulp of the small result); r 0 adds only z; mode 2: in place (y is the residual).
void lora_b_residual_bf16_case(uint64_t seed, int64_t n, int64_t O, int r, int64_t ldxa,
                               int mode) {  // 0: into y, 2: in place
  Fill f(seed);
  const int rr = std::max(r, 1);
  Dev<bf> xa(size_t(n * ldxa)), B(size_t(O * rr)), res(size_t(n * O)), y(size_t(n * O));
  Dev<float> z(size_t(n * O)), res32(size_t(n * O)), y32(size_t(n * O));
  fill_dev(xa, 0, xa.n, f, 2.f);
  fill_dev(B, 0, B.n, f, 0.5f);
  fill_dev(res, 0, res.n, f, 4.f);
  fill_dev(z, 0, z.n, f, 8.f);
  const std::vector<float> hres = ct::down_bf16(res), hz = ct::down(z);
  ct::up(res32, hres);
  y.poison();
  y32.poison();
  bf* yp = mode == 2 ? res.p : y.p;
  const bf* xap = r ? xa.p : nullptr;
  const bf* Bp = r ? B.p : nullptr;
  const std::string tag = "n=" + std::to_string(n) + " O=" + std::to_string(O) +
                          " r=" + std::to_string(r) + (mode == 2 ? " in place" : "");
  const bool ok = cuda::lora_b_residual_bf16_supported(xap, ldxa, Bp, r, res.p, z.p, yp, O);
  ct::report_bool("lora_b", "lora_b_residual_bf16 applies " + tag, ok, "");
  if (!ok) return;
  check(cuda::lora_b_residual_bf16(xap, ldxa, Bp, r, res.p, z.p, yp, n, O, 0),
        "lora_b_residual_bf16");
  const std::vector<float> got = ct::down_bf16(mode == 2 ? res : y);
  std::vector<float> twin = hres;  // r 0: the residual itself, as float
  if (r) {
    check(cuda::lora_b_residual(xa.p, ldxa, B.p, r, res32.p, y32.p, n, O, 0), "lora_b_residual");
    twin = ct::down(y32);
  }
  const std::vector<float> hxa = ct::down_bf16(xa), hB = ct::down_bf16(B);
  int64_t differ = 0, off_ulp = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < O; ++j) {
      const size_t e = size_t(i * O + j);
      const float want = ct::round_bf16(twin[e] + hz[e]);
      differ += std::memcmp(&want, &got[e], 4) != 0;
      double acc = 0.0, mag = std::fabs(double(hres[e])) + std::fabs(double(hz[e]));
      for (int k = 0; k < r; ++k) {
        const double t = double(hxa[size_t(i * ldxa + k)]) * double(hB[size_t(j * r + k)]);
        acc += t;
        mag += std::fabs(t);
      }
      const double exact = double(hres[e]) + acc + double(hz[e]);
      // one bf16 ulp at |exact| (2^(exponent - 7)) and the fp32 sum's error bound
      const double ulp = std::ldexp(1.0, std::ilogb(std::max(std::fabs(exact), 1e-30)) - 7);
      off_ulp += std::fabs(double(got[e]) - exact) > ulp + double(r + 2) * std::ldexp(mag, -24);
    }
  ct::report("lora_b", "y bf16 = the fp32 form's sum rounded once, bits " + tag,
             double(differ) / double(n * O), 0.0);
  ct::report("lora_b", "y bf16 within one ulp of float64 " + tag, double(off_ulp) / double(n * O),
             0.0);
}

// lora_b_residual's cases (also run alone, LORA4J_OPS_ONLY=lora_b)
// gemv (gemv.cu: one row times a row-major weight, the decode step's projections) against its
// CPU twin: gemv.cu's documented order (each lane's 8-element chunks l, l + 32, ..., each chunk's
// products by fmaf from 0 in element order, the warp's xor-butterfly sum, then fmaf(beta, c,
// alpha * sum)), computed on the host with the same fp32 operations, so the same bits; and against
// float64 within the fp32 sum's reach (y fp32) or half a bf16 ulp more (y bf16). cmode 0: beta 0
// (c not read: y poisoned first); 1: c apart; 2: in place (c is y).
template <class T>
void gemv_case(uint64_t seed, int64_t N, int64_t K, int64_t ldw, bool y_f32, int cmode, float alpha,
               bool split = false, int64_t K2 = 0) {
  constexpr bool kF16 = std::is_same_v<T, __half>;
  Fill f(seed);
  const int64_t ldw2 = K2 + 8;  // the continuation's rows (GemvParams::K2), strided
  Dev<T> x{size_t(K)}, w{size_t(N * ldw)}, x2{size_t(std::max<int64_t>(K2, 8))},
      w2{size_t(N * ldw2)};
  Dev<float> cf{size_t(N)}, yf{size_t(N)};
  Dev<bf> cb{size_t(N)}, yb{size_t(N)};
  fill_dev(x, 0, x.n, f, 2.f);
  fill_dev(w, 0, w.n, f, 0.5f);
  fill_dev(x2, 0, x2.n, f, 2.f);
  fill_dev(w2, 0, w2.n, f, 0.5f);
  fill_dev(cf, 0, cf.n, f, 4.f);
  fill_dev(cb, 0, cb.n, f, 4.f);
  std::vector<T> hx(x.n), hw(w.n), hx2(x2.n), hw2(w2.n);
  CT_CUDA(cudaMemcpy(hx.data(), x.p, x.n * sizeof(T), cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hw.data(), w.p, w.n * sizeof(T), cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hx2.data(), x2.p, x2.n * sizeof(T), cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hw2.data(), w2.p, w2.n * sizeof(T), cudaMemcpyDeviceToHost));
  const std::vector<float> hcf = ct::down(cf), hcb = ct::down_bf16(cb);
  auto val = [](T v) {
    if constexpr (kF16)
      return __half2float(v);
    else
      return __bfloat162float(v);
  };
  const float beta = cmode == 0 ? 0.f : 1.f;
  if (cmode == 2) {  // y starts as c
    CT_CUDA(cudaMemcpy(yf.p, cf.p, N * sizeof(float), cudaMemcpyDeviceToDevice));
    CT_CUDA(cudaMemcpy(yb.p, cb.p, N * sizeof(bf), cudaMemcpyDeviceToDevice));
  } else {
    yf.poison();
    yb.poison();
  }
  cuda::GemvParams g;
  g.x = x.p;
  g.w = w.p;
  g.ldw = ldw;
  g.N = N;
  g.K = K;
  g.f16 = kF16;
  g.y_f32 = y_f32;
  g.y = y_f32 ? static_cast<void*>(yf.p) : static_cast<void*>(yb.p);
  g.c = cmode == 1 ? (y_f32 ? static_cast<const void*>(cf.p) : static_cast<const void*>(cb.p))
                   : nullptr;
  g.alpha = alpha;
  g.beta = beta;
  g.split = split;
  if (K2 > 0) g.x2 = x2.p, g.w2 = w2.p, g.ldw2 = ldw2, g.K2 = K2;
  const int S = cuda::gemv_row_warps(N, split);  // warps a row: 1, or the split order's
  const std::string tag = std::string(kF16 ? "fp16" : "bf16") + (S > 1 ? " split" : "") +
                          " N=" + std::to_string(N) + " K=" + std::to_string(K) +
                          " ldw=" + std::to_string(ldw) + (y_f32 ? " y fp32" : " y bf16") +
                          (cmode == 0   ? ""
                           : cmode == 1 ? " + c"
                                        : " + c in place") +
                          (alpha != 1.f ? " alpha " + std::to_string(alpha) : "") +
                          (K2 > 0 ? " + K2=" + std::to_string(K2) : "");
  ct::report_bool("gemv", "gemv_accepts " + tag, cuda::gemv_accepts(g), "");
  check(cuda::gemv(g, 0), "gemv");
  CT_CUDA(cudaDeviceSynchronize());
  const std::vector<float> got = y_f32 ? ct::down(yf) : ct::down_bf16(yb);
  std::vector<float> twin(static_cast<size_t>(N)), ref(static_cast<size_t>(N));
  const int64_t chunks = (K + K2) / 8;  // the concatenated operands' (K2: x2 / w2 after x / w)
  auto wat = [&](int64_t n, int64_t k) {
    return k < K ? val(hw[size_t(n * ldw + k)]) : val(hw2[size_t(n * ldw2 + k - K)]);
  };
  auto xat = [&](int64_t k) { return k < K ? val(hx[size_t(k)]) : val(hx2[size_t(k - K)]); };
  for (int64_t n = 0; n < N; ++n) {
    double exact = 0;
    float total = 0.f;
    for (int wp = 0; wp < S; ++wp) {
      float lane[32], next[32];
      for (int l = 0; l < 32; ++l) {
        float acc = 0.f;
        for (int64_t c = 32 * wp + l; c < chunks; c += 32 * S) {
          float sum = 0.f;
          for (int e = 0; e < 8; ++e) {
            const float wv = wat(n, c * 8 + e), xv = xat(c * 8 + e);
            sum = std::fmaf(wv, xv, sum);
            exact += double(wv) * double(xv);
          }
          acc += sum;
        }
        lane[l] = acc;
      }
      for (int o = 16; o > 0; o >>= 1) {
        for (int l = 0; l < 32; ++l) next[l] = lane[l] + lane[l ^ o];
        std::copy(next, next + 32, lane);
      }
      total = wp == 0 ? lane[0] : total + lane[0];
    }
    const float cval = y_f32 ? hcf[size_t(n)] : hcb[size_t(n)];
    float v = alpha * total;
    if (beta != 0.f) v = std::fmaf(beta, cval, v);
    twin[size_t(n)] = y_f32 ? v : ct::round_bf16(v);
    ref[size_t(n)] = float(double(alpha) * exact + double(beta) * double(cval));
  }
  ct::report_bool("gemv", "bitwise its CPU twin, " + tag,
                  std::memcmp(got.data(), twin.data(), got.size() * sizeof(float)) == 0, "");
  ct::report("gemv", "vs float64, " + tag, ct::rel_err(got, ref), y_f32 ? 1e-5 : 4e-3);
}

void test_gemv(ct::Rng&) {
  // Mistral-7B's decode shapes: down (K 14336), gate / up (K 4096 + 32 folded LoRA columns),
  // k / v (N 1024), o; a K whose chunks leave the unrolled loop a tail; LoRA's B (K 16)
  gemv_case<bf>(1, 4096, 14336, 14336, true, 2, 1.f);
  gemv_case<bf>(2, 14336, 4128, 4128, false, 0, 1.f);
  gemv_case<bf>(3, 1024, 4128, 4136, false, 0, 1.f);
  gemv_case<__half>(4, 4096, 4128, 4128, true, 0, 1.f);
  gemv_case<__half>(5, 1024, 4128, 4128, true, 1, 1.f);
  gemv_case<bf>(6, 4096, 16, 16, true, 2, 1.f);
  gemv_case<bf>(7, 97, 1000, 1008, true, 1, 0.5f);
  gemv_case<bf>(8, 33, 8, 8, false, 1, 2.f);
  gemv_case<bf>(9, 4100, 4096, 4096, false, 2, 1.f);
  gemv_case<bf>(10, 32000, 4096, 4096, true, 0, 1.f);  // the LM head
  // few rows in the split order, 8 warps a row (gemv_split_kernel): a rank-16 adapter's A
  // products at decode (q/k/v stacked 48 rows, gate/up 32, o 16, down 16 over K 14336; alpha the
  // LoRA scale, y bf16), the bound kGemvSplitMaxRows and one past it (the warp-a-row order), a K
  // of one chunk, a K whose last round is partial on some lanes
  gemv_case<bf>(11, 48, 4096, 4096, false, 0, 2.f, true);
  gemv_case<bf>(12, 32, 4096, 4096, false, 0, 0.5f, true);
  gemv_case<bf>(13, 16, 14336, 14336, false, 0, 1.f, true);
  gemv_case<__half>(14, 16, 4128, 4136, true, 1, 1.f, true);
  gemv_case<bf>(15, cuda::kGemvSplitMaxRows, 4096, 4104, true, 2, 1.f, true);
  gemv_case<bf>(16, cuda::kGemvSplitMaxRows + 1, 4096, 4096, true, 0, 1.f, true);
  gemv_case<bf>(17, 5, 8, 8, true, 1, 1.f, true);
  // K's continuation (GemvParams::K2): o's and down's unfolded LoRA term at decode (xa, B: rank
  // 16, 8 and 64), with the residual as c; a K that is not whole rounds, so the tail starts
  // mid-warp
  gemv_case<bf>(19, 4096, 4096, 4096, true, 1, 1.f, false, 16);
  gemv_case<bf>(20, 4096, 14336, 14336, true, 2, 1.f, false, 8);
  gemv_case<bf>(21, 300, 1000, 1008, true, 1, 1.f, false, 64);
  gemv_case<__half>(22, 257, 4128, 4128, false, 0, 0.5f, false, 16);
  gemv_case<bf>(18, 7, 8 * (32 * cuda::kGemvSplitWarps * 9 + 37), 8 * (32 * 8 * 9 + 40), false, 1,
                1.f, true);
}

// rmsnorm_lora_a (rmsnorm.cu: a decode step's RMSNorm and its group's LoRA A product in one
// launch) against the three calls it stands for on the same inputs: rmsnorm_forward (with the
// fp16 copy when y16), gemv in the split order (alpha, beta 0, y bf16) on its output,
// bf16_to_f16_2d of the products (xa16); y, rstd, y16, xa and xa16 bit for bit.
template <class TX>
void rmsnorm_lora_a_case(uint64_t seed, int64_t d, int64_t m, bool with16, float alpha) {
  Fill f(seed);
  Dev<TX> x{size_t(d)};
  Dev<bf> w{size_t(d)}, A{size_t(m * d)}, y1{size_t(d)}, y2{size_t(d)}, xa1{size_t(m)},
      xa2{size_t(m)};
  Dev<float> r1{1}, r2{1};
  Dev<__half> ya16{size_t(d)}, yb16{size_t(d)}, xa16a{size_t(m)}, xa16b{size_t(m)};
  fill_dev(x, 0, x.n, f, 3.f);
  fill_dev(w, 0, w.n, f, 1.5f);
  fill_dev(A, 0, A.n, f, 0.5f);
  for (Dev<bf>* b : {&y1, &y2, &xa1, &xa2}) b->poison();
  for (Dev<__half>* b : {&ya16, &yb16, &xa16a, &xa16b}) b->poison();
  r1.poison();
  r2.poison();
  cuda::RmsnormLoraAParams p;
  p.x = x.p;
  p.x_bf16 = std::is_same_v<TX, bf>;
  p.w = w.p;
  p.y = y1.p;
  p.rstd = r1.p;
  p.y16 = with16 ? ya16.p : nullptr;
  p.d = d;
  p.eps = 1e-5f;
  p.A = A.p;
  p.lda = d;
  p.m = m;
  p.alpha = alpha;
  p.xa = xa1.p;
  p.xa16 = with16 ? xa16a.p : nullptr;
  const std::string tag = std::string(p.x_bf16 ? "x bf16" : "x fp32") + " d=" + std::to_string(d) +
                          " m=" + std::to_string(m) + (with16 ? " + fp16 copies" : "");
  ct::report_bool("rmsnorm_lora_a", "accepts " + tag, cuda::rmsnorm_lora_a_accepts(p), "");
  check(cuda::rmsnorm_lora_a(p, 0), "rmsnorm_lora_a");
  check(cuda::rmsnorm_forward(x.p, w.p, y2.p, r2.p, 1, d, 1e-5f, 0, nullptr, 0, cuda::Lo8{},
                              with16 ? cuda::Y16{yb16.p, d} : cuda::Y16{}),
        "rmsnorm_forward");
  cuda::GemvParams g;
  g.x = y2.p;
  g.w = A.p;
  g.ldw = d;
  g.N = m;
  g.K = d;
  g.y = xa2.p;
  g.y_f32 = false;
  g.alpha = alpha;
  g.split = true;
  check(cuda::gemv(g, 0), "gemv");
  if (with16) check(cuda::bf16_to_f16_2d(xa2.p, m, xa16b.p, m, 1, m, 0), "bf16_to_f16_2d");
  CT_CUDA(cudaDeviceSynchronize());
  auto same = [](auto& a, auto& b) {
    using T = std::remove_reference_t<decltype(*a.p)>;
    std::vector<T> ha(a.n), hb(b.n);
    CT_CUDA(cudaMemcpy(ha.data(), a.p, a.n * sizeof(T), cudaMemcpyDeviceToHost));
    CT_CUDA(cudaMemcpy(hb.data(), b.p, b.n * sizeof(T), cudaMemcpyDeviceToHost));
    return std::memcmp(ha.data(), hb.data(), ha.size() * sizeof(T)) == 0;
  };
  ct::report_bool("rmsnorm_lora_a", "y and rstd bitwise rmsnorm_forward's, " + tag,
                  same(y1, y2) && same(r1, r2), "");
  ct::report_bool("rmsnorm_lora_a", "xa bitwise gemv's split order, " + tag, same(xa1, xa2), "");
  if (with16)
    ct::report_bool("rmsnorm_lora_a", "fp16 copies bitwise, " + tag,
                    same(ya16, yb16) && same(xa16a, xa16b), "");
}

void test_rmsnorm_lora_a(ct::Rng&) {
  // Mistral-7B's two at rank 16 (q/k/v stacked 48 rows with the fp16 copies; gate/up 32), a
  // bf16 residual stream, the test model's hidden 1024, one row, a width whose chunks leave the
  // split order's last round partial, the widest the kernel takes
  rmsnorm_lora_a_case<float>(1, 4096, 48, true, 2.f);
  rmsnorm_lora_a_case<float>(2, 4096, 32, false, 0.5f);
  rmsnorm_lora_a_case<bf>(3, 4096, 48, true, 1.f);
  rmsnorm_lora_a_case<float>(4, 1024, 16, true, 1.f);
  rmsnorm_lora_a_case<float>(5, 1024, 1, false, 1.f);
  rmsnorm_lora_a_case<float>(6, 8 * (32 * cuda::kGemvSplitWarps + 37), 7, false, 1.f);
  rmsnorm_lora_a_case<bf>(7, cuda::kRmsnormLoraAMaxD, cuda::kGemvSplitMaxRows, false, 1.f);
  // refused: d not a multiple of 8, too wide, m past the split order's rows, m 0
  cuda::RmsnormLoraAParams p;
  Dev<float> x{8200};
  Dev<bf> w{8200}, y{8200}, A{8200}, xa{300};
  Dev<float> r{1};
  p.x = x.p, p.w = w.p, p.y = y.p, p.rstd = r.p, p.A = A.p, p.xa = xa.p, p.lda = 8200, p.m = 4;
  bool refused = true;
  for (int64_t d : {int64_t(1020), cuda::kRmsnormLoraAMaxD + 8}) {
    p.d = d;
    refused = refused && !cuda::rmsnorm_lora_a_accepts(p) &&
              cuda::rmsnorm_lora_a(p, 0) == cudaErrorInvalidValue;
  }
  p.d = 1024;
  for (int64_t m : {int64_t(0), cuda::kGemvSplitMaxRows + 1}) {
    p.m = m;
    refused = refused && !cuda::rmsnorm_lora_a_accepts(p);
  }
  ct::report_bool("rmsnorm_lora_a", "refuses d % 8, d past the bound, m 0 or past 256", refused,
                  "");
}

// gemv_pairs (gemv.cu: a decode step's q and k with RoPE, v, and gate / up with the SwiGLU forward,
// in one launch) against the passes it replaces, on the same inputs: gemv to fp32 then
// rope_forward (q, k), gemv to bf16 (v), gemv twice to bf16 then swiglu_forward (h); bit for bit
// (those passes have their own CPU twins above and below). One launch takes q, k and v as the
// engine does; a second takes h, v and k in that order (other segment boundaries, kinds mixed).
// Against float64 too: the sums, RoPE (angle from the same fp32 pos x inv_freq) and SwiGLU in
// double, within one fp16 / bf16 rounding of the result plus the products' reach.
void gemv_pairs_case(uint64_t seed, int heads, int kv_heads, int D, int64_t K, int64_t ldw,
                     int64_t I, int64_t Kg, int32_t pos) {
  Fill f(seed);
  const int64_t Nq = int64_t(heads) * D, Nk = int64_t(kv_heads) * D;
  Dev<__half> x16{size_t(K)}, wq{size_t(Nq * ldw)}, wk{size_t(Nk * ldw)};
  Dev<bf> xb{size_t(K)}, wv{size_t(Nk * ldw)}, x2{size_t(Kg)}, wg{size_t(I * Kg)},
      wu{size_t(I * Kg)};
  fill_dev(x16, 0, x16.n, f, 2.f);
  fill_dev(wq, 0, wq.n, f, 0.5f);
  fill_dev(wk, 0, wk.n, f, 0.5f);
  fill_dev(xb, 0, xb.n, f, 2.f);
  fill_dev(wv, 0, wv.n, f, 0.5f);
  fill_dev(x2, 0, x2.n, f, 2.f);
  fill_dev(wg, 0, wg.n, f, 0.5f);
  fill_dev(wu, 0, wu.n, f, 0.5f);
  Dev<int32_t> dpos{1};
  Dev<float> dinv{size_t(D / 2)};
  const std::vector<float> inv = rope_inv(D, 1e6);
  ct::up(dpos, std::vector<int32_t>{pos});
  ct::up(dinv, inv);
  // the passes apart
  Dev<float> tmp{size_t(Nq)};
  Dev<__half> qr{size_t(Nq)}, kr{size_t(Nk)};
  Dev<bf> vr{size_t(Nk)}, gr{size_t(I)}, ur{size_t(I)}, hr{size_t(I)};
  auto gemv_to = [&](const void* x, const void* w, int64_t N, int64_t k, int64_t ld, bool f16,
                     void* y, bool y_f32) {
    cuda::GemvParams g;
    g.x = x, g.w = w, g.ldw = ld, g.N = N, g.K = k, g.f16 = f16, g.y = y, g.y_f32 = y_f32;
    check(cuda::gemv(g, 0), "gemv");
  };
  gemv_to(x16.p, wq.p, Nq, K, ldw, true, tmp.p, true);
  check(cuda::rope_forward(tmp.p, qr.p, dpos.p, dinv.p, 1, heads, D, 0), "rope_forward");
  gemv_to(x16.p, wk.p, Nk, K, ldw, true, tmp.p, true);
  check(cuda::rope_forward(tmp.p, kr.p, dpos.p, dinv.p, 1, kv_heads, D, 0), "rope_forward");
  gemv_to(xb.p, wv.p, Nk, K, ldw, false, vr.p, false);
  gemv_to(x2.p, wg.p, I, Kg, Kg, false, gr.p, false);
  gemv_to(x2.p, wu.p, I, Kg, Kg, false, ur.p, false);
  check(cuda::swiglu_forward(gr.p, ur.p, hr.p, I, 0), "swiglu_forward");
  // the fused launches
  Dev<__half> q1{size_t(Nq)}, k1{size_t(Nk)}, k2{size_t(Nk)};
  Dev<bf> v1{size_t(Nk)}, v2{size_t(Nk)}, h2{size_t(I)};
  for (auto* d : {&q1, &k1, &k2}) d->poison();
  for (auto* d : {&v1, &v2, &h2}) d->poison();
  auto rope_seg = [&](const void* w, int64_t N, void* y) {
    cuda::GemvPairSegment sg;
    sg.kind = cuda::GemvPairKind::kRope;
    sg.x = x16.p, sg.w0 = w, sg.ldw0 = ldw, sg.N = N, sg.K = K, sg.f16 = true, sg.y = y, sg.D = D;
    return sg;
  };
  cuda::GemvPairSegment vs;
  vs.kind = cuda::GemvPairKind::kPair;
  vs.x = xb.p, vs.w0 = wv.p, vs.ldw0 = ldw, vs.N = Nk, vs.K = K;
  cuda::GemvPairSegment hs;
  hs.kind = cuda::GemvPairKind::kSwiglu;
  hs.x = x2.p, hs.w0 = wg.p, hs.w1 = wu.p, hs.ldw0 = hs.ldw1 = Kg, hs.N = I, hs.K = Kg;
  hs.y = h2.p;
  cuda::GemvPairsParams a, b;
  a.count = b.count = 3;
  a.pos = b.pos = dpos.p;
  a.inv_freq = b.inv_freq = dinv.p;
  a.seg[0] = rope_seg(wq.p, Nq, q1.p);
  a.seg[1] = rope_seg(wk.p, Nk, k1.p);
  a.seg[2] = vs;
  a.seg[2].y = v1.p;
  b.seg[0] = hs;
  b.seg[1] = vs;
  b.seg[1].y = v2.p;
  b.seg[2] = rope_seg(wk.p, Nk, k2.p);
  const std::string tag = "heads " + std::to_string(heads) + "/" + std::to_string(kv_heads) +
                          " D=" + std::to_string(D) + " K=" + std::to_string(K) +
                          " ldw=" + std::to_string(ldw) + " I=" + std::to_string(I) +
                          " Kg=" + std::to_string(Kg) + " pos=" + std::to_string(pos);
  ct::report_bool("gemv pairs", "gemv_pairs_accepts " + tag,
                  cuda::gemv_pairs_accepts(a) && cuda::gemv_pairs_accepts(b), "");
  check(cuda::gemv_pairs(a, 0), "gemv_pairs");
  check(cuda::gemv_pairs(b, 0), "gemv_pairs");
  CT_CUDA(cudaDeviceSynchronize());
  auto same = [](const auto& x, const auto& y) {
    const auto hx = ct::down(x), hy = ct::down(y);
    return hx.size() == hy.size() &&
           std::memcmp(hx.data(), hy.data(), hx.size() * sizeof(hx[0])) == 0;
  };
  ct::report_bool("gemv pairs", "q: bitwise gemv + rope_forward, " + tag, same(q1, qr), "");
  ct::report_bool("gemv pairs", "k: bitwise gemv + rope_forward (both launches), " + tag,
                  same(k1, kr) && same(k2, kr), "");
  ct::report_bool("gemv pairs", "v: bitwise gemv (both launches), " + tag,
                  same(v1, vr) && same(v2, vr), "");
  ct::report_bool("gemv pairs", "h: bitwise gemv, gemv + swiglu_forward, " + tag, same(h2, hr), "");
  // float64
  const std::vector<float> hx16 = ct::down_f16(x16), hwq = ct::down_f16(wq), hwk = ct::down_f16(wk),
                           hxb = ct::down_bf16(xb), hwv = ct::down_bf16(wv),
                           hx2 = ct::down_bf16(x2), hwg = ct::down_bf16(wg),
                           hwu = ct::down_bf16(wu);
  auto dot = [](const std::vector<float>& x, const std::vector<float>& w, int64_t row, int64_t ld,
                int64_t k) {
    double s = 0;
    for (int64_t c = 0; c < k; ++c) s += double(w[size_t(row * ld + c)]) * double(x[size_t(c)]);
    return s;
  };
  auto rope_ref = [&](const std::vector<float>& w, int64_t N) {
    std::vector<float> out(static_cast<size_t>(N));
    for (int64_t h = 0; h < N / D; ++h)
      for (int i = 0; i < D / 2; ++i) {
        const int64_t r0 = h * D + i, r1 = r0 + D / 2;
        const double a0 = dot(hx16, w, r0, ldw, K), a1 = dot(hx16, w, r1, ldw, K);
        const double ang = double(float(pos) * inv[size_t(i)]);
        out[size_t(r0)] = float(a0 * std::cos(ang) - a1 * std::sin(ang));
        out[size_t(r1)] = float(a1 * std::cos(ang) + a0 * std::sin(ang));
      }
    return out;
  };
  std::vector<float> vref(static_cast<size_t>(Nk)), href(static_cast<size_t>(I));
  for (int64_t n = 0; n < Nk; ++n) vref[size_t(n)] = float(dot(hxb, hwv, n, ldw, K));
  for (int64_t n = 0; n < I; ++n) {
    const double g = dot(hx2, hwg, n, Kg, Kg), u = dot(hx2, hwu, n, Kg, Kg);
    href[size_t(n)] = float(g / (1 + std::exp(-g)) * u);
  }
  ct::report("gemv pairs", "q vs float64, " + tag, ct::rel_err(ct::down_f16(q1), rope_ref(hwq, Nq)),
             2e-3);
  ct::report("gemv pairs", "k vs float64, " + tag, ct::rel_err(ct::down_f16(k1), rope_ref(hwk, Nk)),
             2e-3);
  ct::report("gemv pairs", "v vs float64, " + tag, ct::rel_err(ct::down_bf16(v1), vref), 4e-3);
  ct::report("gemv pairs", "h vs float64, " + tag, ct::rel_err(ct::down_bf16(h2), href), 1e-2);
}

// gemv_pairs with the RMSNorm folded in (GemvPairsNorm: every block normalizes the residual row
// as rmsnorm_forward does, the segments read it from shared memory) against rmsnorm_forward (y
// and its fp16 copy) then gemv_pairs over them, bit for bit: q, k and v as the engine's first
// launch of a layer, gate / up + SwiGLU as its second; the residual in fp32 and in bf16.
template <class TX>
void gemv_pairs_norm_case(uint64_t seed, int heads, int kv_heads, int D, int64_t d, int64_t I,
                          int32_t pos) {
  Fill f(seed);
  const int64_t Nq = int64_t(heads) * D, Nk = int64_t(kv_heads) * D;
  const float eps = 1e-5f;
  Dev<TX> x{size_t(d)};
  Dev<bf> wn{size_t(d)}, xn{size_t(d)}, wv{size_t(Nk * d)}, wg{size_t(I * d)}, wu{size_t(I * d)};
  Dev<__half> x16{size_t(d)}, wq{size_t(Nq * d)}, wk{size_t(Nk * d)};
  Dev<float> rstd{1};
  fill_dev(x, 0, x.n, f, 3.f);
  fill_dev(wn, 0, wn.n, f, 1.5f);
  fill_dev(wq, 0, wq.n, f, 0.5f);
  fill_dev(wk, 0, wk.n, f, 0.5f);
  fill_dev(wv, 0, wv.n, f, 0.5f);
  fill_dev(wg, 0, wg.n, f, 0.5f);
  fill_dev(wu, 0, wu.n, f, 0.5f);
  Dev<int32_t> dpos{1};
  Dev<float> dinv{size_t(D / 2)};
  ct::up(dpos, std::vector<int32_t>{pos});
  ct::up(dinv, rope_inv(D, 1e6));
  Dev<__half> qr{size_t(Nq)}, kr{size_t(Nk)}, q1{size_t(Nq)}, k1{size_t(Nk)};
  Dev<bf> vr{size_t(Nk)}, hr{size_t(I)}, v1{size_t(Nk)}, h1{size_t(I)};
  for (auto* dv : {&q1, &k1}) dv->poison();
  for (auto* dv : {&v1, &h1}) dv->poison();
  auto params = [&](bool norm, void* q, void* k, void* v, void* h) {
    cuda::GemvPairsParams a, b;
    a.count = 3;
    a.pos = dpos.p;
    a.inv_freq = dinv.p;
    const void* wqk[2] = {wq.p, wk.p};
    void* yqk[2] = {q, k};
    for (int s = 0; s < 2; ++s) {
      cuda::GemvPairSegment& sg = a.seg[s];
      sg.kind = cuda::GemvPairKind::kRope;
      sg.x = norm ? nullptr : x16.p, sg.w0 = wqk[s], sg.ldw0 = d, sg.K = d, sg.f16 = true;
      sg.N = s == 0 ? Nq : Nk, sg.y = yqk[s], sg.D = D;
    }
    cuda::GemvPairSegment& vs = a.seg[2];
    vs.kind = cuda::GemvPairKind::kPair;
    vs.x = norm ? nullptr : xn.p, vs.w0 = wv.p, vs.ldw0 = d, vs.N = Nk, vs.K = d, vs.y = v;
    b.count = 1;
    cuda::GemvPairSegment& hs = b.seg[0];
    hs.kind = cuda::GemvPairKind::kSwiglu;
    hs.x = norm ? nullptr : xn.p, hs.w0 = wg.p, hs.w1 = wu.p, hs.ldw0 = hs.ldw1 = d, hs.N = I;
    hs.K = d, hs.y = h;
    if (norm) {
      for (cuda::GemvPairsParams* g : {&a, &b}) {
        g->norm.x = x.p;
        g->norm.x_bf16 = std::is_same_v<TX, bf>;
        g->norm.w = wn.p;
        g->norm.eps = eps;
        g->norm.d = d;
      }
    }
    return std::make_pair(a, b);
  };
  // rmsnorm_forward, then the launches over its outputs
  check(cuda::rmsnorm_forward(x.p, wn.p, xn.p, rstd.p, 1, d, eps, 0, nullptr, d, cuda::Lo8{},
                              cuda::Y16{x16.p, d}),
        "rmsnorm_forward");
  auto [ra, rb] = params(false, qr.p, kr.p, vr.p, hr.p);
  check(cuda::gemv_pairs(ra, 0), "gemv_pairs");
  check(cuda::gemv_pairs(rb, 0), "gemv_pairs");
  auto [fa, fb] = params(true, q1.p, k1.p, v1.p, h1.p);
  const std::string tag = std::string(std::is_same_v<TX, bf> ? "bf16" : "fp32") +
                          " residual, d=" + std::to_string(d) + " heads " + std::to_string(heads) +
                          "/" + std::to_string(kv_heads) + " D=" + std::to_string(D) +
                          " I=" + std::to_string(I);
  ct::report_bool("gemv pairs", "gemv_pairs_accepts the folded norm, " + tag,
                  cuda::gemv_pairs_accepts(fa) && cuda::gemv_pairs_accepts(fb), "");
  check(cuda::gemv_pairs(fa, 0), "gemv_pairs (norm)");
  check(cuda::gemv_pairs(fb, 0), "gemv_pairs (norm)");
  CT_CUDA(cudaDeviceSynchronize());
  auto same = [](const auto& a, const auto& b) {
    const auto ha = ct::down(a), hb = ct::down(b);
    return ha.size() == hb.size() &&
           std::memcmp(ha.data(), hb.data(), ha.size() * sizeof(ha[0])) == 0;
  };
  ct::report_bool("gemv pairs", "folded norm: q, k, v bitwise rmsnorm_forward + gemv_pairs, " + tag,
                  same(q1, qr) && same(k1, kr) && same(v1, vr), "");
  ct::report_bool("gemv pairs", "folded norm: h bitwise rmsnorm_forward + gemv_pairs, " + tag,
                  same(h1, hr), "");
  // refused: a segment with its own x beside the norm, a K other than d, d % 8, d past the bound
  auto [ea, eb] = params(true, q1.p, k1.p, v1.p, h1.p);
  ea.seg[2].x = xn.p;
  eb.seg[0].K = d - 8;
  cuda::GemvPairsParams ec = fb;
  ec.norm.d = d + 4;
  cuda::GemvPairsParams ed = fb;
  ed.norm.d = 6136;
  ct::report_bool("gemv pairs", "folded norm refuses x beside it, K != d, d % 8, d > 6128, " + tag,
                  !cuda::gemv_pairs_accepts(ea) && !cuda::gemv_pairs_accepts(eb) &&
                      !cuda::gemv_pairs_accepts(ec) && !cuda::gemv_pairs_accepts(ed),
                  "");
}

void test_gemv_pairs(ct::Rng&) {
  // Mistral-7B's decode shapes (K 4096 + 32 folded LoRA columns); a smaller model with D 64, a
  // K whose chunks leave the unrolled loop a tail and a padded stride; a K of one chunk
  gemv_pairs_case(11, 32, 8, 128, 4128, 4128, 14336, 4128, 17);
  gemv_pairs_case(12, 8, 2, 64, 1000, 1008, 2048, 1032, 4095);
  gemv_pairs_case(13, 4, 4, 16, 8, 8, 40, 8, 0);
  // the folded norm: Mistral-7B (d 4096, four chunks a thread), Mistral NeMo's width (5120: six),
  // a width of one partial chunk a thread (1000), each residual type
  gemv_pairs_norm_case<float>(14, 32, 8, 128, 4096, 14336, 33);
  gemv_pairs_norm_case<bf>(15, 32, 8, 128, 4096, 14336, 33);
  gemv_pairs_norm_case<float>(16, 32, 8, 160, 5120, 2048, 7);
  gemv_pairs_norm_case<bf>(17, 8, 2, 64, 1000, 1000, 4095);
}

// attention_decode (one query row against a KV cache, the decode step's attention) against its
// CPU twin in float64 (softmax(q k^T / sqrt(D)) v over the keys the window leaves, from the same
// fp16 q / k and bf16 v) and against attention_forward on the same call (Sq 1 at q_offset Sk - 1):
// each within 1e-2 (o is bf16). Shares of 32 keys, at most 48 of them: Sk 1, 7 take one (no
// merge), 64 two, 65 three, 1000 thirty-two, 4097 forty-eight of 86, 20000 forty-eight of 417;
// with no scratch, one share of all the keys; windows cut the first keys.
void decode_attention_case(uint64_t seed, int H, int KH, int D, int Sk, int window, bool part) {
  Fill f(seed);
  const int64_t kvs = int64_t(KH) * D;
  Dev<__half> q{size_t(H) * D}, k{size_t(Sk * kvs)};
  Dev<bf> v{size_t(Sk * kvs)}, o{size_t(H) * D}, o2{size_t(H) * D};
  Dev<float> scratch{size_t(cuda::kDecodeAttentionMaxSplits) * H * (D + 2)}, lse{size_t(H)};
  fill_dev(q, 0, q.n, f, 3.f);
  fill_dev(k, 0, k.n, f, 3.f);
  fill_dev(v, 0, v.n, f, 2.f);
  o.poison();
  cuda::DecodeAttentionParams p;
  p.q = q.p;
  p.k = k.p;
  p.v = v.p;
  p.o = o.p;
  p.H = H;
  p.KH = KH;
  p.D = D;
  p.Sk = Sk;
  p.window = window;
  p.kv_stride = kvs;
  p.scale = float(1.0 / std::sqrt(double(D)));
  p.part = part ? scratch.p : nullptr;
  const std::string tag = "H=" + std::to_string(H) + " KH=" + std::to_string(KH) +
                          " D=" + std::to_string(D) + " Sk=" + std::to_string(Sk) +
                          (window ? " window " + std::to_string(window) : "") +
                          (part ? "" : " one share");
  ct::report_bool("decode attention", "accepts " + tag, cuda::attention_decode_accepts(p), "");
  check(cuda::attention_decode(p, 0), "attention_decode");
  CT_CUDA(cudaDeviceSynchronize());
  std::vector<__half> hq(q.n), hk(k.n);
  CT_CUDA(cudaMemcpy(hq.data(), q.p, q.n * 2, cudaMemcpyDeviceToHost));
  CT_CUDA(cudaMemcpy(hk.data(), k.p, k.n * 2, cudaMemcpyDeviceToHost));
  const std::vector<float> hv = ct::down_bf16(v), got = ct::down_bf16(o);
  std::vector<float> ref(size_t(H) * size_t(D));
  const int first = window > 0 ? std::max(0, Sk - window) : 0;
  for (int h = 0; h < H; ++h) {
    const int kh = h / (H / KH);
    std::vector<double> sc(static_cast<size_t>(Sk));
    double mx = -INFINITY;
    for (int j = first; j < Sk; ++j) {
      double d = 0;
      for (int t = 0; t < D; ++t)
        d += double(__half2float(hq[size_t(h * D + t)])) *
             double(__half2float(hk[size_t(j * kvs + kh * D + t)]));
      sc[size_t(j)] = d / std::sqrt(double(D));
      mx = std::max(mx, sc[size_t(j)]);
    }
    double den = 0;
    for (int j = first; j < Sk; ++j) den += std::exp(sc[size_t(j)] - mx);
    for (int t = 0; t < D; ++t) {
      double num = 0;
      for (int j = first; j < Sk; ++j)
        num += std::exp(sc[size_t(j)] - mx) * double(hv[size_t(j * kvs + kh * D + t)]);
      ref[size_t(h * D + t)] = float(num / den);
    }
  }
  ct::report("decode attention", "vs float64, " + tag, ct::rel_err(got, ref), 1e-2);
  // the prefill's kernel on the same row
  cuda::AttentionParams ap;
  ap.q = q.p;
  ap.k = k.p;
  ap.v = v.p;
  ap.o = o2.p;
  ap.lse = lse.p;
  ap.B = 1;
  ap.Sq = 1;
  ap.Sk = Sk;
  ap.H = H;
  ap.KH = KH;
  ap.D = D;
  ap.q_bstride = int64_t(H) * D;
  ap.kv_bstride = int64_t(Sk) * kvs;
  ap.q_offset = Sk - 1;
  ap.window = window;
  ap.scale = p.scale;
  check(cuda::attention_forward(ap, 0), "attention_forward");
  CT_CUDA(cudaDeviceSynchronize());
  ct::report("decode attention", "vs attention_forward, " + tag,
             ct::rel_err(got, ct::down_bf16(o2)), 1e-2);
}

// greedy_argmax_feed (greedy.cu) against its host twin (greedy_argmax, model/engine.h): the
// index, ids[0] and pos[0] it writes, on random logits (32000 and 37 entries, one), the largest
// value twice (the lower index wins), a NaN at index 0 (stays 0), NaNs elsewhere (never chosen),
// every entry -inf (index 0), every entry NaN; and decode_feed's ids[0] and pos[0].
void test_greedy_argmax(ct::Rng& r) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = INFINITY;
  auto run = [&](const std::string& tag, const std::vector<float>& v) {
    Dev<float> d(v.size());
    Dev<int32_t> out(1), ids(1), pos(1);
    ct::up(d, v);
    CT_CUDA(cuda::greedy_argmax_feed(d.p, int32_t(v.size()), out.p, ids.p, pos.p, 4321, nullptr));
    CT_CUDA(cudaDeviceSynchronize());
    const int32_t want = greedy_argmax(v.data(), int32_t(v.size()));
    const int32_t o = ct::down(out)[0], i = ct::down(ids)[0], p = ct::down(pos)[0];
    ct::report_bool("greedy argmax",
                    tag + ": " + std::to_string(o) + " (host " + std::to_string(want) +
                        "), ids and pos written",
                    o == want && i == want && p == 4321, "");
  };
  for (int32_t n : {32000, 37, 1}) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = r.normal(3.f);
    run("random, n " + std::to_string(n), v);
    if (n < 37) continue;
    const auto top = std::max_element(v.begin(), v.end()) - v.begin();
    std::vector<float> tie = v;
    tie[size_t(n - 1)] = tie[size_t(top)];
    tie[size_t(n / 3)] = tie[size_t(top)];
    run("a tie of three, n " + std::to_string(n), tie);
    std::vector<float> nan0 = v;
    nan0[0] = nan;
    run("NaN at index 0, n " + std::to_string(n), nan0);
    std::vector<float> nans = v;
    for (size_t k = 1; k < nans.size(); k += 7) nans[k] = nan;
    run("NaN past index 0, n " + std::to_string(n), nans);
    run("all -inf, n " + std::to_string(n), std::vector<float>(size_t(n), -inf));
    run("all NaN, n " + std::to_string(n), std::vector<float>(size_t(n), nan));
    std::vector<float> pinf = v;
    pinf[size_t(n / 2)] = inf;
    run("+inf once, n " + std::to_string(n), pinf);
  }
  Dev<int32_t> ids(1), pos(1);
  CT_CUDA(cuda::decode_feed(ids.p, pos.p, 31999, 77, nullptr));
  CT_CUDA(cudaDeviceSynchronize());
  ct::report_bool("greedy argmax", "decode_feed writes ids[0] and pos[0]",
                  ct::down(ids)[0] == 31999 && ct::down(pos)[0] == 77, "");
}

void test_decode_attention(ct::Rng&) {
  for (int sk : {1, 7, 64, 65, 270, 1000, 4097})
    decode_attention_case(uint64_t(sk), 32, 8, 128, sk, 0, true);
  decode_attention_case(11, 32, 8, 128, 1000, 0, false);
  decode_attention_case(12, 32, 8, 128, 4097, 4096, true);  // v0.1's window, one key out
  decode_attention_case(13, 32, 8, 128, 300, 37, true);
  decode_attention_case(14, 8, 8, 64, 300, 0, true);    // no GQA, hd64
  decode_attention_case(15, 8, 1, 128, 33, 0, true);    // 8 query heads on one kv head
  decode_attention_case(16, 4, 2, 64, 20000, 0, true);  // past 64 shares of 32
}

void test_lora_b(ct::Rng& r) {
  auto seed = [&] { return uint64_t(r.integer(0, 1 << 30)); };
  lora_b_residual_case(seed(), 2085, 4096, 16, 16, 0, 0);  // o / down at Mistral-7B's width
  lora_b_residual_case(seed(), 97, 4096, 8, 8, 0, 1);
  lora_b_residual_case(seed(), 333, 5120, 32, 32, 0, 2);     // Nemo's width, rank 32
  lora_b_residual_case(seed(), 1, 1028, 16, 48, 16, 0);      // a slice of a wider xa; O % 1024 != 0
  lora_b_residual_case(seed(), 3000, 72, 32, 32, 0, 0);      // fewer columns than a block
  lora_b_residual_bf16_case(seed(), 2085, 4096, 16, 16, 0);  // o / down at Mistral-7B's width
  lora_b_residual_bf16_case(seed(), 97, 4096, 8, 8, 2);
  lora_b_residual_bf16_case(seed(), 333, 5120, 32, 32, 2);
  lora_b_residual_bf16_case(seed(), 1000, 4096, 0, 16, 0);  // no LoRA term: residual + z
  lora_b_residual_bf16_case(seed(), 3000, 72, 32, 32, 0);   // fewer columns than a block
  ct::report_bool("lora_b", "lora_b_residual_bf16 refuses rank 64",
                  !cuda::lora_b_residual_bf16_supported(nullptr, 64, nullptr, 64, nullptr, nullptr,
                                                        nullptr, 4096),
                  "");
}

// lora_dy_pair's cases (also run alone, LORA4J_OPS_ONLY=lora_dy: scripts/gpu/run.sh's "cudasan"
// step runs them under compute-sanitizer)
void test_lora_dy(ct::Rng& r) {
  auto seed = [&] { return uint64_t(r.integer(0, 1 << 30)); };
  lora_dy_pair_case(seed(), 97, 72, 8, 8, 0, 8, 0);  // rank 8 (padded to 16), a partial tile
  lora_dy_pair_case(seed(), 2085, 14336, 16, 16, 0, 16, 0);   // gate / up at Mistral-7B's width
  lora_dy_pair_case(seed(), 1000, 1024, 32, 96, 32, 96, 32);  // xa and t slices of a group of 3
  lora_dy_pair_case(seed(), 3, 4096, 16, 16, 0, 16, 0);       // fewer rows than blocks' splits
  // several tiles per block at ranks 8 and 32 (stage and reduction-buffer reuse in their
  // layouts), and column blocks that end part-way (1000 = 3 x 256 + 232)
  // q, k and v's passes in one launch, at Mistral-7B's widths and small ones, ranks 8, 16, 32
  lora_dy_pair_multi_case(seed(), 2085, {4096, 1024, 1024}, 16);
  lora_dy_pair_multi_case(seed(), 333, {256, 64, 64}, 8);
  lora_dy_pair_multi_case(seed(), 1000, {512, 128, 128}, 32);
  lora_dy_pair_multi_case(seed(), 97, {4096, 1024, 1024}, 16, 1);  // one share
  // k's gradient where the engine keeps it (dqkv_: q, k, v and the group's s T side by side)
  lora_dy_pair_case(seed(), 2085, 1024, 16, 48, 16, 48, 16, -1, 4096 + 2 * 1024 + 48, 4096);
  lora_dy_pair_case(seed(), 2085, 4096, 8, 8, 0, 8, 0);
  lora_dy_pair_case(seed(), 2085, 4096, 32, 32, 0, 32, 0);
  lora_dy_pair_case(seed(), 1500, 1000, 16, 16, 0, 16, 0);
  // the row shares at other slot counts: one share per column block (every block walks all
  // rows), and more slots than row tiles
  lora_dy_pair_case(seed(), 2085, 14336, 16, 16, 0, 16, 0, 1);
  lora_dy_pair_case(seed(), 1000, 1024, 32, 32, 0, 32, 0, 1000);
  const int slots16 = cuda::lora_dy_pair_slots(16, 0);
  ct::report_bool("lora_dy", "lora_dy_pair_slots(16) > 0 on this device", slots16 > 0,
                  "slots=" + std::to_string(slots16));
}

// swiglu_backward_lora's cases (also run alone, LORA4J_OPS_ONLY=swiglu_lora)
void test_swiglu_lora(ct::Rng& r) {
  auto seed = [&] { return uint64_t(r.integer(0, 1 << 30)); };
  swiglu_lora(seed(), 1024, 14336, 16, 16, true, true);  // Mistral-7B's down at r 16
  swiglu_lora(seed(), 1024, 14336, 8, 8, true, true);    // and at r 8
  swiglu_lora(seed(), 37, 14336, 8, 24, true, false);    // t a slice of a wider buffer
  swiglu_lora(seed(), 33, 200, 64, 64, true, false);     // one block of columns, most threads idle
  swiglu_lora(seed(), 5, 2056, 4, 4, true, false);       // a second block with one thread's columns
  swiglu_lora(seed(), 45, 2056, 12, 16, true, false);    // r 12, a partial token block and a third
                                                         // column block with one thread's columns
  swiglu_lora(seed(), 70, 3080, 9, 9, true, false);      // the lowest rank past 8
  swiglu_lora(seed(), 7, 100, 16, 16, false, false);     // I % 8 != 0: scalar
  swiglu_lora(seed(), 3, 64, 200, 200, false, false);    // r past kSwigluLoraMaxRank: scalar
}

// The down projection's input gradient with the SwiGLU backward as its epilogue
// (swiglu_dx_fused, Hopper): dh = dy W (+ s T A) is never written to global memory; its
// epilogue takes dh in bf16, as Hugging Face's autocast gives that gradient. Reference: dh in
// double rounded to bf16, then dgate and dup in double (norm-wise within 2e-3: bf16 outputs); and
// where every element is checked, the unfused kernel's arithmetic (swiglu_backward_scalar) on that
// dh: the fused dh is the fp32 sum in another order, so at most one element in 1,000 may round to
// another bf16 there (and its outputs then differ by about one bf16 step). In place (dgate = gate,
// dup = up, as the engine runs it) equals out of place bit for bit. samples > 0: that many
// random elements (and the last row's last column) are checked against double instead of all.
void swiglu_dx_case(uint64_t seed, int64_t n, int64_t d, int64_t I, int r, int64_t ldy, int64_t ldt,
                    float s, int64_t samples, int form) {
  const char* S = "swiglu_dx";
  const std::string tag = "form " + std::to_string(form) + " n=" + std::to_string(n) +
                          " d=" + std::to_string(d) + " I=" + std::to_string(I) +
                          " r=" + std::to_string(r) + " ldy=" + std::to_string(ldy) +
                          " ldt=" + std::to_string(ldt);
  const size_t m = size_t(n * I);
  Fill f(seed);
  Dev<bf> dy(size_t(n * ldy)), W(size_t(d * I)), t(size_t(std::max<int64_t>(n * ldt, 1))),
      A(size_t(std::max<int64_t>(int64_t(r) * I, 1))), g(m), u(m), dg(m), du(m), g2(m), u2(m);
  fill_dev(dy, 0, dy.n, f, 1.f);
  fill_dev(W, 0, W.n, f, 0.05f);
  fill_dev(t, 0, t.n, f, 1.f);
  fill_dev(A, 0, A.n, f, 0.1f);
  fill_dev(g, 0, m, f, 8.f);
  fill_dev(u, 0, m, f, 3.f);
  dg.poison();
  du.poison();
  cuda::SwigluDxParams p;
  p.dy = dy.p, p.ldy = ldy, p.w = W.p, p.ldw = I;
  if (r > 0) p.t = t.p, p.ldt = ldt, p.a = A.p, p.r = r, p.s = s;
  p.gate = g.p, p.up = u.p, p.dgate = dg.p, p.dup = du.p, p.n = n, p.d = d, p.I = I;
  p.form = form;
  const bool acc = cuda::swiglu_dx_fused_accepts(p);
  ct::report_bool(S, "taken on an sm_90 device " + tag, acc == is_sm90(),
                  acc ? "accepted" : "refused");
  if (!acc) return;
  check(cuda::swiglu_dx_fused(p, 0), "swiglu_dx_fused");
  copy_dev(g2, g);
  copy_dev(u2, u);
  cuda::SwigluDxParams q = p;
  q.gate = q.dgate = g2.p, q.up = q.dup = u2.p;
  check(cuda::swiglu_dx_fused(q, 0), "swiglu_dx_fused in place");
  CT_CUDA(cudaDeviceSynchronize());
  ct::report(S, "in place = out of place, dgate " + tag, bit_diff(g2, dg, 0, m), 0);
  ct::report(S, "in place = out of place, dup " + tag, bit_diff(u2, du, 0, m), 0);
  auto host_bf = [](const Dev<bf>& x) {
    std::vector<bf> h(x.n);
    CT_CUDA(cudaMemcpy(h.data(), x.p, x.n * sizeof(bf), cudaMemcpyDeviceToHost));
    std::vector<float> out(x.n);
    for (size_t i = 0; i < x.n; ++i) out[i] = __bfloat162float(h[i]);
    return out;
  };
  const std::vector<float> dyh = host_bf(dy), wh = host_bf(W), th = host_bf(t), ah = host_bf(A),
                           gh = host_bf(g), uh = host_bf(u), dgh = host_bf(dg), duh = host_bf(du);
  std::vector<size_t> els;
  if (samples <= 0) {
    els.resize(m);
    for (size_t e = 0; e < m; ++e) els[e] = e;
  } else {
    for (int64_t k = 0; k < samples; ++k) els.push_back(size_t(f.bits() % m));
    els.push_back(m - 1);
  }
  std::vector<float> got_g, got_u, ref_g, ref_u, dhf(samples <= 0 ? m : 0);
  for (size_t e : els) {
    const int64_t i = int64_t(e) / I, j = int64_t(e) % I;
    double dh = 0;
    for (int64_t k = 0; k < d; ++k) dh += double(dyh[size_t(i * ldy + k)]) * wh[size_t(k * I + j)];
    double lo = 0;
    for (int k = 0; k < r; ++k) lo += double(th[size_t(i * ldt + k)]) * ah[size_t(k * I + j)];
    dh += double(s) * lo;
    const double a = gh[e], b = uh[e], sg = 1.0 / (1.0 + std::exp(-a));
    ref_g.push_back(float(dh * b * sg * (1.0 + a * (1.0 - sg))));
    ref_u.push_back(float(dh * a * sg));
    got_g.push_back(dgh[e]);
    got_u.push_back(duh[e]);
    if (samples <= 0) dhf[e] = float(dh);
  }
  ct::report(S, "vs double, dgate " + tag, ct::rel_err(got_g, ref_g), 2e-3);
  ct::report(S, "vs double, dup " + tag, ct::rel_err(got_u, ref_u), 2e-3);
  if (samples > 0) return;
  // the unfused arithmetic on the double dh rounded to float
  Dev<float> dhd(m);
  Dev<bf> rg(m), ru(m);
  CT_CUDA(cudaMemcpy(dhd.p, dhf.data(), m * sizeof(float), cudaMemcpyHostToDevice));
  check(cuda::swiglu_backward_scalar(dhd.p, g.p, u.p, rg.p, ru.p, int64_t(m), 0),
        "swiglu_backward_scalar");
  // elements whose bits differ, and those more than one bf16 step apart by more than 1e-3 of the
  // outputs' root mean square (a sum that cancels to near zero may differ in relative terms)
  auto steps = [&](const Dev<bf>& x, const Dev<bf>& y, int64_t& far) {
    std::vector<uint16_t> hx(m), hy(m);
    CT_CUDA(cudaMemcpy(hx.data(), x.p, m * 2, cudaMemcpyDeviceToHost));
    CT_CUDA(cudaMemcpy(hy.data(), y.p, m * 2, cudaMemcpyDeviceToHost));
    auto val = [](uint16_t v) {
      const uint32_t w = uint32_t(v) << 16;  // a bf16 is the upper half of a float
      float x;
      std::memcpy(&x, &w, 4);
      return double(x);
    };
    double ss = 0;
    for (size_t e = 0; e < m; ++e) ss += val(hy[e]) * val(hy[e]);
    const double floor = 1e-3 * std::sqrt(ss / double(m));
    size_t off = 0;
    far = 0;
    for (size_t e = 0; e < m; ++e) {
      // bf16 bits as a monotone integer line (sign-magnitude folded), so 1 = adjacent values
      auto line = [](uint16_t v) { return v & 0x8000 ? -int64_t(v & 0x7FFF) : int64_t(v); };
      const int64_t dist = std::llabs(line(hx[e]) - line(hy[e]));
      off += dist != 0;
      far += dist > 1 && std::fabs(val(hx[e]) - val(hy[e])) > floor;
    }
    return double(off) / double(m);
  };
  int64_t fg = 0, fu = 0;
  ct::report(S, "vs unfused arithmetic on the same dh, dgate elements off " + tag,
             steps(dg, rg, fg), 1e-3);
  ct::report(S, "vs unfused arithmetic on the same dh, dup elements off " + tag, steps(du, ru, fu),
             1e-3);
  ct::report_bool(S, "vs unfused arithmetic: none further than one bf16 step and 1e-3 rms " + tag,
                  fg == 0 && fu == 0,
                  "dgate " + std::to_string(fg) + ", dup " + std::to_string(fu));
}

void test_swiglu_dx(ct::Rng& r) {
  auto seed = [&] { return uint64_t(r.integer(0, 1 << 30)); };
  // row, K and column tiles that end part-way (192 = 128 + 64, 600 = 9 x 64 + 24,
  // 1000 = 3 x 256 + 232), rank 16, scale 1.5 (not a power of two)
  for (int form = 1; form <= cuda::kSwigluDxForms; ++form) {
    swiglu_dx_case(seed(), 192, 600, 1000, 16, 600, 16, 1.5f, 0, form);
    swiglu_dx_case(seed(), 256, 256, 512, 0, 256, 0, 1.f, 0, form);  // without LoRA
    swiglu_dx_case(seed(), 130, 128, 264, 8, 136, 8, 2.f, 0, form);  // dy rows wider than d, r 8
    swiglu_dx_case(seed(), 200, 512, 768, 40, 512, 48, 0.75f, 0, form);  // r 40 in T rows of 48
    swiglu_dx_case(seed(), 129, 64, 256, 64, 64, 64, 1.f, 0, form);      // r 64, the largest
    // more tiles than blocks: each persistent block walks several (ring and buffer phases)
    swiglu_dx_case(seed(), 2200, 128, 2000, 16, 128, 16, 1.f, 0, form);
  }
  // Mistral-7B's down projection (d 4096, I 14336), rank 16, sampled, the default form
  swiglu_dx_case(seed(), 384, 4096, 14336, 16, 4096, 16, 2.f, 3000, 2);
  // calls it refuses: a rank past kSwigluDxMaxRank, T's row stride off 16 bytes, I % 8 != 0
  cuda::SwigluDxParams p;
  Dev<bf> x(size_t(1) << 16);
  p.dy = p.w = p.t = p.a = p.gate = p.up = x.p;
  p.dgate = p.dup = x.p;
  p.n = 16, p.d = 64, p.I = 64, p.ldy = 64, p.ldw = 64, p.ldt = 80, p.r = 72;
  ct::report_bool("swiglu_dx", "refuses r = 72", !cuda::swiglu_dx_fused_accepts(p), "");
  p.r = 5, p.ldt = 5;
  ct::report_bool("swiglu_dx", "refuses ldt = 5", !cuda::swiglu_dx_fused_accepts(p), "");
  p.ldt = 8, p.I = 60, p.ldw = 60;
  ct::report_bool("swiglu_dx", "refuses I = 60", !cuda::swiglu_dx_fused_accepts(p), "");
  p.I = 64, p.ldw = 64, p.form = cuda::kSwigluDxForms + 1;
  ct::report_bool("swiglu_dx", "refuses an unknown form", !cuda::swiglu_dx_fused_accepts(p), "");
  ct::report_bool("swiglu_dx", "a refused call returns cudaErrorNotSupported",
                  cuda::swiglu_dx_fused(p, 0) == cudaErrorNotSupported, "");
}

// The gate/up forward with the SwiGLU forward (swiglu_gu_sm90.cu): gate and up against the
// products in double rounded to bf16, h bitwise against the SwiGLU forward kernel applied to the
// kernel's own gate and up. An element may be more than one bf16 step from the double product
// only where the sum cancels: the fp32 accumulation's error, about sqrt(K) 2^-24 times the sum
// of the terms' magnitudes, is then above a step of the small result (cuBLAS's GEMM does the
// same). The bound per element: one bf16 step of the larger of the two values plus 2^-20
// sqrt(K) sum |x_k w_k|; a missed K block, a wrong row or column, or bf16 accumulation lands far
// outside it. samples > 0: that many random elements (and the last) instead of all.
void swiglu_gu_case(uint64_t seed, int64_t n, int64_t K, int64_t I, int64_t ldx, int64_t ldw,
                    int64_t samples) {
  const char* S = "swiglu_gu";
  const std::string tag = "n=" + std::to_string(n) + " K=" + std::to_string(K) +
                          " I=" + std::to_string(I) + " ldx=" + std::to_string(ldx) +
                          " ldw=" + std::to_string(ldw);
  const size_t m = size_t(n * I);
  Fill f(seed);
  Dev<bf> x(size_t(n * ldx)), wg(size_t(I * ldw)), wu(size_t(I * ldw)), g(m), u(m), h(m), h2(m);
  fill_dev(x, 0, x.n, f, 1.f);
  fill_dev(wg, 0, wg.n, f, 0.05f);
  fill_dev(wu, 0, wu.n, f, 0.05f);
  g.poison();
  u.poison();
  h.poison();
  cuda::SwigluGuParams p;
  p.x = x.p, p.ldx = ldx, p.wg = wg.p, p.wu = wu.p, p.ldwg = p.ldwu = ldw;
  p.gate = g.p, p.up = u.p, p.h = h.p, p.n = n, p.K = K, p.I = I;
  const bool acc = cuda::swiglu_gu_fused_accepts(p);
  ct::report_bool(S, "taken on an sm_90 device " + tag, acc == is_sm90(),
                  acc ? "accepted" : "refused");
  if (!acc) return;
  check(cuda::swiglu_gu_fused(p, 0), "swiglu_gu_fused");
  check(cuda::swiglu_forward_scalar(g.p, u.p, h2.p, int64_t(m), 0), "swiglu_forward_scalar");
  CT_CUDA(cudaDeviceSynchronize());
  ct::report(S, "h = the SwiGLU forward of its gate and up, bitwise " + tag, bit_diff(h, h2, 0, m),
             0);
  auto host_raw = [](const Dev<bf>& a) {
    std::vector<uint16_t> v(a.n);
    CT_CUDA(cudaMemcpy(v.data(), a.p, a.n * 2, cudaMemcpyDeviceToHost));
    return v;
  };
  auto val = [](uint16_t v) {
    const uint32_t w = uint32_t(v) << 16;  // a bf16 is the upper half of a float
    float y;
    std::memcpy(&y, &w, 4);
    return double(y);
  };
  const std::vector<uint16_t> xh = host_raw(x), gh = host_raw(wg), uh = host_raw(wu),
                              go = host_raw(g), uo = host_raw(u);
  std::vector<size_t> els;
  if (samples <= 0) {
    els.resize(m);
    for (size_t e = 0; e < m; ++e) els[e] = e;
  } else {
    for (int64_t k = 0; k < samples; ++k) els.push_back(size_t(f.bits() % m));
    els.push_back(m - 1);
  }
  // bf16 bits as a monotone integer line (sign-magnitude folded), so 1 = adjacent values
  auto line = [](uint16_t v) { return v & 0x8000 ? -int64_t(v & 0x7FFF) : int64_t(v); };
  auto step = [](double v) {  // a bf16 step at |v| (8 significant bits)
    int ex = 0;
    std::frexp(v, &ex);
    return std::ldexp(1.0, ex - 8);
  };
  std::vector<float> got_g, got_u, ref_g, ref_u;
  int64_t past_step = 0, far = 0;
  double worst = 0;  // the largest |got - double| over its bound
  auto judge = [&](uint16_t got, double ref, double mag) {
    const uint16_t rr = __bfloat16_as_ushort(__float2bfloat16_rn(float(ref)));
    if (std::llabs(line(got) - line(rr)) <= 1) return;
    ++past_step;
    const double gv = val(got), err = std::fabs(gv - ref),
                 bound = step(std::max(std::fabs(gv), std::fabs(ref))) +
                         std::ldexp(std::sqrt(double(K)) * mag, -20);
    worst = std::max(worst, err / bound);
    far += err > bound;
  };
  for (size_t e : els) {
    const int64_t i = int64_t(e) / I, j = int64_t(e) % I;
    double sg = 0, su = 0, mg = 0, mu = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double xv = val(xh[size_t(i * ldx + k)]), tg = xv * val(gh[size_t(j * ldw + k)]),
                   tu = xv * val(uh[size_t(j * ldw + k)]);
      sg += tg;
      su += tu;
      mg += std::fabs(tg);
      mu += std::fabs(tu);
    }
    judge(go[e], sg, mg);
    judge(uo[e], su, mu);
    got_g.push_back(float(val(go[e])));
    got_u.push_back(float(val(uo[e])));
    ref_g.push_back(float(sg));
    ref_u.push_back(float(su));
  }
  ct::report(S, "vs double, gate " + tag, ct::rel_err(got_g, ref_g), 4e-3);
  ct::report(S, "vs double, up " + tag, ct::rel_err(got_u, ref_u), 4e-3);
  ct::report_bool(S, "gate and up within the accumulation bound of the double products " + tag,
                  far == 0,
                  std::to_string(past_step) + " past one step, " + std::to_string(far) +
                      " past the bound (worst " + std::to_string(worst) + " of it)");
}

void test_swiglu_gu(ct::Rng& r) {
  auto seed = [&] { return uint64_t(r.integer(0, 1 << 30)); };
  // row, K and column tiles that end part-way (130 = 128 + 2, 600 = 9 x 64 + 24, 1000 = 10 x
  // 96 + 40), x and W rows wider than K
  swiglu_gu_case(seed(), 130, 600, 1000, 600, 600, 0);
  swiglu_gu_case(seed(), 192, 136, 264, 160, 144, 0);
  swiglu_gu_case(seed(), 64, 64, 96, 64, 64, 0);  // one tile, one K block
  // more tiles than blocks: each persistent block walks several (ring and buffer phases)
  swiglu_gu_case(seed(), 2200, 128, 2000, 128, 128, 0);
  // Mistral-7B's gate/up with the LoRA fold's 2 x 16 spare columns (K 4128), sampled
  swiglu_gu_case(seed(), 384, 4128, 14336, 4128, 4128, 3000);
  // calls it refuses: K % 8 != 0, I % 8 != 0, a row stride under K
  cuda::SwigluGuParams p;
  Dev<bf> x(size_t(1) << 16);
  p.x = p.wg = p.wu = x.p;
  p.gate = p.up = p.h = x.p;
  p.n = 16, p.K = 60, p.I = 64, p.ldx = 64, p.ldwg = p.ldwu = 64;
  ct::report_bool("swiglu_gu", "refuses K = 60", !cuda::swiglu_gu_fused_accepts(p), "");
  p.K = 64, p.I = 60;
  ct::report_bool("swiglu_gu", "refuses I = 60", !cuda::swiglu_gu_fused_accepts(p), "");
  p.I = 64, p.ldwu = 56;
  ct::report_bool("swiglu_gu", "refuses ldwu < K", !cuda::swiglu_gu_fused_accepts(p), "");
  ct::report_bool("swiglu_gu", "a refused call returns cudaErrorNotSupported",
                  cuda::swiglu_gu_fused(p, 0) == cudaErrorNotSupported, "");
}

void test_vectorized(ct::Rng& r) {
  auto seed = [&] { return uint64_t(r.integer(0, 1 << 30)); };
  // Mistral-7B, 4 x 2048 tokens: SwiGLU n * I, RMSNorm d 4096, RoPE q (32 heads) and k (8)
  vec_swiglu(seed(), int64_t(8192) * 14336, 0, true, true);
  test_swiglu_lora(r);
  test_lora_dy(r);
  test_lora_b(r);
  vec_rmsnorm(seed(), 8192, 4096, 0, true, true, true);
  rmsnorm_lo8(seed(), 64, 4096, 4096, 2.f, true);                 // Mistral-7B's width
  rmsnorm_lo8(seed(), 9, 256, 272, 40.f, true);                   // a wider row, large norm weights
  rmsnorm_lo8(seed(), 5, 1000, 1000, 0.5f, true);                 // d not a multiple of 16
  rmsnorm_lo8(seed(), 5, 70, 72, 1.f, false);                     // d % 4 != 0: scalar
  rmsnorm_y16(seed(), 64, 4096, 4144, 2.f, true);                 // Mistral-7B, LoRA columns beside
  rmsnorm_y16(seed(), 9, 256, 272, 40.f, true);                   // large norm weights
  rmsnorm_y16(seed(), 5, 70, 72, 1.f, false);                     // d % 4 != 0: scalar
  rmsnorm_y16(seed(), 5, 64, 66, 1.f, false);                     // ld % 4 != 0: scalar
  bf16_to_f16_case(seed(), 4096, 4144, 4144, 4144, 0.02f, true);  // q's folded weight
  bf16_to_f16_case(seed(), 8192, 48, 4144, 4144, 1.f, true);      // the group's x A^T columns
  bf16_to_f16_case(seed(), 7, 100, 104, 100, 1e5f, false);        // past fp16's range
  bf16_to_f16_case(seed(), 9, 64, 64, 72, 1e-6f, true);           // subnormal in fp16
  bf16_copy_case(seed(), 8192, 1024, 1024, 6192, 1.f, true);      // dk beside dq (Mistral-7B)
  bf16_copy_case(seed(), 4096, 4096, 4144, 4096, 1.f, true);  // q's weight without its B columns
  bf16_copy_case(seed(), 1000, 48, 48, 6192, 2.f, true);      // s T at s = 2
  bf16_copy_case(seed(), 77, 48, 48, 200, 1.5f, true);        // s T at s = 1.5 (rounded once)
  bf16_copy_case(seed(), 9, 100, 104, 100, 1.f, false);       // cols % 8 != 0: one at a time
  f32_to_bf16_case(seed(), int64_t(8192) * 4096, 0, 0);  // a layer's checkpoint, 7B at 4 x 2048
  for (int64_t n : {1, 7, 8, 9, 1003, 65543}) f32_to_bf16_case(seed(), n, 0, 0);  // tails
  f32_to_bf16_case(seed(), 1003, 1, 0);                  // x off 16 bytes: one a thread
  f32_to_bf16_case(seed(), 1003, 0, 3);                  // y off 16 bytes
  f32_to_bf16_case(seed(), 1003, 4, 8);                  // 16 bytes in both: still 8 a thread
  bf16_to_f32_case(seed(), int64_t(8192) * 4096, 0, 0);  // a checkpoint restored, 7B at 4 x 2048
  for (int64_t n : {1, 7, 8, 9, 1003, 65543}) bf16_to_f32_case(seed(), n, 0, 0);  // tails
  bf16_to_f32_case(seed(), 1003, 3, 0);                       // x off 16 bytes: one a thread
  bf16_to_f32_case(seed(), 1003, 0, 2);                       // y off 16 bytes
  bf16_to_f32_case(seed(), 1003, 8, 4);                       // 16 bytes in both: still 8 a thread
  e4m3_quantize_case(seed(), 37, 96, 112, 0.05f, true);       // a folded weight's row stride
  e4m3_quantize_case(seed(), 4096, 4096, 4096, 0.02f, true);  // q's weight at Mistral-7B
  e4m3_quantize_case(seed(), 1500, 64, 64, 1.f, true);        // more rows than blocks
  e4m3_quantize_case(seed(), 9, 100, 104, 0.1f, false);       // cols % 8 != 0: one at a time
  e4m3_quantize_case(seed(), 3, 5, 5, 300.f, false);          // past e4m3's range before scaling
  vec_rope(seed(), 8192, 32, 128, 0, 0, true, true, true);
  vec_rope(seed(), 8192, 8, 128, 0, 0, true, true, true);
  // tails, odd sizes and offsets that break 16-byte alignment
  for (int64_t n : {1, 5, 8, 77, 1003}) vec_swiglu(seed(), n, 0, true, false);
  vec_swiglu(seed(), 97 * 14336 + 3, 8, true, false);  // 16 bytes in: still aligned
  vec_swiglu(seed(), 1003, 1, false, false);
  vec_swiglu(seed(), 1003, 4, false, false);
  vec_rmsnorm(seed(), 5, 72, 0, true, true, false);
  vec_rmsnorm(seed(), 3, 1000, 0, true, true, false);
  vec_rmsnorm(seed(), 97, 64, 0, true, true, false);
  vec_rmsnorm(seed(), 33, 5120, 0, true, true, false);  // 5 chunks per thread
  vec_rmsnorm(seed(), 9, 6144, 0, true, true, false);
  vec_rmsnorm(seed(), 9, 8192, 0, true, false, false);  // backward: past its shared memory
  vec_rmsnorm(seed(), 9, 8200, 0, false, false, false);
  vec_rmsnorm(seed(), 7, 70, 0, false, false, false);  // d % 4 != 0
  vec_rmsnorm(seed(), 7, 77, 0, false, false, false);
  vec_rmsnorm(seed(), 5, 72, 1, false, false, false);
  vec_rmsnorm(seed(), 5, 72, 8, true, true, false);    // 32 bytes in: aligned
  strided_rmsnorm(seed(), 37, 4096, 4096 + 48, true);  // q, k, v's x A^T at r 16
  strided_rmsnorm(seed(), 5, 72, 72 + 8, true);
  strided_rmsnorm(seed(), 5, 72, 72 + 6, false);  // rows not on 8-byte boundaries
  strided_rmsnorm(seed(), 5, 70, 73, false);
  vec_rope(seed(), 97, 8, 64, 0, 0, true, true, false);
  vec_rope(seed(), 1025, 2, 16, 0, 0, true, true, false);
  vec_rope(seed(), 5, 3, 72, 0, 0, true, false, false);   // half 36: bf16 needs 8 per access
  vec_rope(seed(), 13, 5, 128, 0, 0, true, true, false);  // heads not a multiple of 4
  vec_rope(seed(), 7, 4, 12, 0, 0, false, false, false);
  vec_rope(seed(), 31, 8, 128, 1, 0, false, false, false);
  // q's and k's gradients where the engine keeps them (dqkv_ rows: q, k, v, then s T)
  rope_strided(seed(), 300, 32, 128, 4096 + 2 * 1024 + 48, 0);
  rope_strided(seed(), 300, 8, 128, 4096 + 2 * 1024 + 48, 4096);
  rope_strided(seed(), 77, 4, 64, 4 * 64 + 2 * 2 * 64 + 24, 4 * 64);  // 24: rank 8 x 3
  rope_strided(seed(), 45, 3, 64, 3 * 64 + 6, 2);          // 4-byte aligned rows: the scalar kernel
  vec_rope(seed(), 31, 8, 128, 0, 4, false, true, false);  // fp16 output 8 bytes in
  vec_rope(seed(), 31, 8, 128, 8, 8, true, true, false);
}

}  // namespace

int main() {
  // host side, so it runs without a device too: the e4m3 scale rule (the largest power of two S
  // with amax S <= 448)
  const float pow2_cases[][2] = {{448.f, 1.f},  {447.f, 1.f},    {224.f, 2.f},
                                 {500.f, 0.5f}, {0.05f, 8192.f}, {0.25f, 1024.f},
                                 {0.f, 1.f},    {INFINITY, 1.f}, {1e-38f, 0x1p100f}};
  for (const auto& c : pow2_cases)
    ct::report("fp8", "e4m3_pow2_scale(" + std::to_string(c[0]) + ")",
               std::fabs(double(cuda::e4m3_pow2_scale(c[0])) - double(c[1])), 0);
  // which calls lora_dy_pair takes (host side)
  {
    const bf* a = reinterpret_cast<const bf*>(uintptr_t(256));
    const bf* odd = reinterpret_cast<const bf*>(uintptr_t(264));
    ct::report_bool("lora_dy", "lora_dy_pair_supported: r 8, 16, 32; not 4, 12, 64",
                    cuda::lora_dy_pair_supported(a, 64, 64, 8, a, a, 8) &&
                        cuda::lora_dy_pair_supported(a, 64, 64, 16, a, a, 16) &&
                        cuda::lora_dy_pair_supported(a, 64, 64, 32, a, a, 32) &&
                        !cuda::lora_dy_pair_supported(a, 64, 64, 4, a, a, 8) &&
                        !cuda::lora_dy_pair_supported(a, 64, 64, 12, a, a, 16) &&
                        !cuda::lora_dy_pair_supported(a, 64, 64, 64, a, a, 64),
                    "");
    ct::report_bool("lora_dy", "lora_dy_pair_supported: not for O % 8, ldxa % 8 or 8-byte pointers",
                    !cuda::lora_dy_pair_supported(a, 68, 68, 16, a, a, 16) &&
                        !cuda::lora_dy_pair_supported(a, 64, 64, 16, a, a, 20) &&
                        !cuda::lora_dy_pair_supported(odd, 64, 64, 16, a, a, 16) &&
                        !cuda::lora_dy_pair_supported(a, 64, 64, 16, odd, a, 16) &&
                        !cuda::lora_dy_pair_supported(a, 64, 64, 16, a, odd, 16),
                    "");
    ct::report_bool("lora_dy",
                    "lora_dy_pair_supported: dy's row stride at least O, a multiple of 8",
                    cuda::lora_dy_pair_supported(a, 6192, 1024, 16, a, a, 48) &&
                        !cuda::lora_dy_pair_supported(a, 1020, 1024, 16, a, a, 48) &&
                        !cuda::lora_dy_pair_supported(a, 1028, 1024, 16, a, a, 48),
                    "");
    const float* fa = reinterpret_cast<const float*>(uintptr_t(256));
    const float* f8 = reinterpret_cast<const float*>(uintptr_t(264));
    ct::report_bool("lora_b", "lora_b_residual_supported: r 8, 16, 32; O % 4 (r 32: O % 2)",
                    cuda::lora_b_residual_supported(a, 8, a, 8, fa, fa, 4096) &&
                        cuda::lora_b_residual_supported(a, 16, a, 16, nullptr, fa, 4096) &&
                        cuda::lora_b_residual_supported(a, 32, a, 32, f8, f8, 4098) &&
                        !cuda::lora_b_residual_supported(a, 16, a, 16, fa, fa, 4098) &&
                        !cuda::lora_b_residual_supported(a, 16, a, 12, fa, fa, 4096) &&
                        !cuda::lora_b_residual_supported(a, 64, a, 64, fa, fa, 4096),
                    "");
    ct::report_bool("lora_b", "lora_b_residual_supported: not for ldxa % 8 or misaligned pointers",
                    !cuda::lora_b_residual_supported(a, 20, a, 16, fa, fa, 4096) &&
                        !cuda::lora_b_residual_supported(odd, 16, a, 16, fa, fa, 4096) &&
                        !cuda::lora_b_residual_supported(a, 16, odd, 16, fa, fa, 4096) &&
                        !cuda::lora_b_residual_supported(a, 16, a, 16, f8, fa, 4096) &&
                        !cuda::lora_b_residual_supported(a, 16, a, 16, fa, f8, 4096),
                    "");
    {
      const cuda::LoraDyPairProj ok3[3] = {{a, 64, a, a, nullptr, nullptr},
                                           {a, 16, a, a, nullptr, nullptr},
                                           {a, 16, a, a, nullptr, nullptr}};
      const cuda::LoraDyPairProj bad[2] = {{a, 64, a, a, nullptr, nullptr},
                                           {odd, 16, a, a, nullptr, nullptr}};
      const int64_t widths[3] = {4096, 1024, 1024};
      ct::report_bool(
          "lora_dy",
          "lora_dy_pair_multi_supported: up to 3 projections, each as lora_dy_pair_supported",
          cuda::lora_dy_pair_multi_supported(ok3, 3, 96 + 48, 16, 48) &&
              cuda::lora_dy_pair_multi_supported(ok3, 1, 64, 16, 16) &&
              !cuda::lora_dy_pair_multi_supported(ok3, 0, 96, 16, 48) &&
              !cuda::lora_dy_pair_multi_supported(ok3, 4, 96, 16, 48) &&
              !cuda::lora_dy_pair_multi_supported(bad, 2, 96, 16, 48) &&
              !cuda::lora_dy_pair_multi_supported(ok3, 3, 60, 16, 48),
          "");
      // scratch: each projection's column blocks' partials of T plus one wave's dB partials
      const size_t want = size_t(16 + 4 + 4) * 8192 * 16 + size_t(11) * 6144 * 16;
      ct::report_bool(
          "lora_dy", "lora_dy_pair_multi_scratch_floats at 4 x 2048, q/k/v, 264 slots",
          cuda::lora_dy_pair_multi_scratch_floats(8192, widths, 3, 16, 264) == want,
          std::to_string(cuda::lora_dy_pair_multi_scratch_floats(8192, widths, 3, 16, 264)) +
              ", want " + std::to_string(want));
    }
    ct::report_bool("lora_dy", "lora_dy_pair refuses 0 slots; no scratch for 0 slots",
                    cuda::lora_dy_pair(a, 64, 64, 64, a, 16, a, 16, nullptr, 16, nullptr, nullptr,
                                       0, 0) == cudaErrorInvalidValue &&
                        cuda::lora_dy_pair_scratch_floats(64, 64, 16, 0) == 0,
                    "");
  }
  {  // which calls gemv takes (host side)
    cuda::GemvParams g;
    g.x = g.w = reinterpret_cast<const void*>(uintptr_t(256));
    g.y = reinterpret_cast<void*>(uintptr_t(512));
    g.N = 10;
    g.K = g.ldw = 64;
    const cuda::GemvParams ok = g;
    bool refused = cuda::gemv_accepts(ok);
    for (int k = 0; k < 6; ++k) {
      cuda::GemvParams b = ok;
      if (k == 0) b.K = 60;                                             // K % 8
      if (k == 1) b.ldw = 68;                                           // ldw % 8
      if (k == 2) b.ldw = 56;                                           // ldw < K
      if (k == 3) b.x = reinterpret_cast<const void*>(uintptr_t(264));  // x 8-byte aligned
      if (k == 4) b.w = reinterpret_cast<const void*>(uintptr_t(264));  // w 8-byte aligned
      if (k == 5) b.beta = 1.f, b.y = nullptr;                          // no output
      refused =
          refused && !cuda::gemv_accepts(b) && cuda::gemv(b, nullptr) == cudaErrorInvalidValue;
    }
    ct::report_bool(
        "gemv", "gemv_accepts: K, ldw multiples of 8, ldw >= K, x and w 16-byte aligned, y given",
        refused, "");
    cuda::GemvPairsParams pp;
    pp.count = 2;
    pp.pos = reinterpret_cast<const int32_t*>(uintptr_t(256));
    pp.inv_freq = reinterpret_cast<const float*>(uintptr_t(256));
    cuda::GemvPairSegment& r = pp.seg[0];
    r.kind = cuda::GemvPairKind::kRope;
    r.x = r.w0 = reinterpret_cast<const void*>(uintptr_t(256));
    r.y = reinterpret_cast<void*>(uintptr_t(512));
    r.f16 = true;
    r.N = 256, r.K = r.ldw0 = 64, r.D = 128;
    cuda::GemvPairSegment& h = pp.seg[1];
    h = r;
    h.kind = cuda::GemvPairKind::kSwiglu;
    h.f16 = false;
    h.w1 = h.w0;
    h.ldw1 = 64;
    const cuda::GemvPairsParams pok = pp;
    bool prefused = cuda::gemv_pairs_accepts(pok);
    for (int k = 0; k < 11; ++k) {
      cuda::GemvPairsParams b = pok;
      if (k == 0) b.count = 0;                                                 // no segment
      if (k == 1) b.count = 4;                                                 // too many
      if (k == 2) b.seg[0].D = 96;                                             // N % D
      if (k == 3) b.seg[0].f16 = false;                                        // rope: fp16
      if (k == 4) b.pos = nullptr;                                             // rope: position
      if (k == 5) b.seg[1].w1 = nullptr;                                       // swiglu: up
      if (k == 6) b.seg[1].ldw1 = 60;                                          // stride % 8
      if (k == 7) b.seg[1].K = 72;                                             // ldw < K
      if (k == 8) b.seg[0].x = reinterpret_cast<const void*>(uintptr_t(264));  // x 8-byte aligned
      if (k == 9) b.seg[0].kind = cuda::GemvPairKind::kPair;                   // pair: bf16
      if (k == 10) b.seg[1].y = nullptr;                                       // no output
      prefused = prefused && !cuda::gemv_pairs_accepts(b) &&
                 cuda::gemv_pairs(b, nullptr) == cudaErrorInvalidValue;
    }
    ct::report_bool("gemv pairs",
                    "gemv_pairs_accepts: 1-3 segments, rope fp16 with N % D and a position, "
                    "strides, alignment, weights and outputs given",
                    prefused, "");
    cuda::DecodeAttentionParams d;
    d.q = reinterpret_cast<const __half*>(uintptr_t(256));
    d.k = d.q;
    d.v = reinterpret_cast<const bf*>(uintptr_t(256));
    d.o = reinterpret_cast<bf*>(uintptr_t(512));
    d.H = 32, d.KH = 8, d.D = 128, d.Sk = 10, d.kv_stride = 1024;
    bool dref = cuda::attention_decode_accepts(d);
    for (int k = 0; k < 5; ++k) {
      cuda::DecodeAttentionParams b = d;
      if (k == 0) b.D = 96;            // head_dim 64 or 128 only
      if (k == 1) b.KH = 3;            // H % KH
      if (k == 2) b.KH = 2;            // 16 query heads a kv head
      if (k == 3) b.Sk = 0;            // no key
      if (k == 4) b.kv_stride = 1000;  // rows narrower than KH x D
      dref = dref && !cuda::attention_decode_accepts(b) &&
             cuda::attention_decode(b, nullptr) == cudaErrorInvalidValue;
    }
    ct::report_bool(
        "decode attention",
        "attention_decode_accepts: D 64 / 128, H / KH whole and <= 8, Sk > 0, row stride", dref,
        "");
  }
  if (ct::failures() > 0) return 1;
  ct::skip_without_gpu();
  cpu::ThreadPool tp(0);
  g_tp = &tp;
  ct::Rng r(20261129);
  // LORA4J_OPS_ONLY=NAME: one suite alone (scripts/gpu/run.sh's "cudasan" step runs lora_dy and
  // attention under compute-sanitizer; A/B calls time swiglu_lora)
  struct Suite {
    const char* name;
    void (*run)(ct::Rng&);
  };
  const Suite suites[] = {
      {"swiglu_lora", test_swiglu_lora},
      {"lora_dy", test_lora_dy},
      {"swiglu_dx", test_swiglu_dx},
      {"swiglu_gu", test_swiglu_gu},
      {"lora_b", test_lora_b},
      {"gemv", test_gemv},
      {"gemv_pairs", test_gemv_pairs},
      {"rmsnorm_lora_a", test_rmsnorm_lora_a},
      {"decode_attention", test_decode_attention},
      {"greedy_argmax", test_greedy_argmax},
      {"attention", [](ct::Rng& rng) {
         // the Hopper kernels' cases at small sizes: partial tiles, GQA
         // groups of 4 and 1, hd64's atomics and hd128's bulk reduce-add of dQ
         for (const AttnCase& c : {AttnCase{3, 97, 8, 2, 128, 0, false, false},
                                   AttnCase{2, 300, 4, 4, 128, 0, false, false},
                                   AttnCase{1, 333, 8, 1, 64, 0, false, false},
                                   AttnCase{2, 300, 4, 1, 128, 0, false, true, 7, true}})
           test_attention(rng, c);
       }}};
  if (const char* only = std::getenv("LORA4J_OPS_ONLY"))
    for (const Suite& su : suites)
      if (std::strcmp(only, su.name) == 0) {
        su.run(r);
        std::printf("test_ops_cuda (%s only): %d failure(s)\n", su.name, ct::failures());
        return ct::failures() == 0 ? 0 : 1;
      }

  test_embedding<float>(r, 97, 1000, 257);
  test_embedding<bf>(r, 97, 1000, 4096);
  test_add_f32_slices(r, 16 * 4096, 3);  // q, k, v's dLoRA_A at rank 16
  test_add_f32_slices(r, 1000003, 2);    // a length past the grid's cap, odd
  test_add_f32_slices(r, 5, 1);
  test_add_f32_refusals();
  test_copy2d_batched(r);
  test_gemv(r);
  test_gemv_pairs(r);
  test_rmsnorm_lora_a(r);
  test_decode_attention(r);
  test_greedy_argmax(r);
  for (int64_t n : {1, 97, 1025}) test_rmsnorm(r, n, n == 1 ? 64 : 4096);
  test_rmsnorm(r, 200, 1000);
  test_rmsnorm_bf16(r, 1025, 4096, 0);  // Mistral-7B's width: vectorized
  test_rmsnorm_bf16(r, 97, 5120, 0);    // Nemo's width
  test_rmsnorm_bf16(r, 33, 4096, 3);    // x off 16-byte alignment: scalar
  test_rmsnorm_bf16(r, 7, 1002, 0);     // d % 4 != 0: scalar
  test_rope(r, 97, 8, 64, 10000.0);
  test_rope(r, 200, 4, 128, 1e6);
  test_rope(r, 1025, 2, 16, 10000.0);
  test_swiglu(r, 97 * 14336 + 3);
  test_vectorized(r);
  test_swiglu_dx(r);
  test_swiglu_gu(r);
  test_cross_entropy(r, 97, 1000);
  test_cross_entropy(r, 33, 4099);
  test_cross_entropy_bf16(r, 97, 32768, 3.f, true);  // Mistral v0.3: 8 vectors per thread
  test_cross_entropy_bf16(r, 33, 32000, 8.f, true);  // v0.1: the last vectors partly idle
  test_cross_entropy_bf16(r, 64, 4096, 3.f, true);   // one vector per thread
  test_cross_entropy_bf16(r, 40, 6000, 3.f, true);   // two vectors per thread
  test_cross_entropy_bf16(r, 50, 12000, 3.f, true);  // 3 vectors, instantiated as 4
  test_cross_entropy_bf16(r, 17, 1000, 3.f, true);   // fewer vectors than threads
  test_cross_entropy_bf16(r, 21, 4099, 3.f, false);  // not a multiple of 8: three passes
  test_cross_entropy_bf16(r, 5, 40000, 3.f, false);  // past 32768: three passes
  test_adamw(r, 1000003);

  std::vector<AttnCase> cases = {
      {1, 1, 4, 4, 64, 0, false, false},
      {2, 97, 4, 2, 64, 0, true, false},
      {2, 200, 8, 2, 128, 0, true, true},
      {1, 1025, 4, 1, 128, 0, false, false},
      {2, 97, 4, 4, 128, 16, true, false},
      {1, 1025, 8, 2, 64, 256, false, true},
      {3, 200, 4, 4, 64, 0, false, true},
      {2, 97, 4, 2, 16, 8, true, false},
      {1, 200, 2, 1, 32, 0, true, true},
      {1, 4096, 4, 1, 128, 0, false, false},
      {1, 4096, 4, 4, 64, 1024, true, true},
      {1, 1, 8, 2, 128, 0, true, false},
      // causal, GQA, no mask: the cases the Hopper forward and backward take (both kernels run)
      {1, 1, 8, 2, 128, 0, false, false},
      {3, 97, 8, 2, 128, 0, false, false},
      {2, 200, 8, 2, 128, 0, false, false},
      {4, 2048, 8, 2, 128, 0, false, false},
      {2, 4096, 4, 1, 128, 0, false, false},
      {2, 1025, 8, 2, 64, 0, false, false},
      {2, 300, 4, 4, 128, 0, false, false},  // one head per KV group, a partial last key block
      {1, 333, 8, 1, 64, 0, false, false},   // eight heads per KV group at hd64
      // windows take the Hopper kernels: cutting nothing (Mistral v0.1's 4096 on shorter rows;
      // exactly S), the farthest pair only (S - 1), less than a tile, several tiles, not a
      // multiple of a tile, and with packed segments
      {1, 1025, 8, 2, 128, 4096, false, false},
      {2, 300, 4, 1, 128, 300, false, false},
      {2, 300, 4, 1, 128, 299, false, false},
      {2, 1025, 8, 2, 128, 100, false, false},
      {1, 2048, 8, 2, 128, 512, false, false},
      {2, 1500, 4, 1, 128, 333, false, false},
      {2, 1025, 8, 2, 64, 257, false, false},
      {2, 1200, 8, 2, 128, 400, false, true, 300, true},
      // packed rows whose segments are runs take the Hopper kernels too: segments longer than a
      // tile, several per tile, the trainer's layout (ids 1, 2, ... and a padding run of 0), and
      // ids that recur (not runs: mma.sync only)
      {2, 1025, 8, 2, 128, 0, false, true, 0},
      {2, 700, 8, 2, 128, 0, false, true, 40},
      {3, 300, 4, 1, 128, 0, false, true, 7},
      {2, 2048, 8, 2, 128, 0, false, true, 300, true},
      {2, 513, 8, 2, 64, 0, false, true, 50, true},
      {1, 1025, 8, 1, 64, 0, false, true, 200},
      {2, 300, 4, 2, 128, 0, false, true, 30, false, true},
  };
  test_segment_runs();
  for (const AttnCase& c : cases) test_attention(r, c);
  test_attention_decode(r, 2, 1025, 8, 2, 128, 1);
  test_attention_decode(r, 1, 300, 8, 2, 128, 77);
  test_attention_decode(r, 1, 2048, 8, 2, 64, 130);
  test_attention_decode(r, 2, 2048, 8, 2, 128, 130, 512);  // v0.1-like: the window cuts
  test_attention_decode(r, 1, 1025, 8, 2, 128, 1, 300);

  std::printf("test_ops_cuda: %d failure(s)\n", ct::failures());
  return ct::failures() == 0 ? 0 : 1;
}
