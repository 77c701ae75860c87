// Our own declarations of the few cuBLASLt functions and constants lora4j uses, and the loader
// that opens libcublasLt at run time. liblora4j_cuda therefore needs no cuBLAS at build time (it
// is built wherever nvcc is, CI included, and ships in every jar) and loads the machine's
// libcublasLt only when a CUDA engine is created. Handles are void* (opaque pointers in
// cublasLt.h), enums are int. tests/test_cublaslt_decls_cuda.cpp, built on machines that have
// the real header, checks every value, struct layout and function signature here against it.
#pragma once
#include <cuda_runtime.h>
#include <library_types.h>  // cudaDataType_t: part of the CUDA runtime headers

#include <cstddef>
#include <cstdint>

namespace lora4j {
namespace cuda {
namespace lt {

using Status = int;  // cublasStatus_t
constexpr Status kStatusSuccess = 0;
constexpr Status kStatusNotInitialized = 1;
constexpr Status kStatusAllocFailed = 3;
constexpr Status kStatusInvalidValue = 7;
constexpr Status kStatusArchMismatch = 8;
constexpr Status kStatusExecutionFailed = 13;
constexpr Status kStatusInternalError = 14;
constexpr Status kStatusNotSupported = 15;

using Handle = void*;        // cublasLtHandle_t
using MatmulDesc = void*;    // cublasLtMatmulDesc_t
using MatrixLayout = void*;  // cublasLtMatrixLayout_t
using Preference = void*;    // cublasLtMatmulPreference_t

constexpr int kCompute32F = 68;  // cublasComputeType_t CUBLAS_COMPUTE_32F
constexpr int kOpN = 0;          // cublasOperation_t
constexpr int kOpT = 1;
constexpr int kDescTransA = 3;  // cublasLtMatmulDescAttributes_t
constexpr int kDescTransB = 4;
constexpr int kDescAScalePointer = 17;  // device float: dequantization scale of an FP8 operand
constexpr int kDescBScalePointer = 18;
constexpr int kPrefMaxWorkspaceBytes = 1;  // cublasLtMatmulPreferenceAttributes_t
constexpr int kPrefMinAlignmentABytes = 5;
constexpr int kPrefMinAlignmentBBytes = 6;
constexpr int kPrefMinAlignmentCBytes = 7;
constexpr int kPrefMinAlignmentDBytes = 8;

struct Algo {  // cublasLtMatmulAlgo_t
  uint64_t data[8];
};
struct HeuristicResult {  // cublasLtMatmulHeuristicResult_t
  Algo algo;
  size_t workspaceSize;
  Status state;
  float wavesCount;
  int reserved[4];
};

// The functions, by the names cublasLt.h gives them.
struct Api {
  Status (*cublasLtCreate)(Handle* handle);
  Status (*cublasLtDestroy)(Handle handle);
  size_t (*cublasLtGetVersion)(void);
  Status (*cublasLtMatmulDescCreate)(MatmulDesc* desc, int compute_type, cudaDataType_t scale_type);
  Status (*cublasLtMatmulDescDestroy)(MatmulDesc desc);
  Status (*cublasLtMatmulDescSetAttribute)(MatmulDesc desc, int attr, const void* buf, size_t size);
  Status (*cublasLtMatrixLayoutCreate)(MatrixLayout* layout, cudaDataType_t type, uint64_t rows,
                                       uint64_t cols, int64_t ld);
  Status (*cublasLtMatrixLayoutDestroy)(MatrixLayout layout);
  Status (*cublasLtMatmulPreferenceCreate)(Preference* pref);
  Status (*cublasLtMatmulPreferenceDestroy)(Preference pref);
  Status (*cublasLtMatmulPreferenceSetAttribute)(Preference pref, int attr, const void* buf,
                                                 size_t size);
  Status (*cublasLtMatmulAlgoGetHeuristic)(Handle handle, MatmulDesc desc, MatrixLayout a,
                                           MatrixLayout b, MatrixLayout c, MatrixLayout d,
                                           Preference pref, int requested, HeuristicResult* results,
                                           int* returned);
  Status (*cublasLtMatmul)(Handle handle, MatmulDesc desc, const void* alpha, const void* a,
                           MatrixLayout a_desc, const void* b, MatrixLayout b_desc,
                           const void* beta, const void* c, MatrixLayout c_desc, void* d,
                           MatrixLayout d_desc, const Algo* algo, void* workspace,
                           size_t workspace_bytes, cudaStream_t stream);
};

// The loaded library's functions. The first call opens libcublasLt.so.13 (then .so.12): by
// name (LD_LIBRARY_PATH, the loader cache), then in $CUDA_HOME/lib64, $CUDA_PATH/lib64,
// /usr/local/cuda/lib64, /usr/local/cuda-13*/lib64, $CONDA_PREFIX/lib and the lib folders of
// the nvidia-cublas Python wheels (site-packages/nvidia/cu13/lib, nvidia/cublas/lib) of
// $VIRTUAL_ENV, the user's and the system's Pythons. Throws LORA4J_EUNSUPPORTED naming the
// library and every place looked when none loads.
const Api& api();
// Where the library was loaded from (after api() succeeded).
const char* loaded_path();

}  // namespace lt
}  // namespace cuda
}  // namespace lora4j
