/*
 * Embedding gather: out[t, :] = float(table[ids[t], :]), or the bf16 row itself where the
 * residual stream is bf16. The table is frozen, so there is no backward. One block per token.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

namespace {
__device__ __forceinline__ void put(float* o, bf16 v) { *o = __bfloat162float(v); }
__device__ __forceinline__ void put(bf16* o, bf16 v) { *o = v; }

template <typename TO>
__global__ void embedding_kernel(const int32_t* ids, const bf16* table, TO* out, int64_t d) {
  int64_t t = blockIdx.x;
  const bf16* row = table + int64_t(ids[t]) * d;
  TO* o = out + t * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) put(o + i, row[i]);
}

template <typename TO>
cudaError_t launch(const int32_t* ids, const bf16* table, TO* out, int64_t n, int64_t d,
                   cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  embedding_kernel<TO><<<unsigned(n), 256, 0, s>>>(ids, table, out, d);
  return cudaGetLastError();
}
}  // namespace

cudaError_t embedding_forward(const int32_t* ids, const bf16* table, float* out, int64_t n,
                              int64_t d, cudaStream_t s) {
  return launch(ids, table, out, n, d, s);
}
cudaError_t embedding_forward(const int32_t* ids, const bf16* table, bf16* out, int64_t n,
                              int64_t d, cudaStream_t s) {
  return launch(ids, table, out, n, d, s);
}

}  // namespace cuda
}  // namespace lora4j
