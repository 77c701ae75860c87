/*
 * The down projection's input gradient with the SwiGLU backward as its epilogue, for Hopper
 * (sm_90a): dh = dy W_down (+ s T A_down) is computed by warpgroup MMA and never written to
 * global memory; the epilogue reads the gate and up values of each element, applies
 * swiglu_bwd_one (common.cuh: the same arithmetic as swiglu.cu's kernels) and writes dgate and
 * dup. The unfused path writes dh in fp32 (n x I x 4 bytes: 470 MB at 4 x 2048 for Mistral-7B)
 * and the SwiGLU backward reads it back.
 *
 * Persistent blocks of 4 warpgroups walk the 128 x BN tiles of dh (tile t, t + gridDim.x, ...).
 * Warpgroup 0: one thread of warp 0 issues the bulk tensor copies; warps 1-3 and warpgroup 3 are
 * the epilogue (seven warps). Warpgroups 1 and 2 (the consumers) each own 64 rows of a tile. K
 * blocks of 64 pass through a ring of S stages that runs on across tiles: a stage is dy's [128
 * rows][64] tile (K-major) and W's [64][BN] tile as BN / 64 panels of [64][64] (MN-major), both
 * stored by the copy engine with the 128-byte swizzle the wgmma descriptors read. With LoRA, each
 * tile's first block is T's [128][64] (columns past r read as zeros) and A's [64][BN] (rows past r
 * zeros): its k16 steps (r / 16 of them) run alone, the accumulator is scaled by s, and dy W
 * accumulates onto it. Per K block a consumer warpgroup issues 4 wgmma m64nBNk16 and releases the
 * previous block's stage once those have completed (wait depth 1). At a tile's end the consumers
 * copy dh (fp32) into a shared-memory buffer and go on with their next tile while the epilogue
 * warps finish this one from the buffer, so the epilogue's loads, arithmetic and stores run beside
 * the next tile's products.
 *
 * Two forms (both keep dh in fp32, the contract's numerics), chosen per call
 * (SwigluDxParams::form) or by LORA4J_SWIGLU_DX_FORM for A/B runs: 1: 192 wide, 3 stages (the
 * default); 2: 128 wide, 4 stages.
 * Measured per-op at 4 x 2048 on an H200 (twenty-fifth session): form 1 1.740 ms a layer, form 2
 * 1.748, the unfused GEMM and SwiGLU backward 1.900. Forms tried and dropped (NOTES.md,
 * twenty-fourth and twenty-fifth sessions): three epilogue warps (the consumers waited 16-27% of
 * their time for the buffer to drain), dh rounded to bf16 on chip (1.448 ms, but the hd128
 * gradients leave the 3e-2 bound), ring blocks of K 32 with six stages (2.064 ms); clusters of 2
 * or 4 blocks sharing dy's or W's tiles by TMA multicast (2.996-3.829 ms) and ping-pong forms with
 * no buffer, each consumer warpgroup finishing its own tiles from registers (2.03 ms; both in the
 * twenty-sixth session).
 * Tiles are rastered in groups of kGroupM row tiles (the group's dy rows and its W columns stay
 * in L2 across a wave of tiles).
 */
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cuda.h>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/sm90.cuh"

