set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-590}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# forward ping-pong on the lean softmax: tests, sanitizer on attention, real width, whole step A/B against faddaf8, Java GPU tests
mkdir -p /tmp/base && tar -C /tmp/base -xzf .gpu/base-faddaf8.tgz
(cmake -S /tmp/base/native -B /tmp/base/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/basecfg.log 2>&1 && nice cmake --build /tmp/base/build -j 6 --target bench_ops bench_cuda lora4j_cuda_bench lora4j_cuda > /tmp/basebuild.log 2>&1) &
BPID=$!
STEPS="build test cudasan" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda" timeout 200 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
mkdir -p /tmp/l1 && tar -C /tmp/l1 -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz
cp /tmp/run.log /tmp/l1/tests.log /tmp/l1/cudasan-attention-*.log $OUT/ 2>/dev/null
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 200 ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/realwidth.log)
cp /tmp/realwidth.log $OUT/
wait $BPID; echo "base build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/ab.log
for v in new base; do
  BB=$B; [ $v = base ] && BB=/tmp/base/build
  echo "== $v" >> /tmp/ab.log
  LORA4J_CUDA_BENCH_LIBRARY=$BB/liblora4j_cuda_bench.so timeout 30 $BB/bench_ops attention_fwd 2>&1 | grep "flash " >> /tmp/ab.log
done
for v in new base new base; do
  [ $(left) -lt 160 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
  BB=$B; [ $v = base ] && BB=/tmp/base/build
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done
cp /tmp/ab.log $OUT/
if [ $(left) -gt 100 ]; then
  OUT=/tmp/jout STEPS="java" timeout $(( $(left) - 5 )) bash scripts/gpu/run.sh > /tmp/java-run.log 2>&1
  echo "java run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/java-run.log
  cp /tmp/java-run.log $OUT/
else
  echo "java: skipped, $(left) s left" > $OUT/java-run.log
fi
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok\|cudasan" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -24
grep -a "Passed\|Failed" /tmp/l1/tests.log | tail -5
grep -a "FAIL" /tmp/l1/tests.log | cut -c1-200 | head
grep -a "hd128 lora grads\|hd128 base logits  " /tmp/l1/tests.log | cut -c1-150 | head -6
grep -a "FAIL\|rc=\|failure" /tmp/realwidth.log | cut -c1-160 | tail -6; echo "realwidth PASS lines: $(grep -ac PASS /tmp/realwidth.log)"
cut -c1-200 /tmp/ab.log
grep -a "rc=\|tests successful\|tests failed\|tests skipped\|skipped" $OUT/java-run.log | head -8
echo "total $(( $(date +%s) - T_START )) s"
