set -u
# Prepared in the twenty-seventh session for the next one, branch attn-bwd-dv-early (not yet run on
# a GPU): the backward issues dV = P^T dO as soon as P^T is packed, so it runs while dS^T is
# computed (then dQ and dK after the dS barrier as before). 1. build; 2. the whole of
# test_ops_cuda, test_engine_cuda, test_golden, the attention cases under compute-sanitizer
# (memcheck, initcheck); 3. the backward's probe program on this tree and on main's kernel
# (tmp-old/: before the call, `mkdir -p tmp-old/cuda/kernels && git show
# main:native/src/cuda/kernels/attention_sm90.cu > tmp-old/cuda/kernels/attention_sm90.cu`, not
# committed), alternated, twice, at 4 x 2048 and 1 x 8192; 4. bench_ops attention_bwd.
T_START=$(date +%s)
W=/tmp/w0; mkdir -p $W
(nvcc -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --expt-relaxed-constexpr -Inative/src -Inative/include native/bench/attn_bwd_probe.cu -o $W/new_probe > $W/probe-build-new.log 2>&1; echo "new probe build rc=$?" >> $W/sum.log) &
(nvcc -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --expt-relaxed-constexpr -Itmp-old -Inative/src -Inative/include native/bench/attn_bwd_probe.cu -o $W/old_probe > $W/probe-build-old.log 2>&1; echo "old probe build rc=$?" >> $W/sum.log) &
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 300 ./test_ops_cuda > $W/ops.log 2>&1; echo "ops rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden > $W/golden.log 2>&1; echo "golden rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck initcheck; do
  (cd $B && LORA4J_OPS_ONLY=attention timeout 120 $SAN --tool $tool --error-exitcode 1 ./test_ops_cuda > $W/san-$tool.log 2>&1; echo "sanitizer $tool rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
done
wait
for round in 1 2; do
  for v in new old; do
    for shape in "4 2048" "1 8192"; do echo "== round $round $v" >> $W/probe.txt; timeout 60 $W/${v}_probe $shape >> $W/probe.txt 2>&1; done
  done
done
echo "probe at $(( $(date +%s) - T_START )) s" >> $W/sum.log
LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_bwd 2>&1 | grep -a "flash" > $W/bench.txt
tar -C $W -czf $OUT/logs.tgz --exclude=new_probe --exclude=old_probe .
cat $W/sum.log
grep -a "FAIL" $W/ops.log | cut -c1-200 | head -8; tail -1 $W/ops.log
grep -a "FAIL" $W/eng.log $W/golden.log | head -5; tail -1 $W/eng.log; tail -1 $W/golden.log
grep -a "ERROR SUMMARY" $W/san-*.log
grep -a "==\|backward:\|wg" $W/probe.txt | cut -c1-230
cut -c1-120 $W/bench.txt
echo "total $(( $(date +%s) - T_START )) s"
