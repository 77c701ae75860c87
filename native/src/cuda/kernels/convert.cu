/*
 * Conversions between fp32 and bf16 (round to nearest even), bf16 to fp16 over a strided
 * matrix (the q and k GEMMs' fp16 operands), and the LoRA merge
 * W <- bf16(W + scale * B A) computed from the fp32 master copies of A [r, in] and B [out, r].
 * Grid-stride loops: any n works with a bounded grid.
 */
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

namespace {
// LORA4J_CONVERT=scalar, read once: f32_to_bf16 and bf16_to_f32 one value a thread
// everywhere (the form before the 8-wide one), to time the two against each other in one build.
bool convert_scalar_forced() {
  static const bool forced = [] {
    const char* v = std::getenv("LORA4J_CONVERT");
    return v && std::strcmp(v, "scalar") == 0;
  }();
  return forced;
}
}  // namespace

// One value a thread (convert_kernel) or 8 (convert_x8_kernel: two 16-byte accesses of fp32 and
// one of bf16 a step, where x and y are 16-byte aligned; n / 8 steps, then the n % 8 values left
// one a thread). Each value is converted alone (__floats2bfloat162_rn rounds both halves as
// __float2bfloat16_rn does, round to nearest even; bf16 to fp32 is exact), so both kernels give
// the same bits. x is read once (streaming loads: the attention backward's dq_accum and a layer's
// checkpoint are not read again by this pass).
__device__ __forceinline__ bf16 convert1(float v, bf16*) { return __float2bfloat16_rn(v); }
__device__ __forceinline__ float convert1(bf16 v, float*) { return __bfloat162float(v); }
__device__ __forceinline__ void load8(const float* p, float (&v)[8]) {
  const float4 a = __ldcs(reinterpret_cast<const float4*>(p)),
               b = __ldcs(reinterpret_cast<const float4*>(p) + 1);
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
__device__ __forceinline__ void load8(const bf16* p, float (&v)[8]) {
  union {
    uint4 u;
    __nv_bfloat162 h[4];
  } x;
  x.u = __ldcs(reinterpret_cast<const uint4*>(p));
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const float2 f = __bfloat1622float2(x.h[e]);
    v[2 * e] = f.x, v[2 * e + 1] = f.y;
  }
}
__device__ __forceinline__ void store8(bf16* p, const float (&v)[8]) {
  union {
    __nv_bfloat162 h[4];
    uint4 u;
  } o;
#pragma unroll
  for (int e = 0; e < 4; ++e) o.h[e] = __floats2bfloat162_rn(v[2 * e], v[2 * e + 1]);
  *reinterpret_cast<uint4*>(p) = o.u;
}
__device__ __forceinline__ void store8(float* p, const float (&v)[8]) {
  reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
template <class X, class Y>
__global__ void convert_kernel(const X* x, Y* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = convert1(x[i], y);
}
template <class X, class Y>
__global__ void convert_x8_kernel(const X* __restrict__ x, Y* __restrict__ y, int64_t n) {
  const int64_t n8 = n / 8, t0 = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t i = t0; i < n8; i += int64_t(gridDim.x) * blockDim.x) {
    float v[8];
    load8(x + 8 * i, v);
    store8(y + 8 * i, v);
  }
  if (t0 < n % 8) y[8 * n8 + t0] = convert1(x[8 * n8 + t0], y);
}
template <class X, class Y>
cudaError_t convert(const X* x, Y* y, int64_t n, bool x8, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  if (x8 && ptr_aligned16(x) && ptr_aligned16(y) && !convert_scalar_forced())
    convert_x8_kernel<<<grid_for(std::max<int64_t>(n / 8, n % 8), 256), 256, 0, s>>>(x, y, n);
  else
    convert_kernel<<<grid_for(n, 256), 256, 0, s>>>(x, y, n);
  return cudaGetLastError();
}
__global__ void lora_merge_kernel(bf16* w, const float* a, const float* b, float scale, int64_t out,
                                  int64_t in, int64_t r) {
  int64_t n = out * in;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o = i / in, c = i % in;
    float acc = 0.f;
    for (int64_t k = 0; k < r; ++k) acc += b[o * r + k] * a[k * in + c];
    w[i] = __float2bfloat16_rn(__bfloat162float(w[i]) + scale * acc);
  }
}

