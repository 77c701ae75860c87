// Every CPU op against an independent double-precision reference: forwards against plain
// loops in double, every backward against central finite differences (in double, of a random
// linear functional L = sum c * y of the op's fp32 output). Fixed seeds; small odd shapes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "cpu/ops_internal.h"
#include "cpu/thread_pool.h"
#include "test_util.h"

using namespace lora4j::cpu;
using testutil::check_err;
using testutil::check_true;
using testutil::rel_err;
using testutil::worst_of;
using Vec = std::vector<float>;

namespace {

constexpr double kFdTol = 2e-3;  // norm-wise, FD of an fp32 function with h = 1e-2
constexpr float kH = 1e-2f;

double dotd(const Vec& c, const Vec& y) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += double(c[i]) * double(y[i]);
  return s;
}

// Central differences of f() with respect to every element of x (f reads x).
std::vector<double> fd_grad(Vec& x, const std::function<double()>& f) {
  std::vector<double> g(x.size());
  for (size_t k = 0; k < x.size(); ++k) {
    float x0 = x[k];
    float xp = x0 + kH, xm = x0 - kH;
    x[k] = xp;
    double fp = f();
    x[k] = xm;
    double fm = f();
    x[k] = x0;
    g[k] = (fp - fm) / (double(xp) - double(xm));
  }
  return g;
}

void test_linear(ThreadPool* tp) {
  testutil::Rng rng(11);
  const int64_t n = 13, in = 37, out = 19;
  Vec x(n * in), w(out * in), y(n * out), c(n * out);
  rng.fill(x);
  rng.fill(w);
  rng.fill(c);
  linear_forward(tp, x.data(), w.data(), y.data(), n, in, out, false);
  std::vector<double> ref(n * out);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double s = 0;
      for (int64_t k = 0; k < in; ++k) s += double(x[i * in + k]) * w[o * in + k];
      ref[i * out + o] = s;
    }
  check_err("linear_forward vs double", rel_err(y, ref, y.size()), 1e-6);
  Vec y2 = y;
  linear_forward(tp, x.data(), w.data(), y2.data(), n, in, out, true);
  for (auto& r : ref) r *= 2;
  check_err("linear_forward accumulate", rel_err(y2, ref, y.size()), 1e-6);

  auto L = [&] {
    linear_forward(nullptr, x.data(), w.data(), y.data(), n, in, out, false);
    return dotd(c, y);
  };
  Vec dx(n * in, 0.5f), dw(out * in, 0.25f);
  linear_backward_input(tp, c.data(), w.data(), dx.data(), n, in, out, false);
  check_err("linear_backward_input vs FD", rel_err(dx, fd_grad(x, L), dx.size()), kFdTol);
  linear_backward_weight(tp, c.data(), x.data(), dw.data(), n, in, out);
  for (auto& v : dw) v -= 0.25f;  // it accumulates
  check_err("linear_backward_weight (accumulating) vs FD", rel_err(dw, fd_grad(w, L), dw.size()),
            kFdTol);
  Vec dx2(n * in, 1.0f);
  linear_backward_input(tp, c.data(), w.data(), dx2.data(), n, in, out, true);
  for (size_t i = 0; i < dx2.size(); ++i) dx2[i] -= 1.0f;
  check_err("linear_backward_input accumulate", rel_err(dx2, dx, dx.size()), 1e-6);
}

