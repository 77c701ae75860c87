// Run-time loading of libcublasLt; see cublaslt.h.
#include "cuda/cublaslt.h"

#include <dlfcn.h>
#include <glob.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "model/engine.h"

namespace lora4j {
namespace cuda {
namespace lt {
namespace {

const char* const kNames[] = {"libcublasLt.so.13", "libcublasLt.so.12"};

std::vector<std::string> folders() {
  std::vector<std::string> dirs;
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v && *v ? v : "");
  };
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"})
    if (!env(var).empty()) dirs.push_back(env(var) + "/lib64");
  dirs.push_back("/usr/local/cuda/lib64");
  std::vector<std::string> patterns = {"/usr/local/cuda-1[0-9]*/lib64"};
  if (!env("CONDA_PREFIX").empty()) dirs.push_back(env("CONDA_PREFIX") + "/lib");
  std::vector<std::string> sites;
  if (!env("VIRTUAL_ENV").empty())
    sites.push_back(env("VIRTUAL_ENV") + "/lib/python3*/site-packages");
  if (!env("HOME").empty()) sites.push_back(env("HOME") + "/.local/lib/python3*/site-packages");
  for (const char* s : {"/usr/local/lib/python3*/dist-packages",
                        "/usr/local/lib/python3*/site-packages", "/usr/lib/python3/dist-packages",
                        "/usr/lib/python3*/site-packages", "/opt/conda/lib/python3*/site-packages"})
    sites.push_back(s);
  for (const std::string& s : sites) {
    patterns.push_back(s + "/nvidia/cu13/lib");
    patterns.push_back(s + "/nvidia/cublas/lib");
  }
  for (const std::string& p : patterns) {
    glob_t g{};
    if (glob(p.c_str(), 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) dirs.push_back(g.gl_pathv[i]);
    globfree(&g);
  }
  return dirs;
}

struct Loaded {
  Api api{};
  std::string path, error;
  bool ok = false;
};

template <class F>
bool sym(void* h, const char* name, F& f, std::string* missing) {
  f = reinterpret_cast<F>(dlsym(h, name));
  if (!f) *missing += std::string(missing->empty() ? "" : ", ") + name;
  return f != nullptr;
}

Loaded load() {
  Loaded r;
  void* h = nullptr;
  std::string looked;
  for (const char* n : kNames) {
    h = dlopen(n, RTLD_NOW | RTLD_LOCAL);
    if (h) {
      r.path = n;
      break;
    }
  }
  looked = "the loader's path (LD_LIBRARY_PATH, ldconfig cache)";
  if (!h)
    for (const std::string& d : folders()) {
      looked += ", " + d;
      for (const char* n : kNames) {
        std::string p = d + "/" + n;
        h = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (h) {
          r.path = p;
          break;
        }
      }
      if (h) break;
    }
  if (!h) {
    r.error =
        "the CUDA backend needs cuBLASLt (libcublasLt.so.13 from the CUDA 13 toolkit or "
        "the nvidia-cublas wheel) and found none; looked in " +
        looked + ". Install the CUDA 13 runtime libraries or set LD_LIBRARY_PATH or CUDA_HOME";
    return r;
  }
  std::string missing;
  Api& a = r.api;
  sym(h, "cublasLtCreate", a.cublasLtCreate, &missing);
  sym(h, "cublasLtDestroy", a.cublasLtDestroy, &missing);
  sym(h, "cublasLtGetVersion", a.cublasLtGetVersion, &missing);
  sym(h, "cublasLtMatmulDescCreate", a.cublasLtMatmulDescCreate, &missing);
  sym(h, "cublasLtMatmulDescDestroy", a.cublasLtMatmulDescDestroy, &missing);
  sym(h, "cublasLtMatmulDescSetAttribute", a.cublasLtMatmulDescSetAttribute, &missing);
  sym(h, "cublasLtMatrixLayoutCreate", a.cublasLtMatrixLayoutCreate, &missing);
  sym(h, "cublasLtMatrixLayoutDestroy", a.cublasLtMatrixLayoutDestroy, &missing);
  sym(h, "cublasLtMatmulPreferenceCreate", a.cublasLtMatmulPreferenceCreate, &missing);
  sym(h, "cublasLtMatmulPreferenceDestroy", a.cublasLtMatmulPreferenceDestroy, &missing);
  sym(h, "cublasLtMatmulPreferenceSetAttribute", a.cublasLtMatmulPreferenceSetAttribute, &missing);
  sym(h, "cublasLtMatmulAlgoGetHeuristic", a.cublasLtMatmulAlgoGetHeuristic, &missing);
  sym(h, "cublasLtMatmul", a.cublasLtMatmul, &missing);
  if (!missing.empty()) {
    r.error = r.path + " lacks " + missing;
    dlclose(h);
    return r;
  }
  r.ok = true;  // kept loaded for the life of the process
  return r;
}

Loaded& loaded() {
  static Loaded l;
  static std::once_flag once;
  std::call_once(once, [] { l = load(); });
  return l;
}

}  // namespace

const Api& api() {
  Loaded& l = loaded();
  if (!l.ok) fail(LORA4J_EUNSUPPORTED, l.error);
  return l.api;
}

const char* loaded_path() { return loaded().path.c_str(); }

}  // namespace lt
}  // namespace cuda
}  // namespace lora4j
