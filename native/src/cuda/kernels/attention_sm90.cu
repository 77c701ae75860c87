/*
 * Flash attention forward for Hopper (sm_90a): warpgroup MMA (wgmma) with operands in shared
 * memory, tiles brought in by the tensor memory accelerator (cp.async.bulk.tensor) and a
 * producer/consumer split of the block's warpgroups synchronised by mbarriers.
 *
 * It computes the same function as attn_fwd_kernel in attention.cu (fp16 Q and K for the scores,
 * bf16 P and V, fp32 accumulation, base-2 online softmax, bf16 out, natural-log lse, optional fp32
 * copy of out) for the calls it accepts: causal attention with GQA and a query offset, no key
 * padding mask, packed segments only as runs of positions (seg_start / seg_end: a block skips
 * the key tiles before its first query's segment, the backward the query tiles past its last
 * key's, and a tile that crosses a segment's bound is masked element by element, as the diagonal
 * one is), and sliding windows the same way (Mistral v0.1's 4096 on longer rows: a block skips the
 * key tiles before its first query's window and the backward the query tiles past its last
 * key's; a window of at least q_offset + Sq positions cuts nothing and masks nothing), head_dim
 * 64 or 128. attention.cu routes
 * every other call (and every call on a device that is not sm_90, or when LORA4J_ATTENTION=mma)
 * to the mma.sync kernel.
 *
 * Block: 3 warpgroups, 128 queries of one (row, head). Warpgroup 0 is the producer (one thread
 * issues every bulk tensor copy; the warpgroup gives its registers away with setmaxnreg);
 * warpgroups 1 and 2 are consumers, each owning 64 query rows. Key/value tiles of 128 keys pass
 * through a two-stage ring: K[s] and V[s] each complete on their own "full" barrier (transaction
 * bytes), and the 8 consumer warps release each on its own "free" barrier after their last read.
 * Per tile a consumer warpgroup computes S = Q K^T (wgmma m64n128k16, f16, both operands in shared
 * memory, K-major, 128-byte swizzle), masks the diagonal tile, updates the running max and sum,
 * rescales O, converts P to bf16 A fragments in registers and computes O += P V (wgmma
 * m64nDk16, bf16, A from registers, V MN-major in shared memory). As FlashAttention-3 schedules
 * it, a warpgroup issues tile j's S together with tile j - 1's P V and runs tile j's softmax
 * while that P V product is in flight, and the two consumer warpgroups take turns to issue
 * (two named barriers): one's products run on the tensor cores under the other's softmax.
 *
 * hd128 runs persistent when the query blocks outnumber the SMs: one block per SM loops over
 * them (see kPersist at the kernel), which hides most of a block's fixed cost (its Q's arrival,
 * the pipeline's fill, the switch between blocks) behind the previous block's last tiles.
 *
 * Shared-memory layout: every tile is stored as D/64 column panels of [rows][64] 16-bit values,
 * 128 bytes per row, swizzled by the copy engine in 1024-byte atoms (8 rows); the wgmma
 * descriptors read those atoms directly. A panel of 128 rows is 16 KB.
 */
#include <atomic>
#include <type_traits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda.h>

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/sm90.cuh"

namespace lora4j {
namespace cuda {

// Timelines for the probe programs alone (native/bench/attn_fwd_probe.cu defines
// LORA4J_ATTN_FWD_PROBE, attn_bwd_probe.cu LORA4J_ATTN_BWD_PROBE, and each includes this file;
// the library's build has none of it). Forward: per block, the global timer (ns) at fixed points
// (kProbe* slots), its SM and its tile count. Backward: for every kBwdProbeStride-th block (up
// to kBwdProbeBlocks of them), the timer at six points of each iteration per consumer warpgroup
// (kBwdProbe* slots) and the block's entry, iteration count and SM.
#if defined(LORA4J_ATTN_FWD_PROBE) || defined(LORA4J_ATTN_BWD_PROBE)
__device__ __forceinline__ unsigned long long probe_now() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
  return t;
}
__device__ __forceinline__ unsigned probe_smid() {
  unsigned sm;
  asm volatile("mov.u32 %0, %%smid;\n" : "=r"(sm));
  return sm;
}
#endif
#ifdef LORA4J_ATTN_FWD_PROBE
constexpr int kProbeSlots = 12, kProbeBlocks = 4096;
enum {
  kProbeEntry,
  kProbeSm,
  kProbeTiles,
  kProbeLastLoad,
  kProbeQ,
  kProbeFirst = kProbeQ + 2,
  kProbeLoop = kProbeFirst + 2,
  kProbeEnd = kProbeLoop + 2
};
__device__ unsigned long long g_fwd_probe[kProbeBlocks * kProbeSlots];
__device__ __forceinline__ void probe(int slot, unsigned long long v) {
  const unsigned blk = blockIdx.x;
  if (blk < kProbeBlocks) g_fwd_probe[blk * kProbeSlots + slot] = v;
}
#define LORA4J_PROBE(slot, cond)        \
  do {                                  \
    if (cond) probe(slot, probe_now()); \
  } while (0)
#else
#define LORA4J_PROBE(slot, cond) \
  do {                           \
  } while (0)
#endif
#ifdef LORA4J_ATTN_BWD_PROBE
constexpr int kBwdProbeStride = 8, kBwdProbeBlocks = 64, kBwdProbeIters = 512;
// per iteration and consumer warpgroup: Q / dO arrived, S^T and dP^T complete, dS^T written,
// both warpgroups' dS^T and the Qb copy ready, dV / dK / dQ complete, the iteration's end
enum { kBwdProbeQdo, kBwdProbeS, kBwdProbeDs, kBwdProbeSync, kBwdProbeG2, kBwdProbeIt, kBwdProbeN };
enum { kBwdMetaEntry, kBwdMetaIters, kBwdMetaSm, kBwdMetaEnd0, kBwdMetaEnd1, kBwdMetaN };
__device__ unsigned long long g_bwd_probe[kBwdProbeBlocks * kBwdProbeIters * 2 * kBwdProbeN];
__device__ unsigned long long g_bwd_meta[kBwdProbeBlocks * kBwdMetaN];
__device__ __forceinline__ bool bwd_probed() {
  return blockIdx.x % kBwdProbeStride == 0 && blockIdx.x / kBwdProbeStride < kBwdProbeBlocks;
}
#define LORA4J_BPROBE(it, cw, slot)                                                     \
  do {                                                                                  \
    if (tid == 0 && bwd_probed() && (it) < kBwdProbeIters)                              \
      g_bwd_probe[((blockIdx.x / kBwdProbeStride * kBwdProbeIters + (it)) * 2 + (cw)) * \
                      kBwdProbeN +                                                      \
                  (slot)] = probe_now();                                                \
  } while (0)
#define LORA4J_BMETA(slot, v)                                                              \
  do {                                                                                     \
    if (bwd_probed()) g_bwd_meta[blockIdx.x / kBwdProbeStride * kBwdMetaN + (slot)] = (v); \
  } while (0)
#else
#define LORA4J_BPROBE(it, cw, slot) \
  do {                              \
  } while (0)
#define LORA4J_BMETA(slot, v) \
  do {                        \
  } while (0)
#endif

namespace {

using namespace sm90;

constexpr int kBM = 128;                // queries per block (2 consumer warpgroups x 64)
constexpr int kBN = 128;                // keys per tile
constexpr int kStages = 2;              // K/V ring depth
constexpr int kThreads = 384;           // producer warpgroup + 2 consumer warpgroups
constexpr int kPanelBytes = 128 * 128;  // [128 rows][64 values] x 2 bytes

// QSlots: 1, one block per query block; 2, the persistent form (the next query block's Q tile
// arrives while the current one's last tiles run and its output leaves through its own slot).
template <int D, int QSlots = 1>
struct Sm90Smem {
  static constexpr int kTileBytes = (D / 64) * kPanelBytes;  // one Q, K or V tile
  static constexpr int kQ = 0;
  static constexpr int kK = kQ + QSlots * kTileBytes;
  static constexpr int kV = kK + kStages * kTileBytes;
  // q[QSlots], k[S], v[S], kfree[S], vfree[S], then (persistent form) qfree[QSlots]
  static constexpr int kBar = kV + kStages * kTileBytes;
  // persistent form: each Q slot's item and the ring's position at its first tile (2 x int32)
  static constexpr int kInfo = kBar + 8 * (QSlots + 4 * kStages + (QSlots > 1 ? QSlots : 0));
  static constexpr int kBytes = kInfo + (QSlots > 1 ? 8 * QSlots : 0);
  static constexpr int kAlloc = kBytes + 1024;  // the dynamic base is aligned up to 1024 bytes
};

struct Sm90Params {
  CUtensorMap tq, tk, tv;  // 4-d maps {D, heads, rows, batch}, box {64, 1, 128, 1}
  AttentionParams p;
  // The output through shared memory (staged): o as {D, H, Sq, B}, box {64, 1, 64, 1} (bf16),
  // and o_f32 as the same with box {32, 1, 64, 1} (fp32), both with the 128-byte swizzle. After
  // p: placed before it, they moved p's offsets and ptxas serialized the hd128 kernel's wgmma
  // (C7511).
  CUtensorMap to, to32;
  bool staged;
  // Block order: true, every (row, head)'s longest query blocks first (longest processing time
  // first over all the blocks, so the last wave holds the shortest); false, (row, head) after
  // (row, head), each one's query blocks longest first
  bool lpt;
};

#ifdef LORA4J_SM90A_DEVICE
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// The forward's turns (named barriers 5 and 6, 256 threads each): consumer warpgroup cw waits
// for its turn to issue tensor-core work, then hands the turn to the other warpgroup, so the
// two warpgroups' products alternate on the tensor cores and each one's softmax runs under the
// other's products.
__device__ __forceinline__ void pingpong_sync(int cw) {
  if (cw == 0)
    asm volatile("bar.sync 5, 256;\n" ::: "memory");
  else
    asm volatile("bar.sync 6, 256;\n" ::: "memory");
}
__device__ __forceinline__ void pingpong_arrive(int cw) {
  if (cw == 0)
    asm volatile("bar.arrive 6, 256;\n" ::: "memory");
  else
    asm volatile("bar.arrive 5, 256;\n" ::: "memory");
}

// d[64] (+)= A (m64 x k16, fp16, K-major in shared memory) * B (k16 x n128, fp16, K-major)
__device__ __forceinline__ void wgmma_ss_f16_n128(float (&d)[64], uint64_t da, uint64_t db,
                                                  int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, "
      "%45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, "
      "%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]),
        "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
        "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]),
        "+f"(d[63])
      : "l"(da), "l"(db), "r"(accumulate));
}

// d[64] += A (m64 x k16, bf16, registers) * B (k16 x n128, bf16, MN-major in shared memory)
__device__ __forceinline__ void wgmma_rs_bf16_n128(float (&d)[64], const uint32_t (&a)[4],
                                                   uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.eq.u32 p, 1, 1;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, "
      "%45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, "
      "%63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]),
        "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
        "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]),
        "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}

// d[32] += A (m64 x k16, bf16, registers) * B (k16 x n64, bf16, MN-major in shared memory)
__device__ __forceinline__ void wgmma_rs_bf16_n64(float (&d)[32], const uint32_t (&a)[4],
                                                  uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.eq.u32 p, 1, 1;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, "
      "%9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, "
      "%27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}

// O accumulator update for one 16-key step: n = D.
template <int D>
__device__ __forceinline__ void wgmma_pv(float (&o)[D / 2], const uint32_t (&a)[4], uint64_t db);
template <>
__device__ __forceinline__ void wgmma_pv<128>(float (&o)[64], const uint32_t (&a)[4], uint64_t db) {
  wgmma_rs_bf16_n128(o, a, db);
}
template <>
__device__ __forceinline__ void wgmma_pv<64>(float (&o)[32], const uint32_t (&a)[4], uint64_t db) {
  wgmma_rs_bf16_n64(o, a, db);
}

// ---- helpers of the backward ----
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Named barrier 1 over the two consumer warpgroups (256 threads); barrier 0 is __syncthreads.
__device__ __forceinline__ void consumers_sync() {
  asm volatile("bar.sync 1, 256;\n" ::: "memory");
}
// Named barrier 2: consumer warpgroup 0 arrives without waiting, warpgroup 1 waits for it.
__device__ __forceinline__ void consumers_arrive_2() {
  asm volatile("bar.arrive 2, 256;\n" ::: "memory");
}
__device__ __forceinline__ void consumers_sync_2() {
  asm volatile("bar.sync 2, 256;\n" ::: "memory");
}
// Named barriers 3 and 4: the 128 threads of one consumer warpgroup.
__device__ __forceinline__ void warpgroup_sync(int cw) {
  if (cw == 0)
    asm volatile("bar.sync 3, 128;\n" ::: "memory");
  else
    asm volatile("bar.sync 4, 128;\n" ::: "memory");
}
// One box of shared memory added into a 4-d fp32 tensor map's global tensor by the copy engine
// (elements past the tensor's bounds are skipped), in the current bulk group.
__device__ __forceinline__ void tma_reduce_add_4d(const CUtensorMap* map, uint32_t src, int c0,
                                                  int c1, int c2, int c3) {
  asm volatile(
      "cp.reduce.async.bulk.tensor.4d.global.shared::cta.add.tile.bulk_group [%0, {%2, %3, %4, "
      "%5}], [%1];\n" ::"l"(reinterpret_cast<uint64_t>(map)),
      "r"(src), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory");
}
// One box of shared memory stored into a 4-d tensor map's global tensor by the copy engine
// (elements past the tensor's bounds are skipped), in the current bulk group.
__device__ __forceinline__ void tma_store_4d(const CUtensorMap* map, uint32_t src, int c0, int c1,
                                             int c2, int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.global.shared::cta.bulk_group [%0, {%2, %3, %4, %5}], [%1];\n" ::"l"(
          reinterpret_cast<uint64_t>(map)),
      "r"(src), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory");
}
__device__ __forceinline__ void bulk_commit() {
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}
// Waits until every committed bulk group has finished reading its shared-memory source.
__device__ __forceinline__ void bulk_wait_read0() {
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}
// Waits until every committed bulk group is complete.
__device__ __forceinline__ void bulk_wait0() {
  asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
}
__device__ __forceinline__ void sts128(uint32_t addr, uint4 v) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(v.x), "r"(v.y),
               "r"(v.z), "r"(v.w)
               : "memory");
}
__device__ __forceinline__ uint32_t f16x2_to_bf16x2(uint32_t w) {
  const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w));
  return pack_bf16(f.x, f.y);
}
// bytes [0, n) of the fp16 tile at src rewritten as bf16 at dst (same swizzled positions: the
// conversion keeps every value where it was), 16 bytes per step over `threads` threads.
__device__ __forceinline__ void convert_f16_bf16(uint32_t src, uint32_t dst, int n, int t,
                                                 int threads) {
  for (int off = 16 * t; off < n; off += 16 * threads) {
    const uint4 v = lds128(src + off);
    sts128(dst + off, make_uint4(f16x2_to_bf16x2(v.x), f16x2_to_bf16x2(v.y), f16x2_to_bf16x2(v.z),
                                 f16x2_to_bf16x2(v.w)));
  }
}

