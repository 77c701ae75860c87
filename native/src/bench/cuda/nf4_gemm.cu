/*
 * The fused NF4 GEMM of the single-op benchmarks (frozen_linear_fwd / _bwd, variant nf4-fused):
 * the frozen projection's GEMM reading the 4-bit weight directly, dequantizing it in the
 * operand path instead of into a bf16 scratch buffer first (the engine's way, variant
 * nf4-scratch). Both directions of the engine's frozen GEMMs:
 *     forward         y[n, out]  = x[n, in] W^T      (y bf16)
 *     input gradient  dx[n, in]  = dy[n, out] W      (dx fp32)
 * with W [out, in] in NF4 (bitsandbytes' layout, Nf4Params). Written as C[M, N] = A[M, K] B^T
 * where B(n, k) is W[n][k] in the forward (K = in) and W[k][n] in the input gradient (K = out).
 *
 * A block computes a 128 x 128 tile of C with 8 warps (2 x 4, 64 x 32 each) on mma.sync
 * m16n8k16 (bf16 operands, fp32 accumulators), stepping over K 32 at a time. Per step the A
 * tile is copied to shared memory and the B tile is dequantized into it as bf16 [n][k] (each
 * thread turns 4 code bytes into 8 weights with the engine's rounding, nf4.cuh, so the operand
 * is exactly the bf16 weight nf4_dequantize writes); the input gradient's B tile is read along
 * n and kept [k][n], its fragments loaded with ldmatrix.trans. Two shared stages: the next
 * step's A chunks and code bytes are loaded into registers before this step's MMAs and stored
 * (dequantized) after them. Edges (M, N, K not multiples of the tile, rows not a multiple of 8
 * elements) take a per-element path with zeros outside the matrix.
 *
 * The cost it trades: the scratch path reads 0.5 and writes 2 bytes per weight element once per
 * GEMM, then the GEMM reads the 2 bytes; the fused path reads 0.5 byte per element but
 * dequantizes every B tile once per 128 rows of A (M / 128 times per GEMM), in the SM's
 * integer and FP32 pipes beside the tensor cores.
 */
#include "bench/cuda/bench_baselines.h"
#include "cuda/kernels/common.cuh"
#include "cuda/kernels/mma.cuh"
#include "cuda/kernels/nf4.cuh"

namespace lora4j {
namespace cuda {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 32, kThreads = 256;
// Row strides of the shared tiles, padded so that ldmatrix's eight row addresses fall in
// distinct banks: A and the forward's B are [128][kLds] (k contiguous), the input gradient's B
// is [32][kLdb] (n contiguous, read with ldmatrix.trans).
constexpr int kLds = kBK + 8, kLdb = kBN + 8;
static_assert(kBK * kLdb <= kBN * kLds, "one B buffer holds either layout");

// One K step of one block: the raw global data of its A tile and B codes, held in registers
// between the load (before the MMAs of the previous step) and the store to shared memory.
struct Stage {
  uint4 a[2];         // two 8-element chunks of A
  uint32_t codes[2];  // two groups of 8 codes (fast path)
  bool a_fast[2], b_fast[2];
};

template <bool kTrans>
struct Tile {
  const Nf4Params& w;
  const bf16* A;
  int M, N, K;
  int m0, n0;
  const float* table;   // shared
  const float* nested;  // shared
  bool rows8;           // K % 8 == 0 (A rows) and W's rows (length K forward, N backward) too
  bool w8;

  // B(n, k) as a flat index into W.
  __device__ int64_t flat(int n, int k) const {
    return kTrans ? int64_t(k) * N + n : int64_t(n) * K + k;
  }
  __device__ bf16 b_elem(int n, int k) const {
    if (n >= N || k >= K) return __float2bfloat16_rn(0.f);
    const int64_t i = flat(n, k);
    const uint8_t byte = w.codes[i >> 1];
    const int code = (i & 1) ? (byte & 0x0F) : (byte >> 4);
    return nf4_value(w, table, code, nf4_scale(w, nested, i / w.blocksize));
  }

