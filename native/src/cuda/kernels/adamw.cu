/*
 * The optimizer over the flat fp32 LoRA arena, one launch each:
 *   grad_sumsq  sum of g^2 in double (for the global norm) and a flag set when any g is not
 *               finite (the step is then skipped and counted by the engine)
 *   adamw       torch.optim.AdamW: p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *               p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), with g pre-multiplied by the
 *               clipping coefficient.
 */
#include <cmath>

#include "cuda/kernels/common.cuh"

namespace lora4j {
namespace cuda {

__global__ void sumsq_kernel(const float* g, int64_t n, double* out, int* flag) {
  __shared__ double part[32];
  double acc = 0;
  int bad = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float x = g[i];
    if (!isfinite(x)) bad = 1;
    acc += double(x) * double(x);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  bad = __any_sync(0xffffffffu, bad);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) part[w] = acc;
  if (lane == 0 && bad) atomicExch(flag, 1);
  __syncthreads();
  if (w == 0) {
    double t = lane < int(blockDim.x >> 5) ? part[lane] : 0.0;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
    if (lane == 0) atomicAdd(out, t);
  }
}

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n,
                             float grad_mult, float lr, float b1, float b2, float eps, float wd,
                             float step_size, float bc2_sqrt) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float gi = g[i] * grad_mult;
    float pi = p[i] * (1.f - lr * wd);
    float mi = m[i] + (gi - m[i]) * (1.f - b1);  // torch: exp_avg.lerp_(grad, 1 - beta1)
    float vi = v[i] * b2 + (1.f - b2) * gi * gi;
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    p[i] = pi - step_size * mi / denom;
    m[i] = mi;
    v[i] = vi;
  }
}

cudaError_t grad_sumsq(const float* g, int64_t n, double* out, int* flag, cudaStream_t s) {
  cudaError_t e = cudaMemsetAsync(out, 0, sizeof(double), s);
  if (e != cudaSuccess) return e;
  e = cudaMemsetAsync(flag, 0, sizeof(int), s);
  if (e != cudaSuccess) return e;
  if (n <= 0) return cudaSuccess;
  sumsq_kernel<<<grid_for(n, 256, 1024), 256, 0, s>>>(g, n, out, flag);
  return cudaGetLastError();
}

cudaError_t adamw_update(float* p, const float* g, float* m, float* v, int64_t n, float grad_mult,
                         float lr, float beta1, float beta2, float eps, float weight_decay,
                         double bc1, double bc2, cudaStream_t s) {
  if (n <= 0) return cudaSuccess;
  float step_size = float(double(lr) / bc1);
  float bc2_sqrt = float(std::sqrt(bc2));
  adamw_kernel<<<grid_for(n, 256, 4096), 256, 0, s>>>(p, g, m, v, n, grad_mult, lr, beta1, beta2,
                                                      eps, weight_decay, step_size, bc2_sqrt);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace lora4j
