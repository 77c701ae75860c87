set -u
# Thirty-first session, call7: run.sh's ops step as committed (5b136ae), limited to the attention
# ops: bench_ops, the reference script's burst table, then attention_sustained.py and
# compare.py --attention-sustained (the contract's table), to check the new step end to end.
T_START=$(date +%s)
W=/tmp/w7; mkdir -p $W
STEPS="build ops" CUDA_ARCHS=90 OPS_ARGS="attention_fwd attention_bwd" OUT=$W timeout 400 bash scripts/gpu/run.sh > $W/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a -A8 "sustained alike" $W/run.log
