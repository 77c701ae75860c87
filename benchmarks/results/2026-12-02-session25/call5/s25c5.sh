set -u
T_START=$(date +%s)
export OUT
# Twenty-fifth session, call5 (main 3a392ae): the user's path with --recompute attention
# --offload-checkpoints at 1 x 8192 and 8 x 4096 beside the reference's checkpointed runs there.
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum.log
STEPS="cli compare" CUDA_ARCHS=90 CLI_SETTINGS="1x8192-attention-offload,8x4096-attention-offload" BENCH_SETTINGS=4x2048-none HF_SETTINGS="1x8192gc,8x4096gc" timeout 500 bash scripts/gpu/run.sh > /tmp/cli-run.log 2>&1
echo "cli run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
mkdir -p /tmp/cli && tar -C /tmp/cli -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz; cp /tmp/cli-run.log /tmp/build.log /tmp/sum.log /tmp/cli/
(cd /tmp/cli && tar -czf $OUT/cli-logs.tgz .)
cat /tmp/sum.log
echo "== user's path"; grep -a "FAIL\|rc=\|failed" /tmp/cli-run.log | head -5
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' /tmp/cli-run.log | head -24
echo "total $(( $(date +%s) - T_START )) s"