// Row r of a thread's m64 accumulator fragment (acc[4 j + 2 r], + 1: columns 8 j + 2 t4, + 1,
// j < N / 4), times scale, into fp32 boxes of [rows][32 columns] with the 128-byte swizzle, 8192
// bytes apart (the copy engine's layout for a bulk store or reduce-add): `row` addresses the
// row's first box; column group j goes to box j / 4, 16-byte chunk 2 (j % 4) + t4 / 2, stored at
// chunk ^ g (g = the row % 8). An 8-byte store is served a half warp (g = 0..3 or 4..7) at a
// time; stored j by j, a half warp's 16 lanes would meet in 4 of the 8 chunks (2 wavefronts
// where 1 holds them). So with kSpread, in the store of group j the lanes of odd g store group
// j ^ 2 instead (chunk ^ 4): the half warp then covers all 8 chunks. (The forward's optional fp32
// copy stores without it: there the two selects a store tipped ptxas into serializing the hd64
// forward's wgmma, C7511, and that copy is not on a timed path.)
template <bool kSpread, int N>
__device__ __forceinline__ void sts_acc_f32_sw128(uint32_t row, const float (&acc)[N], int r,
                                                  float scale, int g, int t4) {
  const bool odd = kSpread && (g & 1);
  const int gx = g ^ (odd ? 4 : 0);
  row += 8 * (t4 & 1);
#pragma unroll
  for (int j = 0; j < N / 4; ++j) {
    const int js = j ^ 2;
    const float x = odd ? acc[4 * js + 2 * r] : acc[4 * j + 2 * r];
    const float y = odd ? acc[4 * js + 2 * r + 1] : acc[4 * j + 2 * r + 1];
    sts64(row + (j >> 2) * 8192 + (((2 * (j & 3) + (t4 >> 1)) ^ gx) << 4), x * scale, y * scale);
  }
}

#define LORA4J_WGMMA_D32                                                                          \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),    \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),  \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),  \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define LORA4J_WGMMA_SS_N64(TYPE, TRANS)                                                        \
  asm volatile(                                                                                 \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                              \
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE                               \
      " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, " \
      "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, "      \
      "1, " TRANS ";\n}\n"                                                                      \
      : LORA4J_WGMMA_D32                                                                        \
      : "l"(da), "l"(db), "r"(accumulate))

// d[32] (+)= A (m64 x k16) * B (k16 x n64), both in shared memory, both K-major: fp16 (scores)
__device__ __forceinline__ void wgmma_ss_f16_n64(float (&d)[32], uint64_t da, uint64_t db,
                                                 int accumulate) {
  LORA4J_WGMMA_SS_N64("f16", "0, 0");
}
// the same in bf16 (dP^T = V dO^T)
__device__ __forceinline__ void wgmma_ss_bf16_n64(float (&d)[32], uint64_t da, uint64_t db,
                                                  int accumulate) {
  LORA4J_WGMMA_SS_N64("bf16", "0, 0");
}
// bf16, both operands MN-major (dQ = dS K: A read from dS^T, B = K's bf16 copy)
__device__ __forceinline__ void wgmma_ss_bf16_n64_mn(float (&d)[32], uint64_t da, uint64_t db,
                                                     int accumulate) {
  LORA4J_WGMMA_SS_N64("bf16", "1, 1");
}
#undef LORA4J_WGMMA_SS_N64
#undef LORA4J_WGMMA_D32
#endif  // LORA4J_SM90A_DEVICE

#ifdef LORA4J_SM90A_DEVICE
// The first key that the query at position qpos of row b sees: its segment's start (packed rows)
// or the window's bound, whichever is later (0 without either). It only grows along a row.
__device__ __forceinline__ int first_key(const AttentionParams& p, int b, int qpos) {
  int lo = p.seg_start ? p.seg_start[int64_t(b) * p.Sk + qpos] : 0;
  if (p.window > 0) lo = max(lo, qpos - p.window + 1);
  return lo;
}
// One past the last query position of row b that sees key k: its segment's end (packed rows) or
// the window's bound, whichever is earlier (Sk without either). It only grows along a row.
__device__ __forceinline__ int key_end(const AttentionParams& p, int b, int k) {
  int e = p.seg_end ? p.seg_end[int64_t(b) * p.Sk + k] : p.Sk;
  if (p.window > 0) e = int(min(int64_t(e), int64_t(k) + p.window));  // a window near INT_MAX
  return min(e, p.Sk);
}
#endif

