set -u
T_START=$(date +%s)
export OUT
# Twenty-fifth session, call3 (tree = main 460033e + README): the user's path with --recompute
# attention --offload-checkpoints at 4 x 2048 beside the engine and the reference's checkpointed
# 4 x 2048 run; then 40 paired whole steps, fused down dX + SwiGLU backward vs unfused.
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum.log
STEPS="cli compare" CUDA_ARCHS=90 CLI_SETTINGS="4x2048-attention-offload" BENCH_SETTINGS=4x2048 HF_SETTINGS="4x2048gc" timeout 360 bash scripts/gpu/run.sh > /tmp/cli-run.log 2>&1
echo "cli run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
mkdir -p /tmp/cli && tar -C /tmp/cli -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz; cp /tmp/cli-run.log /tmp/build.log /tmp/cli/
B=native/build-gpu
LORA4J_BENCH_PAIRS=40 LORA4J_BENCH_AB=LORA4J_SWIGLU_DX_FUSED=0 LORA4J_BENCH_LAYERS=32 \
  LORA4J_BENCH_SETTINGS=4x2048-none timeout 150 $B/bench_cuda 2>&1 | grep '"train_step_pair"' > /tmp/cli/pairs.log
echo "pairs rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/sum.log
cp /tmp/sum.log /tmp/cli/
(cd /tmp/cli && tar -czf $OUT/cli-logs.tgz .)
cat /tmp/sum.log
echo "== user's path"; grep -a "FAIL\|rc=\|failed" /tmp/cli-run.log | head -5
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' /tmp/cli-run.log | head -24
echo "== pairs (b = unfused)"; python3 benchmarks/ab.py /tmp/cli/pairs.log 2>&1 | tail -3 | cut -c1-300
echo "total $(( $(date +%s) - T_START )) s"
