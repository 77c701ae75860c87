/*
 * The gate and up projections' forward with the SwiGLU forward as their epilogue, for Hopper
 * (sm_90a): one kernel computes gate = x W_gate^T and up = x W_up^T for the same 128 x 96 block
 * of [n, I] (fp32 accumulation, rounded to bf16 as the GEMM's output is) and writes gate, up and
 * h = swiglu_fwd_one(gate, up) (common.cuh: the same arithmetic as swiglu.cu's kernels). The
 * unfused path writes gate and up from two GEMMs and the SwiGLU forward reads both back (n x I x
 * 4 bytes: 470 MB at 4 x 2048 for Mistral-7B) to write h.
 *
 * x is [n, K] (row stride ldx), W_gate and W_up are [I, K] (row strides ldwg, ldwu): with the LoRA
 * fold K counts x's spare columns of x A^T and W's of B beside them (cuda_engine.cpp), so the
 * products carry the LoRA term as the frozen GEMM's do.
 *
 * Persistent blocks of 4 warpgroups walk the 128-row, 96-column tiles (tile t, t + gridDim.x,
 * ...; rastered in groups of kGroupM row tiles so that a group's x rows and a wave's weight rows
 * stay in L2). Warpgroup 0: one thread of warp 0 issues the bulk tensor copies; warps 1-3 and
 * warpgroup 3 are the epilogue (seven warps). Warpgroups 1 and 2 (the consumers) each own 64 rows
 * of a tile and issue m64n192k16 wgmma on B = [W_gate's 96 rows; W_up's 96 rows] (K-major), so
 * that one thread's accumulators hold the gate and up values of the same elements. K blocks of 64
 * pass through a ring of 4 stages (x's [128][64] tile and the two [96][64] weight tiles, 128-byte
 * swizzle). At a tile's end the consumers round the products to bf16 into a shared-memory buffer
 * (128 rows of [gate 96 | up 96]) and go on with the next tile while the epilogue warps write
 * gate, up and h from it.
 */
#include <cstdint>
#include <cstring>
#include <cuda.h>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/sm90.cuh"

namespace lora4j {
namespace cuda {

namespace {

using namespace sm90;

constexpr int kBM = 128, kBN = 96, kBK = 64, kStages = 4, kGroupM = 16;
constexpr int kThreads = 512, kEpiWarps = 7;
constexpr int kABytes = kBM * kBK * 2;  // x's [128 rows][64]
constexpr int kWBytes = kBN * kBK * 2;  // one weight's [96 rows][64]
constexpr int kStageBytes = kABytes + 2 * kWBytes;
constexpr int kPitch = 2 * kBN * 2 + 16;  // a buffer row: [gate 96 | up 96] bf16, padded
constexpr int kBufOff = kStages * kStageBytes;
constexpr int kBarOff = kBufOff + kBM * kPitch;  // full[S], free[S], buf_full, buf_empty
constexpr int kSmem = kBarOff + 8 * (2 * kStages + 2) + 1024;  // + alignment of the base
static_assert(kSmem <= 232448, "past the 227 KB of shared memory a block may have");

struct SwigluGuPrm {
  CUtensorMap tx, tg, tu;
  SwigluGuParams p;
  int mt, nt, kb, tiles;  // row tiles, column tiles, K blocks, mt * nt
};

__global__ void __launch_bounds__(kThreads, 1)
    swiglu_gu_sm90_kernel(const __grid_constant__ SwigluGuPrm prm) {
#ifdef LORA4J_SM90A_DEVICE
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
  const uint32_t bar0 = base + kBarOff;
  auto bar_full = [&](int s) { return bar0 + 8u * s; };
  auto bar_free = [&](int s) { return bar0 + 8u * (kStages + s); };
  auto stage_a = [&](int s) { return base + uint32_t(s) * kStageBytes; };
  auto stage_b = [&](int s) { return base + uint32_t(s) * kStageBytes + kABytes; };
  const uint32_t buf = base + kBufOff;
  const uint32_t bar_buf_full = bar0 + 8u * (2 * kStages), bar_buf_empty = bar_buf_full + 8u;

  const SwigluGuParams& p = prm.p;
  auto tile_at = [&](int t, int& m0, int& n0) {
    grouped_tile<kGroupM, kBM, kBN>(t, prm.mt, prm.nt, m0, n0);
  };
  const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(bar_full(s), 1);
      mbar_init(bar_free(s), 8);  // one arrival per consumer warp
    }
    mbar_init(bar_buf_full, 8);           // the consumer warps, once their rows are in the buffer
    mbar_init(bar_buf_empty, kEpiWarps);  // the epilogue warps, once they have read it
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 0 || wg == 3) {
    if (wg == 0 && tid == 0) {
      // ---- producer ----
      int it = 0;
      for (int t = int(blockIdx.x); t < prm.tiles; t += int(gridDim.x)) {
        int m0, n0;
        tile_at(t, m0, n0);
        for (int b = 0; b < prm.kb; ++b, ++it) {
          const int s = it % kStages;
          mbar_wait(bar_free(s), ((it / kStages) & 1) ^ 1);  // first pass: passes at once
          mbar_expect_tx(bar_full(s), kStageBytes);
          tma_load_2d(stage_a(s), &prm.tx, bar_full(s), b * kBK, m0);
          tma_load_2d(stage_b(s), &prm.tg, bar_full(s), b * kBK, n0);
          tma_load_2d(stage_b(s) + kWBytes, &prm.tu, bar_full(s), b * kBK, n0);
        }
      }
    } else if (wg == 3 || tid >= 32) {
      // ---- epilogue (warps 1-3, and warpgroup 3's four): chunks of 8 columns ----
      const int e = wg == 3 ? 96 + tid : tid - 32;  // 0 .. 32 kEpiWarps - 1
      int j = 0;
      for (int t = int(blockIdx.x); t < prm.tiles; t += int(gridDim.x), ++j) {
        int m0, n0;
        tile_at(t, m0, n0);
        mbar_wait(bar_buf_full, j & 1);
        constexpr int kRowChunks = kBN / 8, kChunks = kBM * kRowChunks;
        for (int c = e; c < kChunks; c += 32 * kEpiWarps) {
          const int r = c / kRowChunks, cc = c % kRowChunks;
          const int64_t row = int64_t(m0) + r, col = n0 + 8 * cc;
          if (row >= p.n || col >= p.I) continue;
          const uint32_t src = buf + uint32_t(r) * kPitch + uint32_t(cc) * 16;
          Bf16x8 gv, uv, hv;
          gv.raw = lds128(src);
          uv.raw = lds128(src + kBN * 2);
#pragma unroll
          for (int i = 0; i < 8; ++i) hv.v[i] = swiglu_fwd_one(gv.v[i], uv.v[i]);
          const int64_t off = row * p.I + col;
          store_bf16x8(p.gate + off, gv);
          store_bf16x8(p.up + off, uv);
          store_bf16x8(p.h + off, hv);
        }
        __syncwarp();
        if ((tid & 31) == 0) mbar_arrive(bar_buf_empty);
      }
    }
    return;
  }

