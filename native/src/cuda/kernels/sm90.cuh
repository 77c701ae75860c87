// Hopper (sm_90a) building blocks shared by the kernel files built for that target alone
// (attention_sm90.cu, swiglu_dx_sm90.cu): mbarriers, bulk tensor copies, warpgroup MMA fences,
// shared-memory matrix descriptors; and, host side, cuTensorMapEncodeTiled from the driver.
#pragma once
#include <cstdint>
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LORA4J_SM90A_DEVICE 1
#endif

namespace lora4j {
namespace cuda {
namespace sm90 {

#ifdef LORA4J_SM90A_DEVICE
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Waits until the barrier's phase with the given parity has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
// One box of a 4-d tensor map into shared memory, completing on bar.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                            int c0, int c1, int c2, int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3, %4, %5}], [%6];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_wait0() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_wait1() {
  asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
}
// One box of a 2-d tensor map into shared memory, completing on bar.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, uint32_t bar,
                                            int c0, int c1) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}
// Shared-memory matrix descriptor, 128-byte swizzle. K-major operands: sbo = 1024 (next 8 rows),
// lbo unused (1). MN-major operands: lbo = next 64-value panel, sbo = 1024 (next 8 rows of K).
__device__ __forceinline__ uint64_t sw128_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t((lbo & 0x3FFFF) >> 4) << 16) |
         (uint64_t((sbo & 0x3FFFF) >> 4) << 32) | (uint64_t(1) << 62);
}
// The descriptor of the operand `bytes` past the one d describes (sw128_desc): its start address
// field (bits 0-13, the address / 16) advanced in the low word alone. Shared memory addresses stay
// under 2^18, so the field never carries into the next one. One add where sw128_desc of the new
// address takes a mask, a shift and an or.
__device__ __forceinline__ uint64_t desc_add(uint64_t d, uint32_t bytes) {
  const uint32_t lo = uint32_t(d) + (bytes >> 4);
  return (d & 0xFFFFFFFF00000000ull) | lo;
}
// Ties accumulator registers to this point, so the compiler neither reads them before the
// wgmma wait nor writes them after the wgmma issue.
template <int N>
__device__ __forceinline__ void fence_regs(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
// 2^x on the special-function unit alone. exp2f's non-flushing form adds a range test and two
// multiplies around the same instruction for results under 2^-126; probabilities that small are
// flushed to zero here, far below what a bf16 P or an fp32 row sum can carry next to the row's
// largest term (1).
__device__ __forceinline__ float ex2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
// 16, 8 and 4 bytes of shared memory
__device__ __forceinline__ void sts64(uint32_t addr, float x, float y) {
  asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(addr), "f"(x), "f"(y) : "memory");
}
__device__ __forceinline__ uint4 lds128(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(addr));
  return v;
}
__device__ __forceinline__ void sts32(uint32_t addr, uint32_t v) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
}
// d[N / 2] += A (m64 x k16, bf16, K-major in shared memory) * B (k16 x nN, bf16, in shared
// memory; TB = 1: MN-major, 0: K-major), N = 128 or 192: the accumulator operands 32 at a time
// (D32(o): d[o] .. d[o + 31]), their places in the instruction 4 at a time (P4, P4L for the last
// four; P28_k: the first 28 of operands 32 k ..), the descriptors after them.
#define LORA4J_D4(o) "+f"(d[o]), "+f"(d[o + 1]), "+f"(d[o + 2]), "+f"(d[o + 3])
#define LORA4J_D32(o)                                                                     \
  LORA4J_D4(o), LORA4J_D4(o + 4), LORA4J_D4(o + 8), LORA4J_D4(o + 12), LORA4J_D4(o + 16), \
      LORA4J_D4(o + 20), LORA4J_D4(o + 24), LORA4J_D4(o + 28)
