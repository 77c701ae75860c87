// Where a training step's GPU time goes, op by op, without a profiler: with LORA4J_PHASE_TIMES
// set to a file path, the engine records a CUDA event after every GEMM and kernel of
// forward_backward (and of each decode call of generation, counted as a step of its own) and,
// when it is destroyed, writes one JSON line per op name to that file: the
// milliseconds per step between the previous event and this one (the op plus any launch gap
// before it), calls per step and share of the step. The first step is left out (it chooses the
// GEMM algorithms). Off (no events, no cost) when the variable is
// unset. For benchmarks only: the events add host work of a few microseconds per op.
#pragma once
#include <cuda_runtime.h>

#include <map>
#include <string>
#include <vector>

namespace lora4j {
namespace cuda {

class PhaseTimes {
 public:
  // Null unless LORA4J_PHASE_TIMES names a file.
  static PhaseTimes* from_env(cudaStream_t stream);
  ~PhaseTimes();
  PhaseTimes(const PhaseTimes&) = delete;
  PhaseTimes& operator=(const PhaseTimes&) = delete;

  void start();                 // the step begins (the first interval's origin)
  void mark(const char* name);  // the interval since the previous mark was spent in `name`
  void finish();                // the step ended: waits for its events and adds the intervals
  // The lines written at destruction (exposed for the tests).
  std::string report() const;

 private:
  PhaseTimes(cudaStream_t stream, std::string path);
  cudaEvent_t event(size_t i);
  struct Sum {
    double ms = 0;
    int64_t calls = 0;
    size_t first = 0;  // order of first appearance
  };
  cudaStream_t stream_;
  std::string path_;
  std::vector<cudaEvent_t> events_;
  bool seen_first_ = false;
  std::vector<std::string> names_;  // names_[i]: the interval ending at events_[i]
  size_t used_ = 0;
  std::map<std::string, Sum> sums_;
  int64_t steps_ = 0;
  double total_ms_ = 0;
};

}  // namespace cuda
}  // namespace lora4j
