set -u
T_START=$(date +%s)
export OUT
left() { echo $(( 580 - $(date +%s) + T_START )); }
# delta pre-pass zeroes dq_accum (one pass), dQ conversion folded into RoPE's backward: tests, sanitizer on attention, real width, A/B against 4829743
STEPS="build test cudasan" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda" timeout 260 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
cp /tmp/run.log /tmp/tests-fast.log $OUT/ 2>/dev/null
mkdir -p /tmp/base && tar -C /tmp/base -xzf .gpu/base-4829743.tgz
(cmake -S /tmp/base/native -B /tmp/base/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/basecfg.log 2>&1 && cmake --build /tmp/base/build -j 16 --target bench_ops bench_cuda lora4j_cuda_bench lora4j_cuda > /tmp/basebuild.log 2>&1) &
BPID=$!
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 200 )) ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/realwidth.log)
cp /tmp/realwidth.log $OUT/
wait $BPID; echo "base build rc=$?" >> /tmp/ab.log
for rep in 1 2; do
  echo "== new" >> /tmp/ab.log
  LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_bwd 2>&1 | grep "flash " >> /tmp/ab.log
  echo "== base" >> /tmp/ab.log
  LORA4J_CUDA_BENCH_LIBRARY=/tmp/base/build/liblora4j_cuda_bench.so timeout 60 /tmp/base/build/bench_ops attention_bwd 2>&1 | grep "flash " >> /tmp/ab.log
done
for v in new base new base; do
  [ $(left) -lt 45 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
  BB=$B; [ $v = base ] && BB=/tmp/base/build
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 60 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done
cp /tmp/ab.log $OUT/
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok\|cudasan" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -24
grep -a "Passed\|Failed" /tmp/tests-fast.log | tail -5
grep -a "FAIL" /tmp/tests-fast.log | cut -c1-200 | head
grep -a "hd128 lora grads\|fp32 -> bf16" /tmp/tests-fast.log | cut -c1-150 | head -6
grep -a "FAIL\|rc=\|cpu reference\|failure" /tmp/realwidth.log | cut -c1-160 | tail -10; echo "realwidth PASS lines: $(grep -ac PASS /tmp/realwidth.log)"
cut -c1-220 /tmp/ab.log
echo "total $(( $(date +%s) - T_START )) s"
