/*
 * One row times a row-major weight (gemv): y[n] = alpha * sum_k x[k] w[n, k] + beta * c[n], the
 * decode step's projections (one token). cuBLASLt's kernels for M = 1 split K for the narrow
 * weights (a reduction kernel after each; k's and v's 8 MB at Mistral-7B read at ~1.6 TB/s); this
 * kernel streams the weight once with one warp per output: 16-byte loads, eight a lane issued
 * before the first product (a __syncwarp between: without it ptxas interleaves loads and
 * products, one or two loads in flight a warp; the decode step 0.1 ms faster with it, forty-second
 * session), fp32 accumulation; a grid of the blocks the device holds at once, each warp taking
 * outputs n, n + warps, ... Measured (H200): ~3.4 TB/s on the 117 MB weights, below cuBLASLt's
 * ~3.9 there alone, yet the decode step is 0.1 ms slower with cuBLASLt for them (forty-first
 * session); ahead on the narrow ones. Two rows a warp, adjacent or N/2 apart, measured slower
 * for these products (forty-first session). Each kernel waits (pdl_wait) before it reads x: a
 * decode call launches it with programmatic dependent launch (GemvParams::pdl). Few rows asked
 * for in the split order (GemvParams::split: a LoRA A product at decode, 16-48 rows) take
 * gemv_split_kernel, a block of 8 warps a row: a warp a row
 * kept 16-48 warps of the GPU busy, 9.7 us for each of a layer's four A products at 7B with an
 * adapter (forty-third session), against ~1.5 MB of weights a layer.
 *
 * gemv_pairs: a decode layer's q, k and v (RoPE on q and k as their sums come out) in one launch,
 * and gate and up with the SwiGLU forward in another, each row summed as gemv sums it (the same
 * bits). At Mistral-7B on an H200 the two read 283 MB a layer at ~3.76 TB/s (37.5 us a launch on
 * average) where the passes they replace took seven launches; the decode step 5.65 -> 4.75 ms.
 * With GemvPairsParams::norm (a layer's group without an adapter at decode) the RMSNorm before
 * the products runs in the same launch: every block normalizes the residual row as
 * rmsnorm_forward's vectorized kernel does (rmsnorm.cuh: its bits) into shared memory, bf16 and
 * fp16, and the warps read x there (gemv_pairs_norm_kernel); the norm's own launch is gone.
 */
#include <algorithm>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/gemv.cuh"
#include "cuda/kernels/rmsnorm.cuh"

