/*
 * A LoRA projection's two products of its output gradient dy [n, O] (row stride ldy) in one read
 * of dy:
 *   T = dy B            [n, r]  (bf16 out: the "dy B" that dLoRA_A and the LoRA input gradient
 *                                take next)
 *   dB += dy^T xa       [O, r]  (fp32, accumulated: dLoRA_B)
 * with B the projection's lora_B [O, r] and xa = s x A^T [n, r]. As two cuBLASLt GEMMs each
 * streams dy from memory (2 n O bytes, 235 MB for gate at 8192 tokens) for a product of width r:
 * both are memory-bound, so one pass halves their time.
 *
 * Block (ot, sp) owns dy's columns [256 ot, 256 ot + 256) and rows [sp R, sp R + R) (R =
 * rows_per_split, a multiple of 64) and walks them in tiles of 64 rows x 256 columns (cp.async,
 * two stages). Per tile, on tensor cores (mma.sync m16n8k16, bf16 in, fp32 accumulators):
 *   - T's partial over the block's 256 columns, [64, r]: warp w takes rows 16 (w % 4) and one
 *     half of the columns; the two halves meet in shared memory and go to P[ot] (fp32);
 *   - dB's partial over the tile's rows, [256, r]: warp w keeps rows 32 w of the block's columns
 *     in registers across all its tiles and writes them to Q[sp] (fp32) at the end.
 * A second kernel sums P over ot (T, rounded to bf16) and Q over sp (added onto dB) in a fixed
 * order, so the results are the same bits from run to run.
 * Several projections can share one launch (lora_dy_pair_multi: q, k and v): their column blocks
 * lie side by side in the grid's x (each block finds its projection's dy, B, xa and partials),
 * the row shares are sized for all of them, and the second kernel finishes every projection.
 */
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/kernels/mma.cuh"

