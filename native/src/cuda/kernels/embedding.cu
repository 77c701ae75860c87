/*
 * Embedding gather: out[t, :] = float(table[ids[t], :]). The table is frozen, so there is no
 * backward. One block per token, the row read with bf16 loads.
 */
#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

__global__ void embedding_kernel(const int32_t* ids, const bf16* table, float* out, int64_t d) {
  int64_t t = blockIdx.x;
  const bf16* row = table + int64_t(ids[t]) * d;
  float* o = out + t * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) o[i] = __bfloat162float(row[i]);
}

cudaError_t embedding_forward(const int32_t* ids, const bf16* table, float* out, int64_t n,
                              int64_t d, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  embedding_kernel<<<unsigned(n), 256, 0, s>>>(ids, table, out, d);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
