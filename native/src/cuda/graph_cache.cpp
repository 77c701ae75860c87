#include "cuda/graph_cache.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lora4j {
namespace cuda {

GraphMode graph_mode_from_env(std::string* bad) {
  const char* v = std::getenv("LORA4J_CUDA_GRAPHS");
  if (!v || std::strcmp(v, "1") == 0) return GraphMode::kOn;
  if (std::strcmp(v, "0") == 0) return GraphMode::kOff;
  if (std::strcmp(v, "require") == 0) return GraphMode::kRequire;
  *bad = std::string("LORA4J_CUDA_GRAPHS is '") + v + "': expected 0, 1 or require";
  return GraphMode::kOff;
}

const GraphCache::Entry* GraphCache::find(const GraphKey& key) {
  for (auto it = graphs_.begin(); it != graphs_.end(); ++it)
    if (it->key == key) {
      graphs_.splice(graphs_.begin(), graphs_, it);
      return &graphs_.front();
    }
  return nullptr;
}

void GraphCache::put(const GraphKey& key, cudaGraphExec_t exec, int after) {
  graphs_.push_front(Entry{key, exec, after});
  while (graphs_.size() > kMaxGraphs) {
    cudaGraphExecDestroy(graphs_.back().exec);
    graphs_.pop_back();
    ++evicted;
  }
}

void GraphCache::write_stats(const std::string& path, int mode) const noexcept {
  if (path.empty()) return;
  if (FILE* f = std::fopen(path.c_str(), "a")) {
    std::fprintf(f,
                 "{\"graph_mode\":%d,\"launches\":%lld,\"captures\":%lld,\"dropped\":%lld,"
                 "\"evicted\":%lld,\"eager\":%lld,\"capture_ms\":%.1f}\n",
                 mode, (long long)launches, (long long)captures, (long long)dropped,
                 (long long)evicted, (long long)eager, capture_ms);
    std::fclose(f);
  }
}

void GraphCache::clear() noexcept {
  for (Entry& e : graphs_) cudaGraphExecDestroy(e.exec);
  dropped += int64_t(graphs_.size());
  graphs_.clear();
}

}  // namespace cuda
}  // namespace lora4j
