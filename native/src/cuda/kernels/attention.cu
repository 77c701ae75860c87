/*
 * Flash attention, forward and backward, on tensor cores (mma.sync m16n8k16, fp32
 * accumulators; runs on sm_80 and sm_90). No [S x S] matrix ever reaches memory. Q and K are
 * fp16, so the scores S = Q K^T (the product whose rounding moves the softmax most) keep 11
 * significant bits per operand; P, V, dO and dS are bf16. The backward's dK = dS^T Q and
 * dQ = dS K take bf16 copies of the Q and K tiles made once in shared memory.
 *
 * Visibility: query i (position q_offset + i) of row b sees key j iff
 *   j <= q_offset + i                                   (causal)
 *   key_mask[b, j] != 0                                 (padding keys are never attended)
 *   segments[b, q_offset + i] == segments[b, j]         (packed examples never see each other)
 *   q_offset + i - j < window    when window > 0        (Mistral sliding window)
 * GQA: query head h reads KV head h / (H / KH). Scores are scaled by 1/sqrt(D). A query that
 * sees no key gets out = 0 and lse = -inf.
 *
 * Forward: a block of 4 warps takes 64 queries of one (row, head); each warp owns 16 query rows
 * and keeps its Q fragments in registers. Key/value tiles of 64 are staged in shared memory,
 * two stages deep with cp.async so the next tile loads while this one is computed;
 * per tile S = Q K^T, online softmax (running max m and sum l, base-2 exponentials), O += P V
 * with P converted from the accumulator layout to the A-operand layout in registers.
 * lse = m + log(l) (natural log) is kept for the backward.
 *
 * Backward (FlashAttention-2): delta = rowsum(dO * O) first (from the fp32 copy of O when the
 * forward kept one). Then a block takes 128 keys of one
 * (row, KV head) and loops over the query heads of its group and the query tiles that can see
 * them (two-stage cp.async pipeline over those tiles); 8 warps, each owning 16 of 128 keys:
 * S^T = K Q^T, P^T = exp(S^T - lse), dP^T = V dO^T,
 * dS^T = P^T (dP^T - delta), dV += P^T dO, dK += dS^T Q; dS goes through shared memory to form
 * dQ += dS K, added with fp32 atomics into dq_accum, converted to bf16 at the end. dK and dV
 * belong to one block each, so they are written once, without atomics. On sm_90 the calls the
 * Hopper forward takes run the wgmma backward of attention_sm90.cu instead (same pre-pass, same
 * dq_accum and conversion); attention_backward chooses as attention_forward does.
 */
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_set>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/mma.cuh"

namespace lora4j {
namespace cuda {

namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Vis {
  const int32_t* key_mask;
  const int32_t* seg;
  int window;
  // qpos: absolute position of the query; kpos: key index; kok: key real; qseg/kseg.
  __device__ __forceinline__ bool operator()(int qpos, int kpos, int Sk, bool kok, int qseg,
                                             int kseg) const {
    if (kpos >= Sk || kpos > qpos || !kok) return false;
    if (seg && qseg != kseg) return false;
    if (window > 0 && qpos - kpos >= window) return false;
    return true;
  }
};

// ------------------------------------------------------------------------------------------
// forward
// ------------------------------------------------------------------------------------------
template <int D>
struct FwdSmem {
  static constexpr int BC = 64, LD = D + 8;
  // two stages of K and V tiles, then two stages of key flags and segment ids
  static constexpr size_t bytes = sizeof(bf16) * 4 * BC * LD + sizeof(int) * 4 * BC;
};

template <int D>
__global__ void __launch_bounds__(128) attn_fwd_kernel(AttentionParams p) {
  constexpr int BR = 64, BC = 64, LD = D + 8;
  static_assert(BC <= 128, "thread i < BC loads key i's flags (128 threads)");
  extern __shared__ __align__(16) unsigned char smem_raw[];
  f16* sKbuf = reinterpret_cast<f16*>(smem_raw);               // [2][BC * LD]
  bf16* sVbuf = reinterpret_cast<bf16*>(sKbuf + 2 * BC * LD);  // [2][BC * LD]
  int* sKokbuf = reinterpret_cast<int*>(sVbuf + 2 * BC * LD);  // [2][BC]
  int* sKsegbuf = sKokbuf + 2 * BC;                            // [2][BC]

  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * BR;
  const int kvh = h / (p.H / p.KH);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int qr[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  const f16* qb = p.q + int64_t(b) * p.q_bstride;
  const f16* kb = p.k + int64_t(b) * p.kv_bstride;
  const bf16* vb = p.v + int64_t(b) * p.kv_bstride;
  const int64_t qstride = int64_t(p.H) * D, kstride = int64_t(p.KH) * D;
  const Vis vis{p.key_mask, p.segments, p.window};

  // Q fragments (A operand), rows beyond Sq are zero.
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kc = 0; kc < D / 16; ++kc) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const f16* row = qb + int64_t(qr[r]) * qstride + h * D + kc * 16 + 2 * t4;
      bool ok = qr[r] < p.Sq;
      qf[kc][r] = ok ? ld32(row) : 0u;
      qf[kc][r + 2] = ok ? ld32(row + 8) : 0u;
    }
  }
  int qseg[2];
#pragma unroll
  for (int r = 0; r < 2; ++r)
    qseg[r] = (p.segments && qr[r] < p.Sq) ? p.segments[int64_t(b) * p.Sk + p.q_offset + qr[r]] : 0;

