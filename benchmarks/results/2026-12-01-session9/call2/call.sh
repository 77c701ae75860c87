set -u
export OUT
# main with dx-swiglu: build, frozen GEMMs per algorithm (bench_gemm_cuda), real-width remainder
STEPS="build gemms" CUDA_ARCHS=90 timeout 420 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$?" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./gemms.jsonl > /tmp/gemms.jsonl 2>/dev/null
B=native/build-gpu
for c in 1x4096 nemo; do
  LORA4J_REALWIDTH_CASES=$c LORA4J_REQUIRE_GPU=1 timeout 150 $B/test_realwidth_cuda > /tmp/rw-$c.log 2>&1; echo "realwidth $c rc=$?" >> /tmp/rw-$c.log
done
cp /tmp/run.log /tmp/gemms.jsonl /tmp/rw-*.log $OUT/ 2>/dev/null
grep -a "rc=\|FAIL" /tmp/run.log /tmp/rw-*.log | head
grep -a '^# ' /tmp/gemms.jsonl | head -60