namespace lora4j {
namespace cuda {
namespace {

constexpr int kThreads = 256;  // 8 warps, one output at a time each
constexpr int kUnroll = kGemvUnroll;

// y[n] = fmaf(beta, c[n], v) (v alone when beta is 0: c not read), in fp32 or rounded to bf16
template <bool Y_F32>
__device__ __forceinline__ void store_y(const void* c, void* y, int64_t n, float v, float beta) {
  if (Y_F32) {
    if (beta != 0.f) v = fmaf(beta, static_cast<const float*>(c)[n], v);
    static_cast<float*>(y)[n] = v;
  } else {
    if (beta != 0.f) v = fmaf(beta, __bfloat162float(static_cast<const bf16*>(c)[n]), v);
    static_cast<bf16*>(y)[n] = __float2bfloat16_rn(v);
  }
}

template <bool F16, bool Y_F32>
__global__ void __launch_bounds__(kThreads)
    gemv_kernel(const uint4* __restrict__ x, const uint4* __restrict__ w, int64_t ldw16, int64_t N,
                int64_t chunks, const uint4* __restrict__ x2, const uint4* __restrict__ w2,
                int64_t ldw2_16, int64_t chunks2, const void* c, void* y, float alpha, float beta) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * (kThreads / 32);
  const int64_t n0 = int64_t(blockIdx.x) * (kThreads / 32) + (threadIdx.x >> 5);
  pdl_wait();  // x and c are the previous kernels' outputs
  for (int64_t n = n0; n < N; n += warps) {
    const uint4* wr = w + n * ldw16;
    float acc = 0.f;
    int64_t k = lane;
    // whole rounds of 32 kUnroll chunks, as many on every lane (the __syncwarp needs the whole
    // warp); the rest one chunk a lane at a time: each lane's chunks in the same order either way
    for (; k - lane + 32 * kUnroll <= chunks; k += 32 * kUnroll) {
      uint4 wv[kUnroll], xv[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) wv[u] = __ldcs(wr + k + 32 * u);  // read once: streamed
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) xv[u] = __ldg(x + k + 32 * u);
      __syncwarp();  // ptxas issues every load above before the first product, not interleaved
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) acc += gemv_dot8(wv[u], xv[u], F16);
    }
    for (; k < chunks; k += 32) acc += gemv_dot8(__ldcs(wr + k), __ldg(x + k), F16);
    // K's continuation (GemvParams::K2): each lane goes on from its next chunk, the lane order
    // over the concatenated operands
    if (chunks2 > 0) {
      const uint4* w2r = w2 + n * ldw2_16;
      for (; k < chunks + chunks2; k += 32)
        acc += gemv_dot8(__ldg(w2r + (k - chunks)), __ldg(x2 + (k - chunks)), F16);
    }
    acc = warp_sum(acc);
    if (lane != 0) continue;
    store_y<Y_F32>(c, y, n, alpha * acc, beta);
  }
}

// gemv_kernel's product for few rows in the split order (kernels.h: GemvParams::split, N <=
// kGemvSplitMaxRows): a block a row, its kGemvSplitWarps warps each a share of the row's chunks
// (lane l of warp w: 32 w + l, then every 32 kGemvSplitWarps further on), every warp's loads of a
// round issued before its products as in gemv_kernel; the warps' sums added in warp order by
// thread 0.
template <bool F16, bool Y_F32>
__global__ void __launch_bounds__(kThreads)
    gemv_split_kernel(const uint4* __restrict__ x, const uint4* __restrict__ w, int64_t ldw16,
                      int64_t N, int64_t chunks, const void* c, void* y, float alpha, float beta) {
  static_assert(kThreads == 32 * kGemvSplitWarps, "a warp per share of the row");
  __shared__ float part[kGemvSplitWarps];
  pdl_wait();  // x and c are the previous kernels' outputs
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    gemv_split_row_parts<F16>(
        w + n * ldw16, chunks, [x](int64_t k) { return __ldg(x + k); }, part);
    if (threadIdx.x == 0) store_y<Y_F32>(c, y, n, alpha * gemv_split_sum(part), beta);
    __syncthreads();  // part is the next row's
  }
}

// blocks of `kernel` the current device holds at once (cached per device in `cached`; 0 when the
// runtime cannot say, and then the grid is one block per 8 warp items); smem: its dynamic shared
// memory a block (cached_smem: what `cached` was found for)
template <class Kernel>
int64_t resident_blocks(Kernel kernel, int (&cached)[64], size_t smem = 0,
                        size_t* cached_smem = nullptr) {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 0;
  if (cached_smem && cached_smem[dev] != smem) cached[dev] = 0, cached_smem[dev] = smem;
  if (cached[dev] == 0) {
    int per_sm = 0, sms = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem) !=
            cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
      return 0;
    cached[dev] = std::max(1, per_sm) * std::max(1, sms);
  }
  return cached[dev];
}