// The dense products at shapes that cut their register tiles and cache blocks part-way (rows,
// outputs, the 8-lane width, the 16-column tiles and 256-column blocks of the input gradient),
// with rows of zero coefficients (masked tokens), against double; each kernel set the machine
// has (AVX2 + FMA and the baseline), with 3 threads bitwise equal to 1.
void test_linear_blocks(ThreadPool* tp) {
  testutil::Rng rng(23);
  struct Shape {
    int64_t n, in, out;
  };
  const Shape shapes[] = {{97, 531, 290}, {64, 4096, 77}, {1, 300, 5}, {7, 16, 129}};
  ThreadPool tp3(3);
  const bool avx2 = linear_uses_avx2();
  for (int pass = 0; pass < (avx2 ? 2 : 1); ++pass) {
    allow_linear_avx2(pass == 0);
    const std::string set = linear_uses_avx2() ? " (AVX2 + FMA)" : " (baseline)";
    for (const Shape& sh : shapes) {
      const int64_t n = sh.n, in = sh.in, out = sh.out;
      const std::string tag = " n=" + std::to_string(n) + " in=" + std::to_string(in) +
                              " out=" + std::to_string(out) + set;
      Vec x(n * in), w(out * in), c(n * out);
      rng.fill(x);
      rng.fill(w);
      rng.fill(c);
      for (int64_t i = 2; i < n; i += 5) std::fill_n(c.data() + i * out, out, 0.f);
      std::vector<double> yref(n * out), dxref(n * in, 0.0);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t o = 0; o < out; ++o) {
          double sum = 0;
          for (int64_t k = 0; k < in; ++k) sum += double(x[i * in + k]) * w[o * in + k];
          yref[i * out + o] = sum;
          for (int64_t k = 0; k < in; ++k)
            dxref[i * in + k] += double(c[i * out + o]) * w[o * in + k];
        }
      Vec y(n * out), y3(n * out), dx(n * in, 7.f), dx3(n * in, 7.f);
      linear_forward(tp, x.data(), w.data(), y.data(), n, in, out, false);
      check_err("linear_forward vs double" + tag, rel_err(y, yref, y.size()), 1e-6);
      linear_forward(&tp3, x.data(), w.data(), y3.data(), n, in, out, false);
      check_true("linear_forward: 3 threads bitwise equal to 2" + tag,
                 std::memcmp(y.data(), y3.data(), y.size() * 4) == 0);
      linear_backward_input(tp, c.data(), w.data(), dx.data(), n, in, out, false);
      check_err("linear_backward_input vs double" + tag, rel_err(dx, dxref, dx.size()), 1e-6);
      linear_backward_input(&tp3, c.data(), w.data(), dx3.data(), n, in, out, false);
      check_true("linear_backward_input: 3 threads bitwise equal to 2" + tag,
                 std::memcmp(dx.data(), dx3.data(), dx.size() * 4) == 0);
      Vec dxa(n * in, 1.f);
      linear_backward_input(tp, c.data(), w.data(), dxa.data(), n, in, out, true);
      for (auto& v : dxa) v -= 1.f;
      check_err("linear_backward_input accumulate" + tag, rel_err(dxa, dxref, dxa.size()), 1e-6);
      // dw = c^T x: over rows of dw, or over its columns when it has few rows (out 5)
      std::vector<double> dwref(out * in, 0.0);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t o = 0; o < out; ++o)
          for (int64_t k = 0; k < in; ++k)
            dwref[o * in + k] += double(c[i * out + o]) * x[i * in + k];
      Vec dw(out * in, 0.f), dw3(out * in, 0.f);
      linear_backward_weight(tp, c.data(), x.data(), dw.data(), n, in, out);
      check_err("linear_backward_weight vs double" + tag, rel_err(dw, dwref, dw.size()), 1e-6);
      linear_backward_weight(&tp3, c.data(), x.data(), dw3.data(), n, in, out);
      check_true("linear_backward_weight: 3 threads bitwise equal to 2" + tag,
                 std::memcmp(dw.data(), dw3.data(), dw.size() * 4) == 0);
    }
  }
  allow_linear_avx2(true);
}