// kBounded: the call has packed segments (as runs) or a window that cuts a pair; full rows take
// the instantiation without it, which reads no bound and masks only the diagonal tiles.
// kPersist: the persistent form. A block per SM (or as many as the launch asks) loops over the
// query blocks ("items") in a fixed order: in round n block c takes item n G + c when n is even
// and n G + G - 1 - c when n is odd (G blocks; items longest first over all, so a block that took
// a longer item in one round takes a shorter one in the next). The producer loads item n's Q into
// slot n % 2 as soon as it has issued item n - 1's last K/V loads, so that Q and the first K/V
// tiles are there when the consumers finish item n - 1; the K/V ring and the consumers' turns run
// on across items. The output leaves through the item's own Q slot, which its warpgroups release
// (qfree) once the copy engine has read it, after their first turn of the next item. Without
// kPersist a block is one item (the loop runs once, the same steps as before the form).
template <int D, bool kBounded, bool kPersist = false>
__global__ void __launch_bounds__(kThreads, 1)
    attn_fwd_sm90_kernel(const __grid_constant__ Sm90Params prm) {
#ifdef LORA4J_SM90A_DEVICE
  constexpr int kQSlots = kPersist ? 2 : 1;
  using SM = Sm90Smem<D, kQSlots>;
  constexpr int kPanels = D / 64;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
  const uint32_t sQ0 = base + SM::kQ, sK = base + SM::kK, sV = base + SM::kV;
  const uint32_t bar0 = base + SM::kBar;
  auto bar_q = [&](int slot) { return bar0 + 8u * slot; };
  auto bar_k = [&](int s) { return bar0 + 8u * (kQSlots + s); };
  auto bar_v = [&](int s) { return bar0 + 8u * (kQSlots + kStages + s); };
  // K[s] read by both warpgroups' S products; V[s] by both P V products
  auto bar_kfree = [&](int s) { return bar0 + 8u * (kQSlots + 2 * kStages + s); };
  auto bar_vfree = [&](int s) { return bar0 + 8u * (kQSlots + 3 * kStages + s); };
  // Q slot free again: one arrival per consumer warpgroup (persistent form)
  auto bar_qfree = [&](int slot) { return bar0 + 8u * (kQSlots + 4 * kStages + slot); };

  const AttentionParams& p = prm.p;
  // The input maps' descriptors fetched ahead of the first copies (no difference measured in
  // time, call3 of the twenty-seventh session; without it ptxas serialized the hd64 kernel's
  // wgmma for want of registers, C7511).
  if (threadIdx.x == 0) {
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(&prm.tq) : "memory");
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(&prm.tk) : "memory");
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(&prm.tv) : "memory");
    // and the output's (without it, after the persistent form came in, ptxas serialized the
    // hd64 kernel's wgmma: C7511)
    if (prm.staged) asm volatile("prefetch.tensormap [%0];\n" ::"l"(&prm.to) : "memory");
  }
  // items: a 1-d order over (query block, head, row); the query blocks in reverse, so the longest
  // causal rows start first: over all the blocks (lpt), or within each (row, head)
  const int nqt = (p.Sq + kBM - 1) / kBM;
  const unsigned nitems = unsigned(nqt) * unsigned(p.H) * unsigned(p.B);
  // item of round n for this block (see kPersist above); without kPersist, blockIdx.x
  auto item_of = [&](int n) -> unsigned {
    if constexpr (!kPersist) return blockIdx.x;
    const unsigned G = gridDim.x, c = blockIdx.x;
    return unsigned(n) * G + ((n & 1) ? G - 1 - c : c);
  };
  // the query block, head and row of an item, its first query and its K/V tiles
  struct Item {
    int h, b, q0, kvh, it0, ntiles;
  };
  auto decode = [&](unsigned L) {
    Item t;
    const int qt = prm.lpt ? int(L / unsigned(p.H * p.B)) : int(L % unsigned(nqt));
    t.h = prm.lpt ? int(L % unsigned(p.H)) : int(L / unsigned(nqt) % unsigned(p.H));
    t.b = prm.lpt ? int(L / unsigned(p.H) % unsigned(p.B)) : int(L / unsigned(nqt * p.H));
    t.q0 = (nqt - 1 - qt) * kBM;
    t.kvh = t.h / (p.H / p.KH);
    const int qlast = p.q_offset + min(t.q0 + kBM, p.Sq) - 1;  // last query position of the block
    const int kend = min(p.Sk, qlast + 1);
    // Packed rows and windows: no query of the block sees a key before its first query's first
    // key (first_key only grows along the row), so the tiles start at the one holding that key.
    t.it0 = kBounded ? first_key(p, t.b, p.q_offset + t.q0) / kBN : 0;
    t.ntiles = (kend + kBN - 1) / kBN - t.it0;  // tiles it0 .. it0 + ntiles - 1
    return t;
  };
  const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;
  const Item first = decode(item_of(0));  // the block's first item (its only one without kPersist)

  LORA4J_PROBE(kProbeEntry, threadIdx.x == 0);
#ifdef LORA4J_ATTN_FWD_PROBE
  if (threadIdx.x == 0) {
    probe(kProbeSm, probe_smid());
    probe(kProbeTiles, unsigned(first.ntiles));
  }