// dst[i, j] = fp16(src[i, j]) for rows x cols, row strides lds and ldd (elements). One thread per
// 8 elements (16-byte accesses) when cols, lds and ldd are multiples of 8 and both pointers
// 16-byte aligned; else one element per thread. Both round the same way (the bf16 value, exact in
// fp32, to the nearest fp16): the same bits.
__global__ void bf16_to_f16_2d_vec_kernel(const bf16* src, int64_t lds, f16* dst, int64_t ldd,
                                          int64_t rows, int64_t cols) {
  const int64_t per_row = cols / 8, n = rows * per_row;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / per_row, j = (e % per_row) * 8;
    const Bf16x8 v = load_bf16x8(src + i * lds + j);
    union {
      uint4 u;
      f16 h[8];
    } o;
#pragma unroll
    for (int k = 0; k < 8; ++k) o.h[k] = __float2half_rn(__bfloat162float(v.v[k]));
    *reinterpret_cast<uint4*>(dst + i * ldd + j) = o.u;
  }
}
__global__ void bf16_to_f16_2d_scalar_kernel(const bf16* src, int64_t lds, f16* dst, int64_t ldd,
                                             int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / cols, j = e % cols;
    dst[i * ldd + j] = __float2half_rn(__bfloat162float(src[i * lds + j]));
  }
}
bool bf16_to_f16_2d_is_vectorized(const bf16* src, int64_t lds, const f16* dst, int64_t ldd,
                                  int64_t cols) {
  return cols % 8 == 0 && lds % 8 == 0 && ldd % 8 == 0 && ptr_aligned16(src) && ptr_aligned16(dst);
}
cudaError_t bf16_to_f16_2d(const bf16* src, int64_t lds, f16* dst, int64_t ldd, int64_t rows,
                           int64_t cols, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (lds < cols || ldd < cols) return cudaErrorInvalidValue;
  if (!bf16_to_f16_2d_is_vectorized(src, lds, dst, ldd, cols))
    return bf16_to_f16_2d_scalar(src, lds, dst, ldd, rows, cols, s);
  bf16_to_f16_2d_vec_kernel<<<grid_for(rows * (cols / 8), 256), 256, 0, s>>>(src, lds, dst, ldd,
                                                                             rows, cols);
  return cudaGetLastError();
}
cudaError_t bf16_to_f16_2d_scalar(const bf16* src, int64_t lds, f16* dst, int64_t ldd, int64_t rows,
                                  int64_t cols, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (lds < cols || ldd < cols) return cudaErrorInvalidValue;
  bf16_to_f16_2d_scalar_kernel<<<grid_for(rows * cols, 256), 256, 0, s>>>(src, lds, dst, ldd, rows,
                                                                          cols);
  return cudaGetLastError();
}

// dst[i, j] = bf16(scale * src[i, j]) over rows x cols, row strides lds and ldd: 8 elements per
// thread (16-byte accesses) when cols, lds and ldd are multiples of 8 and both pointers 16-byte
// aligned, else one; the same arithmetic either way (a copy when scale is 1, exact when it is a
// power of two).
__global__ void bf16_copy_2d_vec_kernel(const bf16* src, int64_t lds, bf16* dst, int64_t ldd,
                                        int64_t rows, int64_t cols, float scale) {
  const int64_t per_row = cols / 8, n = rows * per_row;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / per_row, j = (e % per_row) * 8;
    Bf16x8 v = load_bf16x8(src + i * lds + j);
#pragma unroll
    for (int k = 0; k < 8; ++k) v.v[k] = __float2bfloat16_rn(scale * __bfloat162float(v.v[k]));
    store_bf16x8(dst + i * ldd + j, v);
  }
}
__global__ void bf16_copy_2d_scalar_kernel(const bf16* src, int64_t lds, bf16* dst, int64_t ldd,
                                           int64_t rows, int64_t cols, float scale) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / cols, j = e % cols;
    dst[i * ldd + j] = __float2bfloat16_rn(scale * __bfloat162float(src[i * lds + j]));
  }
}
bool bf16_copy_2d_is_vectorized(const bf16* src, int64_t lds, const bf16* dst, int64_t ldd,
                                int64_t cols) {
  return cols % 8 == 0 && lds % 8 == 0 && ldd % 8 == 0 && ptr_aligned16(src) && ptr_aligned16(dst);
}
cudaError_t bf16_copy_2d(const bf16* src, int64_t lds, bf16* dst, int64_t ldd, int64_t rows,
                         int64_t cols, float scale, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (lds < cols || ldd < cols) return cudaErrorInvalidValue;
  if (!bf16_copy_2d_is_vectorized(src, lds, dst, ldd, cols))
    return bf16_copy_2d_scalar(src, lds, dst, ldd, rows, cols, scale, s);
  bf16_copy_2d_vec_kernel<<<grid_for(rows * (cols / 8), 256), 256, 0, s>>>(src, lds, dst, ldd, rows,
                                                                           cols, scale);
  return cudaGetLastError();
}
cudaError_t bf16_copy_2d_scalar(const bf16* src, int64_t lds, bf16* dst, int64_t ldd, int64_t rows,
                                int64_t cols, float scale, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (lds < cols || ldd < cols) return cudaErrorInvalidValue;
  bf16_copy_2d_scalar_kernel<<<grid_for(rows * cols, 256), 256, 0, s>>>(src, lds, dst, ldd, rows,
                                                                        cols, scale);
  return cudaGetLastError();
}

