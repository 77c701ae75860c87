/*
 * RMSNorm over the last dimension d, as Hugging Face Mistral in fp32:
 *   forward   r = rsqrt(mean(x^2) + eps),  y = bf16(x * r * w)  (+ optional residue y_lo, in
 *             bf16, or in e4m3 scaled by a power of two: Lo8; + optional fp16 copy: Y16)
 *   backward  dx = r * w * dy - x * r^3 / d * sum_j(w_j dy_j x_j)     (w frozen: no dw)
 * dy is fp32 (the residual stream's gradient); x, the residual stream, is fp32 or bf16 (the
 * engine's LORA4J_RESIDUAL=bf16): the same arithmetic on float(x). The backward
 * accumulates into the residual gradient (dx += ...) when asked, which fuses the residual add, and
 * can also write bf16(dx), the operand of the next backward GEMMs, saving a conversion pass. One
 * block of 256 threads per row.
 *
 * Two kernels with the same arithmetic, hence the same bits. The scalar one (one element per
 * thread per step, each pass reading the row again) is kept for rows that are not a multiple of
 * 4 elements, unaligned pointers, wide rows, and as the tests' reference. The vectorized one
 * reads the row once, in float4 (and bf16 x 4) accesses, into registers and stages it in
 * shared memory; the reduction then reads the shared copy with the scalar kernel's
 * element-to-thread assignment (thread i sums elements i, i + 256, ... in that order), so
 * block_sum adds the same partial sums in the same order; the element-wise pass runs on the
 * registers.
 */

#include "cuda/kernels/common.cuh"
#include "cuda/kernels/gemv.cuh"
#include "cuda/kernels/rmsnorm.cuh"

namespace lora4j {
namespace cuda {

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }
template <typename TX>
__global__ void rmsnorm_fwd_scalar_kernel(const TX* x, const bf16* w, bf16* y, float* rstd,
                                          int64_t d, float eps, bf16* y_lo, int64_t ldy, Lo8 lo8,
                                          Y16 y16) {
  __shared__ float scratch[32];
  pdl_wait();
  int64_t t = blockIdx.x;
  const TX* xr = x + t * d;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) ss += to_f(xr[i]) * to_f(xr[i]);
  ss = block_sum(ss, scratch);
  float r = rsqrtf(ss / float(d) + eps);
  if (threadIdx.x == 0) rstd[t] = r;
  bf16* yr = y + t * ldy;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float v = to_f(xr[i]) * r * __bfloat162float(w[i]);
    bf16 hi = __float2bfloat16_rn(v);
    yr[i] = hi;
    if (y_lo) y_lo[t * ldy + i] = __float2bfloat16_rn(v - __bfloat162float(hi));
    if (lo8.p) lo8.p[t * lo8.ld + i] = lo8_of(v, hi, lo8.scale);
    if (y16.p) y16.p[t * y16.ld + i] = __float2half_rn(v);
  }
}

template <typename TX>
__global__ void rmsnorm_bwd_scalar_kernel(const float* dy, const TX* x, const bf16* w,
                                          const float* rstd, float* dx, int64_t d, bool accumulate,
                                          bf16* dx_bf16) {
  __shared__ float scratch[32];
  int64_t t = blockIdx.x;
  const TX* xr = x + t * d;
  const float* dyr = dy + t * d;
  float dot = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
    dot += __bfloat162float(w[i]) * dyr[i] * to_f(xr[i]);
  dot = block_sum(dot, scratch);
  float r = rstd[t];
  float c = dot * r * r * r / float(d);
  float* dxr = dx + t * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float g = r * __bfloat162float(w[i]) * dyr[i] - to_f(xr[i]) * c;
    float v = accumulate ? dxr[i] + g : g;
    dxr[i] = v;
    if (dx_bf16) dx_bf16[t * d + i] = __float2bfloat16_rn(v);
  }
}

