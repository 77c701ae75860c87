set -u
# Prepared in the forty-fourth session (no device machine was lent) for the next one's first GPU
# call. Before it, here:
#   git apply benchmarks/results/2026-12-04-session43/next/s44-lora-tail.patch
#   git apply benchmarks/results/2026-12-04-session43/next/s44-norm-a.patch
#   git apply benchmarks/results/2026-12-04-session44/next/s45-sample-device.patch
#   git apply benchmarks/results/2026-12-04-session44/next/s45-norm-fold.patch
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
#   s45-norm-fold: a decode layer's RMSNorm inside gemv_pairs' launch for a group without an
#     adapter (q/k/v, gate/up; the base model, a merged one, or the groups an adapter leaves out):
#     every block normalizes the residual row as rmsnorm_forward does (rmsnorm.cuh, the row
#     function moved there; PTX of every rmsnorm and gemv kernel unchanged, compared here) into
#     shared memory and the warps read x there; 64 launches fewer a step at 7B.
#     LORA4J_DECODE_NORM_FOLD=0 keeps the norm's launch. test_ops_cuda compares the folded launch
#     with rmsnorm_forward + gemv_pairs bit for bit (d 1000, 4096, 5120; fp32 and bf16
#     residuals); test_decode_cuda's decode_targets checks the default bitwise NORM_FOLD=0 and
#     FUSED=0 and that the phase names show the fold exactly where a group has no adapter.
# Call 1 (this script): build, test_ops_cuda, test_decode_cuda, test_sample_cuda with
# LORA4J_REQUIRE_GPU=1, the Java GPU tests. Call 2 (s45c2.sh, the same working tree and jar; no
# build): `lora4j generate`, random 7B folder, 512 tokens: greedy without and with the
# rank-16 adapter (and the adapter with each of the forty-third session's switches off), then
# sampled (--temperature 0.7 --top-p 0.9) on the device and with LORA4J_DECODE_SAMPLE_DEVICE=0;
# two runs each, the long prompt once. gen.sh prints the engine's ms a token and the whole loop's
# ("all told"). Predicted: adapter 4.85 -> ~4.7 (tail) -> ~4.55 ms (norm-a); sampled all told
# ~4.4-4.5 (host draw, never measured) -> ~4.2 (device draw: ~20-40 us a step on one SM); no
# adapter 4.16 -> ~4.08 (norm-fold: two ~2.3 us launches a layer gone, ~1-1.5 us of norm added
# to each gemv_pairs launch).
STEPS="build test java" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 \
  CTEST_ARGS="-R test_ops_cuda|test_decode_cuda|test_sample_cuda" \
  bash scripts/gpu/run.sh > /tmp/s45-run.log 2>&1
echo "run.sh rc=$?"
cp /tmp/s45-run.log $OUT/run.log  # run.sh leaves only logs.tgz in $OUT
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped|Tests run:' /tmp/s45-run.log | cut -c1-110 | head -20
grep -a "FAIL\|K2\|LORA_TAIL\|NORM_A\|NORM_FOLD\|folded\|rmsnorm_lora_a\|one gemv\|A product\|\[sample\]\|sample_feed\|decode_sample" /tmp/s45-run.log | head -40 | cut -c1-170
