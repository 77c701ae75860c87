set -u
# Twenty-ninth session, call3: each op's power and energy beside its time (bench_ops' new W and
# mJ/call columns, NVML), every op at its default Mistral-7B shape and the frozen GEMMs at every
# projection shape; then where a 4 x 2048 step's time goes (LORA4J_PHASE_TIMES) and its energy
# per step (bench_cuda), same call. nvidia-smi samples power, clock and limit reasons throughout.
T_START=$(date +%s)
W=/tmp/w3; mkdir -p $W
B=native/build-gpu
STEPS=build CUDA_ARCHS=90 timeout 240 bash scripts/gpu/run.sh > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
nvidia-smi --query-gpu=timestamp,power.draw,clocks.sm,clocks_throttle_reasons.active --format=csv -lms 250 > $W/power.csv 2>&1 &
SMI=$!
LORA4J_OPS_SECONDS=0.5 LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 200 $B/bench_ops > $W/ops.txt 2>&1
echo "ops rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
LORA4J_OPS_SECONDS=0.5 LORA4J_CUDA_BENCH_LIBRARY=$B/liblora4j_cuda_bench.so timeout 150 $B/bench_ops frozen_linear_fwd frozen_linear_bwd > $W/frozen.txt 2>&1
echo "frozen rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
LORA4J_PHASE_TIMES=$W/phases.jsonl LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
  timeout 120 $B/bench_cuda > $W/bench_phases.jsonl 2>&1
echo "phases rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
python3 benchmarks/phases.py $W/bench_phases.jsonl $W/phases.jsonl > $W/phases.txt 2>&1
LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none LORA4J_BENCH_STEPS=8 timeout 120 $B/bench_cuda > $W/bench.jsonl 2>&1
echo "bench rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
kill $SMI
tar -C $W -czf $OUT/logs.tgz .
cat $W/sum.log
grep -a "on cuda" $W/ops.txt | grep -v materialized | cut -c1-60,97-
grep -a "nf4\|bf16" $W/frozen.txt | grep -a "bf16" | cut -c1-60,97-
head -14 $W/phases.txt
grep -ao "\"s\":[0-9.]*,\"tokens_per_s\":[0-9]*.\{0,40\}j_per_step\":[0-9.]*,\"mean_w\":[0-9]*,\"sm_mhz\":[0-9]*" $W/bench.jsonl
echo "total $(( $(date +%s) - T_START )) s"