#define LORA4J_P4(a, b, c, e) "%" #a ", %" #b ", %" #c ", %" #e ", "
#define LORA4J_P4L(a, b, c, e) "%" #a ", %" #b ", %" #c ", %" #e
#define LORA4J_P28_0        \
  LORA4J_P4(0, 1, 2, 3)     \
  LORA4J_P4(4, 5, 6, 7)     \
  LORA4J_P4(8, 9, 10, 11)   \
  LORA4J_P4(12, 13, 14, 15) \
  LORA4J_P4(16, 17, 18, 19) LORA4J_P4(20, 21, 22, 23) LORA4J_P4(24, 25, 26, 27)
#define LORA4J_P28_1        \
  LORA4J_P4(32, 33, 34, 35) \
  LORA4J_P4(36, 37, 38, 39) \
  LORA4J_P4(40, 41, 42, 43) \
  LORA4J_P4(44, 45, 46, 47) \
  LORA4J_P4(48, 49, 50, 51) LORA4J_P4(52, 53, 54, 55) LORA4J_P4(56, 57, 58, 59)
#define LORA4J_P28_2        \
  LORA4J_P4(64, 65, 66, 67) \
  LORA4J_P4(68, 69, 70, 71) \
  LORA4J_P4(72, 73, 74, 75) \
  LORA4J_P4(76, 77, 78, 79) \
  LORA4J_P4(80, 81, 82, 83) LORA4J_P4(84, 85, 86, 87) LORA4J_P4(88, 89, 90, 91)
// N: the instruction's n; TB: B's transpose bit; PLACES: the accumulators' places ("%0, ...");
// DA, DB: the descriptors' places; D: the accumulator operands
#define LORA4J_WGMMA_BF16(N, TB, PLACES, DA, DB, ...)                                          \
  asm volatile(                                                                                \
      "{\n.reg .pred p;\nsetp.eq.u32 p, 1, 1;\n"                                               \
      "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32.bf16.bf16 {" PLACES "}, %" #DA ", %" #DB \
      ", p, 1, 1, 0, " #TB ";\n}\n"                                                            \
      : __VA_ARGS__                                                                            \
      : "l"(da), "l"(db))
#define LORA4J_PLACES_192                                                       \
  LORA4J_P28_0 LORA4J_P4(28, 29, 30, 31) LORA4J_P28_1 LORA4J_P4(60, 61, 62, 63) \
      LORA4J_P28_2 LORA4J_P4L(92, 93, 94, 95)
#define LORA4J_PLACES_128 \
  LORA4J_P28_0 LORA4J_P4(28, 29, 30, 31) LORA4J_P28_1 LORA4J_P4L(60, 61, 62, 63)
