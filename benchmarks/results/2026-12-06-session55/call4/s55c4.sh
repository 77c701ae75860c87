set -u
# Fifty-fifth session, call4 (H100 or H200; prepared, not yet run): main with forms-f16.patch
# here (the files it touches copied from .gpu/diag/tree, which prep.sh builds): the fifty-fourth
# session's trial and timing forms, call3's form 7 (defer-f16, dQ's product in fp16 with Kb
# freed for its staging) with its loader warp's row norms read without bank conflicts (each
# lane's 16-byte chunks from (row + j) & 7; call3's were 32-way conflicted), form 8
# (defer-f16-early: the loader's lse / delta barrier arrived before the norms, the scales on a
# barrier of their own waited on just before dS^T's fp16 copy is packed) and form 9
# (defer-f16-norm: |dO| of each query from the delta pre-pass through a [B, H, S] buffer beside
# delta, read by the loader warp as delta is; no dO tile read, no bulk-copy wait). Call3 put
# form 7 at 1.58x / 1.61x main with the board under its power cap (the SMs waiting).
# (1) build; (2) test_ops_cuda's attention cases with each form, test_engine_cuda and
# test_golden with form 9; (3) held A/B main, defer-f16, defer-f16-early, defer-f16-norm, two
# rounds. Needs .gpu. From the root:
#   bash benchmarks/results/2026-12-06-session55/call4/prep.sh   # on the build machine
#   LIMIT=220 bash benchmarks/results/2026-12-06-session55/call4/s55c4.sh
T0=$(date +%s)
LIMIT=${LIMIT:-220}
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
W=/tmp/w554; mkdir -p $W/main-files
B=native/build-gpu
FILES=$(cd .gpu/diag/tree && find . -type f | sed 's#^\./##')
for f in $FILES; do mkdir -p $W/main-files/$(dirname $f); cp $f $W/main-files/$f; cp .gpu/diag/tree/$f $f; done
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 240 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
for f in $FILES; do cp $W/main-files/$f $f; done
for f in defer-f16 defer-f16-early defer-f16-norm; do
  (cd $B && LORA4J_ATTN_BWD_FORM=$f LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 60 ./test_ops_cuda) > $W/ops-$f.log 2>&1
  echo "test_ops_cuda attention $f rc=$? pass $(grep -ac PASS $W/ops-$f.log) fail $(grep -ac FAIL $W/ops-$f.log) at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
done
(cd $B && LORA4J_ATTN_BWD_FORM=defer-f16-norm LORA4J_REQUIRE_GPU=1 timeout 60 ./test_engine_cuda) > $W/engine-norm.log 2>&1
echo "test_engine_cuda defer-f16-norm rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
(cd $B && LORA4J_ATTN_BWD_FORM=defer-f16-norm LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden) > $W/golden-norm.log 2>&1
echo "test_golden defer-f16-norm rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
held() {
  if [ $1 = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$1; fi
  timeout 40 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
  echo "held $1 $2 rc=$?" >> $W/sum.log
  unset LORA4J_ATTN_BWD_FORM
}
held main 1; held defer-f16-norm 1; held defer-f16-early 1; held defer-f16 1
if [ "$(left)" -gt 45 ]; then held defer-f16 2; held defer-f16-early 2; held defer-f16-norm 2; held main 2; fi
tar -C $W -czf $OUT/logs.tgz --exclude=b --exclude=main-files .
cat $W/sum.log
python3 benchmarks/compare.py --held-ab $W/held.jsonl
tail -1 $W/engine-norm.log; tail -1 $W/golden-norm.log
echo "done at $(( $(date +%s) - T0 )) s"