namespace {

constexpr int kThreads = kNormThreads;  // both kernels: the reduction order depends on it
constexpr int kMaxChunks = 8;           // 4-element chunks per thread: d <= 4 * 256 * 8 = 8192
// Shared memory of the vectorized kernels: d floats (forward, within the 48 KiB a block may take
// without opting in), 2 d (backward: launch_bwd opts in for d = 6144).
constexpr int64_t kMaxForwardD = 4 * kThreads * kMaxChunks;  // 8192: 32 KiB
constexpr int64_t kMaxBackwardD = 6144;                      // 48 KiB

template <int NCH, typename TX>
__global__ void __launch_bounds__(kThreads)
    rmsnorm_fwd_vec_kernel(const TX* x, const bf16* w, bf16* y, float* rstd, int64_t d, float eps,
                           bf16* y_lo, int64_t ldy, Lo8 lo8, Y16 y16) {
  extern __shared__ float4 staged[];  // the row, d floats
  __shared__ float scratch[32];
  rmsnorm_fwd_vec_row<NCH>(x, w, y, rstd, d, eps, y_lo, ldy, lo8, y16, blockIdx.x, staged, scratch,
                           true, nullptr);
}

// The reduction's terms are float(w_i) * dy_i * x_i, i.e. (float(w_i) * dy_i) * x_i: the first
// product, rounded to fp32, is what the staged copy holds (the scalar kernel rounds it the same
// way before the second multiply, which it fuses into the sum).
template <int NCH, typename TX>
__global__ void __launch_bounds__(kThreads)
    rmsnorm_bwd_vec_kernel(const float* dy, const TX* x, const bf16* w, const float* rstd,
                           float* dx, int64_t d, bool accumulate, bf16* dx_bf16) {
  extern __shared__ float4 staged[];  // [d] float(w) * dy, then [d] x
  __shared__ float scratch[32];
  const float* swdy = reinterpret_cast<const float*>(staged);
  const float* sx = swdy + d;
  int64_t t = blockIdx.x;
  const int chunks = int(d / 4);
  const TX* xr = x + t * d;
  const float4* dyr = reinterpret_cast<const float4*>(dy + t * d);
  float4* dxr = reinterpret_cast<float4*>(dx + t * d);
  float4 xv[NCH], dyv[NCH], dxv[NCH] = {};  // dxv: read only when accumulating
  Bf16x4 wv[NCH];
#pragma unroll
  for (int j = 0; j < NCH; ++j) {
    int c = threadIdx.x + j * kThreads;
    if (c < chunks) {
      xv[j] = load4(xr, c);
      dyv[j] = dyr[c];
      wv[j] = load_bf16x4(w + 4 * c);
      if (accumulate) dxv[j] = dxr[c];
    }
  }
#pragma unroll
  for (int j = 0; j < NCH; ++j) {
    int c = threadIdx.x + j * kThreads;
    if (c < chunks) {
      staged[c] = make_float4(
          __bfloat162float(wv[j].v[0]) * dyv[j].x, __bfloat162float(wv[j].v[1]) * dyv[j].y,
          __bfloat162float(wv[j].v[2]) * dyv[j].z, __bfloat162float(wv[j].v[3]) * dyv[j].w);
      staged[chunks + c] = xv[j];
    }
  }
  __syncthreads();
  float dot = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) dot += swdy[i] * sx[i];
  dot = block_sum(dot, scratch);
  float r = rstd[t];
  float c = dot * r * r * r / float(d);
#pragma unroll
  for (int j = 0; j < NCH; ++j) {
    int ch = threadIdx.x + j * kThreads;
    if (ch >= chunks) continue;
    const float xs[4] = {xv[j].x, xv[j].y, xv[j].z, xv[j].w};
    const float dys[4] = {dyv[j].x, dyv[j].y, dyv[j].z, dyv[j].w};
    const float dxs[4] = {dxv[j].x, dxv[j].y, dxv[j].z, dxv[j].w};
    float out[4];
    Bf16x4 ob;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float g = r * __bfloat162float(wv[j].v[e]) * dys[e] - xs[e] * c;
      float v = accumulate ? dxs[e] + g : g;
      out[e] = v;
      ob.v[e] = __float2bfloat16_rn(v);
    }
    dxr[ch] = make_float4(out[0], out[1], out[2], out[3]);
    if (dx_bf16) store_bf16x4(dx_bf16 + t * d + 4 * ch, ob);
  }
}