  // chunk c (0..511) of the A tile: row c / 4, columns (c % 4) * 8 ..+8.
  // chunk c of the B tile: forward row n = c / 4, k = (c % 4) * 8 ..+8 (contiguous in W);
  // input gradient k = c / 16, n = (c % 16) * 8 ..+8 (contiguous in W).
  __device__ void load(Stage& s, int k0, int tid) const {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int c = tid + j * kThreads;
      const int gm = m0 + c / 4, gk = k0 + (c % 4) * 8;
      s.a_fast[j] = rows8 && gm < M && gk + 8 <= K;
      if (s.a_fast[j]) s.a[j] = *reinterpret_cast<const uint4*>(A + int64_t(gm) * K + gk);
      int n, k;
      if (kTrans) {
        k = k0 + c / 16;
        n = n0 + (c % 16) * 8;
        s.b_fast[j] = w8 && k < K && n + 8 <= N;
      } else {
        n = n0 + c / 4;
        k = k0 + (c % 4) * 8;
        s.b_fast[j] = w8 && n < N && k + 8 <= K;
      }
      if (s.b_fast[j]) s.codes[j] = *reinterpret_cast<const uint32_t*>(w.codes + flat(n, k) / 2);
    }
  }

  __device__ void store(const Stage& s, int k0, int tid, bf16* As, bf16* Bs) const {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int c = tid + j * kThreads;
      const int r = c / 4, kc = (c % 4) * 8;
      if (s.a_fast[j]) {
        *reinterpret_cast<uint4*>(As + r * kLds + kc) = s.a[j];
      } else {
        const int gm = m0 + r;
        for (int e = 0; e < 8; ++e) {
          const int gk = k0 + kc + e;
          As[r * kLds + kc + e] =
              gm < M && gk < K ? A[int64_t(gm) * K + gk] : __float2bfloat16_rn(0.f);
        }
      }
      // B: 8 weights starting at (n, k) along W's rows
      const int ln = kTrans ? (c % 16) * 8 : c / 4;
      const int lk = kTrans ? c / 16 : (c % 4) * 8;
      __align__(16) bf16 v[8];
      if (s.b_fast[j]) {
        const int64_t i0 = flat(n0 + ln, k0 + lk);
        const float scale = nf4_scale(w, nested, i0 / w.blocksize);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const uint32_t byte = (s.codes[j] >> (8 * e)) & 0xFFu;
          v[2 * e] = nf4_value(w, table, int(byte >> 4), scale);
          v[2 * e + 1] = nf4_value(w, table, int(byte & 0x0Fu), scale);
        }
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e)
          v[e] = kTrans ? b_elem(n0 + ln + e, k0 + lk) : b_elem(n0 + ln, k0 + lk + e);
      }
      bf16* dst = kTrans ? Bs + lk * kLdb + ln : Bs + ln * kLds + lk;
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(v);
    }
  }
};

template <bool kTrans>
__global__ void __launch_bounds__(kThreads, 2)
    nf4_gemm_kernel(Nf4Params w, const bf16* A, bf16* c_bf16, float* c_f32, int M, int N, int K) {
  __shared__ __align__(16) bf16 As[2][kBM * kLds];
  __shared__ __align__(16) bf16 Bs[2][kBN * kLds];
  __shared__ float table[16];
  __shared__ float nested[256];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int i = tid; i < 16; i += kThreads) table[i] = w.code_table[i];
  if (!w.absmax)
    for (int i = tid; i < 256; i += kThreads) nested[i] = w.nested_table[i];
  __syncthreads();

  const int rowlen = kTrans ? N : K;  // W's row length
  Tile<kTrans> t{w,
                 A,
                 M,
                 N,
                 K,
                 int(blockIdx.y) * kBM,
                 int(blockIdx.x) * kBN,
                 table,
                 nested,
                 K % 8 == 0,
                 rowlen % 8 == 0 && w.blocksize % 8 == 0};
  const int wm = (warp % 2) * 64, wn = (warp / 2) * 32;
  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  Stage st;
  t.load(st, 0, tid);
  t.store(st, 0, tid, As[0], Bs[0]);
  __syncthreads();
  const int steps = (K + kBK - 1) / kBK;
  for (int s = 0; s < steps; ++s) {
    const int cur = s & 1;
    const bool next = s + 1 < steps;
    if (next) t.load(st, (s + 1) * kBK, tid);
#pragma unroll
    for (int ks = 0; ks < kBK; ks += 16) {
      uint32_t af[4][4], bfr[2][4];
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) ldsm_a(af[mt], As[cur], kLds, wm + mt * 16, ks, lane);
#pragma unroll
      for (int np = 0; np < 2; ++np) {
        if (kTrans)
          ldsm_b_pair(bfr[np], Bs[cur], kLdb, ks, wn + np * 16, lane);
        else
          ldsm_bt_pair(bfr[np], Bs[cur], kLds, wn + np * 16, ks, lane);
      }
#pragma unroll
      for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) mma16816(acc[mt][nt], af[mt], &bfr[nt / 2][(nt % 2) * 2]);
    }
    if (next) t.store(st, (s + 1) * kBK, tid, As[cur ^ 1], Bs[cur ^ 1]);
    __syncthreads();
  }

  // accumulator (m16n8): c0, c1 at row lane / 4, columns 2 (lane % 4) + {0, 1}; c2, c3 8 rows on
  const bool pairs = N % 2 == 0;
