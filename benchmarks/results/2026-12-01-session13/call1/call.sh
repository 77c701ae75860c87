set -u
T_START=$(date +%s)
export OUT
left() { echo $(( 585 - $(date +%s) + T_START )); }
# forward ping-pong + overlap, backward's own dQ staging for warpgroup 1: tests, sanitizer on attention, ops vs cuDNN, real width, A/B against 0596f98
mkdir -p /tmp/base && tar -C /tmp/base -xzf .gpu/base-0596f98.tgz
(cmake -S /tmp/base/native -B /tmp/base/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/basecfg.log 2>&1 && nice cmake --build /tmp/base/build -j 6 --target bench_ops bench_cuda lora4j_cuda_bench lora4j_cuda > /tmp/basebuild.log 2>&1) &
BPID=$!
STEPS="build test cudasan ops" CUDA_ARCHS=90 OPS_ARGS="attention_fwd attention_bwd" CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda" timeout 330 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
tar -xzOf $OUT/logs.tgz ./tests.log > /tmp/tests-fast.log 2>/dev/null
cp /tmp/run.log /tmp/tests-fast.log $OUT/ 2>/dev/null
B=native/build-gpu
wait $BPID; echo "base build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/ab.log
for rep in 1 2; do
  for v in new base; do
    BB=$B; [ $v = base ] && BB=/tmp/base/build
    echo "== $v" >> /tmp/ab.log
    LORA4J_CUDA_BENCH_LIBRARY=$BB/liblora4j_cuda_bench.so timeout 60 $BB/bench_ops attention_fwd attention_bwd 2>&1 | grep "flash " >> /tmp/ab.log
  done
done
(cd $B && LORA4J_REQUIRE_GPU=1 timeout $(( $(left) - 10 )) ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/realwidth.log)
cp /tmp/realwidth.log $OUT/
for v in new base; do
  [ $(left) -lt 40 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
  BB=$B; [ $v = base ] && BB=/tmp/base/build
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done
cp /tmp/ab.log $OUT/
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok\|cudasan" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -24
grep -a "Passed\|Failed" /tmp/tests-fast.log | tail -5
grep -a "FAIL" /tmp/tests-fast.log | cut -c1-200 | head
grep -a "hd128 lora grads" /tmp/tests-fast.log | cut -c1-150 | head -4
grep -a -A12 "attention" $OUT/attention-vs-cudnn.txt 2>/dev/null | head -20
grep -a "FAIL\|rc=\|failure" /tmp/realwidth.log | cut -c1-160 | tail -10; echo "realwidth PASS lines: $(grep -ac PASS /tmp/realwidth.log)"
cut -c1-200 /tmp/ab.log
echo "total $(( $(date +%s) - T_START )) s"
