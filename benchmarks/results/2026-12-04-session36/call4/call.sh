set -u
# Thirty-sixth session, call 4 (main as committed before the call, the backward of 27e5554): the
# user's path at both 4 x 2048 rows of the README's table in one call, `lora4j train` without
# recompute and with --recompute attention --offload-checkpoints, beside the engine benchmark
# (LORA4J_BENCH_SETTINGS=4x2048) and the reference stack's 4x2048 and 4x2048gc runs. The second
# row was last measured in the twenty-fifth session (0248e9d). carry [".device"]
# (scripts/gpu/pack-java.sh), timeout ~560 s; scripts/gpu/aside.sh out
# benchmarks/results/2026-12-04-session36 before, aside.sh back after.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w4; mkdir -p $W
export OUT=/tmp/o4; mkdir -p $OUT
STEPS="build cli compare" CUDA_ARCHS=90 CLI_SETTINGS=4x2048,4x2048-attention-offload timeout 480 bash scripts/gpu/run.sh > $W/cli-run.log 2>&1
echo "build cli compare rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/cli && tar -C $W/cli -xzf $OUT/logs.tgz 2>/dev/null
cp $OUT/*.jsonl $OUT/*.json $W/cli/ 2>/dev/null
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
grep -a "FAIL\|failed" $W/cli-run.log | head -5
sed -n '/lora4j vs Hugging Face/,$p' $W/cli-run.log | cut -c1-240 | head -30
