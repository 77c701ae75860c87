// A small fixed pool of std::threads for the CPU backend (no OpenMP).
//
// parallel_for(begin, end, fn) splits [begin, end) into chunks and calls fn(lo, hi) for each,
// on the pool's workers and the calling thread together; it returns when every chunk is done.
// Chunks are claimed dynamically (an atomic counter), so uneven work such as causal attention
// balances itself. A parallel_for issued from inside a worker runs inline on that worker.
// The chunk boundaries depend only on (begin, end, grain), never on the number of threads, so
// ops that reduce per chunk and combine chunk results in order are deterministic.
// A step issues hundreds of short jobs back to back: a worker that finished one watches for the
// next for a few tens of microseconds before it sleeps on the condition variable, and the caller
// watches for the workers' end likewise, so most jobs start and end without a futex round trip.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lora4j {
namespace cpu {

class ThreadPool {
 public:
  using RangeFn = std::function<void(int64_t lo, int64_t hi)>;

  // num_threads <= 0: std::thread::hardware_concurrency() (at least 1). The calling thread
  // counts as one of them: a pool of 1 starts no worker.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Runs fn over [begin, end) in chunks of `grain` items (grain <= 0: about 4 chunks per
  // thread). Exceptions thrown by fn are not supported (the ops never throw).
  void parallel_for(int64_t begin, int64_t end, int64_t grain, const RangeFn& fn);

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> active_{0};
  std::atomic<bool> stop_{false};
  // the current job
  const RangeFn* fn_ = nullptr;
  int64_t begin_ = 0, end_ = 0, grain_ = 1;
  std::atomic<int64_t> next_{0};
  std::mutex submit_mu_;  // one job at a time when several threads share the pool
};

// parallel_for on tp, or inline on the calling thread when tp is null.
void parallel_for(ThreadPool* tp, int64_t begin, int64_t end, int64_t grain,
                  const ThreadPool::RangeFn& fn);

}  // namespace cpu
}  // namespace lora4j
