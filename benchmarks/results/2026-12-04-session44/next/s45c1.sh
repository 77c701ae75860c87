set -u
# Prepared in the forty-fourth session (no device machine was lent) for the next one's first GPU
# call. Before it, here:
#   git apply benchmarks/results/2026-12-04-session43/next/s44-lora-tail.patch
#   git apply benchmarks/results/2026-12-04-session43/next/s44-norm-a.patch
#   git apply benchmarks/results/2026-12-04-session44/next/s45-sample-device.patch
#   mvn -B -ntp -q -DskipTests -DskipNativeTests=true package && bash scripts/gpu/pack-java.sh
#   scripts/gpu/aside.sh out <the new session's results folder>   (copy this script there first)
# The patches (the two of the forty-third session: see its next/s44c1.sh), and:
#   s45-sample-device: CudaEngine::decode_sample on the device (kernels/sample.cu, sample_feed: one
#     block draws each step's token as model/sampler.cpp does, top-k and top-p by radix selections
#     of the order key, the generator's state on the device; runs of 16 steps queued, one wait a
#     run, as decode_greedy).
#     LORA4J_DECODE_SAMPLE_DEVICE=0 keeps Engine's step-by-step draw on the host. test_sample_cuda
#     compares the kernel with sample_token (tokens and states, 6,000 draws) and the engine's two
#     paths (30 tokens, chunks, eos inside a run, top-k); the Java CudaEngineTest's
#     sampledGenerationFollowsTheJavaSampler generates with it against decodeNext + Sampler.
# 1) build, test_ops_cuda, test_decode_cuda, test_sample_cuda with LORA4J_REQUIRE_GPU=1, the Java
# GPU tests; 2) `lora4j generate`, random 7B folder, 512 tokens: greedy without and with the
# rank-16 adapter (and the adapter with each of the forty-third session's switches off), then
# sampled (--temperature 0.7 --top-p 0.9) on the device and with LORA4J_DECODE_SAMPLE_DEVICE=0;
# two runs each, the long prompt once. gen.sh prints the engine's ms a token and the whole loop's
# ("all told"). Predicted: adapter 4.85 -> ~4.7 (tail) -> ~4.55 ms (norm-a); sampled all told
# ~4.4-4.5 (host draw, never measured) -> ~4.2 (device draw: ~20-40 us a step on one SM).
STEPS="build test java gen" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 \
  CTEST_ARGS="-R test_ops_cuda|test_decode_cuda|test_sample_cuda" GEN_ROUNDS=2 \
  GEN_FORMS="default lora=ADAPTER=/tmp/lora4j-cli/a7b lora-notail=ADAPTER=/tmp/lora4j-cli/a7b,LORA4J_DECODE_LORA_TAIL=0 lora-nonorma=ADAPTER=/tmp/lora4j-cli/a7b,LORA4J_DECODE_NORM_A=0 sample=TEMPERATURE=0.7 sample-host=TEMPERATURE=0.7,LORA4J_DECODE_SAMPLE_DEVICE=0" \
  bash scripts/gpu/run.sh > /tmp/s45-run.log 2>&1
echo "run.sh rc=$?"
cp /tmp/s45-run.log $OUT/run.log  # run.sh leaves only logs.tgz in $OUT
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped|Tests run:' /tmp/s45-run.log | cut -c1-110 | head -20
grep -a "FAIL\|K2\|LORA_TAIL\|NORM_A\|rmsnorm_lora_a\|one gemv\|A product\|\[sample\]\|sample_feed\|decode_sample" /tmp/s45-run.log | head -30 | cut -c1-170
grep -aE -A13 '^form ' /tmp/s45-run.log