cudaError_t f32_to_bf16(const float* x, bf16* y, int64_t n, cudaStream_t s) {
  return convert(x, y, n, true, s);
}
cudaError_t f32_to_bf16_scalar(const float* x, bf16* y, int64_t n, cudaStream_t s) {
  return convert(x, y, n, false, s);
}
cudaError_t bf16_to_f32(const bf16* x, float* y, int64_t n, cudaStream_t s) {
  return convert(x, y, n, true, s);
}
cudaError_t bf16_to_f32_scalar(const bf16* x, float* y, int64_t n, cudaStream_t s) {
  return convert(x, y, n, false, s);
}
cudaError_t lora_merge_weight(bf16* w, const float* a, const float* b, float scale, int64_t out,
                              int64_t in, int64_t r, cudaStream_t s) {
  lora_merge_kernel<<<grid_for(out * in, 256), 256, 0, s>>>(w, a, b, scale, out, in, r);
  return cudaGetLastError();
}

// dst.p[i][j] += src[i * len + j] for i < count: one launch for a group's slices (blockIdx.y is
// the slice)
__global__ void add_f32_slices_kernel(const float* src, int64_t len, F32Slices dst) {
  const float* s = src + int64_t(blockIdx.y) * len;
  float* d = dst.p[blockIdx.y];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < len;
       i += int64_t(gridDim.x) * blockDim.x)
    d[i] += s[i];
}
cudaError_t add_f32_slices(const float* src, int64_t len, const F32Slices& dst, int count,
                           cudaStream_t s) {
  if (count < 1 || count > F32Slices::kMax) return cudaErrorInvalidValue;
  if (len <= 0) return cudaSuccess;
  add_f32_slices_kernel<<<dim3(grid_for(len, 256, 1024), unsigned(count)), 256, 0, s>>>(src, len,
                                                                                        dst);
  return cudaGetLastError();
}

// copy2d_batched: blockIdx.y is the copy, its blocks stride over its units (rows x width / unit).
template <class U>
__device__ void copy2d_units(const Copy2D& c) {
  const int64_t per_row = c.width / int64_t(sizeof(U)), n = per_row * c.rows;
  const char* src = static_cast<const char*>(c.src);
  char* dst = static_cast<char*>(c.dst);
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / per_row, j = (e - i * per_row) * int64_t(sizeof(U));
    *reinterpret_cast<U*>(dst + i * c.dpitch + j) =
        *reinterpret_cast<const U*>(src + i * c.spitch + j);
  }
}
__global__ void copy2d_batched_kernel(const Copy2D* table) {
  const Copy2D c = table[blockIdx.y];
  switch (copy2d_unit(c)) {
    case 16:
      copy2d_units<uint4>(c);
      break;
    case 8:
      copy2d_units<uint2>(c);
      break;
    case 4:
      copy2d_units<uint32_t>(c);
      break;
    case 2:
      copy2d_units<uint16_t>(c);
      break;
    default:
      copy2d_units<uint8_t>(c);
      break;
  }
}
cudaError_t copy2d_batched(const Copy2D* table, int count, cudaStream_t s) {
  if (count < 0 || count > kMaxCopies) return cudaErrorInvalidValue;
  if (count == 0) return cudaSuccess;
  // 16 blocks of 256 threads a copy: a 460 KB copy in 16-byte units is ~7 units a thread
  copy2d_batched_kernel<<<dim3(16, unsigned(count)), 256, 0, s>>>(table);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