#endif
  if (threadIdx.x == 0) {
    for (int q = 0; q < kQSlots; ++q) mbar_init(bar_q(q), 1);
    for (int s = 0; s < kStages; ++s) {
      mbar_init(bar_k(s), 1);
      mbar_init(bar_v(s), 1);
      mbar_init(bar_kfree(s), 8);  // one arrival per consumer warp
      mbar_init(bar_vfree(s), 8);
    }
    if constexpr (kPersist)
      for (int q = 0; q < kQSlots; ++q) mbar_init(bar_qfree(q), 2);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    // ---- producer ----
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
    if (tid == 0) {
      constexpr uint32_t kTile = SM::kTileBytes;
      int gt = 0;  // K/V tiles issued over all of this block's items
      for (int n = 0;; ++n) {
        const unsigned L = item_of(n);
        const int slot = kPersist ? (n & 1) : 0;
        if constexpr (kPersist) {
          // the slot's item of two rounds ago has left (its output read by the copy engine);
          // then the slot's item and ring position for the consumers (an item past the last
          // one, with no Q load, ends their loop)
          mbar_wait(bar_qfree(slot), ((n >> 1) & 1) ^ 1);
          const uint32_t info = base + SM::kInfo + 8 * slot;
          asm volatile("st.shared.v2.u32 [%0], {%1, %2};\n" ::"r"(info), "r"(L < nitems ? L : ~0u),
                       "r"(gt)
                       : "memory");
          if (L >= nitems) {
            mbar_arrive(bar_q(slot));
            break;
          }
        }
        const Item t = kPersist ? decode(L) : first;
        mbar_expect_tx(bar_q(slot), kTile);
        for (int c = 0; c < kPanels; ++c)
          tma_load_4d(sQ0 + slot * kTile + c * kPanelBytes, &prm.tq, bar_q(slot), c * 64, t.h, t.q0,
                      t.b);
        for (int it = 0; it < t.ntiles; ++it, ++gt) {
          const int s = gt % kStages;
          const uint32_t free_par = ((gt / kStages) & 1) ^ 1;  // first pass: passes at once
          const int kt = (t.it0 + it) * kBN;
          mbar_wait(bar_kfree(s), free_par);
          mbar_expect_tx(bar_k(s), kTile);
          for (int c = 0; c < kPanels; ++c)
            tma_load_4d(sK + s * kTile + c * kPanelBytes, &prm.tk, bar_k(s), c * 64, t.kvh, kt,
                        t.b);
          mbar_wait(bar_vfree(s), free_par);
          mbar_expect_tx(bar_v(s), kTile);
          for (int c = 0; c < kPanels; ++c)
            tma_load_4d(sV + s * kTile + c * kPanelBytes, &prm.tv, bar_v(s), c * 64, t.kvh, kt,
                        t.b);
        }
        if constexpr (!kPersist) break;
      }
      LORA4J_PROBE(kProbeLastLoad, true);
    }
    return;
  }

  // ---- consumers: warpgroup cw owns query rows q0 + 64 cw .. + 63 of each item ----
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
  const int cw = wg - 1;
  const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const float sl2 = p.scale * kLog2e;
  // Warpgroup 0 takes the first turn; the turns alternate over all of the block's items (each
  // warpgroup takes ntiles + 1 turns an item), and warpgroup 0 takes warpgroup 1's last arrival
  // at the end, so both named barriers end empty.
  if (kPersist && cw == 1) pingpong_arrive(1);
  // The persistent form reads each item and the ring's position from the producer (shared
  // memory, once the item's Q has arrived): computed here and held across the tile loop, they
  // made ptxas serialize the wgmma for want of registers (C7511).
  for (int n = 0;; ++n) {
    const int slot = kPersist ? (n & 1) : 0;
    unsigned L = 0;
    int gb = 0;  // the ring's position: K/V tiles consumed by the block's earlier items
    if constexpr (kPersist) {
      mbar_wait(bar_q(slot), (n >> 1) & 1);
      asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n"
                   : "=r"(L), "=r"(gb)
                   : "r"(base + SM::kInfo + 8 * slot)
                   : "memory");
      if (L == ~0u) break;
    }
    const Item t = kPersist ? decode(L) : first;
    const int h = t.h, b = t.b, q0 = t.q0, it0 = t.it0, ntiles = t.ntiles;
    const uint32_t sQ = sQ0 + slot * SM::kTileBytes;
    const int qr[2] = {q0 + cw * 64 + warp * 16 + g, q0 + cw * 64 + warp * 16 + g + 8};
    const int qwg = p.q_offset + q0 + cw * 64;  // first query position of this warpgroup

    float o[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; ++i) o[i] = 0.f;
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};

    // Q rows of this warpgroup: 64 rows x 128 bytes = 8 KB into each panel.
    const uint32_t qbase = sQ + cw * 64 * 128;
    float sc[64];              // S of the current tile, then its P
    uint32_t pa[kBN / 16][4];  // P of the previous tile as A fragments
    if (!kPersist && ntiles > 0 && cw == 1) pingpong_arrive(1);
    if constexpr (!kPersist) mbar_wait(bar_q(slot), 0);
    LORA4J_PROBE(kProbeQ + cw, tid == 0);

    // Tile it: S(it) = Q K(it)^T is issued in one turn with O += P(it - 1) V(it - 1); the softmax
    // of S(it) runs while that P V product is in flight, and the other warpgroup's turn (its own
    // two products) runs under this one's softmax. The first tile's S and the last tile's P V are
    // issued in turns of their own, peeled out of the loop: with the issues made conditional
    // inside one loop instead, ptxas serialized the wgmma (C7514).
    auto issue_s = [&](int s) {
      const uint32_t kbase = sK + s * SM::kTileBytes;
      // S = Q K^T over D in steps of 16 (32 bytes inside a 128-byte swizzled row)
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const uint32_t off = (kk / 4) * kPanelBytes + (kk % 4) * 32;
        wgmma_ss_f16_n128(sc, sw128_desc(qbase + off, 16, 1024), sw128_desc(kbase + off, 16, 1024),
                          kk > 0);
      }
      wgmma_commit();
    };
    auto issue_pv = [&](int s) {
      const uint32_t vbase = sV + s * SM::kTileBytes;
      // O += P V: 16 keys (two 1024-byte atoms of V) per step; N = D spans D/64 panels (lbo).
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk)
        wgmma_pv<D>(o, pa[kk], sw128_desc(vbase + kk * 2048, kPanelBytes, 1024));
      wgmma_commit();
    };
    auto release = [&](uint32_t bar) {
      __syncwarp();
      if (lane == 0) mbar_arrive(bar);
    };
    float corr[2];
    // mask, row maxima, P = exp2(S - max) in sc, the running sums; corr rescales O
    auto softmax = [&](int it) {
      const int kt = (it0 + it) * kBN;
      // Mask (only tiles that reach past the warpgroup's first query or past Sk, or, in packed
      // rows, begin before a row's segment) and row max of the unscaled scores. Accumulator
      // layout: sc[4 j + e] is row g + 8 (e >> 1), key 8 j + 2 t4 + (e & 1).
      // Packed rows and windows: a tile from the warpgroup's last row's first key on (first_key
      // only grows) is seen whole by every row; the bounds are read where needed, not held in
      // registers (the hd128 consumers have none to spare).
      float mx[2] = {-INFINITY, -INFINITY};
      if (kt + kBN - 1 <= qwg && kt + kBN <= p.Sk &&
          (!kBounded || kt >= first_key(p, b, p.q_offset + min(q0 + cw * 64 + 63, p.Sq - 1)))) {
#pragma unroll
        for (int i = 0; i < 64; ++i) mx[(i >> 1) & 1] = fmaxf(mx[(i >> 1) & 1], sc[i]);
      } else {
        int sst[2] = {0, 0};  // the first key each of this thread's rows sees
        if (kBounded)
#pragma unroll
          for (int r = 0; r < 2; ++r) sst[r] = first_key(p, b, p.q_offset + min(qr[r], p.Sq - 1));
#pragma unroll
        for (int i = 0; i < 64; ++i) {
          const int r = (i >> 1) & 1, key = kt + 8 * (i >> 2) + 2 * t4 + (i & 1);
          const bool ok = key < p.Sk && key <= p.q_offset + qr[r] && (!kBounded || key >= sst[r]);
          const float v = ok ? sc[i] : -INFINITY;
          sc[i] = v;
          mx[r] = fmaxf(mx[r], v);
        }
      }
      // The running max in base 2 (scale > 0, so the max of the scaled scores is the scaled max);
      // P = exp2(s * scale * log2(e) - max) in one fused multiply-add per score, the masked ones
      // -inf -> 0. A row that has seen only masked keys keeps max -inf and subtracts 0 instead.
      float msub[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        const float mnew = fmaxf(mrow[r], mx[r] * sl2);
        corr[r] = (mnew == -INFINITY) ? 1.f : exp2f(mrow[r] - mnew);
        mrow[r] = mnew;
        msub[r] = mnew == -INFINITY ? 0.f : mnew;
        lrow[r] *= corr[r];
      }
#pragma unroll
      for (int i = 0; i < 64; ++i) {
        const int r = (i >> 1) & 1;
        const float pv = ex2_ftz(fmaf(sc[i], sl2, -msub[r]));
        sc[i] = pv;
        lrow[r] += pv;
      }
    };
    // O rescaled, P as A fragments: 16-key step kk takes n8 blocks 2 kk and 2 kk + 1.
    auto rescale_pack = [&]() {
#pragma unroll
      for (int i = 0; i < D / 2; ++i) o[i] *= corr[(i >> 1) & 1];
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        pa[kk][0] = pack_bf16(sc[8 * kk + 0], sc[8 * kk + 1]);
        pa[kk][1] = pack_bf16(sc[8 * kk + 2], sc[8 * kk + 3]);
        pa[kk][2] = pack_bf16(sc[8 * kk + 4], sc[8 * kk + 5]);
        pa[kk][3] = pack_bf16(sc[8 * kk + 6], sc[8 * kk + 7]);
      }
    };

    // The block's last tile, where none of this warpgroup's rows sees its second 64 keys
    // (warpgroup 0 on the causal diagonal, or keys past Sk): S over the first 64 keys only and P V
    // over those 64. The scores left out are masked keys (the softmax sets them to -inf, so their
    // P is 0), so O, the row sums and lse are the same bits as over the whole tile.
    auto issue_s_half = [&](int s) {
      const uint32_t kbase = sK + s * SM::kTileBytes;
      float(&sh)[32] = reinterpret_cast<float(&)[32]>(sc);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const uint32_t off = (kk / 4) * kPanelBytes + (kk % 4) * 32;
        wgmma_ss_f16_n64(sh, sw128_desc(qbase + off, 16, 1024), sw128_desc(kbase + off, 16, 1024),
                         kk > 0);
      }
      wgmma_commit();
    };
    auto issue_pv_half = [&](int s) {
      const uint32_t vbase = sV + s * SM::kTileBytes;
#pragma unroll
      for (int kk = 0; kk < kBN / 32; ++kk)
        wgmma_pv<D>(o, pa[kk], sw128_desc(vbase + kk * 2048, kPanelBytes, 1024));
      wgmma_commit();
    };
    const int kt_last = (it0 + ntiles - 1) * kBN;
    const bool half_last = !p.whole_last_tile && (kt_last + 64 > qwg + 63 || kt_last + 64 >= p.Sk);
    // Each step's issues are fixed at compile time (Half: the last tile's half forms), so no
    // wgmma is issued under a run-time condition inside a sequence (ptxas would serialize them).
    using Full = std::integral_constant<bool, false>;
    using Half = std::integral_constant<bool, true>;
    auto first_tile = [&](auto half) {
      const int s0 = gb % kStages;
      mbar_wait(bar_k(s0), (gb / kStages) & 1);
      pingpong_sync(cw);
      wgmma_fence();
      if constexpr (decltype(half)::value)
        issue_s_half(s0);
      else
        issue_s(s0);
      pingpong_arrive(cw);
      wgmma_wait0();
      fence_regs(sc);
      release(bar_kfree(s0));
      softmax(0);
      rescale_pack();
      LORA4J_PROBE(kProbeFirst + cw, tid == 0);
    };
    auto next_tile = [&](int it, auto half) {
      const int gi = gb + it;  // the tile's place in the ring over the block's items
      const int s = gi % kStages, sp = (gi - 1) % kStages;
      mbar_wait(bar_k(s), (gi / kStages) & 1);
      mbar_wait(bar_v(sp), ((gi - 1) / kStages) & 1);
      pingpong_sync(cw);
      fence_regs(o);
      wgmma_fence();
      if constexpr (decltype(half)::value)
        issue_s_half(s);
      else
        issue_s(s);
      issue_pv(sp);
      pingpong_arrive(cw);
      wgmma_wait1();  // S(it) done; P(it - 1) V(it - 1) may still run
      fence_regs(sc);
      release(bar_kfree(s));
      softmax(it);
      wgmma_wait0();  // P(it - 1) V(it - 1) done: O may be rescaled and pa rewritten
      fence_regs(o);
      release(bar_vfree(sp));
      rescale_pack();
    };
    auto last_pv = [&](auto half) {
      const int gl = gb + ntiles - 1;
      const int sp = gl % kStages;
      mbar_wait(bar_v(sp), (gl / kStages) & 1);
      pingpong_sync(cw);
      fence_regs(o);
      wgmma_fence();
      if constexpr (decltype(half)::value)
        issue_pv_half(sp);
      else
        issue_pv(sp);
      pingpong_arrive(cw);
      wgmma_wait0();
      fence_regs(o);
      release(bar_vfree(sp));
    };
    // the previous item's Q slot, once the copy engine has read its output from it
    auto release_prev_q = [&]() {
      if constexpr (kPersist) {
        if (n > 0 && tid == 0) {
          bulk_wait_read0();
          mbar_arrive(bar_qfree(slot ^ 1));
        }
      }
    };
    if constexpr (kBounded) {
      // only the last P V in half here: the half S beside the bounds' code made ptxas serialize
      // every wgmma of the kernel for want of registers (C7511)
      if (ntiles > 0) first_tile(Full{});
      release_prev_q();
      for (int it = 1; it < ntiles; ++it) next_tile(it, Full{});
      if (ntiles > 0) {
        if (half_last)
          last_pv(Half{});
        else
          last_pv(Full{});
      }
    } else {
      if (ntiles == 1 && half_last)
        first_tile(Half{});
      else if (ntiles > 0)
        first_tile(Full{});
      release_prev_q();
      for (int it = 1; it < ntiles - 1; ++it) next_tile(it, Full{});
      if (ntiles > 1) {
        if (half_last)
          next_tile(ntiles - 1, Half{});
        else
          next_tile(ntiles - 1, Full{});
      }
      if (ntiles > 0) {
        if (half_last)
          last_pv(Half{});
        else
          last_pv(Full{});
      }
    }
    if (!kPersist && ntiles > 0 && cw == 0) pingpong_sync(0);
    LORA4J_PROBE(kProbeLoop + cw, tid == 0);

    // finish: row sums over the quad, normalize, write out (bf16, optional fp32) and lse
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
      lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
    }
    // the natural-log lse of this thread's row r (-inf for a row that saw no key)
    auto store_lse = [&](int r) {
      p.lse[(int64_t(b) * p.H + h) * p.Sq + qr[r]] =
          lrow[r] > 0.f ? (mrow[r] + log2f(lrow[r])) * kLn2 : -INFINITY;
    };
    if (prm.staged) {
      // The output through shared memory and the copy engine: the warpgroup writes its 64 rows
      // into its own (dead) rows of Q's tile (bf16, D/64 panels [64 rows][128 bytes]) and the fp32
      // copy into its half of the K ring (D/32 boxes [64 rows][32 columns]), both in the 128-byte
      // swizzle (16-byte chunk c of row R at c ^ (R & 7); R & 7 = g), and one thread stores them as
      // boxes; rows past Sq are clipped by the copy. The K ring is dead once both warpgroups'
      // last S products are complete: their release of its last stage completes that phase.
      const uint32_t so = sQ + cw * 64 * 128, so32 = sK + cw * (D / 32) * 8192;
      // (the persistent form takes no fp32 copy: the K ring holds the next item's tiles by now)
      if (!kPersist && p.o_f32 && ntiles > 0)
        mbar_wait(bar_kfree((ntiles - 1) % kStages), ((ntiles - 1) / kStages) & 1);
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float inv = lrow[r] > 0.f ? 1.f / lrow[r] : 0.f;
        const uint32_t row = (16 * warp + g + 8 * r) * 128;
#pragma unroll
        for (int j = 0; j < D / 8; ++j)
          sts32(so + (j >> 3) * kPanelBytes + row + (((j & 7) ^ g) << 4) + 4 * t4,
                pack_bf16(o[4 * j + 2 * r] * inv, o[4 * j + 2 * r + 1] * inv));
        if (!kPersist && p.o_f32) sts_acc_f32_sw128<false>(so32 + row, o, r, inv, g, t4);
      }
      fence_proxy_async();
      warpgroup_sync(cw);
      const int qw = q0 + cw * 64;
      if (tid == 0 && qw < p.Sq) {
#pragma unroll
        for (int c = 0; c < D / 64; ++c)
          tma_store_4d(&prm.to, so + c * kPanelBytes, c * 64, h, qw, b);
        if (!kPersist && p.o_f32)
#pragma unroll
          for (int c = 0; c < D / 32; ++c)
            tma_store_4d(&prm.to32, so32 + c * 8192, c * 32, h, qw, b);
        bulk_commit();
      }