void test_lora_linear(ThreadPool* tp) {
  testutil::Rng rng(12);
  const int64_t n = 11, in = 21, out = 17, r = 5;
  const float s = 1.7f;
  Vec x(n * in), w(out * in), a(r * in), b(out * r), xa(n * r), y(n * out), c(n * out);
  rng.fill(x);
  rng.fill(w);
  rng.fill(a);
  rng.fill(b);
  rng.fill(c);
  lora_linear_forward(tp, x.data(), w.data(), a.data(), b.data(), s, xa.data(), y.data(), n, in,
                      out, r);
  std::vector<double> ref(n * out);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double acc = 0;
      for (int64_t k = 0; k < in; ++k) acc += double(x[i * in + k]) * w[o * in + k];
      for (int64_t j = 0; j < r; ++j) {
        double u = 0;
        for (int64_t k = 0; k < in; ++k) u += double(x[i * in + k]) * a[j * in + k];
        acc += s * u * b[o * r + j];
      }
      ref[i * out + o] = acc;
    }
  check_err("lora_linear_forward vs double", rel_err(y, ref, y.size()), 1e-6);

  auto L = [&] {
    Vec xa2(n * r);
    lora_linear_forward(nullptr, x.data(), w.data(), a.data(), b.data(), s, xa2.data(), y.data(), n,
                        in, out, r);
    return dotd(c, y);
  };
  lora_linear_forward(tp, x.data(), w.data(), a.data(), b.data(), s, xa.data(), y.data(), n, in,
                      out, r);
  Vec dx(n * in, 9.0f), da(r * in, 0.5f), db(out * r, -0.5f), tmp(n * r);
  lora_linear_backward(tp, c.data(), x.data(), w.data(), a.data(), b.data(), xa.data(), s,
                       dx.data(), da.data(), db.data(), tmp.data(), n, in, out, r);
  for (auto& v : da) v -= 0.5f;
  for (auto& v : db) v += 0.5f;
  check_err("lora_linear_backward dx vs FD", rel_err(dx, fd_grad(x, L), dx.size()), kFdTol);
  check_err("lora_linear_backward dA (accumulating) vs FD", rel_err(da, fd_grad(a, L), da.size()),
            kFdTol);
  check_err("lora_linear_backward dB (accumulating) vs FD", rel_err(db, fd_grad(b, L), db.size()),
            kFdTol);
  // no adapter: y = x W^T, dx = dy W
  Vec y0(n * out), dx0(n * in);
  lora_linear_forward(tp, x.data(), w.data(), nullptr, nullptr, s, nullptr, y0.data(), n, in, out,
                      r);
  Vec yl(n * out);
  linear_forward(nullptr, x.data(), w.data(), yl.data(), n, in, out, false);
  check_err("lora_linear_forward without adapter = linear", rel_err(y0, yl, y0.size()), 0);
  lora_linear_backward(tp, c.data(), x.data(), w.data(), nullptr, nullptr, nullptr, s, dx0.data(),
                       nullptr, nullptr, nullptr, n, in, out, r);
  Vec dxl(n * in);
  linear_backward_input(nullptr, c.data(), w.data(), dxl.data(), n, in, out, false);
  check_err("lora_linear_backward without adapter = linear", rel_err(dx0, dxl, dx0.size()), 0);
}

void test_rmsnorm(ThreadPool* tp) {
  testutil::Rng rng(13);
  const int64_t n = 9, d = 35;
  const float eps = 1e-5f;
  Vec x(n * d), w(d), y(n * d), rstd(n), c(n * d);
  rng.fill(x, -2, 2);
  rng.fill(w, 0.5f, 1.5f);
  rng.fill(c);
  rmsnorm_forward(tp, x.data(), w.data(), y.data(), rstd.data(), n, d, eps);
  std::vector<double> ref(n * d);
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0;
    for (int64_t k = 0; k < d; ++k) ss += double(x[i * d + k]) * x[i * d + k];
    double r = 1.0 / std::sqrt(ss / d + eps);
    for (int64_t k = 0; k < d; ++k) ref[i * d + k] = x[i * d + k] * r * w[k];
  }
  check_err("rmsnorm_forward vs double", rel_err(y, ref, y.size()), 1e-6);
  auto L = [&] {
    Vec r2(n);
    rmsnorm_forward(nullptr, x.data(), w.data(), y.data(), r2.data(), n, d, eps);
    return dotd(c, y);
  };
  Vec dx(n * d, 3.0f);
  rmsnorm_backward(tp, c.data(), x.data(), w.data(), rstd.data(), dx.data(), n, d, false);
  check_err("rmsnorm_backward vs FD", rel_err(dx, fd_grad(x, L), dx.size()), kFdTol);
  Vec dx2(n * d, 3.0f);
  rmsnorm_backward(tp, c.data(), x.data(), w.data(), rstd.data(), dx2.data(), n, d, true);
  for (auto& v : dx2) v -= 3.0f;
  check_err("rmsnorm_backward accumulate", rel_err(dx2, dx, dx.size()), 1e-6);
}