// rmsnorm_lora_a (kernels.h): every block normalizes the row (rmsnorm_fwd_vec_row, its bits),
// block 0 stores it, each block keeps it in shared memory and sums rows j = block, block + grid,
// ... of A with it in gemv's split order.
template <int NCH, typename TX>
__global__ void __launch_bounds__(kThreads)
    rmsnorm_lora_a_kernel(const TX* x, const bf16* w, bf16* y, float* rstd, int64_t d, float eps,
                          Y16 y16, const uint4* A, int64_t lda16, int64_t m, float alpha, bf16* xa,
                          f16* xa16) {
  static_assert(kThreads == 32 * kGemvSplitWarps, "gemv's split order: a warp per share");
  extern __shared__ float4 staged[];  // the row, d floats; then y's row, d bf16
  __shared__ float scratch[32];
  __shared__ float part[kGemvSplitWarps];
  bf16* keep = reinterpret_cast<bf16*>(staged + d / 4);
  rmsnorm_fwd_vec_row<NCH>(x, w, y, rstd, d, eps, nullptr, d, Lo8{}, y16, 0, staged, scratch,
                           blockIdx.x == 0, keep);
  __syncthreads();  // keep is whole
  const uint4* xs = reinterpret_cast<const uint4*>(keep);
  for (int64_t j = blockIdx.x; j < m; j += gridDim.x) {
    gemv_split_row_parts<false>(
        A + j * lda16, d / 8, [xs](int64_t k) { return xs[k]; }, part);
    if (threadIdx.x == 0) {
      const bf16 v = __float2bfloat16_rn(alpha * gemv_split_sum(part));
      xa[j] = v;
      if (xa16) xa16[j] = __float2half_rn(__bfloat162float(v));
    }
    __syncthreads();  // part is the next row's
  }
}
template <int NCH, typename TX>
cudaError_t launch_lora_a(const RmsnormLoraAParams& p, cudaStream_t s) {
  return launch_kernel(rmsnorm_lora_a_kernel<NCH, TX>, dim3(unsigned(p.m)), dim3(kThreads),
                       size_t(p.d) * (sizeof(float) + sizeof(bf16)), s, p.pdl,
                       static_cast<const TX*>(p.x), p.w, p.y, p.rstd, p.d, p.eps, Y16{p.y16, p.d},
                       reinterpret_cast<const uint4*>(p.A), p.lda / 8, p.m, p.alpha, p.xa, p.xa16);
}
template <typename TX>
cudaError_t launch_lora_a(const RmsnormLoraAParams& p, cudaStream_t s) {
  switch ((p.d + 4 * kThreads - 1) / (4 * kThreads)) {  // as rmsnorm_forward picks NCH
    case 1:
      return launch_lora_a<1, TX>(p, s);
    case 2:
      return launch_lora_a<2, TX>(p, s);
    case 3:
      return launch_lora_a<3, TX>(p, s);
    case 4:
      return launch_lora_a<4, TX>(p, s);
    default:
      return launch_lora_a<6, TX>(p, s);  // d <= kLoraAMaxD
  }
}

template <int NCH, typename TX>
cudaError_t launch_fwd(const TX* x, const bf16* w, bf16* y, float* rstd, int64_t n, int64_t d,
                       float eps, cudaStream_t s, bf16* y_lo, int64_t ldy, Lo8 lo8, Y16 y16,
                       bool pdl) {
  return launch_kernel(rmsnorm_fwd_vec_kernel<NCH, TX>, dim3(unsigned(n)), dim3(kThreads),
                       size_t(d) * sizeof(float), s, pdl, x, w, y, rstd, d, eps, y_lo, ldy, lo8,
                       y16);
}
template <int NCH, typename TX>
cudaError_t launch_bwd(const float* dy, const TX* x, const bf16* w, const float* rstd, float* dx,
                       int64_t n, int64_t d, bool accumulate, cudaStream_t s, bf16* dx_bf16) {
  // Staging past 47 KiB (d above 6016) plus the kernel's static scratch is past the 48 KiB a
  // block gets without opting in. The limit is a property of the function on the current
  // device, so it is raised at each such launch (a process may drive several devices).
  const size_t smem = 2 * size_t(d) * sizeof(float);
  if (smem > 47 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(
        rmsnorm_bwd_vec_kernel<NCH, TX>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
  }
  rmsnorm_bwd_vec_kernel<NCH, TX>
      <<<unsigned(n), kThreads, smem, s>>>(dy, x, w, rstd, dx, d, accumulate, dx_bf16);
  return cudaGetLastError();
}

}  // namespace

