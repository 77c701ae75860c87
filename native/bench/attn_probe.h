// What the two attention probe programs (attn_fwd_probe.cu, attn_bwd_probe.cu) share: a check
// that exits with the failing call, and the tensors of one attention call at Mistral-7B's heads
// (32 query heads, 8 KV heads, head_dim 128), random q, k, v and dO, with the forward's and the
// backward's parameters filled in. Included after attention_sm90.cu.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#define PROBE_CHECK(x)                                                                        \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

struct ProbeCall {
  static constexpr int H = 32, KH = 8, D = 128;
  int B, S;
  lora4j::cuda::AttentionParams p;
  lora4j::cuda::AttentionBackwardParams bp;
  float* o32 = nullptr;  // the forward's optional fp32 copy (p.o_f32 left null)

  ProbeCall(int B_, int S_) : B(B_), S(S_) {
    const size_t nq = size_t(B) * S * H * D, nk = size_t(B) * S * KH * D, rows = size_t(B) * H * S;
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<__half> hq(nq), hk(nk);
    std::vector<__nv_bfloat16> hv(nk), hdo(nq);
    for (auto& x : hq) x = __float2half(nd(rng));
    for (auto& x : hk) x = __float2half(nd(rng));
    for (auto& x : hv) x = __float2bfloat16(nd(rng));
    for (auto& x : hdo) x = __float2bfloat16(nd(rng));
    __half *q, *k;
    __nv_bfloat16 *v, *o, *dout, *dk, *dv;
    float *lse, *delta, *dq_accum;
    PROBE_CHECK(cudaMalloc(&q, nq * 2));
    PROBE_CHECK(cudaMalloc(&k, nk * 2));
    PROBE_CHECK(cudaMalloc(&v, nk * 2));
    PROBE_CHECK(cudaMalloc(&o, nq * 2));
    PROBE_CHECK(cudaMalloc(&o32, nq * 4));
    PROBE_CHECK(cudaMalloc(&dout, nq * 2));
    PROBE_CHECK(cudaMalloc(&dk, nk * 2));
    PROBE_CHECK(cudaMalloc(&dv, nk * 2));
    PROBE_CHECK(cudaMalloc(&lse, rows * 4));
    PROBE_CHECK(cudaMalloc(&delta, rows * 4));
    PROBE_CHECK(cudaMalloc(&dq_accum, nq * 4));
    PROBE_CHECK(cudaMemcpy(q, hq.data(), nq * 2, cudaMemcpyHostToDevice));
    PROBE_CHECK(cudaMemcpy(k, hk.data(), nk * 2, cudaMemcpyHostToDevice));
    PROBE_CHECK(cudaMemcpy(v, hv.data(), nk * 2, cudaMemcpyHostToDevice));
    PROBE_CHECK(cudaMemcpy(dout, hdo.data(), nq * 2, cudaMemcpyHostToDevice));
    PROBE_CHECK(cudaMemset(delta, 0, rows * 4));
    PROBE_CHECK(cudaMemset(dq_accum, 0, nq * 4));
    p = lora4j::cuda::dense_attention_params(q, k, v, o, lse, B, S, H, KH, D);
    p.scale = 1.f / std::sqrt(float(D));
    bp.f = p;
    bp.dout = dout;
    bp.dk = dk;
    bp.dv = dv;
    bp.dq_accum = dq_accum;
    bp.delta = delta;
  }
};
