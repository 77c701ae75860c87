set -u
# Twenty-sixth session, call 5: main's attention kernels beside torch SDPA (cuDNN) in the same
# call (STEPS="build ops", bench_ops attention only), at 4 x 2048 and 1 x 8192.
T_START=$(date +%s)
REAL_OUT=$OUT
export OUT=/tmp/o5; mkdir -p $OUT
STEPS="build ops" CUDA_ARCHS=90 OPS_ARGS="attention_fwd attention_bwd" timeout ${LIM:-420} bash scripts/gpu/run.sh > /tmp/run5.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/sum5.log
cp /tmp/run5.log $OUT/ 2>/dev/null
cp $OUT/logs*.tgz $REAL_OUT/ 2>/dev/null
cp /tmp/run5.log /tmp/sum5.log $REAL_OUT/
cat /tmp/sum5.log
grep -a "attention" /tmp/run5.log | cut -c1-160 | head -30
sed -n '/vs cuDNN\|cudnn/,$p' /tmp/run5.log | head -30