#pragma unroll
      for (int r = 0; r < 2; ++r)
        if (t4 == 0 && qr[r] < p.Sq) store_lse(r);
      // shared memory lives until the copy read it (the persistent form waits for that before
      // it releases the slot, after its next turn, or at its end)
      if (!kPersist && tid == 0 && qw < p.Sq) bulk_wait_read0();
    } else {
      const int64_t qstride = int64_t(p.H) * D;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        if (qr[r] >= p.Sq) continue;
        const float inv = lrow[r] > 0.f ? 1.f / lrow[r] : 0.f;
        const int64_t row = int64_t(b) * p.q_bstride + int64_t(qr[r]) * qstride + int64_t(h) * D;
        bf16* orow = p.o + row;
#pragma unroll
        for (int j = 0; j < D / 8; ++j)
          *reinterpret_cast<__nv_bfloat162*>(orow + 8 * j + 2 * t4) =
              __floats2bfloat162_rn(o[4 * j + 2 * r] * inv, o[4 * j + 2 * r + 1] * inv);
        if (p.o_f32) {
          float* o32 = p.o_f32 + row;
#pragma unroll
          for (int j = 0; j < D / 8; ++j)
            *reinterpret_cast<float2*>(o32 + 8 * j + 2 * t4) =
                make_float2(o[4 * j + 2 * r] * inv, o[4 * j + 2 * r + 1] * inv);
        }
        if (t4 == 0) store_lse(r);
      }
    }
    LORA4J_PROBE(kProbeEnd + cw, tid == 0);
    if constexpr (!kPersist) break;
  }
  // warpgroup 1's last arrival on warpgroup 0's turn, taken so both named barriers end empty
  if (kPersist && cw == 0) pingpong_sync(0);
  if (kPersist && tid == 0) bulk_wait_read0();  // the last item's output read from its slot
#endif                                          // LORA4J_SM90A_DEVICE
}

// ---- backward ---------------------------------------------------------------------------------
// Block: 128 keys of one (row, KV head); loop over the 64-query tiles that can see those keys and,
// at each, the query heads of the KV group (the order: see attn_bwd_sm90_kernel). Warpgroup 0: warp
// 0 issues the bulk tensor copies (K and V once, Q and dO per iteration through a two-stage ring),
// warp 1 copies the tile's lse and delta values into shared memory. Consumer warpgroup w owns keys
// k0 + 64 w .. + 63:
//   S^T = K_w Q^T (fp16), dP^T = V_w dO^T, P^T = exp(S^T - lse), dS^T = P^T (dP^T - delta),
//   dV_w += P^T dO, dK_w += dS^T Qb, and a part of dQ = dS Kb (hd128: columns 64 w .. + 63 of dQ
//   over all 128 keys; hd64: all columns over the warpgroup's 64 keys), added to dq_accum.
// hd128 adds dQ through the copy engine: each warpgroup issues its dQ product first, in a commit
// group of its own, then dV and dK; once its dQ is complete it writes its 64 x 64 fp32 part of
// dQ (128-byte swizzle, two boxes of 32 columns) into a dead tile, warpgroup 0 into the stage's
// Q tile, warpgroup 1 into the iteration's dS^T buffer once both warpgroups' dQ products (its
// only readers) are complete, and one of its threads adds it into dq_accum with a bulk tensor
// reduce-add, all while dV and dK run on the tensor cores; the stage is released (one arrival
// per warpgroup) once the copy engine has read it, checked in the next iteration while that
// one's first products run. hd64 (whose tiles are too small to hold its
// fp32 dQ) adds it with float2 atomics. Qb and Kb are bf16 copies of the Q and K tiles made in
// shared memory (the gradient products are bf16, as in attn_bwd_kernel); dS^T goes through
// shared memory ([128 keys][64 queries], 128-byte swizzle) for dQ, whose A operand it is, read
// transposed.
constexpr int kBwdBN = 128;             // keys per block
constexpr int kBwdBM = 64;              // queries per tile
constexpr int kBwdStages = 2;           // Q/dO ring depth
constexpr int kBwdChunk = 128;          // blocks of the backward's grid per chunk of whole groups
constexpr int kQPanelBytes = 64 * 128;  // [64 rows][64 values] x 2 bytes
constexpr int kDsBytes = kBwdBN * kBwdBM * 2;  // dS^T, bf16

template <int D>
struct Sm90BwdSmem {
  static constexpr int kKVTile = (D / 64) * kPanelBytes;  // 128 rows
  static constexpr int kQTile = (D / 64) * kQPanelBytes;  // 64 rows
  static constexpr int kK = 0;                            // fp16, the scores' operand
  static constexpr int kKb = kK + kKVTile;                // bf16 copy, dQ's operand
  static constexpr int kV = kKb + kKVTile;
  static constexpr int kQ = kV + kKVTile;                        // [stages]
  static constexpr int kDO = kQ + kBwdStages * kQTile;           // [stages]
  static constexpr int kQb = kDO + kBwdStages * kQTile;          // [stages] bf16 copies of Q
  static constexpr int kDS = kQb + 2 * kQTile;                   // [2]
  static constexpr int kLse = kDS + 2 * kDsBytes;                // [stages][64] fp32, times log2(e)
  static constexpr int kDelta = kLse + kBwdStages * kBwdBM * 4;  // [stages][64]
  // kv, then per stage: qdo, ld, empty, qb, ldfree, dqw
  static constexpr int kBar = kDelta + kBwdStages * kBwdBM * 4;
  static constexpr int kBytes = kBar + 8 * (1 + 6 * kBwdStages);
  static constexpr int kAlloc = kBytes + 1024;
  static_assert(kAlloc <= 227 * 1024, "one block per SM must fit");
};

struct Sm90BwdParams {
  CUtensorMap tq, tdo;  // {D, H, S, B}, box {64, 1, 64, 1}
  CUtensorMap tk, tv;   // {D, KH, S, B}, box {64, 1, 128, 1}
  CUtensorMap tdq;      // dq_accum, fp32 {D, H, S, B}, box {32, 1, 64, 1} (hd128)
  AttentionBackwardParams p;
};