  // Whether every query of the block lies in the segment of its first query (packed rows: the
  // tiles of a block inside one example need no mask either).
  const int qseg0 = p.segments ? p.segments[int64_t(b) * p.Sk + p.q_offset + q0] : 0;
  const bool qsame =
      __syncthreads_and((qr[0] >= p.Sq || qseg[0] == qseg0) && (qr[1] >= p.Sq || qseg[1] == qseg0));
  const int qlast = p.q_offset + min(q0 + BR, p.Sq) - 1;

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
  const float sl2 = p.scale * kLog2e;

  const int qmax = p.q_offset + min(q0 + BR, p.Sq) - 1;  // last query position of the block
  const int kend = min(p.Sk, qmax + 1);
  int kstart = 0;
  if (p.window > 0) kstart = max(0, p.q_offset + q0 - p.window + 1) / BC * BC;

  // Stage loader: K/V rows with cp.async (zero-filled past Sk), key flags with plain stores.
  auto load_stage = [&](int stage, int kt) {
    f16* dK = sKbuf + stage * BC * LD;
    bf16* dV = sVbuf + stage * BC * LD;
    for (int i = threadIdx.x; i < BC * (D / 8); i += blockDim.x) {
      int r = i / (D / 8), c = (i % (D / 8)) * 8;
      int key = kt + r;
      bool in = key < p.Sk;
      int64_t off = int64_t(in ? key : 0) * kstride + kvh * D + c;
      cp_async16(&dK[r * LD + c], kb + off, in);
      cp_async16(&dV[r * LD + c], vb + off, in);
    }
    cp_async_commit();
    for (int i = threadIdx.x; i < BC; i += blockDim.x) {
      int key = kt + i;
      bool in = key < p.Sk;
      sKokbuf[stage * BC + i] = in && (!p.key_mask || p.key_mask[int64_t(b) * p.Sk + key] != 0);
      sKsegbuf[stage * BC + i] = (in && p.segments) ? p.segments[int64_t(b) * p.Sk + key] : 0;
    }
  };
  if (kstart < kend) load_stage(0, kstart);
  for (int kt = kstart, it = 0; kt < kend; kt += BC, ++it) {
    const int stage = it & 1;
    if (kt + BC < kend) {
      load_stage(stage ^ 1, kt + BC);  // the buffer freed by the barrier at the loop's end
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    // Every key of the tile real and in the block's segment: thread i < BC wrote key i's flags
    // itself (load_stage), so it reads them before the barrier that makes the tile visible.
    const int tid = threadIdx.x;
    const bool keys_ok =
        __syncthreads_and(tid >= BC || (sKokbuf[stage * BC + tid] != 0 &&
                                        (!p.segments || sKsegbuf[stage * BC + tid] == qseg0)));
    const f16* sK = sKbuf + stage * BC * LD;
    const bf16* sV = sVbuf + stage * BC * LD;
    const int* sKok = sKokbuf + stage * BC;
    const int* sKseg = sKsegbuf + stage * BC;

    float s[BC / 8][4];
#pragma unroll
    for (int nt = 0; nt < BC / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int nt = 0; nt < BC / 8; nt += 2) {
#pragma unroll
      for (int kc = 0; kc < D / 16; ++kc) {
        uint32_t bf[4];
        ldsm_bt_pair(bf, sK, LD, nt * 8, kc * 16, lane);
        mma16816_f16(s[nt], qf[kc], bf);
        mma16816_f16(s[nt + 1], qf[kc], bf + 2);
      }
    }
    // mask, scale (base 2), row max. A tile needs no mask when it lies wholly below the
    // diagonal, inside the window of every query of the block, and its keys are all real and in
    // the one segment of the block's queries (rows past Sq hold zeros and are never written).
    float mx[2] = {-INFINITY, -INFINITY};
    const bool full = keys_ok && qsame && kt + BC <= p.Sk && kt + BC - 1 <= p.q_offset + q0 &&
                      (p.window == 0 || qlast - kt < p.window);
    if (full) {
#pragma unroll
      for (int nt = 0; nt < BC / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[nt][e] *= sl2;
          mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);
        }
    } else {
#pragma unroll
      for (int nt = 0; nt < BC / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int r = e >> 1, kl = nt * 8 + 2 * t4 + (e & 1);
          bool ok = qr[r] < p.Sq &&
                    vis(p.q_offset + qr[r], kt + kl, p.Sk, sKok[kl] != 0, qseg[r], sKseg[kl]);
          float v = ok ? s[nt][e] * sl2 : -INFINITY;
          s[nt][e] = v;
          mx[r] = fmaxf(mx[r], v);
        }
    }
    float corr[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      float mnew = fmaxf(mrow[r], mx[r]);
      corr[r] = (mnew == -INFINITY) ? 1.f : exp2f(mrow[r] - mnew);
      mrow[r] = mnew;
      lrow[r] *= corr[r];
    }
#pragma unroll
    for (int nt = 0; nt < BC / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        int r = e >> 1;
        float pv = (mrow[r] == -INFINITY) ? 0.f : exp2f(s[nt][e] - mrow[r]);
        s[nt][e] = pv;
        lrow[r] += pv;
      }
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      o[dt][0] *= corr[0];
      o[dt][1] *= corr[0];
      o[dt][2] *= corr[1];
      o[dt][3] *= corr[1];
    }
    // O += P V
#pragma unroll
    for (int kc = 0; kc < BC / 16; ++kc) {
      uint32_t af[4];
      af[0] = pack_bf16(s[2 * kc][0], s[2 * kc][1]);
      af[1] = pack_bf16(s[2 * kc][2], s[2 * kc][3]);
      af[2] = pack_bf16(s[2 * kc + 1][0], s[2 * kc + 1][1]);
      af[3] = pack_bf16(s[2 * kc + 1][2], s[2 * kc + 1][3]);
#pragma unroll
      for (int dt = 0; dt < D / 8; dt += 2) {
        uint32_t bf[4];
        ldsm_b_pair(bf, sV, LD, kc * 16, dt * 8, lane);
        mma16816(o[dt], af, bf);
        mma16816(o[dt + 1], af, bf + 2);
      }
    }
    __syncthreads();  // this stage may be refilled by the next iteration
  }

  // finish: full row sums over the quad, normalize, write
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
    lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
  }
  bf16* ob = p.o + int64_t(b) * p.q_bstride;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (qr[r] >= p.Sq) continue;
    float inv = lrow[r] > 0.f ? 1.f / lrow[r] : 0.f;
    bf16* orow = ob + int64_t(qr[r]) * qstride + h * D;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      __nv_bfloat162 v = __floats2bfloat162_rn(o[dt][2 * r] * inv, o[dt][2 * r + 1] * inv);
      *reinterpret_cast<__nv_bfloat162*>(orow + dt * 8 + 2 * t4) = v;
    }
    if (p.o_f32) {
      float* o32 = p.o_f32 + int64_t(b) * p.q_bstride + int64_t(qr[r]) * qstride + h * D;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt)
        *reinterpret_cast<float2*>(o32 + dt * 8 + 2 * t4) =
            make_float2(o[dt][2 * r] * inv, o[dt][2 * r + 1] * inv);
    }
    if (t4 == 0)
      p.lse[(int64_t(b) * p.H + h) * p.Sq + qr[r]] =
          lrow[r] > 0.f ? (mrow[r] + log2f(lrow[r])) * kLn2 : -INFINITY;
  }
}