template <class TX>
bool rmsnorm_forward_is_vectorized(const TX* x, const bf16* w, const bf16* y, int64_t d,
                                   const bf16* y_lo, int64_t ldy, Lo8 lo8, Y16 y16) {
  // rows of y and of the fp16 copy start on 8-byte boundaries (the 4-element 16-bit stores):
  // ldy % 4 == 0, y16.ld % 4 == 0; rows of the e4m3 residue on 4-byte ones (4-byte stores)
  return d > 0 && d % 4 == 0 && d <= kMaxForwardD && (ldy == 0 || ldy % 4 == 0) &&
         ptr_aligned16(x) && ptr_aligned16(w) && ptr_aligned16(y) && ptr_aligned16(y_lo) &&
         ptr_aligned16(lo8.p) && (lo8.ld == 0 || lo8.ld % 4 == 0) && ptr_aligned16(y16.p) &&
         (y16.ld == 0 || y16.ld % 4 == 0);
}
template <class TX>
bool rmsnorm_backward_is_vectorized(const float* dy, const TX* x, const bf16* w, const float* dx,
                                    int64_t d, const bf16* dx_bf16) {
  return d > 0 && d % 4 == 0 && d <= kMaxBackwardD && ptr_aligned16(dy) && ptr_aligned16(x) &&
         ptr_aligned16(w) && ptr_aligned16(dx) && ptr_aligned16(dx_bf16);
}

template <class TX>
cudaError_t rmsnorm_forward_scalar(const TX* x, const bf16* w, bf16* y, float* rstd, int64_t n,
                                   int64_t d, float eps, cudaStream_t s, bf16* y_lo, int64_t ldy,
                                   Lo8 lo8, Y16 y16, bool pdl) {
  if (n <= 0) return cudaSuccess;
  if (ldy == 0) ldy = d;
  if (lo8.p && lo8.ld == 0) lo8.ld = d;
  if (y16.p && y16.ld == 0) y16.ld = d;
  if (ldy < d || (lo8.p && lo8.ld < d) || (y16.p && y16.ld < d)) return cudaErrorInvalidValue;
  return launch_kernel(rmsnorm_fwd_scalar_kernel<TX>, dim3(unsigned(n)), dim3(kThreads), 0, s, pdl,
                       x, w, y, rstd, d, eps, y_lo, ldy, lo8, y16);
}
template <class TX>
cudaError_t rmsnorm_backward_scalar(const float* dy, const TX* x, const bf16* w, const float* rstd,
                                    float* dx, int64_t n, int64_t d, bool accumulate,
                                    cudaStream_t s, bf16* dx_bf16) {
  if (n <= 0) return cudaSuccess;
  rmsnorm_bwd_scalar_kernel<TX>
      <<<unsigned(n), kThreads, 0, s>>>(dy, x, w, rstd, dx, d, accumulate, dx_bf16);
  return cudaGetLastError();
}

template <class TX>
cudaError_t rmsnorm_forward(const TX* x, const bf16* w, bf16* y, float* rstd, int64_t n, int64_t d,
                            float eps, cudaStream_t s, bf16* y_lo, int64_t ldy, Lo8 lo8, Y16 y16,
                            bool pdl) {
  if (n <= 0) return cudaSuccess;
  if (ldy == 0) ldy = d;
  if (lo8.p && lo8.ld == 0) lo8.ld = d;
  if (y16.p && y16.ld == 0) y16.ld = d;
  if (ldy < d || (lo8.p && lo8.ld < d) || (y16.p && y16.ld < d)) return cudaErrorInvalidValue;
  if (!rmsnorm_forward_is_vectorized(x, w, y, d, y_lo, ldy, lo8, y16))
    return rmsnorm_forward_scalar(x, w, y, rstd, n, d, eps, s, y_lo, ldy, lo8, y16, pdl);
  switch ((d + 4 * kThreads - 1) / (4 * kThreads)) {
    case 1:
      return launch_fwd<1>(x, w, y, rstd, n, d, eps, s, y_lo, ldy, lo8, y16, pdl);
    case 2:
      return launch_fwd<2>(x, w, y, rstd, n, d, eps, s, y_lo, ldy, lo8, y16, pdl);
    case 3:
      return launch_fwd<3>(x, w, y, rstd, n, d, eps, s, y_lo, ldy, lo8, y16, pdl);
    case 4:
      return launch_fwd<4>(x, w, y, rstd, n, d, eps, s, y_lo, ldy, lo8, y16, pdl);
    case 5:
    case 6:
      return launch_fwd<6>(x, w, y, rstd, n, d, eps, s, y_lo, ldy, lo8, y16, pdl);
    default:
      return launch_fwd<kMaxChunks>(x, w, y, rstd, n, d, eps, s, y_lo, ldy, lo8, y16, pdl);
  }
}
template <class TX>
cudaError_t rmsnorm_backward(const float* dy, const TX* x, const bf16* w, const float* rstd,
                             float* dx, int64_t n, int64_t d, bool accumulate, cudaStream_t s,
                             bf16* dx_bf16) {
  if (n <= 0) return cudaSuccess;
  if (!rmsnorm_backward_is_vectorized(dy, x, w, dx, d, dx_bf16))
    return rmsnorm_backward_scalar(dy, x, w, rstd, dx, n, d, accumulate, s, dx_bf16);
  switch ((d + 4 * kThreads - 1) / (4 * kThreads)) {
    case 1:
      return launch_bwd<1>(dy, x, w, rstd, dx, n, d, accumulate, s, dx_bf16);
    case 2:
      return launch_bwd<2>(dy, x, w, rstd, dx, n, d, accumulate, s, dx_bf16);
    case 3:
      return launch_bwd<3>(dy, x, w, rstd, dx, n, d, accumulate, s, dx_bf16);
    case 4:
      return launch_bwd<4>(dy, x, w, rstd, dx, n, d, accumulate, s, dx_bf16);
    default:
      return launch_bwd<6>(dy, x, w, rstd, dx, n, d, accumulate, s, dx_bf16);
  }
}

