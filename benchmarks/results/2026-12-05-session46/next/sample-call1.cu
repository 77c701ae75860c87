/*
 * Sampled decoding on the device (CudaEngine::decode_sample): a step's token drawn from its logits
 * as model/sampler.cpp draws it (the Java Sampler's definition), written where the
 * next step reads its token (ids[0]) and position (pos[0]), the generator's state advanced on the
 * device, so that the host queues several steps without waiting for any of them.
 *
 * One block of 1024 threads. The weights floor(2^40 E((x - max) / T)) in the sampler's double
 * arithmetic, each product and sum rounded alone (__dmul_rn / __dadd_rn: no contraction into an
 * FMA), so the same integers as the host's. Integer sums are exact in any order, so the block's
 * reductions give the host's z and masses. Top-k keeps the first k of the descending order (equal
 * logits by index): found as the nucleus is below, by counts instead of weights. The nucleus is
 * the shortest prefix of the descending
 * order (equal logits by index) whose weight reaches ceil(p z): where the host orders only the
 * tokens of one bucket of distances, this kernel finds the same boundary by a radix selection of
 * the order's 32-bit value key (four passes of 8 bits over weighted histograms) and, among the
 * tokens of the boundary's value, an index-order scan. The draw is one splitmix_below on the state
 * (thread 0), then an index-order scan to the token where the running weight passes it: the
 * host's walk.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr double kLastDistance = 27.8;
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kRound = 6755399441055744.0;  // 0x1.8p52

// sampler.cpp's sample_exp_scaled, every operation rounded alone in the host's order
__device__ double exp_scaled(double d) {
  const double kd = __dsub_rn(__dadd_rn(__dmul_rn(d, kLog2e), kRound), kRound);
  const double r = __dsub_rn(__dsub_rn(d, __dmul_rn(kd, kLn2Hi)), __dmul_rn(kd, kLn2Lo));
  const double r2 = __dmul_rn(r, r), r4 = __dmul_rn(r2, r2);
  // (1 + r) + r2 (1/2 + r/6) + r4 (((1/24 + r/120) + r2 (1/720 + r/5040)) + r4 (1/40320 + ...))
  const double a = __dadd_rn(1.0, r);
  const double b = __dmul_rn(r2, __dadd_rn(1.0 / 2, __dmul_rn(r, 1.0 / 6)));
  const double c1 = __dadd_rn(1.0 / 24, __dmul_rn(r, 1.0 / 120));
  const double c2 = __dmul_rn(r2, __dadd_rn(1.0 / 720, __dmul_rn(r, 1.0 / 5040)));
  const double c3 = __dmul_rn(r4, __dadd_rn(1.0 / 40320, __dmul_rn(r, 1.0 / 362880)));
  const double c = __dmul_rn(r4, __dadd_rn(__dadd_rn(c1, c2), c3));
  const double p = __dadd_rn(__dadd_rn(a, b), c);
  const int e = 40 + __double2int_rz(kd);
  return __dmul_rn(p, __longlong_as_double((long long)(e + 1023) << 52));
}

// sampler.cpp's weight(x, max, t)
__device__ int64_t weight(float x, float max, double t) {
  if (max == INFINITY) return x == INFINITY ? 1 : 0;
  if (!(x > -INFINITY)) return 0;
  const double d = __ddiv_rn(__dsub_rn(double(x), double(max)), t);
  return d < -kLastDistance ? 0 : __double2ll_rz(exp_scaled(d));
}

// The order's value key: ascending keys = descending values (NaN as -inf), the high half of
// sampler.cpp's order_key with its sign bit flipped (a signed order made unsigned)
__device__ uint32_t value_key(float x) {
  if (x != x) x = -INFINITY;
  const int32_t b = __float_as_int(x);
  const int32_t ascending = b ^ ((b >> 31) & 0x7fffffff);
  return uint32_t(~ascending) ^ 0x80000000u;
}

// sampler.cpp's splitmix_next / splitmix_below
__device__ uint64_t splitmix_next(int64_t& state) {
  uint64_t z = uint64_t(state) + 0x9e3779b97f4a7c15ull;
  state = int64_t(z);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
__device__ int64_t splitmix_below(int64_t& state, int64_t bound) {
  const uint64_t m = uint64_t(bound) - 1;
  uint64_t r = splitmix_next(state);
  if ((uint64_t(bound) & m) == 0) return int64_t(r & m);
  for (uint64_t u = r >> 1;; u = splitmix_next(state) >> 1) {
    r = u % uint64_t(bound);
    if (int64_t(u + m - r) >= 0) return int64_t(r);
  }
}

// The block's sum of v (every thread gets it); red: kWarps int64 of shared memory
__device__ int64_t block_sum(int64_t v, int64_t* red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // red is free
  if (lane == 0) red[warp] = v;
  __syncthreads();
  int64_t s = 0;
  for (int w = 0; w < kWarps; ++w) s += red[w];
  return s;
}

// The block's exclusive prefix of v in thread order (each thread its own); red as block_sum's
__device__ int64_t block_exclusive(int64_t v, int64_t* red) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int64_t in = v;  // the warp's inclusive prefix
  for (int o = 1; o < 32; o <<= 1) {
    const int64_t y = __shfl_up_sync(0xffffffffu, in, o);
    if (lane >= o) in += y;
  }
  __syncthreads();
  if (lane == 31) red[warp] = in;
  __syncthreads();
  int64_t before = 0;
  for (int w = 0; w < warp; ++w) before += red[w];
  return before + in - v;
}

// The order's boundary where the running amount (a token's weight, or 1 to count tokens) of the
// tokens in(i) reaches need: the value key *kb and the index *ib of the token reaching it (equal
// keys by index), *run_out the amount up to and including it. A radix selection of the key (four
// passes of 8 bits over histograms of the amount), then an index-order scan among the ties. Every
// thread gets the results; need is at most the total amount of in.
// The histograms: one a warp (whist, kWarps x 256), each lane's amount added once per group of
// lanes with the same bin (__match_any_sync, the group's sum by __reduce_add_sync over the
// amount's two halves, exact: an amount is at most 2^40), by the group's first lane alone, so
// with no atomics (a 64-bit add to shared memory is a compare-and-swap loop, and the logits of a
// step crowd into a few bins); then summed over the warps into hist, and the boundary's bin found
// by warp 0 (eight bins a lane, a scan over the lanes).
template <class Amount, class In>
__device__ void order_boundary(int32_t n, const uint32_t* __restrict__ key, Amount amount, In in,
                               int64_t need, int64_t* whist, int64_t* hist, int64_t* red,
                               uint32_t& kb, int32_t& ib, int64_t& run_out) {
  __shared__ uint32_t s_prefix;
  __shared__ int64_t s_before;
  __shared__ int32_t s_index;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int64_t* own = whist + warp * 256;
  const int32_t chunk = (n + kThreads - 1) / kThreads;
  const int32_t c0 = min(n, tid * chunk), c1 = min(n, c0 + chunk);
  uint32_t pre = 0, mask = 0;
  int64_t before = 0;  // the amount of the keys below pre's bins
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = lane; b < 256; b += 32) own[b] = 0;
    __syncwarp();
    for (int32_t base = 0; base < n; base += kThreads) {  // every lane of a warp goes round alike
      const int32_t i = base + tid;
      uint32_t k = 0;
      int64_t a = 0;
      if (i < n) {
        k = key[i];
        if ((k & mask) == pre && in(i)) a = amount(i);
      }
      if (__ballot_sync(0xffffffffu, a != 0) == 0) continue;
      const uint32_t bin = a != 0 ? (k >> shift) & 255u : 256u + lane;  // the rest each alone
      const unsigned peers = __match_any_sync(0xffffffffu, bin);
      const uint32_t lo = __reduce_add_sync(peers, uint32_t(a) & 0x1fffffu);
      const uint32_t hi = __reduce_add_sync(peers, uint32_t(uint64_t(a) >> 21));
      if (a != 0 && lane == __ffs(peers) - 1) own[bin] += (int64_t(hi) << 21) + lo;
      __syncwarp();  // the group's write before another group of this warp reads the bin
    }
    __syncthreads();
    for (int b = tid; b < 256; b += kThreads) {
      int64_t sum = 0;
      for (int w = 0; w < kWarps; ++w) sum += whist[w * 256 + b];
      hist[b] = sum;
    }
    __syncthreads();
    if (warp == 0) {  // the first bin b (at most 255) where before + the bins up to b reach need
      int64_t own8 = 0;
      for (int j = 0; j < 8; ++j) own8 += hist[lane * 8 + j];
      int64_t incl = own8;
      for (int o = 1; o < 32; o <<= 1) {
        const int64_t y = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += y;
      }
      const unsigned hit = __ballot_sync(0xffffffffu, before + incl >= need);
      const int at = hit ? __ffs(hit) - 1 : 31;
      if (lane == at) {
        int64_t run = before + incl - own8;
        int b = lane * 8;
        for (; b < 255 && run + hist[b] < need; ++b) run += hist[b];
        s_prefix = pre | (uint32_t(b) << shift);
        s_before = run;
      }
    }
    __syncthreads();
    pre = s_prefix;
    before = s_before;
    mask |= 255u << shift;
  }
  // among the tokens of the boundary's key, by index: the first where the amount reaches need
  int64_t mine = 0;
  for (int32_t i = c0; i < c1; ++i) mine += key[i] == pre && in(i) ? amount(i) : 0;
  int64_t run = before + block_exclusive(mine, red);
  if (run < need && run + mine >= need) {  // one thread's chunk holds it
    for (int32_t i = c0; i < c1; ++i) {
      if (key[i] != pre || !in(i)) continue;
      run += amount(i);
      if (run >= need) {
        s_index = i;
        s_before = run;
        break;
      }
    }
  }
  __syncthreads();
  kb = pre;
  ib = s_index;
  run_out = s_before;
  __syncthreads();  // the shared results are read before a next call writes them
}

// the first index of the greedy argmax (model/engine.h's greedy_argmax): keep_best as greedy.cu
__device__ __forceinline__ void keep_best(float v, int32_t i, float& bv, int32_t& bi) {
  if (v > bv || (v == bv && i < bi)) bv = v, bi = i;
}

__global__ void __launch_bounds__(kThreads)
    sample_feed_kernel(const float* __restrict__ logits, int32_t n, double t, int32_t top_k,
                       double top_p, int64_t* state, int64_t* __restrict__ w,
                       uint32_t* __restrict__ key, int32_t* out, int64_t* state_out, int32_t* ids,
                       int32_t* pos, int32_t next_pos) {
  __shared__ int64_t red[kWarps];
  __shared__ int64_t hist[256];
  extern __shared__ int64_t whist[];  // kWarps x 256: order_boundary's histograms, one a warp
  __shared__ float smax[kWarps];
  __shared__ float sbv[kWarps];
  __shared__ int32_t sbi[kWarps];
  __shared__ int64_t s_u;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  // each thread's contiguous chunk of the vocabulary, for the index-order scans
  const int32_t chunk = (n + kThreads - 1) / kThreads;
  const int32_t c0 = min(n, tid * chunk), c1 = min(n, c0 + chunk);

  // 1. the largest logit (NaN skipped) and the greedy token
  float m = -INFINITY, bv = -INFINITY;
  int32_t bi = INT32_MAX;
  for (int32_t i = tid; i < n; i += kThreads) {
    const float x = logits[i];
    m = fmaxf(m, x);  // fmaxf drops a NaN
    keep_best(x, i, bv, bi);
  }
  for (int o = 16; o > 0; o >>= 1) {
    m = fmaxf(m, __shfl_down_sync(0xffffffffu, m, o));
    const float v = __shfl_down_sync(0xffffffffu, bv, o);
    const int32_t i = __shfl_down_sync(0xffffffffu, bi, o);
    keep_best(v, i, bv, bi);
  }
  if (lane == 0) smax[warp] = m, sbv[warp] = bv, sbi[warp] = bi;
  __syncthreads();
  m = -INFINITY;
  bv = -INFINITY;
  bi = INT32_MAX;
  for (int k = 0; k < kWarps; ++k) {
    m = fmaxf(m, smax[k]);
    keep_best(sbv[k], sbi[k], bv, bi);
  }
  int64_t st = *state;
  if (m == -INFINITY) {  // nothing to draw: the greedy token, the state untouched
    if (tid == 0) {
      const int32_t best = isnan(logits[0]) || bi == INT32_MAX ? 0 : bi;
      *out = best;
      *state_out = st;
      ids[0] = best;
      pos[0] = next_pos;
    }
    return;
  }

  // 2. the weights and their keys; top-k: the kept tokens, the first k of the order (keys below
  // kk, and of key kk those up to index ik)
  for (int32_t i = tid; i < n; i += kThreads) {
    const float x = logits[i];
    w[i] = weight(x, m, t);
    key[i] = value_key(x);
  }
  __syncthreads();
  uint32_t kk = 0xffffffffu;
  int32_t ik = n - 1;
  if (top_k > 0 && top_k < n) {
    int64_t counted = 0;
    order_boundary(
        n, key, [](int32_t) { return int64_t(1); }, [](int32_t) { return true; }, top_k, whist,
        hist, red, kk, ik, counted);
  }
  auto kept = [&](int32_t i) {
    const uint32_t k = key[i];
    return k < kk || (k == kk && i <= ik);
  };
  int64_t part = 0;
  for (int32_t i = tid; i < n; i += kThreads) part += kept(i) ? w[i] : 0;
  const int64_t z = block_sum(part, red);

  // 3. the nucleus: the kept tokens of key < prefix, and of key == prefix those up to index cut
  uint32_t prefix = 0xffffffffu;
  int32_t cut = n - 1;
  int64_t total = z;
  if (top_p < 1) {
    const int64_t need =
        max(int64_t(1), min(z, int64_t(ceil(__dmul_rn(top_p, __ll2double_rn(z))))));
    order_boundary(
        n, key, [&](int32_t i) { return w[i]; }, kept, need, whist, hist, red, prefix, cut, total);
  }

  // 4. the draw, then the token where the nucleus' running weight in index order passes it
  if (tid == 0) s_u = splitmix_below(st, total);
  __syncthreads();
  const int64_t u = s_u;
  int64_t mine = 0;
  auto member = [&](int32_t i) {
    const uint32_t k = key[i];
    return kept(i) && (k < prefix || (k == prefix && i <= cut));
  };
  for (int32_t i = c0; i < c1; ++i) mine += member(i) ? w[i] : 0;
  int64_t run = block_exclusive(mine, red);
  if (run <= u && u < run + mine) {  // one thread's chunk holds it
    int64_t left = u - run;
    for (int32_t i = c0; i < c1; ++i) {
      left -= member(i) ? w[i] : 0;
      if (left < 0) {
        *out = i;
        ids[0] = i;
        break;
      }
    }
  }
  if (tid == 0) {
    *state_out = st;
    *state = st;
    pos[0] = next_pos;
  }
}

}  // namespace

cudaError_t sample_feed(const float* logits, int32_t n, double temperature, int32_t top_k,
                        double top_p, int64_t* state, int64_t* w, uint32_t* key, int32_t* out,
                        int64_t* state_out, int32_t* ids, int32_t* pos, int32_t next_pos,
                        cudaStream_t s) {
  if (n <= 0 || !(temperature > 0) || top_k < 0 || !(top_p > 0 && top_p <= 1))
    return cudaErrorInvalidValue;
  constexpr int kWhist = kWarps * 256 * sizeof(int64_t);  // 64 KiB: above the default 48
  const cudaError_t e =
      cudaFuncSetAttribute(sample_feed_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kWhist);
  if (e != cudaSuccess) return e;
  sample_feed_kernel<<<1, kThreads, kWhist, s>>>(logits, n, temperature, top_k, top_p, state, w,
                                                 key, out, state_out, ids, pos, next_pos);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
