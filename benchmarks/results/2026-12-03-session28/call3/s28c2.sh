set -u
# Twenty-eighth session, call 2 (main 453173f): the checks not run after the backward's dQ first
# (test_op_bench_cuda; the attention cases under compute-sanitizer memcheck and initcheck), then
# the user's path at 4 x 2048 without recompute beside the engine benchmark and the reference stack
# in this call (the README table's row).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w2; mkdir -p $W
export OUT=/tmp/o2; mkdir -p $OUT
STEPS=build CUDA_ARCHS=90 timeout 150 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ctest -V -R "test_op_bench_cuda" > $W/opbench-test.log 2>&1; echo "test_op_bench_cuda rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck initcheck; do
  (cd $B && LORA4J_OPS_ONLY=attention timeout 60 $SAN --tool $tool --error-exitcode 1 ./test_ops_cuda > $W/san-$tool.log 2>&1; echo "sanitizer attention $tool rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
done
STEPS="cli compare" CUDA_ARCHS=90 CLI_SETTINGS=4x2048 BENCH_SETTINGS=4x2048 HF_SETTINGS=4x2048 timeout 300 bash scripts/gpu/run.sh > $W/cli-run.log 2>&1
echo "cli compare rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
mkdir -p $W/cli && tar -C $W/cli -xzf $OUT/logs.tgz 2>/dev/null
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
grep -a "tests passed\|Failed\|Passed" $W/opbench-test.log | head -5
grep -a "ERROR SUMMARY" $W/san-*.log; grep -ac "PASS" $W/san-memcheck.log
grep -a "FAIL\|failed" $W/cli-run.log | head -5
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' $W/cli-run.log | head -24
grep -a "tokens_per_s" $W/cli-run.log | cut -c1-400 | head -4
echo "total $(( $(date +%s) - T_START )) s"
