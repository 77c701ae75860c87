// Tensor-core building blocks shared by the kernels that run mma.sync (flash attention, and
// the fused NF4 GEMM of the single-op benchmarks): bf16 packing, cp.async copies, ldmatrix loads
// of A and B operands from shared tiles, and the m16n8k16 MMAs with fp32 accumulators (sm_80 and
// later).
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace lora4j {
namespace cuda {

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
template <class T>
__device__ __forceinline__ uint32_t ld32(const T* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

// 16-byte global -> shared copy that bypasses registers; src_bytes 0 writes zeros.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(a), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Eight fp16 values (one 16-byte chunk) as eight bf16 values.
__device__ __forceinline__ uint4 f16x8_to_bf16x8(uint4 v) {
  const uint32_t* w = reinterpret_cast<const uint32_t*>(&v);
  uint4 out;
  uint32_t* o = reinterpret_cast<uint32_t*>(&out);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
    o[i] = pack_bf16(f.x, f.y);
  }
  return out;
}

// Four 8x8 16-bit matrices from shared memory, transposed: lane l supplies the address of row
// (l & 7) of matrix (l >> 3); register i of each lane receives its share of matrix i.
template <class T>
__device__ __forceinline__ void ldsm_x4_t(uint32_t* r, const T* addr) {
  uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(addr));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
template <class T>
__device__ __forceinline__ void ldsm_x4(uint32_t* r, const T* addr) {
  uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(addr));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
// A operand (m16 x k16) from a row-major [m][k] shared tile: rows m0.., columns k0...
template <class T>
__device__ __forceinline__ void ldsm_a(uint32_t* r, const T* tile, int ld, int m0, int k0,
                                       int lane) {
  ldsm_x4(r, tile + (m0 + (lane & 7) + ((lane >> 3) & 1) * 8) * ld + k0 + (lane >> 4) * 8);
}
// A operand (m16 x k16) of X^T from a row-major [k][m] shared tile X: rows m0.. of X^T are
// columns m0.. of X (the attention backward's dS^T, the LoRA backward's dy^T)
template <class T>
__device__ __forceinline__ void ldsm_at(uint32_t* r, const T* tile, int ld, int m0, int k0,
                                        int lane) {
  ldsm_x4_t(r, tile + (k0 + (lane & 7) + (lane >> 4) * 8) * ld + m0 + ((lane >> 3) & 1) * 8);
}
// B operands (k16 x n8) of two adjacent n-tiles n0 and n0 + 8 from a [n][k] shared tile (each
// row n holds its k values contiguously, as K rows do for S = Q K^T):
// r = {b0(n0), b1(n0), b0(n0 + 8), b1(n0 + 8)}.
template <class T>
__device__ __forceinline__ void ldsm_bt_pair(uint32_t* r, const T* tile, int ld, int n0, int k0,
                                             int lane) {
  ldsm_x4(r, tile + (n0 + (lane & 7) + (lane >> 4) * 8) * ld + k0 + ((lane >> 3) & 1) * 8);
}

// B operands (k16 x n8) of two adjacent n-tiles, n0 and n0 + 8, from a row-major [k][n]
// shared tile (row stride ld): r = {b0(n0), b1(n0), b0(n0 + 8), b1(n0 + 8)}.
template <class T>
__device__ __forceinline__ void ldsm_b_pair(uint32_t* r, const T* tile, int ld, int k0, int n0,
                                            int lane) {
  ldsm_x4_t(r, tile + (k0 + (lane & 15)) * ld + n0 + (lane >> 4) * 8);
}

// d[4] += a[4] * b[2]  (m16n8k16, row.col, bf16 -> fp32)
__device__ __forceinline__ void mma16816(float* d, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// d[4] += a[4] * b[2]  (m16n8k16, row.col, fp16 -> fp32): the scores
__device__ __forceinline__ void mma16816_f16(float* d, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

}  // namespace cuda
}  // namespace lora4j
