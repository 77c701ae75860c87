// Where the Hopper attention forward's time goes, block by block: this program builds
// attention_sm90.cu with its probes (LORA4J_ATTN_FWD_PROBE: the global timer at a block's entry,
// when its Q tile has arrived, after its first tile, after its last P V and at its end, per
// consumer warpgroup, with its SM and tile count), runs the forward at one shape with the output
// staged through shared memory and written from registers, and prints for each:
//  - the kernel's time (events, the mean of 20 runs of this build: its probes are a few stores
//    a block, and the span of one run below is within ~2% of it) and the probed run's span;
//  - the mean block's phases: entry -> Q arrived, Q -> first tile done, the tiles after it (per
//    tile), last P V -> end (the output), and the other warpgroup's lag;
//  - a least-squares fit of a block's duration to c + t x tiles (the fixed cost c);
//  - per SM: the time between one block's end and the next one's entry (the launch of a block)
//    and the tail: the kernel's end against each SM's last block end.
// Not part of the build (it needs sm_90a and a GPU): on the GPU machine,
//   nvcc -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --expt-relaxed-constexpr \
//     -Inative/src -Inative/include native/bench/attn_fwd_probe.cu -o attn_fwd_probe
//   ./attn_fwd_probe B S [1]   (H 32, KH 8, D 128: Mistral-7B's heads; 1: with the fp32 copy)
#define LORA4J_ATTN_FWD_PROBE 1
#define LORA4J_SM90A_DEVICE 1
#include "cuda/kernels/attention_sm90.cu"

#include "attn_probe.h"

#include <algorithm>
#include <map>

using namespace lora4j::cuda;

namespace {

struct Block {
  double entry, q[2], first[2], loop[2], end[2], last_load;
  int sm, tiles;
};

void report(const char* mode, const std::vector<Block>& blocks, double kernel_ms) {
  const size_t n = blocks.size();
  double t0 = 1e300, t1 = 0;
  for (const Block& b : blocks) {
    t0 = std::min(t0, b.entry);
    t1 = std::max(t1, std::max(b.end[0], b.end[1]));
  }
  double q = 0, first = 0, per_tile = 0, out0 = 0, out1 = 0, lag = 0, dur = 0;
  int multi = 0;
  // least squares of duration on tiles
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const Block& b : blocks) {
    const double e = std::max(b.end[0], b.end[1]), d = e - b.entry;
    q += b.q[0] - b.entry;
    first += b.first[0] - b.q[0];
    if (b.tiles > 1) {
      per_tile += (b.loop[0] - b.first[0]) / (b.tiles - 1);
      ++multi;
    }
    out0 += b.end[0] - b.loop[0];
    out1 += b.end[1] - b.loop[1];
    lag += b.loop[1] - b.loop[0];
    dur += d;
    sx += b.tiles;
    sy += d;
    sxx += double(b.tiles) * b.tiles;
    sxy += double(b.tiles) * d;
  }
  const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx), icept = (sy - slope * sx) / n;
  // per SM: blocks in entry order, the gap from one's end to the next's entry, the last end
  std::map<int, std::vector<const Block*>> by_sm;
  for (const Block& b : blocks) by_sm[b.sm].push_back(&b);
  double gap = 0, tail = 0, busy = 0;
  int gaps = 0;
  for (auto& kv : by_sm) {
    auto& v = kv.second;
    std::sort(v.begin(), v.end(),
              [](const Block* a, const Block* b) { return a->entry < b->entry; });
    for (size_t i = 0; i < v.size(); ++i) {
      const double e = std::max(v[i]->end[0], v[i]->end[1]);
      busy += e - v[i]->entry;
      if (i + 1 < v.size()) {
        gap += v[i + 1]->entry - e;
        ++gaps;
      } else {
        tail += t1 - e;
      }
    }
  }
  const double us = 1e-3;
  std::printf("%s: kernel %.4f ms (events), probed span %.4f ms, %zu blocks on %zu SMs\n", mode,
              kernel_ms, (t1 - t0) * 1e-6, n, by_sm.size());
  std::printf(
      "  block mean %.2f us: entry->Q %.2f, Q->first tile done %.2f, per later tile %.2f,"
      " last P V->end %.2f (wg0) %.2f (wg1), wg1 loop lag %.2f\n",
      dur / n * us, q / n * us, first / n * us, multi ? per_tile / multi * us : 0.0, out0 / n * us,
      out1 / n * us, lag / n * us);
  std::printf(
      "  fit: block = %.2f us + %.3f us x tiles; SM busy %.1f%% of SMs x span; mean gap "
      "between blocks %.2f us; mean tail %.2f us\n",
      icept * us, slope * us, 100.0 * busy / (double(by_sm.size()) * (t1 - t0)),
      gaps ? gap / gaps * us : 0.0, tail / double(by_sm.size()) * us);
}

}  // namespace

