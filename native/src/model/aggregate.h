// Robust aggregation of the gradients of n virtual workers (issue 14): every (rank, micro-batch)
// of an optimizer step is one worker with its own LoRA gradient (one row of `numel` fp32 values,
// the flat gradient arena's layout). A rule turns the n rows into the one gradient the optimizer
// applies. Every rule is deterministic: the same inputs give the same bits on every rank and for
// every thread count (coordinate-wise work is split in fixed chunks, and every sum over
// coordinates is taken chunk by chunk in a fixed order), which keeps the ranks of a group
// bitwise identical without a further collective.
//
// The rules and what each tolerates (f = faulty workers among n):
//   mean            sum_i w_i x_i / sum_i w_i (w: the workers' label tokens, so that it is the
//                   gradient of the whole step's mean loss); tolerates none.
//   median          coordinate-wise median (the mean of the two middle values for even n);
//                   tolerates f < n/2; needs n >= 3.
//   trimmed-mean:f  per coordinate, drop the f largest and f smallest values, average the rest;
//                   needs 2f < n.
//   krum:f          the worker whose summed squared distance to its n - f - 2 nearest others is
//                   smallest (Blanchard et al., 2017); needs n > 2f + 2.
//   centered-clip   start at the coordinate-wise median v; three times, v += mean_i of (x_i - v)
//                   clipped to length tau, tau the median of the workers' distances to the
//                   starting point (Karimireddy et al., 2021, made stateless and scale-free);
//                   tolerates f < n/2; needs n >= 3.
// Nearest-neighbour mixing (rule | LORA4J_AGG_MIX, for median, trimmed-mean and centered-clip;
// Allouah et al., 2023, "Fixing by mixing"): before the rule, each worker's row is replaced by
// the mean of its own and its nearest others' rows (Euclidean distance), n - f rows in all, f the
// faulty workers the rule tolerates (trimmed-mean:f: f; median and centered-clip: (n - 1) / 2).
// A faulty row far from the honest ones enters no honest mixture, and the honest mixtures lie
// close together, so what the rule lets through of the faulty row shrinks with the honest spread
// (with n = 6: one scaled worker moves the plain median by a fraction of that spread every step).
// The tolerance stays the rule's. The Java side and the command line use it by default.
// Non-finite values: a worker whose row has a NaN or an infinite value is faulty beyond doubt;
// the robust rules set such workers aside and run on the others, counting the d set aside
// against their tolerance (trimmed-mean:f and krum:f then use f - d and refuse d > f; median and
// centered-clip refuse 2d >= n): a refusal throws LORA4J_EFAULTY naming the rule, d and n
// (agg::f_after_nonfinite). The mean keeps them, its result is then not finite, and the step is
// refused as not finite. The order used by median and trimmed mean still puts NaN above +inf.
#pragma once

#include <cstdint>
#include <string>

namespace lora4j {

// Throws EINVAL with a message naming the rule, n and f when the rule cannot run with them.
void check_aggregation(int32_t rule, int32_t f, int32_t n);
// The mean's weights: n finite values >= 0 with a positive sum (null: equal weights); throws
// EINVAL naming the first bad one.
void check_mean_weights(const float* weights, int32_t n);
// The rule's name as the command line writes it ("trimmed-mean").
const char* aggregation_name(int32_t rule);

// Applies the rule to n rows of numel values (workers, row-major) into out (numel values; may not
// alias workers). weights: n non-negative values with a positive sum for the mean, NULL for equal
// weights; the other rules ignore them. Returns the index of the worker Krum selected, else -1.
// Throws LORA4J_EFAULTY when more workers are not finite than the rule tolerates.
int32_t aggregate(int32_t rule, int32_t f, int32_t n, int64_t numel, const float* workers,
                  const float* weights, float* out);

}  // namespace lora4j