template <bool F16, bool Y_F32>
cudaError_t launch(const GemvParams& p, cudaStream_t s) {
  if (gemv_row_warps(p.N, p.split) > 1)
    return launch_kernel(gemv_split_kernel<F16, Y_F32>, dim3(unsigned(p.N)), dim3(kThreads), 0, s,
                         p.pdl, static_cast<const uint4*>(p.x), static_cast<const uint4*>(p.w),
                         p.ldw / 8, p.N, p.K / 8, p.c ? p.c : p.y, p.y, p.alpha, p.beta);
  static int cached[64] = {};
  const int64_t need = (p.N + kThreads / 32 - 1) / (kThreads / 32),
                held = resident_blocks(gemv_kernel<F16, Y_F32>, cached);
  const unsigned grid = unsigned(held > 0 ? std::min(need, held) : need);
  return launch_kernel(gemv_kernel<F16, Y_F32>, dim3(grid), dim3(kThreads), 0, s, p.pdl,
                       static_cast<const uint4*>(p.x), static_cast<const uint4*>(p.w), p.ldw / 8,
                       p.N, p.K / 8, static_cast<const uint4*>(p.x2),
                       static_cast<const uint4*>(p.w2), p.ldw2 / 8, p.K2 / 8, p.c ? p.c : p.y, p.y,
                       p.alpha, p.beta);
}

// ---- the decode step's fused products (gemv_pairs) --------------------------------------------

constexpr int kPairUnroll = 4;  // 16-byte chunks of each row a lane has in flight

// Row w0 and row w1 (16-byte chunks) times x, each in gemv_kernel's order: lane l sums the chunks
// l, l + 32, ... in turn (the unroll only groups the loads), then the warp's butterfly. So each
// sum has the bits gemv gives that row.
// x in shared memory (SHX: the folded norm's row) is read with plain loads, not __ldg.
template <bool F16, bool SHX>
__device__ __forceinline__ void dot2(const uint4* __restrict__ x, const uint4* __restrict__ w0,
                                     const uint4* __restrict__ w1, int64_t chunks, int lane,
                                     float& s0, float& s1) {
  float a0 = 0.f, a1 = 0.f;
  int64_t k = lane;
  for (; k - lane + 32 * kPairUnroll <= chunks; k += 32 * kPairUnroll) {  // as in gemv_kernel
    uint4 u0[kPairUnroll], u1[kPairUnroll], xv[kPairUnroll];
#pragma unroll
    for (int u = 0; u < kPairUnroll; ++u) u0[u] = __ldcs(w0 + k + 32 * u);
#pragma unroll
    for (int u = 0; u < kPairUnroll; ++u) u1[u] = __ldcs(w1 + k + 32 * u);
#pragma unroll
    for (int u = 0; u < kPairUnroll; ++u) xv[u] = SHX ? x[k + 32 * u] : __ldg(x + k + 32 * u);
    __syncwarp();  // as in gemv_kernel
#pragma unroll
    for (int u = 0; u < kPairUnroll; ++u) {
      a0 += gemv_dot8(u0[u], xv[u], F16);
      a1 += gemv_dot8(u1[u], xv[u], F16);
    }
  }
  for (; k < chunks; k += 32) {
    const uint4 xv = SHX ? x[k] : __ldg(x + k);
    a0 += gemv_dot8(__ldcs(w0 + k), xv, F16);
    a1 += gemv_dot8(__ldcs(w1 + k), xv, F16);
  }
  s0 = warp_sum(a0);
  s1 = warp_sum(a1);
}

struct PairSeg {
  const uint4 *x, *w0, *w1;
  int64_t ldw0, ldw1, chunks, items;  // strides and K in 16-byte chunks; warp items
  void* y;
  int kind, half;  // GemvPairKind; rope: D / 2
  bool f16;
};
struct PairArgs {
  PairSeg seg[kGemvPairSegments];
  int count;
  const int32_t* pos;
  const float* inv_freq;
};

// Item it's segment s, index i within it and its two rows r0 (of w0) and r1 (of w1).
__device__ __forceinline__ void pair_item(const PairArgs& p, int64_t it, int& s, int64_t& i,
                                          int64_t& r0, int64_t& r1) {
  s = 0;
  i = it;
  while (i >= p.seg[s].items) i -= p.seg[s].items, ++s;
  const PairSeg& g = p.seg[s];
  r0 = i, r1 = i;
  if (g.kind == int(GemvPairKind::kRope)) {
    const int64_t h = i / g.half;
    r0 = h * 2 * g.half + (i - h * g.half);
    r1 = r0 + g.half;
  } else if (g.kind == int(GemvPairKind::kPair)) {
    r0 = 2 * i;
    r1 = r0 + 1;
  }
}

