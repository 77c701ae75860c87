set -u
export OUT
# Java GPU tests (GoldenTest, CudaEngineTest on cuda:0) and the demo on the GPU, jar of 5e6fe77's code
STEPS="java" timeout 400 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$?" >> /tmp/run.log
cp /tmp/run.log $OUT/ 2>/dev/null
grep -a "FAIL\|rc=\|failed" /tmp/run.log | head
tar -xzOf $OUT/logs.tgz ./java-summary.log 2>/dev/null | tail -30
tar -xzOf $OUT/logs.tgz ./demo-cuda.log 2>/dev/null | tail -8
