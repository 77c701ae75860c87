set -u
# Twenty-seventh session, call 1 (branch attn-fwd-half-bounded on main f5dfa75):
# 1. build; 2. the whole of test_ops_cuda (the half last P V of the kernel with bounds, bitwise
# against the whole tile; swiglu_dx / swiglu_gu through sm90::launch_persistent, first run on a
# GPU), test_engine_cuda, test_golden; 3. bench_ops attention_fwd / attention_bwd, the half tile
# (default) and LORA4J_ATTN_HALF_TILE=0 alternated, two rounds, full rows and packed rows
# (LORA4J_OPS_ATTN_SEGMENT=700).
T_START=$(date +%s)
W=/tmp/w1; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 300 ./test_ops_cuda > $W/ops.log 2>&1; echo "ops rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden > $W/golden.log 2>&1; echo "golden rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
: > $W/bench.txt
for round in 1 2; do
  for seg in 0 700; do
    for sw in 1 0; do
      echo "== round $round segment $seg LORA4J_ATTN_HALF_TILE=$sw" >> $W/bench.txt
      LORA4J_OPS_ATTN_SEGMENT=$seg LORA4J_ATTN_HALF_TILE=$sw LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd attention_bwd 2>&1 | grep -a "flash " >> $W/bench.txt
    done
  done
done
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a "FAIL" $W/ops.log | cut -c1-200 | head -8; grep -ac "half last tile = whole tile.*PASS" $W/ops.log; grep -a "^\[swiglu_dx\]\|^\[swiglu_gu\]" $W/ops.log | grep -c PASS; tail -1 $W/ops.log
grep -a "FAIL" $W/eng.log $W/golden.log | head -5; tail -1 $W/eng.log; tail -1 $W/golden.log
grep -a "flash_mma" -v $W/bench.txt | cut -c1-120
echo "total $(( $(date +%s) - T_START )) s"