// ------------------------------------------------------------------------------------------
// backward
// ------------------------------------------------------------------------------------------
// delta[b, h, i] = sum_d dO[b, i, h, d] * O[b, i, h, d]; one warp per (b, i, h).
__global__ void attn_bwd_delta_kernel(const bf16* dout, const bf16* out, const float* out32,
                                      float* delta, int B, int S, int H, int D) {
  int64_t wid = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (wid >= int64_t(B) * S * H) return;
  int h = int(wid % H);
  int64_t bi = wid / H;  // b * S + i
  const bf16* a = dout + wid * D;
  const bf16* c = out + wid * D;
  float acc = 0.f;
  if (out32) {
    const float* c32 = out32 + wid * D;
    for (int d = lane; d < D; d += 32) acc += __bfloat162float(a[d]) * c32[d];
  } else {
    for (int d = lane; d < D; d += 32) acc += __bfloat162float(a[d]) * __bfloat162float(c[d]);
  }
  acc = warp_sum(acc);
  if (lane == 0) {
    int64_t b = bi / S, i = bi % S;
    delta[(b * H + h) * S + i] = acc;
  }
}

// The same delta with dq_accum's row zeroed alongside, L = D / 8 lanes per (b, i, h) row: each
// lane reads 8 values of dO and of O (16-byte loads; 2 x 16 of O's fp32 copy) and zeroes 8 of
// dq_accum. One row per L consecutive threads, no grid stride (the lanes of a row shuffle).
template <int L>
__global__ void __launch_bounds__(256)
    attn_bwd_delta_zero_kernel(const bf16* dout, const bf16* out, const float* out32, float* delta,
                               float* dq_accum, int64_t rows, int S, int H) {
  constexpr int D = 8 * L;
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t row = t / L;
  const int l = int(t % L);
  float acc = 0.f;
  if (row < rows) {
    const int64_t off = row * D + 8 * l;
    const Bf16x8 a = load_bf16x8(dout + off);
    float c[8];
    if (out32) {
      const float4 c0 = *reinterpret_cast<const float4*>(out32 + off),
                   c1 = *reinterpret_cast<const float4*>(out32 + off + 4);
      c[0] = c0.x, c[1] = c0.y, c[2] = c0.z, c[3] = c0.w;
      c[4] = c1.x, c[5] = c1.y, c[6] = c1.z, c[7] = c1.w;
    } else {
      const Bf16x8 o = load_bf16x8(out + off);
#pragma unroll
      for (int e = 0; e < 8; ++e) c[e] = __bfloat162float(o.v[e]);
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) acc += __bfloat162float(a.v[e]) * c[e];
    const float4 z = make_float4(0.f, 0.f, 0.f, 0.f);
    *reinterpret_cast<float4*>(dq_accum + off) = z;
    *reinterpret_cast<float4*>(dq_accum + off + 4) = z;
  }
#pragma unroll
  for (int o = L / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (row < rows && l == 0) {
    const int64_t bi = row / H, b = bi / S, i = bi % S;
    delta[(b * H + int(row % H)) * S + i] = acc;
  }
}

template <int D, int BR>
struct BwdSmem {
  static constexpr int NW = 8, BC = 16 * NW, LD = D + 8, LDS = BR + 8;  // 8 warps x 16 keys
  // K (fp16) and its bf16 copy, V; two stages of (Q fp16, dO); the bf16 copy of this stage's Q;
  // dS^T; two stages of (lse, delta); key flags, key segments, two stages of query segments
  static constexpr size_t bytes = sizeof(bf16) * (3 * BC * LD + 5 * BR * LD + BC * LDS) +
                                  sizeof(float) * 4 * BR + sizeof(int) * (2 * BC + 2 * BR);
};

template <int D, int BR>
__global__ void __launch_bounds__(256) attn_bwd_kernel(AttentionBackwardParams bp) {
  using SM = BwdSmem<D, BR>;
  constexpr int BC = SM::BC, LD = SM::LD, LDS = SM::LDS;
  static_assert(BC <= 256 && BR <= 256, "thread i loads key i's and query i's flags");
  extern __shared__ __align__(16) unsigned char smem_raw[];
  f16* sK = reinterpret_cast<f16*>(smem_raw);         // scores operand
  bf16* sKb = reinterpret_cast<bf16*>(sK + BC * LD);  // dQ = dS K operand
  bf16* sV = sKb + BC * LD;
  f16* sQbuf = reinterpret_cast<f16*>(sV + BC * LD);            // [2][BR * LD]
  bf16* sdObuf = reinterpret_cast<bf16*>(sQbuf + 2 * BR * LD);  // [2][BR * LD]
  bf16* sQb = sdObuf + 2 * BR * LD;                             // [BR * LD] dK = dS^T Q operand
  bf16* sdS = sQb + BR * LD;                                    // [BC keys][LDS] : dS^T
  float* sLsebuf = reinterpret_cast<float*>(sdS + BC * LDS);    // [2][BR]
  float* sDeltabuf = sLsebuf + 2 * BR;                          // [2][BR]
  int* sKok = reinterpret_cast<int*>(sDeltabuf + 2 * BR);
  int* sKseg = sKok + BC;
  int* sQsegbuf = sKseg + BC;  // [2][BR]

  const AttentionParams& p = bp.f;
  // A 1-d grid of (key block, KV head, row), the key blocks that the most query tiles see first
  // over all heads and rows, so the block scheduler packs the SMs longest-first (as the Hopper
  // backward does: +12-14% there over a 3-d grid).
  const int per = p.KH * p.B;
  const int kvh = int(blockIdx.x % per) % p.KH, b = int(blockIdx.x % per) / p.KH;
  const int k0 = int(blockIdx.x / per) * BC;
  const int G = p.H / p.KH;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int S = p.Sk;
  const int64_t qstride = int64_t(p.H) * D, kstride = int64_t(p.KH) * D;
  // dQ through 16-byte reductions where the accumulator allows them (sm_90 and later)
  [[maybe_unused]] const bool dq_v4 =
      (reinterpret_cast<uintptr_t>(bp.dq_accum) & 15u) == 0 && D % 4 == 0;
  const f16* qb = p.q + int64_t(b) * p.q_bstride;
  const bf16* dob = bp.dout + int64_t(b) * p.q_bstride;
  const f16* kb = p.k + int64_t(b) * p.kv_bstride;
  const bf16* vb = p.v + int64_t(b) * p.kv_bstride;
  const Vis vis{p.key_mask, p.segments, p.window};
  const float sl2 = p.scale * kLog2e;

  for (int i = threadIdx.x; i < BC * (D / 8); i += blockDim.x) {
    int r = i / (D / 8), c = (i % (D / 8)) * 8;
    int key = k0 + r;
    uint4 kvv = make_uint4(0, 0, 0, 0), vvv = make_uint4(0, 0, 0, 0);
    if (key < S) {
      kvv = *reinterpret_cast<const uint4*>(kb + int64_t(key) * kstride + kvh * D + c);
      vvv = *reinterpret_cast<const uint4*>(vb + int64_t(key) * kstride + kvh * D + c);
    }
    *reinterpret_cast<uint4*>(&sK[r * LD + c]) = kvv;
    *reinterpret_cast<uint4*>(&sKb[r * LD + c]) = f16x8_to_bf16x8(kvv);
    *reinterpret_cast<uint4*>(&sV[r * LD + c]) = vvv;
  }
  for (int i = threadIdx.x; i < BC; i += blockDim.x) {
    int key = k0 + i;
    bool in = key < S;
    sKok[i] = in && (!p.key_mask || p.key_mask[int64_t(b) * S + key] != 0);
    sKseg[i] = (in && p.segments) ? p.segments[int64_t(b) * S + key] : 0;
  }
  // Whether every key of the block is real and in the segment of its first key: thread i < BC
  // wrote key i's flags itself, so it reads them before the barrier.
  const int kseg0 = p.segments ? p.segments[int64_t(b) * S + k0] : 0;
  const bool keys_ok =
      __syncthreads_and(int(threadIdx.x) >= BC ||
                        (sKok[threadIdx.x] != 0 && (!p.segments || sKseg[threadIdx.x] == kseg0)));

  // this warp's 16 keys
  const int kl[2] = {warp * 16 + g, warp * 16 + g + 8};

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[i][e] = dv[i][e] = 0.f;

  const int kmax = min(k0 + BC, S) - 1;
  int qstart = k0 / BR * BR;
  int qend = S;
  if (p.window > 0) qend = int(min(int64_t(S), int64_t(kmax) + p.window));  // window near INT_MAX

  // The (query head, query tile) iterations, flattened so the next tile's Q and dO load
  // (cp.async, two stages) while this one is computed.
  const int nqt = qend > qstart ? (qend - qstart + BR - 1) / BR : 0;
  const int iters = G * nqt;
  auto load_stage = [&](int stage, int j) {
    const int hh = kvh * G + j / nqt, qt = qstart + (j % nqt) * BR;
    f16* dQ = sQbuf + stage * BR * LD;
    bf16* dO = sdObuf + stage * BR * LD;
    for (int i = threadIdx.x; i < BR * (D / 8); i += blockDim.x) {
      int r = i / (D / 8), c = (i % (D / 8)) * 8;
      int q = qt + r;
      bool in = q < S;
      int64_t off = int64_t(in ? q : 0) * qstride + hh * D + c;
      cp_async16(&dQ[r * LD + c], qb + off, in);
      cp_async16(&dO[r * LD + c], dob + off, in);
    }
    cp_async_commit();
    for (int i = threadIdx.x; i < BR; i += blockDim.x) {
      int q = qt + i;
      bool in = q < S;
      sLsebuf[stage * BR + i] = in ? p.lse[(int64_t(b) * p.H + hh) * S + q] : -INFINITY;
      sDeltabuf[stage * BR + i] = in ? bp.delta[(int64_t(b) * p.H + hh) * S + q] : 0.f;
      sQsegbuf[stage * BR + i] = (in && p.segments) ? p.segments[int64_t(b) * S + q] : 0;
    }
  };
  if (iters > 0) load_stage(0, 0);
  for (int j = 0; j < iters; ++j) {
    const int stage = j & 1;
    const int h = kvh * G + j / nqt, qt = qstart + (j % nqt) * BR;
    if (j + 1 < iters) {
      load_stage(stage ^ 1, j + 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    // Every query of the tile in the keys' segment (thread i < BR wrote query i's segment).
    const bool qsame = __syncthreads_and(!p.segments || int(threadIdx.x) >= BR ||
                                         sQsegbuf[stage * BR + threadIdx.x] == kseg0);
    const f16* sQ = sQbuf + stage * BR * LD;
    const bf16* sdO = sdObuf + stage * BR * LD;
    // bf16 copy of this Q tile for dK (read after the barrier below the scores)
    for (int i = threadIdx.x; i < BR * (D / 8); i += blockDim.x) {
      int r = i / (D / 8), c = (i % (D / 8)) * 8;
      *reinterpret_cast<uint4*>(&sQb[r * LD + c]) =
          f16x8_to_bf16x8(*reinterpret_cast<const uint4*>(&sQ[r * LD + c]));
    }
    const float* sLse = sLsebuf + stage * BR;
    const float* sDelta = sDeltabuf + stage * BR;
    const int* sQseg = sQsegbuf + stage * BR;
    {
      // S^T and dP^T: [16 keys x BR queries]
      float st[BR / 8][4], dpt[BR / 8][4];
#pragma unroll
      for (int nt = 0; nt < BR / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) st[nt][e] = dpt[nt][e] = 0.f;
#pragma unroll
      for (int kc = 0; kc < D / 16; ++kc) {
        uint32_t ak[4], av[4];
        ldsm_a(ak, sK, LD, warp * 16, kc * 16, lane);
        ldsm_a(av, sV, LD, warp * 16, kc * 16, lane);
#pragma unroll
        for (int nt = 0; nt < BR / 8; nt += 2) {
          uint32_t bq[4], bo[4];
          ldsm_bt_pair(bq, sQ, LD, nt * 8, kc * 16, lane);
          ldsm_bt_pair(bo, sdO, LD, nt * 8, kc * 16, lane);
          mma16816_f16(st[nt], ak, bq);
          mma16816_f16(st[nt + 1], ak, bq + 2);
          mma16816(dpt[nt], av, bo);
          mma16816(dpt[nt + 1], av, bo + 2);
        }
      }
      // P^T and dS^T in place
      // No mask for a tile wholly below the diagonal, inside the window of every pair, its keys
      // all real and every query and key in one segment.
      const bool full = keys_ok && qsame && qt + BR <= S && k0 + BC <= S && qt >= k0 + BC - 1 &&
                        (p.window == 0 || qt + BR - 1 - k0 < p.window);
      if (full) {
#pragma unroll
        for (int nt = 0; nt < BR / 8; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            int ql = nt * 8 + 2 * t4 + (e & 1);
            float pv = exp2f(st[nt][e] * sl2 - sLse[ql] * kLog2e);
            st[nt][e] = pv;
            dpt[nt][e] = pv * (dpt[nt][e] - sDelta[ql]);
          }
      } else {
#pragma unroll
        for (int nt = 0; nt < BR / 8; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            int r = e >> 1, ql = nt * 8 + 2 * t4 + (e & 1);
            int q = qt + ql, key = k0 + kl[r];
            bool ok = q < S && vis(q, key, S, sKok[kl[r]] != 0, sQseg[ql], sKseg[kl[r]]) &&
                      sLse[ql] != -INFINITY;
            float pv = ok ? exp2f(st[nt][e] * sl2 - sLse[ql] * kLog2e) : 0.f;
            st[nt][e] = pv;
            dpt[nt][e] = pv * (dpt[nt][e] - sDelta[ql]);
          }
      }
      __syncthreads();  // sQb complete
                        // dV += P^T dO ; dK += dS^T Q
#pragma unroll
      for (int kc = 0; kc < BR / 16; ++kc) {
        uint32_t ap[4], ads[4];
        ap[0] = pack_bf16(st[2 * kc][0], st[2 * kc][1]);
        ap[1] = pack_bf16(st[2 * kc][2], st[2 * kc][3]);
        ap[2] = pack_bf16(st[2 * kc + 1][0], st[2 * kc + 1][1]);
        ap[3] = pack_bf16(st[2 * kc + 1][2], st[2 * kc + 1][3]);
        ads[0] = pack_bf16(dpt[2 * kc][0], dpt[2 * kc][1]);
        ads[1] = pack_bf16(dpt[2 * kc][2], dpt[2 * kc][3]);
        ads[2] = pack_bf16(dpt[2 * kc + 1][0], dpt[2 * kc + 1][1]);
        ads[3] = pack_bf16(dpt[2 * kc + 1][2], dpt[2 * kc + 1][3]);
#pragma unroll
        for (int dt = 0; dt < D / 8; dt += 2) {
          uint32_t bo[4], bq[4];
          ldsm_b_pair(bo, sdO, LD, kc * 16, dt * 8, lane);
          ldsm_b_pair(bq, sQb, LD, kc * 16, dt * 8, lane);
          mma16816(dv[dt], ap, bo);
          mma16816(dv[dt + 1], ap, bo + 2);
          mma16816(dk[dt], ads, bq);
          mma16816(dk[dt + 1], ads, bq + 2);
        }
      }
      // dS^T to shared memory (bf16) for dQ
#pragma unroll
      for (int nt = 0; nt < BR / 8; ++nt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          __nv_bfloat162 v = __floats2bfloat162_rn(dpt[nt][2 * r], dpt[nt][2 * r + 1]);
          *reinterpret_cast<__nv_bfloat162*>(&sdS[kl[r] * LDS + nt * 8 + 2 * t4]) = v;
        }
      __syncthreads();
      // dQ [BR x D] += dS [BR x 64 keys] K [64 x D]; items (m-tile, n-tile) over the 4 warps
      // items: (16-query m-tile, pair of 8-wide d-tiles)
      constexpr int MT = BR / 16, NP = D / 16;
      for (int item = warp; item < MT * NP; item += SM::NW) {
        int mt = item / NP, np = item % NP;
        float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
        for (int kk = 0; kk < BC / 16; ++kk) {
          uint32_t a[4], bk[4];
          // A[row = query][col = key] = sdS[key][query]: transposed loads of the 4 8x8 blocks
          ldsm_at(a, sdS, LDS, mt * 16, kk * 16, lane);
          ldsm_b_pair(bk, sKb, LD, kk * 16, np * 16, lane);
          mma16816(acc[0], a, bk);
          mma16816(acc[1], a, bk + 2);
        }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        if (dq_v4) {
          // 16-byte reductions: lanes t4 and t4 ^ 1 trade a pair, so that an even t4 holds row
          // g, columns 2 t4 .. + 3 of the 8-wide tile and an odd t4 row g + 8, columns
          // 2 (t4 - 1) .. + 3 (as the Hopper backward)
          const int odd = t4 & 1;
          const int q = qt + mt * 16 + g + 8 * odd;
          float* dst =
              bp.dq_accum + (int64_t(b) * S + q) * qstride + h * D + np * 16 + 2 * (t4 - odd);
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const float* c = acc[half];
            const float x0 = __shfl_xor_sync(0xffffffffu, odd ? c[0] : c[2], 1);
            const float x1 = __shfl_xor_sync(0xffffffffu, odd ? c[1] : c[3], 1);
            const float4 v =
                odd ? make_float4(x0, x1, c[2], c[3]) : make_float4(c[0], c[1], x0, x1);
            if (q < S)
              atomicAdd(reinterpret_cast<float4*>(dst + half * 8),
                        make_float4(v.x * p.scale, v.y * p.scale, v.z * p.scale, v.w * p.scale));
          }
          continue;
        }
#endif
#pragma unroll
        for (int half = 0; half < 2; ++half)
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            int q = qt + mt * 16 + g + 8 * r;
            if (q >= S) continue;
            float* dst =
                bp.dq_accum + (int64_t(b) * S + q) * qstride + h * D + np * 16 + half * 8 + 2 * t4;
            atomicAdd(dst, acc[half][2 * r] * p.scale);
            atomicAdd(dst + 1, acc[half][2 * r + 1] * p.scale);
          }
      }
    }
    __syncthreads();  // this stage and sdS are rewritten by the next iteration
  }
  // write dK (scaled) and dV
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    int key = k0 + kl[r];
    if (key >= S) continue;
    const int64_t row = bp.dkv_ld ? (int64_t(b) * S + key) * bp.dkv_ld + kvh * D
                                  : int64_t(b) * p.kv_bstride + int64_t(key) * kstride + kvh * D;
    bf16* dkr = bp.dk + row;
    bf16* dvr = bp.dv + row;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      *reinterpret_cast<__nv_bfloat162*>(dkr + dt * 8 + 2 * t4) =
          __floats2bfloat162_rn(dk[dt][2 * r] * p.scale, dk[dt][2 * r + 1] * p.scale);
      *reinterpret_cast<__nv_bfloat162*>(dvr + dt * 8 + 2 * t4) =
          __floats2bfloat162_rn(dv[dt][2 * r], dv[dt][2 * r + 1]);
    }
  }
}

