set -u
# Call 1 again for its gen step only: run.sh's random 7B folder had no tokenizer.json, which
# `lora4j generate` needs (cli_model now gives it the tiny model's). Forms: the patch's device
# greedy path (default) and LORA4J_DECODE_GREEDY_DEVICE=0 (Engine's step-by-step default).
STEPS="build gen" CUDA_ARCHS=90 GEN_FORMS="default host=LORA4J_DECODE_GREEDY_DEVICE=0" \
  bash scripts/gpu/run.sh > /tmp/s43-run.log 2>&1
echo "run.sh rc=$?"
cp /tmp/s43-run.log $OUT/run.log  # run.sh leaves only logs.tgz in $OUT
grep -aE -A6 '^form ' /tmp/s43-run.log
grep -aE 'failed' /tmp/s43-run.log | head
