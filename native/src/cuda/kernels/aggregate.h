// Robust aggregation on the device (issue 14): the rules of model/aggregate.h applied to n worker
// gradients that already live in device memory, written into a device buffer (the engine's
// gradient arena), so a step's aggregation never copies gradients through the host.
//
// What matches the host rules (aggregate.cpp) and how closely:
//   mean, median, trimmed mean   bit for bit: per coordinate the same values in the same order
//                                (the total order of aggregate_rules.h), the same double sums in
//                                the same order, rounded operations that the compiler may not
//                                contract.
//   krum                         the pairwise squared distances are per-chunk sums in another
//                                order inside each chunk (relative differences ~1e-15); the
//                                choice from them is the host's code, so the same worker is
//                                chosen unless two scores tie to that precision.
//   centered clipping            the distances likewise; the median start and the update rule
//                                are the host's operations in the host's order.
// Rules that decide from a few numbers (Krum's scores, centered clipping's radius and weights)
// copy those numbers to the host (n x n or n doubles per chunk of 32768 coordinates) and decide
// there with the host's code, so the stream is synchronized for them.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace lora4j {
namespace cuda {

// Device workspace (bytes) aggregate_rows needs for the rule with n rows of numel values.
size_t aggregate_workspace_bytes(int32_t rule, int32_t n, int64_t numel);

// The rule (LORA4J_AGG_*, f for trimmed-mean and krum) over rows [n, numel] (device) into out
// [numel] (device, not overlapping rows). weights: n host values for the mean or null (equal
// weights); validated by the caller, as are n (3 <= ..., <= LORA4J_MAX_WORKERS) and f.
// workspace: aggregate_workspace_bytes(rule, n, numel) device bytes (null when that is 0).
// *selected: the worker Krum chose, else -1. The robust rules first find the rows with a value
// that is not finite (*nonfinite: how many) and run on the others (agg::f_after_nonfinite);
// when that refuses, nothing is written and the caller reports it. Work is queued on s; the
// mean returns with its kernel queued, the robust rules synchronize s to read which rows are
// finite (Krum and centered clipping again for their sums) and return with the rest queued.
cudaError_t aggregate_rows(int32_t rule, int32_t f, int32_t n, int64_t numel, const float* rows,
                           const float* weights, float* out, void* workspace, int32_t* selected,
                           int32_t* nonfinite, cudaStream_t s);

}  // namespace cuda
}  // namespace lora4j