#pragma unroll
  for (int mt = 0; mt < 4; ++mt)
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int gm = t.m0 + wm + mt * 16 + lane / 4 + h * 8;
        const int gn = t.n0 + wn + nt * 8 + (lane % 4) * 2;
        if (gm >= M || gn >= N) continue;
        const float v0 = acc[mt][nt][2 * h], v1 = acc[mt][nt][2 * h + 1];
        const int64_t at = int64_t(gm) * N + gn;
        if (c_f32) {
          if (pairs) {
            *reinterpret_cast<float2*>(c_f32 + at) = make_float2(v0, v1);
          } else {
            c_f32[at] = v0;
            if (gn + 1 < N) c_f32[at + 1] = v1;
          }
        } else if (pairs) {
          *reinterpret_cast<__nv_bfloat162*>(c_bf16 + at) = __floats2bfloat162_rn(v0, v1);
        } else {
          c_bf16[at] = __float2bfloat16_rn(v0);
          if (gn + 1 < N) c_bf16[at + 1] = __float2bfloat16_rn(v1);
        }
      }
}

template <bool kTrans>
cudaError_t launch(const Nf4Params& w, const bf16* A, bf16* c_bf16, float* c_f32, int64_t M,
                   int64_t N, int64_t K, cudaStream_t s) {
  if (M <= 0 || N <= 0 || K <= 0) return cudaSuccess;
  if (M > (int64_t(1) << 30) || N > (int64_t(1) << 30) || K > (int64_t(1) << 30))
    return cudaErrorInvalidValue;
  if (reinterpret_cast<uintptr_t>(A) % 16 != 0 || reinterpret_cast<uintptr_t>(w.codes) % 4 != 0)
    return cudaErrorMisalignedAddress;
  dim3 grid(unsigned((N + kBN - 1) / kBN), unsigned((M + kBM - 1) / kBM));
  if (grid.y > 65535) return cudaErrorInvalidValue;
  nf4_gemm_kernel<kTrans><<<grid, kThreads, 0, s>>>(w, A, c_bf16, c_f32, int(M), int(N), int(K));
  return cudaGetLastError();
}

}  // namespace

cudaError_t nf4_gemm_forward(const Nf4Params& w, const bf16* x, bf16* y, int64_t n, int64_t in,
                             int64_t out, cudaStream_t s) {
  if (w.numel != in * out) return cudaErrorInvalidValue;
  return launch<false>(w, x, y, nullptr, n, out, in, s);
}

cudaError_t nf4_gemm_backward_input(const Nf4Params& w, const bf16* dy, float* dx, int64_t n,
                                    int64_t in, int64_t out, cudaStream_t s) {
  if (w.numel != in * out) return cudaErrorInvalidValue;
  return launch<true>(w, dy, nullptr, dx, n, in, out, s);
}

}  // namespace cuda
}  // namespace lora4j