namespace lora4j {
namespace cuda {

namespace {
constexpr int kBO = 256;       // dy columns per block
constexpr int kBN = 64;        // dy rows per tile
constexpr int kThreads = 256;  // 8 warps
constexpr int kStages = 2;
constexpr int kLd = kBO + 8;  // shared row stride of a dy tile (elements): no bank conflicts

// rank rounded up to the 16 a pair of n8 MMA tiles covers (8 -> 16; 16, 32 as they are)
__host__ __device__ constexpr int padded_rank(int r) { return (r + 15) / 16 * 16; }

template <int R>
struct Layout {
  static constexpr int RP = padded_rank(R), XL = RP + 8;  // xa and B rows in shared memory
  static constexpr size_t dy = size_t(kStages) * kBN * kLd * 2, xa = size_t(kStages) * kBN * XL * 2,
                          b = size_t(kBO) * XL * 2, red = size_t(4) * 16 * RP * 4;
  static constexpr size_t bytes = dy + xa + b + red;
};

// A lane's four values of an m16n8 accumulator tile, v0 v1 in row row0 + g and v2 v3 in row
// row0 + g + 8, columns c and c + 1: stored as float2 at dst + row * ld + c, rows from end on
// left out.
__device__ __forceinline__ void store_acc(float* dst, int64_t ld, int64_t row0, int64_t end, int g,
                                          int c, float v0, float v1, float v2, float v3) {
  if (row0 + g < end) *reinterpret_cast<float2*>(dst + (row0 + g) * ld + c) = make_float2(v0, v1);
  if (row0 + g + 8 < end)
    *reinterpret_cast<float2*>(dst + (row0 + g + 8) * ld + c) = make_float2(v2, v3);
}

struct Split {
  int ot = 0, sp = 0;
  int64_t rows = 0;  // rows per split, a multiple of kBN
};
// Row shares per column block: as many as one wave of the device's resident blocks (slots) holds
// beside the column blocks (at least one, at most the row tiles). A second, partial wave would
// leave most of the GPU idle while it runs: at gate's width (56 column blocks) on a 132-SM H200
// (264 slots) 4 shares give 224 blocks in one wave where 5 gave 280.
int64_t shares_for(int64_t tiles, int ot, int slots) {
  return std::max<int64_t>(1, std::min<int64_t>(tiles, slots / ot));
}
Split split_of(int64_t n, int64_t O, int slots) {
  Split s;
  s.ot = int((O + kBO - 1) / kBO);
  const int64_t tiles = (n + kBN - 1) / kBN;
  const int64_t want = shares_for(tiles, s.ot, slots);
  s.rows = (tiles + want - 1) / want * kBN;
  s.sp = int((n + s.rows - 1) / s.rows);
  return s;
}

// One projection of a launch: its dy columns (row stride ldy), B, xa (row stride ldxa), its
// partials' places (P [ot, n, r], Q [shares, O, r]), its outputs for the finish kernel (t, row
// stride ldt; dB), its width O, its column blocks ot and the first of them in the grid.
struct Seg {
  const bf16* dy;
  const bf16* B;
  const bf16* xa;
  float* P;
  float* Q;
  bf16* t;
  float* dB;
  int O, ot, first;
};
struct Segs {
  Seg s[kLoraDyPairMaxProj];
  int count;
};
__device__ __forceinline__ const Seg& seg_of(const Segs& g, int block) {
  int k = 0;
  while (k + 1 < g.count && block >= g.s[k + 1].first) ++k;
  return g.s[k];
}

template <int R>
__global__ void __launch_bounds__(kThreads, 2)
    lora_dy_pair_kernel(const __grid_constant__ Segs segs, int64_t ldy, int64_t n, int64_t ldxa,
                        int64_t rows_per_split) {
  const Seg& sg = seg_of(segs, int(blockIdx.x));
  const bf16* __restrict__ dy = sg.dy;
  const bf16* __restrict__ B = sg.B;
  const bf16* __restrict__ xa = sg.xa;
  const int O = sg.O, cb = int(blockIdx.x) - sg.first;  // cb: the block's column block
  using Ly = Layout<R>;
  constexpr int RP = Ly::RP, XL = Ly::XL, NT = RP / 8, CH = R / 8;  // n8 tiles; 16-byte chunks
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sdy = reinterpret_cast<bf16*>(smem);
  bf16* sxa = reinterpret_cast<bf16*>(smem + Ly::dy);
  bf16* sb = reinterpret_cast<bf16*>(smem + Ly::dy + Ly::xa);
  float* sred = reinterpret_cast<float*>(smem + Ly::dy + Ly::xa + Ly::b);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int o0 = cb * kBO;
  const int64_t r0 = blockIdx.y * rows_per_split;
  const int64_t r1 = n < r0 + rows_per_split ? n : r0 + rows_per_split;

  // columns R..RP of xa and B (a rank of 8 padded to 16) are zeros the MMAs read, never written
  if (RP > R) {
    for (int i = tid; i < kStages * kBN; i += kThreads)
      for (int c = R; c < RP; ++c) sxa[i * XL + c] = __float2bfloat16_rn(0.f);
    for (int i = tid; i < kBO; i += kThreads)
      for (int c = R; c < RP; ++c) sb[i * XL + c] = __float2bfloat16_rn(0.f);
  }
  // B's rows o0 .. o0 + 255 (zeros past O)
  for (int c = tid; c < kBO * CH; c += kThreads) {
    const int row = c / CH, ch = c % CH;
    const bool ok = o0 + row < O;
    cp_async16(sb + row * XL + ch * 8, B + (ok ? int64_t(o0 + row) * R + ch * 8 : 0), ok);
  }
  auto load_tile = [&](int stage, int64_t rbase) {
    bf16* d = sdy + stage * kBN * kLd;
    for (int c = tid; c < kBN * (kBO / 8); c += kThreads) {
      const int row = c / (kBO / 8), ch = c % (kBO / 8);
      const int64_t gr = rbase + row;
      const int gc = o0 + ch * 8;
      const bool ok = gr < r1 && gc < O;
      cp_async16(d + row * kLd + ch * 8, dy + (ok ? gr * ldy + gc : 0), ok);
    }
    bf16* x = sxa + stage * kBN * XL;
    for (int c = tid; c < kBN * CH; c += kThreads) {
      const int row = c / CH, ch = c % CH;
      const int64_t gr = rbase + row;
      const bool ok = gr < r1;
      cp_async16(x + row * XL + ch * 8, xa + (ok ? gr * ldxa + ch * 8 : 0), ok);
    }
  };

  float accb[2][NT][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) accb[mt][nt][e] = 0.f;

  const int64_t ntiles = r1 > r0 ? (r1 - r0 + kBN - 1) / kBN : 0;
  if (ntiles > 0) load_tile(0, r0);
  cp_async_commit();
  for (int64_t it = 0; it < ntiles; ++it) {
    if (it + 1 < ntiles) load_tile(int((it + 1) & 1), r0 + (it + 1) * kBN);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const bf16* d = sdy + (it & 1) * kBN * kLd;
    const bf16* x = sxa + (it & 1) * kBN * XL;

    // T's partial: rows m0 .. m0 + 15 of the tile, columns kb .. kb + 127 of the block
    float acct[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acct[nt][e] = 0.f;
    const int m0 = (warp & 3) * 16, kb = (warp >> 2) * (kBO / 2);
#pragma unroll 4
    for (int k = 0; k < kBO / 2; k += 16) {
      uint32_t a[4];
      ldsm_a(a, d, kLd, m0, kb + k, lane);
#pragma unroll
      for (int nt = 0; nt < NT; nt += 2) {
        uint32_t b[4];
        ldsm_b_pair(b, sb, XL, kb + k, nt * 8, lane);
        mma16816(acct[nt], a, b);
        mma16816(acct[nt + 1], a, b + 2);
      }
    }
    // dB's partial: the block's columns 32 warp .. + 31 against the tile's 64 rows
#pragma unroll
    for (int k = 0; k < kBN; k += 16) {
      uint32_t b[NT][2];
#pragma unroll
      for (int nt = 0; nt < NT; nt += 2) {
        uint32_t q[4];
        ldsm_b_pair(q, x, XL, k, nt * 8, lane);
        b[nt][0] = q[0];
        b[nt][1] = q[1];
        b[nt + 1][0] = q[2];
        b[nt + 1][1] = q[3];
      }
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        uint32_t a[4];
        ldsm_at(a, d, kLd, warp * 32 + mt * 16, k, lane);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma16816(accb[mt][nt], a, b[nt]);
      }
    }
    // the two column halves of T's partial meet in shared memory; P[ot] gets their sum
    const int g = lane >> 2, c2 = (lane & 3) * 2;
    if (warp >= 4) {
      float* s = sred + (warp & 3) * 16 * RP;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        s[g * RP + nt * 8 + c2] = acct[nt][0];
        s[g * RP + nt * 8 + c2 + 1] = acct[nt][1];
        s[(g + 8) * RP + nt * 8 + c2] = acct[nt][2];
        s[(g + 8) * RP + nt * 8 + c2 + 1] = acct[nt][3];
      }
    }
    __syncthreads();
    if (warp < 4) {
      const float* s = sred + warp * 16 * RP;
      const int64_t rbase = r0 + it * kBN + m0;
      float* p = sg.P + int64_t(cb) * n * R;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int c = nt * 8 + c2;
        if (c < R)
          store_acc(p, R, rbase, r1, g, c, acct[nt][0] + s[g * RP + c],
                    acct[nt][1] + s[g * RP + c + 1], acct[nt][2] + s[(g + 8) * RP + c],
                    acct[nt][3] + s[(g + 8) * RP + c + 1]);
      }
    }
    __syncthreads();  // the stage just read is the next load's target; sred is reused
  }
  cp_async_wait<0>();

