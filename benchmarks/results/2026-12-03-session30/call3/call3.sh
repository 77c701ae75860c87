set -u
# Thirtieth session, call3: torch SDPA on cuDNN timed over batches of 20 calls between events
# (call2's script timed one call between events, which counts torch's host dispatch), beside
# bench_ops attention_fwd (persistent, then LORA4J_ATTN_FWD_PERSIST=0) in one call.
W=/tmp/w3; mkdir -p $W
B=native/build-gpu
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > $W/build.log 2>&1; echo "build rc=$?"
for round in 1 2; do
  timeout 120 python3 benchmarks/results/2026-12-03-session30/call3/cudnn_time.py >> $W/cudnn.txt 2>&1
  for ps in 1 0; do
    echo "== round $round persist=$ps" >> $W/bench.txt
    LORA4J_ATTN_FWD_PERSIST=$ps LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 60 $B/bench_ops attention_fwd 2>&1 | grep -a "flash " >> $W/bench.txt
  done
done
tar -C $W -czf $OUT/logs.tgz .
cat $W/cudnn.txt; cut -c1-120 $W/bench.txt
