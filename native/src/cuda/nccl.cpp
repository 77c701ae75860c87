// Run-time loading of libnccl; see nccl.h.
#include "cuda/nccl.h"

#include <dlfcn.h>
#include <glob.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "model/engine.h"

namespace lora4j {
namespace cuda {
namespace nccl {
namespace {

const char* const kName = "libnccl.so.2";

std::vector<std::string> folders() {
  std::vector<std::string> dirs;
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v && *v ? v : "");
  };
  if (!env("NCCL_HOME").empty()) dirs.push_back(env("NCCL_HOME") + "/lib");
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"})
    if (!env(var).empty()) dirs.push_back(env(var) + "/lib64");
  dirs.push_back("/usr/local/cuda/lib64");
  dirs.push_back("/usr/lib/x86_64-linux-gnu");
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
    patterns.push_back(s + "/nvidia/nccl/lib");
    patterns.push_back(s + "/nvidia/cu13/lib");
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
void sym(void* h, const char* name, F& f, std::string* missing) {
  f = reinterpret_cast<F>(dlsym(h, name));
  if (!f) *missing += std::string(missing->empty() ? "" : ", ") + name;
}

Loaded load() {
  Loaded r;
  void* h = dlopen(kName, RTLD_NOW | RTLD_LOCAL);
  if (h) r.path = kName;
  std::string looked = "the loader's path (LD_LIBRARY_PATH, ldconfig cache)";
  if (!h)
    for (const std::string& d : folders()) {
      looked += ", " + d;
      std::string p = d + "/" + kName;
      h = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h) {
        r.path = p;
        break;
      }
    }
  if (!h) {
    r.error = std::string("training on several GPUs needs NCCL (") + kName +
              ", the libnccl2 package or the nvidia-nccl-cu13 wheel) and found none; looked in " +
              looked + ". Install NCCL or set LD_LIBRARY_PATH or NCCL_HOME";
    return r;
  }
  std::string missing;
  Api& a = r.api;
  sym(h, "ncclGetVersion", a.ncclGetVersion, &missing);
  sym(h, "ncclGetUniqueId", a.ncclGetUniqueId, &missing);
  sym(h, "ncclCommInitRank", a.ncclCommInitRank, &missing);
  sym(h, "ncclCommDestroy", a.ncclCommDestroy, &missing);
  sym(h, "ncclCommAbort", a.ncclCommAbort, &missing);
  sym(h, "ncclCommGetAsyncError", a.ncclCommGetAsyncError, &missing);
  sym(h, "ncclGetErrorString", a.ncclGetErrorString, &missing);
  sym(h, "ncclGetLastError", a.ncclGetLastError, &missing);
  sym(h, "ncclAllReduce", a.ncclAllReduce, &missing);
  sym(h, "ncclAllGather", a.ncclAllGather, &missing);
  if (!missing.empty()) {
    r.error =
        r.path + " lacks " + missing + " (NCCL 2.x with ncclGetLastError, 2.13 or later, needed)";
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

}  // namespace nccl
}  // namespace cuda
}  // namespace lora4j
