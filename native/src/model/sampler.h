// Sampling a token from a step's logits: the definition of the Java Sampler (dev.lora4j.Sampler,
// whose class comment states it), token for token. Temperature, top-k, top-p over integer weights
// floor(2^40 E((x - max) / T)), E an exponential in plain IEEE double arithmetic (this file is
// built without FMA contraction), the draw by a SplitMix64 generator (Java's SplittableRandom with
// its default gamma) through RandomSupport.boundedNextLong's rejection. The same logits, settings
// and generator state give the same token and the same next state as the Java class (SamplerTest
// and NativeSamplerTest in the Java tests).
#pragma once

#include <cstdint>

namespace lora4j {

struct SampleParams {
  double temperature = 1;  // > 0 (+inf: every finite logit alike)
  int32_t top_k = 0;       // 0: every token
  double top_p = 1;        // (0, 1]
};

// The generator's next 64 bits: state advanced by the golden gamma, then mixed (SplittableRandom's
// nextLong()).
uint64_t splitmix_next(int64_t& state);
// A value in [0, bound) (bound > 0) as RandomSupport.boundedNextLong draws it: one output, masked
// for a power of two, else halved and reduced, with another output drawn while the reduction
// would favour the low values.
int64_t splitmix_below(int64_t& state, int64_t bound);

// 2^40 e^d for -27.8 <= d <= 0, the weights' exponential (Sampler.expScaled; test_sampler pins
// both to the same bits).
double sample_exp_scaled(double d);

// The token drawn from logits[0 .. n - 1] (n >= 1) with p (checked by the caller), advancing
// state by the draw (not at all when every logit is NaN or -inf: then greedy_argmax's token).
int32_t sample_token(const float* logits, int32_t n, const SampleParams& p, int64_t& state);

}  // namespace lora4j