// A warp per item: segment by segment, item i of a segment is
//   rope:   rows h D + f and h D + f + D/2 (h = i / (D/2), f = i % (D/2)), rotated by pos[0] and
//           stored in fp16 at those rows (rope.cu's arithmetic on the fp32 sums);
//   pair:   rows 2i and 2i + 1, stored in bf16;
//   swiglu: row i of w0 (gate) and of w1 (up), each rounded to bf16, then swiglu_fwd_one.
// The warp items of gemv_pairs_kernel; SHX: x from the folded norm's row in shared memory, xs
// (bf16) or xs16 (fp16) by segment, in place of each segment's x (the norm has waited for the
// previous kernel by then; otherwise the wait is here).
template <bool SHX>
__device__ __forceinline__ void pair_items(const PairArgs& p, const uint4* xs, const uint4* xs16) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * (kThreads / 32);
  int64_t total = 0;
  for (int s = 0; s < p.count; ++s) total += p.seg[s].items;
  const int64_t it0 = int64_t(blockIdx.x) * (kThreads / 32) + (threadIdx.x >> 5);
  if (!SHX) pdl_wait();  // x is the previous kernels' output; y may be read by them
  for (int64_t it = it0; it < total; it += warps) {
    int s;
    int64_t i, r0, r1;
    pair_item(p, it, s, i, r0, r1);
    const PairSeg& g = p.seg[s];
    float s0, s1;
    if (g.f16)
      dot2<true, SHX>(SHX ? xs16 : g.x, g.w0 + r0 * g.ldw0, g.w1 + r1 * g.ldw1, g.chunks, lane, s0,
                      s1);
    else
      dot2<false, SHX>(SHX ? xs : g.x, g.w0 + r0 * g.ldw0, g.w1 + r1 * g.ldw1, g.chunks, lane, s0,
                       s1);
    if (lane != 0) continue;
    if (g.kind == int(GemvPairKind::kRope)) {
      float c, sn, lo, hi;
      rope_cos_sin(p.pos[0], p.inv_freq[i % g.half], 1.f, c, sn);
      rope_rotate(s0, s1, c, sn, lo, hi);
      static_cast<f16*>(g.y)[r0] = __float2half_rn(lo);
      static_cast<f16*>(g.y)[r1] = __float2half_rn(hi);
    } else if (g.kind == int(GemvPairKind::kPair)) {
      static_cast<bf16*>(g.y)[r0] = __float2bfloat16_rn(s0);
      static_cast<bf16*>(g.y)[r1] = __float2bfloat16_rn(s1);
    } else {
      static_cast<bf16*>(g.y)[i] = swiglu_fwd_one(__float2bfloat16_rn(s0), __float2bfloat16_rn(s1));
    }
  }
}
__global__ void __launch_bounds__(kThreads) gemv_pairs_kernel(const PairArgs p) {
  pair_items<false>(p, nullptr, nullptr);
}
// The same with the row's RMSNorm first (GemvPairsNorm): each block normalizes it as
// rmsnorm_forward's vectorized kernel does (rmsnorm_fwd_vec_row: its bits; it waits for the
// previous kernel before reading x), keeping the bf16 row and its fp16 copy in shared memory.
struct NormArgs {
  const void* x;
  const bf16* w;
  float eps;
  int64_t d;
};
template <int NCH, typename TX>
__global__ void __launch_bounds__(kThreads) gemv_pairs_norm_kernel(const PairArgs p, NormArgs n) {
  static_assert(kThreads == kNormThreads, "rmsnorm's reduction order");
  extern __shared__ float4 staged[];  // the row, d floats; then its bf16 and fp16 forms, d each
  __shared__ float scratch[32];
  bf16* keep = reinterpret_cast<bf16*>(staged + n.d / 4);
  f16* keep16 = reinterpret_cast<f16*>(keep + n.d);
  rmsnorm_fwd_vec_row<NCH>(static_cast<const TX*>(n.x), n.w, nullptr, nullptr, n.d, n.eps, nullptr,
                           0, Lo8{}, Y16{}, 0, staged, scratch, false, keep, keep16);
  __syncthreads();  // the rows are whole
  pair_items<true>(p, reinterpret_cast<const uint4*>(keep), reinterpret_cast<const uint4*>(keep16));
}