void test_rope(ThreadPool* tp) {
  testutil::Rng rng(14);
  for (double theta : {10000.0, 1e6}) {
    const int64_t n = 10, heads = 3, D = 12;
    Vec x(n * heads * D), c(x.size());
    rng.fill(x);
    rng.fill(c);
    std::vector<int32_t> pos(n);
    for (int64_t t = 0; t < n; ++t) pos[t] = int32_t(rng.below(200));
    Vec y = x;
    rope_forward(tp, y.data(), pos.data(), n, heads, D, theta);
    // reference: transformers' fp32 angles, rotation in double
    std::vector<double> ref(x.size());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < D / 2; ++i) {
          float inv = 1.0f / float(std::pow(double(float(theta)), double(float(2 * i) / float(D))));
          float ang = float(pos[t]) * inv;
          double cs = double(float(std::cos(double(ang)))),
                 sn = double(float(std::sin(double(ang))));
          const float* xh = x.data() + (t * heads + h) * D;
          double* rh = ref.data() + (t * heads + h) * D;
          rh[i] = xh[i] * cs - xh[i + D / 2] * sn;
          rh[i + D / 2] = xh[i + D / 2] * cs + xh[i] * sn;
        }
    std::string th = " theta=" + std::to_string(int64_t(theta));
    check_err("rope_forward vs double" + th, rel_err(y, ref, y.size()), 1e-6);
    Vec back = y;
    rope_backward(tp, back.data(), pos.data(), n, heads, D, theta);
    check_err("rope_backward(rope_forward(x)) = x" + th, rel_err(back, x, x.size()), 1e-6);
    auto L = [&] {
      Vec z = x;
      rope_forward(nullptr, z.data(), pos.data(), n, heads, D, theta);
      return dotd(c, z);
    };
    Vec dx = c;
    rope_backward(tp, dx.data(), pos.data(), n, heads, D, theta);
    check_err("rope_backward vs FD" + th, rel_err(dx, fd_grad(x, L), dx.size()), kFdTol);
  }
}

// Plain attention in double with the visibility rule written out directly.
void attention_ref(const Vec& q, const Vec& k, const Vec& v, const AttentionMask& m, int64_t B,
                   int64_t S, int64_t H, int64_t KH, int64_t D, std::vector<double>& out) {
  out.assign(size_t(B * S * H * D), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        int64_t g = h / (H / KH);
        std::vector<double> s(S, -INFINITY);
        double mx = -INFINITY;
        for (int64_t j = 0; j < S; ++j) {
          bool see = j <= i;
          if (m.window > 0 && !(i - m.window < j)) see = false;
          if (m.key_mask && m.key_mask[b * S + j] == 0) see = false;
          if (m.segments && m.segments[b * S + i] != m.segments[b * S + j]) see = false;
          if (!see) continue;
          double acc = 0;
          for (int64_t e = 0; e < D; ++e)
            acc += double(q[((b * S + i) * H + h) * D + e]) * k[((b * S + j) * KH + g) * D + e];
          s[j] = acc / std::sqrt(double(D));
          mx = std::max(mx, s[j]);
        }
        if (mx == -INFINITY) continue;
        double sum = 0;
        for (int64_t j = 0; j < S; ++j) sum += s[j] == -INFINITY ? 0 : std::exp(s[j] - mx);
        for (int64_t j = 0; j < S; ++j) {
          if (s[j] == -INFINITY) continue;
          double p = std::exp(s[j] - mx) / sum;
          for (int64_t e = 0; e < D; ++e)
            out[((b * S + i) * H + h) * D + e] += p * v[((b * S + j) * KH + g) * D + e];
        }
      }
}

