// cuBLASLt row-major GEMM wrapper; see gemm.h. A row-major [M, N] matrix is the column-major
// [N, M] matrix with the same leading dimension, so D^T = op(B)^T op(A)^T is computed with the
// operands swapped.
#include "cuda/gemm.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "cuda/check.h"

namespace lora4j {
namespace cuda {

namespace {
bool tuning_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("LORA4J_GEMM_TUNE");
    return !(e && std::strcmp(e, "0") == 0);
  }();
  return on;
}
// The algorithms chosen so far, per device and shape, for every Gemm of the process.
std::mutex& tuned_mutex() {
  static std::mutex m;
  return m;
}
template <class K>
std::map<std::pair<int, K>, lt::Algo>& tuned() {
  static std::map<std::pair<int, K>, lt::Algo> m;
  return m;
}

int align_of(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int al = 256;
  while (al > 2 && (a % uintptr_t(al)) != 0) al >>= 1;
  return al;
}
}  // namespace

Gemm::~Gemm() {
  if (!api_) return;
  for (auto& kv : plans_) {
    api_->cublasLtMatmulDescDestroy(kv.second.desc);
    api_->cublasLtMatrixLayoutDestroy(kv.second.a);
    api_->cublasLtMatrixLayoutDestroy(kv.second.b);
    api_->cublasLtMatrixLayoutDestroy(kv.second.d);
  }
  if (lt_) api_->cublasLtDestroy(lt_);
}

void Gemm::init(cudaStream_t stream, void* workspace, size_t workspace_bytes, void* tune_scratch,
                size_t tune_bytes) {
  stream_ = stream;
  ws_ = workspace;
  ws_bytes_ = workspace_bytes;
  tune_ = tune_scratch;
  tune_bytes_ = tune_scratch ? tune_bytes : 0;
  LORA4J_CU(cudaGetDevice(&device_));
  api_ = &lt::api();  // throws EUNSUPPORTED naming where libcublasLt was looked for
  LORA4J_CUBLAS(api_->cublasLtCreate(&lt_));
}

void Gemm::run(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const __nv_bfloat16* A,
               int64_t lda, const __nv_bfloat16* B, int64_t ldb, void* D, bool d_f32, int64_t ldd,
               float alpha, float beta, const char* what, const void* C) {
  if (M <= 0 || N <= 0) return;
  if (!C) C = D;
  int al = std::min(std::min(align_of(A), align_of(B)), std::min(align_of(D), align_of(C)));
  Key key{ta, tb, M, N, K, lda, ldb, ldd, d_f32, beta != 0.f, al};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    Plan pl;
    lt::Preference pref = nullptr;
    try {
      // column-major problem: m = N, n = M, first operand = B, second = A
      int opa = tb ? lt::kOpT : lt::kOpN;
      int opb = ta ? lt::kOpT : lt::kOpN;
      LORA4J_CUBLAS(api_->cublasLtMatmulDescCreate(&pl.desc, lt::kCompute32F, CUDA_R_32F));
      LORA4J_CUBLAS(
          api_->cublasLtMatmulDescSetAttribute(pl.desc, lt::kDescTransA, &opa, sizeof opa));
      LORA4J_CUBLAS(
          api_->cublasLtMatmulDescSetAttribute(pl.desc, lt::kDescTransB, &opb, sizeof opb));
      // stored shapes (column-major rows x cols): first operand op(X) is [N, K]
      uint64_t a_rows = tb ? uint64_t(K) : uint64_t(N), a_cols = tb ? uint64_t(N) : uint64_t(K);
      uint64_t b_rows = ta ? uint64_t(M) : uint64_t(K), b_cols = ta ? uint64_t(K) : uint64_t(M);
      LORA4J_CUBLAS(api_->cublasLtMatrixLayoutCreate(&pl.a, CUDA_R_16BF, a_rows, a_cols, ldb));
      LORA4J_CUBLAS(api_->cublasLtMatrixLayoutCreate(&pl.b, CUDA_R_16BF, b_rows, b_cols, lda));
      LORA4J_CUBLAS(api_->cublasLtMatrixLayoutCreate(&pl.d, d_f32 ? CUDA_R_32F : CUDA_R_16BF,
                                                     uint64_t(N), uint64_t(M), ldd));
      LORA4J_CUBLAS(api_->cublasLtMatmulPreferenceCreate(&pref));
      uint64_t ws = ws_bytes_;
      uint32_t a32 = uint32_t(al);
      api_->cublasLtMatmulPreferenceSetAttribute(pref, lt::kPrefMaxWorkspaceBytes, &ws, sizeof ws);
      api_->cublasLtMatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentABytes, &a32,
                                                 sizeof a32);
      api_->cublasLtMatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentBBytes, &a32,
                                                 sizeof a32);
      api_->cublasLtMatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentCBytes, &a32,
                                                 sizeof a32);
      api_->cublasLtMatmulPreferenceSetAttribute(pref, lt::kPrefMinAlignmentDBytes, &a32,
                                                 sizeof a32);
      // Tunable: the output is overwritten (beta 0, C = D) or fits the scratch.
      const size_t d_bytes = size_t(M) * size_t(ldd) * (d_f32 ? 4 : 2);
      const bool in_place = beta == 0.f && C == D;
      const bool tunable = tuning_enabled() && (in_place || d_bytes <= tune_bytes_);
      bool cached = false;
      {
        std::lock_guard<std::mutex> g(tuned_mutex());
        auto t = tuned<Key>().find({device_, key});
        if (t != tuned<Key>().end()) {
          pl.algo = t->second;
          cached = true;
        }
      }
      if (!cached) {
        lt::HeuristicResult res[kTuneCandidates] = {};
        int found = 0;
        lt::Status st = api_->cublasLtMatmulAlgoGetHeuristic(
            lt_, pl.desc, pl.a, pl.b, pl.d, pl.d, pref, tunable ? kTuneCandidates : 1, res, &found);
        if (st != lt::kStatusSuccess || found == 0)
          fail(LORA4J_EDEVICE,
               std::string("cublasLtMatmulAlgoGetHeuristic found no algorithm for ") + what + " [" +
                   std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) +
                   "], status " + std::to_string(int(st)));
        pl.algo = found > 1 ? tune(pl, res, found, key, A, B, in_place ? D : tune_,
                                   in_place ? C : tune_, d_bytes, alpha, beta, what)
                            : res[0].algo;
        std::lock_guard<std::mutex> g(tuned_mutex());
        tuned<Key>().emplace(std::make_pair(device_, key), pl.algo);
      }
      api_->cublasLtMatmulPreferenceDestroy(pref);
      pref = nullptr;
    } catch (...) {
      if (pref) api_->cublasLtMatmulPreferenceDestroy(pref);
      if (pl.desc) api_->cublasLtMatmulDescDestroy(pl.desc);
      if (pl.a) api_->cublasLtMatrixLayoutDestroy(pl.a);
      if (pl.b) api_->cublasLtMatrixLayoutDestroy(pl.b);
      if (pl.d) api_->cublasLtMatrixLayoutDestroy(pl.d);
      throw;
    }
    it = plans_.emplace(key, pl).first;
  }
  const Plan& pl = it->second;
  lt::Status st = api_->cublasLtMatmul(lt_, pl.desc, &alpha, B, pl.a, A, pl.b, &beta, C, pl.d, D,
                                       pl.d, &pl.algo, ws_, ws_bytes_, stream_);
  if (st != lt::kStatusSuccess)
    fail(st == lt::kStatusAllocFailed ? LORA4J_ENOMEM : LORA4J_EDEVICE,
         std::string("cublasLtMatmul (") + what + ") failed: cuBLAS status " +
             std::to_string(int(st)));
  if (after_) after_(after_ctx_, what);
}

