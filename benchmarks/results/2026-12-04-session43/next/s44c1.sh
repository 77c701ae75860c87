set -u
# Prepared in the forty-third session for the next one's first GPU call (the device machine was
# no longer lent when the patches were ready; both compile here, their CPU twins and the engine
# build with them). Before it, here:
#   git apply benchmarks/results/2026-12-04-session43/next/s44-lora-tail.patch
#   git apply benchmarks/results/2026-12-04-session43/next/s44-norm-a.patch
#   mvn -B -ntp -q -DskipTests -DskipNativeTests=true package && bash scripts/gpu/pack-java.sh
#   scripts/gpu/aside.sh out <the new session's results folder>   (copy this script there first)
# The patches, for `lora4j generate --adapter` (call5: 4.85 ms a step with a rank-16 adapter
# against 4.16 without):
#   s44-lora-tail: o's and down's unfolded LoRA term and the residual summed by their gemv
#     (GemvParams::K2: xa / B as K's continuation in the lane order, a folded weight's sums);
#     lora_b_residual's launch gone at decode (2 a layer, 2.6 us each). LORA4J_DECODE_LORA_TAIL=0
#     keeps it.
#   s44-norm-a: rmsnorm_lora_a, each decode RMSNorm with its group's LoRA A product (q/k/v and
#     gate/up) and xa's fp16 copy in one launch, the same bits as the three calls (every block
#     normalizes the row again, then one A row in gemv's split order from shared memory);
#     gemv.cuh shares gemv_dot8 / gemv_split_row_parts with gemv.cu (PTX of gemv_split_kernel,
#     gemv_pairs and every rmsnorm kernel unchanged, compared here). LORA4J_DECODE_NORM_A=0 keeps
#     the calls apart.
# 1) build, test_ops_cuda (gemv's K2 cases, rmsnorm_lora_a's against the calls it stands for) and
# test_decode_cuda (engines H and I; I bitwise the default; the op names) with
# LORA4J_REQUIRE_GPU=1; 2) `lora4j generate`, random 7B folder, 512 tokens greedy: no adapter, the
# rank-16 adapter, and the adapter with each switch off (two runs each, the long prompt once).
# Predicted with the adapter: 4.85 -> ~4.7 (tail) -> ~4.55 ms (norm-a); without it unchanged.
STEPS="build test gen" CUDA_ARCHS=90 LORA4J_REQUIRE_GPU=1 CTEST_ARGS="-R test_ops_cuda|test_decode_cuda" \
  GEN_ROUNDS=2 GEN_FORMS="default lora=ADAPTER=/tmp/lora4j-cli/a7b lora-notail=ADAPTER=/tmp/lora4j-cli/a7b,LORA4J_DECODE_LORA_TAIL=0 lora-nonorma=ADAPTER=/tmp/lora4j-cli/a7b,LORA4J_DECODE_NORM_A=0" \
  bash scripts/gpu/run.sh > /tmp/s44-run.log 2>&1
echo "run.sh rc=$?"
cp /tmp/s44-run.log $OUT/run.log  # run.sh leaves only logs.tgz in $OUT
grep -aE 'tests passed|tests failed|\*\*\*Failed|Skipped' /tmp/s44-run.log | cut -c1-110
grep -a "FAIL\|K2\|LORA_TAIL\|NORM_A\|rmsnorm_lora_a\|one gemv\|A product" /tmp/s44-run.log | head -24 | cut -c1-170
grep -aE -A9 '^form ' /tmp/s44-run.log
