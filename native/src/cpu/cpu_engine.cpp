// Placeholder until the CPU engine lands: every engine creation is refused with a clear error.
#include "cpu/cpu_engine.h"

namespace lora4j {
std::unique_ptr<Engine> make_cpu_engine(const ModelShape&, const lora4j_engine_options&) {
  fail(LORA4J_EUNSUPPORTED, "the CPU engine is not built in this revision");
}
}  // namespace lora4j
