// The two symbols liblora4j loads from liblora4j_cuda with dlsym.
#pragma once
#include "lora4j.h"
#include "model/engine.h"

extern "C" {
// Creates a CUDA engine, or returns null with *code and err (err_cap bytes) set.
typedef lora4j::Engine* (*lora4j_cuda_create_fn)(const lora4j_model_config* config,
                                                  const lora4j_engine_options* options,
                                                  int* code, char* err, int err_cap);
// Number of CUDA devices (> 0), or 0 with the reason in err.
typedef int (*lora4j_cuda_probe_fn)(char* err, int err_cap);
}
