set -u
# Fifty-fourth session, call2 (H100 or H200), on .gpu/diag/attention_sm90.cu: main's file with
# next/defer-bulk-forms.patch applied (the fifty-third session's deferred forms and its timing
# forms, plus form 5 noadd-live and form 6 defer-bulk; not for main). Call1 put noadd (form 1
# without its dQ reductions) 23-26% under main, but noadd leaves the dQ product's registers
# unread and ptxas may have dropped the product. This call: (1) each backward instance's HGMMA
# count (cuobjdump); (2) defer-bulk, dQ one iteration late added by the copy engine from staging
# (warpgroup 0 in Qb of its stage, warpgroup 1 in its dS^T buffer): test_ops_cuda's attention
# cases, test_engine_cuda and test_golden with it; (3) held A/B of the op, three rounds
# alternated: main, defer-bulk, noadd-live (form 1's reductions behind a condition never true),
# main-noadd; test_realwidth_cuda (Mistral-7B widths) with defer-bulk if time allows; (4) main's file restored, the Java GPU tests and the demo on the GPU if time allows.
# Needs .device and .gpu. From the root: LIMIT=570 bash benchmarks/results/2026-12-06-session54/next/s54c2.sh
T0=$(date +%s)
LIMIT=${LIMIT:-570}
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
W=/tmp/w4; mkdir -p $W
B=native/build-gpu
F=native/src/cuda/kernels/attention_sm90.cu
cp $F /tmp/attention_sm90.main.cu
cp .gpu/diag/attention_sm90.cu $F
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 300 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
OBJ=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
$OBJ -sass $B/liblora4j_bench.so 2>/dev/null | awk '/Function :/ {f=$3} /HGMMA/ {c[f]++}
  END {for (k in c) if (k ~ /attn_bwd_sm90/) print c[k], k}' | sort -k2 > $W/hgmma.txt
echo "hgmma lines: $(wc -l < $W/hgmma.txt)" | tee -a $W/sum.log
export LORA4J_ATTN_BWD_FORM=defer-bulk
(cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda) > $W/ops-defer-bulk.log 2>&1
echo "test_ops_cuda attention defer-bulk rc=$? pass $(grep -ac PASS $W/ops-defer-bulk.log) fail $(grep -ac FAIL $W/ops-defer-bulk.log) at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda) > $W/engine-defer-bulk.log 2>&1
echo "test_engine_cuda defer-bulk rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
(cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden) > $W/golden-defer-bulk.log 2>&1
echo "test_golden defer-bulk rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
unset LORA4J_ATTN_BWD_FORM
held() {
  if [ $1 = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$1; fi
  timeout 40 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
  echo "held $1 $2 rc=$?" >> $W/sum.log
  unset LORA4J_ATTN_BWD_FORM
}
held main 1; held defer-bulk 1; held noadd-live 1; held main-noadd 1
held main-noadd 2; held noadd-live 2; held defer-bulk 2; held main 2
if [ "$(left)" -gt 200 ]; then
  (cd $B && LORA4J_ATTN_BWD_FORM=defer-bulk LORA4J_REQUIRE_GPU=1 timeout 150 ./test_realwidth_cuda) > $W/realwidth-defer-bulk.log 2>&1
  echo "test_realwidth_cuda defer-bulk rc=$? fail $(grep -ac FAIL $W/realwidth-defer-bulk.log) at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
fi
if [ "$(left)" -gt 110 ]; then held main 3; held noadd-live 3; held main-noadd 3; held defer-bulk 3; fi
echo "held done at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
cp /tmp/attention_sm90.main.cu $F
cmp -s $F /tmp/attention_sm90.main.cu && echo "main's attention_sm90.cu restored" | tee -a $W/sum.log
tar -C $W -czf $OUT/logs.tgz --exclude=b .
if [ "$(left)" -gt 150 ]; then
  STEPS="java" OUT=$W/java timeout $(( $(left) - 15 )) bash scripts/gpu/run.sh > $W/java-run.log 2>&1
  echo "java rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
  tar -C $W -czf $OUT/logs.tgz --exclude=b .
fi
cat $W/sum.log
cat $W/hgmma.txt
python3 benchmarks/compare.py --held-ab $W/held.jsonl
grep -a "FAIL" $W/ops-defer-bulk.log | head -5; tail -2 $W/engine-defer-bulk.log; tail -1 $W/golden-defer-bulk.log
tail -6 $W/java/java-summary.log 2>/dev/null
grep -E "^step|eval|final|skipped|error" $W/java/demo-cuda.log 2>/dev/null | tail -4
echo "done at $(( $(date +%s) - T0 )) s"
