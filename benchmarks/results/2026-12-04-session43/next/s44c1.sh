set -u
# Prepared in the forty-third session for the next one's first GPU call (the device machine was
# no longer lent when it was ready). Before it, here: git apply
# benchmarks/results/2026-12-04-session43/next/s44-lora-tail.patch, mvn package, pack-java.sh,
# aside.sh out (the new session's folder kept). What it runs: o's and down's unfolded LoRA term
# at decode summed by their gemv as
# K's continuation (GemvParams::K2; lora_b_residual's launch gone, 2 a layer of 2.6 us at 7B).
# 1) build, test_ops_cuda (the K2 cases against their CPU twin, bitwise) and test_decode_cuda
# (engine H: LORA4J_DECODE_LORA_TAIL=0; the default's phase times name the one-gemv ops) with
# LORA4J_REQUIRE_GPU=1; 2) `lora4j generate`, random 7B folder, 512 tokens greedy: no adapter,
# the rank-16 adapter, the adapter with LORA4J_DECODE_LORA_TAIL=0 (two runs each, the long prompt
# once). Predicted: with the adapter 4.85 -> ~4.7 ms a token; without it unchanged.
STEPS="build test gen" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-R test_ops_cuda|test_decode_cuda" \
  GEN_ROUNDS=2 GEN_FORMS="default lora=ADAPTER=/tmp/lora4j-cli/a7b lora-notail=ADAPTER=/tmp/lora4j-cli/a7b,LORA4J_DECODE_LORA_TAIL=0" \
  bash scripts/gpu/run.sh > /tmp/s43-run.log 2>&1
echo "run.sh rc=$?"
cp /tmp/s43-run.log $OUT/run.log  # run.sh leaves only logs.tgz in $OUT
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' /tmp/s43-run.log | cut -c1-110
grep -a "FAIL\|K2\|LORA_TAIL\|one gemv" /tmp/s43-run.log | head -16 | cut -c1-170
grep -aE -A6 '^form ' /tmp/s43-run.log
