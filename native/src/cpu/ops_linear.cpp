// Dense and LoRA linear layers (fp32 CPU reference).
//
//   linear:  y[n, out] = x[n, in] W[out, in]^T          (torch.nn.functional.linear, no bias)
//   LoRA:    y = x W^T + s * (x A^T) B^T,  A [r, in], B [out, r], s = alpha / r (or rsLoRA)
//
// Backward of y = x W^T:  dx = dy W,  dW = dy^T x. For LoRA with u = x A^T [n, r]:
//   dB = s * dy^T u,   t = dy B,   dA = s * t^T x,   dx = dy W + s * t A.
//
// Three loop shapes cover everything, each parallel over a dimension whose outputs are
// disjoint so no two threads ever write the same float:
//   gemm_nt: y[i, o] = alpha * <x_i, w_o>       parallel over rows i; contiguous dot products
//   gemm_nn: y[i, :] += alpha * sum_o a[i, o] w_o   parallel over rows i; contiguous axpys
//   gemm_tn: y[o, :] += alpha * sum_i a[i, o] x_i   parallel over rows o (or column blocks);
//            tiles of 16 columns summed over i in registers
// Every output element is computed in the same order whatever the number of threads, so the
// results are bitwise reproducible.
//
// gemm_nt and gemm_nn (the frozen projections: nearly all of a step's arithmetic) work on tiles
// held in registers: gemm_nt a tile of RI rows x RO outputs, each output a dot product with 8
// partial sums (detail::dot's order: lane j sums k = j mod 8, then the same pairwise combine, done
// in vector lanes for a row's outputs together), so x and w are each loaded once per tile instead
// of once per output; gemm_nn a tile of any RI rows with nonzero coefficients x 16 columns summed
// over o in ascending order (the axpy order), over blocks of W that stay in the core's cache while
// every row of the task passes over them. On x86-64 CPUs with AVX2 and
// FMA the same loops run compiled for them, with larger tiles (chosen at run time; the order of
// the sums per element does not depend on it, the rounding of a * b + c does: one FMA there).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "cpu/ops.h"
#include "cpu/ops_internal.h"
#include "cpu/thread_pool.h"

