// The CUDA benchmarks' check of a runtime call: a failure prints the call and its error, and ends
// the program with status 1.
#pragma once
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#define BENCH_CUDA(call)                                                          \
  do {                                                                            \
    cudaError_t e_ = (call);                                                      \
    if (e_ != cudaSuccess) {                                                      \
      std::fprintf(stderr, "CUDA error %s: %s\n", cudaGetErrorString(e_), #call); \
      std::exit(1);                                                               \
    }                                                                             \
  } while (0)