template <int D, bool kBounded>  // kBounded as in the forward
__global__ void __launch_bounds__(kThreads, 1)
    attn_bwd_sm90_kernel(const __grid_constant__ Sm90BwdParams prm) {
#ifdef LORA4J_SM90A_DEVICE
  using SM = Sm90BwdSmem<D>;
  constexpr int kPanels = D / 64;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw = smem_u32(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  float* lse_s = reinterpret_cast<float*>(smem_raw + (base - raw) + SM::kLse);
  float* delta_s = reinterpret_cast<float*>(smem_raw + (base - raw) + SM::kDelta);
  const uint32_t sK = base + SM::kK, sKb = base + SM::kKb, sV = base + SM::kV;
  const uint32_t sQ = base + SM::kQ, sDO = base + SM::kDO, sQb = base + SM::kQb,
                 sDS = base + SM::kDS;
  const uint32_t bar_kv = base + SM::kBar;
  auto bar_qdo = [&](int s) { return bar_kv + 8u * (1 + s); };
  auto bar_ld = [&](int s) { return bar_kv + 8u * (1 + kBwdStages + s); };
  auto bar_empty = [&](int s) { return bar_kv + 8u * (1 + 2 * kBwdStages + s); };
  auto bar_qb = [&](int s) { return bar_kv + 8u * (1 + 3 * kBwdStages + s); };
  // lse / delta of stage s read by every consumer warp (the loader may refill them)
  auto bar_ldfree = [&](int s) { return bar_kv + 8u * (1 + 4 * kBwdStages + s); };
  // hd128: warpgroup 0's dQ written into Q[s] (ordered before the converters' next read of Q[s])
  auto bar_dqw = [&](int s) { return bar_kv + 8u * (1 + 5 * kBwdStages + s); };

  const AttentionBackwardParams& bp = prm.p;
  const AttentionParams& p = bp.f;
  // A 1-d grid in chunks of about kBwdChunk blocks (one wave), each chunk every key block of C
  // (KV head, row) groups, the key blocks that the most query tiles see first within it. A
  // group's key blocks are then in flight together: they read the same Q / dO tiles and add
  // into the same dQ rows at about the same time, while those are in L2, and the next chunk's
  // long blocks start as this one's short blocks end. Ordered by key block over every group
  // instead (the later key blocks of a group in later waves, after its tiles had left L2), the
  // backward moved twice the DRAM bytes and took 3% / 1.5% longer held at 4 x 2048 / 1 x 8192
  // (two waves a chunk: between the two). Half-wave chunks start the last chunks' longest blocks
  // too late (7% / 12% slower). The forward keeps its 3-d grid (ordered by key block it ran 8%
  // slower).
  const int per = p.KH * p.B;
  const int nkb = (p.Sk + kBwdBN - 1) / kBwdBN;
  const int C = max(1, kBwdChunk / nkb);
  const int chunk = int(blockIdx.x) / (C * nkb), r = int(blockIdx.x) - chunk * C * nkb;
  const int cg = min(C, per - chunk * C);  // groups in this chunk (the last may hold fewer)
  const int grp = chunk * C + r % cg;
  const int kvh = grp % p.KH, b = grp / p.KH;
  const int k0 = (r / cg) * kBwdBN;
  const int S = p.Sk, G = p.H / p.KH;
  // Packed rows and windows: no query past the block's last key's end sees a key of the block
  // (key_end only grows along the row), so the query tiles end there.
  const int qend = kBounded ? key_end(p, b, min(k0 + kBwdBN, S) - 1) : S;
  const int nqt = (qend - k0 + kBwdBM - 1) / kBwdBM;  // query tiles k0 .. qend (causal)
  const int iters = G * nqt;
  // Iteration it's query head and first query: the group's heads in turn at each query tile,
  // from head (key block mod G) on; the tiles from the last one down in even chunks, from the
  // block's first one up in odd chunks. The chunks alternate between blocks that start together
  // and end apart (the first wave: their lengths differ) and blocks that start apart, as the
  // previous chunk's short blocks end, and end together. Walking down keeps the first kind on
  // the same tile at once, walking up the second, so a group's blocks read each (head, tile) at
  // about the same time; the different start heads keep their dQ reduce-adds on different rows.
  // DRAM then moves Q, dO, K, V and the dQ accumulator about once (~450 MB a call at 4 x 2048
  // and at 1 x 8192, against 750 MB / 1.3 GB head after head with the tiles always down): 0.8% /
  // 1.0% faster held at the power cap. Head after head with the direction alternating left more
  // bytes and was 3% slower; heads in turn with the tiles always down moved more bytes than head
  // after head (+2%).
  const bool up = chunk & 1;
  auto head_of = [&](int it) { return kvh * G + (it + k0 / kBwdBN) % G; };
  auto query_of = [&](int it) { return k0 + (up ? it / G : nqt - 1 - it / G) * kBwdBM; };
  const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;
#ifdef LORA4J_ATTN_BWD_PROBE
  if (threadIdx.x == 0) {
    LORA4J_BMETA(kBwdMetaEntry, probe_now());
    LORA4J_BMETA(kBwdMetaIters, unsigned(iters));
    LORA4J_BMETA(kBwdMetaSm, probe_smid());
  }
#endif

  if (threadIdx.x == 0) {
    mbar_init(bar_kv, 1);
    for (int s = 0; s < kBwdStages; ++s) {
      mbar_init(bar_qdo(s), 1);
      mbar_init(bar_ld(s), 32);  // the lanes of the loader warp
      // hd128: one arrival per consumer warpgroup (after its dQ left the stage); hd64: per warp
      mbar_init(bar_empty(s), D == 128 ? 2 : 8);
      mbar_init(bar_qb(s), 64);     // the lanes of the converting warps
      mbar_init(bar_ldfree(s), 8);  // one arrival per consumer warp
      mbar_init(bar_dqw(s), 4);     // one arrival per warp of consumer warpgroup 0
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    // ---- producer ----
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
    const int warp = tid / 32, lane = tid % 32;
    if (warp == 0 && lane == 0) {
      mbar_expect_tx(bar_kv, 2 * SM::kKVTile);
      for (int c = 0; c < kPanels; ++c) {
        tma_load_4d(sK + c * kPanelBytes, &prm.tk, bar_kv, c * 64, kvh, k0, b);
        tma_load_4d(sV + c * kPanelBytes, &prm.tv, bar_kv, c * 64, kvh, k0, b);
      }
      for (int it = 0; it < iters; ++it) {
        const int s = it % kBwdStages;
        mbar_wait(bar_empty(s), ((it / kBwdStages) & 1) ^ 1);  // first pass: passes at once
        const int hh = head_of(it), qt = query_of(it);
        mbar_expect_tx(bar_qdo(s), 2 * SM::kQTile);
        for (int c = 0; c < kPanels; ++c) {
          tma_load_4d(sQ + s * SM::kQTile + c * kQPanelBytes, &prm.tq, bar_qdo(s), c * 64, hh, qt,
                      b);
          tma_load_4d(sDO + s * SM::kQTile + c * kQPanelBytes, &prm.tdo, bar_qdo(s), c * 64, hh, qt,
                      b);
        }
      }
    } else if (warp == 1) {
      // lse in base 2 (+inf past S and for a query that saw no key: P = 0 there) and delta
      for (int it = 0; it < iters; ++it) {
        const int s = it % kBwdStages;
        mbar_wait(bar_ldfree(s), ((it / kBwdStages) & 1) ^ 1);
        const int hh = head_of(it), qt = query_of(it);
        const int64_t row = (int64_t(b) * p.H + hh) * S;
        for (int i = lane; i < kBwdBM; i += 32) {
          const int q = qt + i;
          float l = INFINITY, dl = 0.f;
          if (q < S) {
            l = p.lse[row + q];
            l = l == -INFINITY ? INFINITY : l * kLog2e;
            dl = bp.delta[row + q];
          }
          lse_s[s * kBwdBM + i] = l;
          delta_s[s * kBwdBM + i] = dl;
        }
        mbar_arrive(bar_ld(s));
      }
    } else if (warp >= 2) {
      // warps 2-3: Kb once, then Qb of each stage (bf16, for dK = dS^T Qb and dQ = dS Kb). Qb[s]
      // is free again when the Q tile of stage s arrives: the copy was issued after the
      // consumers' empty arrival, which follows their last read of Qb[s]. At hd128 the Q tile
      // arrived after warpgroup 0's dQ of two iterations before had left Q[s] as well (the bulk
      // copy followed the stage's release); the wait on bar_dqw(s), complete by then, states
      // that order between the threads directly.
      const int t2 = tid - 64;
      mbar_wait(bar_kv, 0);
      convert_f16_bf16(sK, sKb, SM::kKVTile, t2, 64);
      for (int it = 0; it < iters; ++it) {
        const int s = it % kBwdStages;
        mbar_wait(bar_qdo(s), (it / kBwdStages) & 1);
        if (D == 128 && it >= kBwdStages) mbar_wait(bar_dqw(s), ((it / kBwdStages) - 1) & 1);
        convert_f16_bf16(sQ + s * SM::kQTile, sQb + s * SM::kQTile, SM::kQTile, t2, 64);
        fence_proxy_async();
        mbar_arrive(bar_qb(s));
      }
    }
    return;
  }

  // ---- consumers: warpgroup cw owns keys kw0 .. kw0 + 63 ----
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
  const int cw = wg - 1;
  const int warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int kw0 = k0 + cw * 64;
  const float sl2 = p.scale * kLog2e;
  const int64_t qstride = int64_t(p.H) * D;
  // Packed rows and windows: one past the last query that sees each of this thread's two keys,
  // and the earliest such end over the warpgroup's keys (its first key's): a tile of queries
  // before it, past the diagonal, sees every key of the warpgroup.
  int kend[2] = {S, S}, kend_wg = S;
  if (kBounded) {
#pragma unroll
    for (int r = 0; r < 2; ++r) kend[r] = key_end(p, b, min(kw0 + 16 * warp + g + 8 * r, S - 1));
    kend_wg = key_end(p, b, min(kw0, S - 1));
  }

  float dv[D / 2], dk[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) dv[i] = dk[i] = 0.f;

  mbar_wait(bar_kv, 0);

  // this warpgroup's 64 rows of K and V in every panel
  const uint32_t kA = sK + cw * 64 * 128, vA = sV + cw * 64 * 128;
  // the products' operand descriptors, made once and advanced by adds (desc_add): K-major for
  // S^T / dP^T, MN-major for dV / dK / dQ; stage and buffer 0 (the others kQTile / kDsBytes on)
  const uint64_t dK = sw128_desc(kA, 16, 1024), dV = sw128_desc(vA, 16, 1024);
  const uint64_t dQk = sw128_desc(sQ, 16, 1024), dDOk = sw128_desc(sDO, 16, 1024);
  const uint64_t dDOm = sw128_desc(sDO, kQPanelBytes, 1024);
  const uint64_t dQbm = sw128_desc(sQb, kQPanelBytes, 1024);
  const uint64_t dDSm = sw128_desc(sDS, kQPanelBytes, 1024);
  const uint64_t dKbm = sw128_desc(sKb, kPanelBytes, 1024);

  int pending = -1;  // hd128: the stage whose dQ reduce-add this thread issued last
  for (int it = 0; it < iters; ++it) {
    const int s = it % kBwdStages;
    const uint32_t par = (it / kBwdStages) & 1;
    const int hh = head_of(it), qt = query_of(it);
    const uint32_t q_s = sQ + s * SM::kQTile, ds = sDS + (it & 1) * kDsBytes;

    mbar_wait(bar_qdo(s), par);
    LORA4J_BPROBE(it, cw, kBwdProbeQdo);

    // S^T = K_w Q^T and dP^T = V_w dO^T over D in steps of 16 (32 bytes of a swizzled row)
    // zeroed although the first product overwrites them: left undefined, ptxas serializes the
    // wgmma here for want of registers (C7511) when no conversion precedes it
    float st[32], dpt[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) st[i] = dpt[i] = 0.f;
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t oa = (kk / 4) * kPanelBytes + (kk % 4) * 32;
      const uint32_t ob = (kk / 4) * kQPanelBytes + (kk % 4) * 32;
      wgmma_ss_f16_n64(st, desc_add(dK, oa), desc_add(dQk, s * SM::kQTile + ob), kk > 0);
    }
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t oa = (kk / 4) * kPanelBytes + (kk % 4) * 32;
      const uint32_t ob = (kk / 4) * kQPanelBytes + (kk % 4) * 32;
      wgmma_ss_bf16_n64(dpt, desc_add(dV, oa), desc_add(dDOk, s * SM::kQTile + ob), kk > 0);
    }
    wgmma_commit();
    if (D == 128 && pending >= 0) {
      // the previous iteration's dQ has left its stage by now, as a rule: release the stage
      bulk_wait_read0();
      mbar_arrive(bar_empty(pending));
      pending = -1;
    }
    mbar_wait(bar_ld(s), par);
    wgmma_wait0();
    fence_regs(st);
    fence_regs(dpt);
    LORA4J_BPROBE(it, cw, kBwdProbeS);

    // P^T and dS^T. Accumulator layout: element i is key row 16 warp + g + 8 ((i >> 1) & 1) of
    // the warpgroup, query column 8 (i >> 2) + 2 t4 + (i & 1) of the tile. Only a tile with a
    // key above its first query, or in packed rows a query past a key's segment, takes the mask.
    const float* lse2 = lse_s + s * kBwdBM;
    const float* dlt = delta_s + s * kBwdBM;
    // (a key whose segment ends at S bounds nothing: queries past S have lse +inf, so P = 0)
    if (kw0 + 63 <= qt && (!kBounded || kend_wg >= S || qt + kBwdBM <= kend_wg)) {
#pragma unroll
      for (int i = 0; i < 32; ++i) {
        const int c = 8 * (i >> 2) + 2 * t4 + (i & 1);
        const float pv = ex2_ftz(fmaf(st[i], sl2, -lse2[c]));
        st[i] = pv;
        dpt[i] = pv * (dpt[i] - dlt[c]);
      }
    } else {
#pragma unroll
      for (int i = 0; i < 32; ++i) {
        const int c = 8 * (i >> 2) + 2 * t4 + (i & 1);
        const int key = kw0 + 16 * warp + g + 8 * ((i >> 1) & 1);
        const bool ok = key <= qt + c && (!kBounded || qt + c < kend[(i >> 1) & 1]);
        const float pv = ok ? ex2_ftz(fmaf(st[i], sl2, -lse2[c])) : 0.f;
        st[i] = pv;
        dpt[i] = pv * (dpt[i] - dlt[c]);
      }
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(bar_ldfree(s));  // this warp's last read of lse / delta[s]
    // A fragments (16-query step kk takes n8 blocks 2 kk and 2 kk + 1)
    uint32_t pa[4][4], da[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        pa[kk][e] = pack_bf16(st[8 * kk + 2 * e], st[8 * kk + 2 * e + 1]);
        da[kk][e] = pack_bf16(dpt[8 * kk + 2 * e], dpt[8 * kk + 2 * e + 1]);
      }
      // dS^T into shared memory: key row kr (of 128), queries 8 j + 2 t4 and + 1 in 16-byte chunk
      // j, stored at chunk j ^ (kr % 8) as the copy engine's 128-byte swizzle places it
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int kr = cw * 64 + 16 * warp + g + 8 * h;
        sts32(ds + kr * 128 + ((j ^ (kr & 7)) << 4) + 4 * t4, da[j >> 1][2 * (j & 1) + h]);
      }
    fence_proxy_async();
    LORA4J_BPROBE(it, cw, kBwdProbeDs);
    consumers_sync();           // dS^T of both warpgroups is complete
    mbar_wait(bar_qb(s), par);  // Qb[s] (and, the first time, Kb) written by warps 2-3
    LORA4J_BPROBE(it, cw, kBwdProbeSync);

    // dV += P^T dO, dK += dS^T Qb (B MN-major: 16 queries = two 1024-byte atoms per step, N = D
    // over D/64 panels), dQ part = dS Kb (A = dS^T read MN-major)
    float dq[32];
    fence_regs(dv);
    fence_regs(dk);
    wgmma_fence();
    if constexpr (D == 128) {
      // dQ first, in a commit group of its own, so that its staging and reduce-add run while
      // dV and dK are on the tensor cores
#pragma unroll
      for (int kk = 0; kk < kBwdBN / 16; ++kk)
        wgmma_ss_bf16_n64_mn(dq, desc_add(dDSm, (it & 1) * kDsBytes + kk * 2048),
                             desc_add(dKbm, cw * kPanelBytes + kk * 2048), kk > 0);
      wgmma_commit();
    }
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
      wgmma_pv<D>(dv, pa[kk], desc_add(dDOm, s * SM::kQTile + kk * 2048));
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
      wgmma_pv<D>(dk, da[kk], desc_add(dQbm, s * SM::kQTile + kk * 2048));
    if constexpr (D == 128) {
      wgmma_commit();
      wgmma_wait1();  // dQ complete; dV and dK may still run
      fence_regs(dq);
      LORA4J_BPROBE(it, cw, kBwdProbeG2);
      // Warpgroup 0 stages its dQ in Q[s] (dead: both warpgroups' S^T and the bf16 copy were
      // complete at the dS barrier), warpgroup 1 in this iteration's dS^T buffer, dead once both
      // warpgroups' dQ products, its only readers, are complete: warpgroup 1 waits for warpgroup
      // 0's. (The next write of that buffer, two iterations on, follows the reduce-add's read:
      // its issuing thread waits for it in the next iteration, before the dS barrier there.)
      if (cw == 0)
        consumers_arrive_2();
      else
        consumers_sync_2();
      // dQ * scale, fp32, as two boxes [64 queries][32 columns]: query row 16 warp + g + 8 r
      const uint32_t stage = cw == 0 ? q_s : ds;
#pragma unroll
      for (int r = 0; r < 2; ++r)
        sts_acc_f32_sw128<true>(stage + (16 * warp + g + 8 * r) * 128, dq, r, p.scale, g, t4);
      fence_proxy_async();
      if (cw == 0) {
        __syncwarp();
        if (lane == 0) mbar_arrive(bar_dqw(s));
      }
      warpgroup_sync(cw);
      if (tid == 0) {
        tma_reduce_add_4d(&prm.tdq, stage, cw * 64, hh, qt, b);
        tma_reduce_add_4d(&prm.tdq, stage + 8192, cw * 64 + 32, hh, qt, b);
        bulk_commit();
        pending = s;
      }
      wgmma_wait0();  // dV and dK complete (the stage is released after the reduce-add's read)
      fence_regs(dv);
      fence_regs(dk);
      LORA4J_BPROBE(it, cw, kBwdProbeIt);
    } else {
#pragma unroll
      for (int kk = 0; kk < 4; ++kk)
        wgmma_ss_bf16_n64_mn(dq, desc_add(dDSm, (it & 1) * kDsBytes + cw * 8192 + kk * 2048),
                             desc_add(dKbm, cw * 8192 + kk * 2048), kk > 0);
      wgmma_commit();
      wgmma_wait0();
      fence_regs(dv);
      fence_regs(dk);
      fence_regs(dq);
      LORA4J_BPROBE(it, cw, kBwdProbeG2);
      __syncwarp();
      if (lane == 0) mbar_arrive(bar_empty(s));

        // hd64: dQ * scale into the fp32 accumulator with atomics: query row 16 warp + g + 8 r,
        // column 8 j + 2 t4
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int q = qt + 16 * warp + g + 8 * r;
        if (q >= S) continue;
        float* dst = bp.dq_accum + (int64_t(b) * S + q) * qstride + int64_t(hh) * D + 2 * t4;
#pragma unroll
        for (int j = 0; j < 8; ++j)
          atomicAdd(reinterpret_cast<float2*>(dst + 8 * j),
                    make_float2(dq[4 * j + 2 * r] * p.scale, dq[4 * j + 2 * r + 1] * p.scale));
      }
    }
  }

  if (D == 128 && pending >= 0) bulk_wait0();  // the last dQ added before the block ends

    // dK (scaled) and dV of this warpgroup's keys
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int key = kw0 + 16 * warp + g + 8 * r;
    if (key >= S) continue;
    const int64_t row = bp.dkv_ld ? (int64_t(b) * S + key) * bp.dkv_ld + int64_t(kvh) * D
                                  : int64_t(b) * p.kv_bstride + (int64_t(key) * p.KH + kvh) * D;
    bf16* dkr = bp.dk + row;
    bf16* dvr = bp.dv + row;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      *reinterpret_cast<__nv_bfloat162*>(dkr + 8 * j + 2 * t4) =
          __floats2bfloat162_rn(dk[4 * j + 2 * r] * p.scale, dk[4 * j + 2 * r + 1] * p.scale);
      *reinterpret_cast<__nv_bfloat162*>(dvr + 8 * j + 2 * t4) =
          __floats2bfloat162_rn(dv[4 * j + 2 * r], dv[4 * j + 2 * r + 1]);
    }
  }
