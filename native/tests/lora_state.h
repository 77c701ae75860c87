// Reading an engine's LoRA tensors through the C API, for the tests that compare adapters.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "lora4j.h"

namespace testutil {

// Every LoRA tensor of e's adapter (lora4j_lora_info's order): its name and its state of kind
// LORA4J_STATE_PARAM or LORA4J_STATE_GRAD. A failing call prints the library's message and exits.
inline std::vector<std::pair<std::string, std::vector<float>>> lora_state(lora4j_engine* e,
                                                                          int32_t kind) {
  auto check = [](int s, const char* what) {
    if (s == LORA4J_OK) return;
    std::printf("%s failed (%d): %s\n", what, s, lora4j_last_error());
    std::exit(2);
  };
  int32_t count = 0;
  check(lora4j_lora_count(e, &count), "lora4j_lora_count");
  std::vector<std::pair<std::string, std::vector<float>>> out;
  for (int32_t i = 0; i < count; ++i) {
    char name[256];
    int64_t rows, cols;
    check(lora4j_lora_info(e, i, name, sizeof name, &rows, &cols), "lora4j_lora_info");
    std::vector<float> v(static_cast<size_t>(rows * cols));
    check(lora4j_lora_get(e, kind, name, v.data(), rows * cols), "lora4j_lora_get");
    out.emplace_back(name, std::move(v));
  }
  return out;
}

}  // namespace testutil
