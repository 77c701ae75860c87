set -u
# Prepared in the twenty-eighth session for the next one, on the main chosen after s29c0 (on
# branch s29-attn): the README table's two 4 x 2048 rows (no recompute; --recompute attention
# --offload-checkpoints) on the command line beside the engine benchmark and the reference stack
# at the same shapes (run.sh picks BENCH_SETTINGS=4x2048 and HF_SETTINGS=4x2048,4x2048gc from
# CLI_SETTINGS). Before the call, here: mvn -B -q package -DskipTests && bash
# scripts/gpu/pack-java.sh; move benchmarks/results aside (the tree and .device must fit the
# 64 MiB carry; put it back after); carry .device.
T_START=$(date +%s)
REAL_OUT=$OUT
export OUT=/tmp/o1; mkdir -p $OUT
STEPS="build cli compare" CUDA_ARCHS=90 CLI_SETTINGS=4x2048,4x2048-attention-offload timeout 520 bash scripts/gpu/run.sh > $OUT/cli-run.log 2>&1
echo "build cli compare rc=$? at $(( $(date +%s) - T_START )) s" > $OUT/sum.log
# run.sh's own archive (logs.tgz) and every file it wrote beside it (the json lines)
tar -C $OUT -czf $REAL_OUT/logs.tgz .
cat $OUT/sum.log
grep -a "beside it\|FAIL\|failed" $OUT/cli-run.log | head -5
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' $OUT/cli-run.log | head -24
echo "total $(( $(date +%s) - T_START )) s"