#ifdef LORA4J_ATTN_BWD_PROBE
  if (tid == 0) LORA4J_BMETA(cw == 0 ? kBwdMetaEnd0 : kBwdMetaEnd1, probe_now());
#endif
#endif  // LORA4J_SM90A_DEVICE
}

// ---- host side ----------------------------------------------------------------------------

// {D, heads, rows, batch} of 16-bit values, box {64, 1, box_rows, 1}, 128-byte swizzle; rows
// past the tensor read as zeros.
bool make_map(CUtensorMap* m, CUtensorMapDataType type, const void* ptr, int D, int heads, int rows,
              int batch, int64_t bstride, unsigned box_rows = 128) {
  const cuuint64_t dims[4] = {cuuint64_t(D), cuuint64_t(heads), cuuint64_t(rows),
                              cuuint64_t(batch)};
  const cuuint64_t strides[3] = {cuuint64_t(D) * 2, cuuint64_t(heads) * D * 2,
                                 cuuint64_t(bstride) * 2};
  const cuuint32_t box[4] = {64, 1, box_rows, 1};
  const cuuint32_t estr[4] = {1, 1, 1, 1};
  return encode_tiled()(m, type, 4, const_cast<void*>(ptr), dims, strides, box, estr,
                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                        CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// An fp32 [B, S, H, D] tensor (batch stride bstride elements) as {D, H, S, B}, box
// {32, 1, 64, 1}: one 128-byte row of 32 columns per query, 128-byte swizzle (the bulk
// reduce-add of the hd128 backward's dq_accum, the forward's staged fp32 output)
bool make_f32_map(CUtensorMap* m, float* ptr, int D, int H, int S, int B, int64_t bstride) {
  const cuuint64_t dims[4] = {cuuint64_t(D), cuuint64_t(H), cuuint64_t(S), cuuint64_t(B)};
  const cuuint64_t strides[3] = {cuuint64_t(D) * 4, cuuint64_t(H) * D * 4, cuuint64_t(bstride) * 4};
  const cuuint32_t box[4] = {32, 1, 64, 1};
  const cuuint32_t estr[4] = {1, 1, 1, 1};
  return encode_tiled()(m, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, ptr, dims, strides, box, estr,
                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                        CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                        CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Whether a call needs the kernels' bounds (kBounded): packed segments as runs, or a window that
// cuts a pair (q - k >= window for some causal pair; the farthest is q_offset + Sq - 1 apart). A
// window that cuts nothing is dropped from the kernel's copy of the parameters.
bool bounded(AttentionParams* p) {
  if (p->window > 0 && int64_t(p->window) >= int64_t(p->q_offset) + p->Sq) p->window = 0;
  return p->seg_start != nullptr || p->window > 0;
}

// Sets the kernel's dynamic shared memory and launches it, kThreads threads a block.
template <class Prm>
cudaError_t launch_kernel(void (*kernel)(Prm), int smem, dim3 grid, const Prm& prm,
                          cudaStream_t s) {
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  kernel<<<grid, kThreads, smem, s>>>(prm);
  return cudaGetLastError();
}

bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, value) == 0;
}
// Switches of the forward, read once, each to time a choice against the default in one process:
// LORA4J_ATTN_HALF_TILE=0, every last key tile computed whole (whole_last_tile);
// LORA4J_ATTN_TMA_STORE=0, the output written from registers (not staged);
// LORA4J_ATTN_FWD_ORDER=grouped, the blocks (row, head) after (row, head), not longest first
// over all; LORA4J_ATTN_FWD_PERSIST=0, one block per query block (not the persistent form).
struct FwdSwitches {
  bool half_tile_off = env_is("LORA4J_ATTN_HALF_TILE", "0");
  bool tma_store_off = env_is("LORA4J_ATTN_TMA_STORE", "0");
  bool grouped = env_is("LORA4J_ATTN_FWD_ORDER", "grouped");
  bool persist_off = env_is("LORA4J_ATTN_FWD_PERSIST", "0");
};
const FwdSwitches& fwd_switches() {
  static const FwdSwitches sw;
  return sw;
}

template <int D>
cudaError_t launch_sm90(const AttentionParams& p, cudaStream_t s) {
  Sm90Params prm;
  std::memset(&prm, 0, sizeof prm);
  prm.p = p;
  const FwdSwitches& sw = fwd_switches();
  prm.p.whole_last_tile = p.whole_last_tile || sw.half_tile_off;
  const bool bnd = bounded(&prm.p);
  if (!make_map(&prm.tq, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, p.q, D, p.H, p.Sq, p.B, p.q_bstride) ||
      !make_map(&prm.tk, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, p.k, D, p.KH, p.Sk, p.B, p.kv_bstride) ||
      !make_map(&prm.tv, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, p.v, D, p.KH, p.Sk, p.B, p.kv_bstride))
    return cudaErrorInvalidValue;
  // staged when the output (and its fp32 copy) are 16-byte aligned, as the copy engine needs
  prm.staged = !p.direct_store && !sw.tma_store_off && aligned16(p.o) &&
               (!p.o_f32 || aligned16(p.o_f32)) &&
               make_map(&prm.to, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, p.o, D, p.H, p.Sq, p.B,
                        p.q_bstride, 64) &&
               (!p.o_f32 || make_f32_map(&prm.to32, p.o_f32, D, p.H, p.Sq, p.B, p.q_bstride));
  prm.lpt = !sw.grouped;
  const int64_t blocks = (int64_t(p.Sq) + kBM - 1) / kBM * p.H * p.B;
  if (blocks > int64_t(INT32_MAX)) return cudaErrorInvalidValue;
  // The persistent form (hd128; not with the fp32 copy, which it has no room to stage): by
  // default one block per SM when the query blocks outnumber the SMs; fwd_grid > 0 asks for that
  // many blocks, -1 (or LORA4J_ATTN_FWD_PERSIST=0) for one block per query block.
  int64_t grid = blocks;
#ifndef LORA4J_ATTN_FWD_PROBE  // the probe program times blocks, one per query block
  if (D == 128 && !p.o_f32 && p.fwd_grid >= 0 && !sw.persist_off) {
    int sms = 0;
    if (p.fwd_grid == 0) {
      const cudaError_t e = current_sm_count(&sms);
      if (e != cudaSuccess) return e;
    }
    const int64_t want = p.fwd_grid > 0 ? p.fwd_grid : sms;
    if (want > 0 && want < blocks) grid = want;
  }
#endif
  if (grid < blocks)
    return launch_kernel(
        bnd ? attn_fwd_sm90_kernel<D, true, true> : attn_fwd_sm90_kernel<D, false, true>,
        Sm90Smem<D, 2>::kAlloc, dim3(unsigned(grid)), prm, s);
  return launch_kernel(bnd ? attn_fwd_sm90_kernel<D, true> : attn_fwd_sm90_kernel<D, false>,
                       Sm90Smem<D>::kAlloc, dim3(unsigned(blocks)), prm, s);
}

template <int D>
cudaError_t launch_bwd_sm90(const AttentionBackwardParams& bp, cudaStream_t s) {
  const AttentionParams& p = bp.f;
  Sm90BwdParams prm;
  std::memset(&prm, 0, sizeof prm);
  prm.p = bp;
  const bool bnd = bounded(&prm.p.f);
  if (!make_map(&prm.tq, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, p.q, D, p.H, p.Sq, p.B, p.q_bstride,
                kBwdBM) ||
      !make_map(&prm.tdo, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, bp.dout, D, p.H, p.Sq, p.B, p.q_bstride,
                kBwdBM) ||
      !make_map(&prm.tk, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, p.k, D, p.KH, p.Sk, p.B, p.kv_bstride) ||
      !make_map(&prm.tv, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, p.v, D, p.KH, p.Sk, p.B, p.kv_bstride) ||
      (D == 128 &&
       !make_f32_map(&prm.tdq, bp.dq_accum, D, p.H, p.Sq, p.B, int64_t(p.Sq) * p.H * D)))
    return cudaErrorInvalidValue;
  const unsigned grid = unsigned((p.Sk + kBwdBN - 1) / kBwdBN) * unsigned(p.KH) * unsigned(p.B);
  return launch_kernel(bnd ? attn_bwd_sm90_kernel<D, true> : attn_bwd_sm90_kernel<D, false>,
                       Sm90BwdSmem<D>::kAlloc, dim3(grid), prm, s);
}

// Whether the current device runs this file's sm_90a image: compute capability 9.0 and a
// loadable image of the kernel (the file is built for sm_90a only, so other devices have none).
bool device_ok() {
  static std::atomic<int> state[64];  // per device: 0 unknown, 1 yes, 2 no
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) {
    cudaGetLastError();
    return false;
  }
  int st = state[dev].load(std::memory_order_relaxed);
  if (st == 0) {
    int major = 0, minor = 0;
    bool ok =
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess &&
        major == 9 && minor == 0;
    cudaFuncAttributes a;
    ok = ok && cudaFuncGetAttributes(&a, attn_fwd_sm90_kernel<128, false>) == cudaSuccess &&
         encode_tiled() != nullptr;
    cudaGetLastError();  // a missing image is an answer here, not an error of the caller's
    st = ok ? 1 : 2;
    state[dev].store(st, std::memory_order_relaxed);
  }
  return st == 1;
}

}  // namespace

