// The symbols liblora4j loads from liblora4j_cuda with dlsym.
#pragma once
#include "lora4j.h"
#include "model/engine.h"
#include "model/op_bench.h"

extern "C" {
// Creates a CUDA engine, or returns null with *code and err (err_cap bytes) set.
typedef lora4j::Engine* (*lora4j_cuda_create_fn)(const lora4j_model_config* config,
                                                  const lora4j_engine_options* options,
                                                  int* code, char* err, int err_cap);
// Number of CUDA devices (> 0), or 0 with the reason in err.
typedef int (*lora4j_cuda_probe_fn)(char* err, int err_cap);
// Creates a single-op benchmark (lora4j_op_bench_create; the spec is validated and complete) on
// CUDA device spec->device_index, or returns null with *code and err set. Optional: a library
// without it still serves the engine.
typedef lora4j::OpBench* (*lora4j_cuda_op_bench_fn)(const lora4j::OpBenchSpec* spec, int* code,
                                                    char* err, int err_cap);
}
