// Probe: the q/k "lo" GEMMs of the precision fix, D[M,N] (fp32) += A[M,K] W[N,K]^T at M = 8192,
// K = 4096, N = 4096 (q) and 1024 (k): bf16 x bf16 against e4m3 x e4m3 (precise and fast
// accumulation), the heuristic's first algorithm, burst (best of 3 x 10) and sustained (2 s back
// to back, mean).
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>
#define CK(x) do { auto e_ = (x); if (e_ != 0) { std::printf("%s failed %d line %d\n", #x, int(e_), __LINE__); return false; } } while (0)
static cublasLtHandle_t lt; static cudaStream_t s; static void* ws; static size_t wsb = 64 << 20;
static bool run_case(const char* name, cudaDataType_t ab, cudaDataType_t cd, int fast, int64_t M,
                     int64_t N, int64_t K, const void* A, const void* W, void* D) {
  cublasLtMatmulDesc_t desc; CK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  if (ab != CUDA_R_16BF) {
    int8_t f = int8_t(fast);
    CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &f, sizeof f));
  }
  cublasLtMatrixLayout_t la, lb, lc;
  CK(cublasLtMatrixLayoutCreate(&la, ab, K, N, K));
  CK(cublasLtMatrixLayoutCreate(&lb, ab, K, M, K));
  CK(cublasLtMatrixLayoutCreate(&lc, cd, N, M, N));
  cublasLtMatmulPreference_t pref; CK(cublasLtMatmulPreferenceCreate(&pref));
  CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb));
  cublasLtMatmulHeuristicResult_t res[1]; int found = 0;
  auto hs = cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 1, res, &found);
  if (hs != 0 || found == 0) { std::printf("%-34s N %5lld: no algorithm (status %d)\n", name, (long long)N, int(hs)); return true; }
  float alpha = 1.f, beta = 1.f;
  auto run = [&] { return cublasLtMatmul(lt, desc, &alpha, W, la, A, lb, &beta, D, lc, D, lc, &res[0].algo, ws, wsb, s); };
  auto st = run();
  if (st != 0) { std::printf("%-34s N %5lld: matmul status %d\n", name, (long long)N, int(st)); return true; }
  cudaStreamSynchronize(s);
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  float best = 1e9;
  for (int r = 0; r < 3; ++r) {
    cudaEventRecord(e0, s); for (int k = 0; k < 10; ++k) run(); cudaEventRecord(e1, s); cudaEventSynchronize(e1);
    float ms; cudaEventElapsedTime(&ms, e0, e1); best = std::min(best, ms / 10);
  }
  auto t0 = std::chrono::steady_clock::now(); int n = 0;
  cudaEventRecord(e0, s);
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 2.0) {
    for (int k = 0; k < 20; ++k) run();
    n += 20; cudaStreamSynchronize(s);
  }
  cudaEventRecord(e1, s); cudaEventSynchronize(e1);
  float tot; cudaEventElapsedTime(&tot, e0, e1);
  std::printf("%-34s N %5lld: burst %.4f ms (%.0f TFLOP/s), sustained %.4f ms\n", name, (long long)N, best,
              2.0 * M * N * K / best / 1e9, tot / n);
  cublasLtMatmulPreferenceDestroy(pref); cublasLtMatrixLayoutDestroy(la); cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc); cublasLtMatmulDescDestroy(desc);
  return true;
}
int main() {
  if (cublasLtCreate(&lt) != 0) return 1;
  cudaStreamCreate(&s); cudaMalloc(&ws, wsb);
  const int64_t M = 8192, K = 4096, NQ = 4096;
  void *A16, *W16, *A8, *W8, *D;
  cudaMalloc(&A16, M * K * 2); cudaMalloc(&W16, NQ * K * 2); cudaMalloc(&A8, M * K); cudaMalloc(&W8, NQ * K);
  cudaMalloc(&D, M * NQ * 4); cudaMemset(D, 0, M * NQ * 4);
  {
    std::vector<uint16_t> a(M * K), w(NQ * K); std::vector<uint8_t> a8(M * K), w8(NQ * K);
    uint32_t x = 12345;
    auto rnd = [&] { x = x * 1664525u + 1013904223u; return (int32_t(x >> 9) - (1 << 22)) / float(1 << 22); };
    for (size_t i = 0; i < a.size(); ++i) {
      float lo = rnd() * 0.004f, ws = rnd() * 0.035f;  // lo ~ 2^-8 |y|; weights ~ std 0.02
      __nv_bfloat16 b = __float2bfloat16(lo); std::memcpy(&a[i], &b, 2);
      a8[i] = __nv_fp8_e4m3(lo * 1024.f).__x;
      if (i < w.size()) { __nv_bfloat16 c = __float2bfloat16(ws); std::memcpy(&w[i], &c, 2); w8[i] = __nv_fp8_e4m3(ws * 4096.f).__x; }
    }
    cudaMemcpy(A16, a.data(), a.size() * 2, cudaMemcpyHostToDevice); cudaMemcpy(W16, w.data(), w.size() * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(A8, a8.data(), a8.size(), cudaMemcpyHostToDevice); cudaMemcpy(W8, w8.data(), w8.size(), cudaMemcpyHostToDevice);
  }
  for (int64_t N : {NQ, int64_t(1024)}) {
    run_case("bf16 x bf16 -> fp32 (beta 1)", CUDA_R_16BF, CUDA_R_32F, 0, M, N, K, A16, W16, D);
    run_case("e4m3 x e4m3 -> fp32 (beta 1)", CUDA_R_8F_E4M3, CUDA_R_32F, 0, M, N, K, A8, W8, D);
    run_case("e4m3 x e4m3 -> fp32, fast accum", CUDA_R_8F_E4M3, CUDA_R_32F, 1, M, N, K, A8, W8, D);
    run_case("bf16 x bf16 -> fp32 (beta 1) again", CUDA_R_16BF, CUDA_R_32F, 0, M, N, K, A16, W16, D);
  }
  std::printf("err: %s\n", cudaGetErrorString(cudaGetLastError()));
}