bool attention_sm90_device() { return device_ok(); }

bool attention_sm90_accepts(const AttentionParams& p) {
  return (p.D == 64 || p.D == 128) && !p.key_mask && (!p.segments || (p.seg_start && p.seg_end)) &&
         p.B > 0 && p.Sq > 0 && p.Sk > 0 && p.q_offset >= 0 && p.KH > 0 && p.H % p.KH == 0 &&
         aligned16(p.q) && aligned16(p.k) && aligned16(p.v) && p.q_bstride % 8 == 0 &&
         p.kv_bstride % 8 == 0 && device_ok();
}

cudaError_t attention_forward_sm90(const AttentionParams& p, cudaStream_t s) {
  if (!attention_sm90_accepts(p)) return cudaErrorNotSupported;
  return p.D == 128 ? launch_sm90<128>(p, s) : launch_sm90<64>(p, s);
}

bool attention_sm90_backward_accepts(const AttentionBackwardParams& bp) {
  const AttentionParams& p = bp.f;
  auto aligned = [](const void* q, uintptr_t a) {
    return (reinterpret_cast<uintptr_t>(q) & (a - 1)) == 0;
  };
  return p.q_offset == 0 && p.Sq == p.Sk &&
         (int64_t(p.Sk) + kBwdBN - 1) / kBwdBN * p.KH * p.B <= int64_t(INT32_MAX) &&  // 1-d grid
         bp.dout && bp.dq_accum && bp.dk && bp.dv && p.lse && bp.delta && aligned16(bp.dout) &&
         aligned(bp.dq_accum, p.D == 128 ? 16 : 8) && aligned(bp.dk, 4) && aligned(bp.dv, 4) &&
         p.kv_bstride % 2 == 0 && bp.dkv_ld % 2 == 0 && attention_sm90_accepts(p);
}

cudaError_t attention_backward_sm90(const AttentionBackwardParams& bp, cudaStream_t s) {
  if (!attention_sm90_backward_accepts(bp)) return cudaErrorNotSupported;
  return bp.f.D == 128 ? launch_bwd_sm90<128>(bp, s) : launch_bwd_sm90<64>(bp, s);
}

}  // namespace cuda
}  // namespace lora4j
