set -u
export OUT
# the user's path at 4 x 2048 (no recompute; attention recompute offloaded) beside the engine and the reference
STEPS="build cli compare" CUDA_ARCHS=90 CLI_SETTINGS="4x2048,4x2048-attention-offload" BENCH_SETTINGS=4x2048 HF_SETTINGS="4x2048,4x2048gc" timeout 540 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$?" >> /tmp/run.log
cp /tmp/run.log $OUT/ 2>/dev/null
grep -a "FAIL\|rc=\|failed" /tmp/run.log | head
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' /tmp/run.log | head -40
