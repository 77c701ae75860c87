// Probe: row-major D[M,N] = A[M,K] B[N,K]^T (bf16 -> bf16, fp32 compute) for several K and leading
// dimensions, random data, each of the heuristic's first 8 algorithms timed.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <vector>
#define CK(x) do { auto e_ = (x); if (e_ != 0) { std::printf("%s failed %d line %d\n", #x, int(e_), __LINE__); return 1; } } while (0)
int main() {
  cublasLtHandle_t lt; CK(cublasLtCreate(&lt));
  cudaStream_t s; cudaStreamCreate(&s);
  size_t wsb = 64 << 20; void* ws; cudaMalloc(&ws, wsb);
  const int64_t M = 8192, N = 14336, maxld = 8192;
  __nv_bfloat16 *A, *B, *D;
  cudaMalloc(&A, size_t(M) * maxld * 2); cudaMalloc(&B, size_t(N) * maxld * 2); cudaMalloc(&D, size_t(M) * N * 2);
  {
    std::vector<uint16_t> h(size_t(N) * maxld);
    uint32_t x = 12345;
    for (auto& v : h) { x = x * 1664525u + 1013904223u; float f = (int32_t(x >> 9) - (1 << 22)) / float(1 << 22) * 0.05f; uint32_t b; std::memcpy(&b, &f, 4); v = uint16_t(b >> 16); }
    cudaMemcpy(B, h.data(), size_t(N) * maxld * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(A, h.data(), size_t(M) * maxld * 2, cudaMemcpyHostToDevice);
  }
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  struct C { int64_t K, lda, ldb; };
  std::vector<C> cs = {{4096, 4096, 4096}, {4096, 4128, 4096}, {4096, 4096, 4128}, {4096, 4128, 4128},
                       {4128, 4128, 4128}, {4128, 4160, 4160}, {4128, 4352, 4352}, {4128, 5120, 5120},
                       {4128, 8192, 8192}, {4096, 8192, 8192}};
  for (const C& c : cs) {
    cublasLtMatmulDesc_t desc; CK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    cublasLtMatrixLayout_t la, lb, ld;
    // column-major: first operand = weight B stored [K, N] col-major (ld ldb), op T -> [N, K]
    CK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, c.K, N, c.ldb));
    CK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, c.K, M, c.lda));
    CK(cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, N, M, N));
    cublasLtMatmulPreference_t pref; CK(cublasLtMatmulPreferenceCreate(&pref));
    CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
    cublasLtMatmulHeuristicResult_t res[8]; int found = 0;
    CK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 8, res, &found));
    std::printf("K %lld lda %lld ldb %lld:", (long long)c.K, (long long)c.lda, (long long)c.ldb);
    float alpha = 1.f, beta = 0.f;
    for (int i = 0; i < found; ++i) {
      auto run = [&] { return cublasLtMatmul(lt, desc, &alpha, B, la, A, lb, &beta, D, ld, D, ld, &res[i].algo, ws, wsb, s); };
      if (run() != 0) { std::printf(" [%d] fail", i); continue; }
      run(); cudaStreamSynchronize(s);
      float best = 1e9;
      for (int r = 0; r < 3; ++r) {
        cudaEventRecord(e0, s); for (int k = 0; k < 10; ++k) run(); cudaEventRecord(e1, s); cudaEventSynchronize(e1);
        float ms; cudaEventElapsedTime(&ms, e0, e1); best = std::min(best, ms / 10);
      }
      std::printf(" [%d] %.4f", i, best);
    }
    std::printf(" ms\n");
    cublasLtMatmulPreferenceDestroy(pref); cublasLtMatrixLayoutDestroy(la); cublasLtMatrixLayoutDestroy(lb); cublasLtMatrixLayoutDestroy(ld); cublasLtMatmulDescDestroy(desc);
  }
  std::printf("err: %s\n", cudaGetErrorString(cudaGetLastError()));
}
