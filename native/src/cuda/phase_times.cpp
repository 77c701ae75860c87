// See phase_times.h.
#include "cuda/phase_times.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace lora4j {
namespace cuda {

PhaseTimes* PhaseTimes::from_env(cudaStream_t stream) {
  const char* p = std::getenv("LORA4J_PHASE_TIMES");
  if (!p || !*p) return nullptr;
  return new PhaseTimes(stream, p);
}

PhaseTimes::PhaseTimes(cudaStream_t stream, std::string path)
    : stream_(stream), path_(std::move(path)) {}

PhaseTimes::~PhaseTimes() {
  if (steps_ > 0) {
    if (FILE* f = std::fopen(path_.c_str(), "a")) {
      std::fputs(report().c_str(), f);
      std::fclose(f);
    } else {
      std::fprintf(stderr, "lora4j: cannot write LORA4J_PHASE_TIMES file %s\n", path_.c_str());
    }
  }
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
}

cudaEvent_t PhaseTimes::event(size_t i) {
  while (events_.size() <= i) {
    cudaEvent_t e = nullptr;
    if (cudaEventCreate(&e) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    events_.push_back(e);
    names_.emplace_back();
  }
  return events_[i];
}

void PhaseTimes::start() {
  used_ = 0;
  if (cudaEvent_t e = event(0)) {
    cudaEventRecord(e, stream_);
    used_ = 1;
  }
}

void PhaseTimes::mark(const char* name) {
  if (used_ == 0) return;  // not inside a step
  cudaEvent_t e = event(used_);
  if (!e) return;
  cudaEventRecord(e, stream_);
  names_[used_] = name;
  ++used_;
}

void PhaseTimes::finish() {
  if (used_ < 2) {
    used_ = 0;
    return;
  }
  if (cudaEventSynchronize(events_[used_ - 1]) != cudaSuccess) {
    cudaGetLastError();
    used_ = 0;
    return;
  }
  if (!seen_first_) {  // the first step carries one-time costs (the GEMM plans)
    seen_first_ = true;
    used_ = 0;
    return;
  }
  for (size_t i = 1; i < used_; ++i) {
    float ms = 0;
    if (cudaEventElapsedTime(&ms, events_[i - 1], events_[i]) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    auto it = sums_.find(names_[i]);
    if (it == sums_.end()) {
      it = sums_.emplace(names_[i], Sum{}).first;
      it->second.first = sums_.size();
    }
    it->second.ms += ms;
    it->second.calls += 1;
    total_ms_ += ms;
  }
  ++steps_;
  used_ = 0;
}

std::string PhaseTimes::report() const {
  std::vector<std::pair<std::string, Sum>> rows(sums_.begin(), sums_.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  std::string out;
  char buf[512];
  const double steps = double(std::max<int64_t>(steps_, 1));
  std::snprintf(buf, sizeof buf,
                "{\"phase_times\": \"(step)\", \"steps\": %lld, \"ms_per_step\": %.3f}\n",
                static_cast<long long>(steps_), total_ms_ / steps);
  out += buf;
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf,
                  "{\"phase_times\": \"%s\", \"ms_per_step\": %.3f, \"calls_per_step\": %.1f, "
                  "\"share\": %.4f}\n",
                  r.first.c_str(), r.second.ms / steps, double(r.second.calls) / steps,
                  total_ms_ > 0 ? r.second.ms / total_ms_ : 0.0);
    out += buf;
  }
  return out;
}

}  // namespace cuda
}  // namespace lora4j
