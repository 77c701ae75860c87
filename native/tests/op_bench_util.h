// The handle the op-benchmark tests (test_op_bench, test_op_bench_cuda) hold: one
// lora4j_op_bench created on construction and destroyed with the object, its outputs read back
// by name.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "lora4j_bench.h"

namespace op_bench_util {

struct Bench {
  lora4j_op_bench* h = nullptr;
  int status = 0;  // of lora4j_op_bench_create; h is null unless it is LORA4J_OK
  // Prints the error when the create fails.
  Bench(int32_t device, const char* op, const char* variant, const std::vector<int64_t>& dims,
        uint64_t seed) {
    status =
        lora4j_op_bench_create(device, op, variant, dims.data(), int32_t(dims.size()), seed, &h);
    if (status)
      std::printf("create %s/%s on %d: %s\n", op, variant ? variant : "", device,
                  lora4j_bench_last_error());
  }
  ~Bench() { lora4j_op_bench_destroy(h); }
  Bench(const Bench&) = delete;
  Bench& operator=(const Bench&) = delete;

  // Every output (only the first with first_only) as fp32, by name; one that cannot be read is
  // left out (and its error printed).
  std::map<std::string, std::vector<float>> outputs(bool first_only = false) {
    std::map<std::string, std::vector<float>> m;
    int32_t count = 0;
    lora4j_op_bench_output_count(h, &count);
    for (int32_t i = 0; i < (first_only ? std::min(count, 1) : count); ++i) {
      char name[64];
      int64_t numel = 0;
      if (lora4j_op_bench_output_info(h, i, name, sizeof name, &numel) != LORA4J_OK) continue;
      std::vector<float> v(static_cast<size_t>(numel));
      if (lora4j_op_bench_output(h, i, v.data(), numel) == LORA4J_OK)
        m[name] = std::move(v);
      else
        std::printf("output %s: %s\n", name, lora4j_bench_last_error());
    }
    return m;
  }
  // lora4j_op_bench_describe: "op/variant dims on device".
  std::string describe() {
    char text[256] = {0};
    lora4j_op_bench_describe(h, text, sizeof text);
    return text;
  }
};

}  // namespace op_bench_util
