set -u
# Forty-third session, call 5, on the final tree: gemv's split order now asked for only by the
# LoRA A products (GemvParams::split; call4 had it on every product of <= 256 rows, so the test
# model's k projection, 256 rows, left gemv_pairs' order: test_decode_cuda's qk_cache failed).
# 1) build, test_ops_cuda and test_decode_cuda with LORA4J_REQUIRE_GPU=1, the Java GPU tests;
# 2) `lora4j generate`, random 7B folder, 512 tokens greedy, without and with the random rank-16
# adapter (three runs each, the long prompt once). Expected: call4's 4.18 / 4.86 ms a token.
STEPS="build test java gen" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-R test_ops_cuda|test_decode_cuda" \
  GEN_FORMS="default lora=ADAPTER=/tmp/lora4j-cli/a7b" bash scripts/gpu/run.sh > /tmp/s43-run.log 2>&1
echo "run.sh rc=$?"
cp /tmp/s43-run.log $OUT/run.log  # run.sh leaves only logs.tgz in $OUT
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' /tmp/s43-run.log | cut -c1-110
grep -a "FAIL" /tmp/s43-run.log | head -12 | cut -c1-200
grep -a "cuda vs cpu on\|tests successful\|tests failed\|tests skipped" /tmp/s43-run.log
grep -aE -A5 '^form ' /tmp/s43-run.log
