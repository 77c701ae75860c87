/*
 * Attention of one query row against the KV cache (a decode step), split over the keys as
 * flash-decoding does: the prefill's kernels tile 64 or 128 query rows, so at one row a block per
 * head walks every key tile alone (11.8 us a layer at ~270 keys, Mistral-7B on an H200). Here each
 * block takes one kv head's query heads (GQA: H / KH of them) over a share of the keys, each warp
 * runs of 4 keys (loaded together) in turn: the scores (fp16 q and k, fp32 products and sums), an
 * online softmax in base 2 and the probabilities times v (bf16) in fp32; the block's warps are
 * merged through shared memory and, with more than one share, a second kernel merges the shares'
 * partial sums.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kWarps = 4;
constexpr int kMaxGroup = 8;  // query heads per kv head
constexpr int kBatch = 4;     // keys a warp loads at once

template <int D>
__global__ void __launch_bounds__(kWarps * 32)
    attn_decode_kernel(DecodeAttentionParams p, int first, int per_split) {
  constexpr int E = D / 32;  // dims a lane holds
  const int kh = blockIdx.x, split = blockIdx.y, G = p.H / p.KH;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int j0 = first + split * per_split, j1 = min(p.Sk, j0 + per_split);
  const float sl2 = p.scale * kLog2e;
  float q[kMaxGroup][E], m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][E];
  pdl_wait();  // q and the cache's newest row are the previous kernel's output
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      acc[g][e] = 0.f;
      q[g][e] = g < G ? __half2float(p.q[int64_t(kh * G + g) * D + lane * E + e]) * sl2 : 0.f;
    }
  }
  // each warp takes runs of kBatch keys (j0 + kBatch warp, then kWarps kBatch further on), their
  // k and v loaded together before any is used: one memory latency a run, not one a key
  for (int base = j0 + warp * kBatch; base < j1; base += kWarps * kBatch) {
    float kv[kBatch][E], vv[kBatch][E];
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      const int j = min(base + i, j1 - 1);  // past the share: a repeat, not used below
      const f16* kr = p.k + int64_t(j) * p.kv_stride + int64_t(kh) * D + lane * E;
      const bf16* vr = p.v + int64_t(j) * p.kv_stride + int64_t(kh) * D + lane * E;
#pragma unroll
      for (int e = 0; e < E; ++e) {
        kv[i][e] = __half2float(kr[e]);
        vv[i][e] = __bfloat162float(vr[e]);
      }
    }
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      if (base + i >= j1) break;
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g >= G) break;
        float s = 0.f;
#pragma unroll
        for (int e = 0; e < E; ++e) s = fmaf(q[g][e], kv[i][e], s);
        s = warp_sum(s);  // the score times scale, in base 2
        const float mn = fmaxf(m[g], s), corr = exp2f(m[g] - mn), pe = exp2f(s - mn);
        l[g] = l[g] * corr + pe;
#pragma unroll
        for (int e = 0; e < E; ++e) acc[g][e] = fmaf(pe, vv[i][e], acc[g][e] * corr);
        m[g] = mn;
      }
    }
  }
  // the block's warps merged: thread t takes dim t (t < D) of each query head
  __shared__ float s_acc[kWarps][kMaxGroup][D];
  __shared__ float s_ml[kWarps][kMaxGroup][2];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g >= G) break;
#pragma unroll
    for (int e = 0; e < E; ++e) s_acc[warp][g][lane * E + e] = acc[g][e];
    if (lane == 0) s_ml[warp][g][0] = m[g], s_ml[warp][g][1] = l[g];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < G * D; i += kWarps * 32) {
    const int g = i / D, t = i % D, h = kh * G + g;
    float M = -INFINITY;
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, s_ml[w][g][0]);
    float L = 0.f, O = 0.f;
    if (M != -INFINITY)
      for (int w = 0; w < kWarps; ++w) {
        const float c = exp2f(s_ml[w][g][0] - M);
        L = fmaf(s_ml[w][g][1], c, L);
        O = fmaf(s_acc[w][g][t], c, O);
      }
    if (gridDim.y == 1) {
      p.o[int64_t(h) * D + t] = __float2bfloat16_rn(O / L);
    } else {
      float* part = p.part + (int64_t(split) * p.H + h) * (D + 2);
      part[t] = O;
      if (t == 0) part[D] = M, part[D + 1] = L;
    }
  }
}

// o[h, t] from the shares' partial sums: grid H, D threads
template <int D>
__global__ void attn_decode_merge_kernel(DecodeAttentionParams p, int splits) {
  const int h = blockIdx.x, t = threadIdx.x;
  pdl_wait();
  // unrolled: the shares' loads are independent, eight in flight instead of one latency a share
  float M = -INFINITY;
#pragma unroll 8
  for (int s = 0; s < splits; ++s) M = fmaxf(M, p.part[(int64_t(s) * p.H + h) * (D + 2) + D]);
  float L = 0.f, O = 0.f;
#pragma unroll 8
  for (int s = 0; s < splits; ++s) {
    const float* part = p.part + (int64_t(s) * p.H + h) * (D + 2);
    const float c = part[D] == -INFINITY ? 0.f : exp2f(part[D] - M);
    L = fmaf(part[D + 1], c, L);
    O = fmaf(part[t], c, O);
  }
  p.o[int64_t(h) * D + t] = __float2bfloat16_rn(O / L);
}

template <int D>
cudaError_t launch(const DecodeAttentionParams& p, cudaStream_t s) {
  const int first = p.window > 0 ? max(0, p.Sk - p.window) : 0;  // key j seen iff Sk - 1 - W < j
  const int keys = p.Sk - first;
  int splits = (keys + kDecodeAttentionKeysPerSplit - 1) / kDecodeAttentionKeysPerSplit;
  if (!p.part) splits = 1;
  splits = max(1, min(splits, kDecodeAttentionMaxSplits));
  const int per = (keys + splits - 1) / splits;
  splits = (keys + per - 1) / per;  // no empty share
  cudaError_t e = launch_kernel(attn_decode_kernel<D>, dim3(unsigned(p.KH), unsigned(splits)),
                                dim3(kWarps * 32), 0, s, p.pdl, p, first, per);
  if (e == cudaSuccess && splits > 1)
    e = launch_kernel(attn_decode_merge_kernel<D>, dim3(unsigned(p.H)), dim3(D), 0, s, p.pdl, p,
                      splits);
  return e;
}

}  // namespace

bool attention_decode_accepts(const DecodeAttentionParams& p) {
  return p.q && p.k && p.v && p.o && (p.D == 64 || p.D == 128) && p.KH > 0 && p.H % p.KH == 0 &&
         p.H / p.KH <= kMaxGroup && p.Sk > 0 && p.kv_stride >= int64_t(p.KH) * p.D && p.window >= 0;
}

cudaError_t attention_decode(const DecodeAttentionParams& p, cudaStream_t s) {
  if (!attention_decode_accepts(p)) return cudaErrorInvalidValue;
  return p.D == 128 ? launch<128>(p, s) : launch<64>(p, s);
}

}  // namespace cuda
}  // namespace lora4j
