set -u
# Twenty-seventh session, call 3 (branch attn-fwd-tma-store): the staged output (default) over
# the whole op suite; the forward's block order (LORA4J_ATTN_FWD_ORDER=lpt) and the descriptor
# prefetch (LORA4J_ATTN_PREFETCH=0) against the defaults, by the probe and by bench_ops (now
# without the fp32 output copy, as the engine runs; LORA4J_OPS_ATTN_O32=1 as before); then the
# attention kernels beside torch SDPA (cuDNN) in the same call (run.sh STEPS=ops).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w3; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
B=native/build-gpu
(nvcc -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --expt-relaxed-constexpr -Inative/src -Inative/include native/bench/attn_fwd_probe.cu -o $W/attn_fwd_probe > $W/probe-build.log 2>&1; echo "probe build rc=$?" >> $W/sum.log) &
PB=$!
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 300 ./test_ops_cuda > $W/ops.log 2>&1; echo "ops rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden > $W/golden.log 2>&1; echo "golden rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ctest -V -R test_op_bench_cuda > $W/opbench-test.log 2>&1; echo "test_op_bench_cuda rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
wait $PB
for cfg in "X=1" "LORA4J_ATTN_FWD_ORDER=lpt" "LORA4J_ATTN_PREFETCH=0"; do
  for shape in "4 2048" "1 8192"; do
    echo "== $cfg" >> $W/probe.txt
    env $cfg timeout 60 $W/attn_fwd_probe $shape 2>&1 | grep -a -A2 "round 2, output staged" >> $W/probe.txt
  done
done
echo "probe at $(( $(date +%s) - T_START )) s" >> $W/sum.log
: > $W/bench.txt
for round in 1 2; do
  for cfg in "X=1" "LORA4J_ATTN_TMA_STORE=0" "LORA4J_ATTN_FWD_ORDER=lpt" "LORA4J_ATTN_PREFETCH=0" "LORA4J_OPS_ATTN_O32=1" "LORA4J_OPS_ATTN_O32=1 LORA4J_ATTN_TMA_STORE=0"; do
    echo "== round $round $cfg" >> $W/bench.txt
    env $cfg LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd 2>&1 | grep -a "flash " >> $W/bench.txt
  done
done
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
export OUT=/tmp/o3; mkdir -p $OUT
STEPS="ops" CUDA_ARCHS=90 OPS_ARGS="attention_fwd attention_bwd" timeout 300 bash scripts/gpu/run.sh > $W/run-ops.log 2>&1
echo "run.sh ops rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
cp $OUT/attention-vs-cudnn.txt $OUT/ops.txt $OUT/torch_ops.log $OUT/anchors_ops.json $W/ 2>/dev/null
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck initcheck; do
  (cd $B && LORA4J_OPS_ONLY=attention timeout 120 $SAN --tool $tool --error-exitcode 1 ./test_ops_cuda > $W/san-$tool.log 2>&1; echo "sanitizer $tool rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
done
tar -C $W -czf $REAL_OUT/logs.tgz --exclude=attn_fwd_probe .
cat $W/sum.log
grep -a "FAIL" $W/ops.log | cut -c1-200 | head -8; grep -ac "staged = whole, direct, bits.*PASS" $W/ops.log; tail -1 $W/ops.log
grep -a "FAIL" $W/eng.log $W/golden.log | head -5; tail -1 $W/eng.log; tail -1 $W/golden.log
cut -c1-200 $W/probe.txt
grep -a "flash_mma" -v $W/bench.txt | cut -c1-120
cat $W/attention-vs-cudnn.txt
echo "total $(( $(date +%s) - T_START )) s"
