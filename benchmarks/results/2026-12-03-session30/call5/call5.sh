set -u
# Thirtieth session, call5: after the review mend (the SM count from sm90::current_sm_count,
# shared with launch_persistent): test_ops_cuda (attention cases, then whole) with
# LORA4J_REQUIRE_GPU=1, and bench_ops attention_fwd persistent against LORA4J_ATTN_FWD_PERSIST=0
# (the persistent form still taken by default).
W=/tmp/w5; mkdir -p $W
B=native/build-gpu
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > $W/build.log 2>&1; echo "build rc=$?"
(cd $B && LORA4J_REQUIRE_GPU=1 timeout 150 ./test_ops_cuda > $W/ops.log 2>&1; echo "ops rc=$?")
for ps in 1 0; do
  echo "== persist=$ps" >> $W/bench.txt
  LORA4J_ATTN_FWD_PERSIST=$ps LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd 2>&1 | grep -a "flash " >> $W/bench.txt
done
tar -C $W -czf $OUT/logs.tgz .
grep -a "FAIL" $W/ops.log | head -5; grep -ac "fwd grid.*PASS" $W/ops.log; tail -1 $W/ops.log
cut -c1-120 $W/bench.txt
