// See dynlib.h.
#include "cuda/dynlib.h"

#include <glob.h>

#include <cstdlib>

namespace lora4j {
namespace cuda {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return std::string(v && *v ? v : "");
}

std::vector<std::string> folders(const LibrarySearch& s) {
  std::vector<std::string> dirs = s.first_dirs;
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"})
    if (!env(var).empty()) dirs.push_back(env(var) + "/lib64");
  dirs.push_back("/usr/local/cuda/lib64");
  dirs.insert(dirs.end(), s.system_dirs.begin(), s.system_dirs.end());
  if (!env("CONDA_PREFIX").empty()) dirs.push_back(env("CONDA_PREFIX") + "/lib");
  std::vector<std::string> patterns = {"/usr/local/cuda-1[0-9]*/lib64"};
  std::vector<std::string> sites;
  if (!env("VIRTUAL_ENV").empty())
    sites.push_back(env("VIRTUAL_ENV") + "/lib/python3*/site-packages");
  if (!env("HOME").empty()) sites.push_back(env("HOME") + "/.local/lib/python3*/site-packages");
  for (const char* site :
       {"/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
        "/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages",
        "/opt/conda/lib/python3*/site-packages"})
    sites.push_back(site);
  for (const std::string& site : sites)
    for (const std::string& sub : s.wheel_subdirs) patterns.push_back(site + "/" + sub);
  for (const std::string& p : patterns) {
    glob_t g{};
    if (glob(p.c_str(), 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) dirs.push_back(g.gl_pathv[i]);
    globfree(&g);
  }
  return dirs;
}

}  // namespace

OpenedLibrary open_library(const LibrarySearch& search) {
  OpenedLibrary r;
  r.looked = "the loader's path (LD_LIBRARY_PATH, ldconfig cache)";
  for (const std::string& n : search.names) {
    r.handle = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (r.handle) {
      r.path = n;
      return r;
    }
  }
  for (const std::string& d : folders(search)) {
    r.looked += ", " + d;
    for (const std::string& n : search.names) {
      std::string p = d + "/" + n;
      r.handle = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (r.handle) {
        r.path = p;
        return r;
      }
    }
  }
  return r;
}

}  // namespace cuda
}  // namespace lora4j