template <int N, int TB>
__device__ __forceinline__ void wgmma_bf16(float (&d)[N / 2], uint64_t da, uint64_t db);
template <>
__device__ __forceinline__ void wgmma_bf16<192, 1>(float (&d)[96], uint64_t da, uint64_t db) {
  LORA4J_WGMMA_BF16(192, 1, LORA4J_PLACES_192, 96, 97, LORA4J_D32(0), LORA4J_D32(32),
                    LORA4J_D32(64));
}
template <>
__device__ __forceinline__ void wgmma_bf16<192, 0>(float (&d)[96], uint64_t da, uint64_t db) {
  LORA4J_WGMMA_BF16(192, 0, LORA4J_PLACES_192, 96, 97, LORA4J_D32(0), LORA4J_D32(32),
                    LORA4J_D32(64));
}
template <>
__device__ __forceinline__ void wgmma_bf16<128, 1>(float (&d)[64], uint64_t da, uint64_t db) {
  LORA4J_WGMMA_BF16(128, 1, LORA4J_PLACES_128, 64, 65, LORA4J_D32(0), LORA4J_D32(32));
}
template <>
__device__ __forceinline__ void wgmma_bf16<128, 0>(float (&d)[64], uint64_t da, uint64_t db) {
  LORA4J_WGMMA_BF16(128, 0, LORA4J_PLACES_128, 64, 65, LORA4J_D32(0), LORA4J_D32(32));
}
// Tile t's first row and column (m0, n0) over mt x nt tiles of kBM x kBN, the row tiles rastered
// in groups of kGroup, rows fastest inside a group: a wave of blocks shares a group's A rows
// and a few B columns, which stay in L2.
template <int kGroup, int kBM, int kBN>
__device__ __forceinline__ void grouped_tile(int t, int mt, int nt, int& m0, int& n0) {
  const int per_group = kGroup * nt;
  const int grp = t / per_group, first_m = grp * kGroup;
  const int gm = min(mt - first_m, kGroup);
  const int in_grp = t - grp * per_group;
  m0 = (first_m + in_grp % gm) * kBM;
  n0 = (in_grp / gm) * kBN;
}
// A consumer warpgroup's main loop over ring blocks it .. end - 1 (it ends at end): wait for a
// block's stage (full(s)), issue its kK16 k16 steps (issue(s, kk)), commit, and once the
// previous block's products are done (wait depth 1) release that block's stage (release(s); not
// before the tile's first block, first). Returns with every product done; the caller fences its
// accumulators and releases the last block's stage.
template <int kStages, int kK16, class Full, class Issue, class Release>
__device__ __forceinline__ void ring_mma(int& it, int first, int end, Full full, Issue issue,
                                         Release release) {
  for (; it < end; ++it) {
    const int s = it % kStages;
    mbar_wait(full(s), (it / kStages) & 1);
    wgmma_fence();  // (no register fence here: the previous block's products may be in flight)
#pragma unroll
    for (int kk = 0; kk < kK16; ++kk) issue(s, kk);
    wgmma_commit();
    wgmma_wait1();  // the previous block's products are done: its stage may be refilled
    if (it > first) release((it - 1) % kStages);
  }
  wgmma_wait0();
}
#undef LORA4J_PLACES_128
#undef LORA4J_PLACES_192
#undef LORA4J_WGMMA_BF16
#undef LORA4J_P28_2
#undef LORA4J_P28_1
#undef LORA4J_P28_0
#undef LORA4J_P4L
#undef LORA4J_P4
#undef LORA4J_D32
#undef LORA4J_D4
#endif  // LORA4J_SM90A_DEVICE

using EncodeTiledFn = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*,
                                   const cuuint64_t*, const cuuint64_t*, const cuuint32_t*,
                                   const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                   CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

// cuTensorMapEncodeTiled from the driver through the runtime (no link against libcuda).
inline EncodeTiledFn encode_tiled() {
  static EncodeTiledFn fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault,
                                         &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      f = nullptr;
    }
    return reinterpret_cast<EncodeTiledFn>(f);
  }();
  return fn;
}

// A row-major bf16 matrix [rows][cols] (row stride ld) as a 2-d map {cols, rows}, box {64,
// box_rows} (128-byte rows, 128-byte swizzle); elements past the matrix read as zeros.
inline bool tmap_2d_sw128(CUtensorMap* m, const __nv_bfloat16* ptr, int64_t cols, int64_t rows,
                          int64_t ld, uint32_t box_rows) {
  const EncodeTiledFn encode = encode_tiled();
  if (!encode) return false;
  const cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(ld) * 2};
  const cuuint32_t box[2] = {64, box_rows};
  const cuuint32_t estr[2] = {1, 1};
  return encode(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<__nv_bfloat16*>(ptr), dims,
                strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The current device's SM count.
inline cudaError_t current_sm_count(int* sms) {
  int dev = 0;
  const cudaError_t e = cudaGetDevice(&dev);
  return e != cudaSuccess ? e : cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, dev);
}

// A persistent launch: one block of `threads` per SM (no more than `tiles`), with `smem` bytes of
// dynamic shared memory; the blocks walk the tiles themselves.
template <class Prm>
cudaError_t launch_persistent(void (*kernel)(Prm), int tiles, int threads, int smem, const Prm& prm,
                              cudaStream_t s) {
  cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  int sms = 0;
  if ((e = current_sm_count(&sms)) != cudaSuccess) return e;
  kernel<<<unsigned(tiles < sms ? tiles : sms), unsigned(threads), size_t(smem), s>>>(prm);
  return cudaGetLastError();
}

}  // namespace sm90
}  // namespace cuda
}  // namespace lora4j
