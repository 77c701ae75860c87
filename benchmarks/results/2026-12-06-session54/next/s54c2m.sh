set -u
# Fifty-fourth session, call2's short form (the device time left after failed starts allows
# ~200 s): s54c2.sh's checks in order of what decides, each only while time is left: build,
# HGMMA counts, test_ops_cuda's attention cases with defer-bulk, the held op (main, defer-bulk,
# noadd-live; then defer-bulk and main again), test_engine_cuda and test_golden with defer-bulk.
# Needs .gpu. From the root: LIMIT=200 bash benchmarks/results/2026-12-06-session54/next/s54c2m.sh
T0=$(date +%s)
LIMIT=${LIMIT:-200}
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
W=/tmp/w5; mkdir -p $W
B=native/build-gpu
cp .gpu/diag/attention_sm90.cu native/src/cuda/kernels/attention_sm90.cu
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 150 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
OBJ=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
$OBJ -sass $B/liblora4j_bench.so 2>/dev/null | awk '/Function :/ {f=$3} /HGMMA/ {c[f]++}
  END {for (k in c) if (k ~ /attn_bwd_sm90/) print c[k], k}' | sort -k2 > $W/hgmma.txt
(cd $B && LORA4J_ATTN_BWD_FORM=defer-bulk LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 60 ./test_ops_cuda) > $W/ops-defer-bulk.log 2>&1
echo "test_ops_cuda attention defer-bulk rc=$? pass $(grep -ac PASS $W/ops-defer-bulk.log) fail $(grep -ac FAIL $W/ops-defer-bulk.log) at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
held() {
  if [ $1 = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$1; fi
  timeout 30 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
  echo "held $1 $2 rc=$?" >> $W/sum.log
  unset LORA4J_ATTN_BWD_FORM
}
held main 1; held defer-bulk 1; [ "$(left)" -gt 40 ] && held noadd-live 1
[ "$(left)" -gt 40 ] && held defer-bulk 2; [ "$(left)" -gt 35 ] && held main 2
if [ "$(left)" -gt 30 ]; then
  (cd $B && LORA4J_ATTN_BWD_FORM=defer-bulk LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 12 )) ./test_engine_cuda) > $W/engine-defer-bulk.log 2>&1
  echo "test_engine_cuda defer-bulk rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
fi
tar -C $W -czf $OUT/logs.tgz --exclude=b .
cat $W/sum.log; cat $W/hgmma.txt
python3 benchmarks/compare.py --held-ab $W/held.jsonl
grep -a "FAIL" $W/ops-defer-bulk.log | head -5
echo "done at $(( $(date +%s) - T0 )) s"
