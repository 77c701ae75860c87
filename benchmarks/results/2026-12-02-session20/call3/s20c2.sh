set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-590}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# Prepared in the nineteenth session: after merging sm90-window or sm90-segments (s20c1), as s19c2
# with the packed rows of cli_bench.py (4x2048-packed, 4x2048-attention-offload-packed) and the
# padded ones beside the two table rows; as s17c2: engine, NF4,
# golden, offload tests; the user's path beside the reference (4 x 2048, and with attention
# recompute offloaded); the Java GPU tests and the demo. The jar carries the CUDA backend, built
# on the build machine: after merging, `mvn -B -ntp -q -DskipTests -DskipNativeTests=true package`
# and `scripts/gpu/pack-java.sh` (rm -f .device/benchmarks.jar), carry [".gpu", ".device"], and
# benchmarks/results moved aside for the carry limit.
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_engine_cuda|test_nf4_cuda|test_golden|test_offload_cuda|test_op_bench_cuda|test_ops_cuda" timeout 220 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
mkdir -p /tmp/l1 && tar -C /tmp/l1 -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz
STEPS="cli compare" CUDA_ARCHS=90 CLI_SETTINGS="4x2048,4x2048-attention-offload,4x2048-packed,4x2048-attention-offload-packed,4x2048-padded" BENCH_SETTINGS=4x2048 HF_SETTINGS="4x2048,4x2048gc" timeout $(( $(left) - 150 )) bash scripts/gpu/run.sh > /tmp/cli-run.log 2>&1
echo "cli run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/cli-run.log
mkdir -p /tmp/cli && tar -C /tmp/cli -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz; cp /tmp/cli-run.log $OUT/
(cd /tmp/cli && tar -czf $OUT/cli-logs.tgz .)
if [ $(left) -gt 60 ]; then
  OUT=/tmp/jout STEPS="java" timeout $(( $(left) - 5 )) bash scripts/gpu/run.sh > /tmp/java-run.log 2>&1
  echo "java run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/java-run.log
  cp /tmp/java-run.log $OUT/
else
  echo "java: skipped, $(left) s left" > $OUT/java-run.log
fi
if [ $(left) -gt 60 ]; then
  (cd native/build-gpu && LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 8 )) ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/realwidth.log)
else
  echo "realwidth: skipped, $(left) s left" > /tmp/realwidth.log
fi
cp /tmp/run.log /tmp/l1/tests.log /tmp/realwidth.log $OUT/ 2>/dev/null
grep -a "FAIL\|rc=" /tmp/realwidth.log | head -8; tail -1 /tmp/realwidth.log
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -12
grep -a "Passed\|Failed" /tmp/l1/tests.log | tail -5
grep -a "FAIL" /tmp/l1/tests.log | cut -c1-220 | head -12
grep -a "greedy generation\|hd128 lora grads" /tmp/l1/tests.log | cut -c1-170 | head -14
grep -a "FAIL\|rc=\|failed" /tmp/cli-run.log | head
sed -n '/lora4j vs Hugging Face + PEFT (same call)/,$p' /tmp/cli-run.log | head -30
grep -a "rc=\|tests successful\|tests failed\|tests skipped\|skipped" $OUT/java-run.log | head -8
echo "total $(( $(date +%s) - T_START )) s"