  // Q[sp] = the block's dB partial (zeros for a split past n)
  const int g = lane >> 2, c2 = (lane & 3) * 2;
  float* q = sg.Q + int64_t(blockIdx.y) * O * R;
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int c = nt * 8 + c2;
      if (c < R)
        store_acc(q, R, o0 + warp * 32 + mt * 16, O, g, c, accb[mt][nt][0], accb[mt][nt][1],
                  accb[mt][nt][2], accb[mt][nt][3]);
    }
}

// Per projection: T = bf16(sum over ot of P[ot]) (row stride ldt), dB += sum over sp of Q[sp],
// in that order. Work item i runs over the projections' T elements (n r each), then their dB
// elements (O r each).
__global__ void lora_dy_finish_kernel(const __grid_constant__ Segs segs, int64_t n, int R,
                                      int64_t ldt, int sps) {
  const int64_t nt = n * R, tall = nt * segs.count;
  int64_t total = tall;
  for (int k = 0; k < segs.count; ++k) total += int64_t(segs.s[k].O) * R;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    if (i < tall) {
      const Seg& g = segs.s[i / nt];
      const int64_t e = i % nt;
      float s = 0.f;
      for (int k = 0; k < g.ot; ++k) s += g.P[k * nt + e];
      g.t[(e / R) * ldt + e % R] = __float2bfloat16_rn(s);
    } else {
      int64_t j = i - tall;
      int k = 0;
      while (k + 1 < segs.count && j >= int64_t(segs.s[k].O) * R) j -= int64_t(segs.s[k++].O) * R;
      const Seg& g = segs.s[k];
      const int64_t OR = int64_t(g.O) * R;
      float s = 0.f;
      for (int m = 0; m < sps; ++m) s += g.Q[m * OR + j];
      g.dB[j] += s;
    }
  }
}

