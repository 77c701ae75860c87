set -u
# Fifty-fifth session, call3 (H100 or H200), on .gpu/diag/attention_sm90.cu: main's file with
# forms-f16.patch (this folder) applied: the fifty-fourth session's timing and trial forms plus
# form 7, defer-f16 (form 1's skew; dQ = dS K on fp16 operands, dS^T's copy scaled per query by
# 2^e from a bound on |dS|, K's fp16 tile; dQ(it - 1) staged in Kb's freed 32 KB and added by the
# copy engine; not for main until measured). (1) each backward instance's HGMMA count (from the
# CUDA plugin); (2) defer-f16's correctness: test_ops_cuda's attention cases, test_engine_cuda,
# test_golden; (3) held A/B of the op, rounds alternated: main (form 0), defer-f16, noadd-live;
# (4) test_realwidth_cuda with defer-f16 if time allows.
# Needs .gpu (prep.sh here). From the root: LIMIT=360 bash benchmarks/results/2026-12-06-session55/call3/s55c3.sh
T0=$(date +%s)
LIMIT=${LIMIT:-360}
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
W=/tmp/w553; mkdir -p $W
B=native/build-gpu
F=native/src/cuda/kernels/attention_sm90.cu
cp $F /tmp/attention_sm90.main.cu
cp .gpu/diag/attention_sm90.cu $F
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 240 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
cp /tmp/attention_sm90.main.cu $F
OBJ=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
$OBJ -sass $B/liblora4j_cuda.so 2>$W/cuobjdump.err | awk '/Function :/ {f=$3} /HGMMA/ {c[f]++}
  END {for (k in c) if (k ~ /attn_bwd_sm90/) print c[k], k}' | sort -k2 > $W/hgmma.txt
echo "hgmma lines: $(wc -l < $W/hgmma.txt)" | tee -a $W/sum.log
export LORA4J_ATTN_BWD_FORM=defer-f16
(cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda) > $W/ops-f16.log 2>&1
echo "test_ops_cuda attention defer-f16 rc=$? pass $(grep -ac PASS $W/ops-f16.log) fail $(grep -ac FAIL $W/ops-f16.log) at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda) > $W/engine-f16.log 2>&1
echo "test_engine_cuda defer-f16 rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
(cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden) > $W/golden-f16.log 2>&1
echo "test_golden defer-f16 rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
unset LORA4J_ATTN_BWD_FORM
held() {
  if [ $1 = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$1; fi
  timeout 40 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
  echo "held $1 $2 rc=$?" >> $W/sum.log
  unset LORA4J_ATTN_BWD_FORM
}
held main 1; held defer-f16 1; held noadd-live 1
held noadd-live 2; held defer-f16 2; held main 2
if [ "$(left)" -gt 190 ]; then
  (cd $B && LORA4J_ATTN_BWD_FORM=defer-f16 LORA4J_REQUIRE_GPU=1 timeout 170 ./test_realwidth_cuda) > $W/realwidth-f16.log 2>&1
  echo "test_realwidth_cuda defer-f16 rc=$? fail $(grep -ac FAIL $W/realwidth-f16.log) at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
elif [ "$(left)" -gt 40 ]; then
  held main 3; held defer-f16 3
fi
tar -C $W -czf $OUT/logs.tgz --exclude=b .
cat $W/sum.log
cat $W/hgmma.txt
python3 benchmarks/compare.py --held-ab $W/held.jsonl
grep -a "FAIL" $W/ops-f16.log | head -8; grep -a "dq\b\|bwd dq" $W/ops-f16.log | grep D=128 | head -4
tail -3 $W/engine-f16.log; tail -2 $W/golden-f16.log
echo "done at $(( $(date +%s) - T0 )) s"
