set -u
T_START=$(date +%s)
export OUT
LIM=${LIM:-590}
left() { echo $(( LIM - $(date +%s) + T_START )); }
# main: the tests written or changed after its last GPU call (fourteenth session: qk_f16_bounds,
# the phase name 'q/k operands to f16'; fifteenth: tests that could not fail mended in
# test_engine_cuda, test_ops_cuda, test_aggregate_cuda, test_offload_cuda; the LM head's
# exception path); then three branches built beside it, each tested and timed against main: swiglu-lora-pad (the SwiGLU backward's LoRA sum over zero-padded t rows, no test
# per term), qkv-dx-fold (q, k and v's input gradients as one GEMM) and lora-side-stream (the
# groups' LoRA gradients on a second stream beside the frozen dX GEMMs)
for v in sp qf ss; do
  T=.gpu/branch-swiglu-lora-pad.tgz; [ $v = qf ] && T=.gpu/branch-qkv-dx-fold.tgz; [ $v = ss ] && T=.gpu/branch-lora-side-stream.tgz
  mkdir -p /tmp/$v && tar -C /tmp/$v -xzf $T
done
bb() { cmake -S /tmp/$1/native -B $PWD/native/build-$1 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > /tmp/${1}cfg.log 2>&1 && nice cmake --build $PWD/native/build-$1 -j 4 --target bench_cuda lora4j_cuda test_ops_cuda test_engine_cuda > /tmp/${1}build.log 2>&1; echo "$1 build rc=$?" >> /tmp/brbuild.log; }
(bb ss; bb sp) &
BPID=$!
(bb qf) &
BPID2=$!
STEPS="build test" CUDA_ARCHS=90 CTEST_ARGS="-R test_ops_cuda|test_engine_cuda|test_golden|test_nf4_cuda|test_gemm_cuda|test_aggregate_cuda|test_offload_cuda|test_op_bench_cuda" timeout 260 bash scripts/gpu/run.sh > /tmp/run.log 2>&1
echo "run.sh rc=$? at $(( $(date +%s) - T_START )) s" >> /tmp/run.log
mkdir -p /tmp/l1 && tar -C /tmp/l1 -xzf $OUT/logs.tgz 2>/dev/null; rm -f $OUT/logs.tgz
cp /tmp/run.log /tmp/l1/tests.log $OUT/ 2>/dev/null
B=native/build-gpu
# the branches build into native/build-<v> (ignored; kept while the machine stays warm, so a
# second call can time them again without rebuilding)
wait $BPID $BPID2; cat /tmp/brbuild.log > /tmp/ab.log; echo "branches built at $(( $(date +%s) - T_START )) s" >> /tmp/ab.log
export LORA4J_TESTDATA=$PWD/java/src/test/resources/hf-reference
ab_round() {
  for v in main sp qf ss; do
    [ $(left) -lt 45 ] && { echo "$v: skipped, $(left) s left" >> /tmp/ab.log; continue; }
    BB=$B; [ $v != main ] && BB=native/build-$v
    [ -x $BB/bench_cuda ] || { echo "$v: no bench_cuda" >> /tmp/ab.log; continue; }
    LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 35 $BB/bench_cuda 2>&1 | grep train_step | sed "s/^/$v /" >> /tmp/ab.log
  done
}
# one round of the whole step first (what decides a merge besides the tests), then the branches'
# tests side by side on the GPU (correctness only: they share it), then a second round
ab_round
(cd native/build-sp && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_ops_cuda > /tmp/sp-ops.log 2>&1; echo "sp test_ops_cuda rc=$?" >> /tmp/ab.log) &
(cd native/build-qf && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_ops_cuda > /tmp/qf-ops.log 2>&1; echo "qf test_ops_cuda rc=$?" >> /tmp/ab.log) &
(cd native/build-qf && LORA4J_REQUIRE_GPU=1 timeout 120 ./test_engine_cuda > /tmp/qf-engine.log 2>&1; echo "qf test_engine_cuda rc=$?" >> /tmp/ab.log) &
(cd native/build-ss && LORA4J_REQUIRE_GPU=1 timeout 170 ./test_engine_cuda > /tmp/ss-engine.log 2>&1; echo "ss test_engine_cuda rc=$?" >> /tmp/ab.log) &
wait
echo "branch tests done at $(( $(date +%s) - T_START )) s" >> /tmp/ab.log
grep -a "FAIL" /tmp/sp-ops.log /tmp/qf-ops.log /tmp/qf-engine.log /tmp/ss-engine.log | cut -c1-200 | head -10 >> /tmp/ab.log
grep -a "LoRA stream vs one stream" /tmp/ss-engine.log | cut -c1-160 >> /tmp/ab.log
grep -a "as one GEMM vs three\|hd128 lora grads (max over tensors), recompute none" /tmp/qf-engine.log | cut -c1-160 >> /tmp/ab.log
ab_round
for v in sp qf; do
  [ $(left) -lt 50 ] && continue
  LORA4J_PHASE_TIMES=/tmp/ph-$v.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048 timeout 40 native/build-$v/bench_cuda > /tmp/bph-$v.jsonl 2>&1
  python3 benchmarks/phases.py /tmp/bph-$v.jsonl /tmp/ph-$v.jsonl > /tmp/phases-$v.txt 2>&1
  echo "== $v" >> /tmp/ab.log; grep -a "ms per step\|swiglu backward\| dX \|dX through LoRA\|q/k/v dX operands" /tmp/phases-$v.txt | head -14 >> /tmp/ab.log
done
cp /tmp/ab.log /tmp/sp-ops.log /tmp/qf-ops.log /tmp/qf-engine.log /tmp/ss-engine.log /tmp/phases-*.txt $OUT/ 2>/dev/null
grep -a "FAIL\|rc=\|Failed\|failure\|what()\|build ok" /tmp/run.log | grep -v " PASS" | cut -c1-300 | head -16
grep -a "Passed\|Failed" /tmp/l1/tests.log | tail -6
grep -a "FAIL" /tmp/l1/tests.log | cut -c1-200 | head
grep -a "fp16 bound\|differs from the e4m3" /tmp/l1/tests.log | cut -c1-200
cut -c1-220 /tmp/ab.log
echo "total $(( $(date +%s) - T_START )) s"
