// Probe: cuBLASLt FP8 (e4m3 x e4m3 -> fp32, beta 1, TN) with A/B scale pointers: which order of
// setting them (before / after the heuristic), which alignment and null A scale are accepted.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cstdint>
#include <cstdio>
static cublasLtHandle_t lt; static cudaStream_t s; static void* ws; static size_t wsb = 32 << 20;
#define CK(x) do { auto e_ = (x); if (e_ != 0) { std::printf("  %s failed %d\n", #x, int(e_)); return; } } while (0)
static void trial(const char* name, int when, const float* as, const float* bs, cudaDataType_t dt,
                  int64_t M, int64_t N, int64_t K, const void* A, const void* W, void* D, int align) {
  cublasLtMatmulDesc_t desc; CK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  auto setp = [&] {
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &bs, sizeof bs);
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &as, sizeof as);
  };
  if (when == 0) setp();
  cublasLtMatrixLayout_t la, lb, lc;
  CK(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, K, N, K));
  CK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, K, M, K));
  CK(cublasLtMatrixLayoutCreate(&lc, dt, N, M, N));
  cublasLtMatmulPreference_t pref; CK(cublasLtMatmulPreferenceCreate(&pref));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
  if (align) {
    uint32_t a32 = align;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a32, 4);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a32, 4);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a32, 4);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a32, 4);
  }
  cublasLtMatmulHeuristicResult_t res[1]; int found = 0;
  auto hs = cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 1, res, &found);
  if (hs != 0 || !found) { std::printf("%-58s heuristic status %d found %d\n", name, int(hs), found); return; }
  if (when == 1) setp();
  float alpha = 1.f, beta = 1.f;
  auto st = cublasLtMatmul(lt, desc, &alpha, W, la, A, lb, &beta, D, lc, D, lc, &res[0].algo, ws, wsb, s);
  auto se = cudaStreamSynchronize(s);
  std::printf("%-58s matmul status %d sync %d\n", name, int(st), int(se));
}
int main() {
  cublasLtCreate(&lt); cudaStreamCreate(&s); cudaMalloc(&ws, wsb);
  int ver = int(cublasLtGetVersion()); std::printf("cublasLt version %d\n", ver);
  const int64_t M = 512, N = 256, K = 256;
  void *A, *W, *D; float* sc;
  cudaMalloc(&A, M * K); cudaMalloc(&W, N * K); cudaMalloc(&D, M * N * 4); cudaMalloc(&sc, 256);
  cudaMemset(A, 0x38, M * K); cudaMemset(W, 0x38, N * K); cudaMemset(D, 0, M * N * 4);
  float h[8] = {1, 1, 1, 1, 1, 1, 1, 1}; cudaMemcpy(sc, h, sizeof h, cudaMemcpyHostToDevice);
  trial("no scale pointers", 2, nullptr, nullptr, CUDA_R_32F, M, N, K, A, W, D, 0);
  trial("no scale pointers, align 256", 2, nullptr, nullptr, CUDA_R_32F, M, N, K, A, W, D, 256);
  trial("both set before heuristic", 0, sc, sc + 4, CUDA_R_32F, M, N, K, A, W, D, 256);
  trial("both set after heuristic", 1, sc, sc + 4, CUDA_R_32F, M, N, K, A, W, D, 256);
  trial("both set before, B at +4 bytes", 0, sc, sc + 1, CUDA_R_32F, M, N, K, A, W, D, 256);
  trial("both set after, B at +4 bytes", 1, sc, sc + 1, CUDA_R_32F, M, N, K, A, W, D, 256);
  trial("A null, B set before", 0, nullptr, sc + 4, CUDA_R_32F, M, N, K, A, W, D, 256);
  trial("A null, B set after", 1, nullptr, sc + 4, CUDA_R_32F, M, N, K, A, W, D, 256);
  trial("both set before, D bf16", 0, sc, sc + 4, CUDA_R_16BF, M, N, K, A, W, D, 256);
  trial("both set after, D bf16", 1, sc, sc + 4, CUDA_R_16BF, M, N, K, A, W, D, 256);
  trial("no scale pointers, D bf16", 2, nullptr, nullptr, CUDA_R_16BF, M, N, K, A, W, D, 256);
  return 0;
}