bool segment_accepts(const GemvPairSegment& g, const GemvPairsParams& p) {
  const void* w1 = g.kind == GemvPairKind::kSwiglu ? g.w1 : g.w0;
  const int64_t ldw1 = g.kind == GemvPairKind::kSwiglu ? g.ldw1 : g.ldw0;
  if (p.norm.x ? g.x || g.K != p.norm.d : !g.x) return false;  // the folded norm's row, or x
  if (!g.w0 || !w1 || !g.y || g.N <= 0 || g.K <= 0 || g.K % 8 != 0 || g.ldw0 < g.K || ldw1 < g.K ||
      g.ldw0 % 8 != 0 || ldw1 % 8 != 0 || !ptr_aligned16(g.x) || !ptr_aligned16(g.w0) ||
      !ptr_aligned16(w1))
    return false;
  switch (g.kind) {
    case GemvPairKind::kRope:
      return g.f16 && g.D > 0 && g.D % 2 == 0 && g.N % g.D == 0 && p.pos && p.inv_freq;
    case GemvPairKind::kPair:
      return !g.f16 && g.N % 2 == 0;
    case GemvPairKind::kSwiglu:
      return !g.f16;
  }
  return false;
}

// the folded norm's row: d floats staged, then its bf16 and fp16 forms (8 d bytes, 16-byte
// aligned for d % 8 == 0), within the 48 KiB a block takes without opting in beside the scratch
constexpr int64_t kNormFoldMaxD = 6128;
size_t norm_smem(int64_t d) { return size_t(d) * (sizeof(float) + sizeof(bf16) + sizeof(f16)); }

template <int NCH, typename TX>
cudaError_t launch_norm(const PairArgs& a, const NormArgs& n, int64_t need, bool pdl,
                        cudaStream_t s) {
  static int cached[64] = {};
  static size_t cached_smem[64] = {};
  const size_t smem = norm_smem(n.d);
  const int64_t held = resident_blocks(gemv_pairs_norm_kernel<NCH, TX>, cached, smem, cached_smem);
  const unsigned grid = unsigned(held > 0 ? std::min(need, held) : need);
  return launch_kernel(gemv_pairs_norm_kernel<NCH, TX>, dim3(grid), dim3(kThreads), smem, s, pdl, a,
                       n);
}

}  // namespace

bool gemv_pairs_accepts(const GemvPairsParams& p) {
  if (p.count < 1 || p.count > kGemvPairSegments) return false;
  const GemvPairsNorm& n = p.norm;
  if (n.x && !(n.w && n.d > 0 && n.d % 8 == 0 && n.d <= kNormFoldMaxD && ptr_aligned16(n.x) &&
               ptr_aligned16(n.w)))
    return false;
  int64_t items = 0;
  for (int s = 0; s < p.count; ++s) {
    if (!segment_accepts(p.seg[s], p)) return false;
    items += p.seg[s].kind == GemvPairKind::kSwiglu ? p.seg[s].N : p.seg[s].N / 2;
  }
  return (items + kThreads / 32 - 1) / (kThreads / 32) <= INT32_MAX;
}