void test_attention(ThreadPool* tp) {
  testutil::Rng rng(15);
  const int64_t B = 2, S = 7, H = 4, D = 6;
  for (int64_t KH : {4, 2, 1}) {
    for (int window : {0, 3}) {
      for (int variant = 0; variant < 3; ++variant) {  // 0 plain, 1 key padding, 2 segments
        std::vector<int32_t> mask(B * S, 1), seg(B * S, 0);
        AttentionMask m;
        m.window = window;
        std::string name =
            "attention H=4 KH=" + std::to_string(KH) + " window=" + std::to_string(window);
        if (variant == 1) {
          // row 0 right padding, row 1 left padding (its first query sees no key)
          mask[5] = mask[6] = 0;
          mask[S + 0] = mask[S + 1] = 0;
          m.key_mask = mask.data();
          name += " key-padding";
        } else if (variant == 2) {
          int32_t s0[] = {0, 0, 0, 1, 1, 2, 2}, s1[] = {5, 5, 5, 5, 6, 6, 6};
          std::copy(s0, s0 + S, seg.begin());
          std::copy(s1, s1 + S, seg.begin() + S);
          m.segments = seg.data();
          mask[S + 6] = 0;
          m.key_mask = mask.data();
          name += " segments+padding";
        }
        Vec q(B * S * H * D), k(B * S * KH * D), v(B * S * KH * D), out(q.size()), lse(B * H * S);
        Vec c(q.size());
        rng.fill(q, -1.5f, 1.5f);
        rng.fill(k, -1.5f, 1.5f);
        rng.fill(v);
        rng.fill(c);
        attention_forward(tp, q.data(), k.data(), v.data(), out.data(), lse.data(), m, B, S, H, KH,
                          D);
        std::vector<double> ref;
        attention_ref(q, k, v, m, B, S, H, KH, D, ref);
        check_err(name + " fwd", rel_err(out, ref, out.size()), 1e-6);
        if (variant == 1) {
          bool ok = std::isinf(lse[(1 * H + 0) * S + 0]) && lse[(1 * H + 0) * S + 0] < 0;
          for (int64_t e = 0; e < H * D; ++e) ok = ok && out[(1 * S + 0) * H * D + e] == 0.0f;
          check_true(name + " query seeing no key: out 0, lse -inf", ok);
        }
        {
          // a query that is NaN (every score of its row NaN): its output and lse are NaN, not
          // taken for a row that sees no key; the other heads' rows stay as they were
          Vec qn = q, on(out.size()), ln(lse.size());
          const int64_t i = 3, h = 1;
          for (int64_t e = 0; e < D; ++e) qn[size_t(((0 * S + i) * H + h) * D + e)] = NAN;
          attention_forward(tp, qn.data(), k.data(), v.data(), on.data(), ln.data(), m, B, S, H, KH,
                            D);
          bool nan = std::isnan(ln[size_t((0 * H + h) * S + i)]);
          for (int64_t e = 0; e < D; ++e)
            nan = nan && std::isnan(on[size_t(((0 * S + i) * H + h) * D + e)]);
          bool same = true;
          for (int64_t e = 0; e < D; ++e)
            same = same && on[size_t(((0 * S + i) * H + 0) * D + e)] ==
                               out[size_t(((0 * S + i) * H + 0) * D + e)];
          check_true(name + " a NaN query: out and lse NaN, other heads unchanged", nan && same);
        }
        auto L = [&] {
          Vec o2(q.size()), l2(lse.size());
          attention_forward(nullptr, q.data(), k.data(), v.data(), o2.data(), l2.data(), m, B, S, H,
                            KH, D);
          return dotd(c, o2);
        };
        Vec dq(q.size(), 7.0f), dk(k.size(), 7.0f), dv(v.size(), 7.0f);
        attention_backward(tp, c.data(), q.data(), k.data(), v.data(), out.data(), lse.data(),
                           dq.data(), dk.data(), dv.data(), m, B, S, H, KH, D);
        check_err(name + " dq vs FD", rel_err(dq, fd_grad(q, L), dq.size()), kFdTol);
        check_err(name + " dk vs FD", rel_err(dk, fd_grad(k, L), dk.size()), kFdTol);
        check_err(name + " dv vs FD", rel_err(dv, fd_grad(v, L), dv.size()), kFdTol);
      }
    }
  }
}

