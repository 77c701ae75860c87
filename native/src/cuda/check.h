// Turning CUDA and cuBLAS status codes into lora4j::Error: out-of-memory becomes
// LORA4J_ENOMEM, anything else LORA4J_EDEVICE, with the failing call in the message. And the
// check of a requested device ordinal, which is the caller's error (LORA4J_EINVAL).
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "cuda/cublaslt.h"
#include "model/engine.h"

namespace lora4j {
namespace cuda {

inline void cuda_check(cudaError_t e, const char* call) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the engine stays usable
  int code = (e == cudaErrorMemoryAllocation) ? LORA4J_ENOMEM : LORA4J_EDEVICE;
  fail(code,
       std::string(call) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}
inline void cublas_check(lt::Status s, const char* call) {
  if (s == lt::kStatusSuccess) return;
  int code = (s == lt::kStatusAllocFailed) ? LORA4J_ENOMEM : LORA4J_EDEVICE;
  fail(code, std::string(call) + " failed: cuBLAS status " + std::to_string(int(s)));
}

}  // namespace cuda
}  // namespace lora4j

#define LORA4J_CU(call) ::lora4j::cuda::cuda_check((call), #call)
#define LORA4J_CUBLAS(call) ::lora4j::cuda::cublas_check((call), #call)

namespace lora4j {
namespace cuda {

// Throws LORA4J_EINVAL, with the number of devices present, unless CUDA device `index` exists.
inline void check_device_index(int index) {
  int count = 0;
  LORA4J_CU(cudaGetDeviceCount(&count));
  if (index < 0 || index >= count)
    fail(LORA4J_EINVAL, "CUDA device index " + std::to_string(index) +
                            " is out of range: " + std::to_string(count) + " device(s) present");
}

}  // namespace cuda
}  // namespace lora4j
