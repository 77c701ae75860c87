// cuBLASLt row-major GEMM wrapper; see gemm.h. A row-major [M, N] matrix is the column-major
// [N, M] matrix with the same leading dimension, so D^T = op(B)^T op(A)^T is computed with the
// operands swapped.
#include "cuda/gemm.h"

#include <string>

#include "cuda/check.h"

namespace lora4j {
namespace cuda {

namespace {
int align_of(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int al = 256;
  while (al > 2 && (a % uintptr_t(al)) != 0) al >>= 1;
  return al;
}
}  // namespace

Gemm::~Gemm() {
  if (!api_) return;
  for (auto* plans : {&plans_, &e4m3_plans_, &f16_plans_})
    for (auto& kv : *plans) {
      api_->cublasLtMatmulDescDestroy(kv.second.desc);
      api_->cublasLtMatrixLayoutDestroy(kv.second.a);
      api_->cublasLtMatrixLayoutDestroy(kv.second.b);
      api_->cublasLtMatrixLayoutDestroy(kv.second.d);
    }
  if (lt_) api_->cublasLtDestroy(lt_);
}

void Gemm::init(cudaStream_t stream, void* workspace, size_t workspace_bytes) {
  stream_ = stream;
  ws_ = workspace;
  ws_bytes_ = workspace_bytes;
  api_ = &lt::api();  // throws EUNSUPPORTED naming where libcublasLt was looked for
  LORA4J_CUBLAS(api_->cublasLtCreate(&lt_));
}

const Gemm::Plan& Gemm::plan(std::map<Key, Plan>& plans, const Key& key, int opa, int opb,
                             cudaDataType_t ab, uint64_t a_rows, uint64_t a_cols, int64_t lda,
                             uint64_t b_rows, uint64_t b_cols, int64_t ldb, cudaDataType_t d_type,
                             uint64_t d_rows, uint64_t d_cols, int64_t ldd, int align,
                             const char* what) {
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;
  Plan pl;
  try {
    LORA4J_CUBLAS(api_->cublasLtMatmulDescCreate(&pl.desc, lt::kCompute32F, CUDA_R_32F));
    LORA4J_CUBLAS(api_->cublasLtMatmulDescSetAttribute(pl.desc, lt::kDescTransA, &opa, sizeof opa));
    LORA4J_CUBLAS(api_->cublasLtMatmulDescSetAttribute(pl.desc, lt::kDescTransB, &opb, sizeof opb));
    LORA4J_CUBLAS(api_->cublasLtMatrixLayoutCreate(&pl.a, ab, a_rows, a_cols, lda));
    LORA4J_CUBLAS(api_->cublasLtMatrixLayoutCreate(&pl.b, ab, b_rows, b_cols, ldb));
    LORA4J_CUBLAS(api_->cublasLtMatrixLayoutCreate(&pl.d, d_type, d_rows, d_cols, ldd));
    lt::Preference pref = nullptr;
    LORA4J_CUBLAS(api_->cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = ws_bytes_;
    uint32_t a32 = uint32_t(align);
    api_->cublasLtMatmulPreferenceSetAttribute(pref, lt::kPrefMaxWorkspaceBytes, &ws, sizeof ws);
    api_->cublasLtMatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentABytes, &a32, sizeof a32);
    api_->cublasLtMatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentBBytes, &a32, sizeof a32);
    api_->cublasLtMatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentCBytes, &a32, sizeof a32);
    api_->cublasLtMatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentDBytes, &a32, sizeof a32);
    lt::HeuristicResult res{};
    int found = 0;
    lt::Status st = api_->cublasLtMatmulAlgoGetHeuristic(lt_, pl.desc, pl.a, pl.b, pl.d, pl.d, pref,
                                                         1, &res, &found);
    api_->cublasLtMatmulPreferenceDestroy(pref);
    if (st != lt::kStatusSuccess || found == 0)
      fail(LORA4J_EDEVICE, std::string("cublasLtMatmulAlgoGetHeuristic found no algorithm for ") +
                               what + " [" + std::to_string(d_cols) + "x" + std::to_string(d_rows) +
                               "x" + std::to_string(opa == lt::kOpT ? a_rows : a_cols) +
                               "], status " + std::to_string(int(st)));
    pl.algo = res.algo;
  } catch (...) {
    if (pl.desc) api_->cublasLtMatmulDescDestroy(pl.desc);
    if (pl.a) api_->cublasLtMatrixLayoutDestroy(pl.a);
    if (pl.b) api_->cublasLtMatrixLayoutDestroy(pl.b);
    if (pl.d) api_->cublasLtMatrixLayoutDestroy(pl.d);
    throw;
  }
  return plans.emplace(key, pl).first->second;
}