// The grid: every projection's column blocks side by side in x, the row shares in y, sized for
// all of them together (split_of over their column blocks). The scratch: each projection's P,
// then each one's Q.
template <int R>
cudaError_t launch(const LoraDyPairProj* a, int count, int64_t ldy, int64_t n, int64_t ldxa,
                   int64_t ldt, float* scratch, int slots, cudaStream_t s) {
  Segs g{};
  g.count = count;
  int ot = 0;
  int64_t O = 0;
  for (int k = 0; k < count; ++k) {
    Seg& x = g.s[k];
    x.dy = a[k].dy;
    x.B = a[k].B;
    x.xa = a[k].xa;
    x.t = a[k].t;
    x.dB = a[k].dB;
    x.O = int(a[k].O);
    x.ot = int((a[k].O + kBO - 1) / kBO);
    x.first = ot;
    ot += x.ot;
    O += a[k].O;
  }
  const Split sp = split_of(n, int64_t(ot) * kBO, slots);
  float* f = scratch;
  for (int k = 0; k < count; ++k) g.s[k].P = f, f += int64_t(g.s[k].ot) * n * R;
  for (int k = 0; k < count; ++k) g.s[k].Q = f, f += int64_t(sp.sp) * g.s[k].O * R;
  constexpr size_t smem = Layout<R>::bytes;
  cudaError_t e = cudaFuncSetAttribute(lora_dy_pair_kernel<R>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (e != cudaSuccess) return e;
  lora_dy_pair_kernel<R>
      <<<dim3(unsigned(ot), unsigned(sp.sp)), kThreads, smem, s>>>(g, ldy, n, ldxa, sp.rows);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  const int64_t total = count * n * R + O * R;
  const int blocks = int(std::min<int64_t>((total + 255) / 256, 2048));
  lora_dy_finish_kernel<<<blocks, 256, 0, s>>>(g, n, R, ldt, sp.sp);
  return cudaGetLastError();
}

// blocks of the rank-R kernel one SM holds at once, with its shared memory opted in
template <int R>
cudaError_t resident_blocks(int* per_sm) {
  constexpr size_t smem = Layout<R>::bytes;
  cudaError_t e = cudaFuncSetAttribute(lora_dy_pair_kernel<R>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (e != cudaSuccess) return e;
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(per_sm, lora_dy_pair_kernel<R>, kThreads,
                                                       smem);
}
}  // namespace

bool lora_dy_pair_supported(const bf16* dy, int64_t ldy, int64_t O, int r, const bf16* B,
                            const bf16* xa, int64_t ldxa) {
  auto a16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return (r == 8 || r == 16 || r == 32) && O > 0 && O % 8 == 0 && O < (int64_t(1) << 30) &&
         ldy >= O && ldy % 8 == 0 && ldxa % 8 == 0 && a16(dy) && a16(B) && a16(xa);
}

size_t lora_dy_pair_smem_bytes(int r) {
  return r == 8 ? Layout<8>::bytes : r == 16 ? Layout<16>::bytes : Layout<32>::bytes;
}

int lora_dy_pair_slots(int r, int device) {
  int sms = 0, per_sm = 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) return 0;
  const cudaError_t e = r == 8    ? resident_blocks<8>(&per_sm)
                        : r == 16 ? resident_blocks<16>(&per_sm)
                        : r == 32 ? resident_blocks<32>(&per_sm)
                                  : cudaErrorInvalidValue;
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear it: the caller's next launch check must not see it
    return 0;
  }
  return sms * per_sm;
}

