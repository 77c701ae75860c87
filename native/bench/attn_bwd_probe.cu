// Where the Hopper attention backward's time goes, iteration by iteration: this program builds
// attention_sm90.cu with its backward probes (LORA4J_ATTN_BWD_PROBE: for every 8th block, up to
// 64 blocks, the global timer at six points of each iteration per consumer warpgroup), runs the
// forward once for lse and then the backward's main kernel at one shape, and prints:
//  - the kernel's time (events, the mean of 20 runs) and the probed run's;
//  - per consumer warpgroup, the mean iteration (64 queries of one head against the block's 128
//    keys) split into: waiting for its Q / dO tiles, S^T and dP^T (with the wait for lse /
//    delta), the element-wise dS^T and its store, the wait for the other warpgroup's dS^T and the
//    bf16 Q copy, dV / dK / dQ, and dQ's staging and reduce-add;
//  - a block's time before its first iteration and after its last.
// Its inputs are random, delta is zero and dq_accum is left as it is (the pre-pass that computes
// them is not part of the kernel timed): the time does not depend on the values.
// Not part of the build (it needs sm_90a and a GPU): on the GPU machine,
//   nvcc -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --expt-relaxed-constexpr \
//     -Inative/src -Inative/include native/bench/attn_bwd_probe.cu -o attn_bwd_probe
//   ./attn_bwd_probe B S   (H 32, KH 8, D 128: Mistral-7B's heads)
#define LORA4J_ATTN_BWD_PROBE 1
#define LORA4J_SM90A_DEVICE 1
#include "cuda/kernels/attention_sm90.cu"

#include "attn_probe.h"

#include <algorithm>

using namespace lora4j::cuda;

int main(int argc, char** argv) {
  ProbeCall call(argc > 1 ? std::atoi(argv[1]) : 4, argc > 2 ? std::atoi(argv[2]) : 2048);
  const int B = call.B, S = call.S, KH = ProbeCall::KH;
  AttentionParams& p = call.p;
  AttentionBackwardParams& bp = call.bp;
  if (!attention_sm90_accepts(p) || !attention_sm90_backward_accepts(bp)) {
    std::fprintf(stderr, "the Hopper kernels do not take this call on this device\n");
    return 1;
  }
  PROBE_CHECK(attention_forward_sm90(p, 0));
  cudaEvent_t e0, e1;
  PROBE_CHECK(cudaEventCreate(&e0));
  PROBE_CHECK(cudaEventCreate(&e1));
  for (int i = 0; i < 3; ++i) PROBE_CHECK(attention_backward_sm90(bp, 0));
  PROBE_CHECK(cudaEventRecord(e0));
  for (int i = 0; i < 20; ++i) PROBE_CHECK(attention_backward_sm90(bp, 0));
  PROBE_CHECK(cudaEventRecord(e1));
  PROBE_CHECK(cudaEventSynchronize(e1));
  float ms = 0;
  PROBE_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  const size_t np = size_t(kBwdProbeBlocks) * kBwdProbeIters * 2 * kBwdProbeN;
  std::vector<unsigned long long> raw(np), meta(size_t(kBwdProbeBlocks) * kBwdMetaN);
  PROBE_CHECK(cudaMemcpyToSymbol(g_bwd_probe, raw.data(), raw.size() * 8));
  PROBE_CHECK(cudaMemcpyToSymbol(g_bwd_meta, meta.data(), meta.size() * 8));
  PROBE_CHECK(cudaEventRecord(e0));
  PROBE_CHECK(attention_backward_sm90(bp, 0));
  PROBE_CHECK(cudaEventRecord(e1));
  PROBE_CHECK(cudaEventSynchronize(e1));
  float ms1 = 0;
  PROBE_CHECK(cudaEventElapsedTime(&ms1, e0, e1));
  PROBE_CHECK(cudaMemcpyFromSymbol(raw.data(), g_bwd_probe, raw.size() * 8));
  PROBE_CHECK(cudaMemcpyFromSymbol(meta.data(), g_bwd_meta, meta.size() * 8));

  const unsigned grid = unsigned((S + kBwdBN - 1) / kBwdBN) * KH * B;
  const int sampled =
      int(std::min<unsigned>(kBwdProbeBlocks, (grid + kBwdProbeStride - 1) / kBwdProbeStride));
  // phase sums per warpgroup: wait Q/dO, S^T + dP^T, dS^T, wait other / Qb, dV dK dQ, dQ out
  double ph[2][6] = {}, head = 0, tail = 0, blk = 0;
  long n_it = 0;
  int blocks = 0;
  for (int bi = 0; bi < sampled; ++bi) {
    const unsigned long long* m = &meta[size_t(bi) * kBwdMetaN];
    const int iters = std::min<int>(int(m[kBwdMetaIters]), kBwdProbeIters);
    if (iters <= 0 || m[kBwdMetaEntry] == 0) continue;
    ++blocks;
    const double entry = double(m[kBwdMetaEntry]);
    const double end = double(std::max(m[kBwdMetaEnd0], m[kBwdMetaEnd1]));
    blk += end - entry;
    for (int cw = 0; cw < 2; ++cw) {
      double prev_end = entry;
      for (int it = 0; it < iters; ++it) {
        const unsigned long long* r =
            &raw[((size_t(bi) * kBwdProbeIters + it) * 2 + cw) * kBwdProbeN];
        const double t[6] = {double(r[0]), double(r[1]), double(r[2]),
                             double(r[3]), double(r[4]), double(r[5])};
        if (it == 0) {
          if (cw == 0) head += t[0] - entry;
        } else {
          ph[cw][0] += t[0] - prev_end;
        }
        for (int k2 = 1; k2 < 6; ++k2) ph[cw][k2] += t[k2] - t[k2 - 1];
        prev_end = t[5];
        if (cw == 0) ++n_it;
      }
      if (cw == 0) tail += double(m[kBwdMetaEnd0]) - prev_end;
    }
  }
  if (blocks == 0 || n_it == 0) {
    std::fprintf(stderr, "no probe records\n");
    return 1;
  }
  const double us = 1e-3;
  std::printf(
      "B=%d S=%d backward: kernel %.4f ms (events, 20 runs), probed run %.4f ms, %u blocks, "
      "%d sampled, %ld iterations sampled\n",
      B, S, ms / 20, ms1, grid, blocks, n_it);
  const char* names[6] = {"wait Q/dO", "S^T+dP^T", "dS^T", "wait other+Qb", "dV dK dQ", "dQ out"};
  for (int cw = 0; cw < 2; ++cw) {
    double tot = 0;
    for (int k2 = 0; k2 < 6; ++k2) tot += ph[cw][k2];
    std::printf("  wg%d mean iteration %.3f us:", cw, tot / n_it * us);
    for (int k2 = 0; k2 < 6; ++k2) std::printf(" %s %.3f,", names[k2], ph[cw][k2] / n_it * us);
    std::printf("\n");
  }
  // 2 warpgroups x (S^T, dP^T, dV, dK, dQ): five 64 x 64 x 128 products each
  const double flop = 2.0 * 5 * 2 * 64 * 64 * 128;
  std::printf(
      "  block mean %.2f us, before the first iteration %.2f us, after the last %.2f us; "
      "an iteration's products %.2f MFLOP\n",
      blk / blocks * us, head / blocks * us, tail / blocks * us, flop * 1e-6);
  return 0;
}
