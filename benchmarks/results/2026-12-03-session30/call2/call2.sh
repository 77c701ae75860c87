set -u
# Thirtieth session, call2: branch attn-fwd-persist2, the Hopper attention forward made
# persistent (one block per SM, a fixed snake order over the longest-first query blocks, the
# next block's Q in a second slot, the output leaving through its own slot). Before the call:
#   mkdir -p tmp-old/cuda/kernels && git show main:native/src/cuda/kernels/attention_sm90.cu \
#     > tmp-old/cuda/kernels/attention_sm90.cu        (untracked; deleted after)
# 1. build; test_ops_cuda's attention cases (the grid variants: the same bits), the whole
#    test_ops_cuda, test_engine_cuda, test_golden; memcheck and initcheck on the attention cases;
# 2. the forward's probe program (one block per query block) on main's kernel and the branch's,
#    for the non-persistent form's time; 3. bench_ops attention_fwd persistent against
#    LORA4J_ATTN_FWD_PERSIST=0, alternated, two rounds; cuDNN's times in the same call;
# 4. the whole step at 4 x 2048 (bench_cuda, 32 layers) with and without, alternated.
T_START=$(date +%s)
D=benchmarks/results/2026-12-03-session30/call2
W=/tmp/w2; mkdir -p $W
P="nvcc -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --expt-relaxed-constexpr"
($P -Itmp-old -Inative/src -Inative/include native/bench/attn_fwd_probe.cu -o $W/old_probe > $W/probe-build-old.log 2>&1; echo "probe old build rc=$?" >> $W/sum.log) &
($P -Inative/src -Inative/include native/bench/attn_fwd_probe.cu -o $W/new_probe > $W/probe-build-new.log 2>&1; echo "probe new build rc=$?" >> $W/sum.log) &
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
B=native/build-gpu
(cd $B && LORA4J_REQUIRE_GPU=1 LORA4J_OPS_ONLY=attention timeout 120 ./test_ops_cuda > $W/ops-attn.log 2>&1; echo "ops attention rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 200 ./test_ops_cuda > $W/ops.log 2>&1; echo "ops rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 90 ./test_engine_cuda > $W/eng.log 2>&1; echo "engine rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
(cd $B && LORA4J_TESTDATA=$PWD/../../java/src/test/resources/hf-reference LORA4J_REQUIRE_GPU=1 timeout 60 ./test_golden > $W/golden.log 2>&1; echo "golden rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck initcheck; do
  (cd $B && LORA4J_OPS_ONLY=attention timeout 150 $SAN --tool $tool --error-exitcode 1 ./test_ops_cuda > $W/san-$tool.log 2>&1; echo "sanitizer $tool rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log)
done
wait
for round in 1 2; do
  for v in old new; do
    for shape in "4 2048" "1 8192"; do echo "== round $round $v $shape" >> $W/fprobe.txt; timeout 60 $W/${v}_probe $shape >> $W/fprobe.txt 2>&1; done
  done
done
echo "probes at $(( $(date +%s) - T_START )) s" >> $W/sum.log
for round in 1 2; do
  for ps in 1 0; do
    echo "== round $round persist=$ps" >> $W/bench.txt
    LORA4J_ATTN_FWD_PERSIST=$ps LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd 2>&1 | grep -a "flash " >> $W/bench.txt
  done
done
timeout 120 python3 $D/cudnn_time.py > $W/cudnn.txt 2>&1
echo "ops bench at $(( $(date +%s) - T_START )) s" >> $W/sum.log
for round in 1 2; do
  for ps in 1 0; do
    LORA4J_ATTN_FWD_PERSIST=$ps LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none LORA4J_BENCH_STEPS=8 \
      timeout 120 $B/bench_cuda > $W/step-$round-$ps.jsonl 2>&1
    echo "step round $round persist=$ps rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
  done
done
tar -C $W -czf $OUT/logs.tgz --exclude=old_probe --exclude=new_probe .
cat $W/sum.log
grep -a "FAIL" $W/ops-attn.log $W/ops.log $W/eng.log $W/golden.log | cut -c1-200 | head -8
grep -a "fwd grid" $W/ops-attn.log | head -3; grep -ac "fwd grid.*PASS\|PASS.*fwd grid" $W/ops-attn.log
tail -1 $W/ops-attn.log; tail -1 $W/ops.log; tail -1 $W/eng.log; tail -1 $W/golden.log
grep -a "ERROR SUMMARY" $W/san-*.log
grep -a "^==\|kernel\|staged" $W/fprobe.txt | cut -c1-160 | head -40
cut -c1-120 $W/bench.txt
cat $W/cudnn.txt
for f in $W/step-*.jsonl; do echo "$f: $(grep -ao "\"s\":[0-9.]*,\"tokens_per_s\":[0-9]*.\{0,40\}j_per_step\":[0-9.]*" $f | head -1)"; done
echo "total $(( $(date +%s) - T_START )) s"