namespace lora4j {
namespace cpu {

using detail::axpy;

namespace {

constexpr int64_t kRowGrain = 16;  // rows per task (gemm_tn)
constexpr int64_t kTnCols = 256;   // columns per task of gemm_tn when y has few rows
constexpr int64_t kNtRows = 48;    // rows per task of gemm_nt (a multiple of both tiles' rows)
constexpr int64_t kNtOut = 16;     // outputs per block of W in gemm_nt (16 rows of W in cache)
constexpr int64_t kNnRows = 48;    // rows per task of gemm_nn (a multiple of both tiles' rows)
constexpr int64_t kNnOut = 128;    // rows of W per block in gemm_nn ...
constexpr int64_t kNnCols = 256;   // ... times this many of its columns (128 KB)
// gemm_nt prefetches the next block of a w larger than this (a core's L2 on the CPUs measured)
constexpr int64_t kNtPrefetchBytes = int64_t(1) << 20;

#ifdef LORA4J_CPU_AVX2_KERNELS
bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#else
bool cpu_has_avx2() { return false; }
#endif
std::atomic<bool> g_allow_avx2{true};
bool use_avx2() { return cpu_has_avx2() && g_allow_avx2.load(std::memory_order_relaxed); }

// V (ops_internal.h): 4 lanes (one SSE register) in the baseline kernels, 8 (one AVX register)
// in the AVX2 ones. at() reads and writes L floats in memory at any float's alignment. (No
// function takes or returns a vector: the ABI of such a call would depend on the target.)
template <class V>
struct Lanes;
template <>
struct Lanes<v4> {
  static constexpr int L = 4;
  typedef float M __attribute__((vector_size(16), aligned(4), may_alias));
};
template <>
struct Lanes<v8> {
  static constexpr int L = 8;
  typedef float M __attribute__((vector_size(32), aligned(4), may_alias));
};
template <class V>
[[gnu::always_inline]] inline typename Lanes<V>::M& at(float* p) {
  return *reinterpret_cast<typename Lanes<V>::M*>(p);
}
template <class V>
[[gnu::always_inline]] inline const typename Lanes<V>::M& at(const float* p) {
  return *reinterpret_cast<const typename Lanes<V>::M*>(p);
}

// The tile's dot products from their 8 partial sums c[0 .. 8) each (lane j of the sums over
// k = j mod 8), combined as ((c0 + c4) + (c1 + c5)) + ((c2 + c6) + (c3 + c7)) in vector lanes,
// four (or two) outputs of a row at once: the same additions in the same order as the scalar
// combine of nt_tile, so the same bits, without moving each lane out of its register. Then
// alpha times the sum, added to y or stored.
template <class V, int RI, int RO, int H>
[[gnu::always_inline]] inline void nt_store_sums(const V (&acc)[RI][RO][H], float* y, int64_t ldy,
                                                 float alpha, bool accumulate) {
  static_assert(RO == 2 || RO == 4, "pairs of outputs");
  for (int a = 0; a < RI; ++a) {
    v4 t[RO];  // (c0 + c4, c1 + c5, c2 + c6, c3 + c7) of each output
#pragma GCC unroll 4
    for (int b = 0; b < RO; ++b) {
      if constexpr (H == 1)
        t[b] = __builtin_shufflevector(acc[a][b][0], acc[a][b][0], 0, 1, 2, 3) +
               __builtin_shufflevector(acc[a][b][0], acc[a][b][0], 4, 5, 6, 7);
      else
        t[b] = acc[a][b][0] + acc[a][b][1];
    }
    // (t_b0 + t_b1, t_b2 + t_b3) of two outputs side by side, then their sum per output
    const v4 h01 = __builtin_shufflevector(t[0], t[1], 0, 2, 4, 6) +
                   __builtin_shufflevector(t[0], t[1], 1, 3, 5, 7);
    const v4 h23 = RO == 4 ? __builtin_shufflevector(t[RO - 2], t[RO - 1], 0, 2, 4, 6) +
                                 __builtin_shufflevector(t[RO - 2], t[RO - 1], 1, 3, 5, 7)
                           : h01;
    const v4 sum = alpha * (__builtin_shufflevector(h01, h23, 0, 2, 4, 6) +
                            __builtin_shufflevector(h01, h23, 1, 3, 5, 7));
    float* yr = y + a * ldy;
    for (int b = 0; b < RO; ++b) yr[b] = accumulate ? yr[b] + sum[b] : sum[b];
  }
}

// y[i, o] (+)= alpha * <x_i, w_o> for the RI x RO tile at x (rows of in), w (rows of in), y (row
// stride ldy). Each dot product keeps 8 partial sums (lane j sums k = j mod 8: H = 8 / L vectors
// of V) over k < in8, then detail::dot's combine and tail.
template <class V, int RI, int RO>
[[gnu::always_inline]] inline void nt_tile(const float* x, const float* w, float* y, int64_t in,
                                           int64_t ldy, float alpha, bool accumulate) {
  constexpr int L = Lanes<V>::L, H = 8 / L;
  const int64_t in8 = in / 8 * 8;
  // zeroed one register at a time (an aggregate initializer compiles to a string store into
  // stack memory that the sums are then loaded from)
  V acc[RI][RO][H];
#pragma GCC unroll 8
  for (int a = 0; a < RI; ++a)
#pragma GCC unroll 8
    for (int b = 0; b < RO; ++b)
#pragma GCC unroll 2
      for (int h = 0; h < H; ++h) acc[a][b][h] = V{};
  for (int64_t k = 0; k < in8; k += 8) {
    V xv[RI][H];
#pragma GCC unroll 8
    for (int a = 0; a < RI; ++a)
#pragma GCC unroll 2
      for (int h = 0; h < H; ++h) xv[a][h] = at<V>(x + a * in + k + h * L);
#pragma GCC unroll 8
    for (int b = 0; b < RO; ++b)
#pragma GCC unroll 2
      for (int h = 0; h < H; ++h) {
        const V wv = at<V>(w + b * in + k + h * L);
#pragma GCC unroll 8
        for (int a = 0; a < RI; ++a) acc[a][b][h] += xv[a][h] * wv;
      }
  }
  if constexpr (RO == 2 || RO == 4) {
    if (in8 == in) {
      nt_store_sums<V, RI, RO>(acc, y, ldy, alpha, accumulate);
      return;
    }
  }
  for (int a = 0; a < RI; ++a)
    for (int b = 0; b < RO; ++b) {
      float c[8];
      for (int h = 0; h < H; ++h) {
        const V v = acc[a][b][h];
        for (int j = 0; j < L; ++j) c[h * L + j] = v[j];
      }
      float s = ((c[0] + c[4]) + (c[1] + c[5])) + ((c[2] + c[6]) + (c[3] + c[7]));
      for (int64_t k = in8; k < in; ++k) s += x[a * in + k] * w[b * in + k];
      s = alpha * s;
      float& t = y[a * ldy + b];
      t = accumulate ? t + s : s;
    }
}

// Rows [lo, hi) of gemm_nt: blocks of kNtOut rows of w, each passed over by every row tile.
template <class V, int RI, int RO>
[[gnu::always_inline]] inline void nt_rows(const float* x, const float* w, float* y, int64_t lo,
                                           int64_t hi, int64_t in, int64_t out, float alpha,
                                           bool accumulate) {
  // When w is larger than a core's L2 (an LM head's: 16 MB at 32,000 x 128), the next block's
  // rows are prefetched, a share of their cache lines per row tile, instead of arriving from
  // memory as the block starts. Only the timing changes, never a value.
  const bool large = out * in * int64_t(sizeof(float)) > kNtPrefetchBytes;
  const int64_t lines = (kNtOut * in * int64_t(sizeof(float)) + 63) / 64;
  const int64_t tiles = std::max<int64_t>(1, (hi - lo) / RI);
  const int64_t share = (lines + tiles - 1) / tiles;
  for (int64_t ob = 0; ob < out; ob += kNtOut) {
    const int64_t oe = std::min(out, ob + kNtOut);
    const char* next = large && ob + kNtOut < out
                           ? reinterpret_cast<const char*>(w + (ob + kNtOut) * in)
                           : nullptr;
    const char* next_end =
        next ? reinterpret_cast<const char*>(w + std::min(out, oe + kNtOut) * in) : nullptr;
    int64_t i = lo;
    for (; i + RI <= hi; i += RI) {
      if (next) {
        const char* p = next + 64 * share * ((i - lo) / RI);
        for (int64_t l = 0; l < share && p < next_end; ++l, p += 64) __builtin_prefetch(p, 0, 3);
      }
      int64_t o = ob;
      for (; o + RO <= oe; o += RO)
        nt_tile<V, RI, RO>(x + i * in, w + o * in, y + i * out + o, in, out, alpha, accumulate);
      for (; o < oe; ++o)
        nt_tile<V, RI, 1>(x + i * in, w + o * in, y + i * out + o, in, out, alpha, accumulate);
    }
    for (; i < hi; ++i) {
      int64_t o = ob;
      for (; o + RO <= oe; o += RO)
        nt_tile<V, 1, RO>(x + i * in, w + o * in, y + i * out + o, in, out, alpha, accumulate);
      for (; o < oe; ++o)
        nt_tile<V, 1, 1>(x + i * in, w + o * in, y + i * out + o, in, out, alpha, accumulate);
    }
  }
}
void nt_rows_base(const float* x, const float* w, float* y, int64_t lo, int64_t hi, int64_t in,
                  int64_t out, float alpha, bool accumulate) {
  nt_rows<v4, 2, 2>(x, w, y, lo, hi, in, out, alpha, accumulate);  // 8 of 16 registers on sums
}
LORA4J_CPU_AVX2 void nt_rows_avx2(const float* x, const float* w, float* y, int64_t lo, int64_t hi,
                                  int64_t in, int64_t out, float alpha, bool accumulate) {
  nt_rows<v8, 3, 4>(x, w, y, lo, hi, in, out, alpha, accumulate);  // 12 of 16 registers
}

// Rows [lo, hi) of gemm_nt with the kernel set use_avx2() chooses.
void nt_span(const float* x, const float* w, float* y, int64_t lo, int64_t hi, int64_t in,
             int64_t out, float alpha, bool accumulate) {
  (use_avx2() ? nt_rows_avx2 : nt_rows_base)(x, w, y, lo, hi, in, out, alpha, accumulate);
}

// y[n, out] = (accumulate ? y : 0) + alpha * x[n, in] w[out, in]^T
void gemm_nt(ThreadPool* tp, const float* x, const float* w, float* y, int64_t n, int64_t in,
             int64_t out, float alpha, bool accumulate) {
  parallel_for(tp, 0, n, kNtRows, [&](int64_t lo, int64_t hi) {
    nt_span(x, w, y, lo, hi, in, out, alpha, accumulate);
  });
}

// y[rows[r], col .. col + 16) (+)= sum over o < no of k[r, o] w[o, 0 .. 16) for the RI rows of y
// listed in rows (row length in) and their coefficients at kc (row stride ldk: alpha a[i, o]
// already formed), w with row stride ldw; fresh: the sums start from zero instead of y. The rows
// need not be adjacent: each element's sum runs over o in ascending order whatever the tile.
template <class V, int RI>
[[gnu::always_inline]] inline void nn_tile(const float* kc, int64_t ldk, const float* w,
                                           int64_t ldw, float* y, const int64_t* rows, int64_t in,
                                           int64_t col, int64_t no, bool fresh) {
  constexpr int L = Lanes<V>::L, C = 16 / L;
  float* yr[RI];
#pragma GCC unroll 8
  for (int r = 0; r < RI; ++r) yr[r] = y + rows[r] * in + col;
  V acc[RI][C];
#pragma GCC unroll 8
  for (int r = 0; r < RI; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = fresh ? V{} : V(at<V>(yr[r] + L * c));
  for (int64_t o = 0; o < no; ++o) {
    V wv[C];
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) wv[c] = at<V>(w + o * ldw + L * c);
#pragma GCC unroll 8
    for (int r = 0; r < RI; ++r) {
      const float k = kc[r * ldk + o];  // a scalar times a vector: k in every lane
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[r][c] += k * wv[c];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < RI; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) at<V>(yr[r] + L * c) = acc[r][c];
}
// The same for one row and nc columns one by one (the tail of a block's width).
[[gnu::always_inline]] inline void nn_tail(const float* kc, const float* w, int64_t ldw, float* y,
                                           int64_t no, int64_t nc, bool fresh) {
  for (int64_t c = 0; c < nc; ++c) {
    float s = fresh ? 0.f : y[c];
    for (int64_t o = 0; o < no; ++o) s += kc[o] * w[o * ldw + c];
    y[c] = s;
  }
}
// The RI rows of y listed in rows over one block: kc their coefficients (row stride kNnOut), wp
// the block's rows of w (row stride ldw), its columns [cb, cb + nc) of y.
template <class V, int RI>
[[gnu::always_inline]] inline void nn_block_rows(const float* kc, const float* wp, int64_t ldw,
                                                 float* y, const int64_t* rows, int64_t no,
                                                 int64_t cb, int64_t nc, int64_t in, bool fresh) {
  const int64_t c16 = nc / 16 * 16;
  for (int64_t c = 0; c < c16; c += 16)
    nn_tile<V, RI>(kc, kNnOut, wp + c, ldw, y, rows, in, cb + c, no, fresh);
  for (int r = 0; r < RI; ++r)
    nn_tail(kc + r * kNnOut, wp + c16, ldw, y + rows[r] * in + cb + c16, no, nc - c16, fresh);
}
// The last n < K + 1 rows of a task over one block, in tiles of decreasing height (at most one
// of each), so a remainder of 5 rows runs as one tile of 5 rather than five of 1.
template <class V, int K>
[[gnu::always_inline]] inline void nn_block_rest(const float* kc, const float* wp, int64_t ldw,
                                                 float* y, const int64_t* rows, int n, int64_t no,
                                                 int64_t cb, int64_t nc, int64_t in, bool fresh) {
  if constexpr (K >= 1) {
    if (n >= K) {
      nn_block_rows<V, K>(kc, wp, ldw, y, rows, no, cb, nc, in, fresh);
      kc += K * kNnOut;
      rows += K;
      n -= K;
    }
    nn_block_rest<V, K - 1>(kc, wp, ldw, y, rows, n, no, cb, nc, in, fresh);
  }
}

// Rows [lo, hi) of gemm_nn: w in blocks of kNnOut x kNnCols, each copied to contiguous memory
// (unless a block spans whole rows of w, which are contiguous already) and passed over by every
// row tile of the task; the rows' coefficients alpha a[i, o] of the block's outputs formed once
// into contiguous memory as well. Rows whose coefficients are all zero (masked tokens) are left
// as they are (or zeroed when not accumulating).
template <class V, int RI>
[[gnu::always_inline]] inline void nn_rows(const float* a, const float* w, float* y, int64_t lo,
                                           int64_t hi, int64_t in, int64_t out, float alpha,
                                           bool accumulate) {
  int64_t live[kNnRows];
  int nl = 0;
  for (int64_t i = lo; i < hi; ++i) {
    const float* ai = a + i * out;
    bool zero = true;
    for (int64_t o = 0; o < out && zero; ++o) zero = ai[o] == 0.0f;
    if (!zero)
      live[nl++] = i;
    else if (!accumulate)
      std::memset(y + i * in, 0, size_t(in) * sizeof(float));
  }
  if (nl == 0) return;
  thread_local std::vector<float> pack;
  pack.resize(size_t(kNnOut * kNnCols + kNnRows * kNnOut));
  float* wp = pack.data();
  float* kp = wp + kNnOut * kNnCols;  // [live row][o], row stride kNnOut
  for (int64_t ob = 0; ob < out; ob += kNnOut) {
    const int64_t no = std::min(out, ob + kNnOut) - ob;
    const bool fresh = !accumulate && ob == 0;
    for (int t = 0; t < nl; ++t)
      for (int64_t o = 0; o < no; ++o) kp[t * kNnOut + o] = alpha * a[live[t] * out + ob + o];
    for (int64_t cb = 0; cb < in; cb += kNnCols) {
      const int64_t nc = std::min(in, cb + kNnCols) - cb;
      const bool whole = nc == in;
      const float* wb = whole ? w + ob * in : wp;
      const int64_t ldw = whole ? in : kNnCols;
      if (!whole)
        for (int64_t o = 0; o < no; ++o)
          std::memcpy(wp + o * kNnCols, w + (ob + o) * in + cb, size_t(nc) * sizeof(float));
      int t = 0;
      for (; t + RI <= nl; t += RI)
        nn_block_rows<V, RI>(kp + t * kNnOut, wb, ldw, y, live + t, no, cb, nc, in, fresh);
      nn_block_rest<V, RI - 1>(kp + t * kNnOut, wb, ldw, y, live + t, nl - t, no, cb, nc, in,
                               fresh);
    }
  }
}
void nn_rows_base(const float* a, const float* w, float* y, int64_t lo, int64_t hi, int64_t in,
                  int64_t out, float alpha, bool accumulate) {
  nn_rows<v4, 2>(a, w, y, lo, hi, in, out, alpha, accumulate);  // 8 of 16 registers on sums
}
LORA4J_CPU_AVX2 void nn_rows_avx2(const float* a, const float* w, float* y, int64_t lo, int64_t hi,
                                  int64_t in, int64_t out, float alpha, bool accumulate) {
  nn_rows<v8, 6>(a, w, y, lo, hi, in, out, alpha, accumulate);  // 12 of 16 registers
}

// Rows [lo, hi) of gemm_nn, kNnRows at a time (the kernels' row list holds that many), with the
// kernel set use_avx2() chooses.
void nn_span(const float* a, const float* w, float* y, int64_t lo, int64_t hi, int64_t in,
             int64_t out, float alpha, bool accumulate) {
  const auto rows = use_avx2() ? nn_rows_avx2 : nn_rows_base;
  for (int64_t s = lo; s < hi; s += kNnRows)
    rows(a, w, y, s, std::min(hi, s + kNnRows), in, out, alpha, accumulate);
}

// y[n, in] = (accumulate ? y : 0) + alpha * a[n, out] w[out, in]
void gemm_nn(ThreadPool* tp, const float* a, const float* w, float* y, int64_t n, int64_t in,
             int64_t out, float alpha, bool accumulate) {
  parallel_for(tp, 0, n, kNnRows, [&](int64_t lo, int64_t hi) {
    nn_span(a, w, y, lo, hi, in, out, alpha, accumulate);
  });
}

// y[o, c0 .. c0 + NV L) for the RO rows o0 .. (+)= the sum over i ascending of
// (alpha a[i, o]) x[i, c0 ..], a term skipped where a[i, o] is 0: the axpy loop's order and
// roundings, with the tile of y in registers over all n instead of in memory after every i.
template <class V, int RO, int NV>
[[gnu::always_inline]] inline void tn_tile(const float* a, const float* x, float* y, int64_t n,
                                           int64_t in, int64_t out, int64_t o0, int64_t c0,
                                           float alpha) {
  constexpr int L = Lanes<V>::L;
  V acc[RO][NV];
#pragma GCC unroll 8
  for (int r = 0; r < RO; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = at<V>(y + (o0 + r) * in + c0 + v * L);
  for (int64_t i = 0; i < n; ++i) {
    const float* ai = a + i * out + o0;
    float c[RO];
    bool any = false;
#pragma GCC unroll 8
    for (int r = 0; r < RO; ++r) {
      c[r] = ai[r];
      any = any || c[r] != 0.0f;
    }
    if (!any) continue;
    V xv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) xv[v] = at<V>(x + i * in + c0 + v * L);
#pragma GCC unroll 8
    for (int r = 0; r < RO; ++r) {
      if (c[r] == 0.0f) continue;
      const float k = alpha * c[r];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] += k * xv[v];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < RO; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) at<V>(y + (o0 + r) * in + c0 + v * L) = acc[r][v];
}

// Rows [olo, ohi) x columns [clo, chi) of y, in tiles of RO rows x NV L columns, the last
// rows one at a time and the last columns (fewer than NV L) by axpy.
template <class V, int RO, int NV>
[[gnu::always_inline]] inline void tn_block(const float* a, const float* x, float* y, int64_t n,
                                            int64_t in, int64_t out, int64_t olo, int64_t ohi,
                                            int64_t clo, int64_t chi, float alpha) {
  constexpr int64_t W = int64_t(NV) * Lanes<V>::L;
  const int64_t cend = clo + (chi - clo) / W * W;
  int64_t o = olo;
  for (; o + RO <= ohi; o += RO)
    for (int64_t c0 = clo; c0 < cend; c0 += W)
      tn_tile<V, RO, NV>(a, x, y, n, in, out, o, c0, alpha);
  for (; o < ohi; ++o)
    for (int64_t c0 = clo; c0 < cend; c0 += W) tn_tile<V, 1, NV>(a, x, y, n, in, out, o, c0, alpha);
  if (cend < chi)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = olo; r < ohi; ++r) {
        const float c = a[i * out + r];
        if (c != 0.0f) axpy(y + r * in + cend, x + i * in + cend, alpha * c, chi - cend);
      }
}
void tn_block_base(const float* a, const float* x, float* y, int64_t n, int64_t in, int64_t out,
                   int64_t olo, int64_t ohi, int64_t clo, int64_t chi, float alpha) {
  tn_block<v4, 2, 4>(a, x, y, n, in, out, olo, ohi, clo, chi, alpha);  // 8 of 16 registers
}
LORA4J_CPU_AVX2 void tn_block_avx2(const float* a, const float* x, float* y, int64_t n, int64_t in,
                                   int64_t out, int64_t olo, int64_t ohi, int64_t clo, int64_t chi,
                                   float alpha) {
  tn_block<v8, 4, 2>(a, x, y, n, in, out, olo, ohi, clo, chi, alpha);  // 8 of 16 registers
}

// y[out, in] += alpha * a[n, out]^T x[n, in]. Parallel over rows of y, or, when y has fewer
// rows than two tasks' worth (dLoRA_A: r rows), over blocks of its columns: either way every
// element sums over i in order, on register tiles of 16 columns.
void gemm_tn(ThreadPool* tp, const float* a, const float* x, float* y, int64_t n, int64_t in,
             int64_t out, float alpha) {
  const auto block = use_avx2() ? tn_block_avx2 : tn_block_base;
  if (out >= 2 * kRowGrain) {
    parallel_for(tp, 0, out, kRowGrain,
                 [&](int64_t lo, int64_t hi) { block(a, x, y, n, in, out, lo, hi, 0, in, alpha); });
    return;
  }
  parallel_for(tp, 0, in, kTnCols,
               [&](int64_t lo, int64_t hi) { block(a, x, y, n, in, out, 0, out, lo, hi, alpha); });
}

}  // namespace

void detail::linear_rows(const float* x, const float* w, float* y, int64_t lo, int64_t hi,
                         int64_t in, int64_t out, bool accumulate) {
  nt_span(x, w, y, lo, hi, in, out, 1.0f, accumulate);
}
void detail::linear_input_rows(const float* a, const float* w, float* y, int64_t lo, int64_t hi,
                               int64_t in, int64_t out, bool accumulate) {
  nn_span(a, w, y, lo, hi, in, out, 1.0f, accumulate);
}

bool linear_uses_avx2() { return use_avx2(); }
void allow_linear_avx2(bool allow) { g_allow_avx2.store(allow, std::memory_order_relaxed); }

void linear_forward(ThreadPool* tp, const float* x, const float* w, float* y, int64_t n, int64_t in,
                    int64_t out, bool accumulate) {
  gemm_nt(tp, x, w, y, n, in, out, 1.0f, accumulate);
}

void linear_backward_input(ThreadPool* tp, const float* dy, const float* w, float* dx, int64_t n,
                           int64_t in, int64_t out, bool accumulate) {
  gemm_nn(tp, dy, w, dx, n, in, out, 1.0f, accumulate);
}

void linear_backward_weight(ThreadPool* tp, const float* dy, const float* x, float* dw, int64_t n,
                            int64_t in, int64_t out) {
  gemm_tn(tp, dy, x, dw, n, in, out, 1.0f);
}

void lora_linear_forward(ThreadPool* tp, const float* x, const float* w, const float* a,
                         const float* b, float scale, float* xa, float* y, int64_t n, int64_t in,
                         int64_t out, int64_t r) {
  gemm_nt(tp, x, w, y, n, in, out, 1.0f, false);
  if (a == nullptr || b == nullptr) return;
  gemm_nt(tp, x, a, xa, n, in, r, 1.0f, false);   // u = x A^T
  gemm_nt(tp, xa, b, y, n, r, out, scale, true);  // y += s * u B^T
}

void lora_linear_backward(ThreadPool* tp, const float* dy, const float* x, const float* w,
                          const float* a, const float* b, const float* xa, float scale, float* dx,
                          float* da, float* db, float* tmp, int64_t n, int64_t in, int64_t out,
                          int64_t r) {
  if (dx) gemm_nn(tp, dy, w, dx, n, in, out, 1.0f, false);  // dx = dy W
  if (a == nullptr || b == nullptr) return;
  if (db) gemm_tn(tp, dy, xa, db, n, r, out, scale);       // dB += s * dy^T u
  gemm_nn(tp, dy, b, tmp, n, r, out, 1.0f, false);         // t = dy B   [n, r]; du = s t
  if (dx) gemm_nn(tp, tmp, a, dx, n, in, r, scale, true);  // dx += s t A
  if (da) gemm_tn(tp, tmp, x, da, n, in, r, scale);        // dA += s t^T x
}

}  // namespace cpu
}  // namespace lora4j
