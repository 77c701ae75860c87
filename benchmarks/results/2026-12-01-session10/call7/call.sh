set -u
export OUT
# lora-dy-pair: build + tests, A/B, then a real-width case
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden" timeout 200 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$?" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
B=native/build-gpu
for v in default off default off; do
  unset LORA4J_LORA_DY_PAIR
  [ $v = off ] && export LORA4J_LORA_DY_PAIR=0
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 60 $B/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
  cp /tmp/ab.log $OUT/
done
unset LORA4J_LORA_DY_PAIR
cp /tmp/run.log /tmp/tests-fast.log $OUT/ 2>/dev/null
grep -a "FAIL\|rc=\|Passed\|Failed\|failure\|what()" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -20
grep -a "lora_dy\]" /tmp/tests-fast.log | cut -c1-170
grep -a "worst of\|grads (max" /tmp/tests-fast.log | grep hd128 | cut -c1-150 | head -4
cat /tmp/ab.log
(cd $B && LORA4J_REALWIDTH_CASES="2x512 packed" LORA4J_REQUIRE_GPU=1 timeout 70 ./test_realwidth_cuda > /tmp/rw.log 2>&1; echo "realwidth rc=$?" >> /tmp/rw.log)
cp /tmp/rw.log $OUT/
grep -a "FAIL\|rc=" /tmp/rw.log | tail -5; grep -ac PASS /tmp/rw.log
