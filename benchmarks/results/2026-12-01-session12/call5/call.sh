set -u
T_START=$(date +%s)
export OUT
left() { echo $(( 585 - $(date +%s) + T_START )); }
# attention backward's lse/delta and dQ staging orders stated per warp: tests + racecheck first, then the user's path beside the reference, then the Java GPU tests
STEPS="build" CUDA_ARCHS=90 timeout 120 bash scripts/gpu/run.sh > /tmp/build.log 2>&1
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 60 ./test_ops_cuda > /tmp/ops.log 2>&1; echo "test_ops_cuda rc=$?" >> /tmp/ops.log
 LORA4J_REQUIRE_GPU=1 timeout 30 ./test_engine_cuda > /tmp/engine.log 2>&1; echo "test_engine_cuda rc=$?" >> /tmp/engine.log
 LORA4J_REQUIRE_GPU=1 timeout 30 ./test_golden > /tmp/golden.log 2>&1; echo "test_golden rc=$?" >> /tmp/golden.log)
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in racecheck memcheck; do
  LORA4J_OPS_ONLY=attention timeout 60 $SAN --tool $tool --error-exitcode 1 $B/test_ops_cuda > /tmp/san-attention-$tool.log 2>&1
  echo "cudasan attention $tool rc=$?" >> /tmp/san.log
done
cp /tmp/ops.log /tmp/engine.log /tmp/golden.log /tmp/san.log /tmp/san-attention-*.log /tmp/build.log $OUT/ 2>/dev/null
echo "tests done at $(( $(date +%s) - T_START )) s" >> /tmp/san.log
STEPS="cli compare" CUDA_ARCHS=90 CLI_SETTINGS="4x2048,4x2048-attention-offload" BENCH_SETTINGS=4x2048 HF_SETTINGS="4x2048,4x2048gc" timeout $(( $(left) - 60 )) bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
mkdir -p /tmp/cli && tar -C /tmp/cli -xzf $OUT/logs.tgz 2>/dev/null; cp /tmp/run.log $OUT/
(cd /tmp/cli && tar -czf $OUT/cli-logs.tgz .)
if [ $(left) -gt 100 ]; then
  OUT=/tmp/jout STEPS="java" timeout $(( $(left) - 5 )) bash scripts/gpu/run.sh > /tmp/java-run.log 2>&1
  echo "java run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/java-run.log
  (cd /tmp/jout && tar -czf $OUT/java-logs.tgz . ) 2>/dev/null; cp /tmp/java-run.log $OUT/
else
  echo "java: skipped, $(left) s left" > $OUT/java-run.log
fi
grep -a "BUILD\|build ok" /tmp/build.log | head -3
grep -a "rc=\|failure(s)" /tmp/ops.log /tmp/engine.log /tmp/golden.log | tail -6
cat /tmp/san.log; grep -a "ERROR SUMMARY\|hazard" /tmp/san-attention-racecheck.log | head -5
grep -a "FAIL\|rc=\|failed" /tmp/run.log | head
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' /tmp/run.log | head -30
grep -a "rc=\|tests successful\|tests failed\|tests skipped\|skipped" /tmp/java-run.log $OUT/java-run.log 2>/dev/null | head -8
echo "total $(( $(date +%s) - T_START )) s"