void test_swiglu(ThreadPool* tp) {
  testutil::Rng rng(16);
  const int64_t n = 101;
  Vec g(n), u(n), h(n), c(n);
  rng.fill(g, -4, 4);
  rng.fill(u, -2, 2);
  rng.fill(c);
  swiglu_forward(tp, g.data(), u.data(), h.data(), n);
  std::vector<double> ref(n);
  for (int64_t i = 0; i < n; ++i) ref[i] = double(g[i]) / (1 + std::exp(-double(g[i]))) * u[i];
  check_err("swiglu_forward vs double", rel_err(h, ref, n), 1e-6);
  auto L = [&] {
    swiglu_forward(nullptr, g.data(), u.data(), h.data(), n);
    return dotd(c, h);
  };
  Vec dg(n), du(n);
  swiglu_backward(tp, c.data(), g.data(), u.data(), dg.data(), du.data(), n);
  check_err("swiglu_backward dgate vs FD", rel_err(dg, fd_grad(g, L), n), kFdTol);
  check_err("swiglu_backward dup vs FD", rel_err(du, fd_grad(u, L), n), kFdTol);
}

void test_lm_head_once(ThreadPool* tp, const std::string& set) {
  testutil::Rng rng(17);
  const int64_t n = 21, d = 19, V = 53;
  const float gs = 0.37f;
  Vec h(n * d), w(V * d);
  rng.fill(h);
  rng.fill(w);
  std::vector<int32_t> tgt(n);
  for (int64_t t = 0; t < n; ++t) tgt[t] = (t % 5 == 2) ? -100 : int32_t(rng.below(V));
  double loss = 0.5;  // it accumulates
  int64_t count = 3;
  Vec dh(n * d, 9.0f);
  lm_head_cross_entropy(tp, h.data(), w.data(), tgt.data(), n, d, V, gs, &loss, &count, dh.data());
  double ref = 0;
  int64_t rc = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (tgt[t] == -100) continue;
    std::vector<double> z(V);
    double mx = -INFINITY;
    for (int64_t v = 0; v < V; ++v) {
      double s = 0;
      for (int64_t e = 0; e < d; ++e) s += double(h[t * d + e]) * w[v * d + e];
      z[v] = s;
      mx = std::max(mx, s);
    }
    double sum = 0;
    for (double s : z) sum += std::exp(s - mx);
    ref += mx + std::log(sum) - z[tgt[t]];
    ++rc;
  }
  check_err("lm_head_cross_entropy loss vs double" + set, std::fabs((loss - 0.5) - ref) / ref,
            1e-6);
  check_true("lm_head_cross_entropy count" + set, count - 3 == rc,
             std::to_string(count - 3) + " vs " + std::to_string(rc));
  bool zero_rows = true;
  for (int64_t t = 0; t < n; ++t)
    if (tgt[t] == -100)
      for (int64_t e = 0; e < d; ++e) zero_rows = zero_rows && dh[t * d + e] == 0.0f;
  check_true("lm_head_cross_entropy dh rows of uncounted tokens are zero" + set, zero_rows);
  auto L = [&] {
    double l = 0;
    int64_t cnt = 0;
    lm_head_cross_entropy(nullptr, h.data(), w.data(), tgt.data(), n, d, V, gs, &l, &cnt, nullptr);
    return l * gs;
  };
  check_err("lm_head_cross_entropy dh vs FD" + set, rel_err(dh, fd_grad(h, L), dh.size()), kFdTol);
}