bool rmsnorm_lora_a_accepts(const RmsnormLoraAParams& p) {
  const bool vec = p.x_bf16
                       ? rmsnorm_forward_is_vectorized(static_cast<const bf16*>(p.x), p.w, p.y, p.d,
                                                       nullptr, 0, Lo8{}, Y16{p.y16, 0})
                       : rmsnorm_forward_is_vectorized(static_cast<const float*>(p.x), p.w, p.y,
                                                       p.d, nullptr, 0, Lo8{}, Y16{p.y16, 0});
  return p.x && p.w && p.y && p.rstd && p.A && p.xa && vec && p.d % 8 == 0 &&
         p.d <= kRmsnormLoraAMaxD && p.m >= 1 && p.m <= kGemvSplitMaxRows && p.lda >= p.d &&
         p.lda % 8 == 0 && ptr_aligned16(p.A);
}
cudaError_t rmsnorm_lora_a(const RmsnormLoraAParams& p, cudaStream_t s) {
  if (!rmsnorm_lora_a_accepts(p)) return cudaErrorInvalidValue;
  return p.x_bf16 ? launch_lora_a<bf16>(p, s) : launch_lora_a<float>(p, s);
}

// the two forms kernels.h declares: the fp32 residual stream and the bf16 one
#define LORA4J_RMSNORM_INSTANTIATE(TX)                                                             \
  template bool rmsnorm_forward_is_vectorized(const TX*, const bf16*, const bf16*, int64_t,        \
                                              const bf16*, int64_t, Lo8, Y16);                     \
  template bool rmsnorm_backward_is_vectorized(const float*, const TX*, const bf16*, const float*, \
                                               int64_t, const bf16*);                              \
  template cudaError_t rmsnorm_forward(const TX*, const bf16*, bf16*, float*, int64_t, int64_t,    \
                                       float, cudaStream_t, bf16*, int64_t, Lo8, Y16, bool);       \
  template cudaError_t rmsnorm_backward(const float*, const TX*, const bf16*, const float*,        \
                                        float*, int64_t, int64_t, bool, cudaStream_t, bf16*);      \
  template cudaError_t rmsnorm_forward_scalar(const TX*, const bf16*, bf16*, float*, int64_t,      \
                                              int64_t, float, cudaStream_t, bf16*, int64_t, Lo8,   \
                                              Y16, bool);                                          \
  template cudaError_t rmsnorm_backward_scalar(const float*, const TX*, const bf16*, const float*, \
                                               float*, int64_t, int64_t, bool, cudaStream_t,       \
                                               bf16*);
LORA4J_RMSNORM_INSTANTIATE(float)
LORA4J_RMSNORM_INSTANTIATE(bf16)
#undef LORA4J_RMSNORM_INSTANTIATE

}  // namespace cuda
}  // namespace lora4j
