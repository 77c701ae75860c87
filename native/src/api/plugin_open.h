// Finding and opening a plugin library of ours (liblora4j_cuda from the core, liblora4j_cuda_bench
// from liblora4j_bench) and calling its one entry function. The caller checks the table's version.
#pragma once
#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace lora4j {

// The folder (with a trailing slash) of the loaded library that holds `address`, or "".
inline std::string library_folder(const void* address) {
  Dl_info info;
  if (dladdr(address, &info) && info.dli_fname) {
    std::string p(info.dli_fname);
    auto slash = p.rfind('/');
    if (slash != std::string::npos) return p.substr(0, slash + 1);
  }
  return std::string();
}

// Where a plugin `file` is looked for, in order: the path set through the API (when not empty),
// $env_var, beside the library holding `self` (the jar extracts them into one folder), then the
// loader's search path.
inline std::vector<std::string> plugin_paths(const std::string& set_path, const char* env_var,
                                             const void* self, const std::string& file) {
  std::vector<std::string> tries;
  if (!set_path.empty()) tries.push_back(set_path);
  const char* env = std::getenv(env_var);
  if (env && *env) tries.push_back(env);
  tries.push_back(library_folder(self) + file);
  tries.push_back(file);
  return tries;
}

struct OpenedPlugin {
  void* handle = nullptr;       // null when no path loads
  const void* table = nullptr;  // what the entry returned; null without the entry symbol
  std::string path;             // the path that loaded
  std::string why;              // each loader error, when none loaded
};

// Opens the first of `paths` that loads and calls its entry function `symbol`.
inline OpenedPlugin open_plugin(const std::vector<std::string>& paths, const char* symbol) {
  OpenedPlugin r;
  for (const std::string& path : paths) {
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      r.why += (r.why.empty() ? "" : "; ") + std::string(e ? e : path + ": unknown error");
      continue;
    }
    using Entry = const void* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(h, symbol));
    r.handle = h;
    r.path = path;
    r.table = entry ? entry() : nullptr;
    return r;
  }
  return r;
}

}  // namespace lora4j
