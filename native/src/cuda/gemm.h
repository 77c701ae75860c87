// Row-major GEMMs through cuBLASLt (loaded at run time, cuda/cublaslt.h): bf16 operands, fp32
// accumulation, output bf16 or fp32, optional accumulation into the output (beta = 1).
// Algorithms are chosen once per shape and cached.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "cuda/cublaslt.h"

namespace lora4j {
namespace cuda {

class Gemm {
 public:
  Gemm() = default;
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;
  // Creates the handle and workspace (throws lora4j::Error).
  void init(cudaStream_t stream, void* workspace, size_t workspace_bytes);
  // D[M, N] = alpha * op(A)[M, K] * op(B)[K, N] + beta * D, all row-major.
  // op(A) = A^T when ta (A stored [K, M] with row stride lda), else A stored [M, K].
  // op(B) = B^T when tb (B stored [N, K]), else B stored [K, N]. D is bf16 or fp32 (d_f32).
  // C (same type and layout as D) defaults to D itself.
  void run(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const __nv_bfloat16* A, int64_t lda,
           const __nv_bfloat16* B, int64_t ldb, void* D, bool d_f32, int64_t ldd, float alpha,
           float beta, const char* what, const void* C = nullptr);
  // D[M, N] (fp32, row stride ldd) = alpha * sa * sb * A[M, K] B[N, K]^T + beta * D with A and B
  // e4m3, row-major (lda, ldb multiples of 16; cuBLASLt's FP8 kernels take only this form), sa
  // and sb read from device memory at a_scale and b_scale (null: 1; 16-byte aligned, as cuBLASLt
  // requires: an error naming `what` otherwise). Needs sm_89 or later.
  void run_e4m3(int64_t M, int64_t N, int64_t K, const uint8_t* A, int64_t lda,
                const float* a_scale, const uint8_t* B, int64_t ldb, const float* b_scale, float* D,
                int64_t ldd, float alpha, float beta, const char* what);
  // D[M, N] (fp32, row stride ldd) = alpha * A[M, K] B[N, K]^T + beta * D with A and B fp16,
  // row-major (fp32 accumulation): the q and k projections' GEMM on their fp16 input.
  void run_f16(int64_t M, int64_t N, int64_t K, const __half* A, int64_t lda, const __half* B,
               int64_t ldb, float* D, int64_t ldd, float alpha, float beta, const char* what);
  // Called after every GEMM is queued, with its `what` (the engine's LORA4J_PHASE_TIMES).
  void set_after(void (*fn)(void* ctx, const char* what), void* ctx) {
    after_ = fn;
    after_ctx_ = ctx;
  }

 private:
  void (*after_)(void*, const char*) = nullptr;
  void* after_ctx_ = nullptr;
  const lt::Api* api_ = nullptr;
  lt::Handle lt_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* ws_ = nullptr;
  size_t ws_bytes_ = 0;
  using Key =
      std::tuple<int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int, int>;
  struct Plan {
    lt::MatmulDesc desc = nullptr;
    lt::MatrixLayout a = nullptr, b = nullptr, d = nullptr;
    lt::Algo algo;
  };
  std::map<Key, Plan> plans_;
  std::map<Key, Plan> e4m3_plans_;
  std::map<Key, Plan> f16_plans_;
  // a cublasLtMatmul's status: a lora4j::Error naming `what` unless success; then the after_ hook
  void launched(int status, const char* what);
  // the plan of a problem (column-major, as cuBLASLt poses it): creates it on first use
  const Plan& plan(std::map<Key, Plan>& plans, const Key& key, int opa, int opb, cudaDataType_t ab,
                   uint64_t a_rows, uint64_t a_cols, int64_t lda, uint64_t b_rows, uint64_t b_cols,
                   int64_t ldb, cudaDataType_t d_type, uint64_t d_rows, uint64_t d_cols,
                   int64_t ldd, int align, const char* what);
};

}  // namespace cuda
}  // namespace lora4j
