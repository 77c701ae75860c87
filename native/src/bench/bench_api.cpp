// The C API of lora4j_bench.h: the single-op benchmarks, outside the product libraries. The op
// table and the CPU implementations are here; the CUDA implementations live in
// liblora4j_cuda_bench, opened with dlopen and driven through its plain-C table
// (bench/cuda_bench_abi.h), as the core drives the CUDA backend.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "api/plugin_open.h"
#include "bench/cuda_bench_abi.h"
#include "bench/op_bench.h"
#include "lora4j_bench.h"
#include "model/engine.h"
#include "model/status.h"

struct lora4j_op_bench {
  std::unique_ptr<lora4j::OpBench> impl;
};

using lora4j::check_arg;

namespace {

thread_local std::string g_last_error;

template <class F>
int guard(const char* fn, F&& body) {
  int status = lora4j::run_status(&g_last_error, std::string(fn) + ": ", "internal error: ", body);
  if (status == LORA4J_OK) g_last_error.clear();
  return status;
}

lora4j::OpBench& bench(lora4j_op_bench* b) {
  if (b == nullptr || !b->impl) lora4j::fail(LORA4J_EINVAL, "op bench handle is null");
  return *b->impl;
}

using lora4j::nonnull;
using lora4j::str;

// ---- liblora4j_cuda_bench, loaded on first use ------------------------------------------------
std::mutex g_path_mutex;
std::string g_path;

const lora4j_cuda_bench_api* cuda_bench(std::string* error) {
  static const lora4j_cuda_bench_api* api = nullptr;
  static std::string load_error;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string set_path;
    {
      std::lock_guard<std::mutex> lock(g_path_mutex);
      set_path = g_path;
    }
    lora4j::OpenedPlugin p = lora4j::open_plugin(
        lora4j::plugin_paths(set_path, "LORA4J_CUDA_BENCH_LIBRARY",
                             reinterpret_cast<const void*>(&lora4j_bench_last_error),
                             "liblora4j_cuda_bench.so"),
        LORA4J_CUDA_BENCH_ENTRY_SYMBOL);
    if (!p.handle) {
      load_error =
          "the CUDA benchmark library liblora4j_cuda_bench.so could not be loaded (" + p.why + ")";
      return;
    }
    auto a = static_cast<const lora4j_cuda_bench_api*>(p.table);
    if (!a || a->abi_version != LORA4J_CUDA_BENCH_ABI_VERSION ||
        a->table_size != sizeof(lora4j_cuda_bench_api)) {
      load_error = p.path + " is not a CUDA benchmark library of this version (ABI " +
                   std::to_string(LORA4J_CUDA_BENCH_ABI_VERSION) + ")";
      dlclose(p.handle);
      return;
    }
    api = a;
  });
  if (!api && error) *error = load_error;
  return api;
}

void check(const lora4j_cuda_bench_api* api, int status) {
  if (status != LORA4J_OK) lora4j::fail(status, api->last_error());
}

class CudaOpBench final : public lora4j::OpBench {
 public:
  CudaOpBench(const lora4j_cuda_bench_api* api, const lora4j::OpBenchSpec& s) : api_(api) {
    check(api_, api_->create(s.device_index, s.op.c_str(), s.variant.c_str(), s.dims.data(),
                             int32_t(s.dims.size()), s.seed, &h_));
    check(api_, api_->cost(h_, &bytes, &memory));
    int32_t count = 0;
    check(api_, api_->output_count(h_, &count));
    for (int32_t i = 0; i < count; ++i) {
      char name[256];
      int64_t numel = 0;
      check(api_, api_->output_info(h_, i, name, sizeof name, &numel));
      outputs.push_back({name, numel});
    }
  }
  ~CudaOpBench() override {
    if (h_) api_->destroy(h_);
  }
  void run(int32_t iterations) override { check(api_, api_->run(h_, iterations)); }
  void output(int i, float* out) override { check(api_, api_->output(h_, i, out)); }

 private:
  const lora4j_cuda_bench_api* api_;
  lora4j_cuda_op_bench* h_ = nullptr;
};

std::unique_ptr<lora4j::OpBench> make_cuda_op_bench(const lora4j::OpBenchSpec& spec) {
  std::string why;
  const lora4j_cuda_bench_api* api = cuda_bench(&why);
  if (!api) lora4j::fail(LORA4J_EUNSUPPORTED, why);
  int32_t n = 0;
  if (api->device_count(&n) != LORA4J_OK || n <= 0)
    lora4j::fail(LORA4J_EUNSUPPORTED, std::string("no usable CUDA device: ") + api->last_error());
  return std::make_unique<CudaOpBench>(api, spec);
}

}  // namespace