template <int D>
cudaError_t launch_fwd(const AttentionParams& p, cudaStream_t s) {
  dim3 grid((p.Sq + 63) / 64, p.H, p.B);
  size_t smem = FwdSmem<D>::bytes;
  cudaError_t e = cudaFuncSetAttribute(attn_fwd_kernel<D>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (e != cudaSuccess) return e;
  attn_fwd_kernel<D><<<grid, 128, smem, s>>>(p);
  return cudaGetLastError();
}

// The steps around the main backward kernel, common to both kernels: dq_accum zeroed and delta
// before it (one pass where the rows allow 16-byte accesses), dq = bf16(dq_accum) after it
// unless the caller takes dq_accum itself (bp.dq null).
template <int L>
void launch_delta_zero(const AttentionBackwardParams& bp, int64_t rows, cudaStream_t s) {
  const AttentionParams& p = bp.f;
  attn_bwd_delta_zero_kernel<L><<<unsigned((rows * L + 255) / 256), 256, 0, s>>>(
      bp.dout, p.o, bp.out_f32, bp.delta, bp.dq_accum, rows, p.Sq, p.H);
}
cudaError_t bwd_prepare(const AttentionBackwardParams& bp, cudaStream_t s) {
  const AttentionParams& p = bp.f;
  const int64_t nq = int64_t(p.B) * p.Sq * p.H * p.D;
  const int64_t rows = int64_t(p.B) * p.Sq * p.H;
  const int L = p.D % 8 == 0 ? p.D / 8 : 0;  // lanes per row of the one-pass form
  const bool vec = (L == 2 || L == 4 || L == 8 || L == 16) && ptr_aligned16(bp.dout) &&
                   ptr_aligned16(bp.out_f32 ? static_cast<const void*>(bp.out_f32) : p.o) &&
                   ptr_aligned16(bp.dq_accum) && (rows * L + 255) / 256 <= INT32_MAX;
  if (vec) {
    switch (L) {
      case 2:
        launch_delta_zero<2>(bp, rows, s);
        break;
      case 4:
        launch_delta_zero<4>(bp, rows, s);
        break;
      case 8:
        launch_delta_zero<8>(bp, rows, s);
        break;
      default:
        launch_delta_zero<16>(bp, rows, s);
        break;
    }
    return cudaGetLastError();
  }
  cudaError_t e = cudaMemsetAsync(bp.dq_accum, 0, size_t(nq) * sizeof(float), s);
  if (e != cudaSuccess) return e;
  attn_bwd_delta_kernel<<<grid_for(rows * 32, 256, int64_t(1) << 30), 256, 0, s>>>(
      bp.dout, p.o, bp.out_f32, bp.delta, p.B, p.Sq, p.H, p.D);
  return cudaGetLastError();
}
cudaError_t bwd_finish(const AttentionBackwardParams& bp, cudaStream_t s) {
  if (!bp.dq) return cudaSuccess;
  const AttentionParams& p = bp.f;
  return f32_to_bf16(bp.dq_accum, bp.dq, int64_t(p.B) * p.Sq * p.H * p.D, s);
}

template <int D>
cudaError_t launch_bwd(const AttentionBackwardParams& bp, cudaStream_t s) {
  constexpr int BR = D >= 128 ? 32 : 64;
  const AttentionParams& p = bp.f;
  size_t smem = BwdSmem<D, BR>::bytes;
  cudaError_t e = cudaFuncSetAttribute(attn_bwd_kernel<D, BR>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (e != cudaSuccess) return e;
  constexpr int BC = BwdSmem<D, BR>::BC;
  const int64_t blocks = (int64_t(p.Sk) + BC - 1) / BC * p.KH * p.B;
  if (blocks > int64_t(INT32_MAX)) return cudaErrorInvalidConfiguration;
  attn_bwd_kernel<D, BR><<<unsigned(blocks), 32 * BwdSmem<D, BR>::NW, smem, s>>>(bp);
  return cudaGetLastError();
}

}  // namespace

bool attention_supports(int D) { return D == 16 || D == 32 || D == 64 || D == 128; }

bool segment_runs(const int32_t* seg, int64_t B, int64_t S, int32_t* start, int32_t* end) {
  std::unordered_set<int32_t> done;  // ids whose run has ended in this row
  for (int64_t b = 0; b < B; ++b) {
    const int32_t* row = seg + b * S;
    done.clear();
    int64_t first = 0;
    for (int64_t i = 1; i <= S; ++i) {
      if (i < S && row[i] == row[first]) continue;
      if (!done.insert(row[first]).second) return false;  // the id ran before
      for (int64_t j = first; j < i; ++j) {
        start[b * S + j] = int32_t(first);
        end[b * S + j] = int32_t(i);
      }
      first = i;
    }
  }
  return true;
}

namespace {
// LORA4J_ATTENTION, read once: 0 auto, 1 mma, 2 wgmma, -1 not understood.
int attention_env() {
  static const int mode = [] {
    const char* v = std::getenv("LORA4J_ATTENTION");
    if (!v || !*v || std::strcmp(v, "auto") == 0) return 0;
    if (std::strcmp(v, "mma") == 0) return 1;
    if (std::strcmp(v, "wgmma") == 0) return 2;
    std::fprintf(stderr, "lora4j: LORA4J_ATTENTION=%s is not one of auto, mma, wgmma\n", v);
    return -1;
  }();
  return mode;
}
}  // namespace

bool attention_wgmma_built() {
#ifdef LORA4J_HAVE_SM90A
  return true;
#else
  return false;
#endif
}

bool attention_wgmma_accepts(const AttentionParams& p) {
#ifdef LORA4J_HAVE_SM90A
  return attention_sm90_accepts(p);
#else
  (void)p;
  return false;
#endif
}

cudaError_t attention_forward_wgmma(const AttentionParams& p, cudaStream_t s) {
  if (p.B <= 0 || p.Sq <= 0) return cudaSuccess;
#ifdef LORA4J_HAVE_SM90A
  return attention_forward_sm90(p, s);
#else
  (void)s;
  return cudaErrorNotSupported;
#endif
}

AttentionKernel attention_forward_kernel(const AttentionParams& p) {
  const int mode = attention_env();
  if (mode == 1) return AttentionKernel::kMma;
  if (mode == 2) return AttentionKernel::kWgmma;
  return attention_wgmma_accepts(p) ? AttentionKernel::kWgmma : AttentionKernel::kMma;
}

cudaError_t attention_forward(const AttentionParams& p, cudaStream_t s) {
  if (attention_env() < 0) return cudaErrorInvalidValue;
  if (attention_forward_kernel(p) == AttentionKernel::kWgmma) return attention_forward_wgmma(p, s);
  return attention_forward_mma(p, s);
}

cudaError_t attention_forward_mma(const AttentionParams& p, cudaStream_t s) {
  if (p.B <= 0 || p.Sq <= 0) return cudaSuccess;
  switch (p.D) {
    case 16:
      return launch_fwd<16>(p, s);
    case 32:
      return launch_fwd<32>(p, s);
    case 64:
      return launch_fwd<64>(p, s);
    case 128:
      return launch_fwd<128>(p, s);
    default:
      return cudaErrorInvalidValue;
  }
}

bool attention_wgmma_accepts_backward(const AttentionBackwardParams& bp) {
#ifdef LORA4J_HAVE_SM90A
  return attention_sm90_backward_accepts(bp);
#else
  (void)bp;
  return false;
#endif
}

AttentionKernel attention_backward_kernel(const AttentionBackwardParams& bp) {
  const int mode = attention_env();
  if (mode == 1) return AttentionKernel::kMma;
  if (mode == 2) return AttentionKernel::kWgmma;
  return attention_wgmma_accepts_backward(bp) ? AttentionKernel::kWgmma : AttentionKernel::kMma;
}

cudaError_t attention_backward(const AttentionBackwardParams& bp, cudaStream_t s) {
  if (attention_env() < 0) return cudaErrorInvalidValue;
  if (attention_backward_kernel(bp) == AttentionKernel::kWgmma)
    return attention_backward_wgmma(bp, s);
  return attention_backward_mma(bp, s);
}

// dk's and dv's token stride: 0 (KH D), or an even stride of at least KH D (the kernels store
// pairs of bf16)
static bool dkv_ld_ok(const AttentionBackwardParams& bp) {
  return bp.dkv_ld == 0 || (bp.dkv_ld % 2 == 0 && bp.dkv_ld >= int64_t(bp.f.KH) * bp.f.D);
}

cudaError_t attention_backward_wgmma(const AttentionBackwardParams& bp, cudaStream_t s) {
  const AttentionParams& p = bp.f;
  if (p.B <= 0 || p.Sq <= 0) return cudaSuccess;
  if (p.q_offset != 0 || p.Sq != p.Sk || !dkv_ld_ok(bp)) return cudaErrorInvalidValue;
#ifdef LORA4J_HAVE_SM90A
  if (!attention_sm90_backward_accepts(bp)) return cudaErrorNotSupported;
  cudaError_t e = bwd_prepare(bp, s);
  if (e != cudaSuccess) return e;
  e = attention_backward_sm90(bp, s);
  if (e != cudaSuccess) return e;
  return bwd_finish(bp, s);
#else
  (void)s;
  return cudaErrorNotSupported;
#endif
}

cudaError_t attention_backward_mma(const AttentionBackwardParams& bp, cudaStream_t s) {
  const AttentionParams& p = bp.f;
  if (p.B <= 0 || p.Sq <= 0) return cudaSuccess;
  if (p.q_offset != 0 || p.Sq != p.Sk || !dkv_ld_ok(bp)) return cudaErrorInvalidValue;
  if (!attention_supports(p.D)) return cudaErrorInvalidValue;
  cudaError_t e = bwd_prepare(bp, s);
  if (e != cudaSuccess) return e;
  switch (p.D) {
    case 16:
      e = launch_bwd<16>(bp, s);
      break;
    case 32:
      e = launch_bwd<32>(bp, s);
      break;
    case 64:
      e = launch_bwd<64>(bp, s);
      break;
    default:
      e = launch_bwd<128>(bp, s);
      break;
  }
  if (e != cudaSuccess) return e;
  return bwd_finish(bp, s);
}

}  // namespace cuda
}  // namespace lora4j