// Enough for any call with at most n rows: the row shares of fewer rows can outnumber n's (a
// share count is at most min(row tiles, slots / column blocks), which is what is counted).
size_t lora_dy_pair_multi_scratch_floats(int64_t n, const int64_t* O, int count, int r, int slots) {
  if (n <= 0 || count < 1 || slots < 1) return 0;
  int64_t ot = 0, width = 0;
  for (int k = 0; k < count; ++k) {
    if (O[k] <= 0) return 0;
    ot += (O[k] + kBO - 1) / kBO;
    width += O[k];
  }
  const int64_t shares = shares_for((n + kBN - 1) / kBN, int(ot), slots);
  return size_t(ot) * size_t(n) * size_t(r) + size_t(shares) * size_t(width) * size_t(r);
}
size_t lora_dy_pair_scratch_floats(int64_t n, int64_t O, int r, int slots) {
  return lora_dy_pair_multi_scratch_floats(n, &O, 1, r, slots);
}

bool lora_dy_pair_multi_supported(const LoraDyPairProj* a, int count, int64_t ldy, int r,
                                  int64_t ldxa) {
  if (count < 1 || count > kLoraDyPairMaxProj) return false;
  int64_t ot = 0;
  for (int k = 0; k < count; ++k) {
    if (!lora_dy_pair_supported(a[k].dy, ldy, a[k].O, r, a[k].B, a[k].xa, ldxa)) return false;
    ot += (a[k].O + kBO - 1) / kBO;
  }
  return ot < 65536;  // the grid's x
}

cudaError_t lora_dy_pair_multi(const LoraDyPairProj* a, int count, int64_t ldy, int64_t n, int r,
                               int64_t ldxa, int64_t ldt, float* scratch, int slots,
                               cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  if (!lora_dy_pair_multi_supported(a, count, ldy, r, ldxa) || slots < 1)
    return cudaErrorInvalidValue;
  switch (r) {
    case 8:
      return launch<8>(a, count, ldy, n, ldxa, ldt, scratch, slots, s);
    case 16:
      return launch<16>(a, count, ldy, n, ldxa, ldt, scratch, slots, s);
    default:
      return launch<32>(a, count, ldy, n, ldxa, ldt, scratch, slots, s);
  }
}

cudaError_t lora_dy_pair(const bf16* dy, int64_t ldy, int64_t n, int64_t O, const bf16* B, int r,
                         const bf16* xa, int64_t ldxa, bf16* t, int64_t ldt, float* dB,
                         float* scratch, int slots, cudaStream_t s) {
  const LoraDyPairProj one{dy, O, B, xa, t, dB};
  return lora_dy_pair_multi(&one, 1, ldy, n, r, ldxa, ldt, scratch, slots, s);
}

}  // namespace cuda
}  // namespace lora4j