namespace lora4j {
namespace cuda {

namespace {

using namespace sm90;

constexpr int kBM = 128;
constexpr int kGroupM = 16;  // row tiles per raster group

// A block: the producer warpgroup (one copying thread, three epilogue warps), two consumer
// warpgroups and a fourth warpgroup of epilogue warps (512 threads, 128 registers a thread at
// most). A ring block: K 64 (dy's tile rows 128 bytes, 128-byte swizzle); W's panels are 64
// columns (128 bytes) wide. The LoRA term takes the tile's first ring block (r <= 64; zeros past
// r).
template <int BN, int S>
struct Form {
  static constexpr int kBN = BN, kStages = S, kBK = 64;
  static constexpr int kThreads = 512, kEpiWarps = 7;
  static constexpr int kABytes = kBM * kBK * 2;  // dy's [128 rows][64]
  static constexpr int kBPanel = kBK * 64 * 2;   // W's [64 rows][64 columns]
  static constexpr int kStageBytes = kABytes + (BN / 64) * kBPanel;
  // a dh row in the buffer (fp32), padded so that the consumers' stores of one warp (8 bytes a
  // thread, two half-warps) spread over the banks
  static constexpr int kDhPitch = BN * 4 + 32;
  static constexpr int kDhOff = S * kStageBytes;
  static constexpr int kBarOff = kDhOff + kBM * kDhPitch;  // full[S], free[S], dh_full, dh_empty
  static constexpr int kSmem = kBarOff + 8 * (2 * S + 2) + 1024;  // + alignment of the base
  static_assert(kSmem <= 232448, "past the 227 KB of shared memory a block may have");
};

struct SwigluDxPrm {
  CUtensorMap tdy, tw, tt, ta;
  SwigluDxParams p;
  int mt, nt, kb;  // row tiles, column tiles, K blocks of dy W
  int tiles;       // mt * nt
};

// kLora: the call has s T A (r > 0). Instantiations per case, so that the control flow before the
// main loop is fixed at compile time: with a run-time branch there, ptxas serializes every wgmma
// of the kernel (C7515).
template <class F, bool kLora>
__global__ void __launch_bounds__(F::kThreads, 1)
    swiglu_dx_sm90_kernel(const __grid_constant__ SwigluDxPrm prm) {
#ifdef LORA4J_SM90A_DEVICE
  constexpr int kBN = F::kBN, kStages = F::kStages, kDhPitch = F::kDhPitch, kBK = F::kBK;
  constexpr int kStageBytes = F::kStageBytes, kABytes = F::kABytes, kBPanel = F::kBPanel;
  constexpr int kLoraBlocks = kLora ? 1 : 0;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
  const uint32_t bar0 = base + F::kBarOff;
  auto bar_full = [&](int s) { return bar0 + 8u * s; };
  auto bar_free = [&](int s) { return bar0 + 8u * (kStages + s); };
  auto stage_a = [&](int s) { return base + uint32_t(s) * kStageBytes; };
  auto stage_b = [&](int s) { return base + uint32_t(s) * kStageBytes + kABytes; };
  const uint32_t dh_buf = base + F::kDhOff;
  const uint32_t bar_dh_full = bar0 + 8u * (2 * kStages), bar_dh_empty = bar_dh_full + 8u;

  const SwigluDxParams& p = prm.p;
  auto tile_at = [&](int t, int& m0, int& n0) {
    grouped_tile<kGroupM, kBM, kBN>(t, prm.mt, prm.nt, m0, n0);
  };
  constexpr bool lora = kLora;
  const int per_tile = prm.kb + kLoraBlocks;  // ring blocks a tile: [LoRA,] dy W's K blocks
  const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(bar_full(s), 1);
      mbar_init(bar_free(s), 8);  // one arrival per consumer warp
    }
    mbar_init(bar_dh_full, 8);  // the consumer warps, once their rows of dh are in the buffer
    mbar_init(bar_dh_empty, F::kEpiWarps);  // the epilogue warps, once they have read it
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 0 || wg == 3) {
    if (wg == 0 && tid == 0) {
      // ---- producer: every block of every tile of this block, through the ring ----
      int it = 0;  // ring position over all of this block's tiles
      for (int t = int(blockIdx.x); t < prm.tiles; t += int(gridDim.x)) {
        int m0, n0;
        tile_at(t, m0, n0);
        for (int b = 0; b < per_tile; ++b, ++it) {
          const int s = it % kStages;
          mbar_wait(bar_free(s), ((it / kStages) & 1) ^ 1);  // first pass: passes at once
          if (b < kLoraBlocks) {  // T's columns and A's rows 0 .. 63 (zeros past r)
            mbar_expect_tx(bar_full(s), kStageBytes);
            tma_load_2d(stage_a(s), &prm.tt, bar_full(s), 0, m0);
            for (int c = 0; c < kBN / 64; ++c)
              tma_load_2d(stage_b(s) + c * kBPanel, &prm.ta, bar_full(s), n0 + 64 * c, 0);
          } else {
            mbar_expect_tx(bar_full(s), kStageBytes);
            const int k0 = (b - kLoraBlocks) * kBK;
            tma_load_2d(stage_a(s), &prm.tdy, bar_full(s), k0, m0);
            for (int c = 0; c < kBN / 64; ++c)
              tma_load_2d(stage_b(s) + c * kBPanel, &prm.tw, bar_full(s), n0 + 64 * c, k0);
          }
        }
      }
    } else if (wg == 3 || tid >= 32) {
      // ---- epilogue (warps 1-3, and warpgroup 3's four): 16-byte chunks of 8 columns ----
      const int e = wg == 3 ? 96 + tid : tid - 32;  // 0 .. 32 kEpiWarps - 1
      int j = 0;
      for (int t = int(blockIdx.x); t < prm.tiles; t += int(gridDim.x), ++j) {
        int m0, n0;
        tile_at(t, m0, n0);
        mbar_wait(bar_dh_full, j & 1);
        constexpr int kRowChunks = kBN / 8, kChunks = kBM * kRowChunks, kStep = 32 * F::kEpiWarps,
                      kBatch = 4;
        for (int c0 = e; c0 < kChunks; c0 += kStep * kBatch) {
          Bf16x8 gv[kBatch], uv[kBatch];
          float dv[kBatch][8];
          bool ok[kBatch];
          int64_t off[kBatch];
#pragma unroll
          for (int k = 0; k < kBatch; ++k) {
            const int c = c0 + k * kStep, r = c / kRowChunks, cc = c % kRowChunks;
            const int64_t row = int64_t(m0) + r, col = n0 + 8 * cc;
            ok[k] = c < kChunks && row < p.n && col < p.I;
            off[k] = row * p.I + col;
            if (ok[k]) {
              gv[k] = load_bf16x8(p.gate + off[k]);
              uv[k] = load_bf16x8(p.up + off[k]);
              const uint32_t src = dh_buf + uint32_t(r) * kDhPitch;
              const uint4 lo = lds128(src + uint32_t(cc) * 32),
                          hi = lds128(src + uint32_t(cc) * 32 + 16);
              const uint32_t w[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
              for (int i = 0; i < 8; ++i) dv[k][i] = __uint_as_float(w[i]);
            }
          }
#pragma unroll
          for (int k = 0; k < kBatch; ++k) {
            if (!ok[k]) continue;
            Bf16x8 dg, du;
#pragma unroll
            for (int i = 0; i < 8; ++i)
              swiglu_bwd_one(dv[k][i], gv[k].v[i], uv[k].v[i], dg.v[i], du.v[i]);
            store_bf16x8(p.dgate + off[k], dg);
            store_bf16x8(p.dup + off[k], du);
          }
        }
        __syncwarp();
        if ((tid & 31) == 0) mbar_arrive(bar_dh_empty);
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
  // A: K-major, k16 step kk 32 bytes into the 2 BK-byte rows (8-row groups 16 BK bytes apart);
  // B: MN-major, k16 step kk 16 rows (2048 bytes) down each panel, the next 64 columns one panel
  // on (lbo)
  float acc[kBN / 2];
  auto issue_k = [&](int s, int kk) {
    const uint32_t a = stage_a(s) + arow + kk * 32;
    wgmma_bf16<kBN, 1>(acc, sw128_desc(a, 16, 1024),
                       sw128_desc(stage_b(s) + kk * 2048, kBPanel, 1024));
  };

  int it = 0, j = 0;  // ring position, this block's tile count
  for (int t = int(blockIdx.x); t < prm.tiles; t += int(gridDim.x), ++j) {
#pragma unroll
    for (int i = 0; i < kBN / 2; ++i) acc[i] = 0.f;
    fence_regs(acc);  // the zeros are written before the first wgmma (which accumulates)
    const int first = it + kLoraBlocks;
    if (lora) {
      // s T A first, alone: the scale applies to it only
      const int ksteps = (p.r + 15) / 16;  // k16 steps of the rank (r <= 64: one ring block)
      const int s = it % kStages;
      mbar_wait(bar_full(s), (it / kStages) & 1);
      wgmma_fence();
      // each step issued alone (a conditional issue between others makes ptxas insert waits;
      // here the block is waited for at once anyway)
#pragma unroll
      for (int kk = 0; kk < kBK / 16; ++kk) {
        if (kk < ksteps) {
          issue_k(s, kk);
          wgmma_commit();
          wgmma_wait0();
          fence_regs(acc);
        }
      }
      release(s);
      ++it;
#pragma unroll
      for (int i = 0; i < kBN / 2; ++i) acc[i] *= p.s;
    }
    const int end = first + prm.kb;
    ring_mma<kStages, kBK / 16>(it, first, end, bar_full, issue_k, release);
    fence_regs(acc);
    release((end - 1) % kStages);
    // dh of this tile into the buffer once the epilogue has read the previous one:
    // acc[4 j + 2 rr + e] is row g + 8 rr, column 8 j + 2 t4 + e of the warp's 16 x BN
    mbar_wait(bar_dh_empty, (j & 1) ^ 1);  // first tile: passes at once
    const uint32_t rrow = dh_buf + uint32_t(cw * 64 + warp * 16 + g) * kDhPitch;
#pragma unroll
    for (int jj = 0; jj < kBN / 8; ++jj)
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        const float x = acc[4 * jj + 2 * rr], y = acc[4 * jj + 2 * rr + 1];
        sts64(rrow + uint32_t(8 * rr) * kDhPitch + 32u * jj + 8u * t4, x, y);
      }
    __syncwarp();
    if (lane == 0) mbar_arrive(bar_dh_full);
  }
#endif  // LORA4J_SM90A_DEVICE
}

// The form a call with form 0 takes: LORA4J_SWIGLU_DX_FORM (1 .. kSwigluDxForms), else 1.
int default_form() {
  static const int f = [] {
    const char* v = std::getenv("LORA4J_SWIGLU_DX_FORM");
    const int x = v ? std::atoi(v) : 0;
    return x >= 1 && x <= kSwigluDxForms ? x : 1;
  }();
  return f;
}

template <class F>
cudaError_t launch_form(SwigluDxPrm& prm, cudaStream_t s) {
  const SwigluDxParams& p = prm.p;
  prm.nt = int((p.I + F::kBN - 1) / F::kBN);
  prm.tiles = prm.mt * prm.nt;
  prm.kb = int((p.d + F::kBK - 1) / F::kBK);
  if (!tmap_2d_sw128(&prm.tdy, p.dy, p.d, p.n, p.ldy, kBM) ||
      !tmap_2d_sw128(&prm.tw, p.w, p.I, p.d, p.ldw, 64) ||
      (p.r > 0 && (!tmap_2d_sw128(&prm.tt, p.t, p.r, p.n, p.ldt, kBM) ||
                   !tmap_2d_sw128(&prm.ta, p.a, p.I, p.r, p.I, 64))))
    return cudaErrorInvalidValue;
  void (*kernel)(SwigluDxPrm) =
      p.r > 0 ? swiglu_dx_sm90_kernel<F, true> : swiglu_dx_sm90_kernel<F, false>;
  return launch_persistent(kernel, prm.tiles, F::kThreads, F::kSmem, prm, s);
}

}  // namespace

bool swiglu_dx_sm90_accepts(const SwigluDxParams& p) {
  const int64_t mt = (p.n + kBM - 1) / kBM, nt = (p.I + 127) / 128;  // the narrowest form's
  const bool lora_ok =
      p.r == 0 || (p.r > 0 && p.r <= kSwigluDxMaxRank && p.t && p.a && p.ldt >= p.r &&
                   p.ldt % 8 == 0 && ptr_aligned16(p.t) && ptr_aligned16(p.a));
  return p.n > 0 && p.d > 0 && p.I > 0 && p.d % 8 == 0 && p.I % 8 == 0 && p.ldy >= p.d &&
         p.ldy % 8 == 0 && p.ldw >= p.I && p.ldw % 8 == 0 && p.n <= INT32_MAX &&
         mt * nt <= INT32_MAX && p.form >= 0 && p.form <= kSwigluDxForms && p.dy && p.w && p.gate &&
         p.up && p.dgate && p.dup && ptr_aligned16(p.dy) && ptr_aligned16(p.w) &&
         ptr_aligned16(p.gate) && ptr_aligned16(p.up) && ptr_aligned16(p.dgate) &&
         ptr_aligned16(p.dup) && lora_ok && attention_sm90_device();
}

cudaError_t swiglu_dx_sm90(const SwigluDxParams& p, cudaStream_t s) {
  if (!swiglu_dx_sm90_accepts(p)) return cudaErrorNotSupported;
  SwigluDxPrm prm;
  std::memset(&prm, 0, sizeof prm);
  prm.p = p;
  prm.mt = int((p.n + kBM - 1) / kBM);
  switch (p.form ? p.form : default_form()) {
    case 2:
      return launch_form<Form<128, 4>>(prm, s);
    default:
      return launch_form<Form<192, 3>>(prm, s);
  }
}

}  // namespace cuda
}  // namespace lora4j