int main(int argc, char** argv) {
  ProbeCall call(argc > 1 ? std::atoi(argv[1]) : 4, argc > 2 ? std::atoi(argv[2]) : 2048);
  const int B = call.B, S = call.S, H = ProbeCall::H;
  AttentionParams& p = call.p;
  // the engine's forward writes no fp32 copy (LORA4J_ATTN_O_BF16); a third argument 1 adds it
  if (argc > 3 && std::atoi(argv[3]) == 1) p.o_f32 = call.o32;
  if (!attention_sm90_accepts(p)) {
    std::fprintf(stderr, "the Hopper forward does not take this call on this device\n");
    return 1;
  }
  const size_t nblk = size_t((S + 127) / 128) * H * B;
  if (nblk > size_t(kProbeBlocks)) {
    std::fprintf(stderr, "%zu blocks: more than the probe's %d\n", nblk, kProbeBlocks);
    return 1;
  }
  cudaEvent_t e0, e1;
  PROBE_CHECK(cudaEventCreate(&e0));
  PROBE_CHECK(cudaEventCreate(&e1));
  for (int round = 0; round < 2; ++round)
    for (int direct = 0; direct < 2; ++direct) {
      p.direct_store = direct != 0;
      for (int i = 0; i < 3; ++i) PROBE_CHECK(attention_forward_sm90(p, 0));
      PROBE_CHECK(cudaEventRecord(e0));
      for (int i = 0; i < 20; ++i) PROBE_CHECK(attention_forward_sm90(p, 0));
      PROBE_CHECK(cudaEventRecord(e1));
      PROBE_CHECK(cudaEventSynchronize(e1));
      float ms = 0;
      PROBE_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      std::vector<unsigned long long> raw(nblk * kProbeSlots);
      PROBE_CHECK(cudaMemcpyToSymbol(g_fwd_probe, raw.data(), raw.size() * 8));
      PROBE_CHECK(attention_forward_sm90(p, 0));
      PROBE_CHECK(cudaDeviceSynchronize());
      PROBE_CHECK(cudaMemcpyFromSymbol(raw.data(), g_fwd_probe, raw.size() * 8));
      std::vector<Block> blocks(nblk);
      for (size_t i = 0; i < nblk; ++i) {
        const unsigned long long* r = &raw[i * kProbeSlots];
        Block& b = blocks[i];
        b.entry = double(r[kProbeEntry]);
        b.sm = int(r[kProbeSm]);
        b.tiles = int(r[kProbeTiles]);
        b.last_load = double(r[kProbeLastLoad]);
        for (int w = 0; w < 2; ++w) {
          b.q[w] = double(r[kProbeQ + w]);
          b.first[w] = double(r[kProbeFirst + w]);
          b.loop[w] = double(r[kProbeLoop + w]);
          b.end[w] = double(r[kProbeEnd + w]);
        }
      }
      char mode[128];
      std::snprintf(mode, sizeof mode, "B=%d S=%d%s round %d, output %s", B, S,
                    p.o_f32 ? " (+fp32 copy)" : "", round + 1,
                    direct ? "from registers" : "staged (bulk tensor stores)");
      report(mode, blocks, ms / 20);
    }
  return 0;
}