  // ---- consumers: warpgroup cw owns rows 64 cw .. + 63 of each tile ----
  const int cw = wg - 1, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const uint32_t arow = uint32_t(cw) * 64 * (2 * kBK);  // the warpgroup's rows in an A tile
  auto release = [&](int s) {
    __syncwarp();
    if (lane == 0) mbar_arrive(bar_free(s));
  };
  // A and B both K-major: k16 step kk 32 bytes into the 128-byte rows, 8-row groups 1024 apart
  float acc[2 * kBN / 2];
  auto issue_k = [&](int s, int kk) {
    wgmma_bf16<2 * kBN, 0>(acc, sw128_desc(stage_a(s) + arow + kk * 32, 16, 1024),
                           sw128_desc(stage_b(s) + kk * 32, 16, 1024));
  };
  int it = 0, j = 0;
  for (int t = int(blockIdx.x); t < prm.tiles; t += int(gridDim.x), ++j) {
#pragma unroll
    for (int i = 0; i < kBN; ++i) acc[i] = 0.f;
    fence_regs(acc);
    const int first = it, end = it + prm.kb;
    ring_mma<kStages, kBK / 16>(it, first, end, bar_full, issue_k, release);
    fence_regs(acc);
    release((end - 1) % kStages);
    // the tile into the buffer in bf16 once the epilogue has read the previous one:
    // acc[4 jj + 2 rr + e] is row g + 8 rr, column 8 jj + 2 t4 + e of the warp's 16 x 192
    // (columns 0-95 gate, 96-191 up: the buffer row's layout)
    mbar_wait(bar_buf_empty, (j & 1) ^ 1);  // first tile: passes at once
    const uint32_t rrow = buf + uint32_t(cw * 64 + warp * 16 + g) * kPitch;
#pragma unroll
    for (int jj = 0; jj < 2 * kBN / 8; ++jj)
#pragma unroll
      for (int rr = 0; rr < 2; ++rr)
        sts32(rrow + uint32_t(8 * rr) * kPitch + 16u * jj + 4u * t4,
              pack_bf16(acc[4 * jj + 2 * rr], acc[4 * jj + 2 * rr + 1]));
    __syncwarp();
    if (lane == 0) mbar_arrive(bar_buf_full);
  }
#endif  // LORA4J_SM90A_DEVICE
}

}  // namespace

bool swiglu_gu_sm90_accepts(const SwigluGuParams& p) {
  const int64_t mt = (p.n + kBM - 1) / kBM, nt = (p.I + kBN - 1) / kBN;
  return p.n > 0 && p.K > 0 && p.I > 0 && p.K % 8 == 0 && p.I % 8 == 0 && p.ldx >= p.K &&
         p.ldx % 8 == 0 && p.ldwg >= p.K && p.ldwg % 8 == 0 && p.ldwu >= p.K && p.ldwu % 8 == 0 &&
         p.n <= INT32_MAX && mt * nt <= INT32_MAX && p.x && p.wg && p.wu && p.gate && p.up && p.h &&
         ptr_aligned16(p.x) && ptr_aligned16(p.wg) && ptr_aligned16(p.wu) &&
         ptr_aligned16(p.gate) && ptr_aligned16(p.up) && ptr_aligned16(p.h) &&
         attention_sm90_device();
}

cudaError_t swiglu_gu_sm90(const SwigluGuParams& p, cudaStream_t s) {
  if (!swiglu_gu_sm90_accepts(p)) return cudaErrorNotSupported;
  SwigluGuPrm prm;
  std::memset(&prm, 0, sizeof prm);
  prm.p = p;
  prm.mt = int((p.n + kBM - 1) / kBM);
  prm.nt = int((p.I + kBN - 1) / kBN);
  prm.kb = int((p.K + kBK - 1) / kBK);
  prm.tiles = prm.mt * prm.nt;
  if (!tmap_2d_sw128(&prm.tx, p.x, p.K, p.n, p.ldx, kBM) ||
      !tmap_2d_sw128(&prm.tg, p.wg, p.K, p.I, p.ldwg, kBN) ||
      !tmap_2d_sw128(&prm.tu, p.wu, p.K, p.I, p.ldwu, kBN))
    return cudaErrorInvalidValue;
  return launch_persistent(swiglu_gu_sm90_kernel, prm.tiles, kThreads, kSmem, prm, s);
}

}  // namespace cuda
}  // namespace lora4j
