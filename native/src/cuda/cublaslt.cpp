// Run-time loading of libcublasLt; see cublaslt.h.
#include "cuda/cublaslt.h"

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/dynlib.h"
#include "model/engine.h"

namespace lora4j {
namespace cuda {
namespace lt {
namespace {

using Loaded = LoadedApi<Api>;

Loaded load() {
  Loaded r;
  OpenedLibrary lib = open_library({{"libcublasLt.so.13", "libcublasLt.so.12"},
                                    {},
                                    {},
                                    {"nvidia/cu13/lib", "nvidia/cublas/lib"}});
  void* h = lib.handle;
  r.path = lib.path;
  const std::string& looked = lib.looked;
  if (!h) {
    r.error =
        "the CUDA backend needs cuBLASLt (libcublasLt.so.13 from the CUDA 13 toolkit or "
        "the nvidia-cublas wheel) and found none; looked in " +
        looked + ". Install the CUDA 13 runtime libraries or set LD_LIBRARY_PATH or CUDA_HOME";
    return r;
  }
  std::string missing;
  Api& a = r.api;
  resolve_symbol(h, "cublasLtCreate", a.cublasLtCreate, &missing);
  resolve_symbol(h, "cublasLtDestroy", a.cublasLtDestroy, &missing);
  resolve_symbol(h, "cublasLtGetVersion", a.cublasLtGetVersion, &missing);
  resolve_symbol(h, "cublasLtMatmulDescCreate", a.cublasLtMatmulDescCreate, &missing);
  resolve_symbol(h, "cublasLtMatmulDescDestroy", a.cublasLtMatmulDescDestroy, &missing);
  resolve_symbol(h, "cublasLtMatmulDescSetAttribute", a.cublasLtMatmulDescSetAttribute, &missing);
  resolve_symbol(h, "cublasLtMatrixLayoutCreate", a.cublasLtMatrixLayoutCreate, &missing);
  resolve_symbol(h, "cublasLtMatrixLayoutDestroy", a.cublasLtMatrixLayoutDestroy, &missing);
  resolve_symbol(h, "cublasLtMatmulPreferenceCreate", a.cublasLtMatmulPreferenceCreate, &missing);
  resolve_symbol(h, "cublasLtMatmulPreferenceDestroy", a.cublasLtMatmulPreferenceDestroy, &missing);
  resolve_symbol(h, "cublasLtMatmulPreferenceSetAttribute", a.cublasLtMatmulPreferenceSetAttribute,
                 &missing);
  resolve_symbol(h, "cublasLtMatmulAlgoGetHeuristic", a.cublasLtMatmulAlgoGetHeuristic, &missing);
  resolve_symbol(h, "cublasLtMatmul", a.cublasLtMatmul, &missing);
  if (!missing.empty()) {
    r.error = r.path + " lacks " + missing;
    dlclose(h);
    return r;
  }
  r.ok = true;  // kept loaded for the life of the process
  return r;
}

const Loaded& loaded() { return load_once<Api, load>(); }

}  // namespace

const Api& api() {
  const Loaded& l = loaded();
  if (!l.ok) fail(LORA4J_EUNSUPPORTED, l.error);
  return l.api;
}

const char* loaded_path() { return loaded().path.c_str(); }

}  // namespace lt
}  // namespace cuda
}  // namespace lora4j
