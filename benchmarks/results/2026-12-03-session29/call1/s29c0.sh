set -u
# Prepared in the twenty-eighth session for the next one, branch s29-attn (attn-bwd-exp-under-dp
# and attn-fwd-l2-ahead merged; not yet run on a GPU):
#  - backward A: S^T and dP^T committed separately, P^T (the exp) computed while dP^T runs;
#  - backward B: A with LORA4J_ATTN_BWD_DV_BEFORE_SYNC=1 at compile time (hd128's dV issued
#    before the dS barrier);
#  - forward: LORA4J_ATTN_FWD_L2_AHEAD=sms (run time) fetches into L2 the first tiles of the
#    block an SM count ahead.
# Before the call, here:
#   mkdir -p tmp-old/cuda/kernels && git show main:native/src/cuda/kernels/attention_sm90.cu \
#     > tmp-old/cuda/kernels/attention_sm90.cu        (untracked, not committed; delete after)
# 1. build (A); test_ops_cuda whole, its attention cases again with the L2 fetch on;
# test_engine_cuda, test_golden; the attention cases under memcheck and initcheck with the L2
# fetch on; 2. B's attention cases (a second build); 3. the backward's probe program on main's
# kernel, A and B; the forward's with the L2 fetch off and on; alternated, twice, at 4 x 2048 and
# 1 x 8192; 4. bench_ops attention_fwd with the L2 fetch off and on (two rounds), attention_bwd.
T_START=$(date +%s)
W=/tmp/w0; mkdir -p $W
P="nvcc -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --expt-relaxed-constexpr"
($P -Inative/src -Inative/include native/bench/attn_bwd_probe.cu -o $W/a_probe > $W/probe-build-a.log 2>&1; echo "probe A build rc=$?" >> $W/sum.log) &
($P -DLORA4J_ATTN_BWD_DV_BEFORE_SYNC=1 -Inative/src -Inative/include native/bench/attn_bwd_probe.cu -o $W/b_probe > $W/probe-build-b.log 2>&1; echo "probe B build rc=$?" >> $W/sum.log) &
($P -Itmp-old -Inative/src -Inative/include native/bench/attn_bwd_probe.cu -o $W/old_probe > $W/probe-build-old.log 2>&1; echo "probe old build rc=$?" >> $W/sum.log) &
($P -Inative/src -Inative/include native/bench/attn_fwd_probe.cu -o $W/fwd_probe > $W/probe-build-fwd.log 2>&1; echo "probe fwd build rc=$?" >> $W/sum.log) &
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 300 ./test_ops_cuda > $W/ops.log 2>&1; echo "ops rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_ATTN_FWD_L2_AHEAD=sms LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda > $W/ops-l2.log 2>&1; echo "ops attention L2 rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden > $W/golden.log 2>&1; echo "golden rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck initcheck; do
  (cd $B && LORA4J_ATTN_FWD_L2_AHEAD=sms LORA4J_OPS_ONLY=attention timeout 120 $SAN --tool $tool --error-exitcode 1 ./test_ops_cuda > $W/san-$tool.log 2>&1; echo "sanitizer $tool rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
done
BB=native/build-gpu-b
(cmake -S native -B $BB -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
   -DCMAKE_CUDA_FLAGS=-DLORA4J_ATTN_BWD_DV_BEFORE_SYNC=1 > $W/b-conf.log 2>&1 && \
 timeout 200 cmake --build $BB -j "$(nproc)" --target test_ops_cuda > $W/b-build.log 2>&1; echo "B build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $BB && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda > $W/ops-b.log 2>&1; echo "ops B (attention) rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
wait
for round in 1 2; do
  for v in old a b; do
    for shape in "4 2048" "1 8192"; do echo "== round $round bwd $v" >> $W/probe.txt; timeout 60 $W/${v}_probe $shape >> $W/probe.txt 2>&1; done
  done
  for l2 in 0 sms; do
    for shape in "4 2048" "1 8192"; do echo "== round $round fwd l2=$l2" >> $W/fprobe.txt; LORA4J_ATTN_FWD_L2_AHEAD=$l2 timeout 60 $W/fwd_probe $shape >> $W/fprobe.txt 2>&1; done
  done
done
echo "probes at $(( $(date +%s) - T_START )) s" >> $W/sum.log
for round in 1 2; do
  for l2 in 0 sms; do
    echo "== round $round l2=$l2" >> $W/bench.txt
    LORA4J_ATTN_FWD_L2_AHEAD=$l2 LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd 2>&1 | grep -a "flash " >> $W/bench.txt
  done
done
echo "== bwd" >> $W/bench.txt
LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_bwd 2>&1 | grep -a "flash " >> $W/bench.txt
tar -C $W -czf $OUT/logs.tgz --exclude=a_probe --exclude=b_probe --exclude=old_probe --exclude=fwd_probe .
cat $W/sum.log
grep -a "FAIL" $W/ops.log $W/ops-l2.log $W/ops-b.log | cut -c1-200 | head -8; tail -1 $W/ops.log; tail -1 $W/ops-l2.log; tail -1 $W/ops-b.log
grep -a "FAIL" $W/eng.log $W/golden.log | head -5; tail -1 $W/eng.log; tail -1 $W/golden.log
grep -a "ERROR SUMMARY" $W/san-*.log
grep -a "==\|backward:\|wg" $W/probe.txt | cut -c1-230
grep -a -A1 "^==\|staged" $W/fprobe.txt | grep -a "^==\|staged\|block mean" | cut -c1-170 | head -60
cut -c1-120 $W/bench.txt
echo "total $(( $(date +%s) - T_START )) s"
