set -u
# Next session's call (prepared in the twenty-sixth), branch attn-fwd-half-bounded: the half last P V in the kernel with bounds (packed rows, windows).
# 1. build; 2. test_ops_cuda's attention cases (half vs whole tile bitwise, vs the CPU twin),
# test_engine_cuda, test_golden; 3. bench_ops attention_fwd / attention_bwd, the half tile (default)
# and LORA4J_ATTN_HALF_TILE=0 alternated, two rounds each.
T_START=$(date +%s)
W=/tmp/w6; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 200 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
B=native/build-gpu
# packed rows through the engine: test_engine_cuda's packed_segment_runs takes the bounded kernel
(cd $B && LORA4J_OPS_ONLY=attention LORA4J_REQUIRE_GPU=1 timeout 120 ./test_ops_cuda > $W/ops-attn.log 2>&1; echo "ops attention rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 60 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden > $W/golden.log 2>&1; echo "golden rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
: > $W/bench.txt
for round in 1 2; do
  for sw in 1 0; do
    echo "== round $round LORA4J_ATTN_HALF_TILE=$sw" >> $W/bench.txt
    LORA4J_ATTN_HALF_TILE=$sw LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd attention_bwd 2>&1 | grep -a "flash " >> $W/bench.txt
  done
done
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a "FAIL" $W/ops-attn.log | cut -c1-200 | head -8; grep -ac "half last tile = whole tile.*PASS" $W/ops-attn.log; tail -1 $W/ops-attn.log
grep -a "FAIL" $W/eng.log $W/golden.log | head -5; grep -a "hd128 lora grads" $W/eng.log | head -4 | cut -c1-120; tail -1 $W/eng.log; tail -1 $W/golden.log
cat $W/bench.txt | cut -c1-130
echo "total $(( $(date +%s) - T_START )) s"
