set -u
# Fifty-second session, call2: the hd128 attention backward with dQ one iteration late
# (attn_bwd_sm90_kernel's kForm 1, LORA4J_ATTN_BWD_FORM=defer) and with the forward's turns as
# well (kForm 2, =pingpong), against main's form (0): correctness (test_ops_cuda's attention
# cases against the CPU twin, test_engine_cuda and test_golden with each form), then the held A/B
# of the op in three rounds, alternated.
# Prediction (NOTES.md, fifty-second session): at 4 x 2048 an iteration of main's kernel idles
# the tensor cores through both warpgroups' element-wise step at once (~0.5-0.7 us of ~2.7);
# with the two warpgroups no longer meeting at each iteration's dS barrier, up to that much can
# run under the other's products; the 16-byte reductions from registers replace the copy
# engine's (the same L2 bytes). Main kernel -5 to -15%, the op -4 to -12%, if the reductions
# cost no more than the staging did.
# No carry. From the root: LIMIT=560 bash benchmarks/results/2026-12-05-session52/next/s52c2.sh
T0=$(date +%s)
LIMIT=${LIMIT:-560}
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
W=/tmp/w2; mkdir -p $W
B=native/build-gpu
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 300 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
for form in main defer pingpong; do
  if [ $form = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$form; fi
  (cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda) > $W/ops-$form.log 2>&1
  echo "test_ops_cuda attention $form rc=$? pass $(grep -ac PASS $W/ops-$form.log) fail $(grep -ac FAIL $W/ops-$form.log) at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
  unset LORA4J_ATTN_BWD_FORM
done
held() {
  if [ $1 = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$1; fi
  timeout 40 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
  echo "held $1 $2 rc=$?" >> $W/sum.log
  unset LORA4J_ATTN_BWD_FORM
}
held main 1; held defer 1; held pingpong 1
held pingpong 2; held defer 2; held main 2
tar -C $W -czf $OUT/logs.tgz --exclude=b .
if [ "$(left)" -gt 150 ]; then held main 3; held defer 3; held pingpong 3; fi
for form in defer pingpong; do
  if [ "$(left)" -gt 90 ]; then
    (cd $B && LORA4J_ATTN_BWD_FORM=$form LORA4J_REQUIRE_GPU=1 timeout 60 ./test_engine_cuda) > $W/engine-$form.log 2>&1
    echo "test_engine_cuda $form rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
    (cd $B && LORA4J_ATTN_BWD_FORM=$form LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden) > $W/golden-$form.log 2>&1
    echo "test_golden $form rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
  fi
done
tar -C $W -czf $OUT/logs.tgz --exclude=b .
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
cat $W/sum.log
for f in $W/ops-*.log; do echo "== $f"; grep -a "FAIL" $f | head -4; grep -a "bwd" $f | head -3; tail -n 1 $f; done
python3 benchmarks/compare.py --held-ab $W/held.jsonl
grep -ah "hd128.*grad\|worst" $W/engine-*.log $W/golden-*.log 2>/dev/null | head -8
echo "done at $(( $(date +%s) - T0 )) s"
