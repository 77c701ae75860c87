set -u
# Thirty-ninth session, call 4: the README table's figures on this tree (the refresh copies as one
# launch): `lora4j train` at 4 x 2048 without recompute and with attention recompute offloaded,
# beside bench_cuda and the reference stack, in one call (STEPS="build cli compare").
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w4; mkdir -p $W
export OUT=/tmp/o4a; mkdir -p $OUT
STEPS="build cli compare" CUDA_ARCHS=90 CLI_SETTINGS=4x2048,4x2048-attention-offload timeout 420 bash scripts/gpu/run.sh > $W/cli-run.log 2>&1
echo "build cli compare rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/cli && tar -C $W/cli -xzf $OUT/logs.tgz 2>/dev/null
cp $OUT/*.jsonl $OUT/*.json $W/cli/ 2>/dev/null
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
tail -40 $W/cli-run.log | cut -c1-200
echo "total $(( $(date +%s) - T_START )) s"
