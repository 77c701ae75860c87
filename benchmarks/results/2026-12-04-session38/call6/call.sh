set -u
# Thirty-eighth session, call 6: graphs on a shape that changes every step, paired in one process
# (call5's separate `lora4j train` runs of random-length rows measured 1.4% lower with graphs on,
# every phase eager in both modes). bench_cuda LORA4J_BENCH_LENGTHS=N: pair i steps both engines
# on 4 x (2048 - (i mod N) d); engine a with LORA4J_CUDA_GRAPHS=0, b with graphs. N=20 over 20
# pairs: no length repeats (b runs eagerly throughout); N=4: each length five times (b captures
# at a length's second pair).
T_START=$(date +%s)
REAL_OUT=$OUT
W=/tmp/w6; mkdir -p $W
B=native/build-gpu
export OUT=/tmp/o6a; mkdir -p $OUT
STEPS="build" CUDA_ARCHS=90 timeout 120 bash scripts/gpu/run.sh > $W/build-run.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
for n in 20 4; do
  LORA4J_CUDA_GRAPHS_STATS=$W/stats-n$n.json LORA4J_BENCH_AB=LORA4J_CUDA_GRAPHS=1 LORA4J_CUDA_GRAPHS=0 \
    LORA4J_BENCH_LENGTHS=$n LORA4J_BENCH_PAIRS=20 LORA4J_BENCH_LAYERS=32 LORA4J_BENCH_SETTINGS=4x2048-none \
    timeout 70 $B/bench_cuda > $W/ab-n$n.log 2>&1
  echo "ab lengths=$n rc=$? at $(( $(date +%s) - T_START )) s" >> $W/sum.log
done
tar -C $W -czf $REAL_OUT/logs.tgz .
cat $W/sum.log
for n in 20 4; do echo "== lengths $n"; grep -a "train_step_pair" $W/ab-n$n.log | cut -c1-560; cat $W/stats-n$n.json 2>/dev/null; done
echo "total $(( $(date +%s) - T_START )) s"