lt::Algo Gemm::tune(const Plan& pl, const lt::HeuristicResult* cand, int found, const Key& key,
                    const void* A, const void* B, void* D, const void* C, size_t d_bytes,
                    float alpha, float beta, const char* what) {
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  LORA4J_CU(cudaEventCreate(&e0));
  if (cudaEventCreate(&e1) != cudaSuccess) {
    cudaEventDestroy(e0);
    fail(LORA4J_EDEVICE, "cudaEventCreate failed while tuning a GEMM");
  }
  constexpr int kReps = 3;
  float ms[kTuneCandidates];
  int best = 0;
  for (int i = 0; i < found; ++i) {
    ms[i] = -1.f;
    auto launch = [&] {
      return api_->cublasLtMatmul(lt_, pl.desc, &alpha, B, pl.a, A, pl.b, &beta, C, pl.d, D, pl.d,
                                  &cand[i].algo, ws_, ws_bytes_, stream_);
    };
    if (launch() != lt::kStatusSuccess) continue;  // a candidate that cannot run is skipped
    cudaEventRecord(e0, stream_);
    bool ok = true;
    for (int r = 0; r < kReps && ok; ++r) ok = launch() == lt::kStatusSuccess;
    cudaEventRecord(e1, stream_);
    if (cudaEventSynchronize(e1) != cudaSuccess || !ok) continue;
    float t = 0.f;
    cudaEventElapsedTime(&t, e0, e1);
    ms[i] = t / kReps;
    // another algorithm replaces the heuristic's first only when clearly faster (> 3 %), so
    // that timing noise alone does not change the choice
    if (ms[best] < 0.f || (i > 0 && ms[i] < 0.97f * ms[best])) best = i;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    fail(LORA4J_EDEVICE,
         std::string("tuning the GEMM ") + what + " failed: " + cudaGetErrorString(err));
  if (ms[best] < 0.f)
    fail(LORA4J_EDEVICE, std::string("no cuBLASLt algorithm ran for ") + what + " [" +
                             std::to_string(std::get<2>(key)) + "x" +
                             std::to_string(std::get<3>(key)) + "x" +
                             std::to_string(std::get<4>(key)) + "]");
  if (const char* log = std::getenv("LORA4J_GEMM_TUNE_LOG")) {
    if (FILE* f = std::fopen(log, "a")) {
      std::fprintf(f,
                   "{\"what\": \"%s\", \"device\": %d, \"M\": %lld, \"N\": %lld, \"K\": %lld, "
                   "\"beta\": %g, \"out_bytes\": %zu, \"candidates\": %d, \"heuristic_ms\": %.4f, "
                   "\"chosen\": %d, \"chosen_ms\": %.4f}\n",
                   what, device_, (long long)std::get<2>(key), (long long)std::get<3>(key),
                   (long long)std::get<4>(key), double(beta), d_bytes, found, double(ms[0]), best,
                   double(ms[best]));
      std::fclose(f);
    }
  }
  return cand[best].algo;
}

}  // namespace cuda
}  // namespace lora4j
