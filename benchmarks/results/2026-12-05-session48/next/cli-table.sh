set -u
# Prepared in the forty-eighth session, not run: the README table's first two rows on this tree, with the listener
# thread on (the default for GPU runs since the forty-seventh session): `lora4j train` at 4 x 2048
# without recompute and with attention recompute offloaded, beside bench_cuda and the reference
# stack, in one call (STEPS="build cli compare"), as the thirty-ninth session's call4.
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w2; mkdir -p $W
export OUT=/tmp/o2a; mkdir -p $OUT
STEPS="build cli compare" CUDA_ARCHS=90 CLI_SETTINGS=4x2048,4x2048-attention-offload timeout 480 bash scripts/gpu/run.sh > $W/cli-run.log 2>&1
echo "build cli compare rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/cli && tar -C $W/cli -xzf $OUT/logs.tgz 2>/dev/null
cp $OUT/*.jsonl $OUT/*.json $W/cli/ 2>/dev/null
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
tail -40 $W/cli-run.log | cut -c1-200
echo "total $(( $(date +%s) - T_START )) s"