void Gemm::run(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const __nv_bfloat16* A,
               int64_t lda, const __nv_bfloat16* B, int64_t ldb, void* D, bool d_f32, int64_t ldd,
               float alpha, float beta, const char* what, const void* C) {
  if (M <= 0 || N <= 0) return;
  if (!C) C = D;
  int al = std::min(std::min(align_of(A), align_of(B)), std::min(align_of(D), align_of(C)));
  Key key{ta, tb, M, N, K, lda, ldb, ldd, d_f32, beta != 0.f, al};
  // column-major problem: m = N, n = M, first operand = B, second = A; stored shapes
  // (column-major rows x cols): the first operand op(X) is [N, K]
  const Plan& pl = plan(plans_, key, tb ? lt::kOpT : lt::kOpN, ta ? lt::kOpT : lt::kOpN,
                        CUDA_R_16BF, tb ? uint64_t(K) : uint64_t(N), tb ? uint64_t(N) : uint64_t(K),
                        ldb, ta ? uint64_t(M) : uint64_t(K), ta ? uint64_t(K) : uint64_t(M), lda,
                        d_f32 ? CUDA_R_32F : CUDA_R_16BF, uint64_t(N), uint64_t(M), ldd, al, what);
  launched(api_->cublasLtMatmul(lt_, pl.desc, &alpha, B, pl.a, A, pl.b, &beta, C, pl.d, D, pl.d,
                                &pl.algo, ws_, ws_bytes_, stream_),
           what);
}

void Gemm::run_e4m3(int64_t M, int64_t N, int64_t K, const uint8_t* A, int64_t lda,
                    const float* a_scale, const uint8_t* B, int64_t ldb, const float* b_scale,
                    float* D, int64_t ldd, float alpha, float beta, const char* what) {
  if (M <= 0 || N <= 0) return;
  // cublasLtMatmul refuses (status 15) a scale pointer that is not 16-byte aligned
  for (const float* sc : {a_scale, b_scale})
    if (sc && align_of(sc) < 16)
      fail(LORA4J_EINVAL, std::string(what) + ": an e4m3 scale pointer is not 16-byte aligned");
  int al = std::min(std::min(align_of(A), align_of(B)), align_of(D));
  Key key{1, 0, M, N, K, lda, ldb, ldd, 1, beta != 0.f, al};
  // column-major: the first operand is B (stored [K, N], op T: the "TN" form FP8 needs), the
  // second A (stored [K, M], op N); cuBLASLt's A scale is therefore B's and its B scale A's
  const Plan& pl =
      plan(e4m3_plans_, key, lt::kOpT, lt::kOpN, CUDA_R_8F_E4M3, uint64_t(K), uint64_t(N), ldb,
           uint64_t(K), uint64_t(M), lda, CUDA_R_32F, uint64_t(N), uint64_t(M), ldd, al, what);
  LORA4J_CUBLAS(api_->cublasLtMatmulDescSetAttribute(pl.desc, lt::kDescAScalePointer, &b_scale,
                                                     sizeof b_scale));
  LORA4J_CUBLAS(api_->cublasLtMatmulDescSetAttribute(pl.desc, lt::kDescBScalePointer, &a_scale,
                                                     sizeof a_scale));
  launched(api_->cublasLtMatmul(lt_, pl.desc, &alpha, B, pl.a, A, pl.b, &beta, D, pl.d, D, pl.d,
                                &pl.algo, ws_, ws_bytes_, stream_),
           what);
}

void Gemm::run_f16(int64_t M, int64_t N, int64_t K, const __half* A, int64_t lda, const __half* B,
                   int64_t ldb, float* D, int64_t ldd, float alpha, float beta, const char* what) {
  if (M <= 0 || N <= 0) return;
  int al = std::min(std::min(align_of(A), align_of(B)), align_of(D));
  Key key{0, 1, M, N, K, lda, ldb, ldd, 1, beta != 0.f, al};
  // column-major: the first operand is B (stored [K, N] column-major, op T), the second A
  const Plan& pl =
      plan(f16_plans_, key, lt::kOpT, lt::kOpN, CUDA_R_16F, uint64_t(K), uint64_t(N), ldb,
           uint64_t(K), uint64_t(M), lda, CUDA_R_32F, uint64_t(N), uint64_t(M), ldd, al, what);
  launched(api_->cublasLtMatmul(lt_, pl.desc, &alpha, B, pl.a, A, pl.b, &beta, D, pl.d, D, pl.d,
                                &pl.algo, ws_, ws_bytes_, stream_),
           what);
}

void Gemm::launched(int status, const char* what) {
  if (status != lt::kStatusSuccess)
    fail(status == lt::kStatusAllocFailed ? LORA4J_ENOMEM : LORA4J_EDEVICE,
         std::string("cublasLtMatmul (") + what + ") failed: cuBLAS status " +
             std::to_string(status));
  if (after_) after_(after_ctx_, what);
}

}  // namespace cuda
}  // namespace lora4j
