set -u
# Twenty-seventh session, call 4 (branch attn-fwd-tma-store): longest first over all blocks made
# the forward's default order. 1. build; 2. the whole of test_ops_cuda, test_engine_cuda,
# test_golden; 3. bench_ops attention_fwd, the default against LORA4J_ATTN_FWD_ORDER=grouped,
# alternated, two rounds, full rows and packed rows (LORA4J_OPS_ATTN_SEGMENT=700); 4. the
# attention kernels beside torch SDPA (cuDNN) in the same call (run.sh STEPS=ops).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w4; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 300 ./test_ops_cuda > $W/ops.log 2>&1; echo "ops rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden > $W/golden.log 2>&1; echo "golden rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
: > $W/bench.txt
for round in 1 2; do
  for seg in 0 700; do
    for cfg in "X=1" "LORA4J_ATTN_FWD_ORDER=grouped"; do
      echo "== round $round segment $seg $cfg" >> $W/bench.txt
      env $cfg LORA4J_OPS_ATTN_SEGMENT=$seg LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd 2>&1 | grep -a "flash " >> $W/bench.txt
    done
  done
done
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
export OUT=/tmp/o4; mkdir -p $OUT
STEPS="ops" CUDA_ARCHS=90 OPS_ARGS="attention_fwd attention_bwd" timeout 300 bash scripts/gpu/run.sh > $W/run-ops.log 2>&1
echo "run.sh ops rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
grep -a "FAIL" $W/ops.log | cut -c1-200 | head -8; grep -ac "staged = whole, direct, bits.*PASS" $W/ops.log; tail -1 $W/ops.log
grep -a "FAIL" $W/eng.log $W/golden.log | head -5; tail -1 $W/eng.log; tail -1 $W/golden.log
grep -a "flash_mma" -v $W/bench.txt | cut -c1-120
grep -a "^|" $W/run-ops.log
echo "total $(( $(date +%s) - T_START )) s"
