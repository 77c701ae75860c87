// Finding and opening a CUDA library at run time (cuBLASLt in cublaslt.cpp, NCCL in nccl.cpp):
// the places the CUDA toolkit, distribution packages, conda and the nvidia Python wheels put
// them, tried in one order, with the list of places looked kept for the error message.
#pragma once
#include <dlfcn.h>

#include <mutex>
#include <string>
#include <vector>

namespace lora4j {
namespace cuda {

struct LibrarySearch {
  std::vector<std::string> names;          // file names, the preferred first
  std::vector<std::string> first_dirs;     // looked in before the toolkit's folders
  std::vector<std::string> system_dirs;    // after /usr/local/cuda/lib64
  std::vector<std::string> wheel_subdirs;  // under each Python site folder, e.g. "nvidia/cu13/lib"
};

struct OpenedLibrary {
  void* handle = nullptr;  // null when no name loads anywhere
  std::string path;        // what was opened
  std::string looked;      // every place tried, for the error message
};

// Each name on the loader's path (LD_LIBRARY_PATH, the ldconfig cache), then in first_dirs,
// $CUDA_HOME/lib64, $CUDA_PATH/lib64, /usr/local/cuda/lib64, system_dirs, $CONDA_PREFIX/lib,
// /usr/local/cuda-1*/lib64 and the wheel_subdirs of $VIRTUAL_ENV's, the user's and the system's
// Python site folders.
OpenedLibrary open_library(const LibrarySearch& search);

// f = the symbol `name` of library h; a missing one is appended to *missing.
template <class F>
void resolve_symbol(void* h, const char* name, F& f, std::string* missing) {
  f = reinterpret_cast<F>(dlsym(h, name));
  if (!f) *missing += std::string(missing->empty() ? "" : ", ") + name;
}

// A library's functions as a loader fills them: ok, or the error saying what is missing.
template <class Api>
struct LoadedApi {
  Api api{};
  std::string path, error;
  bool ok = false;
};

// Load() run once for the life of the process (the library stays loaded); every later call
// returns its result.
template <class Api, LoadedApi<Api> (*Load)()>
const LoadedApi<Api>& load_once() {
  static LoadedApi<Api> l;
  static std::once_flag once;
  std::call_once(once, [] { l = Load(); });
  return l;
}

}  // namespace cuda
}  // namespace lora4j
