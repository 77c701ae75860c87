set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-590}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# The Hopper attention forward persistent with a work counter (this tree, branch attn-fwd-persistent: items taken from an atomic counter, each head's longest rows first) beside main
# e6ccd3c (.gpu/base-e6ccd3c.tgz): tests (ops: every wgmma forward case also at grids 1, 3 and one
# block per item, with and without the counter, bit for bit; engine; golden), compute-sanitizer memcheck/initcheck on the
# attention cases, bench_ops attention beside cuDNN (the ops step), then A/B in bench_ops
# attention_fwd: this tree (persistent), this tree with LORA4J_ATTN_FWD_GRID=items, main; twice;
# then the whole step 32 layers 4 x 2048 this tree / main, twice.
export LORA4J_TESTDATA=$PWD/java/src/test/resources/hf-reference
mkdir -p /tmp/m && tar -C /tmp/m -xzf .gpu/base-e6ccd3c.tgz
(cmake -S /tmp/m/native -B $PWD/native/build-m -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/mcfg.log 2>&1 && nice cmake --build $PWD/native/build-m -j 4 --target bench_ops bench_cuda lora4j_cuda lora4j_cuda_bench > /tmp/mbuild.log 2>&1; echo "main build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/mb.log) &
BP=$!
STEPS="build test cudasan ops" CUDA_ARCHS=90 OPS_ARGS="attention_fwd attention_bwd" CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_op_bench_cuda" timeout 330 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
mkdir -p /tmp/l1 && tar -C /tmp/l1 -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz
cp /tmp/run.log /tmp/l1/tests.log /tmp/l1/attention-vs-cudnn.txt /tmp/l1/ops.txt $OUT/ 2>/dev/null
wait $BP
B=native/build-gpu; M=native/build-m
cat /tmp/mb.log > /tmp/ab.log
for rep in 1 2; do for v in pers items main; do
  [ $(left) -lt 60 ] && continue
  L=$B; E="LORA4J_ATTN_FWD_GRID="; [ $v = items ] && E="LORA4J_ATTN_FWD_GRID=items"; [ $v = main ] && L=$M
  env $E LORA4J_CUDA_BENCH_LIBRARY=$L/liblora4j_cuda_bench.so timeout 40 $L/bench_ops attention_fwd 2>&1 | grep -a "flash " | sed "s/^/$v /" >> /tmp/ab.log
done; done
echo "op bench done at $(( $(date +%s) - T_START )) s" >> /tmp/ab.log
for rep in 1 2; do for v in new main; do
  [ $(left) -lt 40 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
  BB=$B; [ $v = main ] && BB=$M
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done; done
cp /tmp/ab.log $OUT/
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok\|cudasan" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -20
grep -a "Passed\|Failed" /tmp/l1/tests.log | tail -5
grep -a "grid .* = default" /tmp/l1/tests.log | cut -c1-150 | head -4
grep -ac "grid .* = default.*PASS" /tmp/l1/tests.log
grep -a "hd128 lora grads" /tmp/l1/tests.log | cut -c1-130 | head -4
cat /tmp/l1/attention-vs-cudnn.txt 2>/dev/null | head -20
cut -c1-200 /tmp/ab.log
echo "total $(( $(date +%s) - T_START )) s"
