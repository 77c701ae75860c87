set -u
# Twenty-seventh session, call 7 (branch attn-bwd-dq-first, as call 6): the attention kernels
# beside torch SDPA (cuDNN) in the same call (run.sh STEPS="build ops").
REAL_OUT=$OUT
export OUT=/tmp/o7; mkdir -p $OUT
STEPS="build ops" CUDA_ARCHS=90 OPS_ARGS="attention_fwd attention_bwd" timeout 110 bash scripts/gpu/run.sh > /tmp/run-ops.log 2>&1
echo "run.sh rc=$?"
cp /tmp/run-ops.log $REAL_OUT/
grep -a "^|\|attention_.*flash " /tmp/run-ops.log | cut -c1-140
