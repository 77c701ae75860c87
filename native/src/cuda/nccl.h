// Our own declarations of the few NCCL functions and types lora4j uses, and the loader that opens
// libnccl.so.2 at run time, as cublaslt.h does for cuBLASLt: liblora4j_cuda needs no NCCL to be
// built (CI has none) and a single-GPU user needs none to train; a process that joins a group of
// several ranks loads the machine's NCCL then. Handles are void*, enums int, ncclUniqueId a
// struct of 128 bytes. tests/test_nccl_decls_cuda.cpp, built where the real nccl.h exists (the
// GPU machine), checks every value, the struct and every signature against it at compile time.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace lora4j {
namespace cuda {
namespace nccl {

using Result = int;  // ncclResult_t
constexpr Result kSuccess = 0;
constexpr Result kUnhandledCudaError = 1;
constexpr Result kSystemError = 2;
constexpr Result kInternalError = 3;
constexpr Result kInvalidArgument = 4;
constexpr Result kInvalidUsage = 5;
constexpr Result kRemoteError = 6;
constexpr Result kInProgress = 7;

using Comm = void*;  // ncclComm_t

constexpr int kFloat32 = 7;  // ncclDataType_t ncclFloat32
constexpr int kFloat64 = 8;  // ncclFloat64
constexpr int kSum = 0;      // ncclRedOp_t ncclSum

constexpr size_t kUniqueIdBytes = 128;  // NCCL_UNIQUE_ID_BYTES
struct UniqueId {                       // ncclUniqueId
  char internal[kUniqueIdBytes];
};

// The functions, by the names nccl.h gives them.
struct Api {
  Result (*ncclGetVersion)(int* version);
  Result (*ncclGetUniqueId)(UniqueId* id);
  Result (*ncclCommInitRank)(Comm* comm, int nranks, UniqueId id, int rank);
  Result (*ncclCommDestroy)(Comm comm);
  Result (*ncclCommAbort)(Comm comm);
  Result (*ncclCommGetAsyncError)(Comm comm, Result* async_error);
  const char* (*ncclGetErrorString)(Result result);
  const char* (*ncclGetLastError)(Comm comm);
  Result (*ncclAllReduce)(const void* sendbuff, void* recvbuff, size_t count, int datatype, int op,
                          Comm comm, cudaStream_t stream);
  Result (*ncclAllGather)(const void* sendbuff, void* recvbuff, size_t sendcount, int datatype,
                          Comm comm, cudaStream_t stream);
};

// The loaded library's functions. The first call opens libnccl.so.2: by name (LD_LIBRARY_PATH,
// the loader cache, which covers the distribution's libnccl2 package), then in $NCCL_HOME/lib,
// $CUDA_HOME/lib64, $CUDA_PATH/lib64, /usr/local/cuda/lib64, /usr/local/cuda-1*/lib64,
// $CONDA_PREFIX/lib and the nvidia-nccl Python wheels' folders (site-packages/nvidia/nccl/lib,
// nvidia/cu13/lib) of $VIRTUAL_ENV, the user's and the system's Pythons. Throws
// LORA4J_EUNSUPPORTED naming the library, what is missing and every place looked.
const Api& api();
// Where the library was loaded from (after api() succeeded).
const char* loaded_path();

}  // namespace nccl
}  // namespace cuda
}  // namespace lora4j
