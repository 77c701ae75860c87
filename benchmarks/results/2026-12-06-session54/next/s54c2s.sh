set -u
# Fifty-fourth session, call2's shortest form (~110 s of device time left): build, test_ops_cuda's
# attention cases with defer-bulk, the held op main then defer-bulk (then noadd-live), each
# line written straight into $OUT so that a cut call still brings it back. Needs .gpu.
# From the root: LIMIT=110 bash benchmarks/results/2026-12-06-session54/next/s54c2s.sh
T0=$(date +%s)
LIMIT=${LIMIT:-110}
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tee $OUT/sum.log
B=native/build-gpu
cp .gpu/diag/attention_sm90.cu native/src/cuda/kernels/attention_sm90.cu
STEPS="build" CUDA_ARCHS=90 OUT=/tmp/w6 timeout 80 bash scripts/gpu/run.sh > $OUT/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $OUT/sum.log
(cd $B && LORA4J_ATTN_BWD_FORM=defer-bulk LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 40 ./test_ops_cuda) > $OUT/ops-defer-bulk.log 2>&1
echo "test_ops_cuda attention defer-bulk rc=$? pass $(grep -ac PASS $OUT/ops-defer-bulk.log) fail $(grep -ac FAIL $OUT/ops-defer-bulk.log) at $(( $(date +%s) - T0 )) s" | tee -a $OUT/sum.log
held() {
  if [ $1 = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$1; fi
  timeout 20 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $OUT/held.jsonl 2>> $OUT/held.err
  echo "held $1 $2 rc=$? at $(( $(date +%s) - T0 )) s" >> $OUT/sum.log
  unset LORA4J_ATTN_BWD_FORM
}
[ "$(left)" -gt 20 ] && held main 1
[ "$(left)" -gt 20 ] && held defer-bulk 1
[ "$(left)" -gt 20 ] && held noadd-live 1
cat $OUT/sum.log
python3 benchmarks/compare.py --held-ab $OUT/held.jsonl
grep -a "FAIL" $OUT/ops-defer-bulk.log | head -5