extern "C" {

const char* lora4j_bench_last_error(void) { return g_last_error.c_str(); }

int lora4j_bench_set_cuda_library(const char* path) {
  return guard("lora4j_bench_set_cuda_library", [&] {
    std::lock_guard<std::mutex> lock(g_path_mutex);
    g_path = str(path, "path");
  });
}

int lora4j_op_bench_create(int32_t device, const char* op, const char* variant, const int64_t* dims,
                           int32_t ndims, uint64_t seed, lora4j_op_bench** out) {
  return guard("lora4j_op_bench_create", [&] {
    nonnull(out, "out");
    *out = nullptr;
    check_arg(device >= -1,
              "device must be -1 (cpu) or a CUDA device index >= 0, got " + std::to_string(device));
    check_arg(ndims >= 0 && ndims <= 16, "ndims must be in [0, 16], got " + std::to_string(ndims));
    lora4j::OpBenchSpec spec;
    spec.op = str(op, "op");
    spec.variant = variant ? std::string(variant) : std::string();
    if (ndims > 0) spec.dims.assign(nonnull(dims, "dims"), dims + ndims);
    spec.seed = seed;
    spec.device_index = device;
    lora4j::resolve_op_bench(spec, device >= 0);
    auto handle = std::make_unique<lora4j_op_bench>();
    if (device < 0) {
      handle->impl = lora4j::make_cpu_op_bench(spec);
    } else {
      handle->impl = make_cuda_op_bench(spec);
    }
    handle->impl->flops = lora4j::op_bench_flops(spec);
    handle->impl->description =
        lora4j::op_bench_label(spec) +
        (device < 0 ? std::string(" on cpu") : " on cuda:" + std::to_string(device));
    // the frozen GEMM's variants differ in the bytes they must move (a 4-bit or a 16-bit
    // weight), so their description carries both floors
    if (spec.op.rfind("frozen_linear", 0) == 0) {
      char floors[96];
      std::snprintf(floors, sizeof floors, " (floors %.4g GFLOP, %.4g MB)",
                    handle->impl->flops * 1e-9, handle->impl->bytes * 1e-6);
      handle->impl->description += floors;
    }
    *out = handle.release();
  });
}

int lora4j_op_bench_destroy(lora4j_op_bench* b) {
  return guard("lora4j_op_bench_destroy", [&] { delete b; });
}

int lora4j_op_bench_run(lora4j_op_bench* b, int32_t iterations) {
  return guard("lora4j_op_bench_run", [&] {
    lora4j::OpBench& o = bench(b);
    check_arg(iterations >= 1, "iterations must be >= 1, got " + std::to_string(iterations));
    o.run(iterations);
  });
}

int lora4j_op_bench_cost(lora4j_op_bench* b, double* flops, double* bytes, int64_t* memory) {
  return guard("lora4j_op_bench_cost", [&] {
    lora4j::OpBench& o = bench(b);
    *nonnull(flops, "flops") = o.flops;
    *nonnull(bytes, "bytes") = o.bytes;
    *nonnull(memory, "memory") = o.memory;
  });
}

int lora4j_op_bench_describe(lora4j_op_bench* b, char* text, int32_t text_cap) {
  return guard("lora4j_op_bench_describe", [&] {
    const std::string& d = bench(b).description;
    nonnull(text, "text");
    check_arg(text_cap > int32_t(d.size()), "text buffer too small for " + d);
    std::memcpy(text, d.c_str(), d.size() + 1);
  });
}

int lora4j_op_bench_output_count(lora4j_op_bench* b, int32_t* count) {
  return guard("lora4j_op_bench_output_count",
               [&] { *nonnull(count, "count") = int32_t(bench(b).outputs.size()); });
}

int lora4j_op_bench_output_info(lora4j_op_bench* b, int32_t index, char* name, int32_t name_cap,
                                int64_t* numel) {
  return guard("lora4j_op_bench_output_info", [&] {
    lora4j::OpBench& o = bench(b);
    check_arg(index >= 0 && size_t(index) < o.outputs.size(),
              "output index " + std::to_string(index) + " out of range [0, " +
                  std::to_string(o.outputs.size()) + ")");
    const lora4j::OpBench::Output& out = o.outputs[size_t(index)];
    nonnull(name, "name");
    check_arg(name_cap > int32_t(out.name.size()), "name buffer too small for " + out.name);
    std::memcpy(name, out.name.c_str(), out.name.size() + 1);
    *nonnull(numel, "numel") = out.numel;
  });
}

int lora4j_op_bench_output(lora4j_op_bench* b, int32_t index, float* out, int64_t numel) {
  return guard("lora4j_op_bench_output", [&] {
    lora4j::OpBench& o = bench(b);
    check_arg(index >= 0 && size_t(index) < o.outputs.size(),
              "output index " + std::to_string(index) + " out of range [0, " +
                  std::to_string(o.outputs.size()) + ")");
    const lora4j::OpBench::Output& info = o.outputs[size_t(index)];
    check_arg(numel == info.numel, "output '" + info.name + "' has " + std::to_string(info.numel) +
                                       " elements, buffer holds " + std::to_string(numel));
    o.output(index, nonnull(out, "out"));
  });
}

}  // extern "C"
