set -u
export OUT
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda" timeout 150 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$?" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests.log 2>/dev/null
for mb in 1 2; do
  nvcc -std=c++17 -O3 -arch=sm_90 -DLORA4J_SWIGLU_LORA_MIN_BLOCKS=$mb -Inative/src -Inative/include -Inative/src/cuda .gpu/probe_sw.cu -o /tmp/psw$mb >> /tmp/probe.log 2>&1
  /tmp/psw$mb >> /tmp/probe.log 2>&1
done
B=native/build-gpu
for i in 1 2; do
  for f in auto 0; do
    if [ $f = auto ]; then unset LORA4J_LORA_DX_SWIGLU; else export LORA4J_LORA_DX_SWIGLU=0; fi
    LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 100 $B/bench_cuda 2>&1 | grep train_step | sed "s/^/dxswiglu=$f /" >> /tmp/ab.log
  done
done
cp /tmp/run.log /tmp/tests.log /tmp/probe.log /tmp/ab.log $OUT/
grep -a "rc=\|FAIL\|failure" /tmp/run.log /tmp/tests.log | head
grep -a "LoRA dX" /tmp/tests.log | grep -v " PASS$" | cut -c1-220 | head; grep -a "r=12\|timing backward with LoRA" /tmp/tests.log | cut -c1-200 | head -12
cat /tmp/probe.log /tmp/ab.log