// The LM head's softmax over one token's logits (detail::softmax_exp / softmax_scale) with each
// kernel set the CPU has, against libm's exp in double: exp within 4 ulp where libm's result is
// a normal double (where it is subnormal, under 2.3e-308, the AVX2 kernel returns 0: either is
// accepted there), the maximum exact, the probabilities within a float rounding; V at lengths
// that leave every tail.
void test_softmax_row() {
  testutil::Rng rng(29);
  const bool avx2 = linear_uses_avx2();
  for (int pass = 0; pass < (avx2 ? 2 : 1); ++pass) {
    allow_linear_avx2(pass == 0);
    const std::string set = linear_uses_avx2() ? " (AVX2 + FMA)" : " (baseline)";
    for (int64_t V : {1, 3, 8, 13, 4099}) {
      Vec z(V);
      rng.fill(z);
      // logits spread over [-760, 40]: exp(z - max) from 1 down past the normal doubles
      for (int64_t v = 0; v < V; ++v) z[v] = z[v] * 400.f - 360.f;
      std::vector<double> ez(V);
      float mx = 0;
      const double sum = detail::softmax_exp(z.data(), V, ez.data(), &mx);
      const float want_mx = *std::max_element(z.begin(), z.end());
      double worst = 0, ref_sum = 0;
      bool tiny_ok = true;
      for (int64_t v = 0; v < V; ++v) {
        const double ref = std::exp(double(z[v] - mx));
        ref_sum += ref;
        if (ref < 2.2250738585072014e-308)
          tiny_ok = tiny_ok && (ez[v] == 0.0 || ez[v] == ref);
        else
          worst = worst_of(worst, std::fabs(ez[v] - ref) / ref);
      }
      const std::string tag = " V=" + std::to_string(V) + set;
      check_true("softmax row max" + tag, mx == want_mx);
      check_err("softmax row exp vs libm" + tag, worst, 4 * 1.1102230246251565e-16);
      check_true("softmax row exp 0 or libm's where libm's is subnormal" + tag, tiny_ok);
      check_err("softmax row sum" + tag, std::fabs(sum - ref_sum) / ref_sum, 1e-15);
      Vec p(V);
      detail::softmax_scale(ez.data(), V, sum, 0.37f, p.data());
      double pworst = 0;
      for (int64_t v = 0; v < V; ++v) {
        const double ref = std::exp(double(z[v] - mx)) / ref_sum * 0.37;
        pworst = worst_of(pworst, std::fabs(p[v] - ref) / std::max(ref, 1e-30));
      }
      check_err("softmax row probabilities" + tag, pworst, 2.5e-7);
    }
  }
  allow_linear_avx2(true);
}

void test_lm_head(ThreadPool* tp) {
  const bool avx2 = linear_uses_avx2();
  for (int pass = 0; pass < (avx2 ? 2 : 1); ++pass) {
    allow_linear_avx2(pass == 0);
    test_lm_head_once(tp, linear_uses_avx2() ? " (AVX2 + FMA)" : " (baseline)");
  }
  allow_linear_avx2(true);
}

void test_adamw(ThreadPool* tp) {
  testutil::Rng rng(18);
  const int64_t n = 10001;
  Vec p(n), g1(n), g2(n), m(n, 0.0f), v(n, 0.0f);
  rng.fill(p);
  rng.fill(g1);
  rng.fill(g2);
  std::vector<double> rp(p.begin(), p.end()), rm(n, 0), rv(n, 0);
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  const float mults[2] = {1.0f, 0.5f};
  Vec* gs[2] = {&g1, &g2};
  for (int t = 1; t <= 2; ++t) {
    adamw_update(tp, p.data(), gs[t - 1]->data(), m.data(), v.data(), n, mults[t - 1], 0.01f, 0.9f,
                 0.999f, 1e-8f, 0.01f, t);
    // textbook AdamW (Loshchilov & Hutter, as torch documents it)
    for (int64_t i = 0; i < n; ++i) {
      double g = double((*gs[t - 1])[i]) * mults[t - 1];
      rp[i] -= lr * wd * rp[i];
      rm[i] = b1 * rm[i] + (1 - b1) * g;
      rv[i] = b2 * rv[i] + (1 - b2) * g * g;
      double mh = rm[i] / (1 - std::pow(b1, t)), vh = rv[i] / (1 - std::pow(b2, t));
      rp[i] -= lr * mh / (std::sqrt(vh) + eps);
    }
  }
  // compare the update p - p0 (the quantity AdamW computes), not p itself
  std::vector<double> du(n), dr(n);
  testutil::Rng rng0(18);
  Vec p0(n);
  rng0.fill(p0);
  for (int64_t i = 0; i < n; ++i) {
    du[i] = double(p[i]) - p0[i];
    dr[i] = rp[i] - p0[i];
  }
  check_err("adamw_update 2 steps: update vs hand-computed", rel_err(du, dr, n), 1e-4);
  check_err("adamw_update exp_avg vs hand-computed", rel_err(m, rm, n), 1e-6);
  check_err("adamw_update exp_avg_sq vs hand-computed", rel_err(v, rv, n), 1e-6);
  double ss = sum_squares(tp, g1.data(), n), rs = 0;
  for (float x : g1) rs += double(x) * x;
  check_err("sum_squares vs double", std::fabs(ss - rs) / rs, 1e-12);
}

