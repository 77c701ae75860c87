// The entry of liblora4j_cuda_bench: lora4j_cuda_bench_entry and its plain-C table
// (bench/cuda_bench_abi.h) over the CUDA op benchmarks of op_bench_cuda.cpp. Every exception
// becomes a status and a thread-local message.
#include <cuda_runtime.h>

#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "bench/cuda_bench_abi.h"
#include "model/engine.h"
#include "model/status.h"
#include "bench/op_bench.h"

struct lora4j_cuda_op_bench {
  std::unique_ptr<lora4j::OpBench> impl;
};

namespace lora4j {
namespace cuda {
OpBench* make_op_bench(const OpBenchSpec& spec);  // op_bench_cuda.cpp

namespace {

thread_local std::string t_error;

template <class F>
int guard(F&& f) noexcept {
  return run_status(&t_error, "", "internal error in the CUDA benchmarks: ", f);
}

OpBench& B(lora4j_cuda_op_bench* b) {
  if (!b || !b->impl) fail(LORA4J_EINVAL, "op bench handle is null");
  return *b->impl;
}

const char* last_error() { return t_error.c_str(); }

int device_count(int32_t* count) {
  return guard([&] {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      cudaGetLastError();
      t_error = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(e) + " (" +
                cudaGetErrorString(e) + ")";
      n = 0;
    } else if (n == 0) {
      t_error = "no CUDA device is present";
    }
    *count = n;
  });
}
int create(int32_t device_index, const char* op, const char* variant, const int64_t* dims,
           int32_t ndims, uint64_t seed, lora4j_cuda_op_bench** out) {
  return guard([&] {
    OpBenchSpec spec;
    spec.op = op;
    spec.variant = variant;
    spec.dims.assign(dims, dims + ndims);
    spec.seed = seed;
    spec.device_index = device_index;
    auto h = std::make_unique<lora4j_cuda_op_bench>();
    h->impl.reset(make_op_bench(spec));
    *out = h.release();
  });
}
int destroy(lora4j_cuda_op_bench* b) {
  return guard([&] { delete b; });
}
int run(lora4j_cuda_op_bench* b, int32_t iterations) {
  return guard([&] { B(b).run(iterations); });
}
int cost(lora4j_cuda_op_bench* b, double* bytes, int64_t* mem) {
  return guard([&] {
    *bytes = B(b).bytes;
    *mem = B(b).memory;
  });
}
int output_count(lora4j_cuda_op_bench* b, int32_t* count) {
  return guard([&] { *count = int32_t(B(b).outputs.size()); });
}
int output_info(lora4j_cuda_op_bench* b, int32_t index, char* name, int32_t name_cap,
                int64_t* numel) {
  return guard([&] {
    OpBench& o = B(b);
    check_arg(index >= 0 && size_t(index) < o.outputs.size(), "output index out of range");
    const std::string& n = o.outputs[size_t(index)].name;
    check_arg(name_cap > int32_t(n.size()), "name buffer too small for " + n);
    std::memcpy(name, n.c_str(), n.size() + 1);
    *numel = o.outputs[size_t(index)].numel;
  });
}
int output(lora4j_cuda_op_bench* b, int32_t index, float* out) {
  return guard([&] {
    OpBench& o = B(b);
    check_arg(index >= 0 && size_t(index) < o.outputs.size(), "output index out of range");
    o.output(index, out);
  });
}

const lora4j_cuda_bench_api kApi = {
    LORA4J_CUDA_BENCH_ABI_VERSION,
    sizeof(lora4j_cuda_bench_api),
    last_error,
    device_count,
    create,
    destroy,
    run,
    cost,
    output_count,
    output_info,
    output,
};

}  // namespace
}  // namespace cuda
}  // namespace lora4j

extern "C" __attribute__((visibility("default"))) const lora4j_cuda_bench_api*
lora4j_cuda_bench_entry(void) {
  return &lora4j::cuda::kApi;
}
