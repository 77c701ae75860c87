set -u
# Fifty-third session, prepared (not run: no machine lent after call1). On main with
# next/deferred-dq-forms.patch and next/diag-noadd.patch applied (git am; not for main): why the deferred dQ (kForm 1) was
# 12-15% slower than main's form in call1. Timing-only variants whose dQ is wrong: noadd (form 1
# without its 16-byte reductions) and main-noadd (form 0 without its bulk reduce-add, the staging
# kept). If noadd beats main-noadd, the skew pays and the reductions cost it; if not, the skew
# itself does not pay. Held A/B, three rounds, alternated; then test_golden with defer (call1 ran
# it without LORA4J_TESTDATA).
# No carry. From the root: LIMIT=400 bash benchmarks/results/2026-12-05-session53/next/s53c2.sh
T0=$(date +%s)
W=/tmp/w3; mkdir -p $W
B=native/build-gpu
STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 300 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
held() {
  if [ $1 = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$1; fi
  timeout 40 python3 benchmarks/attention_held.py $B/liblora4j_bench.so attention_bwd $1 $2 3 >> $W/held.jsonl 2>> $W/held.err
  echo "held $1 $2 rc=$?" >> $W/sum.log
  unset LORA4J_ATTN_BWD_FORM
}
held main 1; held defer 1; held noadd 1; held main-noadd 1
held main-noadd 2; held noadd 2; held defer 2; held main 2
held main 3; held noadd 3; held main-noadd 3; held defer 3
(cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_ATTN_BWD_FORM=defer LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden) > $W/golden-defer.log 2>&1
echo "test_golden defer rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
tar -C $W -czf $OUT/logs.tgz --exclude=b .
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
cat $W/sum.log
python3 benchmarks/compare.py --held-ab $W/held.jsonl
grep -a "FAIL\|hd128.*grad" $W/golden-defer.log | head -6; tail -1 $W/golden-defer.log
echo "done at $(( $(date +%s) - T0 )) s"
