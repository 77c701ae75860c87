set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-590}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# The LM head's loss on bf16 logits (this tree; LORA4J_LM_HEAD_LOGITS=fp32 keeps fp32) beside
# main 2b9d53b (fp32 logits, 960-token chunks) built from .gpu/base-2b9d53b.tgz: the GPU tests
# of this tree (ops: the bf16 loss kernel against float64; GEMM: chunk sizes; golden, engine,
# NF4, offload, op_bench), bench_ops cross_entropy at 8192 x 4096 x 32768 (bf16 / fp32 / main,
# twice), the whole step 32 layers 4 x 2048 (this tree / main, twice), then the real-width cases.
export LORA4J_TESTDATA=$PWD/java/src/test/resources/hf-reference
mkdir -p /tmp/m && tar -C /tmp/m -xzf .gpu/base-2b9d53b.tgz
(cmake -S /tmp/m/native -B $PWD/native/build-m -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/mcfg.log 2>&1 && nice cmake --build $PWD/native/build-m -j 4 --target bench_ops bench_cuda lora4j_cuda lora4j_cuda_bench > /tmp/mbuild.log 2>&1; echo "main build rc=$? at $(( $(date +%s) - T_START )) s" > /tmp/mb.log) &
BP=$!
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_gemm_cuda|test_op_bench_cuda|test_nf4_cuda|test_offload_cuda" timeout 260 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
mkdir -p /tmp/l1 && tar -C /tmp/l1 -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz
cp /tmp/run.log /tmp/l1/tests.log $OUT/ 2>/dev/null
wait $BP
B=native/build-gpu; M=native/build-m
cat /tmp/mb.log > /tmp/ab.log
for rep in 1 2; do for v in bf16 fp32 main; do
  L=$B; E="LORA4J_LM_HEAD_LOGITS=bf16"; [ $v = fp32 ] && E="LORA4J_LM_HEAD_LOGITS=fp32"; [ $v = main ] && L=$M
  env $E LORA4J_CUDA_BENCH_LIBRARY=$L/liblora4j_cuda_bench.so timeout 60 $L/bench_ops cross_entropy 2>&1 | grep -a "cross_entropy" | sed "s/^/$v /" >> /tmp/ab.log
done; done
echo "op bench done at $(( $(date +%s) - T_START )) s" >> /tmp/ab.log
for rep in 1 2; do for v in new main; do
  [ $(left) -lt 40 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
  BB=$B; [ $v = main ] && BB=$M
  LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
done; done
cp /tmp/ab.log $OUT/
T=$(( $(left) - 15 )); [ $T -gt 250 ] && T=250
if [ $T -gt 60 ]; then
  (cd $B && LORA4J_REQUIRE_GPU=1 timeout $T ./test_realwidth_cuda > /tmp/realwidth.log 2>&1; echo "realwidth rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/realwidth.log)
  cp /tmp/realwidth.log $OUT/
fi
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -16
grep -a "Passed\|Failed" /tmp/l1/tests.log | tail -9
grep -a "FAIL" /tmp/l1/tests.log | cut -c1-200 | head
grep -a "bf16 logits\|bf16 kernel\|lm_head chunk 8192" /tmp/l1/tests.log | cut -c1-150 | head -12
grep -a "golden\] .*loss \|hd128 lora grads" /tmp/l1/tests.log | cut -c1-130 | head -14
cut -c1-230 /tmp/ab.log
[ -f /tmp/realwidth.log ] && { grep -a "FAIL\|rc=" /tmp/realwidth.log | head; grep -a "grad " /tmp/realwidth.log | sort -t= -k2 -g | tail -3 | cut -c1-160; grep -a " loss" /tmp/realwidth.log | sort -t= -k2 -g | tail -3 | cut -c1-160; tail -2 /tmp/realwidth.log; }
echo "total $(( $(date +%s) - T_START )) s"
