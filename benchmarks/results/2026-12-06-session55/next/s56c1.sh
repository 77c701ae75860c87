set -u
# Prepared in the fifty-fifth session for the next GPU call (H100 or H200; carry .gpu after
# next/prep56.sh). (1) call4/s55c4.sh: the trial forms 7, 8, 9 of the late hd128 backward with
# dQ's product in fp16, tested and held beside main. (2) If form 9 (defer-f16-norm) holds under
# 0.98x main's time at 1 x 8192 and time is left: main with next/late-f16-main.patch (form 9 as
# main would take it, the default) built, test_ops_cuda (the late form), its attention cases
# with LORA4J_ATTN_BWD_FORM=lockstep, test_engine_cuda and test_golden with LORA4J_REQUIRE_GPU=1,
# then benchmarks/reference/attention_sustained.py (ours and cuDNN held alike: the contract's
# table). From the root: LIMIT=570 bash benchmarks/results/2026-12-06-session55/next/s56c1.sh
T0=$(date +%s)
LIMIT=${LIMIT:-570}
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
LIMIT=220 bash benchmarks/results/2026-12-06-session55/call4/s55c4.sh
W=/tmp/w561; mkdir -p $W/main-files
B=native/build-gpu
R=$(python3 - <<'PY'
import json
ms = {}
for line in open("/tmp/w554/held.jsonl"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("S") == 8192:
        ms.setdefault(r["variant"], []).append(r["ms"])
m, n = ms.get("main"), ms.get("defer-f16-norm")
print(f"{(sum(n) / len(n)) / (sum(m) / len(m)):.4f}" if m and n else "9")
PY
)
echo "defer-f16-norm / main at 1 x 8192: $R" | tee -a $W/sum.log
if python3 -c "import sys; sys.exit(0 if float('$R') < 0.98 else 1)" && [ "$(left)" -gt 200 ]; then
  FILES=$(cd .gpu/main-ready/tree && find . -type f | sed 's#^\./##')
  for f in $FILES; do mkdir -p $W/main-files/$(dirname $f); cp $f $W/main-files/$f; cp .gpu/main-ready/tree/$f $f; done
  STEPS="build" CUDA_ARCHS=90 OUT=$W/b timeout 200 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
  echo "main-ready build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_ops_cuda) > $W/ops-late.log 2>&1
  echo "test_ops_cuda (late) rc=$? fail $(grep -ac FAIL $W/ops-late.log) at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
  (cd $B && LORA4J_ATTN_BWD_FORM=lockstep LORA4J_OPS_ONLY=attention LORA4J_REQUIRE_GPU=1 timeout 60 ./test_ops_cuda) > $W/ops-lockstep.log 2>&1
  echo "test_ops_cuda attention (lockstep) rc=$? fail $(grep -ac FAIL $W/ops-lockstep.log) at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout 60 ./test_engine_cuda) > $W/engine.log 2>&1
  echo "test_engine_cuda rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
  (cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden) > $W/golden.log 2>&1
  echo "test_golden rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
  if [ "$(left)" -gt 70 ]; then
    LORA4J_CUDA_BENCH_LIBRARY="$B/liblora4j_cuda_bench.so" timeout $(( $(left) - 20 )) python3 \
      benchmarks/reference/attention_sustained.py "$B/liblora4j_bench.so" 3 \
      > $W/attention_sustained.jsonl 2> $W/attention_sustained.err
    echo "attention_sustained rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
  fi
  for f in $FILES; do cp $W/main-files/$f $f; done
fi
tar -C $W -czf $OUT/logs2.tgz --exclude=b --exclude=main-files .
cat $W/sum.log
python3 benchmarks/compare.py --attention-sustained $W/attention_sustained.jsonl 2>/dev/null
echo "done at $(( $(date +%s) - T0 )) s"
