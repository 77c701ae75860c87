// See thread_pool.h.
#include "cpu/thread_pool.h"

#include <algorithm>

namespace lora4j {
namespace cpu {

namespace {
thread_local bool t_in_pool = false;  // true on a worker (and on a caller while it runs chunks)

// How long a thread watches an atomic before it sleeps: about 30 us of pause instructions.
constexpr int kSpin = 2000;
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  int n = num_threads > 0 ? num_threads : int(std::thread::hardware_concurrency());
  if (n < 1) n = 1;
  workers_.reserve(size_t(n - 1));
  for (int i = 1; i < n; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  cv_start_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::run_chunks() {
  for (;;) {
    int64_t lo = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (lo >= end_) break;
    (*fn_)(lo, std::min(end_, lo + grain_));
  }
}

void ThreadPool::worker_loop() {
  t_in_pool = true;
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpin && generation_.load(std::memory_order_acquire) == seen &&
                    !stop_.load(std::memory_order_acquire);
         ++i)
      cpu_relax();
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_start_.wait(lock, [&] {
        return stop_.load(std::memory_order_relaxed) ||
               generation_.load(std::memory_order_relaxed) != seen;
      });
      if (stop_.load(std::memory_order_relaxed)) return;
      seen = generation_.load(std::memory_order_relaxed);
    }
    run_chunks();
    if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);  // the caller sleeps only after checking under mu_
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t begin, int64_t end, int64_t grain, const RangeFn& fn) {
  if (end <= begin) return;
  int64_t n = end - begin;
  if (grain <= 0) grain = std::max<int64_t>(1, (n + 4 * size() - 1) / (4 * size()));
  if (workers_.empty() || t_in_pool || n <= grain) {
    for (int64_t lo = begin; lo < end; lo += grain) fn(lo, std::min(end, lo + grain));
    return;
  }
  std::lock_guard<std::mutex> submit(submit_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    begin_ = begin;
    end_ = end;
    grain_ = grain;
    next_.store(begin, std::memory_order_relaxed);
    active_.store(int(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_start_.notify_all();
  t_in_pool = true;
  run_chunks();
  t_in_pool = false;
  for (int i = 0; i < kSpin && active_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [&] { return active_.load(std::memory_order_acquire) == 0; });
  fn_ = nullptr;
}

void parallel_for(ThreadPool* tp, int64_t begin, int64_t end, int64_t grain,
                  const ThreadPool::RangeFn& fn) {
  if (end <= begin) return;
  if (tp) {
    tp->parallel_for(begin, end, grain, fn);
    return;
  }
  if (grain <= 0) grain = end - begin;
  for (int64_t lo = begin; lo < end; lo += grain) fn(lo, std::min(end, lo + grain));
}

}  // namespace cpu
}  // namespace lora4j
