set -u
# Thirty-first session, call6: ours against cuDNN with both sides sustained alike
# (benchmarks/reference/attention_sustained.py: one process, each side held 3 s launch after
# launch, forward and backward, 4 x 2048 and 1 x 8192, two rounds in opposite orders), with
# nvidia-smi's clock and power beside it.
T_START=$(date +%s)
W=/tmp/w6; mkdir -p $W
B=native/build-gpu
[ -f $B/liblora4j_bench.so ] || STEPS=build CUDA_ARCHS=90 timeout 300 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build at $(( $(date +%s) - T_START )) s" >> $W/sum.log
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_event_reasons.active --format=csv,noheader,nounits -lms 50 > $W/smi.csv 2> $W/smi.err &
SMI=$!
LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 200 python3 benchmarks/reference/attention_sustained.py $B/liblora4j_bench.so 3 > $W/sustained.jsonl 2> $W/sustained.err
echo "sustained rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
kill $SMI
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log; tail -3 $W/sustained.err
cat $W/sustained.jsonl