cudaError_t gemv_pairs(const GemvPairsParams& p, cudaStream_t s) {
  if (!gemv_pairs_accepts(p)) return cudaErrorInvalidValue;
  PairArgs a{};
  int64_t items = 0;
  for (int i = 0; i < p.count; ++i) {
    const GemvPairSegment& g = p.seg[i];
    const bool two = g.kind == GemvPairKind::kSwiglu;
    PairSeg& d = a.seg[i];
    d.x = static_cast<const uint4*>(g.x);
    d.w0 = static_cast<const uint4*>(g.w0);
    d.w1 = static_cast<const uint4*>(two ? g.w1 : g.w0);
    d.ldw0 = g.ldw0 / 8;
    d.ldw1 = (two ? g.ldw1 : g.ldw0) / 8;
    d.chunks = g.K / 8;
    d.items = two ? g.N : g.N / 2;
    d.y = g.y;
    d.kind = int(g.kind);
    d.half = g.D / 2;
    d.f16 = g.f16;
    items += d.items;
  }
  a.count = p.count;
  a.pos = p.pos;
  a.inv_freq = p.inv_freq;
  const int64_t need = (items + kThreads / 32 - 1) / (kThreads / 32);
  if (!p.norm.x) {
    static int cached[64] = {};
    const int64_t held = resident_blocks(gemv_pairs_kernel, cached);
    const unsigned grid = unsigned(held > 0 ? std::min(need, held) : need);
    return launch_kernel(gemv_pairs_kernel, dim3(grid), dim3(kThreads), 0, s, p.pdl, a);
  }
  const NormArgs n{p.norm.x, p.norm.w, p.norm.eps, p.norm.d};
  switch ((p.norm.d + 4 * kNormThreads - 1) / (4 * kNormThreads)) {  // as rmsnorm_forward's NCH
    case 1:
      return p.norm.x_bf16 ? launch_norm<1, bf16>(a, n, need, p.pdl, s)
                           : launch_norm<1, float>(a, n, need, p.pdl, s);
    case 2:
      return p.norm.x_bf16 ? launch_norm<2, bf16>(a, n, need, p.pdl, s)
                           : launch_norm<2, float>(a, n, need, p.pdl, s);
    case 3:
      return p.norm.x_bf16 ? launch_norm<3, bf16>(a, n, need, p.pdl, s)
                           : launch_norm<3, float>(a, n, need, p.pdl, s);
    case 4:
      return p.norm.x_bf16 ? launch_norm<4, bf16>(a, n, need, p.pdl, s)
                           : launch_norm<4, float>(a, n, need, p.pdl, s);
    default:  // d <= kNormFoldMaxD
      return p.norm.x_bf16 ? launch_norm<6, bf16>(a, n, need, p.pdl, s)
                           : launch_norm<6, float>(a, n, need, p.pdl, s);
  }
}

bool gemv_accepts(const GemvParams& p) {
  const bool tail_ok = p.K2 == 0 || (p.K2 > 0 && p.x2 && p.w2 && p.K2 % 8 == 0 && p.ldw2 >= p.K2 &&
                                     p.ldw2 % 8 == 0 && ptr_aligned16(p.x2) &&
                                     ptr_aligned16(p.w2) && gemv_row_warps(p.N, p.split) == 1);
  return p.x && p.w && p.y && p.N > 0 && p.K > 0 && p.K % 8 == 0 && p.ldw >= p.K &&
         p.ldw % 8 == 0 && ptr_aligned16(p.x) && ptr_aligned16(p.w) && tail_ok &&
         (p.N + kThreads / 32 - 1) / (kThreads / 32) <= INT32_MAX;
}

cudaError_t gemv(const GemvParams& p, cudaStream_t s) {
  if (!gemv_accepts(p)) return cudaErrorInvalidValue;
  if (p.f16) return p.y_f32 ? launch<true, true>(p, s) : launch<true, false>(p, s);
  return p.y_f32 ? launch<false, true>(p, s) : launch<false, false>(p, s);
}

}  // namespace cuda
}  // namespace lora4j
