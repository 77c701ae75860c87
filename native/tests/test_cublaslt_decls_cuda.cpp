// Our declarations of cuBLASLt (src/cuda/cublaslt.h) against the real header: every constant,
// the layout of the two structs, and the signature of every function (pointers compared as
// pointers, enums as int), all checked at compile time. Built only where the CUDA toolkit has
// cuBLAS (the GPU machine); then, at run time, the loader opens the machine's libcublasLt and
// its version is printed.
#include <cublasLt.h>

#include <cstddef>
#include <cstdio>
#include <type_traits>

#include "cuda/cublaslt.h"

namespace lt = lora4j::cuda::lt;

template <class T>
using Erase =
    std::conditional_t<std::is_pointer_v<T>, void*, std::conditional_t<std::is_enum_v<T>, int, T>>;
template <class F>
struct Sig;
template <class R, class... A>
struct Sig<R(A...)> {
  using type = Erase<R>(Erase<A>...);
};
template <class R, class... A>
struct Sig<R (*)(A...)> : Sig<R(A...)> {};

#define SAME_SIGNATURE(fn)                                                                   \
  static_assert(std::is_same_v<Sig<decltype(::fn)>::type, Sig<decltype(lt::Api::fn)>::type>, \
                #fn " differs from cublasLt.h")

SAME_SIGNATURE(cublasLtCreate);
SAME_SIGNATURE(cublasLtDestroy);
SAME_SIGNATURE(cublasLtGetVersion);
SAME_SIGNATURE(cublasLtMatmulDescCreate);
SAME_SIGNATURE(cublasLtMatmulDescDestroy);
SAME_SIGNATURE(cublasLtMatmulDescSetAttribute);
SAME_SIGNATURE(cublasLtMatrixLayoutCreate);
SAME_SIGNATURE(cublasLtMatrixLayoutDestroy);
SAME_SIGNATURE(cublasLtMatmulPreferenceCreate);
SAME_SIGNATURE(cublasLtMatmulPreferenceDestroy);
SAME_SIGNATURE(cublasLtMatmulPreferenceSetAttribute);
SAME_SIGNATURE(cublasLtMatmulAlgoGetHeuristic);
SAME_SIGNATURE(cublasLtMatmul);

// enums passed as int must be int-sized
static_assert(sizeof(cublasStatus_t) == sizeof(int));
static_assert(sizeof(cublasComputeType_t) == sizeof(int));
static_assert(sizeof(cublasLtMatmulDescAttributes_t) == sizeof(int));
static_assert(sizeof(cublasLtMatmulPreferenceAttributes_t) == sizeof(int));
static_assert(sizeof(cudaDataType_t) == sizeof(int));

static_assert(lt::kStatusSuccess == CUBLAS_STATUS_SUCCESS);
static_assert(lt::kStatusNotInitialized == CUBLAS_STATUS_NOT_INITIALIZED);
static_assert(lt::kStatusAllocFailed == CUBLAS_STATUS_ALLOC_FAILED);
static_assert(lt::kStatusInvalidValue == CUBLAS_STATUS_INVALID_VALUE);
static_assert(lt::kStatusArchMismatch == CUBLAS_STATUS_ARCH_MISMATCH);
static_assert(lt::kStatusExecutionFailed == CUBLAS_STATUS_EXECUTION_FAILED);
static_assert(lt::kStatusInternalError == CUBLAS_STATUS_INTERNAL_ERROR);
static_assert(lt::kStatusNotSupported == CUBLAS_STATUS_NOT_SUPPORTED);
static_assert(lt::kCompute32F == CUBLAS_COMPUTE_32F);
static_assert(lt::kOpN == CUBLAS_OP_N && lt::kOpT == CUBLAS_OP_T);
static_assert(lt::kDescTransA == CUBLASLT_MATMUL_DESC_TRANSA);
static_assert(lt::kDescTransB == CUBLASLT_MATMUL_DESC_TRANSB);
static_assert(lt::kDescAScalePointer == CUBLASLT_MATMUL_DESC_A_SCALE_POINTER);
static_assert(lt::kDescBScalePointer == CUBLASLT_MATMUL_DESC_B_SCALE_POINTER);
static_assert(lt::kPrefMaxWorkspaceBytes == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES);
static_assert(lt::kPrefMinAlignmentABytes == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES);
static_assert(lt::kPrefMinAlignmentBBytes == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES);
static_assert(lt::kPrefMinAlignmentCBytes == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES);
static_assert(lt::kPrefMinAlignmentDBytes == CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES);

static_assert(sizeof(lt::Algo) == sizeof(cublasLtMatmulAlgo_t));
static_assert(alignof(lt::Algo) == alignof(cublasLtMatmulAlgo_t));
static_assert(sizeof(lt::HeuristicResult) == sizeof(cublasLtMatmulHeuristicResult_t));
static_assert(offsetof(lt::HeuristicResult, workspaceSize) ==
              offsetof(cublasLtMatmulHeuristicResult_t, workspaceSize));
static_assert(offsetof(lt::HeuristicResult, state) ==
              offsetof(cublasLtMatmulHeuristicResult_t, state));
static_assert(offsetof(lt::HeuristicResult, wavesCount) ==
              offsetof(cublasLtMatmulHeuristicResult_t, wavesCount));

int main() {
  const lt::Api& a = lt::api();
  size_t v = a.cublasLtGetVersion();
  std::printf("[cublaslt] declarations match cublasLt.h %d.%d.%d; loaded %s, version %zu  PASS\n",
              CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH, lt::loaded_path(), v);
  return v >= 120000 ? 0 : 1;
}
