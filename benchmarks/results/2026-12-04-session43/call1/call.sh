set -u
# (copied from 2026-12-04-session42/next/s43c1.sh; the patch is applied in the tree)
# Written in the forty-second session for the next one's first GPU call. Before it, here (no GPU):
#   git apply benchmarks/results/2026-12-04-session42/next/s43-greedy-device.patch
#   mvn -B -ntp -q -DskipTests -DskipNativeTests=true package && bash scripts/gpu/pack-java.sh
#   scripts/gpu/aside.sh out benchmarks/results/2026-12-04-session42   (and the new session's folder)
# The patch: CudaEngine::decode_greedy keeps each step's token on the device (greedy.cu:
# greedy_argmax_feed writes the argmax into the next step's ids_ / pos_; decode_feed the first
# step's), so the host queues runs of up to 16 steps and waits once a run; LORA4J_DECODE_GREEDY_DEVICE=0
# takes Engine's step-by-step default (decode_next and the argmax on the host: main since
# f051f2c). Predicted: -0.15 to -0.25 ms a step at 7B (call3's trace: the GPU idle ~0.3 ms a step,
# most of it between steps while the logits travel to the host and the next token back).
# One run.sh call (its "gen" step is scripts/gpu/gen.sh): 1) build, test_ops_cuda (its
# greedy_argmax cases: ties, NaN, -inf against the host twin) and test_decode_cuda (decode_greedy
# on the device and not: decode_next's argmax tokens, eos, a full cache) with LORA4J_REQUIRE_GPU=1;
# 2) `lora4j generate`, random 7B folder, 512 tokens greedy (the CLI streams through Generator's
# chunks of 1 doubling to 16): default and LORA4J_DECODE_GREEDY_DEVICE=0 in turn, three each, and
# the ~2,750-token prompt once each; the texts must match ("same"). ~4 min of device time.
STEPS="build test gen" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-R test_ops_cuda|test_decode_cuda" \
  GEN_FORMS="default host=LORA4J_DECODE_GREEDY_DEVICE=0" bash scripts/gpu/run.sh > /tmp/s43-run.log 2>&1
echo "run.sh rc=$?"
cp /tmp/s43-run.log $OUT/run.log  # run.sh leaves only logs.tgz in $OUT
grep -aE '^(form|default|host) ' /tmp/s43-run.log
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped|FAIL|decode_greedy|^\[greedy argmax\].*(NaN|tie)' /tmp/s43-run.log | head -24
