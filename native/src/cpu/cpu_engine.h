// The CPU backend: fp32 reference of the whole training step.
#pragma once
#include <memory>

#include "model/engine.h"

namespace lora4j {
std::unique_ptr<Engine> make_cpu_engine(const ModelShape& shape,
                                        const lora4j_engine_options& options);
}
