// The core's side of the plugin boundary (backend_abi.h): loading a backend library and the
// Engine adapter that drive it through its C table.
#pragma once
#include <memory>
#include <string>

#include "api/backend_abi.h"
#include "model/engine.h"

namespace lora4j {

// The CUDA backend's table, loaded once (thread-safe); null with *error saying why (which file,
// what the loader said, or which ABI version it has).
const lora4j_backend_api* cuda_backend(std::string* error);
// Path of the CUDA backend library to load, before the first use.
void set_cuda_backend_path(const std::string& path);
// Turns a backend status into a lora4j::Error carrying the backend's message.
void check_backend(const lora4j_backend_api* api, int status);

std::unique_ptr<Engine> make_plugin_engine(const lora4j_backend_api* api, const ModelShape& shape,
                                           const lora4j_engine_options& options);

}  // namespace lora4j
