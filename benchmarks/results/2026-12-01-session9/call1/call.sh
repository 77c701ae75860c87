set -u
export OUT
# lora-dx-swiglu: build + fast tests, A/B of LORA4J_LORA_DX_SWIGLU, then the real-width test
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda" timeout 220 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$?" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
B=native/build-gpu
for i in 1 2; do
  for f in auto 0; do
    if [ $f = auto ]; then unset LORA4J_LORA_DX_SWIGLU; else export LORA4J_LORA_DX_SWIGLU=0; fi
    LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 100 $B/bench_cuda 2>&1 | grep train_step | sed "s/^/dxswiglu=$f /" >> /tmp/ab.log
  done
done
unset LORA4J_LORA_DX_SWIGLU
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 200 ctest -V -R test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$?" >> /tmp/realwidth.log)
cp /tmp/run.log /tmp/ab.log /tmp/realwidth.log /tmp/tests-fast.log $OUT/ 2>/dev/null
grep -a "FAIL\|rc=\|Passed\|Failed\|failure" /tmp/run.log /tmp/tests-fast.log | grep -v " PASS" | cut -c1-300 | head -40
grep -a "swiglu_lora\|nf4.*xa\|fold" /tmp/tests-fast.log | cut -c1-200 | head -30
cat /tmp/ab.log
grep -a "FAIL\|realwidth\]\|rc=" /tmp/realwidth.log | cut -c1-200 | tail -30
