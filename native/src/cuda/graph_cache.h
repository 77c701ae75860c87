// The training step's launch sequences as CUDA graphs (LORA4J_CUDA_GRAPHS). A step launches
// ~1,750 kernels and GEMMs at Mistral-7B's shapes (32 layers, 4 x 2048) and the GPU idles
// ~2.4 us at each boundary (0.9% of the step, benchmarks/RESULTS.md thirty-sixth session); a
// graph launched as one unit leaves less between dependent kernels. The engine captures its
// forward and its backward separately (the LM head's loss between them reads the loss back to the
// host), each under a key of the step's shape: every pointer and host-side choice a capture
// bakes in is a function of that key and of the engine's allocations, and the engine drops every
// graph whenever it allocates or frees device memory, sets a weight or changes the adapter's
// layout (GraphCache::clear). Values in those allocations (the batch, the LoRA parameters the
// optimizer updates in place) are read by the graph when it runs, as by the eager launches.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <list>
#include <set>
#include <string>
#include <tuple>

namespace lora4j {
namespace cuda {

enum class GraphMode { kOff, kOn, kRequire };

// LORA4J_CUDA_GRAPHS: "0" off, unset or "1" on (a capture that fails is reported on stderr once
// and its key runs eagerly from then on), "require" (a capture that fails is an error: the
// tests). Anything else: *bad is set to the message and kOff returned.
GraphMode graph_mode_from_env(std::string* bad);

struct GraphKey {
  int phase = 0;  // 0: the training forward, 1: the backward
  int64_t batch = 0, seq = 0;
  uint32_t flags = 0;  // the batch's host-side choices (mask, segments, runs)
  bool operator<(const GraphKey& o) const {
    return std::tie(phase, batch, seq, flags) < std::tie(o.phase, o.batch, o.seq, o.flags);
  }
  bool operator==(const GraphKey& o) const { return !(*this < o) && !(o < *this); }
};

// Instantiated graphs by key, at most kMaxGraphs (the least recently launched goes first), and
// the keys seen so far: a key's first step runs eagerly (its lazy allocations happen outside any
// capture), its second is captured. Rows right-padded to each batch's longest give a new shape
// almost every step; once kMaxGraphs graphs have been evicted the shapes evidently do not repeat
// enough for a capture to pay, and the cache captures nothing more (capturing()).
class GraphCache {
 public:
  static constexpr size_t kMaxGraphs = 16;
  struct Entry {
    GraphKey key;
    cudaGraphExec_t exec = nullptr;
    int after = -1;  // engine state the graph leaves behind (the NF4 scratch's weight)
  };
  GraphCache() = default;
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;
  ~GraphCache() { clear(); }

  // The entry for key (moved to the front), or null.
  const Entry* find(const GraphKey& key);
  // Marks key seen; whether it had been seen before.
  bool seen_before(const GraphKey& key) { return !seen_.insert(key).second; }
  void refuse(const GraphKey& key) { refused_.insert(key); }
  bool refused(const GraphKey& key) const { return refused_.count(key) != 0; }
  // Takes exec (destroyed with the cache or when evicted).
  void put(const GraphKey& key, cudaGraphExec_t exec, int after);
  // Drops every graph (the keys stay seen).
  void clear() noexcept;
  size_t size() const { return graphs_.size(); }
  bool capturing() const { return evicted < int64_t(kMaxGraphs); }

  // Appends one JSON line of the counts below (and `mode`) to the file at path (none when empty):
  // LORA4J_CUDA_GRAPHS_STATS, read by the tests and the benchmark.
  void write_stats(const std::string& path, int mode) const noexcept;

  // Counts: graphs launched, captured, dropped by clear(), evicted by put(); phases run eagerly
  // with graphs on (a key's first step, a refused key, or once capturing() ends); the host time
  // spent capturing and instantiating. The engine counts all but dropped and evicted.
  int64_t launches = 0, captures = 0, dropped = 0, evicted = 0, eager = 0;
  double capture_ms = 0;

 private:
  std::list<Entry> graphs_;
  std::set<GraphKey> seen_, refused_;
};

}  // namespace cuda
}  // namespace lora4j
