// Run-time loading of libnccl; see nccl.h.
#include "cuda/nccl.h"

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/dynlib.h"
#include "model/engine.h"

namespace lora4j {
namespace cuda {
namespace nccl {
namespace {

const char* const kName = "libnccl.so.2";

using Loaded = LoadedApi<Api>;

Loaded load() {
  Loaded r;
  std::vector<std::string> first;
  const char* home = std::getenv("NCCL_HOME");
  if (home && *home) first.push_back(std::string(home) + "/lib");
  OpenedLibrary lib = open_library(
      {{kName}, first, {"/usr/lib/x86_64-linux-gnu"}, {"nvidia/nccl/lib", "nvidia/cu13/lib"}});
  void* h = lib.handle;
  r.path = lib.path;
  const std::string& looked = lib.looked;
  if (!h) {
    r.error = std::string("training on several GPUs needs NCCL (") + kName +
              ", the libnccl2 package or the nvidia-nccl-cu13 wheel) and found none; looked in " +
              looked + ". Install NCCL or set LD_LIBRARY_PATH or NCCL_HOME";
    return r;
  }
  std::string missing;
  Api& a = r.api;
  resolve_symbol(h, "ncclGetVersion", a.ncclGetVersion, &missing);
  resolve_symbol(h, "ncclGetUniqueId", a.ncclGetUniqueId, &missing);
  resolve_symbol(h, "ncclCommInitRank", a.ncclCommInitRank, &missing);
  resolve_symbol(h, "ncclCommDestroy", a.ncclCommDestroy, &missing);
  resolve_symbol(h, "ncclCommAbort", a.ncclCommAbort, &missing);
  resolve_symbol(h, "ncclCommGetAsyncError", a.ncclCommGetAsyncError, &missing);
  resolve_symbol(h, "ncclGetErrorString", a.ncclGetErrorString, &missing);
  resolve_symbol(h, "ncclGetLastError", a.ncclGetLastError, &missing);
  resolve_symbol(h, "ncclAllReduce", a.ncclAllReduce, &missing);
  resolve_symbol(h, "ncclAllGather", a.ncclAllGather, &missing);
  if (!missing.empty()) {
    r.error =
        r.path + " lacks " + missing + " (NCCL 2.x with ncclGetLastError, 2.13 or later, needed)";
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

}  // namespace nccl
}  // namespace cuda
}  // namespace lora4j