// Results must not depend on the number of threads.
void test_determinism() {
  ThreadPool tp(3);
  testutil::Rng rng(19);
  const int64_t B = 2, S = 33, H = 4, KH = 2, D = 16;
  Vec q(B * S * H * D), k(B * S * KH * D), v(k.size()), o1(q.size()), o2(q.size()), l1(B * H * S),
      l2(B * H * S);
  rng.fill(q);
  rng.fill(k);
  rng.fill(v);
  AttentionMask m;
  m.window = 5;
  attention_forward(&tp, q.data(), k.data(), v.data(), o1.data(), l1.data(), m, B, S, H, KH, D);
  attention_forward(nullptr, q.data(), k.data(), v.data(), o2.data(), l2.data(), m, B, S, H, KH, D);
  check_true("attention_forward: 3 threads bitwise equal to 1",
             std::memcmp(o1.data(), o2.data(), o1.size() * 4) == 0);
  Vec dq1(q.size()), dk1(k.size()), dv1(k.size()), dq2(q.size()), dk2(k.size()), dv2(k.size());
  attention_backward(&tp, q.data(), q.data(), k.data(), v.data(), o1.data(), l1.data(), dq1.data(),
                     dk1.data(), dv1.data(), m, B, S, H, KH, D);
  attention_backward(nullptr, q.data(), q.data(), k.data(), v.data(), o1.data(), l1.data(),
                     dq2.data(), dk2.data(), dv2.data(), m, B, S, H, KH, D);
  check_true("attention_backward: 3 threads bitwise equal to 1",
             std::memcmp(dq1.data(), dq2.data(), dq1.size() * 4) == 0 &&
                 std::memcmp(dk1.data(), dk2.data(), dk1.size() * 4) == 0 &&
                 std::memcmp(dv1.data(), dv2.data(), dv1.size() * 4) == 0);
  const int64_t n = 301, in = 67, out = 129;
  Vec x(n * in), w(out * in), y1(n * out), y2(n * out), dw1(out * in, 0), dw2(out * in, 0);
  rng.fill(x);
  rng.fill(w);
  linear_forward(&tp, x.data(), w.data(), y1.data(), n, in, out, false);
  linear_forward(nullptr, x.data(), w.data(), y2.data(), n, in, out, false);
  linear_backward_weight(&tp, y1.data(), x.data(), dw1.data(), n, in, out);
  linear_backward_weight(nullptr, y1.data(), x.data(), dw2.data(), n, in, out);
  check_true("linear forward/backward: 3 threads bitwise equal to 1",
             std::memcmp(y1.data(), y2.data(), y1.size() * 4) == 0 &&
                 std::memcmp(dw1.data(), dw2.data(), dw1.size() * 4) == 0);
  // many small jobs back to back through the pool
  std::vector<int64_t> hits(1000, 0);
  for (int rep = 0; rep < 200; ++rep)
    tp.parallel_for(0, 1000, 7, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) ++hits[size_t(i)];
    });
  bool all = std::all_of(hits.begin(), hits.end(), [](int64_t h) { return h == 200; });
  check_true("thread pool: 200 jobs cover every index exactly once each", all);
}

}  // namespace

int main() {
  ThreadPool tp(2);
  test_linear(&tp);
  test_linear_blocks(&tp);
  test_lora_linear(&tp);
  test_rmsnorm(&tp);
  test_rope(&tp);
  test_attention(&tp);
  test_swiglu(&tp);
  test_softmax_row();
  test_lm_head(&tp);
  test_adamw(&tp);
  test_determinism();
  return testutil::finish("test_cpu_ops");
}
