set -u
# Twenty-seventh session, call 2 (branch attn-fwd-tma-store): the forward's output through
# shared memory and bulk tensor stores (staged) against the register stores.
# 1. build; 2. test_ops_cuda's attention cases (staged + half tile bitwise against register
# stores + whole tile, and against the CPU twin), test_engine_cuda, test_golden; 3. the probe
# program (per-block timeline) at 4 x 2048 and 1 x 8192, both output forms; 4. bench_ops
# attention_fwd, LORA4J_ATTN_TMA_STORE=1 / 0 alternated, two rounds.
T_START=$(date +%s)
W=/tmp/w2; mkdir -p $W
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" > $W/sum.log
B=native/build-gpu
(nvcc -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --expt-relaxed-constexpr -Inative/src -Inative/include native/bench/attn_fwd_probe.cu -o $W/attn_fwd_probe > $W/probe-build.log 2>&1; echo "probe build rc=$?" >> $W/sum.log) &
PB=$!
(cd $B && LORA4J_OPS_ONLY=attention LORA4J_REQUIRE_GPU=1 timeout 150 ./test_ops_cuda > $W/ops-attn.log 2>&1; echo "ops attention rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden > $W/golden.log 2>&1; echo "golden rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
wait $PB
for shape in "4 2048" "1 8192"; do timeout 60 $W/attn_fwd_probe $shape >> $W/probe.txt 2>&1; done
echo "probe at $(( $(date +%s) - T_START )) s" >> $W/sum.log
: > $W/bench.txt
for round in 1 2; do
  for sw in 1 0; do
    echo "== round $round LORA4J_ATTN_TMA_STORE=$sw" >> $W/bench.txt
    LORA4J_ATTN_TMA_STORE=$sw LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd 2>&1 | grep -a "flash " >> $W/bench.txt
  done
done
echo "bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
tar -C $W -czf $OUT/logs.tgz --exclude=attn_fwd_probe .
cat $W/sum.log
grep -a "FAIL" $W/ops-attn.log | cut -c1-200 | head -8; grep -ac "staged = whole, direct, bits.*PASS" $W/ops-attn.log; tail -1 $W/ops-attn.log
grep -a "FAIL" $W/eng.log $W/golden.log | head -5; tail -1 $W/eng.log; tail -1 $W/golden.log
cat $W/probe.txt | cut -c1-200
grep -a "flash_mma" -v $W/bench.txt | cut -c1-120
echo "total $(( $(date +%s) - T_START )) s"
