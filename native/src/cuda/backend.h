// What the CUDA backend's C++ parts offer its plugin entry (backend_entry.cpp). Internal to
// liblora4j_cuda: none of it crosses into the core, which sees only api/backend_abi.h.
#pragma once
#include <cstdint>
#include <string>

#include "lora4j.h"
#include "model/engine.h"

namespace lora4j {
namespace cuda {

// A CUDA engine on options.device_index (throws lora4j::Error).
Engine* make_engine(const lora4j_model_config& config, const lora4j_engine_options& options);
// Number of CUDA devices; 0 with the reason in *why.
int device_count(std::string* why);
// A new NCCL unique id (id_bytes == 128; throws lora4j::Error when NCCL does not load).
void make_unique_id(uint8_t* id, int32_t id_bytes);

}  // namespace cuda
}  // namespace lora4j
